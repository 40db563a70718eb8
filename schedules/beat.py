"""The beat schedule: one entry per configured source, from its crontab.

Each entry is a row with a reason, built from the settings (nothing is hard-coded):

    sync <source>    crontab from the source's `schedule`, in the billing time zone
                     expires: a run not started before the next one is due is dropped
                     (a backlog of scheduled syncs after an outage would only repeat work)

The expiry is not Celery's ``expires``: Celery copies that into retries and redeliveries and
discards them, which would lose a sync that started. The entry carries its expiry in seconds
(header ``billsync_expires_in``); the scheduler stamps each send with the absolute time
(``billsync_not_after``), and the task honours it only on a first delivery.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Any

from celery.schedules import crontab

from worker.config import Settings, parse_crontab
from worker.coordination import SYNC_TASK

EXPIRES_IN = "billsync_expires_in"  # header: seconds; the scheduler turns it into NOT_AFTER
MIN_EXPIRY = 60


@dataclass(frozen=True)
class Entry:
    name: str
    source: str
    schedule: crontab
    expires: int  # seconds
    reason: str


def _interval(schedule: crontab) -> int:
    """Seconds between two runs (the shortest gap within a day), for ``expires``."""
    minutes = sorted(schedule.minute)
    hours = sorted(schedule.hour)
    if len(hours) == 24 and len(minutes) > 1:
        gaps = [b - a for a, b in itertools.pairwise(minutes)]
        gaps.append(60 - minutes[-1] + minutes[0])
        return int(min(gaps)) * 60
    if len(hours) == 24:
        return 3600
    gaps = [b - a for a, b in itertools.pairwise(hours)] + [24 - hours[-1] + hours[0]]
    return int(min(gaps)) * 3600


def entries(settings: Settings) -> list[Entry]:
    result = []
    for source in settings.file.sources:
        schedule = parse_crontab(source.schedule)
        result.append(
            Entry(
                name=f"sync {source.name}",
                source=source.name,
                schedule=schedule,
                expires=max(MIN_EXPIRY, _interval(schedule)),
                reason=f"{source.kind} source {source.name}: `{source.schedule}`",
            )
        )
    return result


def beat_schedule(settings: Settings) -> dict[str, dict[str, Any]]:
    """Celery's ``beat_schedule`` for the settings."""
    return {
        entry.name: {
            "task": SYNC_TASK,
            "schedule": entry.schedule,
            "args": (entry.source, "schedule"),
            "options": {"headers": {EXPIRES_IN: entry.expires}},
        }
        for entry in entries(settings)
    }
