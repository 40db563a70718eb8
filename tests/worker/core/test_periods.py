"""Billing periods in the billing time zone, across month, year and DST boundaries."""

from datetime import UTC, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest

from worker.core.periods import period_of

BERLIN = ZoneInfo("Europe/Berlin")
NEW_YORK = ZoneInfo("America/New_York")


@pytest.mark.parametrize(
    ("moment", "zone", "kind", "expected"),
    [
        (datetime(2026, 11, 3, 9, tzinfo=UTC), BERLIN, "monthly", "2026-11"),
        # 23:30 UTC on 31 Oct is 00:30 on 1 Nov in Berlin (CET, after DST ended on 25 Oct)
        (datetime(2026, 10, 31, 23, 30, tzinfo=UTC), BERLIN, "monthly", "2026-11"),
        (datetime(2026, 10, 31, 22, 59, tzinfo=UTC), BERLIN, "monthly", "2026-10"),
        # 31 Aug 22:30 UTC is 1 Sep 00:30 in Berlin summer time (UTC+2)
        (datetime(2026, 8, 31, 22, 30, tzinfo=UTC), BERLIN, "monthly", "2026-09"),
        (datetime(2026, 8, 31, 21, 59, tzinfo=UTC), BERLIN, "monthly", "2026-08"),
        # the DST night itself: 25 Oct 2026 00:30 UTC = 02:30 CEST, still 25 Oct
        (datetime(2026, 10, 25, 0, 30, tzinfo=UTC), BERLIN, "monthly", "2026-10"),
        # a worklog's own offset does not matter, only the instant
        (
            datetime(2026, 12, 1, 0, 30, tzinfo=timezone(timedelta(hours=1))),
            UTC,
            "monthly",
            "2026-11",
        ),
        (datetime(2026, 12, 1, 3, 0, tzinfo=UTC), NEW_YORK, "monthly", "2026-11"),
        # ISO weeks: 21 Nov 2026 is a Saturday in week 47
        (datetime(2026, 11, 21, 12, tzinfo=UTC), BERLIN, "weekly", "2026-W47"),
        # Sunday 22 Nov 23:30 UTC is Monday 23 Nov in Berlin: week 48
        (datetime(2026, 11, 22, 23, 30, tzinfo=UTC), BERLIN, "weekly", "2026-W48"),
        # ISO week-years: 1 Jan 2027 (Friday) belongs to 2026-W53
        (datetime(2027, 1, 1, 12, tzinfo=UTC), BERLIN, "weekly", "2026-W53"),
        (datetime(2025, 12, 29, 12, tzinfo=UTC), BERLIN, "weekly", "2026-W01"),
        (datetime(2026, 11, 3, 9, tzinfo=UTC), BERLIN, "none", "all"),
    ],
)
def test_period_of(moment: datetime, zone: ZoneInfo, kind: str, expected: str) -> None:
    assert period_of(moment, zone, kind) == expected  # type: ignore[arg-type]


def test_naive_datetimes_are_refused() -> None:
    with pytest.raises(ValueError, match="naive datetime"):
        period_of(datetime(2026, 11, 3, 9), BERLIN, "monthly")  # noqa: DTZ001
