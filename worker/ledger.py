"""The ledger: the planner's view of the state store, and the recording of a plan.

:func:`load_view` reads what the planner needs (drafts, this source's lines and the entries
they count); :func:`load_work` reads the source's active entries and its issues;
:func:`record_plan` writes a plan's drafts, lines, drift and problems in the caller's
transaction. Kukkingu is not touched here: the applier carries the recorded ledger out.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import delete, insert, select, update
from sqlalchemy.orm import Session

from worker.core.model import (
    DraftKey,
    GroupKey,
    Issue,
    LedgerDraft,
    LedgerLine,
    LedgerView,
    LineContent,
    Plan,
    Problem,
    TimeEntry,
)
from worker.store import (
    Draft,
    DraftStatus,
    Drift,
    DriftKind,
    Entry,
    EntryState,
    Error,
    ErrorKind,
    Line,
    LineEntry,
    LineState,
    Source,
    SourceIssue,
    utcnow,
)


def content_of(line: Line) -> LineContent:
    """What the ledger says the line's billable should hold."""
    return LineContent(
        reference_type=line.reference_type,
        reference_id=line.reference_id,
        description=line.description,
        quantity=Decimal(line.quantity).quantize(Decimal("0.01")),
        amount_minor=line.amount_minor,
        currency=line.currency,
        position=line.position,
        metadata=line.meta,
    )


def draft_key(draft: Draft) -> DraftKey:
    return DraftKey(draft.contract_id, draft.currency, draft.period, draft.seq)


def load_view(session: Session, source: Source) -> LedgerView:
    """Every draft, and the lines of ``source`` with the entries they count."""
    drafts = session.scalars(select(Draft).order_by(Draft.id)).all()
    refs: dict[int, set[tuple[str, str]]] = defaultdict(set)
    count: dict[int, int] = defaultdict(int)
    next_position: dict[int, int] = defaultdict(int)
    placed = session.execute(
        select(Line.draft_id, Line.reference_type, Line.reference_id, Line.position)
    )
    for draft_id, reference_type, reference_id, position in placed:
        refs[draft_id].add((reference_type, reference_id))
        count[draft_id] += 1
        next_position[draft_id] = max(next_position[draft_id], position + 1)
    ledger_drafts = tuple(
        LedgerDraft(
            id=d.id,
            key=draft_key(d),
            status=d.status.value,
            invoice_number=d.invoice_number,
            line_count=count[d.id],
            next_position=next_position[d.id],
            references=frozenset(refs[d.id]),
        )
        for d in drafts
    )
    counted: dict[int, dict[str, int]] = defaultdict(dict)
    rows = session.execute(
        select(LineEntry.line_id, Entry.key, LineEntry.seconds)
        .join(Entry, Entry.id == LineEntry.entry_id)
        .join(Line, Line.id == LineEntry.line_id)
        .where(Line.source_id == source.id)
    )
    for line_id, key, seconds in rows:
        counted[line_id][key] = seconds
    lines = tuple(
        LedgerLine(
            id=line.id,
            group=GroupKey.decode(line.group_key),
            draft_id=line.draft_id,
            reference_type=line.reference_type,
            reference_id=line.reference_id,
            position=line.position,
            entries=counted[line.id],
            written_digest=line.payload_hash,
            late=line.late,
        )
        for line in session.scalars(select(Line).where(Line.source_id == source.id))
    )
    return LedgerView(drafts=ledger_drafts, lines=lines)


def load_work(session: Session, source: Source) -> tuple[list[TimeEntry], list[Issue]]:
    """The source's active entries and every issue it has told about."""
    entries = [
        TimeEntry(
            key=row.key,
            source=source.name,
            issue_id=row.external_issue_id or "",
            author=row.author or "",
            started=row.started_at,  # type: ignore[arg-type]  # set on every active entry
            seconds=row.seconds or 0,
        )
        for row in session.scalars(
            select(Entry).where(Entry.source_id == source.id, Entry.state == EntryState.ACTIVE)
        )
    ]
    issues = [
        Issue(
            source=source.name,
            issue_id=row.external_id,
            key=row.key,
            project=row.project,
            summary=row.summary,
            labels=frozenset(row.labels),
            jql_rules=frozenset(row.jql_rules),
        )
        for row in session.scalars(select(SourceIssue).where(SourceIssue.source_id == source.id))
    ]
    return entries, issues


def _set_content(line: Line, content: LineContent) -> None:
    line.reference_type, line.reference_id = content.reference_type, content.reference_id
    line.description, line.quantity = content.description, content.quantity
    line.amount_minor, line.currency = content.amount_minor, content.currency
    line.position, line.meta = content.position, dict(content.metadata)


CHUNK = 500  # ids per IN (...) query: well under SQLite's bound-parameter limit


def _chunks(items: list[Any]) -> Iterable[list[Any]]:
    for start in range(0, len(items), CHUNK):
        yield items[start : start + CHUNK]


def _replace_entries(
    session: Session, counted: list[tuple[int, dict[str, int]]], ids: dict[str, int]
) -> None:
    """Set which entries each line counts: a few bulk statements, not one flush per line."""
    for chunk in _chunks([line_id for line_id, _ in counted]):
        session.execute(delete(LineEntry).where(LineEntry.line_id.in_(chunk)))
    values = [
        {"line_id": line_id, "entry_id": ids[key], "seconds": seconds}
        for line_id, entries in counted
        for key, seconds in sorted(entries.items())
    ]
    if values:
        session.execute(insert(LineEntry), values)


def _entry_ids(session: Session, keys: set[str]) -> dict[str, int]:
    ids: dict[str, int] = {}
    for chunk in _chunks(sorted(keys)):
        ids.update(session.execute(select(Entry.key, Entry.id).where(Entry.key.in_(chunk))).all())
    return ids


def counted_entries(session: Session, line_ids: Iterable[int]) -> dict[int, dict[str, int]]:
    """Which entries (key -> seconds) each line counts now."""
    counted: dict[int, dict[str, int]] = defaultdict(dict)
    for chunk in _chunks(sorted(set(line_ids))):
        rows = session.execute(
            select(LineEntry.line_id, Entry.key, LineEntry.seconds)
            .join(Entry, Entry.id == LineEntry.entry_id)
            .where(LineEntry.line_id.in_(chunk))
        )
        for line_id, key, seconds in rows:
            counted[line_id][key] = seconds
    return counted


def confirm(session: Session, line_ids: list[int]) -> None:
    """Kukkingu confirmed a write of these lines: what they count now is what is billed."""
    if not line_ids:
        return
    counted = counted_entries(session, line_ids)
    session.execute(
        update(Line),
        [{"id": line_id, "confirmed_entries": counted.get(line_id, {})} for line_id in line_ids],
    )


def restore_confirmed(session: Session, line: Line, held: LineContent) -> bool:
    """A write of ``line`` was refused (its invoice closed): the line holds ``held``, what
    Kukkingu has, and counts the entries it counted when that was confirmed. False when
    those entries are unknown (a line confirmed before billsync kept them)."""
    _set_content(line, held)
    line.payload_hash = held.digest()
    if line.confirmed_entries is None:
        return False
    entries = {str(k): int(v) for k, v in line.confirmed_entries.items()}
    session.execute(delete(LineEntry).where(LineEntry.line_id == line.id))
    _replace_entries(session, [(line.id, entries)], _entry_ids(session, set(entries)))
    return True


def unbill(session: Session, line_ids: list[int]) -> None:
    """Remove lines Kukkingu never stored (their invoice closed first): their entries are
    planned again, onto an open draft."""
    for chunk in _chunks(sorted(line_ids)):
        session.execute(delete(Drift).where(Drift.line_id.in_(chunk)))
        session.execute(delete(LineEntry).where(LineEntry.line_id.in_(chunk)))
        session.execute(delete(Line).where(Line.id.in_(chunk)))


def record_plan(session: Session, source: Source, plan: Plan) -> None:
    """Write ``plan`` into the ledger (the caller's transaction)."""
    keys = {key for create in plan.creates for key in create.entries}
    keys |= {key for update in plan.updates for key in update.entries}
    keys |= {item.entry_key for item in plan.drift}
    ids = _entry_ids(session, keys)

    drafts: dict[DraftKey, Draft] = {draft_key(d): d for d in session.scalars(select(Draft))}
    for new in plan.new_drafts:
        opened = Draft(
            contract_id=new.key.contract_id,
            currency=new.key.currency,
            period=new.key.period,
            seq=new.key.seq,
            invoice_number=new.invoice_number,
            status=DraftStatus.DRAFT,
            exchange_rate=new.exchange_rate,
            amount_minor=0,
        )
        session.add(opened)
        drafts[new.key] = opened
    session.flush()

    created: list[tuple[Line, dict[str, int]]] = []
    for create in plan.creates:
        line = Line(
            draft_id=drafts[create.draft].id,
            source_id=source.id,
            group_key=create.group.encode(),
            contract_id=create.group.contract_id,
            period=create.group.period,
            state=LineState.PENDING,
            late=create.late,
        )
        _set_content(line, create.content)
        session.add(line)
        created.append((line, dict(create.entries)))
    session.flush()  # one INSERT batch; the lines get their ids
    counted = [(line.id, entries) for line, entries in created]

    updates = {update.line_id: update for update in plan.updates}
    for chunk in _chunks(sorted(updates)):
        for line in session.scalars(select(Line).where(Line.id.in_(chunk))):
            planned = updates[line.id]
            _set_content(line, planned.content)
            if line.payload_hash != planned.content.digest():
                line.state = LineState.PENDING
            if line.rejected_digest not in (None, planned.content.digest()):
                line.rejected = line.rejected_digest = None  # changed: Kukkingu may take it now
                session.execute(
                    update(Error)
                    .where(
                        Error.kind == ErrorKind.API,
                        Error.source_id == source.id,
                        Error.subject == f"line {line.reference_id}"[:255],
                        Error.resolved_at.is_(None),
                    )
                    .values(resolved_at=utcnow())
                )
            counted.append((line.id, dict(planned.entries)))
    session.flush()
    _replace_entries(session, counted, ids)

    _record_drift(session, source, plan, ids)


def _record_drift(session: Session, source: Source, plan: Plan, ids: dict[str, int]) -> None:
    """Drift as it stands now: new rows, updated deltas, and no row for drift that is gone."""
    current = {
        (item.line_id, ids[item.entry_key], DriftKind(item.kind)): item for item in plan.drift
    }
    existing = session.scalars(
        select(Drift).join(Line, Line.id == Drift.line_id).where(Line.source_id == source.id)
    ).all()
    rows = {(row.line_id, row.entry_id, row.kind): row for row in existing}
    for key, row in rows.items():
        if key not in current and row.acknowledged_at is None:
            session.delete(row)  # no longer true (the time came back): nothing to show
    for key, item in current.items():
        drift = rows.get(key)
        if drift is None:
            drift = Drift(line_id=key[0], entry_id=key[1], kind=key[2])
            session.add(drift)
        elif drift.seconds_delta != item.seconds_delta:
            drift.acknowledged_at = None  # it changed: the operator should look again
        drift.seconds_delta = item.seconds_delta
        drift.detail = {"entry": item.entry_key}


def record_problems(
    session: Session,
    source: Source,
    problems: Iterable[Problem],
    *,
    run_id: int | None,
    now: datetime,
    kinds: tuple[ErrorKind, ...] = (ErrorKind.UNMAPPED, ErrorKind.BAD_ENTRY),
) -> None:
    """Open the problems seen now, resolve the ones of ``kinds`` that are gone."""
    current = {(ErrorKind(p.kind), p.entry_key): p for p in problems}
    open_rows = session.scalars(
        select(Error).where(
            Error.source_id == source.id, Error.kind.in_(kinds), Error.resolved_at.is_(None)
        )
    ).all()
    seen = set()
    for row in open_rows:
        problem = current.get((row.kind, row.subject))
        if problem is None:
            row.resolved_at = now
        else:
            row.reason = problem.reason
            seen.add((row.kind, row.subject))
    for (kind, subject), problem in current.items():
        if (kind, subject) not in seen:
            session.add(
                Error(
                    run_id=run_id,
                    source_id=source.id,
                    kind=kind,
                    subject=subject,
                    reason=problem.reason,
                )
            )
