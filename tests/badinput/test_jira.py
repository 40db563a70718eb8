"""Bad Jira input, end to end: the Jira sandbox serves it, `billsync sync` (the real CLI, the
real connector) reads it, and the Kukkingu sandbox must keep what it held.

For every case: a good sync first; then the bad payload and one good worklog arrive; the next
sync must (a) record a problem naming the worklog and the reason, (b) still bill the good
worklog, (c) keep every line billed before. Broken text (lone surrogates, invalid UTF-8, NUL)
comes through the sandbox's ``mangle`` fault, since no JSON value can carry it.
"""

from __future__ import annotations

import json
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest

from tests.badinput.harness import CORPUS, World
from tests.support.billing import check_invariants
from tests.support.jira import JIRA_NOW

CASES: list[dict[str, Any]] = json.loads((CORPUS / "jira_worklogs.json").read_text())["cases"]
AUTHOR = {"accountId": "712020:corpus", "displayName": "Corpus", "active": True}
STARTED = "2026-11-19T09:00:00.000+0100"
SEARCH = "/rest/api/2/search/jql"
WORKLOGS = "/rest/api/2/worklog/list"


def site(world: World) -> str:
    return world.jira.url.split("://")[1]


def first_sync_then_a_new_issue(world: World) -> tuple[Any, set[Any], dict[str, Any]]:
    """A good sync; then a new ACME issue with one good worklog (to be billed next time)."""
    world.sync("jira-demo")
    before, ledger = world.snapshot(), world.lines()
    assert check_invariants(before) == []
    issue = world.jira.add_issue(project="ACME", summary="Corpus issue")
    world.jira.add_worklog(issue["key"], started=JIRA_NOW - timedelta(hours=5), seconds=5400)
    return before, ledger, issue


def assert_nothing_lost_and_good_work_billed(
    world: World, before: Any, ledger: set[Any], issue_key: str, hours: str = "1.5"
) -> None:
    after = world.snapshot()
    assert check_invariants(after) == []
    assert before.lines() <= after.lines(), "a line billed before the bad input changed"
    assert ledger <= world.lines()
    new = {
        (b["referenceId"], Decimal(str(b["quantity"])))
        for items in after.billables.values()
        for b in items
    }
    assert (issue_key, Decimal(hours)) in new, f"the good worklog on {issue_key} was not billed"


@pytest.mark.parametrize("case", CASES, ids=[c["id"] for c in CASES])
def test_a_bad_worklog_is_reported_and_stops_nothing(world: World, case: dict[str, Any]) -> None:
    before, ledger, issue = first_sync_then_a_new_issue(world)
    raw: dict[str, Any] = {
        "id": "9100",
        "issueId": issue["id"],
        "author": AUTHOR,
        "started": STARTED,
        "timeSpentSeconds": 600,
        "comment": "corpus",
        **case.get("change", {}),
    }
    for name in case.get("drop", []):
        raw.pop(name)
    world.jira.add_raw_worklog(issue["key"], raw)
    world.jira.advance_clock(120)

    result = world.sync("jira-demo")

    kind, reason = case["expect"]
    subject = f"jira:{site(world)}:worklog:{case.get('key', '9100')}"
    found = {s: p for s, p in world.problems().items() if s.startswith(subject)}
    assert len(found) == 1, f"no single problem for {subject}: {world.problems()}"
    ((found_kind, found_reason),) = found.values()
    assert found_kind == kind
    assert reason in found_reason
    if kind == "bad_entry" and "key" not in case:
        assert found_reason.startswith("Jira worklog 9100: ")
        assert "1 new bad entries (1 in all" in result.stdout
    status, error, _counts = world.last_run()
    assert (status, error) == ("succeeded", None)
    assert_nothing_lost_and_good_work_billed(world, before, ledger, issue["key"])


def test_a_5_mb_comment_is_read_and_billed(world: World) -> None:
    before, ledger, issue = first_sync_then_a_new_issue(world)
    world.jira.add_worklog(
        issue["key"], started=JIRA_NOW - timedelta(hours=4), seconds=1800, comment="x" * 5_000_000
    )
    world.jira.add_raw_worklog(
        issue["key"],
        {
            "id": "9101",
            "issueId": issue["id"],
            "author": AUTHOR,
            "started": STARTED,
            "timeSpentSeconds": -1,
            "comment": "y" * 5_000_000,
        },
    )
    world.jira.advance_clock(120)
    world.sync("jira-demo")
    assert (
        "timeSpentSeconds -1 is not positive"
        in world.problems()[f"jira:{site(world)}:worklog:9101"][1]
    )
    assert_nothing_lost_and_good_work_billed(world, before, ledger, issue["key"], hours="2")


BROKEN_TEXT = {
    "lone-surrogate": b"\\ud800".hex(),
    "invalid-utf8": b"\xff\xfe\xc3".hex(),
    "nul-character": b"\\u0000".hex(),
    "control-characters": b"\\u001b[31m\\u0007".hex(),
}


@pytest.mark.parametrize("text", list(BROKEN_TEXT.values()), ids=list(BROKEN_TEXT))
def test_broken_text_in_a_worklog_comment_and_an_issue_summary(world: World, text: str) -> None:
    before, ledger, _ = first_sync_then_a_new_issue(world)
    broken = world.jira.add_issue(project="ACME", summary="Broken MARK-SUMMARY summary")
    world.jira.add_worklog(
        broken["key"], started=JIRA_NOW - timedelta(hours=3), seconds=3600, comment="c MARK-COMMENT"
    )
    world.jira.advance_clock(120)
    for route, marker in ((SEARCH, "MARK-SUMMARY"), (WORKLOGS, "MARK-COMMENT")):
        world.jira.fault(
            {"kind": "mangle", "substitute": {marker: text}, "match": {"route": route}}
        )

    world.sync("jira-demo")

    after = world.snapshot()
    lines = {b["referenceId"]: b for items in after.billables.values() for b in items}
    assert lines[broken["key"]]["description"].startswith(f"{broken['key']} Broken ")
    assert "MARK" not in lines[broken["key"]]["description"]
    assert_nothing_lost_and_good_work_billed(world, before, ledger, _["key"])


@pytest.mark.parametrize(
    "drift",
    [
        pytest.param({"drop": ["issues.*.key"]}, id="issue-without-key"),
        pytest.param({"drop": ["issues.*.id"]}, id="issue-without-id"),
        pytest.param({"replace": {"issues.*.fields": "none"}}, id="fields-not-an-object"),
        pytest.param({"replace": {"issues.*": "ACME-1"}}, id="issue-not-an-object"),
    ],
)
def test_issues_of_the_wrong_shape_leave_their_work_unmapped_and_the_rest_billed(
    world: World, drift: dict[str, Any]
) -> None:
    before, ledger, issue = first_sync_then_a_new_issue(world)
    # GLX bills one line per worklog: new work on a known GLX issue needs no issue search
    glx = world.jira.add_worklog("GLX-2", started=JIRA_NOW - timedelta(hours=3), seconds=5400)
    world.jira.advance_clock(120)
    world.jira.fault({"kind": "mangle", "count": 5, "match": {"route": SEARCH}, **drift})

    world.sync("jira-demo")

    reason = f"issue {issue['id']} of jira-demo is unknown"
    assert [r for k, r in world.problems().values() if k == "unmapped" and r == reason]
    after = world.snapshot()
    refs = {b["referenceId"] for items in after.billables.values() for b in items}
    assert issue["key"] not in refs  # its work waits, unmapped, until Jira answers properly
    assert f"GLX-2:{glx['id']}" in refs
    assert before.lines() <= after.lines()
    assert ledger <= world.lines()
    assert check_invariants(after) == []
    world.jira.app.faults.clear()
    world.sync("jira-demo")  # Jira answers properly again: nothing else needed
    assert_nothing_lost_and_good_work_billed(world, before, ledger, issue["key"])


@pytest.mark.parametrize(
    "answer",
    [
        pytest.param({"kind": "respond", "status": 200, "body": ""}, id="empty-200"),
        pytest.param(
            {"kind": "respond", "status": 404, "body": "<html><h1>Not Found</h1></html>"},
            id="html-404",
        ),
        pytest.param(
            {"kind": "respond", "status": 200, "body": "<html>Login</html>"}, id="html-200"
        ),
        pytest.param({"kind": "mangle", "truncate": 40}, id="truncated-json"),
    ],
)
def test_an_unreadable_jira_answer_fails_the_run_clearly_and_loses_nothing(
    world: World, answer: dict[str, Any]
) -> None:
    before, ledger, issue = first_sync_then_a_new_issue(world)
    world.jira.advance_clock(120)
    world.jira.fault({**answer, "count": 5, "match": {"route": WORKLOGS}})

    result = world.sync("jira-demo", ok=False)

    assert result.exit_code == 1
    assert f"error: jira-demo: Jira {site(world)} POST worklog/list" in result.stderr
    status, error, _ = world.last_run()
    assert status == "failed"
    assert error is not None
    assert "worklog/list" in error
    assert world.snapshot().lines() == before.lines()
    assert world.lines() == ledger
    world.jira.app.faults.clear()
    world.sync("jira-demo")  # the cursor did not move past the unread work
    assert_nothing_lost_and_good_work_billed(world, before, ledger, issue["key"])
