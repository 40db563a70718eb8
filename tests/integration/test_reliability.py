"""Reliability under faults, with real processes: randomized fault schedules over all three
sandboxes, two `billsync worker` processes, PostgreSQL and a real redis-server.

Each schedule, from its seed:

1. generates a workload (a Jira site and three GitHub repositories of seed-dependent size)
   and what changes between rounds (worklogs and comments edited, deleted and added through
   the sandboxes' admin API);
2. the **reference**: a fresh sandbox and a fresh database, one inline `billsync sync` per
   round, no faults;
3. the **chaos run**: a fresh sandbox and database, two workers, several rounds of enqueued
   syncs of both sources while the driver injects random HTTP faults on Jira, GitHub and
   Kukkingu routes (500, 429 with Retry-After, latency, commit-then-drop), `kill -9` of the
   process running a sync (a new worker replaces a killed one) and Redis restarts;
4. clears the faults and converges: fresh syncs are enqueued until a run of each source that
   started after the faults were cleared has succeeded (a retry parked in a worker as a
   countdown message is dropped when Redis restarts; workers resend such owed syncs once
   they are due, but the suite does not wait for that);
5. checks SPEC §5 (Kukkingu's invariants, Kukkingu == the ledger, a dry run finds nothing to
   write) and compares Kukkingu's billables per invoice with the reference: lines beyond it
   or sharing a reference are duplicates, reference lines missing are lost. Lines of
   quantity 0 and amount 0 are left out: a deleted entry leaves one only if a sync wrote
   its line before the deletion, which depends on timing, not on correctness.

The fault *schedule* (which faults, kills and restarts, and when) is a function of the seed;
how it interleaves with the processes is not. ``BILLSYNC_RELIABILITY_SCHEDULES`` sets how many
schedules run (default 2), ``BILLSYNC_RELIABILITY_SEED`` the first seed (default 0): a failing
schedule prints its seed, and ``BILLSYNC_RELIABILITY_SEED=<seed>
BILLSYNC_RELIABILITY_SCHEDULES=1`` replays it.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import SecretStr
from redis import Redis
from redis.backoff import ExponentialBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.retry import Retry
from sqlalchemy import create_engine
from sqlalchemy.orm import sessionmaker

from connectors.kukkingu import KukkinguClient
from sandbox.cliniko.app import create_app as create_cliniko_app
from sandbox.cliniko.state import ClinikoState
from sandbox.common.faults import FaultKind, FaultMatch, FaultSpec
from sandbox.github.app import create_app as create_github_app
from sandbox.github.dataset import generate as generate_github
from sandbox.github.dataset import repo_names
from sandbox.github.state import GitHubState
from sandbox.jira.app import create_app as create_jira_app
from sandbox.jira.dataset import generate as generate_jira
from sandbox.jira.seed import WORKER_IDS
from sandbox.jira.state import JiraState
from sandbox.kukkingu import KukkinguState, create_app
from sandbox.main import RunningSandbox
from sandbox.server import ServerThread
from tests.support.billing import KukkinguSnapshot, snapshot
from tests.support.postgres import Cluster, free_port
from tests.support.redis import RedisServer
from tests.support.service import (
    BILLSYNC,
    PROCESS_DEADLINE,
    SOURCES,
    RunRow,
    Service,
    assert_exactly_once,
    assert_never_overlapping,
    keep_logs,
    runs,
    wait_until,
)
from worker.locks import pending_key, running_key
from worker.store import upgrade

pytestmark = pytest.mark.postgres

SCHEDULES = int(os.environ.get("BILLSYNC_RELIABILITY_SCHEDULES", "2"))
FIRST_SEED = int(os.environ.get("BILLSYNC_RELIABILITY_SEED", "0"))
ANCHOR = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)  # the sandboxes' frozen "now"
ROUNDS = 3
CONVERGE_TIMEOUT = 600.0  # generous: a loaded machine is slow, and this only bounds a hang
KINDS: tuple[FaultKind, ...] = ("error500", "rate_limit", "latency", "drop_after_commit")
GITHUB_SPEND = ("/spend 1h", "/spend 45m", "/spend 2h30m", "/spend 15m", "/spend 3h")

# the API routes a sync uses (the request counters of a fault-free run), faults aim at them
ROUTES: dict[str, list[tuple[str, str]]] = {
    "kukkingu": [
        ("GET", "/api/v1/billables"),
        ("GET", "/api/v1/invoices"),
        ("POST", "/api/v1/billables"),
        ("POST", "/api/v1/invoices"),
        ("PUT", "/api/v1/billables/{billableId}"),
        ("PUT", "/api/v1/invoices/{invoiceId}"),
    ],
    "jira": [
        ("GET", "/rest/api/2/myself"),
        ("GET", "/rest/api/2/search/jql"),
        ("GET", "/rest/api/2/worklog/deleted"),
        ("GET", "/rest/api/2/worklog/updated"),
        ("POST", "/rest/api/2/worklog/list"),
    ],
    "github": [
        ("GET", "/repos/{owner}/{repo}/issues"),
        ("GET", "/repos/{owner}/{repo}/issues/comments"),
        ("GET", "/repos/{owner}/{repo}/issues/{number}/comments"),
    ],
}

Line = tuple[str, str, str, int]  # referenceType, referenceId, quantity, amountMinor


@dataclass
class Workload:
    """The source data of one schedule and its changes between rounds; identical for the
    reference and the chaos run."""

    seed: int

    def __post_init__(self) -> None:
        rng = random.Random(self.seed)
        self.jira_issues = rng.randint(6, 18)
        self.jira_worklogs = rng.randint(25, 90)
        self.github_issues = rng.randint(6, 15)
        self.github_comments = rng.randint(20, 70)

    @contextmanager
    def sandbox(self) -> Iterator[RunningSandbox]:
        """Fresh Kukkingu, Jira and GitHub sandboxes seeded with the workload, clocks frozen."""
        with ExitStack() as stack:
            kukkingu_app = create_app(KukkinguState(rng_seed=0))
            kukkingu = stack.enter_context(ServerThread(kukkingu_app))
            jira_data = generate_jira(
                self.seed, issues=self.jira_issues, worklogs=self.jira_worklogs, anchor=ANCHOR
            )
            jira_app = create_jira_app(JiraState(now=ANCHOR), seed=jira_data)
            jira = stack.enter_context(ServerThread(jira_app))
            github_data = generate_github(
                self.seed, issues=self.github_issues, comments=self.github_comments, anchor=ANCHOR
            )
            github_app = create_github_app(GitHubState(now=ANCHOR), seed=github_data)
            github = stack.enter_context(ServerThread(github_app, date_header=False))
            cliniko_app = create_cliniko_app(ClinikoState())  # unused by these rules
            cliniko = stack.enter_context(ServerThread(cliniko_app, date_header=False))
            yield RunningSandbox(
                kukkingu_app, kukkingu, jira_app, jira, github_app, github, cliniko_app, cliniko
            )

    def change(self, sandbox: RunningSandbox, round_: int) -> None:
        """Round ``round_``'s edits, deletions and new work, through the admin API; then the
        clocks move on so the feeds list them (Jira hides its last minute)."""
        rng = random.Random(self.seed * 1000 + round_)
        jira_admin = f"{sandbox.jira.url}/_sandbox"
        github_admin = f"{sandbox.github.url}/_sandbox"
        worklogs = sorted(w.id for w in sandbox.jira_app.state.iter_worklogs())
        issues = sorted(i.key for i in sandbox.jira_app.state.issues())
        comments: list[tuple[int, str, int]] = []
        for name, _ in repo_names(3):
            repo = sandbox.github_app.state.repo(name)
            comments += [
                (c.id, name, c.issue_number)
                for c in sandbox.github_app.state.repo_comments(repo.id)
            ]
        comments.sort()
        with httpx.Client(timeout=10) as http:
            for worklog_id in rng.sample(worklogs, k=min(len(worklogs), rng.randint(1, 4))):
                if rng.random() < 0.4:
                    answer = http.delete(f"{jira_admin}/worklogs/{worklog_id}")
                else:
                    seconds = rng.randint(1, 16) * 15 * 60
                    answer = http.put(
                        f"{jira_admin}/worklogs/{worklog_id}", json={"timeSpentSeconds": seconds}
                    )
                answer.raise_for_status()
            for _ in range(rng.randint(0, 3)):
                started = ANCHOR - timedelta(days=rng.randint(1, 20), hours=rng.randint(0, 6))
                answer = http.post(
                    f"{jira_admin}/worklogs",
                    json={
                        "issue": rng.choice(issues),
                        "accountId": rng.choice(WORKER_IDS),
                        "started": started.isoformat(),
                        "timeSpentSeconds": rng.randint(1, 12) * 15 * 60,
                    },
                )
                answer.raise_for_status()
            for comment_id, _, _ in rng.sample(comments, k=min(len(comments), rng.randint(1, 4))):
                if rng.random() < 0.4:
                    answer = http.delete(f"{github_admin}/comments/{comment_id}")
                else:
                    body = f"Reworked.\n{rng.choice(GITHUB_SPEND)}"
                    answer = http.patch(
                        f"{github_admin}/comments/{comment_id}", json={"body": body}
                    )
                answer.raise_for_status()
            for _ in range(rng.randint(0, 3)):
                _, repo_name, number = rng.choice(comments)
                answer = http.post(
                    f"{github_admin}/comments",
                    json={
                        "repo": repo_name,
                        "issue": number,
                        "body": f"More work.\n{rng.choice(GITHUB_SPEND)}",
                    },
                )
                answer.raise_for_status()
            for admin in (jira_admin, github_admin):
                http.post(f"{admin}/clock", json={"advance": 180}).raise_for_status()


def lines_of(shot: KukkinguSnapshot) -> dict[str, list[Line]]:
    return {
        number: [
            (b["referenceType"], b["referenceId"], str(b["quantity"]), b["amountMinor"])
            for b in items
        ]
        for number, items in shot.billables.items()
        if shot.invoices[number]["status"] == "DRAFT"
    }


def zero(line: Line) -> bool:
    """A line that bills nothing: what an entry deleted after it was written leaves behind
    (Kukkingu cannot delete a billable). Whether one exists depends on whether a sync saw
    the entry before it went, so such lines are left out of the comparison."""
    return line[3] == 0 and float(line[2]) == 0


def compare(
    reference: dict[str, list[Line]], result: dict[str, list[Line]]
) -> tuple[list[str], list[str]]:
    """(duplicates, lost): lines beyond the reference's or sharing a reference on their
    invoice; reference lines that are missing. Each as "invoice: line"."""
    duplicates: list[str] = []
    lost: list[str] = []
    for number in sorted(set(reference) | set(result)):
        owed = Counter(line for line in reference.get(number, []) if not zero(line))
        seen: set[tuple[str, str]] = set()
        for line in result.get(number, []):
            if line[:2] in seen or (owed[line] == 0 and not zero(line)):
                duplicates.append(f"{number}: {line}")
            elif not zero(line):
                owed[line] -= 1
            seen.add(line[:2])
        lost += [f"{number}: {line}" for line in sorted(owed.elements())]
    return duplicates, lost


def kukkingu_snapshot(sandbox: RunningSandbox) -> KukkinguSnapshot:
    info = sandbox.info()["kukkingu"]
    with KukkinguClient(info["baseUrl"], info["tenantId"], SecretStr(info["token"])) as kk:
        return snapshot(kk)


@dataclass
class Tally:
    runs: int = 0
    faults: Counter[str] = field(default_factory=Counter)
    kills: int = 0
    restarts: int = 0
    duplicates: int = 0
    lost: int = 0

    def add(self, other: Tally) -> None:
        self.runs += other.runs
        self.faults.update(other.faults)
        self.kills += other.kills
        self.restarts += other.restarts
        self.duplicates += other.duplicates
        self.lost += other.lost

    def line(self, what: str) -> str:
        kinds = ", ".join(f"{n} {kind}" for kind, n in sorted(self.faults.items()))
        return (
            f"{what}, {self.runs} runs, {self.faults.total()} faults injected ({kinds}), "
            f"{self.kills} kills, {self.restarts} redis restarts, "
            f"{self.duplicates} duplicates, {self.lost} lost lines"
        )


def reference_run(workload: Workload, tmp: Path, url: str) -> dict[str, list[Line]]:
    """The workload synced inline once per round, without faults: what Kukkingu must hold.
    No Redis answers at its broker URL, so it runs unlocked, beside the chaos run."""
    with workload.sandbox() as sandbox:
        service = Service(tmp, sandbox, url, f"redis://127.0.0.1:{free_port()}/0")
        for round_ in range(ROUNDS):
            if round_:
                workload.change(sandbox, round_)
            result = service.sync()
            assert result.returncode == 0, result.stdout + result.stderr
        return lines_of(kukkingu_snapshot(sandbox))


class Chaos:
    """The fault driver of one chaos run: every choice comes from the schedule's seed."""

    def __init__(
        self,
        seed: int,
        sandbox: RunningSandbox,
        service: Service,
        redis_server: RedisServer,
        redis: Redis,
    ) -> None:
        self.rng = random.Random(seed * 7919 + 1)
        self.sandbox = sandbox
        self.service = service
        self.redis_server = redis_server
        self.redis = redis
        self.kills: list[tuple[str, datetime]] = []
        self.enqueued: list[subprocess.Popen[bytes]] = []
        self.tally = Tally()
        self.workers = 0
        self.max_kills = self.rng.randint(1, 3)
        self.max_restarts = self.rng.randint(0, 2)

    def enqueue(self, *sources: str) -> None:
        """`billsync enqueue`, without waiting for it (a process start takes a second)."""
        self.enqueued.append(
            subprocess.Popen(
                [BILLSYNC, "-c", str(self.service.config), "enqueue"]
                + [f"--source={source}" for source in sources],
                env=self.service.env,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
        )

    def settle(self) -> None:
        for process in self.enqueued:
            assert process.wait(PROCESS_DEADLINE) == 0, "billsync enqueue failed"
        self.enqueued.clear()

    def start_worker(self) -> None:
        self.workers += 1
        self.service.worker(f"w{self.workers}")

    def fault(self, target: str, kind: FaultKind, draw: random.Random) -> None:
        faults = {
            "kukkingu": self.sandbox.kukkingu_app.faults,
            "jira": self.sandbox.jira_app.faults,
            "github": self.sandbox.github_app.faults,
        }[target]
        match = FaultMatch()
        if draw.random() < 0.8:
            method, route = draw.choice(ROUTES[target])
            match = FaultMatch(method=method, route=route)
        count = draw.randint(1, 3)
        if kind == "latency":
            spec = FaultSpec(kind=kind, ms=draw.randint(100, 800), count=count, match=match)
        elif kind == "rate_limit":
            wait = draw.choice((0, 1, 1, 2, 8))  # 8: above Kukkingu's max wait, a retry
            spec = FaultSpec(kind=kind, retry_after=wait, count=count, match=match)
        else:
            spec = FaultSpec(kind=kind, count=count, match=match)
        faults.add(spec)
        self.tally.faults[f"{target} {kind}"] += 1

    def kill(self, source: str) -> None:
        if self.tally.kills >= self.max_kills:
            return
        marker = self.redis.get(running_key(source))
        if marker is None:
            return
        text = marker.decode() if isinstance(marker, bytes) else str(marker)
        pid = int(text.split(":")[1])
        masters = {p.pid: name for name, p in self.service.processes.items() if p.poll() is None}
        if pid not in masters and parent_pid(pid) not in masters:
            return  # a stale marker, or not one of ours: leave it alone
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            return
        self.tally.kills += 1
        self.kills.append((source, datetime.now(UTC)))
        if pid in masters:
            self.service.processes[masters[pid]].wait(10)
            self.start_worker()  # the worker itself died: a new one takes its place

    def restart_redis(self) -> None:
        if self.tally.restarts >= self.max_restarts:
            return
        self.redis_server.restart()
        self.tally.restarts += 1

    def round(self) -> None:
        """One round of syncs, with faults, kills and restarts between short pauses. Every
        draw is made whatever the processes do, so the schedule depends on the seed only."""
        self.enqueue(*SOURCES)
        if self.rng.random() < 0.5:
            self.enqueue(self.rng.choice(SOURCES))  # coalesced with the running one
        for _ in range(self.rng.randint(5, 10)):
            action = self.rng.choices(
                ("fault", "kill", "restart", "enqueue", "wait"), weights=(6, 2, 1, 1, 2)
            )[0]
            target = self.rng.choice(("kukkingu", "kukkingu", "jira", "github"))
            kind = self.rng.choice(KINDS)
            source = self.rng.choice(SOURCES)
            draw = random.Random(self.rng.getrandbits(32))
            pause = self.rng.uniform(0.2, 0.7)
            if action == "fault":
                self.fault(target, kind, draw)
            elif action == "kill":
                self.kill(source)
            elif action == "restart":
                self.restart_redis()
            elif action == "enqueue":
                self.enqueue(source)
            time.sleep(pause)
        self.settle()

    def clear(self) -> None:
        for app in (self.sandbox.kukkingu_app, self.sandbox.jira_app, self.sandbox.github_app):
            app.faults.clear()


def parent_pid(pid: int) -> int | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return int(stat.rsplit(")", 1)[1].split()[1])


def chaos_run(
    workload: Workload,
    tmp: Path,
    cluster: Cluster,
    redis_server: RedisServer,
) -> tuple[Tally, dict[str, list[Line]], list[str]]:
    """The workload under faults; (what happened, Kukkingu's lines, SPEC §5 violations)."""
    name = cluster.create_database()
    url = cluster.sqlalchemy_url(name)
    upgrade(url)
    if redis_server.process is None:
        redis_server.start()
    redis_server.flush()
    redis = Redis.from_url(
        redis_server.url,
        retry=Retry(ExponentialBackoff(cap=1.0, base=0.1), 15),
        retry_on_error=[RedisConnectionError],
    )
    engine = create_engine(url)
    factory = sessionmaker(engine)
    try:
        with workload.sandbox() as sandbox:
            service = Service(tmp, sandbox, url, redis_server.url)
            chaos = Chaos(workload.seed, sandbox, service, redis_server, redis)
            try:
                chaos.start_worker()
                chaos.start_worker()
                for round_ in range(ROUNDS):
                    if round_:
                        workload.change(sandbox, round_)
                    chaos.round()
                chaos.clear()
                converge(service, factory, redis, datetime.now(UTC))
                chaos.tally.runs = len(runs(factory))
            finally:
                service.stop()
            result = lines_of(kukkingu_snapshot(sandbox))
            problems = []
            try:
                assert_never_overlapping(ended(runs(factory), chaos.kills))
                assert_exactly_once(factory, sandbox, service)
            except AssertionError as error:
                problems.append(f"SPEC §5: {error} (whole logs: {keep_logs(tmp)})")
            return chaos.tally, result, problems
    finally:
        redis.close()
        engine.dispose()
        cluster.drop_database(name)


def ended(all_runs: list[RunRow], kills: list[tuple[str, datetime]]) -> list[RunRow]:
    """The runs, a run its worker died in ending at the kill (it never records its end)."""
    done = []
    for source, trigger, status, start, end in all_runs:
        if end is None or status == "interrupted":  # closed when noticed, not when killed
            end = min((at for s, at in kills if s == source and at > start), default=end)
        done.append((source, trigger, status, start, end))
    return done


def converge(
    service: Service, factory: sessionmaker[Any], redis: Redis, cleared_at: datetime
) -> None:
    """Enqueue fresh syncs until a run of each source started after the faults were cleared
    has succeeded, then wait for follow-ups to drain."""
    deadline = time.monotonic() + CONVERGE_TIMEOUT

    def synced() -> bool:
        return all(
            any(n == s and st == "succeeded" and a > cleared_at for n, _, st, a, _ in runs(factory))
            for s in SOURCES
        )

    while not synced():
        if time.monotonic() > deadline:
            raise AssertionError(f"no fault-free sync of each source converged\n{service.logs()}")
        service.enqueue(*SOURCES)
        wait_for = time.monotonic() + 20
        while time.monotonic() < wait_for and not synced():
            time.sleep(0.3)

    def quiet() -> bool:
        return not any(redis.get(running_key(s)) or redis.get(pending_key(s)) for s in SOURCES)

    wait_until(quiet, 120, service, "no sync running or pending")
    time.sleep(1.0)
    wait_until(quiet, 120, service, "no sync running or pending")


@pytest.mark.timeout(300 + 300 * SCHEDULES)  # a hang guard, generous for a loaded machine
def test_randomized_process_faults_lose_and_double_nothing(
    postgres_cluster: Cluster,
    redis_server: RedisServer,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    totals = Tally()
    failures: list[str] = []
    started = time.monotonic()
    with ThreadPoolExecutor(1) as pool:
        for seed in range(FIRST_SEED, FIRST_SEED + SCHEDULES):
            workload = Workload(seed)
            database = postgres_cluster.create_database()
            url = postgres_cluster.sqlalchemy_url(database)
            upgrade(url)  # here: Alembic is not thread-safe
            reference = pool.submit(reference_run, workload, tmp_path / f"ref{seed}", url)
            try:
                tally, result, problems = chaos_run(
                    workload, tmp_path / f"chaos{seed}", postgres_cluster, redis_server
                )
            except AssertionError as error:  # a hang: no convergence
                failures.append(f"schedule {seed}: {str(error)[:4000]}")
                continue
            finally:
                reference.exception()  # wait for it
                postgres_cluster.drop_database(database)
            duplicates, lost = compare(reference.result(), result)
            tally.duplicates, tally.lost = len(duplicates), len(lost)
            totals.add(tally)
            if duplicates or lost:
                problems.insert(
                    0,
                    tally.line("differs from the reference")
                    + "".join(f"\n  duplicate {line}" for line in duplicates[:20])
                    + "".join(f"\n  lost {line}" for line in lost[:20]),
                )
            failures += [f"schedule {seed}: {problem}" for problem in problems]
    with capsys.disabled():
        print(
            "\n"
            + totals.line(f"reliability: {SCHEDULES} schedules")
            + f" in {time.monotonic() - started:.0f} s"
        )
        for failure in failures:
            seed_text = failure.split()[1].rstrip(":")
            print(
                f"reliability FAILED {failure.splitlines()[0]} (replay: "
                f"BILLSYNC_RELIABILITY_SEED={seed_text} BILLSYNC_RELIABILITY_SCHEDULES=1)"
            )
    assert not failures, "\n\n".join(failures)
    assert totals.faults.total() > 0
