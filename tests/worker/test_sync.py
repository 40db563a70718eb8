"""The sync end to end: in-memory source -> state store -> Kukkingu sandbox over HTTP."""

from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from connectors.kukkingu import KukkinguOutcomeUnknown, KukkinguUnavailable
from sandbox.kukkingu.seed import ACME_CONTRACT_ID
from tests.support.billing import (
    NOW,
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
from worker.errors import FatalError
from worker.store import Drift, DriftKind, Error, ErrorKind, Run, RunStatus, Source, transaction
from worker.sync import sync


@pytest.fixture
def factory(tmp_path) -> Iterator[sessionmaker[Session]]:
    with store(f"sqlite:///{tmp_path / 'state.db'}") as f:
        yield f


def test_first_sync_then_a_rerun_writes_nothing(kukkingu: RunningKukkingu, factory) -> None:
    settings = settings_for(kukkingu.url)
    source = demo_source()
    with client_for(kukkingu.url) as client:
        first = sync(settings, factory, client, source, now=lambda: NOW)
        assert first.applied.lines_created > 0
        shot = snapshot(client)
        assert check_invariants(shot) == []
        kukkingu.app.requests.reset()
        second = sync(settings, factory, client, source, now=lambda: NOW)
        assert writes(kukkingu.requests()) == {}
        assert second.planned_writes == 0
        assert snapshot(client) == shot


def test_a_ledger_of_another_kukkingu_stops_the_sync_and_says_why(
    kukkingu: RunningKukkingu, factory
) -> None:
    """A state store whose invoices Kukkingu does not have (a sandbox started afresh, another
    tenant) bills nothing on a guess, and the message points at the config to check."""
    settings = settings_for(kukkingu.url)
    source = demo_source()
    with client_for(kukkingu.url) as client:
        sync(settings, factory, client, source, now=lambda: NOW)
        kukkingu.reset()
        with pytest.raises(FatalError) as failure:
            sync(settings, factory, client, source, now=lambda: NOW)
        assert writes(kukkingu.requests()) == {}
    message = str(failure.value)
    assert "is missing from the Kukkingu tenant" in message
    assert "a sandbox that started afresh?" in message
    assert "[state] url" in message


def test_a_big_first_sync_costs_the_lower_bound_in_writes(
    kukkingu: RunningKukkingu, factory
) -> None:
    settings = settings_for(kukkingu.url)
    source = demo_source(issues=250, per_issue=1, projects=("ACME",))
    with client_for(kukkingu.url) as client:
        result = sync(settings, factory, client, source, now=lambda: NOW)
        shot = snapshot(client)
    assert sorted(len(v) for v in shot.billables.values()) == [50, 100, 100]
    assert check_invariants(shot) == []
    # lower bound: one create per draft + ceil(lines / 100) creates per draft
    assert writes(result.requests) == {"POST /api/v1/invoices": 3, "POST /api/v1/billables": 3}


def test_runs_are_recorded_with_counts_requests_and_errors(
    kukkingu: RunningKukkingu, factory
) -> None:
    settings = settings_for(kukkingu.url)
    source = demo_source(issues=2, per_issue=1)
    with client_for(kukkingu.url) as client:
        sync(settings, factory, client, source, now=lambda: NOW)
        kukkingu.fault({"kind": "error500", "count": 10})
        source.edit("jira:test:worklog:1", seconds=9000)
        with pytest.raises(KukkinguUnavailable):
            sync(settings, factory, client, source, now=lambda: NOW)
    with factory() as session:
        ok, failed = session.scalars(select(Run).order_by(Run.id)).all()
        assert ok.status == RunStatus.SUCCEEDED
        assert ok.finished_at is not None
        assert ok.counts["linesCreated"] == 2
        assert ok.requests["kukkingu"] == {"POST /api/v1/invoices": 2, "POST /api/v1/billables": 2}
        assert failed.status == RunStatus.FAILED
        assert failed.error is not None
        assert "answered 500" in failed.error
        assert session.get_one(Source, ok.source_id).last_success_at == ok.finished_at


def test_finalized_invoice_gets_late_work_and_drift_over_http(
    kukkingu: RunningKukkingu, factory
) -> None:
    settings = settings_for(kukkingu.url)
    source = InMemorySource("mem")
    source.put_issue(Issue("mem", "1", "ACME-1", "ACME", "Build it"))
    source.put_entries([entry(1, "1", 60), entry(2, "1", 30)])
    december = datetime(2026, 12, 2, 12, tzinfo=UTC)
    with client_for(kukkingu.url) as client:
        sync(settings, factory, client, source, now=lambda: NOW)
        (november,) = client.list_invoices()
        client.finalize_invoice(november.id)
        frozen = client.list_billables(november.id)
        source.put_entries([entry(3, "1", 45)])  # more time: late work
        source.delete("jira:test:worklog:2")  # less time: drift
        kukkingu.app.requests.reset()
        sync(settings, factory, client, source, now=lambda: december)
        assert client.list_billables(november.id) == frozen
        shot = snapshot(client)
    assert check_invariants(shot) == []
    (late,) = shot.billables[f"{ACME_CONTRACT_ID}-2026-12-1"]
    assert (late["referenceId"], late["quantity"], late["metadata"]["late"]) == (
        "ACME-1@2026-11",
        "0.75",
        True,
    )
    with factory() as session:
        (drift,) = session.scalars(select(Drift)).all()
        assert (drift.kind, drift.seconds_delta) == (DriftKind.ENTRY_DELETED, -1800)
    # a re-run keeps one drift row, writes nothing
    kukkingu.app.requests.reset()
    with client_for(kukkingu.url) as client:
        sync(settings, factory, client, source, now=lambda: december)
    assert writes(kukkingu.requests()) == {}
    with factory() as session:
        assert len(session.scalars(select(Drift)).all()) == 1


def test_voided_invoice_is_billed_again(kukkingu: RunningKukkingu, factory) -> None:
    settings = settings_for(kukkingu.url)
    source = demo_source(issues=2, per_issue=2, projects=("ACME",))
    with client_for(kukkingu.url) as client:
        sync(settings, factory, client, source, now=lambda: NOW)
        (first,) = client.list_invoices()
        before = sorted((b.reference_id, b.amount_minor) for b in client.list_billables(first.id))
        client.void_invoice(first.id)
        sync(settings, factory, client, source, now=lambda: NOW)
        (again,) = client.list_invoices(status="DRAFT")
        after = client.list_billables(again.id)
    assert again.invoice_number.endswith("-2026-11-2")
    assert sorted((b.reference_id, b.amount_minor) for b in after) == before
    assert all((b.metadata or {}).get("rebilled") for b in after)
    assert again.amount_minor == sum(amount for _, amount in before)


def test_unmapped_and_bad_entries_are_recorded_and_resolved(
    kukkingu: RunningKukkingu, factory
) -> None:
    settings = settings_for(kukkingu.url)
    source = InMemorySource("mem")
    source.put_issue(Issue("mem", "1", "NOPE-1", "NOPE", "Unbilled project"))
    source.put_entries([entry(1, "1", 60)])
    with client_for(kukkingu.url) as client:
        sync(settings, factory, client, source, now=lambda: NOW)
        with factory() as session:
            (problem,) = session.scalars(select(Error).where(Error.resolved_at.is_(None))).all()
            assert (problem.kind, problem.subject) == (ErrorKind.UNMAPPED, "jira:test:worklog:1")
            assert "no rule takes NOPE-1" in problem.reason
        source.move("1", "ACME-9", "ACME")  # now a rule takes it
        sync(settings, factory, client, source, now=lambda: NOW)
    with factory() as session:
        assert session.scalars(select(Error).where(Error.resolved_at.is_(None))).all() == []


class Crash(BaseException):
    pass


def test_lost_create_then_finalized_by_a_person_is_not_billed_twice(
    kukkingu: RunningKukkingu, factory
) -> None:
    """The create is stored but its answer lost, the process dies before reconciling, and
    a person finalizes the invoice before the next sync: the stored lines must be adopted
    as billed (frozen), not billed again as late work."""
    settings = settings_for(kukkingu.url)
    source = demo_source(issues=2, per_issue=1, projects=("ACME",))

    def die_after_the_lost_answer(step: str) -> None:
        if step == "lines.lost":
            raise Crash

    with client_for(kukkingu.url) as client:
        kukkingu.fault(
            {"kind": "drop_after_commit", "count": 1, "match": {"route": "/api/v1/billables"}}
        )
        with pytest.raises(Crash):
            sync(
                settings,
                factory,
                client,
                source,
                now=lambda: NOW,
                checkpoint=die_after_the_lost_answer,
            )
        (invoice,) = client.list_invoices()
        stored = client.list_billables(invoice.id)
        assert len(stored) == 2
        client.finalize_invoice(invoice.id)
        sync(settings, factory, client, source, now=lambda: NOW)
        shot = snapshot(client)
    assert check_invariants(shot) == []
    assert list(shot.billables) == [invoice.invoice_number]  # no late line anywhere
    assert len(shot.billables[invoice.invoice_number]) == 2


def test_drift_that_no_longer_holds_is_cleared(kukkingu: RunningKukkingu, factory) -> None:
    settings = settings_for(kukkingu.url)
    source = InMemorySource("mem")
    source.put_issue(Issue("mem", "1", "ACME-1", "ACME", "Build it"))
    source.put_entries([entry(1, "1", 60)])
    with client_for(kukkingu.url) as client:
        sync(settings, factory, client, source, now=lambda: NOW)
        (invoice,) = client.list_invoices()
        client.finalize_invoice(invoice.id)
        source.edit("jira:test:worklog:1", seconds=1800)
        sync(settings, factory, client, source, now=lambda: NOW)
        with factory() as session:
            (drift,) = session.scalars(select(Drift)).all()
            assert (drift.kind, drift.seconds_delta) == (DriftKind.LESS_TIME, -1800)
        with transaction(factory) as session:  # the operator acknowledges it ...
            session.scalars(select(Drift)).one().acknowledged_at = NOW
        sync(settings, factory, client, source, now=lambda: NOW)  # ... it stays, once
        with factory() as session:
            assert session.scalars(select(Drift)).one().acknowledged_at == NOW
        source.edit("jira:test:worklog:1", seconds=1200)  # less again: shown again
        sync(settings, factory, client, source, now=lambda: NOW)
        with factory() as session:
            assert session.scalars(select(Drift)).one().acknowledged_at is None
        source.edit("jira:test:worklog:1", seconds=3600)  # the time is back
        sync(settings, factory, client, source, now=lambda: NOW)
    with factory() as session:
        assert session.scalars(select(Drift)).all() == []


def test_a_server_that_loses_every_create_answer_fails_the_sync_without_looping(
    kukkingu: RunningKukkingu, factory
) -> None:
    settings = settings_for(kukkingu.url)
    source = demo_source(issues=2, per_issue=1, projects=("ACME",))
    kukkingu.fault(
        {"kind": "error500", "count": 50, "match": {"route": "/api/v1/billables", "method": "POST"}}
    )
    with client_for(kukkingu.url) as client:
        with pytest.raises(KukkinguOutcomeUnknown):
            sync(settings, factory, client, source, now=lambda: NOW)
        assert kukkingu.requests()["POST /api/v1/billables"] == 3
        kukkingu.app.faults.clear()
        sync(settings, factory, client, source, now=lambda: NOW)
        shot = snapshot(client)
    assert check_invariants(shot) == []
    assert sum(len(v) for v in shot.billables.values()) == 2


def test_the_summary_tells_new_bad_entries_from_all_of_them(
    kukkingu: RunningKukkingu, factory
) -> None:
    from worker.ports import BadEntry, SourceBatch
    from worker.report import summary

    class WithBad(InMemorySource):
        """The demo source, plus one entry it cannot read, every time."""

        def fetch(self, cursors, context=None):
            yield from super().fetch(cursors, context)
            yield SourceBatch(bad=(BadEntry("jira:test:worklog:99", "no timeSpentSeconds"),))

    settings = settings_for(kukkingu.url)
    source = WithBad("mem")
    source.put_issue(Issue("mem", "1", "ACME-1", "ACME", "Build it"))
    source.put_entries([entry(1, "1", 60)])
    with client_for(kukkingu.url) as client:
        first = summary(sync(settings, factory, client, source, now=lambda: NOW))
        again = summary(sync(settings, factory, client, source, now=lambda: NOW))
    assert "1 new bad entries (1 in all" in first
    assert "0 new bad entries (1 in all" in again
