"""Alembic environment for billsync's state store.

Two ways in:

- from code (``worker.store.migrate``): the caller puts an open connection in
  ``config.attributes["connection"]``; nothing here reads the environment;
- from the ``alembic`` command line (developers, with the repo's ``alembic.ini``): the URL
  comes from ``-x url=...`` or, when none was given, the ``BILLSYNC_STATE_URL`` variable.

SQLite gets ``render_as_batch`` so later migrations can alter tables. Its ``ALTER`` support
is minimal, so Alembic recreates the table; foreign keys are ON in our connections, so a
batch migration of a table other tables reference must be written with that in mind.
"""

from __future__ import annotations

import os
from logging.config import fileConfig

from alembic import context
from sqlalchemy.engine import Connection

from worker.store.db import is_sqlite, make_engine
from worker.store.models import Base

config = context.config
target_metadata = Base.metadata

if config.config_file_name is not None and config.attributes.get("connection") is None:
    # Only the command line configures logging; code calling us keeps its own.
    fileConfig(config.config_file_name, disable_existing_loggers=False)


def _url() -> str:
    url = context.get_x_argument(as_dictionary=True).get("url")
    if url:
        return url
    url = os.environ.get("BILLSYNC_STATE_URL")
    if not url:
        raise RuntimeError(
            "no database URL: pass -x url=... or set BILLSYNC_STATE_URL "
            "(or use `billsync db upgrade`, which reads the config)"
        )
    return url


def _configure(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )


def run_migrations_offline() -> None:
    url = _url()
    context.configure(
        url=url,
        target_metadata=target_metadata,
        literal_binds=True,
        dialect_opts={"paramstyle": "named"},
        render_as_batch=is_sqlite(url),
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    connection: Connection | None = config.attributes.get("connection")
    if connection is not None:
        _configure(connection)
        with context.begin_transaction():
            context.run_migrations()
        return

    engine = make_engine(_url())
    try:
        with engine.begin() as own_connection:
            _configure(own_connection)
            with context.begin_transaction():
                context.run_migrations()
    finally:
        engine.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
