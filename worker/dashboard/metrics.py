"""Prometheus metrics, computed from the state store at each scrape.

A fresh :class:`CollectorRegistry` per scrape: the numbers are whatever the store says now,
so every dashboard process (and a restart) reports the same values, and nothing is kept in
memory between scrapes. The ``*_total`` families are sums over the recorded runs.
"""

from __future__ import annotations

from datetime import datetime

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from worker.dashboard.queries import cursor_lag
from worker.ledger import open_drift, open_problems
from worker.store.models import Cursor, Draft, DraftStatus, Error, Line, Run, Source

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


class StoreCollector(Collector):
    def __init__(self, factory: sessionmaker[Session], now: datetime) -> None:
        self._factory = factory
        self._now = now

    def collect(self) -> list[Metric]:
        with self._factory() as session:
            return self._families(session)

    def _families(self, session: Session) -> list[Metric]:
        names = {row.id: row.name for row in session.scalars(select(Source))}
        created = CounterMetricFamily(
            "billsync_lines_created", "Billable lines created on Kukkingu, over all runs"
        )
        adopted = CounterMetricFamily(
            "billsync_lines_adopted",
            "Billable lines found on Kukkingu after a lost answer and adopted, over all runs "
            "(created + adopted = lines written)",
        )
        updated = CounterMetricFamily(
            "billsync_lines_updated", "Billable lines updated on Kukkingu, over all runs"
        )
        runs = CounterMetricFamily(
            "billsync_runs", "Sync runs by source and status", labels=["source", "status"]
        )
        totals = {"linesCreated": 0, "linesAdopted": 0, "linesUpdated": 0}
        by_status: dict[tuple[str, str], int] = {}
        for source_id, status, counts in session.execute(
            select(Run.source_id, Run.status, Run.counts)
        ):
            for key in totals:
                totals[key] += int((counts or {}).get(key, 0) or 0)
            label = (names.get(source_id, "") if source_id is not None else "", str(status))
            by_status[label] = by_status.get(label, 0) + 1
        created.add_metric([], totals["linesCreated"])
        adopted.add_metric([], totals["linesAdopted"])
        updated.add_metric([], totals["linesUpdated"])
        for (source, status), count in sorted(by_status.items()):
            runs.add_metric([source, status], count)

        errors = CounterMetricFamily(
            "billsync_errors",
            "Problems recorded, by kind (resolved ones included)",
            labels=["kind"],
        )
        for kind, count in session.execute(
            select(Error.kind, func.count()).group_by(Error.kind).order_by(Error.kind)
        ):
            errors.add_metric([str(kind)], int(count))

        success = GaugeMetricFamily(
            "billsync_last_success_timestamp_seconds",
            "When each source last synced successfully (Unix time)",
            labels=["source"],
        )
        for row in session.scalars(select(Source).order_by(Source.name)):
            if row.last_success_at is not None:
                success.add_metric([row.name], row.last_success_at.timestamp())

        lag = GaugeMetricFamily(
            "billsync_cursor_lag_seconds",
            "How far behind now each source's newest cursor is",
            labels=["source"],
        )
        newest: dict[int, Cursor] = {}
        for cursor in session.scalars(select(Cursor)):
            held = newest.get(cursor.source_id)
            if held is None or cursor.updated_at > held.updated_at:
                newest[cursor.source_id] = cursor
        for source_id, cursor in sorted(newest.items(), key=lambda kv: names.get(kv[0], "")):
            lag.add_metric(
                [names.get(source_id, str(source_id))],
                cursor_lag(cursor.value, cursor.updated_at, self._now),
            )

        draft_lines = GaugeMetricFamily(
            "billsync_draft_lines", "Lines on each open draft invoice", labels=["invoice"]
        )
        for number, count in session.execute(
            select(Draft.invoice_number, func.count(Line.id))
            .outerjoin(Line, Line.draft_id == Draft.id)
            .where(Draft.status == DraftStatus.DRAFT)
            .group_by(Draft.invoice_number)
            .order_by(Draft.invoice_number)
        ):
            draft_lines.add_metric([number], int(count))

        problems = GaugeMetricFamily(
            "billsync_open_problems",
            "Problems not resolved yet, by source and kind (unmapped, bad_entry, "
            "configuration, api)",
            labels=["source", "kind"],
        )
        for (source_id, problem_kind), count in sorted(open_problems(session).items(), key=str):
            source = names.get(source_id, "") if source_id is not None else ""
            problems.add_metric([source, problem_kind], count)
        drift = GaugeMetricFamily(
            "billsync_open_drift",
            "Drift rows (changes to finalized invoices) not acknowledged, by source",
            labels=["source"],
        )
        for source_id, count in sorted(open_drift(session).items()):
            drift.add_metric([names.get(source_id, str(source_id))], count)
        return [created, adopted, updated, errors, success, lag, runs, draft_lines, problems, drift]


def render(factory: sessionmaker[Session], now: datetime) -> bytes:
    """The exposition text for one scrape."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(StoreCollector(factory, now))
    return generate_latest(registry)
