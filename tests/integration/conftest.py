"""Fixtures of the tests that run billsync as processes: the sandboxes on free ports, a
PostgreSQL database, the session's redis-server (flushed, started again if a test stopped
it), and a :class:`Service` whose processes are stopped (and logs kept on failure) by the
fixture. Plus the hold helpers: a sync stopped in the middle of its writes, as an event."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from redis import Redis

from sandbox.common.faults import FaultMatch, FaultSpec
from sandbox.main import RunningSandbox, start_sandbox
from tests.conftest import FAILED
from tests.support.postgres import Cluster
from tests.support.redis import RedisServer
from tests.support.service import Service
from worker.locks import running_key
from worker.store import upgrade


@pytest.fixture
def sandbox() -> Iterator[RunningSandbox]:
    with start_sandbox(kukkingu_port=0, jira_port=0, github_port=0, cliniko_port=0) as running:
        yield running


@pytest.fixture
def state_url(postgres_cluster: Cluster) -> Iterator[str]:
    name = postgres_cluster.create_database()
    url = postgres_cluster.sqlalchemy_url(name)
    upgrade(url)
    yield url
    postgres_cluster.drop_database(name)


@pytest.fixture
def service(
    request: pytest.FixtureRequest,
    tmp_path: Path,
    sandbox: RunningSandbox,
    state_url: str,
    redis: Redis,
    redis_server: RedisServer,
) -> Iterator[Service]:
    running = Service(tmp_path, sandbox, state_url, redis_server.url)
    try:
        yield running
    finally:
        running.stop()
        if request.node.stash.get(FAILED, False):
            print(running.logs())  # shown with the failure; whole logs kept in test-logs/


def hold_writes(sandbox: RunningSandbox) -> None:
    """Kukkingu holds every POST until released: a sync stops in the middle of its writes,
    for as long as the test needs, and a held write whose process is killed is dropped."""
    sandbox.kukkingu_app.faults.add(FaultSpec(kind="hold", match=FaultMatch(method="POST")))


def release_writes(sandbox: RunningSandbox) -> None:
    sandbox.kukkingu_app.faults.clear()


def holder(redis: Redis, source: str) -> int | None:
    """The pid in ``source``'s running marker (``host:pid:task``), if there is one."""
    marker = redis.get(running_key(source))
    return None if not isinstance(marker, bytes) else int(marker.decode().split(":")[1])


def writing(sandbox: RunningSandbox, redis: Redis, source: str, other_than: int = 0) -> bool:
    """A sync of ``source`` runs (in a process other than ``other_than``) and its writes are
    held (one or more: a sync sends up to ``[kukkingu] concurrency`` at once)."""
    pid = holder(redis, source)
    return pid is not None and pid != other_than and sandbox.kukkingu_app.faults.held() >= 1
