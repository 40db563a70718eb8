"""Bad Kukkingu answers, end to end: the Kukkingu sandbox's `respond` and `mangle` faults
give HTML error pages, empty and truncated bodies and schema drift on real HTTP, in the middle
of a real `billsync sync`.

For every case: a good sync first; then new work and a broken answer; the sync must fail
with a message naming the route and the reason (CLI stderr and the run record), and the next
sync (Kukkingu healthy again) must bill the new work exactly once and keep every earlier
line: a write whose answer was lost is adopted, never doubled.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from tests.badinput.harness import World
from tests.badinput.test_jira import assert_nothing_lost_and_good_work_billed
from tests.support.jira import JIRA_NOW

INVOICES = "/api/v1/invoices"
BILLABLES = "/api/v1/billables"
INVOICE = "/api/v1/invoices/{invoiceId}"
HTML_502 = "<html><head><title>502 Bad Gateway</title></head><body>nginx</body></html>"

CASES = [
    # (id, method, route, fault, reason in the message)
    ("html-502-page", "GET", INVOICES, {"kind": "respond", "status": 502, "body": HTML_502}, "502"),
    (
        "html-200-page",
        "GET",
        INVOICES,
        {"kind": "respond", "body": "<html>login</html>"},
        "not JSON (text/html",
    ),
    (
        "empty-200",
        "GET",
        INVOICES,
        {"kind": "respond", "content_type": "application/json"},
        "not JSON",
    ),
    ("truncated-json", "GET", INVOICES, {"kind": "mangle", "truncate": 60}, "not JSON"),
    (
        "missing-field",
        "GET",
        INVOICES,
        {"kind": "mangle", "drop": ["data.*.amountMinor"]},
        "amountMinor: Field required",
    ),
    (
        "unknown-enum",
        "GET",
        INVOICES,
        {"kind": "mangle", "replace": {"data.*.status": "PAID"}},
        "status: Input should be 'DRAFT', 'FINALIZED' or 'VOID'",
    ),
    (
        "wrong-type",
        "GET",
        INVOICES,
        {"kind": "mangle", "replace": {"data.*.amountMinor": "lots"}},
        "amountMinor",
    ),
    ("no-envelope", "GET", INVOICES, {"kind": "mangle", "drop": ["data"]}, "envelope"),
    ("create-answer-truncated", "POST", BILLABLES, {"kind": "mangle", "truncate": 30}, "not JSON"),
    (
        "create-answer-empty",
        "POST",
        BILLABLES,
        {"kind": "respond", "content_type": "application/json"},
        "not JSON",
    ),
    (
        "create-answer-drift",
        "POST",
        BILLABLES,
        {"kind": "mangle", "replace": {"data.*.quantity": "a lot"}},
        "quantity",
    ),
    (
        "update-answer-drift",
        "PUT",
        INVOICE,
        {"kind": "mangle", "replace": {"data.status": "ARCHIVED"}},
        "status",
    ),
    (
        "html-401",
        "POST",
        BILLABLES,
        {"kind": "respond", "status": 401, "body": "<html>Unauthorized</html>"},
        "401",
    ),
]


@pytest.mark.parametrize(
    ("method", "route", "fault", "reason"),
    [pytest.param(*case[1:], id=case[0]) for case in CASES],
)
def test_a_broken_answer_fails_clearly_and_the_next_sync_loses_and_doubles_nothing(
    world: World, method: str, route: str, fault: dict[str, Any], reason: str
) -> None:
    world.sync("jira-demo")
    before, ledger = world.snapshot(), world.lines()
    issue = world.jira.add_issue(project="ACME", summary="Corpus issue")
    world.jira.add_worklog(issue["key"], started=JIRA_NOW - timedelta(hours=5), seconds=5400)
    world.jira.advance_clock(120)
    world.kukkingu.fault({**fault, "count": 3, "match": {"method": method, "route": route}})

    result = world.sync("jira-demo", ok=False)

    assert result.exit_code == 1, result.output
    (message,) = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert message.startswith(f"error: jira-demo: Kukkingu {method} {route} "), message
    assert reason in message
    assert "Traceback" not in message
    status, error, _ = world.last_run()
    assert status == "failed"
    assert error is not None
    assert f"Kukkingu {method} {route}" in error
    assert reason in error
    world.kukkingu.app.faults.clear()
    world.sync("jira-demo")
    assert_nothing_lost_and_good_work_billed(world, before, ledger, issue["key"])
    world.kukkingu.app.requests.reset()
    world.sync("jira-demo")  # and then it is settled: nothing more to write
    assert not [r for r in world.kukkingu.requests() if not r.startswith("GET ")]
