"""Engines, sessions and transactions for the state store.

SQLite (the default, embedded) gets, on every new connection: ``foreign_keys=ON`` (off by
default in SQLite), a busy timeout (wait for a lock rather than fail at once), and for a file
database WAL journaling (readers don't block the writer) with ``synchronous=NORMAL``.

SQLite transactions are started by SQLAlchemy, not by the ``sqlite3`` module's implicit
BEGIN, so SAVEPOINTs and transactional DDL work as on PostgreSQL. By default they start as
``BEGIN IMMEDIATE``: a transaction takes the write lock when it starts, waiting up to the
busy timeout, instead of failing with "database is locked" halfway through when it first
writes after another writer committed. A reader that never writes (the dashboard) can pass
``sqlite_immediate=False`` to get plain deferred transactions, which in WAL mode never wait.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import URL, make_url
from sqlalchemy.orm import Session, sessionmaker

SQLITE_BUSY_TIMEOUT_MS = 30_000
"""How long a SQLite connection waits for another writer before giving up."""


def is_sqlite(url: str | URL) -> bool:
    return make_url(url).get_backend_name() == "sqlite"


def _is_memory_sqlite(url: URL) -> bool:
    database = url.database or ""
    return database in ("", ":memory:") or url.query.get("mode") == "memory"


def make_engine(url: str, *, echo: bool = False, sqlite_immediate: bool = True) -> Engine:
    """An engine for the state store at ``url`` (``sqlite:///path``, ``postgresql+psycopg://…``).

    ``sqlite_immediate`` only matters for SQLite: see the module docstring.
    """
    sa_url = make_url(url)
    if sa_url.get_backend_name() != "sqlite":
        return create_engine(sa_url, echo=echo, pool_pre_ping=True)

    engine = create_engine(
        sa_url,
        echo=echo,
        connect_args={"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000},
    )
    use_wal = not _is_memory_sqlite(sa_url)
    begin = "BEGIN IMMEDIATE" if sqlite_immediate else "BEGIN"

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Hand transaction control to SQLAlchemy (see the module docstring).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
            if use_wal:
                cursor.execute("PRAGMA journal_mode=WAL")
                cursor.execute("PRAGMA synchronous=NORMAL")
        finally:
            cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Any) -> None:
        connection.exec_driver_sql(begin)

    return engine


def session_factory(engine: Engine) -> sessionmaker[Session]:
    """Sessions bound to ``engine``; objects stay readable after commit (no expiry)."""
    return sessionmaker(bind=engine, expire_on_commit=False)


@contextmanager
def transaction(factory: sessionmaker[Session]) -> Iterator[Session]:
    """One unit of work: commits if the block succeeds, rolls back if it raises.

    Everything a sync step changes, its cursor included, goes through one of these, so a
    cursor never advances without the work it covers.
    """
    with factory() as session, session.begin():
        yield session
