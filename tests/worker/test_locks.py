"""Redis locks against a real redis-server: exclusive, released by token, kept alive,
loss detected; follow-ups coalesced."""

import time

import pytest
from redis import Redis

from worker.locks import (
    HeldLock,
    LockLost,
    clear_follow_up,
    clear_owed,
    mark_owed,
    owed_syncs,
    request_follow_up,
    source_lock_key,
    swept_key,
)


def test_one_holder_at_a_time_released_by_token(redis: Redis) -> None:
    first, second = HeldLock(redis, "k", ttl=5), HeldLock(redis, "k", ttl=5)
    assert first.acquire()
    assert not second.acquire()
    second.release()  # not the holder: frees nothing
    assert redis.get("k") is not None
    first.release()
    assert second.acquire()
    second.release()


def test_a_held_lock_outlives_its_ttl_while_work_runs(redis: Redis) -> None:
    with HeldLock(redis, "k", ttl=0.6) as lock:
        assert lock.acquire()
        time.sleep(1.5)  # more than two TTLs
        assert redis.get("k") is not None
        lock.check("still mine")
    assert redis.get("k") is None


def test_a_lost_lock_stops_the_work_at_the_next_step(redis: Redis) -> None:
    lock = HeldLock(redis, source_lock_key("jira"), ttl=0.6)
    assert lock.acquire()
    redis.delete(source_lock_key("jira"))  # e.g. Redis lost it
    time.sleep(0.5)
    with pytest.raises(LockLost, match="was lost before the next step"):
        lock.check("the next step")
    lock.release()


def test_only_the_first_request_during_a_run_owns_the_follow_up(redis: Redis) -> None:
    assert request_follow_up(redis, "jira")
    assert not request_follow_up(redis, "jira")
    assert request_follow_up(redis, "github")  # per source
    clear_follow_up(redis, "jira")
    assert request_follow_up(redis, "jira")


def test_an_owed_sync_nobody_runs_is_claimed_once(redis: Redis) -> None:
    mark_owed(redis, "jira", "on_demand")
    mark_owed(redis, "github", "schedule")
    held = HeldLock(redis, source_lock_key("github"), ttl=30)
    assert held.acquire()  # github's sync is alive: not owed to anyone else
    try:
        assert owed_syncs(redis, ["jira", "github", "other"], now=0) == [("jira", "on_demand")]
        assert owed_syncs(redis, ["jira", "github"], now=0) == []  # claimed: one resender
    finally:
        held.release()
    redis.delete(swept_key("jira"))
    clear_owed(redis, "jira")
    assert owed_syncs(redis, ["jira", "github"], now=0) == [("github", "schedule")]


def test_an_owed_retry_waits_for_its_due_time(redis: Redis) -> None:
    mark_owed(redis, "jira", "schedule", not_before=1_000.0)
    assert owed_syncs(redis, ["jira"], now=999.0) == []
    assert owed_syncs(redis, ["jira"], now=1_000.0) == [("jira", "schedule")]
