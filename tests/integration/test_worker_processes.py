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
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from redis import Redis
from sqlalchemy import create_engine
from sqlalchemy.orm import sessionmaker

from sandbox.common.faults import FaultSpec
from sandbox.main import RunningSandbox, start_sandbox
from tests.support.postgres import Cluster
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
from worker.store import upgrade

pytestmark = pytest.mark.postgres


@pytest.fixture
def sandbox() -> Iterator[RunningSandbox]:
    with start_sandbox(kukkingu_port=0, jira_port=0, github_port=0) as running:
        yield running


@pytest.fixture
def state_url(postgres_cluster: Cluster) -> Iterator[str]:
    name = postgres_cluster.create_database()
    url = postgres_cluster.sqlalchemy_url(name)
    upgrade(url)
    yield url
    postgres_cluster.drop_database(name)


@pytest.fixture
def redis(redis_server: RedisServer) -> Iterator[Redis]:
    if redis_server.process is None:
        redis_server.start()
    redis_server.flush()
    client = Redis.from_url(redis_server.url)
    yield client
    client.close()


@pytest.fixture
def service(
    tmp_path: Path, sandbox: RunningSandbox, state_url: str, redis: Redis, redis_server: RedisServer
) -> Iterator[Service]:
    running = Service(tmp_path, sandbox, state_url, redis_server.url)
    try:
        yield running
    finally:
        running.stop()


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
        sandbox.kukkingu_app.faults.add(FaultSpec(kind="latency", ms=150))  # syncs take seconds
        service.worker("w1")
        service.worker("w2")
        service.enqueue(*SOURCES, *SOURCES, "jira-demo")

        # kill -9 the process running the Jira sync, in the middle of it
        wait_until(
            lambda: redis.get(running_key("jira-demo")) is not None, 60, service, "a running sync"
        )
        marker = redis.get(running_key("jira-demo"))
        assert marker is not None
        text = marker.decode() if isinstance(marker, bytes) else str(marker)
        pid = int(text.split(":")[1])
        time.sleep(1.0)
        os.kill(pid, signal.SIGKILL)
        killed_at = datetime.now(UTC)

        # while the redelivered sync runs, restart Redis
        wait_until(
            lambda: (
                redis.get(running_key("github-demo")) is not None
                or redis.get(running_key("jira-demo")) is not None
            ),
            60,
            service,
            "a sync after the kill",
        )
        redis_server.restart()

        sandbox.kukkingu_app.faults.clear()
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
        assert any(st == "running" for _, _, st, _, _ in all_runs), (
            "the killed run stays as it died"
        )
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
        sandbox.kukkingu_app.faults.add(FaultSpec(kind="latency", ms=150))  # a run takes seconds
        service.worker("w1")
        service.enqueue("jira-demo")
        wait_until(
            lambda: redis.get(running_key("jira-demo")) is not None, 60, service, "a running sync"
        )
        marker = redis.get(running_key("jira-demo"))
        assert isinstance(marker, bytes)
        time.sleep(1.0)
        os.kill(int(marker.decode().split(":")[1]), signal.SIGKILL)
        killed_at = datetime.now(UTC)
        redis_server.restart()
        sandbox.kukkingu_app.faults.clear()

        def resumed() -> bool:
            return any(
                n == "jira-demo" and st == "succeeded" and a > killed_at
                for n, _, st, a, _ in runs(factory)
            )

        # resumed by its own message when the worker could give it back in time, else by
        # a worker's sweep of owed syncs ("sending it again" in the log)
        wait_until(resumed, 90, service, "the killed sync, resumed")
        wait_until(lambda: redis.get(owed_key("jira-demo")) is None, 30, service, "nothing owed")
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
            60,
            service,
            "the owed sync",
        )
        assert "sending it again" in service.logs()
        wait_until(lambda: redis.get(owed_key("jira-demo")) is None, 30, service, "nothing owed")
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
        sandbox.kukkingu_app.faults.add(FaultSpec(kind="latency", ms=150))  # a run takes seconds
        service.worker("w1")
        service.worker("w2")  # the one free to take the requests made during the run
        service.enqueue("jira-demo")
        wait_until(
            lambda: redis.get(running_key("jira-demo")) is not None, 60, service, "a running sync"
        )
        service.enqueue("jira-demo", "jira-demo")  # while it runs: one follow-up is owed
        wait_until(
            lambda: redis.get(pending_key("jira-demo")) is not None, 30, service, "the request"
        )
        time.sleep(1.0)  # let the worker settle whatever it does with the requests
        redis_server.restart()
        restarted_at = datetime.now(UTC)
        sandbox.kukkingu_app.faults.clear()

        def follow_up_done() -> bool:
            return (
                any(
                    n == "jira-demo" and st == "succeeded" and a > restarted_at
                    for n, _, st, a, _ in runs(factory)
                )
                and redis.get(running_key("jira-demo")) is None
            )

        wait_until(follow_up_done, 120, service, "the follow-up after the restart")
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
