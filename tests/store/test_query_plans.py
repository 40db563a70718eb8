"""Queries a large plan repeats per part, checked by SQLite's own query plan (not by time):
what they read must follow the part, not the whole ledger."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import event, func, insert, select

from tests.support.billing import store
from worker.ingest import source_row
from worker.ledger import Scope, mark_dirty, record_problems
from worker.store import (
    DirtyIssue,
    Entry,
    EntryState,
    Error,
    ErrorKind,
    SourceKind,
    transaction,
)

NOW = datetime(2026, 11, 30, 12, tzinfo=UTC)


def query_plans(engine: Any, statements: list[tuple[str, Any]], reading: str) -> list[str]:
    """SQLite's plan of each statement that contains ``reading``, steps joined by " / "."""
    with engine.connect() as connection:
        return [
            " / ".join(
                row[-1]
                for row in connection.exec_driver_sql(f"EXPLAIN QUERY PLAN {statement}", parameters)
            )
            for statement, parameters in statements
            if reading in statement
        ]


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

        plans = query_plans(engine, statements, "FROM errors")
        assert plans
        for plan in plans:  # by the subject index, never all of the source's problems
            assert "ix_errors_subject" in plan, plan
        with factory() as session:
            resolved = session.scalar(
                select(func.count()).select_from(Error).where(Error.resolved_at.is_not(None))
            )
        assert resolved == 10  # issue 7's ten entries, no other


def test_asking_which_issues_are_marked_dirty_reads_those_issues_only(tmp_path: Path) -> None:
    with store(f"sqlite:///{tmp_path / 'state.db'}") as factory:
        with transaction(factory) as session:
            source = source_row(session, "jira", SourceKind.JIRA)
            session.flush()
            mark_dirty(session, [(source.id, str(n)) for n in range(2000)], own_sync=True)
        engine = factory.kw["bind"]
        statements: list[tuple[str, Any]] = []

        def note(conn: Any, cursor: Any, statement: str, parameters: Any, *rest: Any) -> None:
            statements.append((statement, parameters))

        event.listen(engine, "before_cursor_execute", note)
        with transaction(factory) as session:  # a batch of a source's own ingest
            mark_dirty(session, [(source.id, "7"), (source.id, "new")], own_sync=True)
        event.remove(engine, "before_cursor_execute", note)
        plans = query_plans(engine, statements, "FROM dirty_issues")
        assert plans
        for plan in plans:
            assert "ix_dirty_issues_source_id_issue_id" in plan, plan
        with factory() as session:
            marks = session.scalar(select(func.count()).select_from(DirtyIssue))
        assert marks == 2001  # "7" was marked already; "new" was not
