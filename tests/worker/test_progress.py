"""Progress of a sync (issue 14 item 3): drawn with rich on stderr when it is a terminal,
nothing of it when stderr is a log. A real `billsync sync` process under a pseudo-terminal,
against the sandbox over HTTP."""

from __future__ import annotations

import os
import pty
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from sandbox.main import RunningSandbox, start_sandbox
from tests.support.service import BILLSYNC, PROCESS_DEADLINE, Service
from worker.progress import LABELS

ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")  # colours and cursor moves
STAGES = ("pages read", "entries read", "planning (parts)", "lines to write", "creating lines")


@pytest.fixture
def service(tmp_path: Path) -> Iterator[Service]:
    with start_sandbox(kukkingu_port=0, jira_port=0, github_port=0, cliniko_port=0) as sandbox:
        yield _service(tmp_path, sandbox)


def _service(tmp_path: Path, sandbox: RunningSandbox) -> Service:
    service = Service(
        tmp_path, sandbox, f"sqlite:///{tmp_path / 'state.db'}", "redis://127.0.0.1:1/0"
    )
    subprocess.run(
        [BILLSYNC, "-c", str(service.config), "db", "upgrade"],
        env=service.env,
        check=True,
        capture_output=True,
        timeout=PROCESS_DEADLINE,
    )
    return service


def sync_on_a_terminal(service: Service) -> tuple[int, str, str]:
    """`billsync sync --source jira-demo` with stderr on a pseudo-terminal: (exit code,
    stdout, everything written to the terminal)."""
    primary, secondary = pty.openpty()
    stdout = service.tmp / "stdout.txt"
    with stdout.open("wb") as out:
        child = subprocess.Popen(
            [BILLSYNC, "-c", str(service.config), "sync", "--source", "jira-demo"],
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=secondary,
            env={**service.env, "TERM": "xterm", "COLUMNS": "120"},
            cwd=service.tmp,
        )
        os.close(secondary)
        drawn = bytearray()
        while True:
            try:
                data = os.read(primary, 65536)
            except OSError:  # EIO: the child closed the terminal
                break
            if not data:
                break
            drawn += data
        code = child.wait(timeout=PROCESS_DEADLINE)
    os.close(primary)
    return code, stdout.read_text(), ANSI.sub("", drawn.decode(errors="replace"))


def test_a_sync_on_a_terminal_shows_each_stage(service: Service) -> None:
    code, stdout, drawn = sync_on_a_terminal(service)
    assert code == 0, drawn
    for label in STAGES:
        assert f"jira-demo {label}" in drawn, drawn
    assert "creating lines" not in stdout  # stdout: the summary only
    assert stdout.startswith("jira-demo: 250 entries read;")


def test_a_sync_whose_stderr_is_a_log_draws_nothing(service: Service) -> None:
    result = service.sync("--source", "jira-demo")
    assert result.returncode == 0, result.stderr
    assert not any(f"jira-demo {label}" in result.stderr for label in LABELS.values())
