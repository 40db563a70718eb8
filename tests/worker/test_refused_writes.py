"""An invoice finalized while a sync's write to it is in flight (issue 11, item 1): Kukkingu
refuses the write (409), and the ledger must count as billed only what Kukkingu confirmed.
The hours the refused write carried are billed as late work in the same sync.

Kukkingu is the sandbox over HTTP; the moment is made with its hold fault: the write is
held, the owner finalizes the invoice, the write is released and refused. On SQLite and
PostgreSQL."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from sandbox.common.faults import FaultMatch, FaultSpec
from tests.support.billing import (
    NOW,
    check_invariants,
    client_for,
    entry,
    settings_for,
    snapshot,
    store,
    writes,
)
from tests.support.kukkingu import RunningKukkingu
from tests.support.memory import InMemorySource
from tests.support.waiting import wait_for
from worker.core.model import Issue
from worker.store import Error, ErrorKind, Line
from worker.sync import SyncResult, sync


@pytest.fixture
def factory(db_url: str) -> Iterator[sessionmaker[Session]]:
    with store(db_url) as made:
        yield made


def billed_hours(kukkingu: RunningKukkingu, reference_prefix: str) -> Decimal:
    with client_for(kukkingu.url) as client:
        shot = snapshot(client)
    return sum(
        (
            Decimal(b["quantity"])
            for items in shot.billables.values()
            for b in items
            if b["referenceId"].startswith(reference_prefix)
        ),
        Decimal(0),
    )


def finalize_during(
    kukkingu: RunningKukkingu, route: str, method: str, run: Callable[[], SyncResult]
) -> SyncResult:
    """Run ``run`` (a sync); when its first ``method route`` write arrives, finalize the
    invoice it writes to, then let the write go on (Kukkingu refuses it)."""
    kukkingu.app.faults.add(
        FaultSpec(kind="hold", count=1, match=FaultMatch(method=method, route=route))
    )
    with ThreadPoolExecutor(1) as pool:
        result = pool.submit(run)
        wait_for(lambda: kukkingu.app.faults.held() == 1, f"the {method} {route} write")
        with client_for(kukkingu.url) as owner:
            (invoice,) = [i for i in owner.list_invoices() if i.status == "DRAFT"]
            owner.finalize_invoice(invoice.id)
        kukkingu.app.faults.clear()
        return result.result(timeout=300)


def test_an_update_refused_by_a_finalize_is_billed_as_late_work(
    kukkingu: RunningKukkingu, factory: sessionmaker[Session]
) -> None:
    settings = settings_for(kukkingu.url)
    source = InMemorySource("mem")
    source.put_issue(Issue("mem", "1", "ACME-1", "ACME", "Build it"))
    source.put_entries([entry(1, "1", 60), entry(2, "1", 30)])
    with client_for(kukkingu.url) as client:
        sync(settings, factory, client, source, now=lambda: NOW)
        assert billed_hours(kukkingu, "ACME-1") == Decimal("1.5")
        source.put_entries([entry(3, "1", 60)])  # one more hour on the same line
        finalize_during(
            kukkingu,
            "/api/v1/billables/{billableId}",
            "PUT",
            lambda: sync(settings, factory, client, source, now=lambda: NOW),
        )
        # Kukkingu refused the update: the frozen invoice holds 1.5 h, the added hour is late
        assert billed_hours(kukkingu, "ACME-1") == Decimal("2.5")
        shot = snapshot(client)
        assert check_invariants(shot) == []
        with factory() as session:
            lines = session.scalars(select(Line).order_by(Line.id)).all()
            assert [(str(line.quantity), line.late) for line in lines] == [
                ("1.50", False),
                ("1.00", True),
            ]
        # nothing left to write: the next sync agrees with Kukkingu
        again = sync(settings, factory, client, source, now=lambda: NOW)
        assert again.planned_writes == 0
        assert snapshot(client) == shot


def test_lines_refused_by_a_finalize_are_placed_again(
    kukkingu: RunningKukkingu, factory: sessionmaker[Session]
) -> None:
    """A draft is finalized between its creation and the create of its lines: the lines
    were never stored, so they are planned again onto an open draft."""
    settings = settings_for(kukkingu.url)
    source = InMemorySource("mem")
    source.put_issue(Issue("mem", "1", "ACME-1", "ACME", "Build it"))
    source.put_issue(Issue("mem", "2", "ACME-2", "ACME", "Test it"))
    source.put_entries([entry(1, "1", 60), entry(2, "2", 45)])
    with client_for(kukkingu.url) as client:
        finalize_during(
            kukkingu,
            "/api/v1/billables",
            "POST",
            lambda: sync(settings, factory, client, source, now=lambda: NOW),
        )
        assert billed_hours(kukkingu, "ACME-1") == Decimal("1.0")
        assert billed_hours(kukkingu, "ACME-2") == Decimal("0.75")
        shot = snapshot(client)
        assert check_invariants(shot) == []
        (empty,) = [i for i in client.list_invoices() if i.status == "FINALIZED"]
        assert client.list_billables(empty.id) == []
        again = sync(settings, factory, client, source, now=lambda: NOW)
        assert again.planned_writes == 0


@pytest.mark.parametrize("named", [True, False], ids=["named", "bisected"])
def test_a_line_kukkingu_refuses_is_isolated_and_the_rest_is_billed(
    kukkingu: RunningKukkingu, factory: sessionmaker[Session], named: bool
) -> None:
    """One refused billable (422) used to fail its batch of 100 on every sync, so nothing
    else on the draft was billed. It is isolated (by the index Kukkingu's message names, or
    by halves), recorded with Kukkingu's message as a problem, and not sent again until
    its content changes."""
    settings = settings_for(kukkingu.url)
    source = InMemorySource("mem")
    for n in range(1, 6):
        source.put_issue(Issue("mem", str(n), f"ACME-{n}", "ACME", f"Task {n}"))
    source.put_entries([entry(n, str(n), 30 * n) for n in range(1, 6)])
    kukkingu.app.faults.add(FaultSpec(kind="refuse", reference_id="ACME-3", name_item=named))
    with client_for(kukkingu.url) as client:
        first = sync(settings, factory, client, source, now=lambda: NOW)
        assert first.applied.lines_rejected == 1
        shot = snapshot(client)
        assert check_invariants(shot) == []  # the draft's total is the sum of what it holds
        (billed,) = shot.billables.values()
        assert sorted(b["referenceId"] for b in billed) == ["ACME-1", "ACME-2", "ACME-4", "ACME-5"]
        with factory() as session:
            (refused,) = session.scalars(select(Line).where(Line.rejected.is_not(None))).all()
            assert refused.reference_id == "ACME-3"
            assert "refused by the sandbox" in (refused.rejected or "")
            (problem,) = session.scalars(select(Error).where(Error.kind == ErrorKind.API)).all()
            assert problem.subject == "line ACME-3"
            assert "Kukkingu refused the billable" in problem.reason
        # not sent again while its content is the same
        kukkingu.app.requests.reset()
        sync(settings, factory, client, source, now=lambda: NOW)
        assert writes(kukkingu.requests()) == {}
        # its entries change (the config could, too): Kukkingu takes it now
        kukkingu.app.faults.clear()
        source.put_entries([entry(3, "3", 120)])
        sync(settings, factory, client, source, now=lambda: NOW)
        shot = snapshot(client)
        assert check_invariants(shot) == []
        (billed,) = shot.billables.values()
        assert sorted(b["referenceId"] for b in billed) == [f"ACME-{n}" for n in range(1, 6)]
        with factory() as session:
            (problem,) = session.scalars(select(Error).where(Error.kind == ErrorKind.API)).all()
            assert problem.resolved_at is not None  # off the dashboard's problems
