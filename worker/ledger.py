"""The ledger: the planner's view of the state store, and the recording of a plan.

:func:`planning_scope` says which of a source's issues to plan: the ones marked dirty
(:func:`mark_dirty`, in the transaction of each change) and what they reach, or all of them.
:func:`load_view` reads what the planner needs for them (the open drafts' fill, their lines
and the entries they count, and the other lines' references the plan asks about:
:func:`taken_references`); :func:`load_work` reads their active entries and the issues;
:func:`record_plan` writes a plan's drafts, lines, drift and problems in the caller's
transaction, and :func:`consume` removes the marks it planned in the same one. Kukkingu is
not touched here: the applier carries the recorded ledger out.

**Closed scopes.** The planner treats what it is given as the whole truth about each group
it visits: a group's entries missing from its input would zero the group's line, and an
entry's time held by a finalized line missing from it would be billed again. So a scope is
closed: every entry of a planned issue is loaded, every line of it, every line counting one
of its entries, and (through those) the issues of every entry such a line counts.

**Large plans in parts.** Planning every issue at once would hold the whole source in
memory. A full plan, and a plan of many changed issues, is made in parts instead
(:func:`issue_chunks`: about :data:`PLAN_CHUNK_ENTRIES` entries each, by issue), each a
closed scope recorded in its own transaction before the next is read.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import delete, func, insert, select, update
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
    DirtyIssue,
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

PLAN_CHUNK_ENTRIES = 10_000  # about this many entries per part of a full plan


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


def mark_dirty(
    session: Session, marks: Iterable[tuple[int, str | None]], *, own_sync: bool = False
) -> None:
    """Mark (source id, issue id) pairs for the next plan, in the caller's transaction.

    ``own_sync``: the caller is the sync of these marks' source (its ingest), the only one
    that removes them, so an issue marked already needs no second mark. A first sync then
    leaves one mark per issue, not one per issue and page. Any other caller always adds its
    mark: the source's sync may be removing the one it sees."""
    wanted = {m for m in marks if m[1] is not None}
    if own_sync:
        for source_id in {source_id for source_id, _ in wanted}:
            issues = sorted(str(issue) for s, issue in wanted if s == source_id)
            for chunk in _chunks(issues):
                wanted -= {
                    (source_id, issue)
                    for issue in session.scalars(
                        select(DirtyIssue.issue_id).where(
                            DirtyIssue.source_id == source_id, DirtyIssue.issue_id.in_(chunk)
                        )
                    )
                }
    values = [
        {"source_id": source_id, "issue_id": issue_id} for source_id, issue_id in sorted(wanted)
    ]
    for chunk in _chunks(values):
        session.execute(insert(DirtyIssue), chunk)


def mark_lines_dirty(session: Session, line_ids: Iterable[int]) -> None:
    """Mark the issues of these lines (their invoice closed, a write of them was refused)."""
    marks: set[tuple[int, str | None]] = set()
    for chunk in _chunks(sorted(set(line_ids))):
        marks.update(
            session.execute(select(Line.source_id, Line.issue_id).where(Line.id.in_(chunk))).all()
        )
    mark_dirty(session, marks)


@dataclass(frozen=True)
class Scope:
    """What a plan covers: some issues of a source (closed, see the module) or all of them
    (``issues`` None), and the dirty marks it read (:func:`consume` removes those)."""

    issues: frozenset[str] | None
    marks: frozenset[int] = frozenset()

    @property
    def full(self) -> bool:
        return self.issues is None


def planning_scope(session: Session, source: Source, *, full: bool) -> Scope:
    """The issues of ``source`` to plan now: everything, or the dirty ones and what they
    reach."""
    rows = session.execute(
        select(DirtyIssue.id, DirtyIssue.issue_id).where(DirtyIssue.source_id == source.id)
    ).all()
    marks = frozenset(mark_id for mark_id, _ in rows)
    if full:
        return Scope(None, marks)
    return Scope(frozenset(_closure(session, source, {issue for _, issue in rows})), marks)


def _closure(session: Session, source: Source, issues: set[str]) -> set[str]:
    """``issues`` and every issue they reach through the entries their lines count and the
    lines that count their entries (usually none: an entry stays with its issue)."""
    done: set[str] = set()
    todo = set(issues)
    while todo:
        done |= todo
        found: set[str | None] = set()
        for chunk in _chunks(sorted(todo)):
            found.update(
                session.scalars(
                    select(Line.issue_id)
                    .join(LineEntry, LineEntry.line_id == Line.id)
                    .join(Entry, Entry.id == LineEntry.entry_id)
                    .where(Entry.source_id == source.id, Entry.external_issue_id.in_(chunk))
                    .distinct()
                )
            )
            found.update(
                session.scalars(
                    select(Entry.external_issue_id)
                    .join(LineEntry, LineEntry.entry_id == Entry.id)
                    .join(Line, Line.id == LineEntry.line_id)
                    .where(Line.source_id == source.id, Line.issue_id.in_(chunk))
                    .distinct()
                )
            )
        todo = {issue for issue in found if issue is not None} - done
    return done


def issue_chunks(session: Session, source: Source, scope: Scope) -> list[frozenset[str]]:
    """The issues of ``scope`` (of a full scope: every issue of ``source`` with entries,
    lines or a record of its own), sorted and cut into groups of about
    :data:`PLAN_CHUNK_ENTRIES` entries: a large plan goes group by group, so its memory
    does not grow with the ledger."""
    weight: dict[str, int] = {}
    for where in _issue_filters(Entry.external_issue_id, scope):
        for issue, n in session.execute(
            select(Entry.external_issue_id, func.count())
            .where(Entry.source_id == source.id, Entry.external_issue_id.is_not(None), *where)
            .group_by(Entry.external_issue_id)
        ):
            weight[str(issue)] = int(n)
    if scope.issues is not None:
        for issue in scope.issues:
            weight.setdefault(issue, 1)
    else:
        for issue in session.scalars(
            select(SourceIssue.external_id).where(SourceIssue.source_id == source.id)
        ):
            weight.setdefault(issue, 1)
        for issue in session.scalars(
            select(Line.issue_id)
            .where(Line.source_id == source.id, Line.issue_id.is_not(None))
            .distinct()
        ):
            weight.setdefault(issue, 1)
    chunks: list[frozenset[str]] = []
    chunk: list[str] = []
    size = 0
    for issue in sorted(weight):
        chunk.append(issue)
        size += weight[issue]
        if size >= PLAN_CHUNK_ENTRIES:
            chunks.append(frozenset(chunk))
            chunk, size = [], 0
    if chunk:
        chunks.append(frozenset(chunk))
    return chunks


def chunk_scope(session: Session, source: Source, issues: frozenset[str]) -> Scope:
    """The scope of one part of a plan: ``issues`` and what they reach. It reads no marks:
    the plan removes those once its last part is recorded."""
    return Scope(frozenset(_closure(session, source, set(issues))))


def consume(session: Session, scope: Scope) -> None:
    """The plan of ``scope`` is recorded (this transaction): the marks it read are done.
    Only those: a mark committed since (another sync noticed a closed invoice, say) stays
    for the next plan, whatever its id."""
    for chunk in _chunks(sorted(scope.marks)):
        session.execute(delete(DirtyIssue).where(DirtyIssue.id.in_(chunk)))


def open_problems(session: Session) -> dict[tuple[int | None, str], int]:
    """Open problems by (source id, kind): what the dashboard and a run's counts show."""
    rows = session.execute(
        select(Error.source_id, Error.kind, func.count())
        .where(Error.resolved_at.is_(None))
        .group_by(Error.source_id, Error.kind)
    )
    return {(source_id, str(kind)): int(n) for source_id, kind, n in rows}


def open_drift(session: Session) -> dict[int, int]:
    """Drift not acknowledged, by source id."""
    rows = session.execute(
        select(Line.source_id, func.count())
        .join(Drift, Drift.line_id == Line.id)
        .where(Drift.acknowledged_at.is_(None))
        .group_by(Line.source_id)
    )
    return {int(source_id): int(n) for source_id, n in rows}


References = dict[int, frozenset[tuple[str, str]]]  # draft id -> (type, id) of lines on it


def load_view(session: Session, source: Source, scope: Scope = Scope(None)) -> LedgerView:
    """Every draft (the open ones with their fill, from every source's lines, as SQL
    aggregates), and the lines of ``source`` in ``scope`` with the entries they count.

    A draft's references are those of the scope's own lines on it; those of other lines
    are added when a plan asks for them (:func:`taken_references`, :func:`with_references`).
    The references of every line on every open draft are never read at once."""
    drafts = session.scalars(select(Draft).order_by(Draft.id)).all()
    fill = {
        draft_id: (int(count), int(last) + 1)
        for draft_id, count, last in session.execute(
            select(Line.draft_id, func.count(), func.max(Line.position))
            .join(Draft, Draft.id == Line.draft_id)
            .where(Draft.status == DraftStatus.DRAFT)  # lines go onto open drafts only
            .group_by(Line.draft_id)
        )
    }
    rows = [
        row
        for where in _issue_filters(Line.issue_id, scope)
        for row in session.execute(
            select(
                Line.id,
                Line.group_key,
                Line.draft_id,
                Line.reference_type,
                Line.reference_id,
                Line.position,
                Line.payload_hash,
                Line.late,
            ).where(Line.source_id == source.id, *where)
        )
    ]
    counted: dict[int, dict[str, int]] = defaultdict(dict)
    for where in _issue_filters(Line.issue_id, scope):
        for line_id, key, seconds in session.execute(
            select(LineEntry.line_id, Entry.key, LineEntry.seconds)
            .join(Entry, Entry.id == LineEntry.entry_id)
            .join(Line, Line.id == LineEntry.line_id)
            .where(Line.source_id == source.id, *where)
        ):
            counted[line_id][key] = seconds
    lines = tuple(
        LedgerLine(
            id=row.id,
            group=GroupKey.decode(row.group_key),
            draft_id=row.draft_id,
            reference_type=row.reference_type,
            reference_id=row.reference_id,
            position=row.position,
            entries=counted.get(row.id, {}),
            written_digest=row.payload_hash,
            late=row.late,
        )
        for row in rows
    )
    refs: dict[int, set[tuple[str, str]]] = defaultdict(set)
    for line in lines:
        if line.draft_id in fill:  # on an open draft (the others take no line)
            refs[line.draft_id].add((line.reference_type, line.reference_id))
    ledger_drafts = tuple(
        LedgerDraft(
            id=d.id,
            key=draft_key(d),
            status=d.status.value,
            invoice_number=d.invoice_number,
            line_count=fill.get(d.id, (0, 0))[0],
            next_position=fill.get(d.id, (0, 0))[1],
            references=frozenset(refs.get(d.id, ())),
        )
        for d in drafts
    )
    return LedgerView(drafts=ledger_drafts, lines=lines)


def with_references(view: LedgerView, taken: References) -> LedgerView:
    """``view`` with ``taken`` (draft id -> references) added to its drafts' references."""
    drafts = tuple(
        replace(d, references=d.references | taken[d.id]) if d.id in taken else d
        for d in view.drafts
    )
    return replace(view, drafts=drafts)


def taken_references(session: Session, view: LedgerView, plan: Plan) -> References:
    """The references ``plan`` gives its lines that other lines already hold on the same
    open draft, and that ``view`` did not show the planner: empty when the plan stands.

    The planner only asks whether a reference it wants is taken on a draft, so a plan made
    with these added (and again, until nothing new is found) is the plan it would make
    knowing every reference of every open draft."""
    draft_ids = {d.key: d.id for d in view.drafts}
    line_drafts = {line.id: line.draft_id for line in view.lines}
    wanted: dict[int, set[tuple[str, str]]] = defaultdict(set)
    for create in plan.creates:
        if (draft_id := draft_ids.get(create.draft)) is not None:  # a new draft holds nothing
            wanted[draft_id].add((create.content.reference_type, create.content.reference_id))
    for change in plan.updates:
        draft_id = line_drafts[change.line_id]
        wanted[draft_id].add((change.content.reference_type, change.content.reference_id))
    shown = {d.id: d.references for d in view.drafts}
    found: dict[int, set[tuple[str, str]]] = defaultdict(set)
    # A plan's lines go onto few drafts (the newest of each period): a query per draft.
    for draft_id, refs in wanted.items():
        unknown = sorted(refs - shown.get(draft_id, frozenset()))
        for chunk in _chunks(unknown):
            found[draft_id].update(
                (reference_type, reference_id)
                for reference_type, reference_id in session.execute(
                    select(Line.reference_type, Line.reference_id).where(
                        Line.draft_id == draft_id,  # the (draft, type, reference) unique index
                        Line.reference_id.in_([reference_id for _, reference_id in chunk]),
                    )
                )
                if (reference_type, reference_id) in refs
            )
    return {draft_id: frozenset(refs) for draft_id, refs in found.items() if refs}


def _issue_filters(column: Any, scope: Scope) -> Iterable[tuple[Any, ...]]:
    """WHERE clauses that together select ``scope``'s issues (chunked), or everything."""
    if scope.issues is None:
        yield ()
        return
    for chunk in _chunks(sorted(scope.issues)):
        yield (column.in_(chunk),)


def load_work(
    session: Session, source: Source, scope: Scope = Scope(None)
) -> tuple[list[TimeEntry], list[Issue]]:
    """The active entries of ``scope``'s issues, and those issues."""
    entries = [
        TimeEntry(
            key=row.key,
            source=source.name,
            issue_id=row.external_issue_id or "",
            author=row.author or "",
            started=row.started_at,
            seconds=row.seconds or 0,
        )
        for where in _issue_filters(Entry.external_issue_id, scope)
        for row in session.execute(
            select(
                Entry.key, Entry.external_issue_id, Entry.author, Entry.started_at, Entry.seconds
            ).where(Entry.source_id == source.id, Entry.state == EntryState.ACTIVE, *where)
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
        for where in _issue_filters(SourceIssue.external_id, scope)
        for row in session.scalars(
            select(SourceIssue).where(SourceIssue.source_id == source.id, *where)
        )
    ]
    return entries, issues


def _content_values(content: LineContent) -> dict[str, Any]:
    """A line's content columns (by attribute name) for a bulk statement."""
    return {
        "reference_type": content.reference_type,
        "reference_id": content.reference_id,
        "description": content.description,
        "quantity": content.quantity,
        "amount_minor": content.amount_minor,
        "currency": content.currency,
        "position": content.position,
        "meta": dict(content.metadata),
    }


def _set_content(line: Line, content: LineContent) -> None:
    for name, value in _content_values(content).items():
        setattr(line, name, value)


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
    for chunk in _chunks(values):  # executemany in slices: its parameters are held at once
        session.execute(insert(LineEntry), chunk)


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
    mark_dirty(session, [(line.source_id, line.issue_id)])
    if line.confirmed_entries is None:
        return False
    entries = {str(k): int(v) for k, v in line.confirmed_entries.items()}
    session.execute(delete(LineEntry).where(LineEntry.line_id == line.id))
    _replace_entries(session, [(line.id, entries)], _entry_ids(session, set(entries)))
    return True


def unbill(session: Session, line_ids: list[int]) -> None:
    """Remove lines Kukkingu never stored (their invoice closed first): their entries are
    planned again, onto an open draft."""
    mark_lines_dirty(session, line_ids)
    for chunk in _chunks(sorted(line_ids)):
        session.execute(delete(Drift).where(Drift.line_id.in_(chunk)))
        session.execute(delete(LineEntry).where(LineEntry.line_id.in_(chunk)))
        session.execute(delete(Line).where(Line.id.in_(chunk)))


def record_plan(session: Session, source: Source, plan: Plan, scope: Scope = Scope(None)) -> None:
    """Write ``plan``, made for ``scope``, into the ledger (the caller's transaction)."""
    keys = {key for create in plan.creates for key in create.entries}
    keys |= {key for update in plan.updates for key in update.entries}
    keys |= {item.entry_key for item in plan.drift}
    ids = _entry_ids(session, keys)

    periods = sorted({create.draft.period for create in plan.creates})
    drafts: dict[DraftKey, Draft] = {
        draft_key(d): d  # only the periods the plan puts lines in, not every draft
        for chunk in _chunks(periods)
        for d in session.scalars(select(Draft).where(Draft.period.in_(chunk)))
    }
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

    # bulk INSERTs (no ORM object per line). Each id comes back with the line's (draft,
    # type, reference), unique on a draft: asking for the ids in the order given instead
    # makes SQLAlchemy send one INSERT per line on SQLite.
    values = [
        {
            "draft_id": drafts[create.draft].id,
            "source_id": source.id,
            "group_key": create.group.encode(),
            "issue_id": create.group.issue_id,
            "contract_id": create.group.contract_id,
            "period": create.group.period,
            "state": LineState.PENDING,
            "late": create.late,
            **_content_values(create.content),
        }
        for create in plan.creates
    ]
    inserted: dict[tuple[int, str, str], int] = {}
    for chunk in _chunks(values):
        for line_id, draft_id, reference_type, reference_id in session.execute(
            insert(Line).returning(Line.id, Line.draft_id, Line.reference_type, Line.reference_id),
            chunk,
        ):
            inserted[(draft_id, reference_type, reference_id)] = line_id
    counted = [
        (inserted[(row["draft_id"], row["reference_type"], row["reference_id"])], dict(c.entries))
        for row, c in zip(values, plan.creates, strict=True)
    ]

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

    _record_drift(session, source, plan, ids, scope)


def _record_drift(
    session: Session, source: Source, plan: Plan, ids: dict[str, int], scope: Scope
) -> None:
    """Drift of the lines of ``scope`` as it stands now: new rows, updated deltas, and no
    row for drift that is gone."""
    current = {
        (item.line_id, ids[item.entry_key], DriftKind(item.kind)): item for item in plan.drift
    }
    existing = [
        row
        for where in _issue_filters(Line.issue_id, scope)
        for row in session.scalars(
            select(Drift)
            .join(Line, Line.id == Drift.line_id)
            .where(Line.source_id == source.id, *where)
        )
    ]
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
    scope: Scope = Scope(None),
) -> None:
    """Open the problems seen now, resolve the ones of ``kinds`` that are gone: of every
    entry, or (a plan of what changed) of the entries of ``scope``'s issues."""
    current = {(ErrorKind(p.kind), p.entry_key): p for p in problems}
    where = [Error.source_id == source.id, Error.kind.in_(kinds), Error.resolved_at.is_(None)]
    if scope.full:
        open_rows = list(session.scalars(select(Error).where(*where)))
    else:  # an entry problem's subject is the entry's key
        keys = [
            key
            for issues in _issue_filters(Entry.external_issue_id, scope)
            for key in session.scalars(
                select(Entry.key).where(Entry.source_id == source.id, *issues)
            )
        ]
        # By subject alone, the one index SQLite can then use: with the other conditions in
        # the query it read every open problem of the source (no statistics tell it better),
        # for each part of a plan.
        open_rows = [
            row
            for chunk in _chunks(keys)
            for row in session.scalars(select(Error).where(Error.subject.in_(chunk)))
            if row.source_id == source.id and row.kind in kinds and row.resolved_at is None
        ]
    seen = set()
    for row in open_rows:
        problem = current.get((row.kind, row.subject))
        if problem is None:
            row.resolved_at = now
        else:
            row.reason = problem.reason
            seen.add((row.kind, row.subject))
    opened = [
        {
            "run_id": run_id,
            "source_id": source.id,
            "kind": kind,
            "subject": subject,
            "reason": problem.reason,
        }
        for (kind, subject), problem in current.items()
        if (kind, subject) not in seen
    ]
    for chunk in _chunks(opened):  # bulk INSERTs: a first sync may open 100,000 of them
        session.execute(insert(Error), chunk)
