"""A real billsync wired to the three sandboxes, for the bad-input corpus and the security tests.

:class:`World` writes a config (``examples/sandbox.toml`` pointed at the served sandboxes and a
state store in the test's directory), runs the real CLI in-process, and reads back what the
product recorded: the Kukkingu tenant (through the real client), the ``lines``, ``errors``
and ``runs`` tables. Nothing is mocked.
"""

from __future__ import annotations

import json
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from click.testing import CliRunner, Result
from pydantic import SecretStr
from sqlalchemy import create_engine, select
from sqlalchemy.orm import Session

from connectors.kukkingu import KukkinguClient
from sandbox.kukkingu.seed import DEMO_TENANT_ID, DEMO_TOKEN
from tests.support.billing import KukkinguSnapshot, snapshot
from tests.support.github import RunningGitHub
from tests.support.jira import RunningJira
from tests.support.kukkingu import RunningKukkingu
from worker.cli import cli
from worker.store import Error, Line, Run

ROOT = Path(__file__).resolve().parents[2]
CORPUS = Path(__file__).resolve().parent / "corpus"
NO_REDIS = "redis://127.0.0.1:1/0"  # refused at once: the CLI syncs without the workers' locks


def sandbox_config(
    tmp_path: Path,
    kukkingu: RunningKukkingu,
    jira: RunningJira,
    github: RunningGitHub,
    *,
    state_url: str | None = None,
    extra: str = "",
) -> Path:
    """``examples/sandbox.toml`` pointed at the served sandboxes; fast retries."""
    text = (ROOT / "examples" / "sandbox.toml").read_text()
    text = text.replace("http://127.0.0.1:8730", kukkingu.url)
    text = text.replace("http://127.0.0.1:8731", jira.url)
    text = text.replace("http://127.0.0.1:8732", github.url)
    text = text.replace('rate_item = "CONSULT-60"', "hourly_rate_minor = 15000")  # no Cliniko here
    text = text.replace("redis://127.0.0.1:6379/0", NO_REDIS)
    text = text.replace('env_file = "sandbox.env"', f'env_file = "{ROOT}/examples/sandbox.env"')
    text = text.replace(
        "sqlite:///billsync-demo.db", state_url or f"sqlite:///{tmp_path / 'state.db'}"
    )
    text = text.replace(
        "max_retry_wait_seconds = 5.0", "max_retry_wait_seconds = 0.5\nmax_attempts = 2"
    )
    path = tmp_path / "billsync.toml"
    path.write_text(text + extra)
    return path


@dataclass
class World:
    """billsync configured for the sandboxes, with what a test needs to look at the result."""

    config: Path
    kukkingu: RunningKukkingu
    jira: RunningJira
    github: RunningGitHub
    state_url: str
    env: dict[str, str | None] = field(default_factory=dict)

    def cli(self, *args: str) -> Result:
        runner = CliRunner(env={"BILLSYNC_CONFIG": None, "BILLSYNC_STATE_URL": None, **self.env})
        return runner.invoke(cli, ["-c", str(self.config), *args])

    def sync(self, source: str, *, ok: bool = True) -> Result:
        result = self.cli("sync", "--source", source)
        if ok:
            assert result.exit_code == 0, result.output + crash(result)
        return result

    def client(self) -> KukkinguClient:
        return KukkinguClient(self.kukkingu.url, DEMO_TENANT_ID, SecretStr(DEMO_TOKEN))

    def snapshot(self) -> KukkinguSnapshot:
        with self.client() as client:
            return snapshot(client)

    def _read(self, query: Any) -> list[Any]:
        engine = create_engine(self.state_url)
        try:
            with Session(engine) as session:
                return [tuple(row) for row in session.execute(query)]
        finally:
            engine.dispose()

    def lines(self) -> set[tuple[Any, ...]]:
        """The ledger's lines, as (reference, quantity, amount, Kukkingu id)."""
        rows = self._read(
            select(
                Line.reference_type,
                Line.reference_id,
                Line.quantity,
                Line.amount_minor,
                Line.kukkingu_id,
            )
        )
        return {tuple(row) for row in rows}

    def problems(self) -> dict[str, tuple[str, str]]:
        """Open problems by subject: (kind, reason)."""
        rows = self._read(
            select(Error.subject, Error.kind, Error.reason).where(Error.resolved_at.is_(None))
        )
        return {subject: (str(kind), reason) for subject, kind, reason in rows}

    def last_run(self) -> tuple[str, str | None, dict[str, Any]]:
        rows = self._read(
            select(Run.status, Run.error, Run.counts).order_by(Run.id.desc()).limit(1)
        )
        status, error, counts = rows[0]
        return str(status), error, counts

    def stored_text(self) -> str:
        """Every text column of every table, for "is this secret stored anywhere"."""
        engine = create_engine(self.state_url)
        try:
            with engine.connect() as connection:
                from worker.store.models import Base

                chunks = []
                for table in Base.metadata.sorted_tables:
                    for row in connection.execute(table.select()):
                        chunks.append(json.dumps([str(v) for v in row]))
                return "\n".join(chunks)
        finally:
            engine.dispose()


def crash(result: Result) -> str:
    """The traceback of an exception the CLI did not handle, for assertion messages."""
    if result.exc_info is None or isinstance(result.exception, SystemExit):
        return ""
    return "".join(traceback.format_exception(*result.exc_info))


def raw_json(body: Any) -> dict[str, Any]:
    """Request kwargs sending ``body`` as ASCII JSON (httpx's own encoder refuses lone
    surrogates)."""
    return {"content": json.dumps(body).encode(), "headers": {"content-type": "application/json"}}
