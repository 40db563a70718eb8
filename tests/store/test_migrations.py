"""The packaged migrations build exactly the models' schema, on SQLite and on PostgreSQL."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Engine, inspect, text

from worker.store import Base, current, downgrade, head, make_engine, upgrade

REPO_ROOT = Path(__file__).resolve().parents[2]
MODEL_TABLES = set(Base.metadata.tables)


@pytest.fixture
def engine(db_url: str) -> Any:
    engine = make_engine(db_url)
    yield engine
    engine.dispose()


def table_names(engine: Engine) -> set[str]:
    with engine.connect() as connection:
        return set(inspect(connection).get_table_names())


def test_models_declare_the_fifteen_tables() -> None:
    assert {
        "sources",
        "cursors",
        "source_issues",
        "entries",
        "drafts",
        "lines",
        "line_entries",
        "intents",
        "runs",
        "errors",
        "drift",
        "dirty_issues",
        "price_items",
        "price_list",
        "webhook_reports",
    } == MODEL_TABLES


def test_upgrade_head_creates_every_table(db_url: str, engine: Engine) -> None:
    assert current(db_url) is None
    upgrade(db_url)
    assert table_names(engine) == MODEL_TABLES | {"alembic_version"}
    assert current(db_url) == head() == "0012"


def test_upgrade_twice_is_a_no_op(db_url: str, engine: Engine) -> None:
    upgrade(db_url)
    upgrade(db_url)
    assert table_names(engine) == MODEL_TABLES | {"alembic_version"}
    assert current(db_url) == head()


def test_downgrade_base_removes_every_table(db_url: str, engine: Engine) -> None:
    upgrade(db_url)
    downgrade(db_url, "base")
    assert table_names(engine) == {"alembic_version"}  # Alembic keeps its (empty) table
    assert current(db_url) is None
    upgrade(db_url)  # and the way back up still works
    assert table_names(engine) == MODEL_TABLES | {"alembic_version"}


def test_migration_matches_models(db_url: str, engine: Engine) -> None:
    upgrade(db_url)
    with engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        differences = compare_metadata(context, Base.metadata)
    assert differences == []


def snapshot(engine: Engine) -> dict[str, dict[str, Any]]:
    """Everything reflection sees of the model tables, CHECK constraints included."""
    result: dict[str, dict[str, Any]] = {}
    with engine.connect() as connection:
        inspector = inspect(connection)
        for table in sorted(MODEL_TABLES):
            result[table] = {
                "columns": [
                    (c["name"], str(c["type"]), c["nullable"]) for c in inspector.get_columns(table)
                ],
                "pk": inspector.get_pk_constraint(table),
                "fks": sorted(
                    (fk["name"], tuple(fk["constrained_columns"]), fk["referred_table"])
                    for fk in inspector.get_foreign_keys(table)
                ),
                "uniques": sorted(
                    (u["name"], tuple(u["column_names"]))
                    for u in inspector.get_unique_constraints(table)
                ),
                "indexes": sorted(
                    (i["name"], tuple(i["column_names"]), i["unique"])
                    for i in inspector.get_indexes(table)
                ),
                "checks": sorted(
                    (ck["name"], " ".join(ck["sqltext"].split()))
                    for ck in inspector.get_check_constraints(table)
                ),
            }
    return result


def test_migration_builds_what_create_all_builds(db_url: str, engine: Engine) -> None:
    """Stricter than autogenerate, which ignores CHECK constraints: compare everything."""
    upgrade(db_url)
    migrated = snapshot(engine)
    downgrade(db_url, "base")
    with engine.begin() as connection:
        connection.execute(text("DROP TABLE alembic_version"))
        Base.metadata.create_all(connection)
    assert snapshot(engine) == migrated


def test_constraint_names_are_deterministic(db_url: str, engine: Engine) -> None:
    upgrade(db_url)
    with engine.connect() as connection:
        inspector = inspect(connection)
        uniques = {u["name"] for u in inspector.get_unique_constraints("lines")}
        checks = {c["name"] for c in inspector.get_check_constraints("entries")}
        fks = {fk["name"] for fk in inspector.get_foreign_keys("line_entries")}
        pk = inspector.get_pk_constraint("drafts")["name"]
    assert "uq_lines_draft_id_reference_type_reference_id" in uniques
    assert checks == {
        "ck_entries_state",
        "ck_entries_bad_has_reason",
        "ck_entries_usable_is_complete",
    }
    assert fks == {"fk_line_entries_line_id_lines", "fk_line_entries_entry_id_entries"}
    if engine.dialect.name == "postgresql":  # SQLite does not report primary key names
        assert pk == "pk_drafts"


def test_programmatic_upgrade_ignores_cwd_and_environment(
    db_url: str, engine: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No alembic.ini in the cwd, and BILLSYNC_STATE_URL is not read when a URL is given."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("BILLSYNC_STATE_URL", "sqlite:////nonexistent/dir/wrong.db")
    upgrade(db_url)
    assert current(db_url) == head()
    assert table_names(engine) == MODEL_TABLES | {"alembic_version"}


def test_alembic_command_line_reads_the_url_from_the_environment(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    environment = {**os.environ, "BILLSYNC_STATE_URL": url}
    result = subprocess.run(
        [sys.executable, "-m", "alembic", "upgrade", "head"],
        cwd=REPO_ROOT,
        env=environment,
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert current(url) == head()


def test_alembic_command_line_without_a_url_says_so(tmp_path: Path) -> None:
    environment = {k: v for k, v in os.environ.items() if k != "BILLSYNC_STATE_URL"}
    result = subprocess.run(
        [sys.executable, "-m", "alembic", "upgrade", "head"],
        cwd=REPO_ROOT,
        env=environment,
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert result.returncode != 0
    assert "BILLSYNC_STATE_URL" in result.stderr


def test_the_revision_checks_without_alembic_agree_with_alembic(
    db_url: str, engine: Engine
) -> None:
    """A sync asks ``current`` and ``head`` without importing Alembic; both must say what
    Alembic says, at every revision (and ``head`` must not miss a misnamed file)."""
    from alembic.script import ScriptDirectory

    from worker.store.migrate import alembic_config

    scripts = ScriptDirectory.from_config(alembic_config())
    assert head() == scripts.get_current_head()
    assert len(list(scripts.walk_revisions())) == int(head())  # 0001 ... head, none skipped

    def alembic_current() -> str | None:
        with engine.connect() as connection:
            return MigrationContext.configure(connection).get_current_revision()

    assert current(db_url) is None
    for revision in ("0001", "0005", head()):
        upgrade(db_url, revision)
        assert current(db_url) == alembic_current() == revision


def test_a_sync_does_not_import_alembic() -> None:
    code = "import sys, worker.store, worker.sync; print('alembic' in sys.modules)"
    shown = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=REPO_ROOT
    )
    assert shown.stdout.strip() == "False"
