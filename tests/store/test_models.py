"""The models on a migrated database: constraints hold, values round-trip, rollbacks are whole."""

from __future__ import annotations

import weakref
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import insert, select, text
from sqlalchemy.exc import IntegrityError, StatementError
from sqlalchemy.orm import Session, sessionmaker

from worker.store import (
    Cursor,
    Draft,
    DraftStatus,
    Entry,
    EntryState,
    Line,
    LineEntry,
    LineState,
    Source,
    SourceIssue,
    SourceKind,
    make_engine,
    session_factory,
    transaction,
    upgrade,
)

IST = timezone(timedelta(hours=5, minutes=30))
STARTED = datetime(2026, 11, 3, 9, 15, 30, 123456, tzinfo=IST)
MAX_SAFE_INTEGER = 2**53 - 1


@pytest.fixture
def factory(db_url: str) -> Iterator[sessionmaker[Session]]:
    upgrade(db_url)
    engine = make_engine(db_url)
    yield session_factory(engine)
    engine.dispose()


def source(name: str = "acme-jira") -> Source:
    return Source(name=name, kind=SourceKind.JIRA)


def entry(src: Source, key: str = "jira:acme:worklog:10001", seconds: int = 3600) -> Entry:
    return Entry(
        key=key,
        source=src,
        external_issue_id="10042",
        author="557058:f00",
        started_at=STARTED,
        seconds=seconds,
        content_hash="h" * 64,
        state=EntryState.ACTIVE,
    )


def draft(seq: int = 1, number: str = "ctr_a-2026-11-1") -> Draft:
    return Draft(
        contract_id="ctr_a",
        currency="EUR",
        period="2026-11",
        seq=seq,
        invoice_number=number,
        status=DraftStatus.DRAFT,
        exchange_rate=Decimal("1"),
        amount_minor=0,
    )


# One source per draft object (weakly held: an id() could be reused by a later draft).
_line_sources: weakref.WeakKeyDictionary[Draft, Source] = weakref.WeakKeyDictionary()


def line(d: Draft, reference_id: str = "PROJ-1", position: int = 0) -> Line:
    src = _line_sources.setdefault(d, Source(name=f"src-{id(d)}", kind=SourceKind.JIRA))
    return Line(
        draft=d,
        source=src,
        group_key=f'["ctr_a","EUR","2026-11","{src.name}","{reference_id}",""]',
        contract_id=d.contract_id,
        currency=d.currency,
        period=d.period,
        reference_type="JIRA",
        reference_id=reference_id,
        position=position,
        quantity=Decimal("1.50"),
        amount_minor=15000,
        description=f"{reference_id} Something",
        state=LineState.PENDING,
    )


def add_and_commit(factory: sessionmaker[Session], *objects: object) -> None:
    with transaction(factory) as session:
        session.add_all(objects)


def assert_rejected(factory: sessionmaker[Session], *objects: object) -> None:
    with factory() as session:
        session.add_all(objects)
        with pytest.raises(IntegrityError):
            session.flush()


# --- constraints --------------------------------------------------------------------------


def test_entry_key_is_unique(factory: sessionmaker[Session]) -> None:
    src = source()
    add_and_commit(factory, entry(src))
    with factory() as session:
        again = session.scalars(select(Source)).one()
        session.add(entry(again))
        with pytest.raises(IntegrityError):
            session.flush()


def test_one_line_per_reference_on_a_draft(factory: sessionmaker[Session]) -> None:
    """Invariant 1 at the database level."""
    d = draft()
    add_and_commit(factory, line(d, "PROJ-1", position=0))
    with factory() as session:
        same_draft = session.scalars(select(Draft)).one()
        session.add(line(same_draft, "PROJ-1", position=1))
        with pytest.raises(IntegrityError):
            session.flush()


def test_same_reference_on_another_draft_is_allowed(factory: sessionmaker[Session]) -> None:
    first, second = draft(1, "n-1"), draft(2, "n-2")
    add_and_commit(factory, line(first, "PROJ-1"), line(second, "PROJ-1"))
    with factory() as session:
        assert len(session.scalars(select(Line)).all()) == 2


def test_position_is_unique_on_a_draft(factory: sessionmaker[Session]) -> None:
    d = draft()
    add_and_commit(factory, line(d, "PROJ-1", position=0))
    with factory() as session:
        same_draft = session.scalars(select(Draft)).one()
        session.add(line(same_draft, "PROJ-2", position=0))
        with pytest.raises(IntegrityError):
            session.flush()


def test_draft_key_is_unique(factory: sessionmaker[Session]) -> None:
    add_and_commit(factory, draft(1, "n-1"))
    assert_rejected(factory, draft(1, "n-other"))


def test_invoice_number_is_unique(factory: sessionmaker[Session]) -> None:
    add_and_commit(factory, draft(1, "n-1"))
    assert_rejected(factory, draft(2, "n-1"))


def test_kukkingu_ids_are_unique_but_may_be_missing(factory: sessionmaker[Session]) -> None:
    add_and_commit(factory, draft(1, "n-1"), draft(2, "n-2"))  # two NULL kukkingu_id: fine
    with transaction(factory) as session:
        first, second = session.scalars(select(Draft).order_by(Draft.seq)).all()
        first.kukkingu_id = "inv_" + "a" * 24
    with factory() as session:
        second = session.scalars(select(Draft).where(Draft.seq == 2)).one()
        second.kukkingu_id = "inv_" + "a" * 24
        with pytest.raises(IntegrityError):
            session.flush()


@pytest.mark.parametrize(
    ("table", "column", "value"),
    [
        ("entries", "state", "gone"),
        ("drafts", "status", "draft"),  # values are case-sensitive: the API says DRAFT
        ("lines", "state", "done"),
        ("sources", "kind", "gitlab"),
    ],
)
def test_enum_columns_are_checked_by_the_database(
    factory: sessionmaker[Session], table: str, column: str, value: str
) -> None:
    d = draft()
    add_and_commit(factory, entry(source()), line(d))
    with factory() as session, pytest.raises(IntegrityError):
        # Raw SQL, past the ORM's own validation: the CHECK constraint must refuse it.
        session.execute(text(f"UPDATE {table} SET {column} = :value"), {"value": value})  # noqa: S608


def test_orm_refuses_an_unknown_enum_value(factory: sessionmaker[Session]) -> None:
    src = source()
    bad = entry(src)
    bad.state = "gone"  # type: ignore[assignment]
    with factory() as session:
        session.add(bad)
        with pytest.raises(StatementError):
            session.flush()


def test_foreign_keys_are_enforced(factory: sessionmaker[Session]) -> None:
    """On SQLite too: make_engine turns foreign_keys on for every connection."""
    orphan = entry(source())
    orphan.source = None  # type: ignore[assignment]
    orphan.source_id = 424242
    assert_rejected(factory, orphan)


def test_line_entry_needs_an_existing_entry(factory: sessionmaker[Session]) -> None:
    d = draft()
    add_and_commit(factory, line(d))
    with factory() as session:
        stored = session.scalars(select(Line)).one()
        session.add(LineEntry(line_id=stored.id, entry_id=999_999, seconds=60))
        with pytest.raises(IntegrityError):
            session.flush()


def test_bad_entry_needs_a_reason_and_only_it_may_be_incomplete(
    factory: sessionmaker[Session],
) -> None:
    src = source()
    incomplete = Entry(
        key="jira:acme:worklog:1",
        source=src,
        content_hash="x",
        state=EntryState.BAD,
        bad_reason="timeSpentSeconds is -5: not positive",
    )
    add_and_commit(factory, incomplete)
    with factory() as session:
        stored = session.scalars(select(Entry)).one()
        stored.bad_reason = None
        with pytest.raises(IntegrityError):
            session.flush()
    with factory() as session:
        stored = session.scalars(select(Entry)).one()
        stored.state = EntryState.ACTIVE  # active without an author, a start, seconds
        with pytest.raises(IntegrityError):
            session.flush()


def test_lines_cannot_go_negative(factory: sessionmaker[Session]) -> None:
    negative = line(draft())
    negative.quantity = Decimal("-0.25")
    assert_rejected(factory, negative)


def test_an_entry_may_be_counted_again_after_a_void(factory: sessionmaker[Session]) -> None:
    """line_entries keys on (line, entry): the same entry can sit on a new draft's line."""
    src = source()
    e = entry(src)
    voided, fresh = draft(1, "n-1"), draft(2, "n-2")
    old_line, new_line = line(voided), line(fresh)
    old_line.line_entries.append(LineEntry(entry=e, seconds=3600))
    new_line.line_entries.append(LineEntry(entry=e, seconds=3600))
    add_and_commit(factory, old_line, new_line)
    with factory() as session:
        stored = session.scalars(select(Entry)).one()
        counted = session.scalars(select(LineEntry).where(LineEntry.entry_id == stored.id)).all()
        assert len(counted) == 2
        with pytest.raises(IntegrityError):  # but never twice on the same line
            session.execute(
                insert(LineEntry).values(line_id=counted[0].line_id, entry_id=stored.id, seconds=1)
            )


# --- round trips --------------------------------------------------------------------------


def test_datetimes_come_back_timezone_aware_in_utc(factory: sessionmaker[Session]) -> None:
    add_and_commit(factory, entry(source()))
    with factory() as session:
        stored = session.scalars(select(Entry)).one()
        assert stored.started_at == STARTED
        assert stored.started_at is not None
        assert stored.started_at.utcoffset() == timedelta(0)
        assert stored.started_at == datetime(2026, 11, 3, 3, 45, 30, 123456, tzinfo=UTC)
        assert stored.started_at.tzinfo is UTC
        assert stored.first_seen_at.tzinfo is not None
        assert stored.source.created_at.utcoffset() == timedelta(0)


def test_datetimes_compare_as_instants_in_queries(factory: sessionmaker[Session]) -> None:
    add_and_commit(factory, entry(source()))
    same_instant_elsewhere = STARTED.astimezone(timezone(timedelta(hours=-8)))
    with factory() as session:
        found = session.scalars(select(Entry).where(Entry.started_at >= same_instant_elsewhere))
        assert len(found.all()) == 1
        later = STARTED + timedelta(microseconds=1)
        assert session.scalars(select(Entry).where(Entry.started_at >= later)).all() == []


def test_naive_datetimes_are_refused(factory: sessionmaker[Session]) -> None:
    naive = entry(source())
    naive.started_at = datetime(2026, 11, 3, 9, 0)  # noqa: DTZ001 (the point of the test)
    with factory() as session:
        session.add(naive)
        with pytest.raises(StatementError, match="naive datetime"):
            session.flush()


def test_numeric_values_come_back_as_exact_decimals(factory: sessionmaker[Session]) -> None:
    d = draft()
    d.exchange_rate = Decimal("1.08345678")
    big, small = line(d, "PROJ-1", 0), line(d, "PROJ-2", 1)
    big.quantity = Decimal("1234567890123.45")  # 15 significant digits
    small.quantity = Decimal("0.01")
    add_and_commit(factory, big, small)
    with factory() as session:
        quantities = session.scalars(select(Line.quantity).order_by(Line.position)).all()
        assert quantities == [Decimal("1234567890123.45"), Decimal("0.01")]
        assert all(isinstance(q, Decimal) for q in quantities)
        assert str(quantities[1]) == "0.01"
        rate = session.scalars(select(Draft.exchange_rate)).one()
        assert rate == Decimal("1.08345678")


def test_big_integers_round_trip(factory: sessionmaker[Session]) -> None:
    src = source()
    huge, correction = entry(src, "k:1", 2**40), entry(src, "k:2", -(2**31) - 7)
    d = draft()
    d.amount_minor = MAX_SAFE_INTEGER
    add_and_commit(factory, huge, correction, d)
    with factory() as session:
        seconds = session.scalars(select(Entry.seconds).order_by(Entry.key)).all()
        assert seconds == [2**40, -(2**31) - 7]
        assert session.scalars(select(Draft.amount_minor)).one() == MAX_SAFE_INTEGER


def test_json_columns_round_trip(factory: sessionmaker[Session]) -> None:
    src = source()
    issue = SourceIssue(
        source=src,
        external_id="10042",
        key="PROJ-1",
        project="PROJ",
        summary="Fix the thing",
        labels=["non-billable", "ünïcode"],
    )
    billed = line(draft())
    billed.meta = {"source": "acme-jira", "entries": 2, "rawSeconds": 5400, "late": False}
    add_and_commit(factory, issue, billed)
    with factory() as session:
        assert session.scalars(select(SourceIssue.labels)).one() == ["non-billable", "ünïcode"]
        assert session.scalars(select(Line)).one().meta["rawSeconds"] == 5400


# --- transactions -------------------------------------------------------------------------


def seed_entry_and_cursor(factory: sessionmaker[Session]) -> None:
    src = source()
    add_and_commit(
        factory,
        entry(src, seconds=60),
        Cursor(source=src, stream="worklog_updated", value="1000"),
    )


def read_entry_and_cursor(factory: sessionmaker[Session]) -> tuple[int | None, str]:
    with factory() as session:
        seconds = session.scalars(select(Entry.seconds)).one()
        value = session.scalars(select(Cursor.value)).one()
        return seconds, value


def test_a_failed_transaction_rolls_back_the_work_and_its_cursor(
    factory: sessionmaker[Session],
) -> None:
    seed_entry_and_cursor(factory)

    class Crash(Exception):
        pass

    def work_then_crash() -> None:
        with transaction(factory) as session:
            session.scalars(select(Entry)).one().seconds = 120
            session.scalars(select(Cursor)).one().value = "2000"
            session.flush()  # both changes reached the database, inside the transaction
            raise Crash

    with pytest.raises(Crash):
        work_then_crash()
    assert read_entry_and_cursor(factory) == (60, "1000")


def test_a_constraint_failure_at_commit_keeps_the_cursor_back(
    factory: sessionmaker[Session],
) -> None:
    seed_entry_and_cursor(factory)

    def work_with_a_duplicate() -> None:
        with transaction(factory) as session:
            src = session.scalars(select(Source)).one()
            session.scalars(select(Entry)).one().seconds = 120
            session.scalars(select(Cursor)).one().value = "2000"
            session.add(entry(src, seconds=5))  # duplicate key: the commit fails

    with pytest.raises(IntegrityError):
        work_with_a_duplicate()
    assert read_entry_and_cursor(factory) == (60, "1000")


def test_a_successful_transaction_commits_both(factory: sessionmaker[Session]) -> None:
    seed_entry_and_cursor(factory)
    with transaction(factory) as session:
        session.scalars(select(Entry)).one().seconds = 120
        session.scalars(select(Cursor)).one().value = "2000"
    assert read_entry_and_cursor(factory) == (120, "2000")


# --- engine settings ----------------------------------------------------------------------


def test_sqlite_connections_are_configured(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'pragmas.db'}"
    engine = make_engine(url)
    try:
        with engine.connect() as connection:
            pragma = connection.exec_driver_sql
            assert pragma("PRAGMA foreign_keys").scalar() == 1
            assert pragma("PRAGMA journal_mode").scalar() == "wal"
            assert pragma("PRAGMA busy_timeout").scalar() == 30_000
    finally:
        engine.dispose()


def test_sqlite_in_memory_works_without_wal() -> None:
    engine = make_engine("sqlite://")
    try:
        with engine.connect() as connection:
            assert connection.exec_driver_sql("PRAGMA journal_mode").scalar() == "memory"
            assert connection.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
    finally:
        engine.dispose()


def test_sqlite_readers_do_not_wait_for_a_writer(tmp_path: Path) -> None:
    """WAL + deferred transactions for readers: the dashboard reads while a sync writes."""
    url = f"sqlite:///{tmp_path / 'wal.db'}"
    upgrade(url)
    writer, reader = make_engine(url), make_engine(url, sqlite_immediate=False)
    try:
        with writer.begin() as writing:  # BEGIN IMMEDIATE: holds the write lock
            writing.execute(
                insert(Source).values(name="s", kind="jira", created_at=STARTED, updated_at=STARTED)
            )
            with reader.connect() as reading:
                assert reading.execute(select(Source.name)).all() == []  # not yet committed
        with reader.connect() as reading:
            assert reading.execute(select(Source.name)).scalars().all() == ["s"]
    finally:
        writer.dispose()
        reader.dispose()
