"""The start and end protocol of a sync, decision by decision, against a real redis-server
(the way Warehouse pins its task behaviour): what a delivered message does, what a sync
leaves while it runs and when it ends, and what the sweep makes of what a dead one left."""

from __future__ import annotations

import time

import pytest
from redis import Redis

from worker import coordination
from worker.coordination import Coalesce, Done, Expired, FollowUp, Interrupted, Start
from worker.locks import (
    HeldLock,
    LockLost,
    owed_key,
    pending_key,
    request_follow_up,
    running_key,
    source_lock_key,
)

NOW = 1_800_000_000.0


def start(redis: Redis, task: str = "t1", **kwargs: object) -> Start | Coalesce | Expired:
    options: dict[str, object] = {"ttl": 5.0, "now": NOW, **kwargs}
    return coordination.on_start(redis, "jira", task, "schedule", **options)  # type: ignore[arg-type]


def test_a_free_source_starts_and_its_lock_is_held(redis: Redis) -> None:
    decision = start(redis)
    assert isinstance(decision, Start)
    assert not decision.resumed
    assert redis.exists(source_lock_key("jira"))
    decision.lock.release()
    assert not redis.exists(source_lock_key("jira"))


def test_a_request_while_a_sync_runs_coalesces_into_one_pending_mark(redis: Redis) -> None:
    running = start(redis, "t1")
    assert isinstance(running, Start)
    coordination.begin(redis, "jira", "schedule", "host:1:t1", marker_ttl=60)
    assert isinstance(start(redis, "t2"), Coalesce)
    assert isinstance(start(redis, "t3"), Coalesce)
    assert redis.get(pending_key("jira")) == b"schedule"
    assert coordination.on_end(redis, "jira") == FollowUp("schedule")
    running.lock.release()


def test_a_sync_with_no_request_meanwhile_ends_owing_nothing(redis: Redis) -> None:
    running = start(redis)
    assert isinstance(running, Start)
    coordination.begin(redis, "jira", "on_demand", "host:1:t1", marker_ttl=60)
    assert redis.exists(owed_key("jira"))
    coordination.finished(redis, "jira", "host:1:t1")
    assert coordination.on_end(redis, "jira") == Done()
    assert not redis.exists(owed_key("jira"))
    assert not redis.exists(running_key("jira"))
    running.lock.release()


def test_a_redelivery_of_the_running_task_waits_for_the_dead_holders_lock(redis: Redis) -> None:
    # what a worker killed mid-sync leaves: its lock (until the TTL) and its marker
    dead = HeldLock(redis, source_lock_key("jira"), ttl=1.0)
    assert dead._lock.acquire(blocking=False)  # no keeper thread: it expires as if killed
    redis.set(running_key("jira"), "host:1:t1")
    resumed = start(redis, "t1", ttl=1.0)
    assert isinstance(resumed, Start)
    assert resumed.resumed
    resumed.lock.release()


def test_a_late_scheduled_send_expires_only_on_its_first_delivery(redis: Redis) -> None:
    assert start(redis, not_after=NOW - 1) == Expired(NOW - 1)
    assert not redis.exists(source_lock_key("jira"))
    # a retry or a redelivery belongs to a sync that started: never discarded
    late = start(redis, not_after=NOW - 1, first_delivery=False)
    assert isinstance(late, Start)
    late.lock.release()
    timely = start(redis, not_after=NOW + 1)
    assert isinstance(timely, Start)
    timely.lock.release()


def test_the_sweep_finds_a_run_whose_process_died(redis: Redis) -> None:
    redis.set(running_key("jira"), "host:42:t9")  # marker left, lock gone
    redis.set(running_key("github"), "host:43:t8")
    redis.set(source_lock_key("github"), "someone")  # alive: its lock is held
    found = coordination.sweep(redis, ["jira", "github"], NOW)
    assert found.interrupted == [Interrupted("jira", "t9", "host:42")]
    assert not redis.exists(running_key("jira"))  # claimed: another worker won't see it
    assert coordination.sweep(redis, ["jira", "github"], NOW).interrupted == []


def test_the_sweep_resends_an_owed_sync_once_its_retry_is_overdue(redis: Redis) -> None:
    coordination.on_retry(redis, "jira", "schedule", due=NOW + 60)
    assert coordination.sweep(redis, ["jira"], NOW).resend == []
    assert coordination.sweep(redis, ["jira"], NOW + 61).resend == [("jira", "schedule")]
    assert coordination.sweep(redis, ["jira"], NOW + 62).resend == []  # claimed once


def test_a_follow_up_that_could_not_be_sent_goes_to_the_sweep(redis: Redis) -> None:
    running = start(redis)
    assert isinstance(running, Start)
    coordination.begin(redis, "jira", "schedule", "host:1:t1", marker_ttl=60)
    assert isinstance(start(redis, "t2"), Coalesce)
    coordination.finished(redis, "jira", "host:1:t1")
    assert coordination.on_end(redis, "jira") == FollowUp("schedule")
    running.lock.release()
    assert coordination.sweep(redis, ["jira"], time.time()).resend == []  # claimed by the ender
    coordination.follow_up_unsent(redis, "jira")
    assert coordination.sweep(redis, ["jira"], time.time()).resend == [("jira", "schedule")]


def test_fencing_refuses_a_write_under_a_lock_that_is_gone(redis: Redis) -> None:
    lock = HeldLock(redis, source_lock_key("jira"), ttl=30)
    assert lock.acquire()
    lock.fence("a write")
    redis.delete(source_lock_key("jira"))  # lost (a Redis restart without its data, say)
    with pytest.raises(LockLost, match="no longer held"):
        lock.fence("the create_billables write")
    lock.release()
    other = HeldLock(redis, source_lock_key("jira"), ttl=30)
    assert other.acquire()
    with pytest.raises(LockLost):  # taken by another sync meanwhile: still not ours
        lock.fence("a write")
    other.release()


def test_a_request_whose_sync_ended_just_as_it_coalesced_starts_itself(
    redis: Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The message finds the lock held; before it marks the source pending, the running
    sync ends (it sees no mark: nothing owed) and lets the lock go. The mark then has
    nobody to act on it: the message must start the sync itself."""
    running = start(redis, "t1")
    assert isinstance(running, Start)
    coordination.begin(redis, "jira", "schedule", "host:1:t1", marker_ttl=60)
    marking = request_follow_up

    def the_sync_ends_first(client: Redis, source: str, trigger: str = "on_demand") -> bool:
        assert isinstance(coordination.on_end(client, source), Done)  # no mark yet
        running.lock.release()
        return marking(client, source, trigger)

    monkeypatch.setattr(coordination, "request_follow_up", the_sync_ends_first)
    decision = start(redis, "t2")
    assert isinstance(decision, Start), decision
    decision.lock.release()
