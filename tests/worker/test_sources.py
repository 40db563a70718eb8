"""Ingest: each batch and its cursor in one transaction; upserts by stable key."""

from collections.abc import Iterator

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from tests.support.billing import entry, store
from tests.support.memory import InMemorySource
from worker.core.model import Issue
from worker.ingest import IngestCounts, ingest, record_batch, source_row
from worker.ports import BadEntry, SourceBatch
from worker.store import Cursor, Entry, EntryState, SourceKind, transaction


class Crash(BaseException):
    pass


@pytest.fixture
def factory(db_url: str) -> Iterator[sessionmaker[Session]]:
    with store(db_url) as f:
        yield f


def cursor(factory: sessionmaker[Session]) -> str | None:
    with factory() as session:
        row = session.scalar(select(Cursor).where(Cursor.stream == "log"))
        return row.value if row else None


def states(factory: sessionmaker[Session]) -> dict[str, tuple[EntryState, int | None]]:
    with factory() as session:
        return {e.key: (e.state, e.seconds) for e in session.scalars(select(Entry))}


def test_a_crash_mid_ingest_keeps_each_cursor_with_its_batch(
    factory: sessionmaker[Session],
) -> None:
    source = InMemorySource("mem", batch_size=2)
    source.put_issue(Issue("mem", "1", "P-1", "P", "x"))
    source.put_entries([entry(n, "1", 30) for n in range(5)])  # log: 1 issue + 5 entries

    calls = 0

    def crash_on_second_batch(step: str) -> None:
        nonlocal calls
        if step == "ingest.batch":
            calls += 1
            if calls == 2:
                raise Crash

    with pytest.raises(Crash):
        ingest(factory, source, checkpoint=crash_on_second_batch)
    assert cursor(factory) == "2"  # the first batch and its cursor, nothing of the second
    assert len(states(factory)) == 1

    counts = ingest(factory, source)
    assert cursor(factory) == "6"
    assert (counts.new, counts.unchanged) == (4, 0)
    assert len(states(factory)) == 5


def test_edits_deletes_and_bad_entries(factory: sessionmaker[Session]) -> None:
    source = InMemorySource("mem")
    source.put_issue(Issue("mem", "1", "P-1", "P", "x"))
    source.put_entries([entry(1, "1", 30), entry(2, "1", 30)])
    ingest(factory, source)
    source.edit("jira:test:worklog:1", seconds=7200)
    source.delete("jira:test:worklog:2")
    counts = ingest(factory, source)
    assert (counts.changed, counts.deleted, counts.new) == (1, 1, 0)
    assert states(factory) == {
        "jira:test:worklog:1": (EntryState.ACTIVE, 7200),
        "jira:test:worklog:2": (EntryState.DELETED, 1800),
    }
    # re-reading the same data (an overlap window) changes nothing
    assert ingest(factory, source).entries_seen == 0

    with transaction(factory) as session:
        row = source_row(session, "mem", SourceKind.JIRA)
        bad = SourceBatch(bad=(BadEntry("jira:test:worklog:1", "timeSpentSeconds is -5", "1"),))
        record_batch(session, row, bad, counts)
    assert states(factory)["jira:test:worklog:1"][0] == EntryState.BAD


def test_a_bad_entry_fixed_later_becomes_active(factory: sessionmaker[Session]) -> None:
    source = InMemorySource("mem")
    source.put_issue(Issue("mem", "1", "P-1", "P", "x"))
    ingest(factory, source)
    with transaction(factory) as session:
        row = source_row(session, "mem", SourceKind.JIRA)
        batch = SourceBatch(bad=(BadEntry("jira:test:worklog:9", "no started"),))
        record_batch(session, row, batch, IngestCounts())
    source.put_entries([entry(9, "1", 30)])
    ingest(factory, source)
    assert states(factory)["jira:test:worklog:9"] == (EntryState.ACTIVE, 1800)
