"""End to end: the GitHub sandbox -> `billsync sync --source github-demo` -> Kukkingu.

Checked against SPEC §5; a sync with no change writes nothing and costs three pages per
repository (no issue's comments are listed again unless its comment count moved or it got a
new comment); a deleted /spend comment updates exactly its line and its invoice total, even
when another comment on the issue keeps its count the same."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
from click.testing import CliRunner
from pydantic import SecretStr
from sqlalchemy import select

from connectors.kukkingu import KukkinguClient
from sandbox.github.seed import DEMO_TOKEN
from sandbox.main import RunningSandbox, start_sandbox
from tests.support.billing import check_invariants, snapshot, writes
from tests.test_end_to_end_jira import config_for, run
from worker.cli import cli
from worker.config import load_config
from worker.store import Error, ErrorKind, Run, make_engine, session_factory

GH = {"Authorization": f"token {DEMO_TOKEN}"}


def this_month(sandbox: RunningSandbox) -> str:
    """The billing month (examples/sandbox.toml: Europe/Berlin) a comment written now is in."""
    return (
        sandbox.github_app.state.clock.now().astimezone(ZoneInfo("Europe/Berlin")).strftime("%Y-%m")
    )


@pytest.fixture
def sandbox() -> Iterator[RunningSandbox]:
    with start_sandbox(kukkingu_port=0, jira_port=0, github_port=0, cliniko_port=0) as running:
        yield running


@pytest.fixture
def github_http(sandbox: RunningSandbox) -> Iterator[httpx.Client]:
    """An httpx client on the GitHub sandbox's API, closed even when the test fails."""
    with httpx.Client(base_url=sandbox.github.url, headers=GH, timeout=10) as client:
        yield client


def bill_this_month(sandbox: RunningSandbox) -> None:
    """A /spend comment written now on an acme issue: the demo data is spread over the weeks
    before the sandbox clock's now, and early in a month none of it may fall in it yet."""
    state = sandbox.github_app.state
    number = next(i.number for i in state.repo_issues(state.repo("acme/website").id))
    posted = httpx.post(
        f"{sandbox.github.url}/_sandbox/comments",
        json={"repo": "acme/website", "issue": number, "body": "Kick-off.\n/spend 1h"},
        timeout=10,
    )
    assert posted.status_code == 200, posted.text


def github_config(tmp_path: Path, running: RunningSandbox) -> str:
    path = config_for(tmp_path, running)
    path.write_text(path.read_text().replace("http://127.0.0.1:8732", running.github.url))
    return str(path)


def test_github_to_kukkingu_then_a_deleted_comment(
    tmp_path: Path, sandbox: RunningSandbox, github_http: httpx.Client
) -> None:
    config = github_config(tmp_path, sandbox)
    run("-c", config, "db", "upgrade")
    bill_this_month(sandbox)
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
        github = github_http
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
    bill_this_month(sandbox)
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


def test_a_comment_deleted_from_an_issue_that_had_no_open_line_is_noticed(
    tmp_path: Path, sandbox: RunningSandbox
) -> None:
    """The first /spend comment of an issue without lines on an open draft, then its
    deletion: the issue's comment count is back to what it was when it had no open line,
    and the deletion must still be found (its line zeroed), not billed on."""
    config = github_config(tmp_path, sandbox)
    run("-c", config, "db", "upgrade")
    fresh = httpx.post(
        f"{sandbox.github.url}/_sandbox/issues",
        json={"repo": "acme/website", "title": "A new request"},
        timeout=10,
    ).json()["data"]
    chatter = httpx.post(
        f"{sandbox.github.url}/_sandbox/comments",
        json={"repo": "acme/website", "issue": fresh["number"], "body": "Any news?"},
        timeout=10,
    )
    assert chatter.status_code == 200
    # the first sync reads every comment: the issue's count (1) is recorded, no line
    run("-c", config, "sync", "--source", "github-demo")

    def later() -> None:  # past the overlap every read re-reads behind its cursor
        advanced = httpx.post(
            f"{sandbox.github.url}/_sandbox/clock", json={"advance": 600}, timeout=10
        )
        assert advanced.status_code == 200

    later()
    added = httpx.post(
        f"{sandbox.github.url}/_sandbox/comments",
        json={"repo": "acme/website", "issue": fresh["number"], "body": "Setup.\n/spend 2h"},
        timeout=10,
    ).json()["data"]
    run("-c", config, "sync", "--source", "github-demo")
    reference = f"acme/website#{fresh['number']}"
    info = sandbox.info()["kukkingu"]
    with KukkinguClient(info["baseUrl"], info["tenantId"], SecretStr(info["token"])) as kk:

        def billed() -> list[tuple[str, int]]:
            return [
                (b["quantity"], b["metadata"]["rawSeconds"])
                for items in snapshot(kk).billables.values()
                for b in items
                if b["referenceId"] == reference
            ]

        assert billed() == [("2.0", 7200)]
        later()
        gone = httpx.delete(f"{sandbox.github.url}/_sandbox/comments/{added['id']}", timeout=10)
        assert gone.status_code == 204
        run("-c", config, "sync", "--source", "github-demo")
        assert billed() == [("0.0", 0)]  # zeroed: billables cannot be deleted
        assert check_invariants(snapshot(kk)) == []


def test_a_lost_repository_is_a_problem_and_the_others_still_bill(
    tmp_path: Path, sandbox: RunningSandbox
) -> None:
    """The token loses one repository (GitHub answers 404 for a private repository it cannot
    see): its billed lines stay (lost access is not deletion), every other repository syncs,
    the run is partial, and the dashboard's problems name the repository."""
    config = github_config(tmp_path, sandbox)
    run("-c", config, "db", "upgrade")
    run("-c", config, "sync", "--source", "github-demo")
    info = sandbox.info()["kukkingu"]
    with KukkinguClient(info["baseUrl"], info["tenantId"], SecretStr(info["token"])) as kk:
        before = snapshot(kk)
        website = sorted(
            b["id"]
            for items in before.billables.values()
            for b in items
            if b["referenceId"].startswith("acme/website")
        )
        assert website
        state = sandbox.github_app.state
        lost = state.find_repo("acme/website")
        api = state.find_repo("acme/api")
        assert lost is not None
        assert api is not None
        lost.private, members = True, set(lost.members)
        lost.members.clear()
        number = state.repo_issues(api.id)[0].number
        posted = httpx.post(
            f"{sandbox.github.url}/_sandbox/comments",
            json={"repo": "acme/api", "issue": number, "body": "Pairing.\n/spend 2h"},
            timeout=10,
        )
        assert posted.status_code == 200, posted.text

        result = CliRunner(env={"BILLSYNC_CONFIG": None}).invoke(
            cli, ["-c", config, "sync", "--source", "github-demo"]
        )
        assert result.exit_code == 1, result.output  # partial: an operator must look
        assert "repository acme/website" in result.stderr
        assert "GitHub answered 404" in result.stderr
        assert "{owner}" not in result.stderr
        after = snapshot(kk)
        assert check_invariants(after) == []
        billed = {b["id"]: b for items in after.billables.values() for b in items}
        assert all(billed[i] == before_item for i, before_item in _by_id(before, website))
        added = sum(
            int(b["metadata"]["rawSeconds"])
            for b in billed.values()
            if b["referenceId"].startswith(f"acme/api#{number}")
        ) - sum(
            int(b["metadata"]["rawSeconds"])
            for items in before.billables.values()
            for b in items
            if b["referenceId"].startswith(f"acme/api#{number}")
        )
        assert added == 7200  # the new 2 h on the other repository are billed

        status = dashboard_problems(config)
        assert status == ("partial", "repository acme/website")

        # access comes back: the next sync is whole, and the problem is resolved
        lost.members |= members
        run("-c", config, "sync", "--source", "github-demo")
        assert dashboard_problems(config) == ("succeeded", None)


def _by_id(shot: Any, ids: list[str]) -> list[tuple[str, dict[str, Any]]]:
    items = {b["id"]: b for entries in shot.billables.values() for b in entries}
    return [(i, items[i]) for i in ids]


def dashboard_problems(config: str) -> tuple[str, str | None]:
    """The last run's status and the open unreachable-part problem, from the state store."""
    settings = load_config(config)
    engine = make_engine(settings.state_url)
    try:
        with session_factory(engine)() as session:
            last = session.scalars(select(Run).order_by(Run.id.desc())).first()
            assert last is not None
            problem = session.scalars(
                select(Error.subject).where(
                    Error.kind == ErrorKind.CONFIGURATION, Error.resolved_at.is_(None)
                )
            ).first()
            return str(last.status), problem
    finally:
        engine.dispose()
