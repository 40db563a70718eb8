"""Work that leaves every rule (issue 11, item 2), end to end over real HTTP: the Jira and
GitHub sandboxes -> `billsync sync` (CLI, real connectors) -> the Kukkingu sandbox.

An issue moved to a project no rule maps, relabelled non-billable, or transferred to a
repository no rule names is taken off the open drafts (its lines become 0 / 0), is drift
where its invoice is finalized, and is never billed again to its old contract: not even
new time logged on it after the move, and not even when its only lines are on a finalized
invoice (which used to bill the new time as late work).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from pydantic import SecretStr
from sqlalchemy import select

from connectors.kukkingu import KukkinguClient
from sandbox.main import RunningSandbox, start_sandbox
from tests.support.billing import KukkinguSnapshot, check_invariants, snapshot, writes
from tests.test_end_to_end_github import dashboard_problems, github_config
from tests.test_end_to_end_jira import admin, config_for, run
from worker.cli import cli
from worker.config import load_config
from worker.store import Drift, Entry, Error, ErrorKind, make_engine, session_factory


@pytest.fixture
def sandbox() -> Iterator[RunningSandbox]:
    with start_sandbox(kukkingu_port=0, jira_port=0, github_port=0, cliniko_port=0) as running:
        yield running


def kukkingu(sandbox: RunningSandbox) -> KukkinguClient:
    info = sandbox.info()["kukkingu"]
    return KukkinguClient(info["baseUrl"], info["tenantId"], SecretStr(info["token"]))


def lines_by_issue(shot: KukkinguSnapshot, prefix: str) -> dict[str, list[tuple[str, Any]]]:
    """issue id -> [(invoice number, billable)] of the lines whose reference starts ``prefix``."""
    found: dict[str, list[tuple[str, Any]]] = defaultdict(list)
    for number, items in shot.billables.items():
        for b in items:
            if b["referenceId"].startswith(prefix):
                found[str(b["metadata"]["issueId"])].append((number, b))
    return found


def store_facts(config: str) -> tuple[dict[str, set[str]], set[str]]:
    """(entry key -> drift kinds, open unmapped entry keys) from the state store."""
    settings = load_config(config)
    engine = make_engine(settings.state_url)
    try:
        with session_factory(engine)() as session:
            drift: dict[str, set[str]] = defaultdict(set)
            for key, kind in session.execute(
                select(Entry.key, Drift.kind).join(Entry, Entry.id == Drift.entry_id)
            ):
                drift[key].add(str(kind))
            unmapped = set(
                session.scalars(
                    select(Error.subject).where(
                        Error.kind == ErrorKind.UNMAPPED, Error.resolved_at.is_(None)
                    )
                )
            )
            return dict(drift), unmapped
    finally:
        engine.dispose()


def issue_entries(sandbox: RunningSandbox, issue_id: str) -> set[str]:
    state = sandbox.jira_app.state
    site = sandbox.jira.url.split("://", 1)[1]
    return {f"jira:{site}:worklog:{w.id}" for w in state.issue_worklogs(int(issue_id))}


def test_jira_issues_that_leave_every_rule(tmp_path: Path, sandbox: RunningSandbox) -> None:
    """Three ACME issues made for the test, whatever the date: "closed" is billed in one
    month only, "moved" in that month and a later one, "relabelled" in the later one. The
    owner finalizes the first month's invoice; then "closed" and "moved" move to INT (which
    no rule maps), "relabelled" gets the non-billable label, and the moved issues get new
    time."""
    config = str(config_for(tmp_path, sandbox))
    run("-c", config, "db", "upgrade")
    jira = sandbox.jira.url
    state = sandbox.jira_app.state
    now = state.clock.now()
    earlier, later = now - timedelta(days=35), now - timedelta(hours=2)  # two months apart
    made: dict[str, dict[str, Any]] = {}
    for name, days in (("closed", [earlier]), ("moved", [earlier, later]), ("relabelled", [later])):
        made[name] = admin(jira, "POST", "/issues", json={"project": "ACME", "summary": name})
        for started in days:
            log = {
                "issue": made[name]["key"],
                "started": started.isoformat(),
                "timeSpentSeconds": 5400,
            }
            admin(jira, "POST", "/worklogs", json=log)
    admin(jira, "POST", "/clock", json={"advance": 61})  # past Jira's last minute
    run("-c", config, "sync", "--source", "jira-demo")
    closed, moved, relabelled = (str(made[n]["id"]) for n in ("closed", "moved", "relabelled"))
    keys = {str(m["id"]): str(m["key"]) for m in made.values()}
    with kukkingu(sandbox) as kk:
        first = snapshot(kk)
        acme = lines_by_issue(first, "ACME-")
        assert (len(acme[closed]), len(acme[moved]), len(acme[relabelled])) == (1, 2, 1)
        finalized = acme[closed][0][0]  # the earlier month's invoice
        kk.finalize_invoice(first.invoices[finalized]["id"])
        on = {i: {number for number, _ in lines} for i, lines in acme.items()}
        assert finalized in on[moved]
        assert finalized not in on[relabelled]

        admin(jira, "POST", f"/issues/{keys[moved]}/move", json={"project": "INT"})
        admin(jira, "POST", f"/issues/{keys[closed]}/move", json={"project": "INT"})
        admin(jira, "PATCH", f"/issues/{keys[relabelled]}", json={"labels": ["internal"]})
        now = state.clock.now()
        for issue in (closed, moved):  # new time on the moved issues: never for ACME
            admin(
                jira,
                "POST",
                "/worklogs",
                json={
                    "issue": issue,
                    "started": (now - timedelta(hours=1)).isoformat(),
                    "timeSpentSeconds": 3600,
                },
            )
        admin(jira, "POST", "/clock", json={"advance": 61})  # past Jira's last minute
        run("-c", config, "sync", "--source", "jira-demo")

        after = snapshot(kk)
    assert check_invariants(after) == []
    assert after.billables[finalized] == first.billables[finalized]  # never touched
    now_acme = lines_by_issue(after, "ACME-") | lines_by_issue(after, "INT-")
    for issue in (moved, relabelled):
        for number, line in now_acme[issue]:
            if number != finalized:
                assert (float(line["quantity"]), line["amountMinor"]) == (0, 0), line
                assert line["metadata"]["zeroed"] is True
    # no late line on the old contract for the time logged after the move
    assert [n for n, _ in now_acme[closed]] == [finalized]
    assert len(now_acme[moved]) == len(acme[moved])

    drift, unmapped = store_facts(config)
    for issue in (closed, moved):
        on_finalized = {
            key for key in issue_entries(sandbox, issue) if "out_of_scope" in drift.get(key, ())
        }
        assert on_finalized, f"no out_of_scope drift for issue {issue}"
        assert issue_entries(sandbox, issue) <= unmapped  # shown as unmapped work
    assert not issue_entries(sandbox, relabelled) & unmapped  # non-billable, not unmapped


def test_a_jira_sync_with_no_change_asks_once_for_the_open_issues(
    tmp_path: Path, sandbox: RunningSandbox
) -> None:
    """The cost of finding issues that left every rule: one id-only search for what changed
    outside every project and rule, whatever the number of issues on open drafts."""
    config = str(config_for(tmp_path, sandbox))
    run("-c", config, "db", "upgrade")
    run("-c", config, "sync", "--source", "jira-demo")
    admin(sandbox.jira.url, "POST", "/clock", json={"advance": 600})
    sandbox.jira_app.requests.reset()
    sandbox.kukkingu_app.requests.reset()
    run("-c", config, "sync", "--source", "jira-demo")
    calls = {k: v for k, v in sandbox.jira_app.requests.snapshot().items() if v}
    searches = sum(v for k, v in calls.items() if "/search" in k)
    # one search for the rules' projects, one for what changed outside them
    assert searches == 2, calls
    assert writes(dict(sandbox.kukkingu_app.requests.snapshot())) == {}


def test_github_issues_that_leave_every_rule(tmp_path: Path, sandbox: RunningSandbox) -> None:
    """One issue is transferred to a repository no rule names, one to a private repository
    the token cannot see, one is labelled non-billable. The first and the last leave the
    open drafts (0 / 0); the second is only out of view, so its lines stay as they are."""
    config = github_config(tmp_path, sandbox)
    run("-c", config, "db", "upgrade")
    run("-c", config, "sync", "--source", "github-demo")
    gh = sandbox.github.url
    admin(gh, "POST", "/repos", json={"owner": "acme", "name": "archive"})
    admin(gh, "POST", "/repos", json={"owner": "acme", "name": "vault", "private": True})
    with kukkingu(sandbox) as kk:
        first = snapshot(kk)
        website = lines_by_issue(first, "acme/website#")
        api = lines_by_issue(first, "acme/api#")
        state = sandbox.github_app.state
        repo = state.find_repo("acme/website")
        assert repo is not None
        by_id = {str(i.id): i for i in state.repo_issues(repo.id)}
        transferred, hidden = sorted(i for i in website if not by_id[i].is_pr)[:2]
        relabelled = sorted(api)[0]
        numbers = {i: by_id[i].number for i in (transferred, hidden)}
        admin(gh, "POST", f"/issues/acme/website/{numbers[transferred]}/transfer",
              json={"repo": "acme/archive"})  # fmt: skip
        admin(gh, "POST", f"/issues/acme/website/{numbers[hidden]}/transfer",
              json={"repo": "acme/vault"})  # fmt: skip
        api_repo = state.find_repo("acme/api")
        assert api_repo is not None
        issue = next(i for i in state.repo_issues(api_repo.id) if str(i.id) == relabelled)
        admin(gh, "PATCH", f"/issues/acme/api/{issue.number}",
              json={"labels": [*issue.labels, "internal"]})  # fmt: skip
        admin(gh, "POST", "/clock", json={"advance": 61})
        run("-c", config, "sync", "--source", "github-demo")
        after = snapshot(kk)
    assert check_invariants(after) == []
    now = lines_by_issue(after, "acme/") | lines_by_issue(after, "acme/archive#")
    for gone in (transferred, relabelled):
        assert now[gone], gone
        for _, line in now[gone]:
            assert (float(line["quantity"]), line["amountMinor"]) == (0, 0), line
            assert line["metadata"]["zeroed"] is True
    # out of view is not out of scope: the hidden issue's lines are untouched
    assert sorted(b["id"] for _, b in now[hidden]) == sorted(b["id"] for _, b in website[hidden])
    assert [b["amountMinor"] for _, b in now[hidden]] == [
        b["amountMinor"] for _, b in website[hidden]
    ]
    archive = state.find_repo("acme/archive")
    assert archive is not None
    (moved,) = state.repo_issues(archive.id)
    host = gh.split("://", 1)[1]
    prefixes = tuple(
        f"github:{host}:comment:{c.id}:" for c in state.issue_comments(archive.id, moved.number)
    )
    _, unmapped = store_facts(config)
    assert [key for key in unmapped if key.startswith(prefixes)]  # shown as unmapped work


def test_a_jira_project_that_stops_answering_is_a_problem_and_the_rest_bills(
    tmp_path: Path, sandbox: RunningSandbox
) -> None:
    """The account loses Browse projects on GLX: Jira refuses every JQL naming it. GLX's
    billed lines stay (lost access is not deletion), ACME still bills, the run is partial
    and names the project. When access comes back, the work logged on GLX meanwhile (which
    the worklog feed had already passed) is billed, and the problem is resolved."""
    config = str(config_for(tmp_path, sandbox))
    run("-c", config, "db", "upgrade")
    run("-c", config, "sync", "--source", "jira-demo")
    jira = sandbox.jira.url
    state = sandbox.jira_app.state
    now = state.clock.now()
    with kukkingu(sandbox) as kk:
        before = snapshot(kk)
        admin(jira, "PATCH", "/projects/GLX", json={"browse": False})
        acme_issue = next(i for i in state.issues() if i.project_key == "ACME" and not i.labels)
        glx_issue = next(i for i in state.issues() if i.project_key == "GLX")
        worklog: dict[str, Any] = {"started": (now - timedelta(hours=3)).isoformat()}
        acme_log = {**worklog, "issue": acme_issue.key, "timeSpentSeconds": 7200}
        admin(jira, "POST", "/worklogs", json=acme_log)
        glx_log = {**worklog, "issue": glx_issue.key, "timeSpentSeconds": 5400}
        during = admin(jira, "POST", "/worklogs", json=glx_log)
        admin(jira, "POST", "/clock", json={"advance": 61})

        result = CliRunner(env={"BILLSYNC_CONFIG": None}).invoke(
            cli, ["-c", config, "sync", "--source", "jira-demo"]
        )
        assert result.exit_code == 1, result.output  # partial: an operator must look
        assert "project GLX" in result.stderr
        assert "does not exist for the field 'project'" in result.stderr
        partial = snapshot(kk)
        assert check_invariants(partial) == []
        glx_before = lines_by_issue(before, "GLX-")
        assert lines_by_issue(partial, "GLX-") == glx_before  # untouched
        acme_added = _seconds(partial, acme_issue.key) - _seconds(before, acme_issue.key)
        assert acme_added == 7200  # the rest of the source billed
        assert dashboard_problems(config) == ("partial", "project GLX")

        admin(jira, "PATCH", "/projects/GLX", json={"browse": True})
        admin(jira, "POST", "/clock", json={"advance": 61})
        run("-c", config, "sync", "--source", "jira-demo")
        after = snapshot(kk)
    assert check_invariants(after) == []
    assert dashboard_problems(config) == ("succeeded", None)
    billed = [
        b
        for items in after.billables.values()
        for b in items
        if b["referenceId"].endswith(f":{during['id']}")
    ]
    assert [b["metadata"]["rawSeconds"] for b in billed] == [5400]  # billed once, not lost


def _seconds(shot: KukkinguSnapshot, key: str) -> int:
    return sum(
        int(b["metadata"]["rawSeconds"])
        for items in shot.billables.values()
        for b in items
        if b["referenceId"].split("@", 1)[0] == key
    )
