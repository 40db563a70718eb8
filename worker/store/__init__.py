"""billsync's local state store: what was seen, what was billed, what is in flight.

SQLAlchemy 2 models on SQLite (default) or PostgreSQL, migrated by the packaged Alembic
scripts. ``docs/state-store.md`` describes every table and the invariant it protects.

    engine = make_engine(url)
    upgrade(url)
    factory = session_factory(engine)
    with transaction(factory) as session:
        ...  # the work and the cursor that covers it, committed together
"""

from worker.store.db import is_sqlite, make_engine, session_factory, transaction
from worker.store.migrate import current, downgrade, head, upgrade
from worker.store.models import (
    NAMING_CONVENTION,
    Base,
    Cursor,
    DirtyIssue,
    Draft,
    DraftStatus,
    Drift,
    DriftKind,
    Entry,
    EntryState,
    Error,
    ErrorKind,
    Intent,
    IntentKind,
    IntentStatus,
    Line,
    LineEntry,
    LineState,
    PriceItem,
    PriceList,
    Run,
    RunStatus,
    RunTrigger,
    Source,
    SourceIssue,
    SourceKind,
    UTCDateTime,
    WebhookReport,
    utcnow,
)

__all__ = [
    "NAMING_CONVENTION",
    "Base",
    "Cursor",
    "DirtyIssue",
    "Draft",
    "DraftStatus",
    "Drift",
    "DriftKind",
    "Entry",
    "EntryState",
    "Error",
    "ErrorKind",
    "Intent",
    "IntentKind",
    "IntentStatus",
    "Line",
    "LineEntry",
    "LineState",
    "PriceItem",
    "PriceList",
    "Run",
    "RunStatus",
    "RunTrigger",
    "Source",
    "SourceIssue",
    "SourceKind",
    "UTCDateTime",
    "WebhookReport",
    "current",
    "downgrade",
    "head",
    "is_sqlite",
    "make_engine",
    "session_factory",
    "transaction",
    "upgrade",
    "utcnow",
]
