"""Schema migrations, run from code: no ``alembic.ini`` or working directory needed.

The Alembic scripts ship inside the package (``worker/store/migrations``). Each function
opens its own engine on ``url``, hands the connection to ``env.py`` and disposes of it, so
the URL (and any password in it) never goes through Alembic's ini-file interpolation.

Alembic is imported only to migrate. Asking whether a store is migrated (every sync does)
reads ``alembic_version`` with plain SQL, and the newest revision is the highest of the
packaged revision files (one linear history, ``0001``, ``0002``, ...; a test holds both
answers equal to Alembic's): importing Alembic costs about 12 MB and a tenth of a second.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import inspect, text

from worker.store.db import make_engine

if TYPE_CHECKING:
    from alembic.config import Config

SCRIPT_LOCATION = Path(__file__).resolve().parent / "migrations"
VERSIONS = SCRIPT_LOCATION / "versions"
VERSION_TABLE = "alembic_version"


def alembic_config() -> Config:
    """An Alembic config pointing at the packaged migrations, built without an ini file."""
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(SCRIPT_LOCATION))
    return config


def _run(url: str, action: str, revision: str) -> None:
    from alembic import command

    config = alembic_config()
    engine = make_engine(url)
    try:
        with engine.begin() as connection:
            config.attributes["connection"] = connection
            if action == "upgrade":
                command.upgrade(config, revision)
            else:
                command.downgrade(config, revision)
    finally:
        engine.dispose()


def upgrade(url: str, revision: str = "head") -> None:
    """Bring the database at ``url`` up to ``revision`` (a no-op when it is already there)."""
    _run(url, "upgrade", revision)


def downgrade(url: str, revision: str) -> None:
    """Take the database at ``url`` down to ``revision`` (``"base"`` drops every table)."""
    _run(url, "downgrade", revision)


def current(url: str) -> str | None:
    """The revision the database at ``url`` is at; ``None`` if it was never migrated."""
    engine = make_engine(url, sqlite_immediate=False)  # a read: no write lock
    try:
        with engine.connect() as connection:
            if not inspect(connection).has_table(VERSION_TABLE):
                return None
            rows = connection.execute(text("SELECT version_num FROM alembic_version")).all()
            return str(rows[0][0]) if len(rows) == 1 else None
    finally:
        engine.dispose()


def head() -> str:
    """The newest revision the packaged migrations know: the highest ``NNNN_*.py``."""
    revisions = sorted(
        path.name.split("_", 1)[0] for path in VERSIONS.glob("[0-9][0-9][0-9][0-9]_*.py")
    )
    if not revisions:  # pragma: no cover - the package always ships a revision
        raise RuntimeError(f"no migrations found in {VERSIONS}")
    return revisions[-1]
