"""End to end: the GitHub sandbox -> `billsync sync --source github-demo` -> Kukkingu.

Checked against SPEC §5; a sync with no change writes nothing and re-lists the comments of
issues with open lines with ETags (304s, no rate limit spent); a deleted /spend comment
updates exactly its line and its invoice total."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from pydantic import SecretStr

from connectors.kukkingu import KukkinguClient
from sandbox.github.seed import DEMO_TOKEN
from sandbox.main import RunningSandbox, start_sandbox
from tests.support.billing import check_invariants, snapshot, writes
from tests.test_end_to_end_jira import config_for, run

GH = {"Authorization": f"token {DEMO_TOKEN}"}


@pytest.fixture
def sandbox() -> Iterator[RunningSandbox]:
    with start_sandbox(kukkingu_port=0, jira_port=0, github_port=0) as running:
        yield running


def github_config(tmp_path: Path, running: RunningSandbox) -> str:
    path = config_for(tmp_path, running)
    path.write_text(path.read_text().replace("http://127.0.0.1:8732", running.github.url))
    return str(path)


def test_github_to_kukkingu_then_a_deleted_comment(tmp_path: Path, sandbox: RunningSandbox) -> None:
    config = github_config(tmp_path, sandbox)
    run("-c", config, "db", "upgrade")
    out = run("-c", config, "sync", "--source", "github-demo")
    assert out.startswith("github-demo: ")
    info = sandbox.info()["kukkingu"]
    with KukkinguClient(info["baseUrl"], info["tenantId"], SecretStr(info["token"])) as kk:
        first = snapshot(kk)
        assert check_invariants(first) == []
        lines = [(n, b) for n, items in first.billables.items() for b in items]
        assert {b["referenceType"] for _, b in lines} == {"GITHUB"}

        # no change: no Kukkingu write; the open issues' comments come back 304
        sandbox.kukkingu_app.requests.reset()
        sandbox.github_app.requests.reset()
        run("-c", config, "sync", "--source", "github-demo")
        assert writes(dict(sandbox.kukkingu_app.requests.snapshot())) == {}
        github = httpx.Client(base_url=sandbox.github.url, headers=GH, timeout=10)
        relisted = sandbox.github_app.requests.snapshot().get(
            "GET /repos/{owner}/{repo}/issues/{number}/comments", 0
        )
        assert relisted > 0
        before = github.get("/rate_limit").json()["resources"]["core"]["used"]
        run("-c", config, "sync", "--source", "github-demo")
        after = github.get("/rate_limit").json()["resources"]["core"]["used"]
        assert after - before == 6  # issues + comments per repo (3 repos); the 304s are free

        # a new /spend comment on an issue with a November line, then its deletion
        invoice, line = next(
            (n, b)
            for n, b in lines
            if b["referenceId"].startswith("acme/") and b["metadata"]["period"] == "2026-11"
        )
        repo, number = line["referenceId"].split("#")
        added = httpx.post(
            f"{sandbox.github.url}/_sandbox/comments",
            json={"repo": repo, "issue": int(number), "body": "Pairing session.\r\n/spend 2h"},
            timeout=10,
        ).json()["data"]
        run("-c", config, "sync", "--source", "github-demo")
        grown = {b["referenceId"]: b for b in snapshot(kk).billables[invoice]}[line["referenceId"]]
        assert grown["metadata"]["rawSeconds"] == line["metadata"]["rawSeconds"] + 7200

        deleted = httpx.delete(f"{sandbox.github.url}/_sandbox/comments/{added['id']}", timeout=10)
        assert deleted.status_code in (200, 204)
        sandbox.kukkingu_app.requests.reset()
        run("-c", config, "sync", "--source", "github-demo")
        assert writes(dict(sandbox.kukkingu_app.requests.snapshot())) == {
            "PUT /api/v1/billables/{billableId}": 1,
            "PUT /api/v1/invoices/{invoiceId}": 1,
        }
        second = snapshot(kk)
        github.close()
    back = {b["referenceId"]: b for b in second.billables[invoice]}[line["referenceId"]]
    assert (back["quantity"], back["amountMinor"]) == (line["quantity"], line["amountMinor"])
    assert second.invoices[invoice]["amountMinor"] == first.invoices[invoice]["amountMinor"]
    assert check_invariants(second) == []
