"""The command line: config check, db upgrade/current, exit codes, no secrets in output."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import create_engine, inspect

from worker.cli import EX_CONFIG, cli

TENANT = "tnt_" + "a" * 24
GOOD = f"""
[state]
url = "sqlite:///{{db}}"
[kukkingu]
base_url = "http://127.0.0.1:8730"
tenant_id = "{TENANT}"
token_env = "KK_TOKEN"
"""


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner(env={"BILLSYNC_CONFIG": None, "BILLSYNC_STATE_URL": None})


def write_config(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "billsync.toml"
    path.write_text(text.replace("{db}", str(tmp_path / "state.db")))
    return path


def test_config_check_ok(runner: CliRunner, tmp_path: Path) -> None:
    path = write_config(tmp_path, GOOD)
    result = runner.invoke(
        cli, ["-c", str(path), "config", "check"], env={"KK_TOKEN": "kk-s3cret-value"}
    )
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith(f"ok: {path}: 0 source(s), 0 rule(s)")
    assert "kk-s3cret-value" not in result.output


def test_config_check_lists_every_problem_and_exits_78(runner: CliRunner, tmp_path: Path) -> None:
    broken = GOOD.replace(TENANT, "tenant-1") + '\n[billing]\ntimezone = "Nowhere/City"\n'
    path = write_config(tmp_path, broken)
    result = runner.invoke(cli, ["-c", str(path), "config", "check"], env={"KK_TOKEN": None})
    assert result.exit_code == EX_CONFIG
    assert result.stdout == ""
    assert f"error: configuration {path} is not usable:" in result.stderr
    assert "  - kukkingu.tenant_id: must be a Kukkingu tenant id" in result.stderr
    assert "  - billing.timezone: unknown IANA time zone 'Nowhere/City'" in result.stderr


def test_config_check_refuses_an_unusable_ca_bundle_with_the_rest(
    runner: CliRunner, tmp_path: Path
) -> None:
    (tmp_path / "notes.txt").write_text("not a certificate\n")
    text = GOOD.replace('token_env = "KK_TOKEN"', 'token_env = "KK_TOKEN"\nca_bundle = "notes.txt"')
    text += '[[sources]]\nname = "gh"\nkind = "github"\ntoken_env = "GH"\nca_bundle = "ca.pem"\n'
    path = write_config(tmp_path, text)
    result = runner.invoke(cli, ["-c", str(path), "config", "check"], env={"KK_TOKEN": None})
    assert result.exit_code == EX_CONFIG
    assert result.stderr.splitlines()[1:] == [
        f"  - kukkingu.ca_bundle: {str(tmp_path / 'notes.txt')!r} holds no PEM certificate "
        "(-----BEGIN CERTIFICATE-----)",
        f"  - sources[0].ca_bundle: file {str(tmp_path / 'ca.pem')!r} does not exist",
        "  - kukkingu.token_env: environment variable KK_TOKEN is not set",
        "  - sources[0].token_env: environment variable GH is not set",
    ]


def test_config_from_environment_variable(runner: CliRunner, tmp_path: Path) -> None:
    path = write_config(tmp_path, GOOD)
    result = runner.invoke(
        cli, ["config", "check"], env={"BILLSYNC_CONFIG": str(path), "KK_TOKEN": "kk-s3cret-value"}
    )
    assert result.exit_code == 0, result.output


def test_no_config_at_all(runner: CliRunner) -> None:
    result = runner.invoke(cli, ["config", "check"])
    assert result.exit_code == EX_CONFIG
    assert "pass --config FILE or set BILLSYNC_CONFIG" in result.stderr


def test_db_upgrade_from_config_is_repeatable(runner: CliRunner, tmp_path: Path) -> None:
    path = write_config(tmp_path, GOOD)
    for _ in range(2):
        result = runner.invoke(
            cli, ["-c", str(path), "db", "upgrade"], env={"KK_TOKEN": "kk-s3cret-value"}
        )
        assert result.exit_code == 0, result.output
        assert "is at revision" in result.stdout
    engine = create_engine(f"sqlite:///{tmp_path / 'state.db'}")
    assert {"entries", "lines", "drafts", "intents", "runs"} <= set(
        inspect(engine).get_table_names()
    )
    engine.dispose()


@pytest.mark.postgres
def test_db_upgrade_url_from_env_hides_the_password(runner: CliRunner, postgres_cluster) -> None:
    name = postgres_cluster.create_database()
    try:
        url = postgres_cluster.sqlalchemy_url(name).replace("postgres@", "postgres:pw-not-shown@")
        result = runner.invoke(cli, ["db", "upgrade"], env={"BILLSYNC_STATE_URL": url})
        assert result.exit_code == 0, result.output
        assert "pw-not-shown" not in result.output
        assert "***" in result.stdout
        current = runner.invoke(cli, ["db", "current"], env={"BILLSYNC_STATE_URL": url})
        assert current.stdout.strip() == "0012"
    finally:
        postgres_cluster.drop_database(name)


def test_console_script_is_installed() -> None:
    exe = Path(sys.executable).parent / "billsync"
    result = subprocess.run(
        [str(exe), "--version"], capture_output=True, text=True, check=False, env={**os.environ}
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "billsync, version 0.1.0"


def test_the_sync_path_imports_no_other_command_s_libraries() -> None:
    """Start fast: `billsync --version`, `sync` and `enqueue` do not load the sandbox, the
    dashboard's web stack, Celery, or a connector their sources do not use (PyGithub alone
    took a third of a second to import)."""
    code = (
        "import sys, worker.cli, worker.clients, worker.sync, worker.report;"
        "print(' '.join(sorted(m for m in sys.modules)))"
    )
    loaded = set(
        subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, check=True
        ).stdout.split()
    )
    heavy = {"github", "jira", "celery", "starlette", "fastapi", "uvicorn", "sandbox.main"}
    assert loaded & heavy == set()
