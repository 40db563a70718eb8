"""billsync as a service, with real processes: a redis-server, two `billsync worker`
processes, `billsync beat` (twice, by mistake), a PostgreSQL state store and the sandboxes.

- on-demand syncs racing each other (and the schedule) never overlap for one source;
- `kill -9` of the process running a sync: the message is redelivered, the sync finishes
  elsewhere, and SPEC §5 holds (nothing doubled, nothing lost);
- a Redis restart in the middle of a run loses nothing;
- two beats schedule each run once.
"""

from __future__ import annotations

import os
import signal
import time
from datetime import UTC, datetime

import pytest
from redis import Redis
from sqlalchemy import create_engine
from sqlalchemy.orm import sessionmaker

from sandbox.main import RunningSandbox
from tests.integration.conftest import hold_writes, holder, release_writes, writing
from tests.support.redis import RedisServer
from tests.support.service import (
    SOURCES,
    Service,
    assert_exactly_once,
    assert_never_overlapping,
    runs,
    wait_until,
)
from worker.locks import mark_owed, owed_key, pending_key, running_key

pytestmark = pytest.mark.postgres


def test_racing_syncs_a_killed_worker_and_a_redis_restart(
    service: Service,
    sandbox: RunningSandbox,
    state_url: str,
    redis: Redis,
    redis_server: RedisServer,
) -> None:
    engine = create_engine(state_url)
    factory = sessionmaker(engine)
    try:
        hold_writes(sandbox)
        service.worker("w1")
        service.worker("w2")
        service.enqueue("jira-demo")
        # kill -9 the process running the Jira sync, in the middle of its writes
        wait_until(lambda: writing(sandbox, redis, "jira-demo"), 120, service, "a Jira write")
        service.enqueue(*SOURCES, *SOURCES)  # racing it: coalesced, or waiting for the ledger
        pid = holder(redis, "jira-demo")
        assert pid is not None
        os.kill(pid, signal.SIGKILL)
        killed_at = datetime.now(UTC)

        # while the redelivered sync writes, restart Redis
        wait_until(
            lambda: (
                writing(sandbox, redis, "jira-demo", other_than=pid)
                or writing(sandbox, redis, "github-demo")
            ),
            180,
            service,
            "a sync writing after the kill",
        )
        redis_server.restart()

        release_writes(sandbox)
        # then fresh requests, as the schedule would send: converge whatever the follow-ups
        # did (they have their own tests), and check nothing was doubled or lost
        service.enqueue(*SOURCES)

        def done():
            return all(
                any(
                    n == s and st == "succeeded" and a > killed_at
                    for n, _, st, a, _ in runs(factory)
                )
                for s in SOURCES
            ) and not any(redis.get(running_key(s)) for s in SOURCES)

        wait_until(done, 180, service, "both sources synced after the kill")
        time.sleep(5)  # let follow-ups and retries drain
        wait_until(
            lambda: not any(redis.get(running_key(s)) for s in SOURCES), 120, service, "quiet"
        )

        all_runs = runs(factory)
        statuses = [st for n, _, st, _, _ in all_runs if n == "jira-demo"]
        assert "interrupted" in statuses, f"the killed run is closed as interrupted: {statuses}"
        assert "running" not in [st for _, _, st, _, _ in all_runs]
        assert_never_overlapping(all_runs, killed_at)
        assert_exactly_once(factory, sandbox, service)
    finally:
        engine.dispose()


def test_a_sync_killed_just_before_a_redis_restart_is_resumed(
    service: Service,
    sandbox: RunningSandbox,
    state_url: str,
    redis: Redis,
    redis_server: RedisServer,
) -> None:
    """kill -9 of the process running a sync, then Redis restarts at once: the worker
    cannot give the message back over the broken connection ("Couldn't reject"), and Redis
    would return it only after the visibility timeout. The sync's owed mark survives in
    Redis, so a worker sends the sync again once the dead holder's lock expires."""
    engine = create_engine(state_url)
    factory = sessionmaker(engine)
    try:
        hold_writes(sandbox)
        service.worker("w1")
        service.enqueue("jira-demo")
        wait_until(lambda: writing(sandbox, redis, "jira-demo"), 120, service, "a Jira write")
        pid = holder(redis, "jira-demo")
        assert pid is not None
        os.kill(pid, signal.SIGKILL)
        killed_at = datetime.now(UTC)
        redis_server.restart()
        release_writes(sandbox)

        def resumed() -> bool:
            return any(
                n == "jira-demo" and st == "succeeded" and a > killed_at
                for n, _, st, a, _ in runs(factory)
            )

        # resumed by its own message when the worker could give it back in time, else by
        # a worker's sweep of owed syncs ("sending it again" in the log)
        wait_until(resumed, 180, service, "the killed sync, resumed")
        wait_until(lambda: redis.get(owed_key("jira-demo")) is None, 120, service, "nothing owed")
        assert_never_overlapping(runs(factory), killed_at)
    finally:
        engine.dispose()


def test_a_worker_resends_an_owed_sync_that_nobody_runs(
    service: Service, sandbox: RunningSandbox, state_url: str, redis: Redis
) -> None:
    """What a sync leaves when its process dies and its message is gone: an owed mark and
    no lock. A worker's sweep finds it and sends the sync again, once."""
    engine = create_engine(state_url)
    factory = sessionmaker(engine)
    try:
        mark_owed(redis, "jira-demo", "on_demand")
        service.worker("w1")
        wait_until(
            lambda: any(n == "jira-demo" and st == "succeeded" for n, _, st, _, _ in runs(factory)),
            180,  # a hang guard: a loaded machine may take long to start a worker
            service,
            "the owed sync",
        )
        assert "sending it again" in service.log("w1")
        wait_until(lambda: redis.get(owed_key("jira-demo")) is None, 120, service, "nothing owed")
        time.sleep(3)
        assert [r[2] for r in runs(factory)] == ["succeeded"]  # resent once
    finally:
        engine.dispose()


def test_a_request_coalesced_during_a_run_survives_a_redis_restart(
    service: Service,
    sandbox: RunningSandbox,
    state_url: str,
    redis: Redis,
    redis_server: RedisServer,
) -> None:
    """A sync asked for while one runs is owed one follow-up. Celery drops the countdown
    messages a worker holds when Redis goes away (Redis gives them back only after the
    visibility timeout, hours later), so the follow-up must not live in one: it is a mark in
    Redis that the running sync honours when it ends, even across a restart."""
    engine = create_engine(state_url)
    factory = sessionmaker(engine)
    try:
        hold_writes(sandbox)
        service.worker("w1")
        service.worker("w2")  # the one free to take the requests made during the run
        service.enqueue("jira-demo")
        wait_until(lambda: writing(sandbox, redis, "jira-demo"), 120, service, "a Jira write")
        service.enqueue("jira-demo", "jira-demo")  # while it runs: one follow-up is owed

        def coalesced() -> bool:
            # both requests taken and acknowledged; only the running sync's message is unacked
            return (
                redis.get(pending_key("jira-demo")) is not None
                and redis.llen("billsync") == 0
                and redis.hlen("unacked") == 1
            )

        wait_until(coalesced, 120, service, "the requests, coalesced")
        redis_server.restart()
        restarted_at = datetime.now(UTC)
        release_writes(sandbox)

        def follow_up_done() -> bool:
            return (
                any(
                    n == "jira-demo" and st == "succeeded" and a > restarted_at
                    for n, _, st, a, _ in runs(factory)
                )
                and redis.get(running_key("jira-demo")) is None
            )

        wait_until(follow_up_done, 180, service, "the follow-up after the restart")
        time.sleep(3)
        jira_runs = [r for r in runs(factory) if r[0] == "jira-demo"]
        assert [st for _, _, st, _, _ in jira_runs] == ["succeeded", "succeeded"], jira_runs
        assert_never_overlapping(runs(factory))
    finally:
        engine.dispose()


def test_two_beats_schedule_each_run_once_while_on_demand_syncs_race(
    service: Service, sandbox: RunningSandbox, state_url: str, redis: Redis
) -> None:
    engine = create_engine(state_url)
    factory = sessionmaker(engine)
    try:
        service.worker("w1")
        service.worker("w2")
        service.beat("beat1")
        service.beat("beat2")  # started by mistake: it must stand by
        now = datetime.now(UTC)
        boundary = 60 - now.second  # the next minute starts the schedule
        time.sleep(max(0, boundary - 1))
        service.enqueue(*SOURCES)  # racing the scheduled runs
        wait_until(
            lambda: (
                sum(1 for _, t, st, _, _ in runs(factory) if t == "schedule" and st == "succeeded")
                >= 2
            ),
            120,
            service,
            "one scheduled run per source",
        )
        time.sleep(5)
        scheduled = [(n, a) for n, t, _, a, _ in runs(factory) if t == "schedule"]
        per_minute: dict[tuple[str, int], int] = {}
        for name, started in scheduled:
            minute = int(started.timestamp() // 60)
            per_minute[(name, minute)] = per_minute.get((name, minute), 0) + 1
        # a doubled beat would start a second scheduled run of the same source and minute
        # (after the first, as a follow-up): each minute has one
        assert all(count == 1 for count in per_minute.values()), per_minute
        assert_never_overlapping(runs(factory))
        assert_exactly_once(factory, sandbox, service)
    finally:
        engine.dispose()
