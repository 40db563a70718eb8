"""Billing periods: which month or ISO week an entry falls in, in the billing time zone.

The entry's start is an aware instant; it is converted to the billing zone (zoneinfo applies
the DST rules of that date) and the *local* date decides. So a worklog started at 23:30 UTC
on 31 October is November work in Berlin.
"""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from worker.core.model import PeriodKind

NO_PERIOD = "all"


def period_of(moment: datetime, zone: ZoneInfo, kind: PeriodKind) -> str:
    """``2026-11`` (monthly), ``2026-W47`` (ISO weekly) or ``all`` (no period)."""
    if moment.tzinfo is None:
        raise ValueError(f"naive datetime {moment.isoformat()}: entries need a time zone")
    if kind == "none":
        return NO_PERIOD
    local = moment.astimezone(zone).date()
    if kind == "monthly":
        return f"{local.year:04d}-{local.month:02d}"
    year, week, _ = local.isocalendar()
    return f"{year:04d}-W{week:02d}"
