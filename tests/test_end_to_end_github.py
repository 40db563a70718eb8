"""End to end: the GitHub sandbox -> `billsync sync --source github-demo` -> Kukkingu.

Checked against SPEC §5; a sync with no change writes nothing and costs three pages per
repository (no issue's comments are listed again unless its comment count moved or it got a
new comment); a deleted /spend comment updates exactly its line and its invoice total, even
when another comment on the issue keeps its count the same."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from zoneinfo import ZoneInfo

import httpx
import pytest
from pydantic import SecretStr

from connectors.kukkingu import KukkinguClient
from sandbox.github.seed import DEMO_TOKEN
from sandbox.main import RunningSandbox, start_sandbox
from tests.support.billing import check_invariants, snapshot, writes
from tests.test_end_to_end_jira import config_for, run

GH = {"Authorization": f"token {DEMO_TOKEN}"}


def this_month(sandbox: RunningSandbox) -> str:
    """The billing month (examples/sandbox.toml: Europe/Berlin) a comment written now is in."""
    return (
        sandbox.github_app.state.clock.now().astimezone(ZoneInfo("Europe/Berlin")).strftime("%Y-%m")
    )


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

        # no change: no Kukkingu write; per repository one page of updated issues, one of
        # updated comments and one of every issue's comment count (no count changed: no
        # issue's comments are listed again)
        sandbox.kukkingu_app.requests.reset()
        sandbox.github_app.requests.reset()
        run("-c", config, "sync", "--source", "github-demo")
        assert writes(dict(sandbox.kukkingu_app.requests.snapshot())) == {}
        github = httpx.Client(base_url=sandbox.github.url, headers=GH, timeout=10)
        counted = sandbox.github_app.requests.snapshot()
        relisted = counted.pop("GET /repos/{owner}/{repo}/issues/{number}/comments", 0)
        assert counted == {
            "GET /repos/{owner}/{repo}/issues": 6,
            "GET /repos/{owner}/{repo}/issues/comments": 3,
        }
        # at most the issues with a comment written in the overlap behind the cursor (re-read,
        # a new comment might hide a deletion next to it): 304s, free of rate limit
        state = sandbox.github_app.state
        in_overlap = set()
        for repo in state.repos():
            comments = state.repo_comments(repo.id)
            newest = max((c.updated for c in comments), default=0)
            in_overlap |= {(repo.id, c.issue_number) for c in comments if c.created >= newest - 120}
        assert relisted <= len(in_overlap)
        before = github.get("/rate_limit").json()["resources"]["core"]["used"]
        run("-c", config, "sync", "--source", "github-demo")
        after = github.get("/rate_limit").json()["resources"]["core"]["used"]
        assert after - before == 9

        # a new /spend comment on an issue with a November line, then its deletion
        invoice, line = next(
            (n, b)
            for n, b in lines
            if b["referenceId"].startswith("acme/")
            and b["metadata"]["period"] == this_month(sandbox)
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


def test_a_deletion_hidden_by_an_addition_on_the_same_issue(
    tmp_path: Path, sandbox: RunningSandbox
) -> None:
    """Deleting one comment and writing another leaves the issue's comment count as it was;
    the new comment still makes billsync list the issue's comments again."""
    config = github_config(tmp_path, sandbox)
    run("-c", config, "db", "upgrade")
    run("-c", config, "sync", "--source", "github-demo")
    info = sandbox.info()["kukkingu"]
    with KukkinguClient(info["baseUrl"], info["tenantId"], SecretStr(info["token"])) as kk:
        first = snapshot(kk)
        invoice, line = next(
            (n, b)
            for n, items in first.billables.items()
            for b in items
            if b["referenceId"].startswith("acme/")
            and b["metadata"]["period"] == this_month(sandbox)
        )
        repo, number = line["referenceId"].split("#")

        def comment(body: str) -> int:
            answer = httpx.post(
                f"{sandbox.github.url}/_sandbox/comments",
                json={"repo": repo, "issue": int(number), "body": body},
                timeout=10,
            )
            return int(answer.json()["data"]["id"])

        def billed_seconds() -> int:
            items = {b["referenceId"]: b for b in snapshot(kk).billables[invoice]}
            return int(items[line["referenceId"]]["metadata"]["rawSeconds"])

        extra = comment("Call with the client.\n/spend 1h")
        run("-c", config, "sync", "--source", "github-demo")
        assert billed_seconds() == line["metadata"]["rawSeconds"] + 3600

        gone = httpx.delete(f"{sandbox.github.url}/_sandbox/comments/{extra}", timeout=10)
        assert gone.status_code in (200, 204)
        comment("Follow-up.\n/spend 30m")
        run("-c", config, "sync", "--source", "github-demo")
        assert billed_seconds() == line["metadata"]["rawSeconds"] + 1800
        assert check_invariants(snapshot(kk)) == []
