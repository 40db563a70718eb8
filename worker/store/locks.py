"""The workers' locks, from the state store, for syncs that run where Redis does not answer.

No write happens without a lock (SPEC §6). A worker takes its locks in Redis; an inline
`billsync sync` on a laptop whose broker is down takes the same locks (one per source, one
per Kukkingu tenant's ledger) from the state store instead:

- **PostgreSQL**: a session advisory lock (``pg_try_advisory_lock``) on a connection of its
  own, held for the lock's life; a crashed process's lock goes with its connection.
- **SQLite**: an exclusive ``flock`` on a lock file beside the database
  (``<db>.<lock name>.lock``); the kernel drops it when its process dies. The file says who
  holds it, for the message a second process gets.

A second process waits up to ``wait`` seconds, then refuses with :class:`StoreLockBusy`,
which names the holder.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.pool import NullPool

from worker.errors import ConfigurationError

POLL = 0.25  # seconds between attempts while waiting


class StoreLockBusy(ConfigurationError):
    """Another process holds the lock: the message names it."""


def _me() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


@contextmanager
def store_lock(url: str, name: str, *, wait: float = 0.0) -> Iterator[None]:
    """Hold the lock ``name`` (``source:jira``, ``ledger:<tenant>``) of the state store at
    ``url`` for the block."""
    sa_url = make_url(url)
    if sa_url.get_backend_name() == "postgresql":
        with _advisory_lock(url, name, wait) as held:
            yield held
        return
    database = sa_url.database
    if not database or database == ":memory:":
        yield None  # a memory database lives in one process: nothing to exclude
        return
    with _file_lock(Path(database), name, wait) as held:
        yield held


def _deadline_passed(deadline: float) -> bool:
    if time.monotonic() >= deadline:
        return True
    time.sleep(POLL)
    return False


@contextmanager
def _advisory_lock(url: str, name: str, wait: float) -> Iterator[None]:
    key = int.from_bytes(
        hashlib.sha256(f"billsync:{name}".encode()).digest()[:8], "big", signed=True
    )
    engine = create_engine(url, poolclass=NullPool)  # closing the connection frees the lock
    try:
        with engine.connect() as connection:
            connection.execute(
                text("SELECT set_config('application_name', :me, false)"),
                {"me": f"billsync {_me()}"},
            )
            deadline = time.monotonic() + wait
            while not connection.execute(
                text("SELECT pg_try_advisory_lock(:k)"), {"k": key}
            ).scalar():
                if _deadline_passed(deadline):
                    unsigned = key & 0xFFFFFFFFFFFFFFFF  # pg_locks splits it in two oids
                    holder = connection.execute(
                        text(
                            "SELECT a.application_name, a.pid FROM pg_locks l "
                            "JOIN pg_stat_activity a ON a.pid = l.pid "
                            "WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 1 "
                            "AND l.classid::bigint = :hi AND l.objid::bigint = :lo"
                        ),
                        {"hi": unsigned >> 32, "lo": unsigned & 0xFFFFFFFF},
                    ).first()
                    who = (
                        f"{holder.application_name or 'a session'} (backend pid {holder.pid})"
                        if holder is not None
                        else "another session"
                    )
                    raise StoreLockBusy(f"the state store's lock {name} is held by {who}")
            connection.commit()
            try:
                yield None
            finally:
                # a broken connection has freed the lock already; closing it below frees it too
                with suppress(SQLAlchemyError):
                    connection.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": key})
                    connection.commit()
    finally:
        engine.dispose()


@contextmanager
def _file_lock(database: Path, name: str, wait: float) -> Iterator[None]:
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in name)
    path = database.with_name(f"{database.name}.{safe}.lock")
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        deadline = time.monotonic() + wait
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if _deadline_passed(deadline):
                    holder = path.read_text(errors="replace").strip() or "another process"
                    raise StoreLockBusy(
                        f"the state store's lock {name} is held by {holder} ({path})"
                    ) from None
        os.ftruncate(fd, 0)
        os.write(fd, f"{_me()} since {time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime())}".encode())
        try:
            yield None
        finally:
            os.ftruncate(fd, 0)
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)
