"""End to end: the Jira sandbox -> `billsync sync` (CLI, real connector) -> Kukkingu sandbox.

Checked against SPEC §5 on what Kukkingu holds; then one worklog is edited in Jira and the
next sync must update exactly that line and its invoice total, and write nothing else.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner
from pydantic import SecretStr

from connectors.kukkingu import KukkinguClient
from sandbox.main import RunningSandbox, start_sandbox
from tests.support.billing import check_invariants, snapshot, writes
from worker.cli import cli

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def sandbox() -> Iterator[RunningSandbox]:
    with start_sandbox(kukkingu_port=0, jira_port=0, github_port=0, cliniko_port=0) as running:
        yield running


def config_for(tmp_path: Path, running: RunningSandbox) -> Path:
    text = (ROOT / "examples" / "sandbox.toml").read_text()
    text = text.replace("http://127.0.0.1:8730", running.kukkingu.url)
    text = text.replace("http://127.0.0.1:8731", running.jira.url)
    text = text.replace("http://127.0.0.1:8732", running.github.url)  # on a free port too
    text = text.replace("http://127.0.0.1:8733", running.cliniko.url)
    text = text.replace('env_file = "sandbox.env"', f'env_file = "{ROOT}/examples/sandbox.env"')
    text = text.replace("sqlite:///billsync-demo.db", f"sqlite:///{tmp_path / 'state.db'}")
    path = tmp_path / "billsync.toml"
    path.write_text(text)
    return path


def run(*args: str) -> str:
    result = CliRunner(env={"BILLSYNC_CONFIG": None}).invoke(cli, list(args))
    assert result.exit_code == 0, result.output
    return result.stdout


def admin(base: str, method: str, path: str, **kwargs: object) -> dict[str, object]:
    response = httpx.request(method, f"{base}/_sandbox{path}", timeout=10, **kwargs)  # type: ignore[arg-type]
    response.raise_for_status()
    data: dict[str, object] = response.json()["data"]
    return data


def test_jira_to_kukkingu_then_one_edit(tmp_path: Path, sandbox: RunningSandbox) -> None:
    config = str(config_for(tmp_path, sandbox))
    run("-c", config, "db", "upgrade")
    # the dry run reads the real source in its own (rolled back) transaction
    plan = run("-c", config, "sync", "--dry-run")
    assert "source jira-demo: 250 entries read (250 new" in plan
    assert plan.rstrip().endswith("dry run: nothing was written")
    assert writes(dict(sandbox.kukkingu_app.requests.snapshot())) == {}
    out = run("-c", config, "sync")
    assert out.startswith("jira-demo: 250 entries read;")
    info = sandbox.info()["kukkingu"]
    with KukkinguClient(info["baseUrl"], info["tenantId"], SecretStr(info["token"])) as client:
        first = snapshot(client)
        assert check_invariants(first) == []
        lines = [b for items in first.billables.values() for b in items]
        assert lines
        # internal-labelled ACME work and INT work are not billed
        assert not any(b["referenceId"].startswith("INT-") for b in lines)
        # a re-run with no change writes nothing
        sandbox.kukkingu_app.requests.reset()
        run("-c", config, "sync")
        assert writes(dict(sandbox.kukkingu_app.requests.snapshot())) == {}

        # one GLX worklog (grouping "entry") gets an hour more
        line = next(b for b in lines if b["referenceId"].startswith("GLX-"))
        worklog_id = line["referenceId"].split(":", 1)[1]
        edited = httpx.put(
            f"{sandbox.jira.url}/_sandbox/worklogs/{worklog_id}",
            json={"timeSpentSeconds": line["metadata"]["rawSeconds"] + 3600},
            timeout=10,
        )
        edited.raise_for_status()
        admin(sandbox.jira.url, "POST", "/clock", json={"advance": 61})  # past the last minute
        sandbox.kukkingu_app.requests.reset()
        run("-c", config, "sync")
        assert writes(dict(sandbox.kukkingu_app.requests.snapshot())) == {
            "PUT /api/v1/billables/{billableId}": 1,
            "PUT /api/v1/invoices/{invoiceId}": 1,
        }
        second = snapshot(client)
    assert check_invariants(second) == []
    changed = {b["referenceId"]: b for items in second.billables.values() for b in items}
    assert changed[line["referenceId"]]["amountMinor"] > line["amountMinor"]
    before = {
        (n, b["referenceId"], b["amountMinor"])
        for n, items in first.billables.items()
        for b in items
    }
    after = {
        (n, b["referenceId"], b["amountMinor"])
        for n, items in second.billables.items()
        for b in items
    }
    assert len(before - after) == 1
    assert len(after - before) == 1
