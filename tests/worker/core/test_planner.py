"""The planner, scenario by scenario (SPEC §4): routing, grouping, drafts, changes at the
source, late work, drift, VOID, moves. Each scenario walks through syncs with the pure
ledger simulator."""

from dataclasses import replace
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from tests.support.ledger_sim import apply, set_status
from worker.core.model import Issue, LedgerView, Plan, Rule, TimeEntry
from worker.core.planner import entry_reference, match_rule, plan

BERLIN = ZoneInfo("Europe/Berlin")
NOW = datetime(2026, 11, 21, 12, tzinfo=UTC)
DEC = datetime(2026, 12, 2, 12, tzinfo=UTC)
H = 3600

EMPTY = LedgerView()


def rule(index: int = 0, **overrides: object) -> Rule:
    fields: dict[str, object] = {
        "index": index,
        "source": "jira",
        "reference_type": "JIRA",
        "contract_id": "ctr_a",
        "currency": "EUR",
        "hourly_rate_minor": 10000,
        "projects": frozenset({"P"}),
    }
    fields.update(overrides)
    return Rule(**fields)  # type: ignore[arg-type]


def issue(n: int, project: str = "P", **overrides: object) -> Issue:
    fields: dict[str, object] = {
        "source": "jira",
        "issue_id": str(n),
        "key": f"{project}-{n}",
        "project": project,
        "summary": f"Issue {n}",
    }
    fields.update(overrides)
    return Issue(**fields)  # type: ignore[arg-type]


def entry(
    n: int, issue_n: int, seconds: int = H, day: int = 3, author: str = "bob", month: int = 11
) -> TimeEntry:
    return TimeEntry(
        f"jira:site:worklog:{n}",
        "jira",
        str(issue_n),
        author,
        datetime(2026, month, day, 9, tzinfo=UTC),
        seconds,
    )


def run(entries, issues, rules, ledger=EMPTY, now=NOW) -> Plan:
    return plan(
        entries=entries,
        issues=issues,
        rules=rules,
        zone=BERLIN,
        now=now,
        ledger=ledger,
        scope=frozenset({"jira"}),
    )


def step(entries, issues, rules, ledger=EMPTY, now=NOW) -> tuple[Plan, LedgerView]:
    result = run(entries, issues, rules, ledger, now)
    return result, apply(ledger, result)


# --- routing ----------------------------------------------------------------------------------


def test_first_matching_rule_decides_and_labels_exclude_without_fall_through() -> None:
    rules = [
        rule(0, contract_id="ctr_a", non_billable_labels=frozenset({"internal"})),
        rule(1, contract_id="ctr_b"),  # also takes P, but rule 0 comes first
    ]
    issues = [issue(1), issue(2, labels=frozenset({"internal"}))]
    result = run([entry(1, 1), entry(2, 2)], issues, rules)
    assert [c.group.contract_id for c in result.creates] == ["ctr_a"]
    assert result.excluded == ("jira:site:worklog:2",)
    assert result.problems == ()


def test_unmapped_work_and_unknown_issues_are_problems() -> None:
    result = run([entry(1, 1), entry(2, 99)], [issue(1, project="OTHER")], [rule()])
    assert [(p.entry_key, p.kind) for p in result.problems] == [
        ("jira:site:worklog:1", "unmapped"),
        ("jira:site:worklog:2", "unmapped"),
    ]
    assert "no rule takes OTHER-1 (project OTHER) of jira" in result.problems[0].reason
    assert "issue 99 of jira is unknown" in result.problems[1].reason
    assert result.creates == ()


def test_jql_rules_match_the_issues_the_source_tagged() -> None:
    rules = [rule(0, projects=frozenset(), has_jql=True), rule(1, contract_id="ctr_b")]
    tagged = issue(1, jql_rules=frozenset({0}))
    assert match_rule(rules, tagged) == rules[0]
    assert match_rule(rules, issue(2)) == rules[1]


@pytest.mark.parametrize(
    ("issue_key", "entry_key", "expected"),
    [
        ("PROJ-123", "jira:acme.atlassian.net:worklog:10042", "PROJ-123:10042"),
        ("o/r#42", "github:github.com:comment:777:2", "o/r#42:777:2"),
        ("X-1", "other-key", "X-1:other-key"),
    ],
)
def test_entry_references(issue_key: str, entry_key: str, expected: str) -> None:
    assert entry_reference(issue_key, entry_key) == expected


# --- grouping and periods ----------------------------------------------------------------------


def test_issue_grouping_sums_an_issue_per_period() -> None:
    entries = [entry(1, 1, H), entry(2, 1, H // 2), entry(3, 1, H, month=12, day=1), entry(4, 2, H)]
    result = run(entries, [issue(1), issue(2)], [rule()], now=DEC)
    got = {
        (c.draft.period, c.content.reference_id, str(c.content.quantity)) for c in result.creates
    }
    assert got == {
        ("2026-11", "P-1", "1.50"),
        ("2026-12", "P-1", "1.00"),
        ("2026-11", "P-2", "1.00"),
    }
    assert {d.invoice_number for d in result.new_drafts} == {"ctr_a-2026-11-1", "ctr_a-2026-12-1"}


def test_entry_grouping_gives_a_line_per_entry() -> None:
    result = run([entry(1, 1), entry(2, 1)], [issue(1)], [rule(grouping="entry")])
    assert [c.content.reference_id for c in result.creates] == ["P-1:1", "P-1:2"]


def test_weekly_and_no_period() -> None:
    weekly = run([entry(1, 1, day=21), entry(2, 1, day=23)], [issue(1)], [rule(period="weekly")])
    assert sorted(d.invoice_number for d in weekly.new_drafts) == [
        "ctr_a-2026-W47-1",
        "ctr_a-2026-W48-1",
    ]
    none = run(
        [entry(1, 1), entry(2, 1, month=12)],
        [issue(1)],
        [rule(period="none", invoice_number="{contract}-{seq}")],
    )
    assert [d.invoice_number for d in none.new_drafts] == ["ctr_a-1"]
    assert none.creates[0].content.quantity == 2


def test_metadata_and_description() -> None:
    result = run([entry(1, 1, 5400)], [issue(1, summary="Fix   the\nlogin")], [rule()])
    content = result.creates[0].content
    assert content.description == "P-1 Fix the login"
    assert content.metadata["source"] == "jira"
    assert content.metadata["issueId"] == "1"
    assert content.metadata["period"] == "2026-11"
    assert content.metadata["entries"] == 1
    assert content.metadata["rawSeconds"] == 5400
    assert content.position == 0


# --- drafts --------------------------------------------------------------------------------------


def test_a_full_draft_opens_the_next_one() -> None:
    issues = [issue(n) for n in range(250)]
    result, ledger = step([entry(n, n) for n in range(250)], issues, [rule()])
    per_draft: dict[str, int] = {}
    for c in result.creates:
        per_draft[str(c.draft.seq)] = per_draft.get(str(c.draft.seq), 0) + 1
    assert per_draft == {"1": 100, "2": 100, "3": 50}
    assert [d.invoice_number for d in result.new_drafts] == [
        "ctr_a-2026-11-1",
        "ctr_a-2026-11-2",
        "ctr_a-2026-11-3",
    ]
    assert sorted(c.content.position for c in result.creates if c.draft.seq == 2) == list(
        range(100)
    )
    # more work later fills draft 3, then opens draft 4
    more = [entry(1000 + n, 1000 + n) for n in range(60)]
    second = run(
        [entry(n, n) for n in range(250)] + more,
        issues + [issue(1000 + n) for n in range(60)],
        [rule()],
        ledger,
    )
    assert {c.draft.seq for c in second.creates} == {3, 4}
    assert sum(1 for c in second.creates if c.draft.seq == 3) == 50
    assert [d.key.seq for d in second.new_drafts] == [4]


def test_work_that_bills_nothing_opens_no_draft_when_the_others_are_full() -> None:
    # found by the L benchmark: with every draft of the period full, a group that nets to
    # zero (a correction taking back what was logged) opened a draft and left it empty,
    # and the sync created an invoice with no line
    issues = [issue(n) for n in range(101)]
    work = [entry(n, n) for n in range(100)]
    first, ledger = step(work, issues, [rule()])
    assert [d.key.seq for d in first.new_drafts] == [1]
    nothing = [entry(500, 100, seconds=H), entry(501, 100, seconds=-H)]
    second = run(work + nothing, issues, [rule()], ledger)
    assert second.creates == ()
    assert second.new_drafts == ()


def test_positions_are_stable_when_lines_change() -> None:
    entries = [entry(1, 1), entry(2, 2), entry(3, 3)]
    _, ledger = step(entries, [issue(1), issue(2), issue(3)], [rule()])
    changed = run(
        [entry(1, 1), entry(2, 2, 2 * H), entry(3, 3)],
        [issue(1), issue(2), issue(3)],
        [rule()],
        ledger,
    )
    assert [(u.content.reference_id, u.content.position) for u in changed.updates] == [("P-2", 1)]


# --- changes at the source ------------------------------------------------------------------------


def test_no_change_plans_nothing() -> None:
    entries = [entry(1, 1), entry(2, 2)]
    _, ledger = step(entries, [issue(1), issue(2)], [rule()])
    again = run(entries, [issue(1), issue(2)], [rule()], ledger)
    assert again.writes == 0
    assert again.drift == ()


def test_edit_updates_the_line_in_place_and_deletion_zeroes_it() -> None:
    _, ledger = step([entry(1, 1), entry(2, 1)], [issue(1)], [rule()])
    edited = run([entry(1, 1, 3 * H), entry(2, 1)], [issue(1)], [rule()], ledger)
    assert [str(u.content.quantity) for u in edited.updates] == ["4.00"]
    ledger = apply(ledger, edited)
    gone = run([], [issue(1)], [rule()], ledger)
    (update,) = gone.updates
    assert update.zeroed
    assert update.content.quantity == 0
    assert update.content.amount_minor == 0
    assert update.content.metadata["zeroed"] is True
    assert run([], [issue(1)], [rule()], apply(ledger, gone)).writes == 0


def test_moved_issue_keeps_its_line_with_the_new_key() -> None:
    _, ledger = step([entry(1, 1)], [issue(1)], [rule(projects=frozenset({"P", "Q"}))])
    moved = run(
        [entry(1, 1)],
        [issue(1, project="Q", key="Q-7")],
        [rule(projects=frozenset({"P", "Q"}))],
        ledger,
    )
    assert moved.creates == ()
    assert [u.content.reference_id for u in moved.updates] == ["Q-7"]


def test_rate_change_reprices_open_lines() -> None:
    _, ledger = step([entry(1, 1)], [issue(1)], [rule()])
    repriced = run([entry(1, 1)], [issue(1)], [rule(hourly_rate_minor=20000)], ledger)
    assert [u.content.amount_minor for u in repriced.updates] == [20000]


# --- finalized and voided invoices ---------------------------------------------------------


def finalized_ledger() -> LedgerView:
    _, ledger = step([entry(1, 1, H), entry(2, 1, H)], [issue(1)], [rule()])
    return set_status(ledger, "ctr_a-2026-11-1", "FINALIZED")


def test_nothing_changes_on_a_finalized_invoice() -> None:
    ledger = finalized_ledger()
    result = run([entry(1, 1, H), entry(2, 1, H)], [issue(1)], [rule()], ledger)
    assert result.writes == 0
    assert result.drift == ()


def test_more_time_after_finalizing_is_late_work_on_the_current_period() -> None:
    ledger = finalized_ledger()
    result = run(
        [entry(1, 1, H), entry(2, 1, H), entry(3, 1, H // 2)], [issue(1)], [rule()], ledger, now=DEC
    )
    (create,) = result.creates
    assert create.late
    assert create.content.metadata["late"] is True
    assert create.draft.period == "2026-12"  # no open November draft: the current one
    assert create.content.reference_id == "P-1@2026-11"  # cannot clash with December's P-1
    assert str(create.content.quantity) == "0.50"
    assert dict(create.entries) == {"jira:site:worklog:3": H // 2}


def test_an_edit_adding_time_after_finalizing_bills_only_the_difference() -> None:
    ledger = finalized_ledger()
    result = run([entry(1, 1, 2 * H), entry(2, 1, H)], [issue(1)], [rule()], ledger, now=DEC)
    (create,) = result.creates
    assert dict(create.entries) == {"jira:site:worklog:1": H}
    assert str(create.content.quantity) == "1.00"


def test_late_work_prefers_an_open_draft_of_its_own_period() -> None:
    # November: draft 1 full (100 issues), draft 2 open with issue 100; draft 1 finalized
    issues = [issue(n) for n in range(101)]
    work = [entry(n, n) for n in range(101)]
    _, ledger = step(work, issues, [rule()])
    ledger = set_status(ledger, "ctr_a-2026-11-1", "FINALIZED")
    result = run([*work, entry(500, 0)], issues, [rule()], ledger, now=DEC)
    (create,) = result.creates
    assert create.late
    assert create.draft == replace(create.draft, period="2026-11", seq=2)
    assert create.content.reference_id == "P-0"  # same period: no suffix needed
    assert result.new_drafts == ()


def test_new_work_for_a_closed_period_is_late() -> None:
    _, ledger = step([entry(1, 1)], [issue(1)], [rule()])
    ledger = set_status(ledger, "ctr_a-2026-11-1", "FINALIZED")
    result = run([entry(1, 1), entry(2, 2)], [issue(1), issue(2)], [rule()], ledger, now=DEC)
    (create,) = result.creates
    assert create.late
    assert create.draft.period == "2026-12"
    assert create.content.reference_id == "P-2@2026-11"


def test_less_time_or_a_deleted_entry_after_finalizing_is_drift() -> None:
    ledger = finalized_ledger()
    line_id = ledger.lines[0].id
    result = run([entry(1, 1, H // 2)], [issue(1)], [rule()], ledger)
    assert result.writes == 0
    assert {(d.line_id, d.entry_key, d.kind, d.seconds_delta) for d in result.drift} == {
        (line_id, "jira:site:worklog:1", "less_time", -H // 2),
        (line_id, "jira:site:worklog:2", "entry_deleted", -H),
    }


def test_a_negative_correction_after_finalizing_is_drift_not_a_line() -> None:
    ledger = finalized_ledger()
    result = run(
        [entry(1, 1), entry(2, 1), entry(3, 1, -H // 2)], [issue(1)], [rule()], ledger, now=DEC
    )
    assert result.creates == ()
    assert [(d.entry_key, d.kind, d.seconds_delta) for d in result.drift] == [
        ("jira:site:worklog:3", "less_time", -H // 2)
    ]


# --- work that leaves every rule ------------------------------------------------------------


def test_an_issue_moved_out_of_every_rule_is_zeroed_on_its_draft() -> None:
    _, ledger = step([entry(1, 1), entry(2, 2)], [issue(1), issue(2)], [rule()])
    moved = issue(1, project="OTHER", key="OTHER-7")
    result = run([entry(1, 1), entry(2, 2)], [moved, issue(2)], [rule()], ledger)
    (update,) = result.updates
    assert update.zeroed
    assert (float(update.content.quantity), update.content.amount_minor) == (0, 0)
    assert [(p.entry_key, p.kind) for p in result.problems] == [("jira:site:worklog:1", "unmapped")]
    assert result.drift == ()


def test_a_relabelled_issue_is_zeroed_and_excluded() -> None:
    rules = [rule(non_billable_labels=frozenset({"internal"}))]
    _, ledger = step([entry(1, 1)], [issue(1)], rules)
    result = run([entry(1, 1)], [issue(1, labels=frozenset({"internal"}))], rules, ledger)
    (update,) = result.updates
    assert update.zeroed
    assert result.excluded == ("jira:site:worklog:1",)


@pytest.mark.parametrize("how", ["moved", "relabelled"])
def test_work_that_left_every_rule_after_finalizing_is_drift_not_deletion(how: str) -> None:
    rules = [rule(non_billable_labels=frozenset({"internal"}))]
    ledger = finalized_ledger()
    line_id = ledger.lines[0].id
    gone = issue(1, project="OTHER") if how == "moved" else issue(1, labels=frozenset({"internal"}))
    more = entry(3, 1, H, day=20)  # new time after the move: not for this contract
    result = run([entry(1, 1), entry(2, 1), more], [gone], rules, ledger, now=DEC)
    assert result.creates == ()  # no late line on the old contract
    assert result.new_drafts == ()
    assert {(d.line_id, d.entry_key, d.kind, d.seconds_delta) for d in result.drift} == {
        (line_id, "jira:site:worklog:1", "out_of_scope", -H),
        (line_id, "jira:site:worklog:2", "out_of_scope", -H),
    }


def test_finalized_time_is_not_billed_again_when_its_issue_moves_to_another_contract() -> None:
    rules = [rule(0), rule(1, contract_id="ctr_b", projects=frozenset({"Q"}))]
    ledger = finalized_ledger()
    moved = issue(1, project="Q", key="Q-1")
    more = entry(3, 1, H // 2, day=20)
    result = run([entry(1, 1), entry(2, 1), more], [moved], rules, ledger, now=DEC)
    (create,) = result.creates  # only the new half hour goes to the new contract
    assert create.group.contract_id == "ctr_b"
    assert create.entries == {"jira:site:worklog:3": H // 2}
    assert result.drift == ()  # the finalized invoice keeps the time it billed


def test_finalized_time_is_not_billed_again_when_its_date_moves_to_another_period() -> None:
    ledger = finalized_ledger()
    redated = entry(2, 1, H, day=2, month=12)  # edited into December
    result = run([entry(1, 1), redated], [issue(1)], [rule()], ledger, now=DEC)
    assert result.creates == ()
    assert result.drift == ()


def test_voided_invoice_entries_are_billed_again_on_a_new_draft() -> None:
    _, ledger = step([entry(1, 1), entry(2, 2)], [issue(1), issue(2)], [rule()])
    ledger = set_status(ledger, "ctr_a-2026-11-1", "VOID")
    result = run([entry(1, 1), entry(2, 2)], [issue(1), issue(2)], [rule()], ledger)
    assert [d.invoice_number for d in result.new_drafts] == ["ctr_a-2026-11-2"]
    assert [c.content.reference_id for c in result.creates] == ["P-1", "P-2"]
    assert all(c.content.metadata["rebilled"] is True for c in result.creates)
    assert not any(c.late for c in result.creates)


def test_lines_of_other_sources_are_left_alone_but_fill_the_draft() -> None:
    _, ledger = step([entry(1, 1)], [issue(1)], [rule()])
    other = tuple(
        replace(line, group=replace(line.group, source="github")) for line in ledger.lines
    )
    ledger = LedgerView(ledger.drafts, other)
    result = run([entry(1, 1)], [issue(1)], [rule()], ledger)
    (create,) = result.creates
    assert create.content.reference_id == "P-1~jira"  # P-1 is taken on that draft by github
    assert create.content.position == 1
    assert result.updates == ()


def test_entries_outside_the_scope_are_refused() -> None:
    stray = replace(entry(1, 1), source="github")
    with pytest.raises(ValueError, match="outside"):
        run([stray], [issue(1)], [rule()])


# --- rates from a price list (SPEC §11) ---------------------------------------------------------


def by_item(**overrides: object) -> Rule:
    fields: dict[str, object] = {
        "hourly_rate_minor": 15000,
        "rate_item": "CONSULT-60",
        "prices": {"CONSULT-60": "150.00"},
    }
    fields.update(overrides)
    return rule(0, **fields)


def test_a_line_priced_by_an_item_names_the_item_and_the_price() -> None:
    priced = by_item(
        person_rates={"alice": 9550},
        person_items={"alice": "REVIEW-30"},
        prices={"CONSULT-60": "150.00", "REVIEW-30": "95.50"},
    )
    result = run([entry(1, 1), entry(2, 1, author="alice")], [issue(1)], [priced])
    (create,) = result.creates
    assert create.content.amount_minor == 15000 + 9550
    assert create.content.metadata["rates"] == [
        {
            "rate": 9550,
            "quantity": "1.00",
            "amountMinor": 9550,
            "item": "REVIEW-30",
            "price": "95.50",
        },
        {
            "rate": 15000,
            "quantity": "1.00",
            "amountMinor": 15000,
            "item": "CONSULT-60",
            "price": "150.00",
        },
    ]


def test_a_number_rate_and_an_item_rate_of_the_same_amount_are_two_groups() -> None:
    priced = by_item(person_rates={"alice": 15000})  # alice's rate is a number
    (create,) = run([entry(1, 1), entry(2, 1, author="alice")], [issue(1)], [priced]).creates
    assert [g.get("item") for g in create.content.metadata["rates"]] == [None, "CONSULT-60"]
    assert create.content.amount_minor == 30000


def test_a_price_change_reprices_the_open_line() -> None:
    _, ledger = step([entry(1, 1)], [issue(1)], [by_item()])
    changed = by_item(hourly_rate_minor=16000, prices={"CONSULT-60": "160.00"})
    result = run([entry(1, 1)], [issue(1)], [changed], ledger)
    (update,) = result.updates
    assert update.content.amount_minor == 16000
    assert update.content.metadata["rates"][0]["price"] == "160.00"


def test_a_held_rule_bills_no_new_work_and_leaves_its_lines_alone() -> None:
    first, ledger = step([entry(1, 1)], [issue(1)], [by_item()])
    held = by_item(hourly_rate_minor=0, prices={}, held="price list item 'CONSULT-60' is archived")
    # more time on the billed issue, and a new issue: neither is planned, nothing is zeroed
    result = run([entry(1, 1, 2 * H), entry(2, 2)], [issue(1), issue(2)], [held], ledger)
    assert (result.creates, result.updates, result.new_drafts) == ((), (), ())
    assert sorted(result.held) == ["jira:site:worklog:1", "jira:site:worklog:2"]
    assert result.problems == ()
    # released: the held work is billed at the item's price
    released = run([entry(1, 1, 2 * H), entry(2, 2)], [issue(1), issue(2)], [by_item()], ledger)
    assert [u.content.amount_minor for u in released.updates] == [30000]
    assert [c.content.amount_minor for c in released.creates] == [15000]
    assert first.creates[0].content.amount_minor == 15000


def test_a_held_rule_leaves_other_rules_billing() -> None:
    held = by_item(held="price list item 'CONSULT-60' does not exist")
    other = rule(1, projects=frozenset({"Q"}), contract_id="ctr_b")
    result = run([entry(1, 1), entry(2, 2)], [issue(1), issue(2, project="Q")], [held, other])
    assert [c.content.reference_id for c in result.creates] == ["Q-2"]
    assert result.held == ("jira:site:worklog:1",)


def test_held_work_on_a_finalized_invoice_is_not_drift() -> None:
    ledger = finalized_ledger()
    held = rule(held="price list item 'CONSULT-60' is archived")
    result = run([entry(1, 1, H), entry(2, 1, H)], [issue(1)], [held], ledger)
    assert (result.writes, result.drift) == (0, ())
