"""One sync of one source: ingest -> notice invoice statuses -> plan -> record -> apply.

The run is recorded (start, end, counts, requests, error) for the dashboard. Every step
commits its own work, and the applier continues from the recorded ledger, so a sync that
crashes anywhere is finished by the next one without losing or doubling a line.

A dry run does everything up to the plan inside one transaction that is rolled back, and
sends no write to Kukkingu: it reads invoices to know their statuses, nothing more.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from connectors.kukkingu import Invoice, KukkinguClient
from worker.applier import Applier, ApplyCounts, Checkpoint, DraftClosed
from worker.clients import cliniko_client
from worker.config import Settings
from worker.core.model import LedgerView, Plan, Problem, Rule
from worker.core.planner import plan as make_plan
from worker.errors import ConfigurationError, FatalError
from worker.ingest import (
    IngestCounts,
    StoreContext,
    ingest,
    load_cursors,
    record_batch,
    record_unreachable,
    source_row,
)
from worker.ledger import (
    Scope,
    chunk_scope,
    consume,
    issue_chunks,
    load_view,
    load_work,
    mark_dirty,
    open_drift,
    open_problems,
    planning_scope,
    record_plan,
    record_problems,
    taken_references,
    with_references,
)
from worker.ports import EntrySource
from worker.prices import Refresh, refresh_price_list
from worker.progress import ProgressFn, no_progress
from worker.rules import plan_digest, priced_rules, uses_price_list
from worker.store import (
    Draft,
    DraftStatus,
    Entry,
    EntryState,
    Error,
    ErrorKind,
    Line,
    LineState,
    Run,
    RunStatus,
    RunTrigger,
    Source,
    transaction,
    utcnow,
)

log = logging.getLogger("billsync.sync")

MAX_ROUNDS = 3  # re-plans after an invoice was finalized or voided under our feet


@dataclass
class SyncResult:
    source: str
    run_id: int | None
    ingested: IngestCounts
    applied: ApplyCounts
    plan: Plan = field(default_factory=Plan)  # the last plan (of a full plan: its last part)
    view: LedgerView | None = None  # the ledger the last plan was made against
    planned_writes: int = 0  # writes planned by every plan (and part) of the run
    scopes: list[Scope] = field(default_factory=list)  # what each round planned
    requests: dict[str, int] = field(default_factory=dict)
    bad_total: int = 0  # bad entries of the source in the store, this run's included
    # what stays open after the run (a plan of what changed sees only its own part)
    unmapped_total: int = 0  # unmapped entries of the source
    drift_total: int = 0  # drift on the source's lines not acknowledged

    @property
    def replanned(self) -> bool:
        """A plan covered every issue (new rules, or asked for)."""
        return any(scope.full for scope in self.scopes)

    @property
    def planned_issues(self) -> int:
        """The issues the last plan covered, when not every one."""
        return len(self.scopes[-1].issues or ()) if self.scopes else 0


def refresh_statuses(
    session: Session, client: KukkinguClient, seen: dict[str, Invoice] | None = None
) -> list[str]:
    """Notice drafts finalized or voided in Kukkingu (one list call); returns what changed.

    The invoices listed are left in ``seen`` for the applier."""
    known = session.scalars(
        select(Draft).where(Draft.kukkingu_id.is_not(None), Draft.status != DraftStatus.VOID)
    ).all()
    if not known:
        return []
    invoices = {invoice.id: invoice for invoice in client.list_invoices()}
    if seen is not None:
        seen.update(invoices)
    changed = []
    for draft in known:
        invoice = invoices.get(str(draft.kukkingu_id))
        if invoice is None:
            # Never re-bill on a guess: a missing invoice may mean a wrong tenant-id.
            raise FatalError(
                f"invoice {draft.invoice_number} ({draft.kukkingu_id}) of the state store is "
                "missing from the Kukkingu tenant: the state store belongs to another tenant "
                "or Kukkingu (a sandbox that started afresh?), or the invoice was deleted; "
                "check kukkingu.tenant_id and kukkingu.base_url against [state] url"
            )
        status = DraftStatus(invoice.status)
        if status != draft.status:
            changed.append(f"{draft.invoice_number}: {draft.status.value} -> {status.value}")
            draft.status = status
            lines = session.scalars(select(Line).where(Line.draft_id == draft.id)).all()
            mark_dirty(session, {(line.source_id, line.issue_id) for line in lines})
            if status != DraftStatus.DRAFT:
                for line in lines:
                    line.state = LineState.FROZEN
    return changed


def _bad_entries(session: Session, source: Source) -> list[Problem]:
    rows = session.execute(
        select(Entry.key, Entry.bad_reason).where(
            Entry.source_id == source.id, Entry.state == EntryState.BAD
        )
    )
    return [Problem(key, "bad_entry", reason or "bad entry") for key, reason in rows]


def _plan(
    session: Session,
    settings: Settings,
    rules: list[Rule],
    source: Source,
    now: datetime,
    scope: Scope,
) -> tuple[Plan, LedgerView]:
    entries, issues = load_work(session, source, scope)
    view = load_view(session, source, scope)
    while True:  # again while the plan wants references other lines hold (rarely)
        result = make_plan(
            entries=entries,
            issues=issues,
            rules=rules,
            zone=settings.timezone,
            now=now,
            ledger=view,
            scope=frozenset({source.name}),
        )
        found = taken_references(session, view, result)
        if not found:
            return result, view
        view = with_references(view, found)


def dry_run(
    settings: Settings,
    factory: sessionmaker[Session],
    client: KukkinguClient,
    source: EntrySource,
    *,
    now: Callable[[], datetime] = utcnow,
    replan: bool = False,
) -> SyncResult:
    """What a sync would do, computed in a transaction that is rolled back (the price list
    cache is refreshed first, as a sync would: it is a copy of Cliniko, not billing)."""
    counts = IngestCounts()
    refresh_prices(settings, factory, source.name)
    with factory() as session:
        try:
            row = source_row(session, source.name, source.kind)
            context = StoreContext(None, row.id, session=session)
            for batch in source.fetch(load_cursors(session, row), context):
                record_batch(session, row, batch, counts)
            refresh_statuses(session, client)
            session.flush()
            rules = priced_rules(session, settings)
            scope = _scope(session, row, plan_digest(settings, rules), replan=replan)
            result, view = _plan(session, settings, rules, row, now(), scope)
        finally:
            session.rollback()
    return SyncResult(
        source=source.name,
        run_id=None,
        ingested=counts,
        applied=ApplyCounts(),
        plan=result,
        view=view,
        planned_writes=result.writes,
        scopes=[scope],
        requests=dict(client.request_counts),
    )


def _scope(session: Session, source: Source, digest: str, *, replan: bool) -> Scope:
    """What to plan: everything when asked, or when the rules' ``digest`` differs from the
    one the ledger was planned by; else what changed."""
    full = replan or source.plan_hash != digest
    return planning_scope(session, source, full=full)


def sync(
    settings: Settings,
    factory: sessionmaker[Session],
    client: KukkinguClient,
    source: EntrySource,
    *,
    trigger: RunTrigger = RunTrigger.CLI,
    now: Callable[[], datetime] = utcnow,
    checkpoint: Checkpoint = lambda step: None,
    fence: Checkpoint = lambda step: None,
    task_id: str | None = None,
    progress: ProgressFn = no_progress,
    ledger_lock: Callable[[], AbstractContextManager[object]] = nullcontext,
    retry_wait: Callable[[BaseException], float | None] = lambda exc: None,
    replan: bool = False,
) -> SyncResult:
    """Sync ``source`` into Kukkingu; the run is recorded whatever happens. ``fence`` is
    called before every Kukkingu write and raises when the sync's locks are gone;
    ``retry_wait`` says in how many seconds a failure is retried (the run is then
    ``retrying``), or None. ``replan``: plan every issue, not only what changed."""
    with transaction(factory) as session:
        row = source_row(session, source.name, source.kind)
        if task_id is not None:
            _close_earlier_attempts(session, row.id, task_id)
        run = Run(source_id=row.id, trigger=trigger, status=RunStatus.RUNNING, task_id=task_id)
        session.add(run)
        session.flush()
        run_id, source_id = run.id, row.id
    before = dict(client.request_counts)
    result = SyncResult(source.name, run_id, IngestCounts(), ApplyCounts())
    try:
        result.ingested = ingest(factory, source, checkpoint=checkpoint, progress=progress)
        with transaction(factory) as session:
            record_unreachable(
                session, session.get_one(Source, source_id), result.ingested.unreachable, run_id
            )
        price_list = refresh_prices(settings, factory, source.name)
        if price_list is not None:
            with transaction(factory) as session:
                _record_configuration_problem(
                    session,
                    source_id,
                    run_id,
                    PRICE_LIST,
                    price_list.error if price_list.configuration else None,
                )
        applier = Applier(
            factory,
            client,
            run_id=run_id,
            source_id=source_id,
            checkpoint=checkpoint,
            fence=fence,
            progress=progress,
            concurrency=settings.file.kukkingu.concurrency,
        )
        result.applied = applier.counts
        this = _ThisSync(
            settings, factory, client, applier, source_id, result, now, checkpoint, progress
        )
        _rounds(this, replan, ledger_lock)
    except (Exception, KeyboardInterrupt) as exc:
        # A real crash records nothing; so nothing is recorded for other BaseExceptions
        # (the fault tests' simulated crash is one): the run stays "running".
        wait = retry_wait(exc)
        retry_at = None if wait is None else utcnow() + timedelta(seconds=wait)
        error = f"{type(exc).__name__}: {exc}"
        _finish(
            factory,
            run_id,
            result,
            client,
            before,
            error=error,
            retry_at=retry_at,
            configuration=isinstance(exc, ConfigurationError),
        )
        raise
    _finish(factory, run_id, result, client, before, error=None)
    return result


def refresh_prices(
    settings: Settings, factory: sessionmaker[Session], source: str
) -> Refresh | None:
    """Refresh the price list cache when a rule of ``source`` takes its rate from it (None:
    none does)."""
    cliniko = settings.file.cliniko
    if cliniko is None or not uses_price_list(settings, source):
        return None
    client = cliniko_client(settings)
    assert client is not None
    with client:
        return refresh_price_list(factory, client, cliniko.base_url)


def _close_earlier_attempts(session: Session, source_id: int, task_id: str) -> None:
    """This message ran before: a run of it still ``running`` died with its process (this
    delivery holds the source's lock, so nothing else runs it), and one ``retrying`` has
    its retry now."""
    now = utcnow()
    earlier = session.scalars(
        select(Run).where(
            Run.source_id == source_id,
            Run.task_id == task_id,
            Run.status.in_([RunStatus.RUNNING, RunStatus.RETRYING]),
        )
    )
    for run in earlier:
        if run.status == RunStatus.RUNNING:
            run.status = RunStatus.INTERRUPTED
            run.error = "its process died mid-run; the message was delivered again"
            run.finished_at = now
        else:
            run.status = RunStatus.FAILED
        run.retry_at = None


def interrupt_runs(factory: sessionmaker[Session], source: str, task_id: str, reason: str) -> int:
    """Mark ``source``'s runs of ``task_id`` still ``running`` as interrupted (their process
    died, found by the workers' sweep); returns how many."""
    with transaction(factory) as session:
        source_id = session.scalar(select(Source.id).where(Source.name == source))
        if source_id is None:
            return 0
        runs = session.scalars(
            select(Run).where(
                Run.source_id == source_id,
                Run.task_id == task_id,
                Run.status == RunStatus.RUNNING,
            )
        ).all()
        for run in runs:
            run.status = RunStatus.INTERRUPTED
            run.error = f"interrupted: {reason}"
            run.finished_at = utcnow()
        return len(runs)


@dataclass
class _ThisSync:
    """What the steps of one sync share."""

    settings: Settings
    factory: sessionmaker[Session]
    client: KukkinguClient
    applier: Applier
    source_id: int
    result: SyncResult
    now: Callable[[], datetime]
    checkpoint: Checkpoint
    progress: ProgressFn = no_progress


def _rounds(
    this: _ThisSync, replan: bool, ledger_lock: Callable[[], AbstractContextManager[object]]
) -> None:
    """Allocate, then write the source's lines; again if an invoice closed meanwhile.

    Sources sharing a contract share drafts, so what allocates runs under the tenant's
    ledger lock, one sync at a time: noticing statuses, reconciling, planning onto draft
    seats, creating the new drafts, and at the end setting the drafts' amounts. The lines
    are the source's own: they are written with only the source's lock held, while other
    sources' syncs plan and write theirs."""
    for _ in range(MAX_ROUNDS):
        with ledger_lock():
            _allocate(this, replan=replan)
            replan = False  # once: a later round plans what the first one left dirty
            this.checkpoint("sync.recorded")
            this.applier.create_drafts()
        try:
            this.applier.write_lines()
            with ledger_lock():
                this.applier.update_drafts()
            return
        except DraftClosed as exc:
            log.info("an invoice closed during the sync (%s); planning again", exc)
    raise FatalError(f"invoices kept closing during the sync ({MAX_ROUNDS} rounds)")


def _allocate(this: _ThisSync, *, replan: bool) -> None:
    """Notice statuses, reconcile, plan and record (under the ledger lock).

    A plan covers the issues marked dirty since the last one (and removes those marks in
    its transaction), or every issue (``replan``, or rules whose digest differs: new rules,
    or a price list item's price changed, or a rule held or released). A large
    plan is made and recorded in parts (see :mod:`worker.ledger`); the last part's
    transaction removes the marks and records the digest, so a crash between parts leaves
    the marks (or a full plan) to the next sync."""
    with transaction(this.factory) as session:
        changed = refresh_statuses(session, this.client, this.applier.invoices)
    for change in changed:
        log.info("noticed invoice %s", change)
    this.checkpoint("sync.statuses")
    # Reconcile lost answers before planning: a line stored by a create whose answer
    # was lost must count as billed, even if its invoice was finalized since.
    this.applier.recover()
    # a write the closing of an invoice refused is not billed: back to what Kukkingu holds
    this.applier.settle_closed()
    with transaction(this.factory) as session:
        source = session.get_one(Source, this.source_id)
        rules = priced_rules(session, this.settings)
        digest = plan_digest(this.settings, rules)
        scope = _scope(session, source, digest, replan=replan)
        chunks = issue_chunks(session, source, scope)
    parts: list[frozenset[str] | None] = list(chunks) if len(chunks) > 1 else [None]
    result = this.result
    for index, part in enumerate(parts):  # None: the scope in one piece
        last = index == len(parts) - 1
        with transaction(this.factory) as session:
            source = session.get_one(Source, this.source_id)
            planned_scope = scope if part is None else chunk_scope(session, source, part)
            planned, view = _plan(session, this.settings, rules, source, this.now(), planned_scope)
            record_plan(session, source, planned, planned_scope)
            record_problems(
                session,
                source,
                planned.problems,
                run_id=result.run_id,
                now=this.now(),
                kinds=(ErrorKind.UNMAPPED,),
                scope=planned_scope,
            )
            if last:  # the plan is whole: its marks are done, and it was made by these rules
                consume(session, scope)
                source.plan_hash = digest
                _record_held_rules(session, source, rules, result.run_id)
                _record_totals(session, source, result, this.now())
        result.plan, result.view = planned, view
        result.planned_writes += planned.writes
        this.progress("plan", index + 1, len(parts))
        this.progress("planned", result.planned_writes, None)
        if not last:
            this.checkpoint("sync.part")
    result.scopes.append(scope)


def _record_totals(session: Session, source: Source, result: SyncResult, now: datetime) -> None:
    """The source's bad entries as problems, and what stays open after the run."""
    bad_entries = _bad_entries(session, source)
    result.bad_total = len(bad_entries)
    record_problems(
        session, source, bad_entries, run_id=result.run_id, now=now, kinds=(ErrorKind.BAD_ENTRY,)
    )
    result.unmapped_total = open_problems(session).get((source.id, ErrorKind.UNMAPPED), 0)
    result.drift_total = open_drift(session).get(source.id, 0)


# subjects of a source's configuration problems: its sync was refused access; the price
# list refused billsync's key; rules[N] cannot be priced (held back)
ACCESS = "sync"
PRICE_LIST = "price list"
RULE = "rules[{index}]"


def _record_held_rules(
    session: Session, source: Source, rules: list[Rule], run_id: int | None
) -> None:
    """A configuration problem for each of the source's rules whose work is held back
    (its price list item gives no rate); resolved once the rule is priced again, or gone
    from the config."""
    mine = [rule for rule in rules if rule.source == source.name]
    for rule in mine:
        reason = None
        if rule.held is not None:
            reason = (
                f"{rule.held}; the rule's new work ({rule.contract_id}, {rule.currency}) is "
                "held back until it is fixed, and its lines on drafts stay as they are"
            )
        _record_configuration_problem(
            session, source.id, run_id, RULE.format(index=rule.index), reason
        )
    current = {RULE.format(index=rule.index) for rule in mine}
    stale = session.scalars(
        select(Error).where(
            Error.source_id == source.id,
            Error.kind == ErrorKind.CONFIGURATION,
            Error.subject.startswith(RULE.split("[", 1)[0] + "["),
            Error.subject.not_in(current),
            Error.resolved_at.is_(None),
        )
    )
    for error in stale:
        error.resolved_at = utcnow()


def _record_configuration_problem(
    session: Session, source_id: int, run_id: int | None, subject: str, error: str | None
) -> None:
    """Open (or update) the source's configuration problem ``subject`` with ``error``, or
    resolve it (None)."""
    held = session.scalars(
        select(Error).where(
            Error.source_id == source_id,
            Error.kind == ErrorKind.CONFIGURATION,
            Error.subject == subject,
            Error.resolved_at.is_(None),
        )
    ).first()
    if error is None:
        if held is not None:
            held.resolved_at = utcnow()
    elif held is None:
        session.add(
            Error(
                run_id=run_id,
                source_id=source_id,
                kind=ErrorKind.CONFIGURATION,
                subject=subject,
                reason=error,
            )
        )
    else:
        held.reason, held.run_id = error, run_id


def _finish(
    factory: sessionmaker[Session],
    run_id: int,
    result: SyncResult,
    client: KukkinguClient,
    before: dict[str, int],
    *,
    error: str | None,
    retry_at: datetime | None = None,
    configuration: bool = False,
) -> None:
    """Record the run's end. A failure the operator must fix (``configuration``: a 401 or
    403, an untrusted certificate) is also an open problem of the source, so the Problems
    page lists it; the source's next successful run resolves it."""
    result.requests = {
        route: count - before.get(route, 0)
        for route, count in client.request_counts.items()
        if count - before.get(route, 0)
    }
    try:
        with transaction(factory) as session:
            run = session.get_one(Run, run_id)
            run.finished_at = utcnow()
            lost = result.ingested.unreachable
            if error is None and lost:
                run.status = RunStatus.PARTIAL
                error = "partial: " + "; ".join(f"{what}: {why}" for what, why in lost)
            elif error is None:
                run.status = RunStatus.SUCCEEDED
            else:
                run.status = RunStatus.FAILED if retry_at is None else RunStatus.RETRYING
            run.error = error
            run.retry_at = retry_at
            partial = run.status == RunStatus.PARTIAL
            run.counts = {
                "entriesSeen": result.ingested.entries_seen,
                "entriesNew": result.ingested.new,
                "entriesChanged": result.ingested.changed,
                "entriesDeleted": result.ingested.deleted,
                "badEntries": result.ingested.bad,
                "linesCreated": result.applied.lines_created,
                "linesAdopted": result.applied.lines_adopted,
                "linesUpdated": result.applied.lines_updated,
                "linesRejected": result.applied.lines_rejected,
                "draftsCreated": result.applied.drafts_created,
                "draftsUpdated": result.applied.drafts_updated,
                "problems": result.unmapped_total,
                "drift": result.drift_total,
            }
            run.requests = {"kukkingu": result.requests}
            if (error is None or partial) and run.source is not None:
                run.source.last_success_at = run.finished_at
            if run.source_id is not None and (configuration or error is None or partial):
                # refused access is a problem until a run gets through (another failure,
                # a 503 say, says nothing about access)
                _record_configuration_problem(
                    session, run.source_id, run_id, ACCESS, error if configuration else None
                )
    except Exception:  # the run record must not hide the sync's own error
        log.exception("could not record the end of run %s", run_id)
