"""A beat scheduler that schedules only while it holds a Redis lock: exactly one beat.

Two beats (a second one started by mistake, a rolling deploy) would send every scheduled
sync twice. Each tick, this scheduler takes or renews ``billsync:lock:beat`` (token + TTL);
a beat that does not hold it sends nothing, says once that it stands by, and checks again
soon, so it takes over within one TTL if the active beat dies. (The per-source lock would
keep two copies of one sync from overlapping anyway; this keeps the schedule from doubling.)

Failover: the active beat records each entry's period (``billsync:beat:last-run``, a hash of
entry name to epoch seconds) *before* it sends it. A beat that takes over first moves its
entries' last-run times up to those, so it never sends a period again: a period is sent at
most once across a failover. (A beat killed between the record and the send loses that send;
the next period's sync reads from the same cursors, so only time is lost, never work.)

Expiry: each send is stamped with ``billsync_not_after`` (now + the entry's
``billsync_expires_in``); see :mod:`schedules.beat`.
"""

from __future__ import annotations

import contextlib
import logging
import time
from datetime import UTC, datetime
from typing import Any

from celery.beat import PersistentScheduler, ScheduleEntry
from redis import Redis
from redis.exceptions import LockError, RedisError
from redis.lock import Lock

from schedules.beat import EXPIRES_IN
from worker.coordination import NOT_AFTER

log = logging.getLogger("billsync.beat")

BEAT_LOCK = "billsync:lock:beat"
LAST_RUN = "billsync:beat:last-run"
BEAT_LOCK_TTL = 30.0  # unless the app's conf sets billsync_beat_lock_ttl (broker.lock_ttl_seconds)
STANDBY_CHECK = 5.0  # seconds (at most) between attempts of a beat that does not hold the lock


class LockedScheduler(PersistentScheduler):  # type: ignore[misc]
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._redis = Redis.from_url(self.app.conf.broker_url)
        self._ttl = float(self.app.conf.get("billsync_beat_lock_ttl") or BEAT_LOCK_TTL)
        self._lock: Lock = self._redis.lock(BEAT_LOCK, timeout=self._ttl, thread_local=False)
        self._held = False
        self._standby_said = False

    def _hold(self) -> bool:
        try:
            if self._held:
                self._lock.extend(self._ttl, replace_ttl=True)
            elif self._lock.acquire(blocking=False):
                self._take_over()
                self._held = True
                self._standby_said = False
                log.info("this beat holds %s: it schedules", BEAT_LOCK)
        except (LockError, RedisError) as exc:
            if self._held:
                log.warning("this beat lost %s (%s): standing by", BEAT_LOCK, exc)
            self._held = False
        if not self._held and not self._standby_said:
            log.info(
                "this beat is standby: another beat holds %s; it takes over if that ends", BEAT_LOCK
            )
            self._standby_said = True
        return self._held

    def _take_over(self) -> None:
        """Move each entry's last run up to when any beat last sent it."""
        sent = self._redis.hgetall(LAST_RUN)
        moved = False
        for name, entry in self.schedule.items():
            raw = sent.get(name.encode())
            if raw is None:
                continue
            at = datetime.fromtimestamp(float(raw), tz=UTC)
            if entry.last_run_at is None or _aware(entry.last_run_at) < at:
                entry.last_run_at = at
                moved = True
        if moved:
            self._heap = None  # rebuilt from the moved times on the next tick

    def apply_async(
        self, entry: ScheduleEntry, producer: Any = None, advance: bool = True, **kwargs: Any
    ) -> Any:
        entry.options = stamp(entry.options, time.time())
        due = self._record(entry.name)
        result = super().apply_async(entry, producer, advance, **kwargs)
        log.info("sent %s (due %s)", entry.name, due.isoformat() if due else "now")
        return result

    def _record(self, name: str) -> datetime | None:
        """Record this period of ``name`` as sent, *before* sending it.

        By the time Celery's tick sends an entry it has already moved the entry's last run to
        this period. Recording it first means a standby that takes over never sends the period
        again. A beat killed between this record and its send loses that one send; the source's
        next scheduled time covers it (a sync reads from its cursors, not from the period).
        """
        sent = self.schedule.get(name)
        if sent is None or sent.last_run_at is None:
            return None
        due = _aware(sent.last_run_at)
        with contextlib.suppress(RedisError):  # a lost record costs one resend at most
            self._redis.hset(LAST_RUN, name, due.timestamp())
        return due

    def tick(self, *args: Any, **kwargs: Any) -> float:
        if not self._hold():
            return min(STANDBY_CHECK, self._ttl / 2)
        return float(min(super().tick(*args, **kwargs), self._ttl / 3))

    def close(self) -> None:
        if self._held:
            with contextlib.suppress(LockError, RedisError):
                self._lock.release()
        super().close()


def stamp(options: dict[str, Any], now: float) -> dict[str, Any]:
    """An entry's send options with the absolute deadline of this send (epoch s)."""
    headers = dict(options.get("headers") or {})
    if EXPIRES_IN in headers:
        headers[NOT_AFTER] = now + float(headers[EXPIRES_IN])
    return {**options, "headers": headers}


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
