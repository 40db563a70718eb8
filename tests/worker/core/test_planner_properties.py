"""Properties of the planner for random entries and rules (hypothesis):

- lines are a pure function of the entries: any order gives the same plan;
- totals match: every routed entry is counted on exactly one line, and each line's amount
  is the sum of its rate groups' round-half-up(quantity x rate);
- no (contract, period, reference) twice, no (type, reference) twice on one draft;
- no draft exceeds 100 lines;
- planning again against the applied plan writes nothing (a re-run is a no-op).
"""

from collections import Counter
from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from zoneinfo import ZoneInfo

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.support.ledger_sim import apply
from worker.core.model import Issue, LedgerView, Plan, Rule, TimeEntry
from worker.core.planner import match_rule, plan

ZONES = [ZoneInfo("Europe/Berlin"), ZoneInfo("America/New_York"), ZoneInfo("UTC")]
PROJECTS = ["A", "B", "C", "D"]
AUTHORS = ["ann", "bob", "cy"]
NOW = datetime(2026, 12, 15, tzinfo=UTC)


@st.composite
def rule_sets(draw: st.DrawFn) -> list[Rule]:
    count = draw(st.integers(1, 3))
    rules = []
    for index in range(count):
        rules.append(
            Rule(
                index=index,
                source="jira",
                reference_type="JIRA",
                contract_id=draw(st.sampled_from(["ctr_a", "ctr_b"])),
                currency="EUR",
                hourly_rate_minor=draw(st.integers(0, 50000)),
                projects=frozenset(
                    draw(st.lists(st.sampled_from(PROJECTS), min_size=1, max_size=3))
                ),
                non_billable_labels=frozenset(draw(st.lists(st.just("internal"), max_size=1))),
                person_rates=draw(
                    st.dictionaries(st.sampled_from(AUTHORS), st.integers(0, 90000), max_size=2)
                ),
                increment_minutes=draw(st.sampled_from([0, 1, 6, 15, 60])),
                rounding_mode=draw(st.sampled_from(["up", "nearest", "down"])),
                rounding_scope=draw(st.sampled_from(["entry", "line"])),
                grouping=draw(st.sampled_from(["issue", "entry"])),
                period=draw(st.sampled_from(["monthly", "weekly", "none"])),
                invoice_number=f"{{contract}}-{{period}}-{{seq}}-r{index}",
            )
        )
    return rules


@st.composite
def workloads(draw: st.DrawFn) -> tuple[list[Issue], list[TimeEntry]]:
    issue_count = draw(st.integers(1, 30))
    issues = [
        Issue(
            "jira",
            str(n),
            f"{draw(st.sampled_from(PROJECTS))}-{n}",
            draw(st.sampled_from(PROJECTS)),
            "summary",
            frozenset(draw(st.lists(st.just("internal"), max_size=1))),
        )
        for n in range(issue_count)
    ]
    entries = [
        TimeEntry(
            f"jira:s:worklog:{n}",
            "jira",
            str(draw(st.integers(0, issue_count - 1))),
            draw(st.sampled_from(AUTHORS)),
            datetime(2026, 9, 1, tzinfo=UTC) + timedelta(minutes=draw(st.integers(0, 130_000))),
            draw(st.integers(-3 * 3600, 12 * 3600)),
        )
        for n in range(draw(st.integers(0, 160)))
    ]
    return issues, entries


EMPTY = LedgerView()


def make(
    entries: list[TimeEntry],
    issues: list[Issue],
    rules: list[Rule],
    zone: ZoneInfo,
    ledger: LedgerView = EMPTY,
) -> Plan:
    return plan(
        entries=entries,
        issues=issues,
        rules=rules,
        zone=zone,
        now=NOW,
        ledger=ledger,
        scope=frozenset({"jira"}),
    )


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(rule_sets(), workloads(), st.sampled_from(ZONES), st.randoms(use_true_random=False))
def test_planner_properties(rules, workload, zone, rng) -> None:
    issues, entries = workload
    result = make(entries, issues, rules, zone)

    # a pure function of the entries: any order, same plan
    shuffled = list(entries)
    rng.shuffle(shuffled)
    assert make(shuffled, list(reversed(issues)), rules, zone) == result

    # every routed entry lands on exactly one line (or its group nets to <= 0 and bills nothing)
    counted = Counter(key for create in result.creates for key in create.entries)
    assert all(n == 1 for n in counted.values())
    by_issue = {i.issue_id: i for i in issues}
    routed = set()
    for e in entries:
        r = match_rule(rules, by_issue[e.issue_id])
        if r is not None and not (by_issue[e.issue_id].labels & r.non_billable_labels):
            routed.add(e.key)
    assert set(counted) <= routed
    assert {p.entry_key for p in result.problems} | set(result.excluded) | routed == {
        e.key for e in entries
    }

    # amounts are the sum of their rate groups, quantities too; nothing negative
    for create in result.creates:
        c = create.content
        groups = c.metadata["rates"]
        assert c.amount_minor == sum(
            int((Decimal(g["quantity"]) * g["rate"]).quantize(Decimal(1), ROUND_HALF_UP))
            for g in groups
        )
        assert c.quantity == sum((Decimal(g["quantity"]) for g in groups), Decimal(0))
        assert c.quantity > 0
        assert c.amount_minor >= 0
        assert len(c.description) <= 255

    # no reference twice per (contract, period) nor per draft; at most 100 lines a draft
    per_period = Counter(
        (c.draft.contract_id, c.draft.period, c.content.reference_type, c.content.reference_id)
        for c in result.creates
    )
    assert max(per_period.values(), default=1) == 1
    per_draft = Counter(c.draft for c in result.creates)
    assert max(per_draft.values(), default=0) <= 100
    positions = Counter((c.draft, c.content.position) for c in result.creates)
    assert max(positions.values(), default=1) == 1

    # a re-run against the applied plan writes nothing
    ledger = apply(LedgerView(), result)
    again = make(entries, issues, rules, zone, ledger)
    assert again.writes == 0
    assert again.drift == ()


@settings(max_examples=60, deadline=None)
@given(workloads(), st.randoms(use_true_random=False))
def test_edits_and_deletions_converge_to_a_fresh_plan(workload, rng) -> None:
    """After entries are edited and deleted and the plan re-run, every line bills exactly
    what a fresh plan of the final entries bills for its group; other lines are 0 / 0."""
    issues, entries = workload
    rules = [
        Rule(
            index=0,
            source="jira",
            reference_type="JIRA",
            contract_id="ctr_a",
            currency="EUR",
            hourly_rate_minor=10000,
            projects=frozenset(PROJECTS),
            increment_minutes=15,
        )
    ]
    zone = ZONES[0]
    first = make(entries, issues, rules, zone)
    ledger = apply(LedgerView(), first)
    content = {c.group: c.content for c in first.creates}

    kept = [e for e in entries if rng.random() > 0.3]
    changed = [
        TimeEntry(
            e.key, e.source, e.issue_id, e.author, e.started, e.seconds + rng.choice([0, 600, -600])
        )
        for e in kept
    ]
    second = make(changed, issues, rules, zone, ledger)
    group_of = {line.id: line.group for line in ledger.lines}
    ledger = apply(ledger, second)
    for c in second.creates:
        content[c.group] = c.content
    for u in second.updates:
        content[group_of[u.line_id]] = u.content
    entries_of = {line.group: dict(line.entries) for line in ledger.lines}

    fresh = {c.group: c for c in make(changed, issues, rules, zone).creates}
    assert set(fresh) <= set(content)
    for group, billed in content.items():
        if group in fresh:
            expected = fresh[group]
            assert (billed.reference_id, billed.quantity, billed.amount_minor) == (
                expected.content.reference_id,
                expected.content.quantity,
                expected.content.amount_minor,
            )
            assert entries_of[group] == dict(expected.entries)
        else:
            assert (billed.quantity, billed.amount_minor) == (Decimal(0), 0)
    assert make(changed, issues, rules, zone, ledger).writes == 0
