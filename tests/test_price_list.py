"""End to end: rates from the Cliniko price list (SPEC §11), over real HTTP.

The demo config (examples/sandbox.toml) prices Globex's repository by the Cliniko item
``CONSULT-60`` (150.00 an hour). Each test syncs the GitHub source through the CLI against
the served sandboxes (GitHub, Kukkingu, Cliniko), changes the price list through the Cliniko
sandbox's admin path, syncs again and checks what Kukkingu holds, what the state store
recorded and what the dashboard shows.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from connectors.kukkingu import KukkinguClient
from sandbox.main import RunningSandbox, start_sandbox
from sandbox.server import ServerThread
from tests.support.billing import check_invariants, client_for, snapshot, store, writes
from tests.support.cliniko import RunningCliniko
from tests.test_end_to_end_jira import config_for, run
from worker.config import load_config
from worker.dashboard import create_app
from worker.store import Error, ErrorKind, PriceList

GLOBEX = "globex/platform"
RULE = "rules[3]"  # examples/sandbox.toml: the rule priced by CONSULT-60
DASHBOARD_TOKEN = "dashboard-sandbox-token"  # examples/sandbox.env: public sandbox value


@pytest.fixture
def sandbox() -> Iterator[RunningSandbox]:
    with start_sandbox(kukkingu_port=0, jira_port=0, github_port=0, cliniko_port=0) as running:
        yield running


@pytest.fixture
def cliniko(sandbox: RunningSandbox) -> RunningCliniko:
    return RunningCliniko(sandbox.cliniko_app, sandbox.cliniko)


@pytest.fixture
def config(tmp_path: Path, sandbox: RunningSandbox) -> str:
    path = str(config_for(tmp_path, sandbox))
    run("-c", path, "db", "upgrade")
    return path


@pytest.fixture
def kukkingu(sandbox: RunningSandbox) -> Iterator[KukkinguClient]:
    with client_for(sandbox.kukkingu.url) as client:
        yield client


def sync(config: str, *more: str) -> str:
    return run("-c", config, "sync", "--source", "github-demo", *more)


def spend(sandbox: RunningSandbox, body: str) -> int:
    """A /spend comment written now on a Globex issue (this week's draft is open)."""
    state = sandbox.github_app.state
    number = next(i.number for i in state.repo_issues(state.repo(GLOBEX).id))
    posted = httpx.post(
        f"{sandbox.github.url}/_sandbox/comments",
        json={"repo": GLOBEX, "issue": number, "body": body},
        timeout=10,
    )
    assert posted.status_code == 200, posted.text
    comment_id: int = posted.json()["data"]["id"]
    return comment_id


def globex_lines(kukkingu: KukkinguClient) -> dict[str, tuple[str, dict[str, Any]]]:
    """Every Globex line: reference -> (invoice number, billable)."""
    shot = snapshot(kukkingu)
    assert check_invariants(shot) == []
    return {
        b["referenceId"]: (number, b)
        for number, items in shot.billables.items()
        for b in items
        if b["referenceId"].startswith(GLOBEX)
    }


def priced_at(billable: dict[str, Any], rate: int, price: str) -> bool:
    """The line bills its hours at ``rate`` and names CONSULT-60 at ``price``."""
    (group,) = billable["metadata"]["rates"]
    hours = Decimal(billable["quantity"])
    return bool(
        group["item"] == "CONSULT-60"
        and group["price"] == price
        and group["rate"] == rate
        and billable["amountMinor"] == int((hours * rate).to_integral_value())
    )


def set_price(cliniko: RunningCliniko, price: str) -> None:
    cliniko.edit_item(cliniko.item_id("CONSULT-60"), price=price)


def open_problems(config: str) -> dict[str, str]:
    url = load_config(config).state_url
    with store(url) as factory, factory() as session:
        rows = session.scalars(
            select(Error).where(Error.resolved_at.is_(None), Error.kind == ErrorKind.CONFIGURATION)
        )
        return {row.subject: row.reason for row in rows}


def dashboard_page(config: str, path: str) -> str:
    """``path`` of the dashboard, served over HTTP on a free port."""
    settings = load_config(config)
    with store(settings.state_url) as factory:
        app = create_app(settings, factory=factory, enqueue=lambda source, trigger: "none")
        with ServerThread(app) as server:
            response = httpx.get(
                f"{server.url}{path}",
                headers={"Authorization": f"Bearer {DASHBOARD_TOKEN}"},
                timeout=30,
            )
    assert response.status_code == 200, response.text
    return response.text


def test_a_price_change_reaches_the_open_drafts_and_dry_run_shows_it_first(
    config: str, sandbox: RunningSandbox, cliniko: RunningCliniko, kukkingu: KukkinguClient
) -> None:
    spend(sandbox, "Call with the client.\n/spend 1h 30m")
    sync(config)
    before = globex_lines(kukkingu)
    assert before
    assert all(priced_at(b, 15000, "150.00") for _, b in before.values())
    others = {
        k: v for k, v in snapshot(kukkingu).billables.items() if not k.startswith("ctr_demog")
    }

    set_price(cliniko, "160.00")
    plan = sync(config, "--dry-run")
    assert "planned every issue (new rules or prices, or --replan)" in plan
    assert plan.count("\n    ~ globex/platform#") == len(before)
    assert "160.00" not in str(globex_lines(kukkingu))  # a dry run writes nothing

    sandbox.kukkingu_app.requests.reset()
    sync(config)
    after = globex_lines(kukkingu)
    assert after.keys() == before.keys()
    assert all(priced_at(b, 16000, "160.00") for _, b in after.values())
    counted = writes(dict(sandbox.kukkingu_app.requests.snapshot()))
    assert counted["PUT /api/v1/billables/{billableId}"] == len(before)
    assert "POST /api/v1/billables" not in counted
    # the Acme lines (numbers in the config) are untouched
    assert {
        k: v for k, v in snapshot(kukkingu).billables.items() if not k.startswith("ctr_demog")
    } == others


def test_a_finalized_invoice_is_never_repriced(
    config: str, sandbox: RunningSandbox, cliniko: RunningCliniko, kukkingu: KukkinguClient
) -> None:
    sync(config)
    before = globex_lines(kukkingu)
    invoices = {i.invoice_number: i for i in kukkingu.list_invoices()}
    closed = sorted({number for number, _ in before.values()})[0]  # the oldest week
    kukkingu.finalize_invoice(invoices[closed].id)
    frozen = snapshot(kukkingu).billables[closed]

    set_price(cliniko, "175.00")
    sync(config)
    after = globex_lines(kukkingu)
    assert snapshot(kukkingu).billables[closed] == frozen
    for reference, (number, billable) in after.items():
        if number == closed:
            assert priced_at(billable, 15000, "150.00"), reference
        else:
            assert priced_at(billable, 17500, "175.00"), reference
    assert any(number != closed for number, _ in after.values())


def test_an_archived_item_holds_its_rule_back_with_a_problem(
    config: str, sandbox: RunningSandbox, cliniko: RunningCliniko, kukkingu: KukkinguClient
) -> None:
    sync(config)
    before = globex_lines(kukkingu)
    acme_before = len(snapshot(kukkingu).billables)
    item = cliniko.item_id("CONSULT-60")
    cliniko.edit_item(item, archived_at=cliniko.clock()["now"])
    spend(sandbox, "Incident review.\n/spend 2h")
    spend(sandbox, "Follow-up.\n/spend 1h")  # nor this: the rule is held

    sandbox.kukkingu_app.requests.reset()
    out = sync(config)
    assert out.startswith("github-demo: ")
    assert writes(dict(sandbox.kukkingu_app.requests.snapshot())) == {}  # nothing new, no change
    assert globex_lines(kukkingu) == before  # lines already on drafts stay as they are
    assert len(snapshot(kukkingu).billables) == acme_before
    reason = open_problems(config)[RULE]
    assert reason.startswith("price list item 'CONSULT-60' is archived; the rule's new work")
    problems = dashboard_page(config, "/problems")
    assert "price list item &#39;CONSULT-60&#39; is archived" in problems
    prices = dashboard_page(config, "/prices")
    assert "held" in prices
    assert "CONSULT-60" in prices

    # unarchived: the held work is billed, and the problem is resolved
    cliniko.edit_item(item, archived_at=None)
    sync(config)
    after = globex_lines(kukkingu)
    assert len(after) == len(before) + 2
    assert all(priced_at(b, 15000, "150.00") for _, b in after.values())
    assert RULE not in open_problems(config)


def test_a_price_with_more_decimals_than_the_currency_is_refused(
    config: str, sandbox: RunningSandbox, cliniko: RunningCliniko, kukkingu: KukkinguClient
) -> None:
    sync(config)
    before = globex_lines(kukkingu)
    set_price(cliniko, "150.005")  # USD has 2 decimals: never rounded
    spend(sandbox, "Planning.\n/spend 1h")
    plan = sync(config, "--dry-run")
    # a full plan (the rule changed): every Globex entry is held, the new one too
    held = re.search(r"held back: (\d+) entr\(ies\) of rules whose price list item gives", plan)
    assert held is not None, plan
    assert int(held.group(1)) > len(before)
    assert "\n    + " not in plan
    assert "\n    ~ " not in plan

    sandbox.kukkingu_app.requests.reset()
    sync(config)
    assert writes(dict(sandbox.kukkingu_app.requests.snapshot())) == {}
    assert globex_lines(kukkingu) == before
    assert open_problems(config)[RULE].startswith(
        "price list item 'CONSULT-60': price '150.005' has more decimals than the currency's "
        "2; it would have to be rounded"
    )


def test_a_cliniko_outage_leaves_billing_on_the_cached_prices(
    config: str, sandbox: RunningSandbox, cliniko: RunningCliniko, kukkingu: KukkinguClient
) -> None:
    sync(config)
    before = globex_lines(kukkingu)
    cliniko.fault({"kind": "error500", "count": 1000})  # every request, until cleared
    set_price(cliniko, "160.00")  # changed meanwhile: not seen while Cliniko is down
    spend(sandbox, "Outage work.\n/spend 1h")

    out = sync(config)
    assert out.startswith("github-demo: ")
    after = globex_lines(kukkingu)
    assert len(after) == len(before) + 1  # the new work is billed ...
    assert all(priced_at(b, 15000, "150.00") for _, b in after.values())  # ... at the cache
    assert RULE not in open_problems(config)
    settings = load_config(config)
    with store(settings.state_url) as factory, factory() as session:
        state = session.get_one(PriceList, 1)
        assert state.error is not None
        assert "answered 500" in state.error
        assert state.read_at is not None
        assert state.attempted_at is not None
        assert state.attempted_at - state.read_at > timedelta(0)
    prices = dashboard_page(config, "/prices")
    assert "The last read failed" in prices
    assert "Billing goes on with the prices cached" in prices
    assert "cliniko-sandbox-key" not in prices  # never the key
    overview = dashboard_page(config, "/")
    assert "the Cliniko price list could not be read; billing uses the prices read" in overview

    # back: the next sync reads the change and re-prices the open drafts
    httpx.delete(f"{cliniko.url}/_sandbox/faults", timeout=10).raise_for_status()
    sync(config)
    assert all(priced_at(b, 16000, "160.00") for _, b in globex_lines(kukkingu).values())


def test_a_held_rule_removed_from_the_config_leaves_no_open_problem(
    config: str, sandbox: RunningSandbox, cliniko: RunningCliniko, kukkingu: KukkinguClient
) -> None:
    cliniko.edit_item(cliniko.item_id("CONSULT-60"), item_type="Product")
    sync(config)
    assert open_problems(config)[RULE].startswith(
        "price list item 'CONSULT-60' is a Product, not a Service"
    )
    assert globex_lines(kukkingu) == {}  # held from the first sync: never billed
    path = Path(config)
    text = path.read_text()
    start = text.index("# Globex's private repository")
    path.write_text(text[:start] + text[text.index("[cliniko]") :])
    sync(config)
    assert RULE not in open_problems(config)
    assert globex_lines(kukkingu) == {}  # its work is unmapped now
