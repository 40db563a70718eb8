"""The beat schedule table, and one active beat among several (real Redis)."""

import logging
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from celery import Celery
from redis import Redis

from schedules.beat import beat_schedule, entries
from schedules.scheduler import BEAT_LOCK, STANDBY_CHECK, LockedScheduler
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


class DiesWhileSending:
    """A producer whose process is killed the moment it is used to send (a BaseException:
    beat's tick lets it through, as it would a kill)."""

    def __getattr__(self, name: str) -> Any:
        raise KeyboardInterrupt


def test_a_beat_that_dies_while_sending_leaves_the_period_to_nobody(
    redis_server: RedisServer, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Record, then send: a standby that takes over never sends the dead beat's period again.

    Recording after the send (the old order) left a window in which a killed beat had sent a
    period the standby did not know about, so the standby sent it again."""
    redis = Redis.from_url(redis_server.url)
    redis.flushall()  # no lock, record or message of another test
    app = Celery("t", broker=redis_server.url)
    app.conf.beat_schedule = beat_schedule(settings_with("* * * * *"))
    app.conf.timezone = "UTC"
    long_ago = datetime.now(UTC) - timedelta(minutes=5)
    first = LockedScheduler(app=app, schedule_filename=str(tmp_path / "a"))
    second = LockedScheduler(app=app, schedule_filename=str(tmp_path / "b"))
    for beat in (first, second):  # both last ran long ago: the current minute is due
        beat.schedule["sync s0"].last_run_at = long_ago
    try:
        first.producer = DiesWhileSending()
        with pytest.raises(KeyboardInterrupt):  # it takes the lock, then dies sending the minute
            first.tick()
        dead_minute = minute(first.schedule["sync s0"].last_run_at)
        assert second.tick() == STANDBY_CHECK  # the dead beat's lock is still there
        redis.delete(BEAT_LOCK)  # until it expires
        with caplog.at_level(logging.INFO, logger="celery.beat"):
            second.tick()
            second.tick()
        assert second._held
        sent = [
            minute(datetime.fromtimestamp(record.created, UTC))
            for record in caplog.records
            if "Sending due task" in record.getMessage()
        ]
        assert len(sent) == redis.llen("celery")
        # (a minute boundary between the two beats' ticks makes the next minute due: that one
        # is the standby's to send)
        assert dead_minute not in sent, "the standby sent the dead beat's minute again"
    finally:
        first.close()
        second.close()
        redis.close()


def minute(moment: datetime) -> datetime:
    return moment.replace(second=0, microsecond=0)


def test_crontab_fields_are_read_in_standard_order() -> None:
    """minute hour day-of-month month day-of-week (Celery's positional order differs)."""
    (entry,) = entries(settings_with("0 6 1-7 3,9 1-5"))
    cron = entry.schedule
    assert (cron.minute, cron.hour) == ({0}, {6})
    assert cron.day_of_month == set(range(1, 8))
    assert cron.month_of_year == {3, 9}
    assert cron.day_of_week == {1, 2, 3, 4, 5}
