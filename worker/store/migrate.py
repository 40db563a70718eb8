"""Schema migrations, run from code: no ``alembic.ini`` or working directory needed.

The Alembic scripts ship inside the package (``worker/store/migrations``). Each function
opens its own engine on ``url``, hands the connection to ``env.py`` and disposes of it, so
the URL (and any password in it) never goes through Alembic's ini-file interpolation.
"""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory

from worker.store.db import make_engine

SCRIPT_LOCATION = Path(__file__).resolve().parent / "migrations"


def alembic_config() -> Config:
    """An Alembic config pointing at the packaged migrations, built without an ini file."""
    config = Config()
    config.set_main_option("script_location", str(SCRIPT_LOCATION))
    return config


def _run(url: str, action: str, revision: str) -> None:
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
    engine = make_engine(url)
    try:
        with engine.connect() as connection:
            return MigrationContext.configure(connection).get_current_revision()
    finally:
        engine.dispose()


def head() -> str:
    """The newest revision the packaged migrations know."""
    revision = ScriptDirectory.from_config(alembic_config()).get_current_head()
    if revision is None:  # pragma: no cover - the package always ships a revision
        raise RuntimeError(f"no migrations found in {SCRIPT_LOCATION}")
    return revision
