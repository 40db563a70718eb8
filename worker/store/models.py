"""The state store's tables, as SQLAlchemy 2 declarative models.

One model per table; ``docs/state-store.md`` explains why each exists and which invariant
its keys protect. The schema is written to run unchanged on SQLite and PostgreSQL:

- every timestamp is :class:`UTCDateTime`: stored in UTC, read back timezone-aware (SQLite
  has no timezone type, so without it values would come back naive);
- every enumeration is a VARCHAR with a named CHECK constraint (no native ENUM types, so a
  new value is a CHECK change, not a type migration);
- JSON columns are :class:`sqlalchemy.JSON`;
- constraint and index names come from :data:`NAMING_CONVENTION`, so migrations are
  deterministic and can name what they drop.

The Alembic migrations under ``worker/store/migrations`` must describe exactly these models;
a test compares them on both backends.
"""

from __future__ import annotations

import enum
import json
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    DateTime,
    Dialect,
    Enum,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    Numeric,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship
from sqlalchemy.types import TypeDecorator

from worker.ports import SourceKind as SourceKind  # the port's kinds, stored

NAMING_CONVENTION: dict[str, str] = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def utcnow() -> datetime:
    """The current time, timezone-aware, in UTC: the default of every timestamp column."""
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """A timezone-aware datetime, stored in UTC, always read back aware (UTC).

    Naive datetimes are refused on the way in: their meaning depends on the machine.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None or value.tzinfo.utcoffset(value) is None:
            raise ValueError(f"naive datetime {value.isoformat()} refused: give it a timezone")
        value = value.astimezone(UTC)
        if dialect.name == "sqlite":
            # SQLite stores text; a fixed UTC form without offset keeps values sortable.
            return value.replace(tzinfo=None)
        return value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {  # noqa: RUF012 (SQLAlchemy reads it as a class attribute)
        datetime: UTCDateTime(),
        dict[str, Any]: JSON(),
        list[Any]: JSON(),
    }


# --- enumerations (VARCHAR + CHECK) -------------------------------------------------------


class EntryState(enum.StrEnum):
    ACTIVE = "active"  # counts towards billing
    DELETED = "deleted"  # deleted at the source
    BAD = "bad"  # unusable as it stands (bad_reason says why); reported, never guessed
    HIDDEN = "hidden"  # no longer visible to billsync (permissions): not a deletion


class DraftStatus(enum.StrEnum):
    DRAFT = "DRAFT"
    FINALIZED = "FINALIZED"
    VOID = "VOID"


class LineState(enum.StrEnum):
    PENDING = "pending"  # local content differs from what Kukkingu holds (or was never sent)
    SYNCED = "synced"  # payload_hash is what Kukkingu holds
    ZEROED = "zeroed"  # all its entries are gone: billed as 0 / 0
    FROZEN = "frozen"  # its invoice is FINALIZED or VOID: never written again


class IntentKind(enum.StrEnum):
    CREATE_INVOICE = "create_invoice"
    CREATE_BILLABLES = "create_billables"
    UPDATE_BILLABLE = "update_billable"
    UPDATE_INVOICE = "update_invoice"


class IntentStatus(enum.StrEnum):
    PENDING = "pending"  # recorded, the write may or may not have reached Kukkingu
    DONE = "done"
    FAILED = "failed"  # Kukkingu said no: nothing was stored
    ABANDONED = "abandoned"  # superseded; recovery reconciled it


class RunTrigger(enum.StrEnum):
    SCHEDULE = "schedule"
    ON_DEMAND = "on_demand"
    CLI = "cli"
    WEBHOOK = "webhook"  # a Jira or GitHub webhook (SPEC §12)


class RunStatus(enum.StrEnum):
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    RETRYING = "retrying"  # failed, and its retry is due at ``retry_at``
    INTERRUPTED = "interrupted"  # its process died mid-run (the workers' sweep noticed)
    PARTIAL = "partial"  # done, but part of the source did not answer (a lost repository)


class ErrorKind(enum.StrEnum):
    BAD_ENTRY = "bad_entry"
    UNMAPPED = "unmapped"
    CONFIGURATION = "configuration"
    API = "api"


class DriftKind(enum.StrEnum):
    LESS_TIME = "less_time"
    ENTRY_DELETED = "entry_deleted"
    ENTRY_EDITED = "entry_edited"
    OUT_OF_SCOPE = "out_of_scope"  # the entry left every rule (moved, non-billable)


ENUM_LENGTH = 32
"""Every enum column is VARCHAR(32): a new value changes the CHECK, not the column."""


def _enum(cls: type[enum.StrEnum], name: str) -> Enum:
    """A non-native enum: VARCHAR plus a CHECK named ``ck_<table>_<name>``; stores the values."""
    return Enum(
        cls,
        name=name,
        native_enum=False,
        create_constraint=True,
        length=ENUM_LENGTH,
        values_callable=lambda members: [m.value for m in members],
        validate_strings=True,
    )


# --- sources and what they yield ------------------------------------------------------------


class Source(Base):
    """A configured source (a Jira site or a GitHub host), by its name in the config."""

    __tablename__ = "sources"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    kind: Mapped[SourceKind] = mapped_column(_enum(SourceKind, "kind"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
    last_success_at: Mapped[datetime | None]
    # A digest of the rules (and time zone) the source's ledger was last planned with in
    # full; a sync whose rules differ re-plans everything, one with the same rules plans
    # only what changed (see DirtyIssue).
    plan_hash: Mapped[str | None] = mapped_column(String(64))

    cursors: Mapped[list[Cursor]] = relationship(back_populates="source")


class Cursor(Base):
    """How far one stream of a source has been read.

    A cursor advances only in the same transaction as the work it covers.
    """

    __tablename__ = "cursors"

    source_id: Mapped[int] = mapped_column(ForeignKey("sources.id"), primary_key=True)
    stream: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[str] = mapped_column(Text)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    source: Mapped[Source] = relationship(back_populates="cursors")


class SourceIssue(Base):
    """What billsync knows of an issue (or pull request) at its source."""

    __tablename__ = "source_issues"
    __table_args__ = (
        UniqueConstraint("source_id", "external_id"),
        Index(None, "source_id", "key"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    source_id: Mapped[int] = mapped_column(ForeignKey("sources.id"))
    external_id: Mapped[str] = mapped_column(String(255))  # stable: survives moves and renames
    key: Mapped[str] = mapped_column(String(255))  # current "PROJ-123" / "owner/repo#42"
    project: Mapped[str] = mapped_column(String(255))  # Jira project key / GitHub "owner/repo"
    summary: Mapped[str] = mapped_column(Text, default="")
    labels: Mapped[list[Any]] = mapped_column(default=list)
    issue_type: Mapped[str | None] = mapped_column(String(64))
    source_updated_at: Mapped[datetime | None]
    first_seen_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
    # Indexes of the config's JQL rules the source says this issue matches (Jira only).
    jql_rules: Mapped[list[Any]] = mapped_column(default=list, server_default=text("'[]'"))

    source: Mapped[Source] = relationship()


class Entry(Base):
    """One time entry (a Jira worklog, one ``/spend`` line of a GitHub comment).

    ``key`` is stable for the life of the entry. Everything but ``key``, ``source_id`` and
    ``state`` may be missing on a BAD entry (that can be why it is bad).
    """

    __tablename__ = "entries"
    __table_args__ = (
        Index(None, "source_id", "state"),
        Index(None, "source_id", "external_issue_id"),
        CheckConstraint("state <> 'bad' OR bad_reason IS NOT NULL", name="bad_has_reason"),
        CheckConstraint(
            "state = 'bad' OR (external_issue_id IS NOT NULL AND author IS NOT NULL"
            " AND started_at IS NOT NULL AND seconds IS NOT NULL)",
            name="usable_is_complete",
        ),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    key: Mapped[str] = mapped_column(String(255), unique=True)
    source_id: Mapped[int] = mapped_column(ForeignKey("sources.id"))
    external_issue_id: Mapped[str | None] = mapped_column(String(255))
    author: Mapped[str | None] = mapped_column(String(255))
    started_at: Mapped[datetime | None]
    seconds: Mapped[int | None] = mapped_column(BigInteger)  # raw; negative = a correction
    content_hash: Mapped[str] = mapped_column(String(64))
    state: Mapped[EntryState] = mapped_column(_enum(EntryState, "state"))
    bad_reason: Mapped[str | None] = mapped_column(Text)
    source_updated_at: Mapped[datetime | None]
    first_seen_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    source: Mapped[Source] = relationship()


# --- invoices and their lines ---------------------------------------------------------------


class Draft(Base):
    """A Kukkingu invoice billsync opened (or must open): one (contract, currency, period, seq)."""

    __tablename__ = "drafts"
    __table_args__ = (
        UniqueConstraint("contract_id", "currency", "period", "seq"),
        Index(None, "status"),
        CheckConstraint("seq >= 1", name="seq_positive"),
        CheckConstraint("amount_minor >= 0", name="amount_not_negative"),
        CheckConstraint("exchange_rate >= 0", name="rate_not_negative"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    contract_id: Mapped[str] = mapped_column(String(64))
    currency: Mapped[str] = mapped_column(String(3))
    period: Mapped[str] = mapped_column(String(16))  # "2026-11", "2026-W47", "all"
    seq: Mapped[int] = mapped_column(Integer)
    invoice_number: Mapped[str] = mapped_column(String(255), unique=True)
    kukkingu_id: Mapped[str | None] = mapped_column(String(64), unique=True)
    status: Mapped[DraftStatus] = mapped_column(_enum(DraftStatus, "status"))
    exchange_rate: Mapped[Decimal] = mapped_column(Numeric(18, 8))
    amount_minor: Mapped[int] = mapped_column(BigInteger)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    lines: Mapped[list[Line]] = relationship(back_populates="draft", order_by="Line.position")


def _group_issue(context: Any) -> str:
    """A line's issue when not given: the one in its group key (record_plan gives it)."""
    group = json.loads(context.get_current_parameters()["group_key"])
    return str(group[4]) if isinstance(group, list) and len(group) > 4 else ""


class Line(Base):
    """A billable on a draft. UNIQUE (draft, reference_type, reference_id) is invariant 1.

    ``contract_id``/``currency``/``period`` are the *work's*; late work can sit on a draft of
    another period, so they are kept here rather than read from the draft.
    """

    __tablename__ = "lines"
    __table_args__ = (
        UniqueConstraint("draft_id", "reference_type", "reference_id"),
        Index(None, "source_id", "group_key"),
        Index(None, "source_id", "issue_id"),
        UniqueConstraint("draft_id", "position"),
        Index(None, "contract_id", "currency", "period", "reference_type", "reference_id"),
        Index(None, "state"),
        CheckConstraint("quantity >= 0", name="quantity_not_negative"),
        CheckConstraint("amount_minor >= 0", name="amount_not_negative"),
        CheckConstraint("position >= 0", name="position_not_negative"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    draft_id: Mapped[int] = mapped_column(ForeignKey("drafts.id"))
    contract_id: Mapped[str] = mapped_column(String(64))
    currency: Mapped[str] = mapped_column(String(3))
    period: Mapped[str] = mapped_column(String(16))
    reference_type: Mapped[str] = mapped_column(String(32))
    reference_id: Mapped[str] = mapped_column(String(255))
    kukkingu_id: Mapped[str | None] = mapped_column(String(64), unique=True)
    position: Mapped[int] = mapped_column(Integer)
    quantity: Mapped[Decimal] = mapped_column(Numeric(18, 2))
    amount_minor: Mapped[int] = mapped_column(BigInteger)
    description: Mapped[str] = mapped_column(String(255))
    # "metadata" is reserved on declarative classes; the column keeps the API's name.
    meta: Mapped[dict[str, Any]] = mapped_column("metadata", default=dict)
    payload_hash: Mapped[str | None] = mapped_column(String(64))
    state: Mapped[LineState] = mapped_column(_enum(LineState, "state"))
    late: Mapped[bool] = mapped_column(Boolean(create_constraint=False), default=False)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
    # What the line bills, by stable ids (worker.core.model.GroupKey, JSON-encoded): a
    # moved issue keeps its line; the reference follows the issue's current key.
    source_id: Mapped[int] = mapped_column(ForeignKey("sources.id"))
    group_key: Mapped[str] = mapped_column(String(1024))
    # The entries (key -> seconds) the line counted when Kukkingu last confirmed a write of
    # it; a write refused because the invoice closed leaves the line at these (and its
    # content at what Kukkingu holds), so the difference is billed as late work.
    confirmed_entries: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    # Kukkingu refused this content (400/422): its message, and the digest of the content it
    # refused. The line is not sent again until its content changes.
    rejected: Mapped[str | None] = mapped_column(Text)
    rejected_digest: Mapped[str | None] = mapped_column(String(64))
    # The group's issue (from group_key unless given), to find an issue's lines by index.
    issue_id: Mapped[str] = mapped_column(String(255), default=_group_issue)

    draft: Mapped[Draft] = relationship(back_populates="lines")
    source: Mapped[Source] = relationship()
    line_entries: Mapped[list[LineEntry]] = relationship(
        back_populates="line", cascade="all, delete-orphan"
    )


class LineEntry(Base):
    """Which entries a line counts, and how many seconds of each (invariant 2's ledger)."""

    __tablename__ = "line_entries"
    __table_args__ = (Index(None, "entry_id"),)

    line_id: Mapped[int] = mapped_column(ForeignKey("lines.id"), primary_key=True)
    entry_id: Mapped[int] = mapped_column(ForeignKey("entries.id"), primary_key=True)
    seconds: Mapped[int] = mapped_column(BigInteger)

    line: Mapped[Line] = relationship(back_populates="line_entries")
    entry: Mapped[Entry] = relationship()


class DirtyIssue(Base):
    """An issue of a source whose billing may have changed: an entry of it was written,
    deleted or found bad, the issue itself changed, or a line of it sits on an invoice that
    closed or on a write Kukkingu refused. Marked in the transaction of that change; the
    planner plans these issues only, and removes the marks it planned in the transaction
    that records the plan, so a crash in between loses no mark. Not unique: a mark is a
    row, and a plan removes exactly the rows it read (the source's own ingest skips issues
    marked already; see :func:`worker.ledger.mark_dirty`)."""

    __tablename__ = "dirty_issues"
    __table_args__ = (Index(None, "source_id", "id"), Index(None, "source_id", "issue_id"))

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    source_id: Mapped[int] = mapped_column(ForeignKey("sources.id"))
    issue_id: Mapped[str] = mapped_column(String(255))


class WebhookReport(Base):
    """A change a webhook reported (SPEC §12), for the source's next sync to read directly:
    a GitHub comment deletion (``comment_deleted``: its entries are deleted without listing
    the issue's comments again), a Jira worklog created or updated (``worklog``) or deleted
    (``worklog_deleted``: Jira's worklog feeds leave out the last minute, so the sync reads
    these worklogs by id). The sync removes the rows in the transaction that records what
    it read. ``comments``: the GitHub issue's comment count after the deletion, as the
    event gave it; the sync trusts it only when it is exactly one less than the count it
    last saw (else it lists the comments, as without a webhook)."""

    __tablename__ = "webhook_reports"
    __table_args__ = (UniqueConstraint("source_id", "kind", "item_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    source_id: Mapped[int] = mapped_column(ForeignKey("sources.id"))
    kind: Mapped[str] = mapped_column(String(32))
    repo: Mapped[str | None] = mapped_column(String(255))  # GitHub: owner/repo
    issue_id: Mapped[str | None] = mapped_column(String(255))  # the source's stable issue id
    item_id: Mapped[str] = mapped_column(String(64))  # the comment's or worklog's id
    comments: Mapped[int | None] = mapped_column(Integer)
    received_at: Mapped[datetime] = mapped_column(default=utcnow)


# --- the price list (SPEC §11) ---------------------------------------------------------------


class PriceItem(Base):
    """A Cliniko billable item as last read: the cache rules are priced from, so billing
    goes on through a Cliniko outage. Keyed by Cliniko's id (an item code may repeat)."""

    __tablename__ = "price_items"
    __table_args__ = (Index(None, "item_code"),)

    item_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    item_code: Mapped[str | None] = mapped_column(String(100))
    name: Mapped[str] = mapped_column(String(255))
    item_type: Mapped[str] = mapped_column(String(32))
    price: Mapped[str] = mapped_column(Text)  # the decimal string as Cliniko sent it, whole
    archived_at: Mapped[datetime | None]
    updated_at: Mapped[datetime]  # Cliniko's
    read_at: Mapped[datetime] = mapped_column(default=utcnow)  # when billsync read it


class PriceList(Base):
    """How the price list cache stands: one row (id 1). ``read_at`` is the last read that
    succeeded; ``cursor`` the newest ``updated_at`` it saw (the next read asks from there);
    ``error`` why the last attempt failed, None when it succeeded."""

    __tablename__ = "price_list"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    base_url: Mapped[str] = mapped_column(String(255))  # a cache of another account is reread
    read_at: Mapped[datetime | None]
    full_read_at: Mapped[datetime | None]
    cursor: Mapped[datetime | None]
    attempted_at: Mapped[datetime | None]
    error: Mapped[str | None] = mapped_column(Text)


# --- the outbox, runs and what the operator sees --------------------------------------------


class Run(Base):
    """One sync of one source (or of all), however it was started."""

    __tablename__ = "runs"
    __table_args__ = (
        Index(None, "source_id", "started_at"),
        Index(None, "status"),
        Index(None, "task_id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    source_id: Mapped[int | None] = mapped_column(ForeignKey("sources.id"))
    trigger: Mapped[RunTrigger] = mapped_column(_enum(RunTrigger, "trigger"))
    status: Mapped[RunStatus] = mapped_column(_enum(RunStatus, "status"))
    started_at: Mapped[datetime] = mapped_column(default=utcnow)
    finished_at: Mapped[datetime | None]
    counts: Mapped[dict[str, Any]] = mapped_column(default=dict)
    requests: Mapped[dict[str, Any]] = mapped_column(default=dict)
    error: Mapped[str | None] = mapped_column(Text)
    task_id: Mapped[str | None] = mapped_column(String(255))
    retry_at: Mapped[datetime | None]  # when a ``retrying`` run's next attempt is due

    source: Mapped[Source | None] = relationship()


class Intent(Base):
    """The outbox: a write to Kukkingu, recorded before it is sent.

    A PENDING intent after a crash means "this may have been stored": reconcile before retrying.
    """

    __tablename__ = "intents"
    __table_args__ = (
        Index(None, "status"),
        Index(None, "draft_id"),
        Index(None, "run_id"),
        CheckConstraint("attempts >= 0", name="attempts_not_negative"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    run_id: Mapped[int | None] = mapped_column(ForeignKey("runs.id"))
    kind: Mapped[IntentKind] = mapped_column(_enum(IntentKind, "kind"))
    draft_id: Mapped[int | None] = mapped_column(ForeignKey("drafts.id"))
    payload: Mapped[dict[str, Any]] = mapped_column()
    status: Mapped[IntentStatus] = mapped_column(_enum(IntentStatus, "status"))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    completed_at: Mapped[datetime | None]
    error: Mapped[str | None] = mapped_column(Text)

    run: Mapped[Run | None] = relationship()
    draft: Mapped[Draft | None] = relationship()


class Error(Base):
    """A problem for the operator: a bad entry, unmapped work, a configuration or API error."""

    __tablename__ = "errors"
    __table_args__ = (
        Index(None, "kind"),
        Index(None, "run_id"),
        Index(None, "source_id"),
        Index(None, "subject"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    run_id: Mapped[int | None] = mapped_column(ForeignKey("runs.id"))
    source_id: Mapped[int | None] = mapped_column(ForeignKey("sources.id"))
    kind: Mapped[ErrorKind] = mapped_column(_enum(ErrorKind, "kind"))
    subject: Mapped[str] = mapped_column(String(255))
    reason: Mapped[str] = mapped_column(Text)
    detail: Mapped[dict[str, Any]] = mapped_column(default=dict)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    resolved_at: Mapped[datetime | None]

    run: Mapped[Run | None] = relationship()
    source: Mapped[Source | None] = relationship()


class Drift(Base):
    """A change billsync may not apply because the line's invoice is FINALIZED."""

    __tablename__ = "drift"
    __table_args__ = (
        # One row per (line, entry, kind): a re-run updates it rather than adding another.
        UniqueConstraint("line_id", "entry_id", "kind"),
        Index(None, "line_id"),
        Index(None, "entry_id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    line_id: Mapped[int] = mapped_column(ForeignKey("lines.id"))
    entry_id: Mapped[int | None] = mapped_column(ForeignKey("entries.id"))
    kind: Mapped[DriftKind] = mapped_column(_enum(DriftKind, "kind"))
    seconds_delta: Mapped[int] = mapped_column(BigInteger)
    detail: Mapped[dict[str, Any]] = mapped_column(default=dict)
    detected_at: Mapped[datetime] = mapped_column(default=utcnow)
    acknowledged_at: Mapped[datetime | None]
    acknowledged_by: Mapped[str | None] = mapped_column(String(255))  # migration 0010

    line: Mapped[Line] = relationship()
    entry: Mapped[Entry | None] = relationship()
