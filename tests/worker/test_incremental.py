"""A sync plans what changed: the issues marked dirty, closed over the entries their lines
count (real SQLite, the Kukkingu sandbox over HTTP)."""

from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from sandbox.kukkingu.seed import ACME_CONTRACT_ID
from tests.support.billing import (
    NOW,
    KukkinguSnapshot,
    check_invariants,
    client_for,
    demo_source,
    entry,
    settings_for,
    snapshot,
    store,
    writes,
)
from tests.support.kukkingu import RunningKukkingu
from tests.support.memory import InMemorySource
from worker.core.model import Issue
from worker.store import DirtyIssue
from worker.sync import SyncResult, sync


class Crash(BaseException):
    """The process dies at this step."""


@pytest.fixture
def factory(tmp_path) -> Iterator[sessionmaker[Session]]:
    with store(f"sqlite:///{tmp_path / 'state.db'}") as f:
        yield f


def planned_issues(result: SyncResult) -> set[str]:
    assert result.view is not None
    return {line.group.issue_id for line in result.view.lines}


def marks(factory: sessionmaker[Session]) -> int:
    with factory() as session:
        return session.scalar(select(func.count()).select_from(DirtyIssue)) or 0


def test_the_first_sync_plans_everything_then_only_what_changed(
    kukkingu: RunningKukkingu, factory
) -> None:
    settings = settings_for(kukkingu.url)
    source = demo_source(issues=6, per_issue=2)
    with client_for(kukkingu.url) as client:
        first = sync(settings, factory, client, source, now=lambda: NOW)
        assert first.replanned  # no plan recorded yet: the rules are new
        assert marks(factory) == 0
        quiet = sync(settings, factory, client, source, now=lambda: NOW)
        assert not quiet.replanned
        assert planned_issues(quiet) == set()  # nothing loaded, nothing planned
        assert quiet.planned_writes == 0
        source.edit("jira:test:worklog:3", seconds=7200)  # issue 1001's
        kukkingu.app.requests.reset()
        edited = sync(settings, factory, client, source, now=lambda: NOW)
        assert planned_issues(edited) == {"1001"}
        assert writes(kukkingu.requests()) == {
            "PUT /api/v1/billables/{billableId}": 1,
            "PUT /api/v1/invoices/{invoiceId}": 1,  # its total
        }
        assert marks(factory) == 0
        # what a full plan would do now: nothing, the incremental one left nothing out
        again = sync(settings, factory, client, source, now=lambda: NOW, replan=True)
        assert again.replanned
        assert again.planned_writes == 0
        assert check_invariants(snapshot(client)) == []


@pytest.mark.parametrize("update_slice", [500, 3])
def test_changed_rules_plan_everything_again(
    kukkingu: RunningKukkingu, factory, monkeypatch: pytest.MonkeyPatch, update_slice: int
) -> None:
    """New rates change every line: all are updated once, in slices of ``update_slice``."""
    monkeypatch.setattr("worker.applier.UPDATE_SLICE", update_slice)
    source = demo_source(issues=4, per_issue=1, projects=("ACME",))
    with client_for(kukkingu.url) as client:
        sync(settings_for(kukkingu.url), factory, client, source, now=lambda: NOW)
        dearer = settings_for(kukkingu.url, hourly_rate_minor=13000, person_rates={})
        kukkingu.app.requests.reset()
        result = sync(dearer, factory, client, source, now=lambda: NOW)
        assert result.replanned
        assert result.applied.lines_updated == 4
        assert writes(kukkingu.requests())["PUT /api/v1/billables/{billableId}"] == 4
        assert not sync(dearer, factory, client, source, now=lambda: NOW).replanned
        assert check_invariants(snapshot(client)) == []


@pytest.mark.parametrize(
    ("step", "replanned"),
    [
        ("ingest.committed", {"1000", "1001"}),
        ("sync.statuses", {"1000", "1001"}),
        ("sync.recorded", set()),  # planned and recorded: the applier carries it out
    ],
)
def test_a_crash_between_ingest_and_planning_loses_no_mark(
    kukkingu: RunningKukkingu, factory, step: str, replanned: set[str]
) -> None:
    """The marks are committed with the entries that caused them, and removed only with the
    plan that covers them: the next sync (which reads nothing new) still bills the edit."""
    settings = settings_for(kukkingu.url)
    source = demo_source(issues=3, per_issue=1, projects=("ACME",))

    def crash(at: str) -> None:
        if at == step:
            raise Crash(at)

    with client_for(kukkingu.url) as client:
        sync(settings, factory, client, source, now=lambda: NOW)
        before = quantities(snapshot(client))
        source.edit("jira:test:worklog:2", seconds=9000)
        source.put_entries([entry(99, "1000", 30)])
        with pytest.raises(Crash):
            sync(settings, factory, client, source, now=lambda: NOW, checkpoint=crash)
        assert marks(factory) == (0 if replanned == set() else 2)
        after = sync(settings, factory, client, source, now=lambda: NOW)
        assert after.ingested.changed == after.ingested.new == 0  # read before the crash
        assert planned_issues(after) == replanned
        shot = snapshot(client)
        assert (
            sync(settings, factory, client, source, now=lambda: NOW, replan=True).planned_writes
            == 0
        )
    now = quantities(shot)
    assert now["ACME-2"] == Decimal("2.50")  # 9000 s
    assert now["ACME-1"] == before["ACME-1"] + Decimal("0.50")  # 30 minutes more
    assert now["ACME-3"] == before["ACME-3"]
    assert check_invariants(shot) == []


def quantities(shot: KukkinguSnapshot) -> dict[str, Decimal]:
    return {
        b["referenceId"]: Decimal(b["quantity"])
        for billables in shot.billables.values()
        for b in billables
    }


def test_an_entry_held_by_a_finalized_line_of_its_old_issue_is_not_billed_again(
    kukkingu: RunningKukkingu, factory
) -> None:
    """Entry 1 was billed on issue 1's invoice, which was finalized; then it moved to issue 2
    (a GitHub transfer keeps comment ids). A later change of issue 2 alone plans issue 2, and
    through the entry, issue 1's finalized line: the hour is not billed a second time."""
    settings = settings_for(kukkingu.url)
    source = InMemorySource("mem")
    source.put_issue(Issue("mem", "1", "ACME-1", "ACME", "Old home"))
    source.put_issue(Issue("mem", "2", "ACME-2", "ACME", "New home"))
    source.put_entries([entry(1, "1", 60), entry(2, "2", 30)])
    december = datetime(2026, 12, 2, 12, tzinfo=UTC)
    with client_for(kukkingu.url) as client:
        sync(settings, factory, client, source, now=lambda: NOW)
        (november,) = client.list_invoices()
        client.finalize_invoice(november.id)
        sync(settings, factory, client, source, now=lambda: december)
        source.edit("jira:test:worklog:1", issue_id="2")
        moved = sync(settings, factory, client, source, now=lambda: december)
        assert planned_issues(moved) == {"1", "2"}
        source.edit("jira:test:worklog:2", seconds=45 * 60)  # issue 2 only
        later = sync(settings, factory, client, source, now=lambda: december)
        assert planned_issues(later) == {"1", "2"}  # reached through entry 1
        shot = snapshot(client)
        full = sync(settings, factory, client, source, now=lambda: december, replan=True)
        assert full.planned_writes == 0
    billed = [
        (b["referenceId"], b["quantity"])
        for number, billables in sorted(shot.billables.items())
        for b in billables
        if number != f"{ACME_CONTRACT_ID}-2026-11-1"
    ]
    # only issue 2's 15 more minutes are late work; entry 1's hour stays on November's invoice
    assert billed == [("ACME-2@2026-11", "0.25")]
    assert check_invariants(shot) == []


def billed(shot: KukkinguSnapshot) -> set[tuple[str, str, str, int]]:
    """What each line bills, by reference: the order of lines on a draft is left out."""
    return {(ref_type, ref, qty, amount) for _, ref_type, ref, qty, amount, _ in shot.lines()}


def test_a_full_plan_in_parts_bills_what_one_plan_bills(
    kukkingu: RunningKukkingu, tmp_path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A first sync plans in parts of about 5 entries (instead of 10,000): the same lines,
    amounts and invoices as one plan of everything, and nothing left for a full replan."""
    shots = []
    for chunk in (10_000, 5):
        monkeypatch.setattr("worker.ledger.PLAN_CHUNK_ENTRIES", chunk)
        kukkingu.reset()
        settings = settings_for(kukkingu.url)
        source = demo_source(issues=12, per_issue=3)
        with (
            store(f"sqlite:///{tmp_path / f'state{chunk}.db'}") as factory,
            client_for(kukkingu.url) as client,
        ):
            steps: list[str] = []
            first = sync(
                settings, factory, client, source, now=lambda: NOW, checkpoint=steps.append
            )
            assert first.replanned
            assert steps.count("sync.part") == (0 if chunk == 10_000 else 5)  # 36 entries
            again = sync(settings, factory, client, source, now=lambda: NOW, replan=True)
            assert again.planned_writes == 0
            shots.append(snapshot(client))
        assert check_invariants(shots[-1]) == []
    whole, parts = shots
    assert billed(parts) == billed(whole)
    assert set(parts.invoices) == set(whole.invoices)


def test_a_crash_between_parts_of_a_full_plan_leaves_a_full_plan_to_the_next_sync(
    kukkingu: RunningKukkingu, factory, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("worker.ledger.PLAN_CHUNK_ENTRIES", 4)
    settings = settings_for(kukkingu.url)
    source = demo_source(issues=10, per_issue=2)
    parts = 0

    def crash(at: str) -> None:
        nonlocal parts
        if at == "sync.part":
            parts += 1
            if parts == 2:
                raise Crash(at)

    with client_for(kukkingu.url) as client:
        with pytest.raises(Crash):
            sync(settings, factory, client, source, now=lambda: NOW, checkpoint=crash)
        after = sync(settings, factory, client, source, now=lambda: NOW)
        assert after.replanned  # the crashed plan recorded no digest: all of it again
        assert after.applied.lines_created == 5 + 10  # Acme per issue, Globex per entry
        assert sync(settings, factory, client, source, now=lambda: NOW).planned_writes == 0
        assert check_invariants(snapshot(client)) == []


def test_a_first_sync_leaves_one_mark_per_issue_not_per_page(
    kukkingu: RunningKukkingu, factory
) -> None:
    """The source's own ingest adds no second mark to an issue marked already (its own sync
    is the only one that removes them): 4 issues read in pages of 2 entries, 4 marks."""
    settings = settings_for(kukkingu.url)
    source = demo_source(issues=4, per_issue=3)
    source.batch_size = 2

    def crash(at: str) -> None:
        if at == "sync.statuses":
            raise Crash(at)

    with client_for(kukkingu.url) as client:
        with pytest.raises(Crash):
            sync(settings, factory, client, source, now=lambda: NOW, checkpoint=crash)
        assert marks(factory) == 4
        sync(settings, factory, client, source, now=lambda: NOW)
        assert marks(factory) == 0
        assert check_invariants(snapshot(client)) == []


def test_many_changed_issues_are_planned_in_parts_and_a_crash_between_keeps_the_marks(
    kukkingu: RunningKukkingu, factory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An edit of most issues (a bulk change at the source) is planned in parts too; a
    crash between two parts leaves the marks, and the next sync bills every edit once."""
    settings = settings_for(kukkingu.url)
    source = demo_source(issues=8, per_issue=2, projects=("ACME",))
    with client_for(kukkingu.url) as client:
        sync(settings, factory, client, source, now=lambda: NOW)
        monkeypatch.setattr("worker.ledger.PLAN_CHUNK_ENTRIES", 4)
        for n in range(1, 17, 2):  # the first entry of every issue: 30 minutes more
            source.edit(
                f"jira:test:worklog:{n}",
                seconds=source.entries[f"jira:test:worklog:{n}"].seconds + 1800,
            )
        parts = 0

        def crash(at: str) -> None:
            nonlocal parts
            if at == "sync.part":
                parts += 1
                if parts == 2:
                    raise Crash(at)

        with pytest.raises(Crash):
            sync(settings, factory, client, source, now=lambda: NOW, checkpoint=crash)
        assert marks(factory) == 8  # the plan was not whole: every mark stays
        after = sync(settings, factory, client, source, now=lambda: NOW)
        assert not after.replanned
        assert after.applied.lines_updated == 8  # each issue's line, once
        assert marks(factory) == 0
        assert (
            sync(settings, factory, client, source, now=lambda: NOW, replan=True).planned_writes
            == 0
        )
        assert check_invariants(snapshot(client)) == []
