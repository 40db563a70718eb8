"""The beat schedule table, and one active beat among several (real Redis)."""

from pathlib import Path

import pytest
from celery import Celery

from schedules.beat import beat_schedule, entries
from schedules.scheduler import STANDBY_CHECK, LockedScheduler
from tests.support.redis import RedisServer
from worker.config import Settings, parse_config

TENANT = "tnt_" + "a" * 24


def settings_with(*schedules: str) -> Settings:
    sources = [
        {"name": f"s{i}", "kind": "github", "token_env": "T", "schedule": cron}
        for i, cron in enumerate(schedules)
    ]
    data = {
        "kukkingu": {"base_url": "http://x", "tenant_id": TENANT, "token_env": "T"},
        "sources": sources,
    }
    return parse_config(data, environ={"T": "token-value"})


@pytest.mark.parametrize(
    ("cron", "expires"),
    [
        ("*/15 * * * *", 900),
        ("5,35 * * * *", 1800),
        ("0 * * * *", 3600),
        ("0 9,17 * * 1-5", 8 * 3600),
        ("* * * * *", 60),
    ],
)
def test_one_entry_per_source_expiring_before_the_next_run(cron: str, expires: int) -> None:
    (entry,) = entries(settings_with(cron))
    assert entry.expires == expires
    assert entry.reason == f"github source s0: `{cron}`"


def test_beat_schedule_sends_the_stable_task_name() -> None:
    schedule = beat_schedule(settings_with("*/5 * * * *", "0 * * * *"))
    assert sorted(schedule) == ["sync s0", "sync s1"]
    assert schedule["sync s0"]["task"] == "billsync.sync_source"
    assert schedule["sync s0"]["args"] == ("s0", "schedule")
    # an expiry of our own, not Celery's `expires` (which retries and redeliveries inherit)
    assert schedule["sync s0"]["options"] == {"headers": {"billsync_expires_in": 300}}


def test_a_second_beat_stands_by(redis_server: RedisServer, tmp_path: Path) -> None:
    app = Celery("t", broker=redis_server.url)
    app.conf.beat_schedule = {}
    first = LockedScheduler(app=app, schedule_filename=str(tmp_path / "a"))
    second = LockedScheduler(app=app, schedule_filename=str(tmp_path / "b"))
    try:
        first.tick()
        assert first._held
        assert second.tick() == STANDBY_CHECK
        assert not second._held
        first.close()  # the active beat stops: the other takes over
        second.tick()
        assert second._held
    finally:
        second.close()


def test_crontab_fields_are_read_in_standard_order() -> None:
    """minute hour day-of-month month day-of-week (Celery's positional order differs)."""
    (entry,) = entries(settings_with("0 6 1-7 3,9 1-5"))
    cron = entry.schedule
    assert (cron.minute, cron.hour) == ({0}, {6})
    assert cron.day_of_month == set(range(1, 8))
    assert cron.month_of_year == {3, 9}
    assert cron.day_of_week == {1, 2, 3, 4, 5}
