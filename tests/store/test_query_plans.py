"""Queries a large plan repeats per part, checked by SQLite's own query plan (not by time):
what they read must follow the part, not the whole ledger."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import event, func, insert, select

from tests.support.billing import store
from worker.ingest import source_row
from worker.ledger import Scope, record_problems
from worker.store import Entry, EntryState, Error, ErrorKind, SourceKind, transaction

NOW = datetime(2026, 11, 30, 12, tzinfo=UTC)


def test_a_part_of_a_plan_reads_only_the_problems_of_its_own_entries(tmp_path: Path) -> None:
    with store(f"sqlite:///{tmp_path / 'state.db'}") as factory:
        with transaction(factory) as session:
            source = source_row(session, "jira", SourceKind.JIRA)
            session.flush()
            keys = [f"jira:site:worklog:{n}" for n in range(500)]
            session.execute(
                insert(Entry),
                [
                    {
                        "key": key,
                        "source_id": source.id,
                        "external_issue_id": str(n % 50),
                        "content_hash": "-",
                        "state": EntryState.ACTIVE,
                        "seconds": 60,
                        "author": "bob",
                        "started_at": NOW,
                    }
                    for n, key in enumerate(keys)
                ],
            )
            session.execute(
                insert(Error),
                [
                    {
                        "source_id": source.id,
                        "kind": ErrorKind.UNMAPPED,
                        "subject": key,
                        "reason": "no rule takes it",
                    }
                    for key in keys
                ],
            )
        engine = factory.kw["bind"]
        statements: list[tuple[str, Any]] = []

        def note(conn: Any, cursor: Any, statement: str, parameters: Any, *rest: Any) -> None:
            statements.append((statement, parameters))

        event.listen(engine, "before_cursor_execute", note)
        with transaction(factory) as session:
            record_problems(
                session,
                session.get_one(type(source), source.id),
                [],  # the part's entries have no problem now
                run_id=None,
                now=NOW,
                kinds=(ErrorKind.UNMAPPED,),
                scope=Scope(frozenset({"7"})),
            )
        event.remove(engine, "before_cursor_execute", note)

        with engine.connect() as connection:
            plans = [
                " / ".join(
                    row[-1]
                    for row in connection.exec_driver_sql(
                        f"EXPLAIN QUERY PLAN {statement}", parameters
                    )
                )
                for statement, parameters in statements
                if "FROM errors" in statement
            ]
        assert plans
        for plan in plans:  # by the subject index, never all of the source's problems
            assert "ix_errors_subject" in plan, plan
        with factory() as session:
            resolved = session.scalar(
                select(func.count()).select_from(Error).where(Error.resolved_at.is_not(None))
            )
        assert resolved == 10  # issue 7's ten entries, no other
