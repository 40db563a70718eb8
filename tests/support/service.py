"""billsync as real processes, for the integration tests: a config written for a running
sandbox, `billsync worker` / `beat` processes, `enqueue`, inline `sync`, and the checks the
service tests share (runs from the state store, no overlap, SPEC §5 exactly once)."""

from __future__ import annotations

import itertools
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import IO

from pydantic import SecretStr
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from connectors.kukkingu import KukkinguClient
from sandbox.main import RunningSandbox
from tests.support.billing import check_invariants, snapshot
from worker.ledger import content_of
from worker.store import Draft, DraftStatus, Line, Run, Source

ROOT = Path(__file__).resolve().parents[2]
BILLSYNC = str(Path(sys.executable).parent / "billsync")
SOURCES = ("jira-demo", "github-demo")

RunRow = tuple[str, str, str, datetime, datetime | None]
PROCESS_DEADLINE = 300  # seconds a billsync command may take on a loaded machine
LOG_TAIL = 20_000  # characters of each log in a failure message
KEPT_LOGS = ROOT / "test-logs"


def keep_logs(folder: Path) -> Path:
    """Copy ``folder``'s logs to ``test-logs/<test>/`` and return where they are."""
    test = os.environ.get("PYTEST_CURRENT_TEST", "unknown").split(" ")[0]
    target = KEPT_LOGS / "".join(c if c.isalnum() or c in "-_." else "_" for c in test)
    target.mkdir(parents=True, exist_ok=True)
    for log in folder.glob("*.log"):
        shutil.copyfile(log, target / log.name)
    return target


class Service:
    """The config file and the billsync processes of one test."""

    def __init__(self, tmp: Path, sandbox: RunningSandbox, state_url: str, broker_url: str) -> None:
        self.tmp = tmp
        tmp.mkdir(parents=True, exist_ok=True)
        text = (ROOT / "examples" / "sandbox.toml").read_text()
        for old, new in (
            ("http://127.0.0.1:8730", sandbox.kukkingu.url),
            ("http://127.0.0.1:8731", sandbox.jira.url),
            ("http://127.0.0.1:8732", sandbox.github.url),
            ("http://127.0.0.1:8733", sandbox.cliniko.url),
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

    def write_one_at_a_time(self) -> None:
        """``[kukkingu] concurrency = 1``: a test that counts the writes in flight sees one."""
        text = self.config.read_text()
        assert "\n[kukkingu]\n" in text
        self.config.write_text(text.replace("\n[kukkingu]\n", "\n[kukkingu]\nconcurrency = 1\n", 1))

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

    def worker(self, name: str, concurrency: int = 1) -> None:
        self.start(
            name,
            "worker",
            f"--concurrency={concurrency}",
            "--name",
            f"{name}@%h",
            "--loglevel",
            "INFO",
        )

    def beat(self, name: str) -> None:
        self.start(name, "beat", "--schedule-file", str(self.tmp / f"{name}-schedule"))

    def enqueue(self, *sources: str) -> None:
        """`billsync enqueue`, one process for all the requests (in this order)."""
        result = subprocess.run(
            [BILLSYNC, "-c", str(self.config), "enqueue", *(f"--source={s}" for s in sources)],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=PROCESS_DEADLINE,
            check=False,
        )
        assert result.returncode == 0, result.stderr

    def sync(self, *args: str) -> subprocess.CompletedProcess[str]:
        """`billsync sync ARGS`, inline (no worker), as an operator would run it."""
        return subprocess.run(
            [BILLSYNC, "-c", str(self.config), "sync", *args],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=PROCESS_DEADLINE,
            check=False,
            cwd=self.tmp,
        )

    def dry_run(self) -> str:
        result = self.sync("--dry-run")
        assert result.returncode == 0, result.stderr
        return result.stdout

    def log(self, name: str) -> str:
        """The whole log of process ``name`` so far."""
        for file in self.log_files:
            file.flush()
        return (self.tmp / f"{name}.log").read_text(errors="replace")

    def logs(self) -> str:
        """For a failure message: every log's last lines, and where the whole logs are kept
        (copied to ``test-logs/`` in the project, which outlives pytest's tmp folders)."""
        kept = keep_logs(self.tmp)
        return f"(whole logs: {kept})\n" + "\n".join(
            f"--- {p.name}\n{p.read_text(errors='replace')[-LOG_TAIL:]}"
            for p in sorted(self.tmp.glob("*.log"))
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
        self.log_files.clear()


def wait_until(condition: Callable[[], bool], timeout: float, service: Service, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}\n{service.logs()}")
        time.sleep(0.2)


def runs(factory: sessionmaker[Session]) -> list[RunRow]:
    with factory() as session:
        rows = session.execute(
            select(Source.name, Run.trigger, Run.status, Run.started_at, Run.finished_at)
            .join(Source, Source.id == Run.source_id)
            .order_by(Run.id)
        )
        return [(n, t.value, s.value, a, b) for n, t, s, a, b in rows]


def _end(status: str, start: datetime, end: datetime | None, killed: datetime | None) -> datetime:
    """When a run stopped: an interrupted one (closed when noticed) or one never closed
    stopped at the kill, if there was one after it started."""
    if killed is not None and killed > start and (end is None or status == "interrupted"):
        return killed
    return end or datetime.now(UTC)


def assert_never_overlapping(all_runs: list[RunRow], killed_at: datetime | None = None) -> None:
    for source in SOURCES:
        spans = sorted(
            (a, _end(status, a, b, killed_at)) for n, _, status, a, b in all_runs if n == source
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
