"""``billsync bench --webhooks``: how long an edit takes to reach Kukkingu (SPEC §12).

The bench seeds the Jira sandbox with a dataset of the chosen size, syncs it once, then
runs what production runs: a throwaway ``redis-server``, one ``billsync worker``
(concurrency 1) as a child process, and the dashboard in this process, to which the Jira
sandbox sends a signed webhook for each admin edit. No beat runs. It then edits worklogs
one at a time (a GLX worklog, one line each: 15 minutes more) and measures, per edit, the
time from the edit's answer to the moment Kukkingu's billable shows the new time (polled
every 50 ms). It reports p50, p95 and the slowest.

The scheduled sync's latency is not measured (it would take one crontab interval per
edit): an edit waits for the next run, uniformly within the interval, then one sync. The
report computes it from the source's interval and the median duration of the webhook syncs
just measured (a sync that reads what changed since the last one costs the same however it
was started), and says so.
"""

from __future__ import annotations

import math
import os
import random
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from pydantic import SecretStr
from redis import Redis
from sqlalchemy import select

from connectors.kukkingu import KukkinguClient
from sandbox.common.webhooks import WebhookSender
from sandbox.jira import dataset as jira_dataset
from sandbox.main import start_sandbox
from sandbox.server import ServerThread
from worker.bench import SIZES, Size, _write_config, commit, machine
from worker.config import load_config
from worker.store import Run, Source, make_engine, session_factory, upgrade

SECRET = "bench-webhook-secret-000000001"  # noqa: S105 - the bench's own throwaway stack
SOURCE = "jira-bench"
SCHEDULE_SECONDS = 15 * 60  # the bench config's source keeps the default "*/15 * * * *"
DEADLINE = 300.0  # seconds one edit may take before the bench gives up
POLL = 0.05


@dataclass(frozen=True)
class HookResult:
    size: Size
    commit: str
    machine: str
    edits: int
    latencies: list[float]  # seconds, edit to billable
    sync_seconds: list[float]  # each webhook run's duration
    runs: int

    def percentile(self, fraction: float) -> float:
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, max(0, math.ceil(fraction * len(ordered)) - 1))]

    def lines(self) -> Iterator[str]:
        sync = statistics.median(self.sync_seconds) if self.sync_seconds else 0.0
        yield (
            f"size {self.size.name} ({self.size.worklogs:,} worklogs), commit {self.commit}, "
            f"{self.machine}"
        )
        yield (
            f"webhook: {self.edits} edits, edit to billable p50 {self.percentile(0.5):.2f} s, "
            f"p95 {self.percentile(0.95):.2f} s, slowest {max(self.latencies):.2f} s "
            f"({self.runs} webhook runs; a run took {sync:.2f} s, median)"
        )
        interval = SCHEDULE_SECONDS
        yield (
            f"scheduled (computed, not measured: every {interval // 60} min, a wait uniform "
            f"within the interval, then one sync of {sync:.2f} s): "
            f"p50 {interval * 0.5 + sync:.0f} s, p95 {interval * 0.95 + sync:.0f} s"
        )


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@contextmanager
def _redis_server(workdir: Path) -> Iterator[str]:
    """A throwaway redis-server on a free port (no persistence); its URL."""
    binary = shutil.which("redis-server")
    if binary is None:
        raise RuntimeError("redis-server is not installed (make installs it: `make venv`)")
    port = _free_port()
    folder = Path(tempfile.mkdtemp(prefix="bench-redis-", dir=workdir))
    process = subprocess.Popen(  # noqa: S603
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--dir", str(folder)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"redis://127.0.0.1:{port}/0"
    try:
        client = Redis.from_url(url)
        deadline = time.monotonic() + 30
        while True:
            try:
                client.ping()
                break
            except Exception:
                if time.monotonic() > deadline or process.poll() is not None:
                    raise RuntimeError("redis-server did not start") from None
                time.sleep(0.05)
        client.close()
        yield url
    finally:
        process.terminate()
        process.wait(10)
        shutil.rmtree(folder, ignore_errors=True)


def _targets(client: KukkinguClient) -> dict[str, tuple[str, int]]:
    """GLX worklog id -> (its billable's id, raw seconds): one line per worklog."""
    found: dict[str, tuple[str, int]] = {}
    for invoice in client.list_invoices():
        if invoice.status != "DRAFT":
            continue
        for line in client.list_billables(invoice.id):
            reference = line.reference_id or ""
            if reference.startswith("GLX-") and ":" in reference and line.metadata:
                worklog = reference.split(":", 1)[1].split("@")[0]
                found[worklog] = (line.id, int(line.metadata.get("rawSeconds", 0)))
    return found


def run_webhook_bench(
    size: Size, workdir: Path, *, edits: int = 20, report: Callable[[str], None] = print
) -> HookResult:
    """Seed, sync once, then measure ``edits`` edits through the webhook (one at a time)."""
    from worker.dashboard import create_app

    workdir.mkdir(parents=True, exist_ok=True)
    for stale in ("bench.db", "bench.db-wal", "bench.db-shm", "sync.log", "worker.log"):
        (workdir / stale).unlink(missing_ok=True)
    report(f"seeding size {size.name}: {size.worklogs:,} worklogs")
    jira_data = jira_dataset.generate(
        7, issues=size.issues, worklogs=size.worklogs, weeks=size.weeks
    )
    with (
        _redis_server(workdir) as broker,
        start_sandbox(
            kukkingu_port=0, jira_port=0, github_port=0, cliniko_port=0, jira_data=jira_data
        ) as sandbox,
    ):
        config, env = _write_config(workdir, sandbox, size)
        text = config.read_text().replace("redis://127.0.0.1:1/0", broker)
        text += '\n[webhooks]\njira_secret_env = "BILLSYNC_BENCH_WEBHOOK_SECRET"\n'
        config.write_text(text)
        env["BILLSYNC_BENCH_WEBHOOK_SECRET"] = SECRET
        os.environ["BILLSYNC_BENCH_WEBHOOK_SECRET"] = SECRET
        for key in ("KUKKINGU_TOKEN", "JIRA_EMAIL", "JIRA_TOKEN", "GITHUB_TOKEN"):
            os.environ[f"BILLSYNC_BENCH_{key}"] = env[f"BILLSYNC_BENCH_{key}"]
        settings = load_config(config)
        upgrade(settings.state_url)
        command = [sys.executable, "-m", "worker.cli", "-c", str(config)]
        with (workdir / "sync.log").open("ab") as log:
            first = subprocess.run(  # noqa: S603
                [*command, "sync", "--source", SOURCE], stdout=log, stderr=log, env=env, check=False
            )
        if first.returncode != 0:
            raise RuntimeError(f"the first sync failed (see {workdir / 'sync.log'})")
        report("first sync done; starting the worker and the dashboard")
        engine = make_engine(settings.state_url)
        factory = session_factory(engine)
        worker_log = (workdir / "worker.log").open("ab")
        worker = subprocess.Popen(  # noqa: S603
            [*command, "worker", "--concurrency=1", "--loglevel", "INFO"],
            stdout=worker_log,
            stderr=subprocess.STDOUT,
            env=env,
        )
        redis = Redis.from_url(broker)
        app = create_app(settings, factory=factory, redis=redis, insecure_no_auth=True)
        try:
            with ServerThread(app) as server:
                hooks = WebhookSender("jira", f"{server.url}/hooks/jira", SECRET)
                sandbox.jira_app.webhooks = hooks
                info = sandbox.info()["kukkingu"]
                token = SecretStr(info["token"])
                with KukkinguClient(info["baseUrl"], info["tenantId"], token) as client:
                    latencies = _measure(sandbox.jira.url, client, edits, report)
                hooks.close()
        finally:
            worker.terminate()
            try:
                worker.wait(60)
            except subprocess.TimeoutExpired:
                worker.kill()
                worker.wait(10)
            worker_log.close()
            redis.close()
        with factory() as session:
            rows = session.execute(
                select(Run.started_at, Run.finished_at)
                .join(Source, Source.id == Run.source_id)
                .where(Source.name == SOURCE, Run.trigger == "webhook")
            ).all()
        engine.dispose()
    durations = [(end - start).total_seconds() for start, end in rows if end is not None]
    return HookResult(size, commit(), machine(), edits, latencies, durations, len(rows))


def _measure(
    jira_url: str, client: KukkinguClient, edits: int, report: Callable[[str], None]
) -> list[float]:
    targets = _targets(client)
    if len(targets) < edits:
        raise RuntimeError(f"only {len(targets)} GLX worklogs on open drafts to edit")
    rng = random.Random(edits)  # noqa: S311 - which worklogs, reproducibly
    chosen = rng.sample(sorted(targets), edits)
    latencies = []
    with httpx.Client(base_url=jira_url, timeout=30) as admin:
        for number, worklog in enumerate(chosen, 1):
            billable, seconds = targets[worklog]
            wanted = seconds + 900
            answer = admin.put(f"/_sandbox/worklogs/{worklog}", json={"timeSpentSeconds": wanted})
            answer.raise_for_status()
            edited = time.perf_counter()
            while True:
                line = client.get_billable(billable)
                metadata: dict[str, Any] = line.metadata or {}
                if int(metadata.get("rawSeconds", 0)) == wanted:
                    break
                if time.perf_counter() - edited > DEADLINE:
                    raise RuntimeError(f"worklog {worklog}'s edit did not reach Kukkingu")
                time.sleep(POLL)
            latency = time.perf_counter() - edited
            latencies.append(latency)
            report(f"edit {number}/{edits}: worklog {worklog} billed after {latency:.2f} s")
    return latencies


__all__ = ["SIZES", "HookResult", "run_webhook_bench"]
