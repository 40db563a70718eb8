"""Ingestion: how a source's batches are recorded in the state store.

:func:`ingest` records each :class:`~worker.ports.SourceBatch` in **one transaction**,
cursor included, so a cursor never runs ahead of the work it covers, and a crash mid-sync
loses nothing: the next sync re-reads from the last committed cursor (entries are upserted
by stable key, so a re-read changes nothing). :class:`StoreContext` answers a source's
questions from the store.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Collection
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import delete, insert, select, update
from sqlalchemy.orm import Session, sessionmaker

from worker.core.model import Issue, TimeEntry
from worker.ledger import mark_dirty
from worker.ports import (
    BadEntry,
    EntrySource,
    Report,
    SourceBatch,
    SourceContext,
    SourceKind,
)
from worker.prefetch import Prefetch
from worker.progress import ProgressFn, no_progress
from worker.store import (
    Cursor,
    Draft,
    DraftStatus,
    Entry,
    EntryState,
    Error,
    ErrorKind,
    Line,
    Source,
    SourceIssue,
    WebhookReport,
    transaction,
    utcnow,
)

LOOKUP_CHUNK = 500  # keys per IN (...) query: well under SQLite's bound-parameter limit


class StoreContext(SourceContext):
    """The answers, from the state store: through new sessions of ``factory``, or through
    one open ``session`` (a dry run reads inside its own transaction, which on SQLite holds
    the write lock another session would wait for)."""

    def __init__(
        self,
        factory: sessionmaker[Session] | None,
        source_id: int,
        *,
        session: Session | None = None,
    ) -> None:
        if (factory is None) == (session is None):
            raise ValueError("give a session factory or an open session")
        self._factory = factory
        self._session = session
        self.source_id = source_id

    def factory(self) -> AbstractContextManager[Session]:
        if self._session is not None:
            return nullcontext(self._session)
        assert self._factory is not None
        return self._factory()

    def issue_scopes(self, ids: Collection[str]) -> dict[str, tuple[str, frozenset[int]]]:
        ordered = sorted(set(ids))
        found: dict[str, tuple[str, frozenset[int]]] = {}
        with self.factory() as session:
            for start in range(0, len(ordered), LOOKUP_CHUNK):
                rows = session.execute(
                    select(
                        SourceIssue.external_id, SourceIssue.project, SourceIssue.jql_rules
                    ).where(
                        SourceIssue.source_id == self.source_id,
                        SourceIssue.external_id.in_(ordered[start : start + LOOKUP_CHUNK]),
                    )
                )
                for issue_id, project, rules in rows:
                    found[issue_id] = (project or "", frozenset(rules or ()))
        return found

    def issue_ids_by_key(self, keys: Collection[str]) -> dict[str, str]:
        with self.factory() as session:
            rows = session.execute(
                select(SourceIssue.key, SourceIssue.external_id).where(
                    SourceIssue.source_id == self.source_id, SourceIssue.key.in_(keys)
                )
            )
            return {key: external_id for key, external_id in rows}

    def open_issues(self) -> list[tuple[str, str]]:
        with self.factory() as session:
            on_open_drafts = (
                select(Line.issue_id)
                .join(Draft, Draft.id == Line.draft_id)
                .where(Line.source_id == self.source_id, Draft.status == DraftStatus.DRAFT)
                .distinct()
            )
            rows = session.execute(
                select(SourceIssue.external_id, SourceIssue.key).where(
                    SourceIssue.source_id == self.source_id,
                    SourceIssue.external_id.in_(on_open_drafts),
                )
            )
            return sorted((str(issue_id), str(key)) for issue_id, key in rows)

    def active_entry_keys_of(self, issue_ids: Collection[str]) -> dict[str, set[str]]:
        found: dict[str, set[str]] = {}
        ordered = sorted(set(issue_ids))
        with self.factory() as session:
            for start in range(0, len(ordered), LOOKUP_CHUNK):
                # the state is filtered here, not in SQL: with it in the WHERE clause SQLite
                # may pick the (source, state) index and scan the source's every entry
                rows = session.execute(
                    select(Entry.external_issue_id, Entry.key, Entry.state).where(
                        Entry.source_id == self.source_id,
                        Entry.external_issue_id.in_(ordered[start : start + LOOKUP_CHUNK]),
                    )
                )
                for issue_id, key, state in rows:
                    if state == EntryState.ACTIVE and issue_id is not None:
                        found.setdefault(issue_id, set()).add(key)
        return found

    def reports(self) -> list[Report]:
        with self.factory() as session:
            rows = session.scalars(
                select(WebhookReport)
                .where(WebhookReport.source_id == self.source_id)
                .order_by(WebhookReport.id)
            )
            return [
                Report(row.id, row.kind, row.item_id, row.repo, row.issue_id, row.comments)
                for row in rows
            ]


def entry_hash(entry: TimeEntry) -> str:
    text = json.dumps(
        [entry.issue_id, entry.author, entry.started.isoformat(), entry.seconds],
        separators=(",", ":"),
    )
    return hashlib.sha256(text.encode()).hexdigest()


@dataclass
class IngestCounts:
    issues: int = 0
    new: int = 0
    changed: int = 0
    deleted: int = 0
    bad: int = 0  # bad entries read this run
    bad_new: int = 0  # of those, the ones not recorded as bad (for that reason) before
    unchanged: int = 0
    unreachable: list[tuple[str, str]] = field(default_factory=list)  # (what, why)

    @property
    def entries_seen(self) -> int:
        return self.new + self.changed + self.unchanged + self.deleted + self.bad


def source_row(session: Session, name: str, kind: SourceKind) -> Source:
    row = session.scalar(select(Source).where(Source.name == name))
    if row is None:
        row = Source(name=name, kind=kind)
        session.add(row)
        session.flush()
    return row


def load_cursors(session: Session, source: Source) -> dict[str, str]:
    rows = session.scalars(select(Cursor).where(Cursor.source_id == source.id))
    return {row.stream: row.value for row in rows}


def _record_issue(
    session: Session, source: Source, issue: Issue, known: dict[str, SourceIssue]
) -> bool:
    """Upsert one issue; True when what billing reads of it is new or changed."""
    row = known.get(issue.issue_id)
    if row is None:
        row = SourceIssue(source_id=source.id, external_id=issue.issue_id)
        session.add(row)
        known[issue.issue_id] = row
    before = (row.key, row.project, row.summary, row.labels, row.jql_rules)
    row.key, row.project, row.summary = issue.key, issue.project, issue.summary
    row.labels = sorted(issue.labels)
    row.jql_rules = sorted(issue.jql_rules)
    return before != (row.key, row.project, row.summary, row.labels, row.jql_rules)


_ENTRY_FIELDS = ("external_issue_id", "author", "started_at", "seconds", "content_hash", "state")


@dataclass
class _Entries:
    """A batch's entries as plain rows (key -> column values), read in a few queries and
    written back as one bulk INSERT and one bulk UPDATE: no ORM object per entry (that was
    most of a first sync's CPU)."""

    source_id: int
    rows: dict[str, dict[str, Any]] = field(default_factory=dict)
    new: set[str] = field(default_factory=set)
    touched: set[str] = field(default_factory=set)
    dirty: set[str | None] = field(default_factory=set)  # issues whose billing may change

    @classmethod
    def read(cls, session: Session, source_id: int, keys: Collection[str]) -> _Entries:
        entries = cls(source_id)
        ordered = sorted(set(keys))
        columns = [
            Entry.id,
            Entry.key,
            Entry.bad_reason,
            *(getattr(Entry, f) for f in _ENTRY_FIELDS),
        ]
        for start in range(0, len(ordered), LOOKUP_CHUNK):
            chunk = ordered[start : start + LOOKUP_CHUNK]
            for row in session.execute(select(*columns).where(Entry.key.in_(chunk))):
                entries.rows[row.key] = dict(row._mapping)
        return entries

    def _row(self, key: str) -> dict[str, Any]:
        row = self.rows.get(key)
        if row is None:
            row = {"key": key, "source_id": self.source_id, "content_hash": "", "bad_reason": None}
            row |= {name: None for name in _ENTRY_FIELDS if name != "content_hash"}
            self.rows[key] = row
            self.new.add(key)
        self.touched.add(key)
        return row

    def record(self, entry: TimeEntry) -> str:
        """Upsert one entry by its stable key; returns "new", "changed" or "unchanged"."""
        digest = entry_hash(entry)
        row = self.rows.get(entry.key)
        if row is not None and row["content_hash"] == digest and row["state"] == EntryState.ACTIVE:
            return "unchanged"
        outcome = "new" if row is None else "changed"
        row = self._row(entry.key)
        self.dirty.update((row["external_issue_id"], entry.issue_id))
        row.update(
            external_issue_id=entry.issue_id,
            author=entry.author,
            started_at=entry.started,
            seconds=entry.seconds,
            content_hash=digest,
            state=EntryState.ACTIVE,
            bad_reason=None,
        )
        return outcome

    def delete(self, key: str) -> bool:
        row = self.rows.get(key)
        if row is None or row["state"] == EntryState.DELETED:
            return False
        self._row(key)["state"] = EntryState.DELETED
        self.dirty.add(row["external_issue_id"])
        return True

    def bad(self, bad: BadEntry) -> bool:
        """Record a bad entry; True when it is news (not recorded as bad for this reason yet)."""
        row = self.rows.get(bad.key)
        news = row is None or row["state"] != EntryState.BAD or row["bad_reason"] != bad.reason
        if row is not None and row["state"] != EntryState.BAD:
            self.dirty.update((row["external_issue_id"], bad.issue_id))  # its good version
        row = self._row(bad.key)
        # A bad version replaces whatever was there: billing the old one would be a guess.
        row["state"], row["bad_reason"] = EntryState.BAD, bad.reason
        row["external_issue_id"] = bad.issue_id or row["external_issue_id"]
        return news

    def write(self, session: Session) -> None:
        inserts = [self.rows[key] for key in sorted(self.new)]
        updates = [self.rows[key] for key in sorted(self.touched - self.new)]
        if inserts:
            session.execute(insert(Entry), inserts)
        if updates:
            session.execute(update(Entry), updates)  # by primary key (each row has its id)


def _issues_by_id(session: Session, source: Source, ids: Collection[str]) -> dict[str, SourceIssue]:
    ordered = sorted(set(ids))
    found: dict[str, SourceIssue] = {}
    for start in range(0, len(ordered), LOOKUP_CHUNK):
        chunk = ordered[start : start + LOOKUP_CHUNK]
        rows = session.scalars(
            select(SourceIssue).where(
                SourceIssue.source_id == source.id, SourceIssue.external_id.in_(chunk)
            )
        )
        found.update((row.external_id, row) for row in rows)
    return found


def _record_cursor(session: Session, source: Source, stream: str, value: str) -> None:
    """Set a cursor; the empty value removes it."""
    with session.no_autoflush:  # nothing pending can change the cursor it looks up
        cursor = session.get(Cursor, (source.id, stream))
    if not value:
        if cursor is not None:
            session.delete(cursor)
    elif cursor is None:
        session.add(Cursor(source_id=source.id, stream=stream, value=value))
    else:
        cursor.value = value


def record_batch(
    session: Session, source: Source, batch: SourceBatch, counts: IngestCounts
) -> None:
    """One batch, cursor included, in the caller's transaction; the issues whose billing it
    may change are marked dirty in the same transaction."""
    dirty: set[str | None] = set()
    issues = _issues_by_id(session, source, [i.issue_id for i in batch.issues])
    for issue in batch.issues:
        if _record_issue(session, source, issue, issues):
            dirty.add(issue.issue_id)
        counts.issues += 1
    keys = [e.key for e in batch.entries] + list(batch.deleted) + [b.key for b in batch.bad]
    entries = _Entries.read(session, source.id, keys)
    for entry in batch.entries:
        outcome = entries.record(entry)
        setattr(counts, outcome, getattr(counts, outcome) + 1)
    for key in batch.deleted:
        counts.deleted += entries.delete(key)
    for bad in batch.bad:
        counts.bad_new += entries.bad(bad)
        counts.bad += 1
    entries.write(session)
    for stream, value in batch.cursors.items():
        _record_cursor(session, source, stream, value)
    counts.unreachable += batch.unreachable
    if batch.settled:
        session.execute(
            delete(WebhookReport).where(
                WebhookReport.source_id == source.id, WebhookReport.id.in_(batch.settled)
            )
        )
    session.flush()
    dirty |= entries.dirty
    mark_dirty(session, ((source.id, issue) for issue in dirty), own_sync=True)


LOST = ErrorKind.CONFIGURATION  # the kind of an "unreachable" problem: an operator fixes access


def record_unreachable(
    session: Session, source: Source, unreachable: list[tuple[str, str]], run_id: int | None
) -> None:
    """Open a problem for each part of the source that stopped answering; resolve those of
    earlier runs that answer again."""
    lost = dict(unreachable)
    open_rows = session.scalars(
        select(Error).where(
            Error.source_id == source.id, Error.kind == LOST, Error.resolved_at.is_(None)
        )
    ).all()
    still = set()
    for row in open_rows:
        if not (row.detail or {}).get("unreachable"):
            continue  # a configuration problem of another kind
        if row.subject in lost:
            row.reason = lost[row.subject]
            still.add(row.subject)
        else:
            row.resolved_at = utcnow()
    for subject, reason in lost.items():
        if subject not in still:
            session.add(
                Error(
                    run_id=run_id,
                    source_id=source.id,
                    kind=LOST,
                    subject=subject[:255],
                    reason=reason,
                    detail={"unreachable": True},
                )
            )


def ingest(
    factory: sessionmaker[Session],
    source: EntrySource,
    *,
    checkpoint: Callable[[str], None] = lambda step: None,
    progress: ProgressFn = no_progress,
) -> IngestCounts:
    """Fetch from ``source`` and record each batch with its cursor in one transaction."""
    with transaction(factory) as session:
        row = source_row(session, source.name, source.kind)
        cursors = load_cursors(session, row)
        context = StoreContext(factory, row.id)
    counts = IngestCounts()
    pages = 0
    # the source reads its next page while this one is recorded (worker.prefetch)
    with Prefetch(
        lambda asked: source.fetch(cursors, asked), context, name=f"fetch {source.name}"
    ) as batches:
        for batch in batches:
            checkpoint("ingest.batch")
            with transaction(factory) as session:
                record_batch(session, session.merge(row), batch, counts)
            batches.recorded()
            checkpoint("ingest.committed")
            pages += 1
            progress("pages", pages, None)
            progress("read", counts.entries_seen, None)
    return counts
