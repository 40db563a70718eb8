"""The applier: makes Kukkingu hold what the ledger says, exactly once.

It works from the *recorded ledger*, not from a plan in memory, so running it again after
any crash simply continues:

1. drafts without a Kukkingu id are created (``POST /invoices``);
2. lines without a Kukkingu id are created per draft, in ``order``, up to 100 a request;
3. lines whose content differs from what Kukkingu holds (``payload_hash``) are PUT;
4. each open draft's ``amountMinor`` is set to the sum of its lines (GET, then PUT, keeping
   the fields a person may have set).

Before every write an :class:`~worker.store.Intent` is committed; after it, the result is
committed with the intent marked done. A PENDING intent therefore means "this may have been
stored". Creates are the dangerous kind (no idempotency key): before creating anything on a
draft with pending create intents, the applier lists the invoice's billables and adopts
those whose (referenceType, referenceId) the intent recorded; an invoice is adopted by its
unique number. PUTs are idempotent and are simply sent again.

**Concurrency.** Writes on different drafts (invoice creates, billables creates) and on
different billables and drafts (PUTs) run side by side, at most ``concurrency`` at once
(``[kukkingu] concurrency``, 4 by default). Each keeps its own intent -> write -> record
sequence in its own transactions, so the protocol holds for each of them; one draft's
creates stay in one thread, in order. The first failure stops new writes from starting; the
ones in flight finish and are recorded; then it is raised.

**Whose lines.** A sync's applier (``source_id``) writes and reconciles only its source's
lines; drafts are shared by the sources of a contract and are created and totalled under the
tenant's ledger lock (see :func:`worker.sync.sync`), so syncs of other sources write their
own lines meanwhile.

``checkpoint(step)`` is called between every two steps; tests make it crash the "process"
there (the in-flight transaction is rolled back, as a real crash would lose it).
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor, wait
from dataclasses import dataclass
from typing import Any, TypeVar

from sqlalchemy import func, or_, select, true, update
from sqlalchemy.orm import Session, sessionmaker

from connectors.kukkingu import (
    Invoice,
    InvoiceReplace,
    KukkinguClient,
    KukkinguConflict,
    KukkinguOutcomeUnknown,
    KukkinguRejected,
    NewInvoice,
)
from connectors.kukkingu.mapping import billable_replace, new_billable
from connectors.kukkingu.mapping import content_of as held_content
from worker.core.model import MAX_LINES_PER_DRAFT, LineContent
from worker.errors import FatalError
from worker.ledger import confirm, content_of, restore_confirmed, unbill
from worker.progress import ProgressFn, no_progress
from worker.store import (
    Draft,
    DraftStatus,
    Error,
    ErrorKind,
    Intent,
    IntentKind,
    IntentStatus,
    Line,
    LineState,
    Run,
    transaction,
    utcnow,
)

log = logging.getLogger("billsync.applier")

Checkpoint = Callable[[str], None]
T = TypeVar("T")
UPDATE_SLICE = 500  # changed lines read (and written, concurrently) at a time


def _named_item(message: str, size: int) -> int | None:
    """The index of the item a validation message names (``billables[3].amountMinor: ...``)."""
    found = re.search(r"billables\[(\d+)\]", message)
    if found is None or int(found.group(1)) >= size:
        return None
    return int(found.group(1))


class DraftClosed(Exception):
    """Kukkingu refused a write because the invoice is no longer a DRAFT: re-plan."""


@dataclass
class ApplyCounts:
    drafts_created: int = 0
    lines_created: int = 0
    lines_adopted: int = 0
    lines_updated: int = 0
    drafts_updated: int = 0
    lines_rejected: int = 0  # refused by Kukkingu (400/422): isolated, not sent again


class Applier:
    def __init__(
        self,
        factory: sessionmaker[Session],
        client: KukkinguClient,
        *,
        run_id: int | None = None,
        source_id: int | None = None,
        checkpoint: Checkpoint = lambda step: None,
        fence: Checkpoint = lambda step: None,
        progress: ProgressFn = no_progress,
        concurrency: int = 4,
    ) -> None:
        if concurrency < 1:
            raise ValueError(f"concurrency must be at least 1, not {concurrency}")
        self.factory = factory
        self.concurrency = concurrency
        self._lock = threading.Lock()  # the counts and the progress, shared by the writers
        self.client = client
        self.run_id = run_id
        # The source whose lines this applier writes (None: every source's). Lines belong to
        # one source, and only its sync writes them; drafts are shared between sources.
        self.source_id = source_id
        self.checkpoint = checkpoint
        self.fence = fence  # raises unless the sync's locks are still its own (before a write)
        self.progress = progress
        self._to_create = self._created = 0
        self.counts = ApplyCounts()
        # Invoices as last seen (the sync's status listing, our own creates): an amount
        # update starts from them instead of a GET per draft. A stale status is harmless:
        # Kukkingu answers 409 for a closed invoice and the sync plans again.
        self.invoices: dict[str, Invoice] = {}

    # --- concurrency -------------------------------------------------------------------------

    def _each(self, items: Iterable[T], work: Callable[[T], None]) -> None:
        """``work`` on each item, ``concurrency`` at a time; the first failure (any
        BaseException: a crash, a closed draft) stops the items not started and is raised
        once the ones in flight are done."""
        todo = list(items)
        if self.concurrency == 1 or len(todo) <= 1:
            for item in todo:
                work(item)
            return
        stop = threading.Event()

        def guarded(item: T) -> None:
            if stop.is_set():
                return
            try:
                work(item)
            except BaseException:
                stop.set()
                raise

        pool = ThreadPoolExecutor(min(self.concurrency, len(todo)), "kukkingu-write")
        try:
            futures = [pool.submit(guarded, item) for item in todo]
            wait(futures)
        except BaseException:  # this thread was interrupted (Ctrl-C, a worker's shutdown)
            stop.set()
            raise
        finally:  # the writes in flight finish and are recorded; the rest never start
            pool.shutdown(wait=True, cancel_futures=True)
        for future in futures:
            if (failure := future.exception()) is not None:
                raise failure

    # --- whose work -------------------------------------------------------------------------

    def _own_lines(self) -> list[Any]:
        return [] if self.source_id is None else [Line.source_id == self.source_id]

    def _own_line_intents(self) -> list[Any]:
        """Intents on lines are the source's own: another source's sync may be sending its
        own right now, and only that source's next sync may reconcile them."""
        if self.source_id is None:
            return []
        runs = select(Run.id).where(Run.source_id == self.source_id)
        return [Intent.run_id.in_(runs)]

    # --- intents ----------------------------------------------------------------------------

    def _intend(self, kind: IntentKind, draft_id: int, payload: dict[str, object]) -> int:
        with transaction(self.factory) as session:
            intent = Intent(
                run_id=self.run_id,
                kind=kind,
                draft_id=draft_id,
                payload=payload,
                status=IntentStatus.PENDING,
                attempts=1,
            )
            session.add(intent)
            session.flush()
            intent_id = intent.id
        self.checkpoint(f"intent.{kind.value}")
        self.fence(f"the {kind.value} write")  # a pending intent is reconciled by the next sync
        return intent_id

    @staticmethod
    def _close(
        session: Session, intent_id: int, status: IntentStatus, error: str | None = None
    ) -> None:
        intent = session.get_one(Intent, intent_id)
        intent.status, intent.completed_at, intent.error = status, utcnow(), error

    # --- recovery -----------------------------------------------------------------------------

    def recover(self) -> None:
        """Reconcile every PENDING intent a crash (or a lost answer) left behind: on drafts
        any sync's (they are written under the ledger lock, so their writer is gone), on
        lines this source's own."""
        line_kinds = (IntentKind.CREATE_BILLABLES, IntentKind.UPDATE_BILLABLE)
        with self.factory() as session:
            pending = session.scalars(
                select(Intent)
                .where(
                    Intent.status == IntentStatus.PENDING,
                    or_(Intent.kind.not_in(line_kinds), *self._own_line_intents() or [true()]),
                )
                .order_by(Intent.id)
            ).all()
            work = [(i.id, i.kind, i.draft_id, dict(i.payload)) for i in pending]
        listed: set[int] = set()
        for intent_id, kind, draft_id, payload in work:
            if kind == IntentKind.CREATE_INVOICE:
                self._adopt_invoice(intent_id, payload)
            elif kind == IntentKind.CREATE_BILLABLES and draft_id is not None:
                if draft_id not in listed:  # one listing adopts all of a draft's intents
                    self._adopt_billables(draft_id)
                    listed.add(draft_id)
            else:  # PUTs are idempotent: the next pass sends them again if still needed
                with transaction(self.factory) as session:
                    self._close(session, intent_id, IntentStatus.ABANDONED)
            self.checkpoint("recover.intent")

    def settle_closed(self) -> tuple[int, int]:
        """Lines on invoices that closed (FINALIZED, VOID) hold only what Kukkingu confirmed.

        A write the closing refused (409) must not count as billed: a line Kukkingu never
        stored is removed (its entries are planned again, onto an open draft), and a line
        whose update was refused goes back to what Kukkingu holds and the entries it
        counted then, so the difference is billed as late work. Run after :meth:`recover`
        (a create whose answer was lost is adopted first). Returns (removed, restored)."""
        with self.factory() as session:
            rows = session.execute(
                select(Line, Draft.kukkingu_id)
                .join(Draft, Draft.id == Line.draft_id)
                .where(Draft.status != DraftStatus.DRAFT, *self._own_lines())
            ).all()
            unsent = [line.id for line, _ in rows if line.kukkingu_id is None]
            changed: dict[str, list[int]] = {}
            for line, invoice_id in rows:
                if line.kukkingu_id is not None and line.payload_hash != content_of(line).digest():
                    changed.setdefault(str(invoice_id), []).append(line.id)
        if not unsent and not changed:
            return 0, 0
        held = {
            b.id: held_content(b)
            for invoice_id in changed
            for b in self.client.list_billables(invoice_id)
        }
        restored = 0
        with transaction(self.factory) as session:
            unbill(session, unsent)
            for line_ids in changed.values():
                for line_id in line_ids:
                    line = session.get_one(Line, line_id)
                    actual = held.get(str(line.kukkingu_id))
                    if actual is None:
                        continue  # not on its invoice any more: nothing to go back to
                    if actual.digest() == content_of(line).digest():
                        line.payload_hash = actual.digest()  # the write did land
                        confirm(session, [line.id])
                    elif not restore_confirmed(session, line, actual):
                        log.warning(
                            "line %s (%s) was confirmed before billsync kept its entries: "
                            "what its refused update added is not billed late",
                            line.id,
                            line.reference_id,
                        )
                    else:
                        restored += 1
        for count, what in ((len(unsent), "removed"), (restored, "restored")):
            if count:
                log.info("%d line(s) %s: their invoice closed before the write landed", count, what)
        return len(unsent), restored

    def _adopt_invoice(self, intent_id: int, payload: dict[str, object]) -> bool:
        """Adopt the invoice an intent may have created; True when it was found."""
        number, contract_id = str(payload["invoiceNumber"]), str(payload["contractId"])
        found = [
            i
            for i in self.client.list_invoices(contract_id=contract_id)
            if i.invoice_number == number
        ]
        with transaction(self.factory) as session:
            draft = session.get_one(Draft, int(str(payload["draftId"])))
            if found:
                invoice = found[0]
                draft.kukkingu_id, draft.status = invoice.id, DraftStatus(invoice.status)
                draft.amount_minor = invoice.amount_minor
                log.info("adopted invoice %s (%s) after a lost answer", number, invoice.id)
            self._close(session, intent_id, IntentStatus.DONE if found else IntentStatus.ABANDONED)
        return bool(found)

    def _adopt_billables(self, draft_id: int) -> None:
        """List the invoice's billables; adopt those the pending intents recorded."""
        with self.factory() as session:
            draft = session.get_one(Draft, draft_id)
            invoice_id = draft.kukkingu_id
            intents = session.scalars(
                select(Intent).where(
                    Intent.draft_id == draft_id,
                    Intent.kind == IntentKind.CREATE_BILLABLES,
                    Intent.status == IntentStatus.PENDING,
                    *self._own_line_intents(),
                )
            ).all()
            sent = {
                (str(t), str(r)): int(line_id)
                for i in intents
                for line_id, t, r in i.payload.get("lines", [])
            }
            intent_ids = [i.id for i in intents]
        if invoice_id is None:
            raise FatalError(f"draft {draft_id} has create intents but no Kukkingu invoice id")
        stored = {
            (b.reference_type or "", b.reference_id or ""): b
            for b in self.client.list_billables(invoice_id)
        }
        with transaction(self.factory) as session:
            for ref, line_id in sent.items():
                billable = stored.get(ref)
                line = session.get_one(Line, line_id)
                if billable is None or line.kukkingu_id is not None:
                    continue
                line.kukkingu_id = billable.id
                line.payload_hash = held_content(billable).digest()
                line.state = LineState.PENDING
                if line.payload_hash == content_of(line).digest():
                    line.state = LineState.SYNCED
                    confirm(session, [line.id])
                with self._lock:
                    self.counts.lines_adopted += 1
            for intent_id in intent_ids:
                self._close(session, intent_id, IntentStatus.DONE)
        self.checkpoint("recover.adopted")

    # --- the passes -----------------------------------------------------------------------------

    def apply(self) -> ApplyCounts:
        """Carry the recorded ledger out. Call :meth:`recover` first, *before* planning: the
        planner must know which lines a lost answer already stored.

        A sync runs the three steps itself: :meth:`create_drafts` and :meth:`update_drafts`
        write shared drafts and run under the tenant's ledger lock, :meth:`write_lines`
        writes the source's own lines and needs only the source's lock."""
        self.create_drafts()
        self.write_lines()
        self.update_drafts()
        return self.counts

    def write_lines(self) -> None:
        """Create the lines not on Kukkingu yet, then update those whose content changed."""
        self._create_lines()
        self._update_lines()

    def _line_totals(self, session: Session, *drafts: Any) -> dict[int, int]:
        """The sum of the lines of each draft that ``drafts`` (conditions on ``Draft``)
        select: only those, not every draft a ledger ever had (finalized ones pile up)."""
        return {
            draft_id: int(total)
            for draft_id, total in session.execute(
                select(Line.draft_id, func.coalesce(func.sum(Line.amount_minor), 0))
                .join(Draft, Draft.id == Line.draft_id)
                .where(Line.rejected.is_(None), *drafts)  # a refused line is not on it
                .group_by(Line.draft_id)
            )
        }

    def create_drafts(self) -> None:
        with self.factory() as session:
            new = (Draft.kukkingu_id.is_(None), Draft.status == DraftStatus.DRAFT)
            totals = self._line_totals(session, *new)
            todo = session.scalars(select(Draft).where(*new).order_by(Draft.id)).all()
            bodies = [
                (
                    d.id,
                    NewInvoice(
                        contract_id=d.contract_id,
                        invoice_number=d.invoice_number,
                        exchange_rate=d.exchange_rate,
                        currency_code=d.currency,
                        # The lines are recorded already: the invoice starts with their
                        # total, so a new draft needs no amount update once its billables
                        # are created.
                        amount_minor=totals.get(d.id, 0),
                    ),
                )
                for d in todo
            ]
        self._each(bodies, lambda item: self._create_draft_tries(*item))

    def _create_draft_tries(self, draft_id: int, body: NewInvoice) -> None:
        for _ in range(3):
            if self._create_draft(draft_id, body):
                return
        raise FatalError(
            f"invoice {body.invoice_number} could neither be created nor found for contract "
            f"{body.contract_id} (is the number taken by another contract?)"
        )

    def _create_draft(self, draft_id: int, body: NewInvoice) -> bool:
        """One try at creating a draft's invoice; True once the draft has its Kukkingu id."""
        payload: dict[str, object] = {
            "draftId": draft_id,
            "invoiceNumber": body.invoice_number,
            "contractId": body.contract_id,
        }
        intent_id = self._intend(IntentKind.CREATE_INVOICE, draft_id, payload)
        try:
            invoice = self.client.create_invoice(body)
        except (KukkinguOutcomeUnknown, KukkinguConflict):
            # A lost answer, or the number exists (an earlier lost answer): look it up.
            self.checkpoint("draft.lost")
            return self._adopt_invoice(intent_id, payload)
        self.checkpoint("draft.created")
        with transaction(self.factory) as session:
            draft = session.get_one(Draft, draft_id)
            draft.kukkingu_id, draft.amount_minor = invoice.id, invoice.amount_minor
            self._close(session, intent_id, IntentStatus.DONE)
        self.invoices[invoice.id] = invoice
        with self._lock:
            self.counts.drafts_created += 1
        self.checkpoint("draft.recorded")
        return True

    def _create_lines(self) -> None:
        pending = (
            select(Line.draft_id)
            .join(Draft, Draft.id == Line.draft_id)
            .where(
                Line.kukkingu_id.is_(None),
                Draft.status == DraftStatus.DRAFT,
                Draft.kukkingu_id.is_not(None),
                *self._own_lines(),
            )
        )
        with self.factory() as session:
            draft_ids = sorted(set(session.scalars(pending)))
            self._to_create = len(session.scalars(pending).all())
        self._created = 0
        self._each(draft_ids, self._create_lines_on)  # one draft's batches in one thread

    def _create_lines_on(self, draft_id: int, tries: int = 3) -> None:
        with self.factory() as session:
            invoice_id = session.get_one(Draft, draft_id).kukkingu_id
            lines = session.scalars(
                select(Line)
                .where(
                    Line.draft_id == draft_id,
                    Line.kukkingu_id.is_(None),
                    Line.rejected.is_(None),
                    *self._own_lines(),
                )
                .order_by(Line.position)
            ).all()
            todo = [(line.id, content_of(line)) for line in lines]
        assert invoice_id is not None
        for start in range(0, len(todo), MAX_LINES_PER_DRAFT):
            batch = todo[start : start + MAX_LINES_PER_DRAFT]
            if not self._create_batch(draft_id, invoice_id, batch):
                if tries <= 1:
                    raise KukkinguOutcomeUnknown(
                        f"the billables create on {invoice_id} kept losing its answer"
                    )
                self._create_lines_on(draft_id, tries - 1)  # what was not stored, now
                return

    def _create_batch(
        self, draft_id: int, invoice_id: str, batch: list[tuple[int, LineContent]]
    ) -> bool:
        """Create ``batch``'s billables; False when an answer was lost (adopted meanwhile;
        the caller sends what was not stored). A batch Kukkingu refuses (400/422) is split
        until the refused lines stand alone: they are marked rejected, the rest is billed."""
        payload: dict[str, object] = {
            "lines": [[line_id, c.reference_type, c.reference_id] for line_id, c in batch]
        }
        intent_id = self._intend(IntentKind.CREATE_BILLABLES, draft_id, payload)
        try:
            created = self.client.create_billables(invoice_id, [new_billable(c) for _, c in batch])
        except KukkinguOutcomeUnknown:
            self.checkpoint("lines.lost")
            self._adopt_billables(draft_id)
            return False
        except KukkinguConflict as exc:
            raise DraftClosed(str(exc)) from exc
        except KukkinguRejected as exc:
            with transaction(self.factory) as session:  # refused before storing: nothing landed
                self._close(session, intent_id, IntentStatus.FAILED, str(exc))
            return self._isolate(draft_id, invoice_id, batch, str(exc))
        self.checkpoint("lines.created")
        by_ref = {(b.reference_type or "", b.reference_id or ""): b for b in created}
        missing = [
            c.reference_id for _, c in batch if (c.reference_type, c.reference_id) not in by_ref
        ]
        if missing:
            raise FatalError(
                f"Kukkingu created billables on {invoice_id} but did not return {missing[:5]}"
            )
        with transaction(self.factory) as session:
            session.execute(  # one executemany by primary key, not a load per line
                update(Line),
                [
                    {
                        "id": line_id,
                        "kukkingu_id": by_ref[(c.reference_type, c.reference_id)].id,
                        "payload_hash": c.digest(),
                        "state": LineState.ZEROED if c.quantity == 0 else LineState.SYNCED,
                    }
                    for line_id, c in batch
                ],
            )
            confirm(session, [line_id for line_id, _ in batch])
            self._close(session, intent_id, IntentStatus.DONE)
        with self._lock:
            self.counts.lines_created += len(batch)
            self._created += len(batch)
            self.progress("create", self._created, max(self._to_create, self._created))
        self.checkpoint("lines.recorded")
        return True

    def _isolate(
        self, draft_id: int, invoice_id: str, batch: list[tuple[int, LineContent]], reason: str
    ) -> bool:
        """Find the lines Kukkingu refuses: the one its message names (``billables[3]...``),
        else by halves. Returns False if an answer was lost on the way."""
        if len(batch) == 1:
            self._reject(*batch[0], reason)
            return True
        named = _named_item(reason, len(batch))
        if named is not None:
            self._reject(*batch[named], reason)
            rest = batch[:named] + batch[named + 1 :]
            return self._create_batch(draft_id, invoice_id, rest)
        half = len(batch) // 2
        return self._create_batch(draft_id, invoice_id, batch[:half]) and self._create_batch(
            draft_id, invoice_id, batch[half:]
        )

    def _reject(self, line_id: int, content: LineContent, reason: str) -> None:
        """Kukkingu refused this line's content: record it, with Kukkingu's message, as a
        problem for the operator. It is sent again only when its content changes."""
        log.warning("Kukkingu refused line %s (%s): %s", line_id, content.reference_id, reason)
        with transaction(self.factory) as session:
            line = session.get_one(Line, line_id)
            line.rejected, line.rejected_digest = reason, content.digest()
            session.add(
                Error(
                    run_id=self.run_id,
                    source_id=line.source_id,
                    kind=ErrorKind.API,
                    subject=f"line {content.reference_id}"[:255],
                    reason=f"Kukkingu refused the billable: {reason}",
                    detail={"lineId": line_id, "draftId": line.draft_id},
                )
            )
        with self._lock:
            self.counts.lines_rejected += 1

    def _update_lines(self) -> None:
        # Every change of a written line's content leaves it PENDING (the plan's record,
        # an adoption of different content), so only those are read, not every line; and
        # in slices, since new rules can leave every line of the ledger PENDING.
        with self.factory() as session:
            ids = session.scalars(
                select(Line.id)
                .join(Draft, Draft.id == Line.draft_id)
                .where(
                    Line.state == LineState.PENDING,
                    Line.kukkingu_id.is_not(None),
                    Draft.status == DraftStatus.DRAFT,
                    *self._own_lines(),
                )
                .order_by(Line.id)
            ).all()
        for start in range(0, len(ids), UPDATE_SLICE):
            with self.factory() as session:
                rows = session.scalars(
                    select(Line)
                    .where(Line.id.in_(ids[start : start + UPDATE_SLICE]))
                    .order_by(Line.id)
                ).all()
                todo = [
                    (line.id, line.draft_id, line.kukkingu_id, content)
                    for line, content in ((line, content_of(line)) for line in rows)
                    if line.payload_hash != content.digest()
                    and line.rejected_digest != content.digest()
                ]
            self._each(todo, lambda item: self._update_line(*item, total=len(ids)))

    def _update_line(
        self,
        line_id: int,
        draft_id: int,
        billable_id: str | None,
        content: LineContent,
        *,
        total: int,
    ) -> None:
        intent_id = self._intend(IntentKind.UPDATE_BILLABLE, draft_id, {"lineId": line_id})
        body = billable_replace(content)
        try:
            self.client.replace_billable(str(billable_id), body)
        except KukkinguConflict as exc:
            raise DraftClosed(str(exc)) from exc
        except KukkinguRejected as exc:  # refused before storing: the billable is as it was
            with transaction(self.factory) as session:
                self._close(session, intent_id, IntentStatus.FAILED, str(exc))
            self._reject(line_id, content, str(exc))
            return
        self.checkpoint("line.updated")
        with transaction(self.factory) as session:
            line = session.get_one(Line, line_id)
            line.payload_hash = content.digest()
            line.state = LineState.ZEROED if content.quantity == 0 else LineState.SYNCED
            confirm(session, [line_id])
            self._close(session, intent_id, IntentStatus.DONE)
        with self._lock:
            self.counts.lines_updated += 1
            self.progress("update", self.counts.lines_updated, total)
        self.checkpoint("line.recorded")

    def update_drafts(self) -> None:
        """Keep each open draft's ``amountMinor`` equal to the sum of its lines."""
        with self.factory() as session:
            written = (Draft.status == DraftStatus.DRAFT, Draft.kukkingu_id.is_not(None))
            totals = self._line_totals(session, *written)
            drafts = session.scalars(select(Draft).where(*written).order_by(Draft.id)).all()
            todo = [
                (d.id, str(d.kukkingu_id), totals.get(d.id, 0))
                for d in drafts
                if d.amount_minor != totals.get(d.id, 0)
            ]
        self._each(todo, lambda item: self._update_draft(*item))

    def _update_draft(self, draft_id: int, invoice_id: str, total: int) -> None:
        intent_id = self._intend(IntentKind.UPDATE_INVOICE, draft_id, {"amountMinor": total})
        invoice = self.invoices.get(invoice_id) or self.client.get_invoice(invoice_id)
        if invoice.status != "DRAFT":
            raise DraftClosed(f"invoice {invoice.invoice_number} is {invoice.status}")
        body = InvoiceReplace(
            contract_id=invoice.contract,
            invoice_number=invoice.invoice_number,
            exchange_rate=invoice.exchange_rate,
            currency_code=invoice.currency_code,
            amount_minor=total,
            issued_at=invoice.issued_at,
            due_at=invoice.due_at,
            paid_at=invoice.paid_at,
        )
        try:
            updated = self.client.replace_invoice(invoice_id, body)
        except KukkinguConflict as exc:
            raise DraftClosed(str(exc)) from exc
        self.invoices[invoice_id] = updated
        self.checkpoint("draft.amount")
        with transaction(self.factory) as session:
            session.get_one(Draft, draft_id).amount_minor = total
            self._close(session, intent_id, IntentStatus.DONE)
        with self._lock:
            self.counts.drafts_updated += 1
        self.checkpoint("draft.amount.recorded")
