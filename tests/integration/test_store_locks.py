"""No write without a lock (SPEC §6, issue 11 item 5): two `billsync sync` processes whose
broker does not answer take the workers' locks from the state store (a PostgreSQL advisory
lock; on SQLite a lock file). The second sync of a source is refused and names the holder;
a sync of another source waits for the ledger. On SQLite and PostgreSQL, with real
processes and the sandboxes over HTTP."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine
from sqlalchemy.orm import sessionmaker

from sandbox.main import RunningSandbox, start_sandbox
from tests.integration.conftest import hold_writes, release_writes
from tests.support.postgres import free_port
from tests.support.service import BILLSYNC, PROCESS_DEADLINE, Service, assert_exactly_once
from tests.support.waiting import wait_for
from worker.store import upgrade
from worker.store.locks import store_lock


@pytest.fixture
def sandbox() -> Iterator[RunningSandbox]:
    with start_sandbox(kukkingu_port=0, jira_port=0, github_port=0, cliniko_port=0) as running:
        yield running


def start_sync(service: Service, source: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [BILLSYNC, "-c", str(service.config), "sync", "--source", source],
        env=service.env,
        cwd=service.tmp,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def try_from_another_process(url: str) -> str:
    """Take the lock ``source:jira`` in another process: "free", or why it is not."""
    code = (
        "from worker.store.locks import store_lock, StoreLockBusy\n"
        "try:\n"
        f"    with store_lock({url!r}, 'source:jira', wait=0.5):\n"
        "        print('free')\n"
        "except StoreLockBusy as exc:\n"
        "    print(exc)\n"
    )
    python = str(Path(BILLSYNC).with_name("python"))
    result = subprocess.run(
        [python, "-c", code], capture_output=True, text=True, timeout=PROCESS_DEADLINE, check=True
    )
    return result.stdout.strip()


def test_the_state_store_locks_a_second_process_out(db_url: str) -> None:
    with store_lock(db_url, "source:jira"):
        refused = try_from_another_process(db_url)
        assert "the state store's lock source:jira is held by" in refused
        assert "billsync" in refused or ":" in refused  # the holder, named
    assert try_from_another_process(db_url) == "free"


def test_two_syncs_without_redis_never_write_at_once(
    tmp_path: Path, db_url: str, sandbox: RunningSandbox
) -> None:
    upgrade(db_url)
    dead_broker = f"redis://127.0.0.1:{free_port()}/0"  # nothing listens there
    service = Service(tmp_path, sandbox, db_url, dead_broker)
    engine = create_engine(db_url)
    processes: list[subprocess.Popen[str]] = []
    try:
        hold_writes(sandbox)
        first = start_sync(service, "jira-demo")
        processes.append(first)
        # (up to [kukkingu] concurrency writes of the first sync are held at once)
        wait_for(lambda: sandbox.kukkingu_app.faults.held() >= 1, "the first sync, mid-write")
        second = start_sync(service, "jira-demo")
        other = start_sync(service, "github-demo")
        processes += [second, other]
        # the second sync of the source is refused at once; it never becomes a second writer
        # (one that wrote would wait on the held writes and never end)
        wait_for(lambda: second.poll() is not None, "the second sync to be refused")
        out, err = second.communicate(timeout=PROCESS_DEADLINE)
        assert second.returncode == 1, out + err
        assert "a sync of jira-demo is running elsewhere" in err
        assert "held by" in err
        assert "the state store provides the locks" in err
        assert other.poll() is None  # another source waits for the ledger, is not refused
        release_writes(sandbox)
        for process in (first, other):
            out, err = process.communicate(timeout=PROCESS_DEADLINE)
            assert process.returncode == 0, out + err
        assert_exactly_once(sessionmaker(engine), sandbox, service)
    finally:
        release_writes(sandbox)
        for process in processes:
            if process.poll() is None:
                process.kill()
                process.wait(30)
        engine.dispose()
