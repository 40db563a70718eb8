"""billsync as a service, with real processes: a redis-server, two `billsync worker`
processes, `billsync beat` (twice, by mistake), a PostgreSQL state store and the sandboxes.

- on-demand syncs racing each other (and the schedule) never overlap for one source;
- `kill -9` of the process running a sync: the message is redelivered, the sync finishes
  elsewhere, and SPEC §5 holds (nothing doubled, nothing lost);
- a Redis restart in the middle of a run loses nothing;
- two beats schedule each run once.
"""

from __future__ import annotations

import itertools
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import IO

import pytest
from pydantic import SecretStr
from redis import Redis
from sqlalchemy import create_engine, select
from sqlalchemy.orm import Session, sessionmaker

from connectors.kukkingu import KukkinguClient
from sandbox.common.faults import FaultSpec
from sandbox.main import RunningSandbox, start_sandbox
from tests.support.billing import check_invariants, snapshot
from tests.support.postgres import Cluster
from tests.support.redis import RedisServer
from worker.ledger import content_of
from worker.locks import pending_key, running_key
from worker.store import Draft, DraftStatus, Line, Run, Source, upgrade

pytestmark = pytest.mark.postgres

ROOT = Path(__file__).resolve().parents[2]
BILLSYNC = str(Path(sys.executable).parent / "billsync")
SOURCES = ("jira-demo", "github-demo")


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


class Service:
    """The config file and the billsync processes of one test."""

    def __init__(self, tmp: Path, sandbox: RunningSandbox, state_url: str, broker_url: str) -> None:
        self.tmp = tmp
        text = (ROOT / "examples" / "sandbox.toml").read_text()
        for old, new in (
            ("http://127.0.0.1:8730", sandbox.kukkingu.url),
            ("http://127.0.0.1:8731", sandbox.jira.url),
            ("http://127.0.0.1:8732", sandbox.github.url),
            ('env_file = "sandbox.env"', f'env_file = "{ROOT}/examples/sandbox.env"'),
            ("sqlite:///billsync-demo.db", state_url),
            ('url = "redis://127.0.0.1:6379/0"', f'url = "{broker_url}"\nlock_ttl_seconds = 4'),
            ('schedule = "*/5 * * * *"', 'schedule = "* * * * *"'),
            ('schedule = "*/10 * * * *"', 'schedule = "* * * * *"'),
        ):
            assert old in text, old
            text = text.replace(old, new)
        self.config = tmp / "billsync.toml"
        self.config.write_text(text)
        self.processes: dict[str, subprocess.Popen[bytes]] = {}
        self.log_files: list[IO[bytes]] = []
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("BILLSYNC_")}

    def start(self, name: str, *args: str) -> None:
        log = (self.tmp / f"{name}.log").open("wb")
        self.log_files.append(log)
        self.processes[name] = subprocess.Popen(
            [BILLSYNC, "-c", str(self.config), *args],
            stdout=log,
            stderr=subprocess.STDOUT,
            env=self.env,
            cwd=self.tmp,
        )

    def worker(self, name: str) -> None:
        self.start(
            name, "worker", "--concurrency", "1", "--name", f"{name}@%h", "--loglevel", "INFO"
        )

    def beat(self, name: str) -> None:
        self.start(name, "beat", "--schedule-file", str(self.tmp / f"{name}-schedule"))

    def enqueue(self, *sources: str) -> None:
        for source in sources:
            result = subprocess.run(
                [BILLSYNC, "-c", str(self.config), "enqueue", "--source", source],
                env=self.env,
                capture_output=True,
                text=True,
                timeout=60,
                check=False,
            )
            assert result.returncode == 0, result.stderr

    def dry_run(self) -> str:
        result = subprocess.run(
            [BILLSYNC, "-c", str(self.config), "sync", "--dry-run"],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert result.returncode == 0, result.stderr
        return result.stdout

    def logs(self) -> str:
        return "\n".join(
            f"--- {p.name}\n{p.read_text(errors='replace')[-3000:]}" for p in self.tmp.glob("*.log")
        )

    def stop(self) -> None:
        for process in self.processes.values():
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in self.processes.values():
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(10)
        for log in self.log_files:
            log.close()


@pytest.fixture
def service(
    tmp_path: Path, sandbox: RunningSandbox, state_url: str, redis: Redis, redis_server: RedisServer
) -> Iterator[Service]:
    running = Service(tmp_path, sandbox, state_url, redis_server.url)
    try:
        yield running
    finally:
        running.stop()


def wait_until(condition: Callable[[], bool], timeout: float, service: Service, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}\n{service.logs()}")
        time.sleep(0.2)


def runs(factory: sessionmaker[Session]) -> list[tuple[str, str, str, datetime, datetime | None]]:
    with factory() as session:
        rows = session.execute(
            select(Source.name, Run.trigger, Run.status, Run.started_at, Run.finished_at)
            .join(Source, Source.id == Run.source_id)
            .order_by(Run.id)
        )
        return [(n, t.value, s.value, a, b) for n, t, s, a, b in rows]


def assert_never_overlapping(
    all_runs: list[tuple[str, str, str, datetime, datetime | None]],
    killed_at: datetime | None = None,
) -> None:
    for source in SOURCES:
        spans = sorted(
            (a, b or killed_at or datetime.now(UTC)) for n, _, _, a, b in all_runs if n == source
        )
        for (_, end), (start, _) in itertools.pairwise(spans):
            assert start >= end, f"{source}: a run started at {start} before another ended at {end}"


def assert_exactly_once(
    factory: sessionmaker[Session], sandbox: RunningSandbox, service: Service
) -> None:
    """SPEC §5 on Kukkingu, and Kukkingu == the ledger: no orphan (doubled) billable, no
    missing (lost) one; a dry run finds nothing left to write."""
    info = sandbox.info()["kukkingu"]
    with KukkinguClient(info["baseUrl"], info["tenantId"], SecretStr(info["token"])) as kk:
        shot = snapshot(kk)
        assert check_invariants(shot) == []
        stored = {b["id"]: b for items in shot.billables.values() for b in items}
        with factory() as session:
            rows = session.scalars(
                select(Line)
                .join(Draft, Draft.id == Line.draft_id)
                .where(Draft.status == DraftStatus.DRAFT)
            ).all()
            ledger = {line.kukkingu_id: content_of(line) for line in rows}
    assert None not in ledger, "a recorded line was never written"
    assert set(stored) == set(ledger), "Kukkingu and the ledger disagree (doubled or lost lines)"
    for billable_id, content in ledger.items():
        b = stored[billable_id]
        assert (b["referenceId"], b["amountMinor"]) == (content.reference_id, content.amount_minor)
    plan = service.dry_run()
    assert plan.count("nothing to write to Kukkingu") == len(SOURCES), plan


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
