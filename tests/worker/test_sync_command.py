"""`billsync sync` and `billsync sync --dry-run` from the command line.

The Jira and GitHub connectors are registered in worker.clients.FACTORIES when they
exist; until then these tests register an in-memory source under the kind "jira".
"""

from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from redis import Redis
from sqlalchemy import create_engine, func, select

from sandbox.kukkingu.seed import ACME_CONTRACT_ID, DEMO_TENANT_ID
from tests.support.billing import demo_source, writes
from tests.support.kukkingu import RunningKukkingu
from tests.support.memory import InMemorySource
from tests.support.redis import RedisServer
from worker import clients
from worker.cli import cli
from worker.locks import HeldLock, source_lock_key
from worker.store import Entry, Error, ErrorKind, Run, upgrade

CONFIG = """
[state]
url = "sqlite:///{db}"
[billing]
timezone = "Europe/Berlin"
[kukkingu]
base_url = "{url}"
tenant_id = "{tenant}"
token_env = "KK"
max_attempts = 2
[[sources]]
name = "mem"
kind = "jira"
url = "http://127.0.0.1:1"
email_env = "KK"
token_env = "KK"
[[rules]]
source = "mem"
projects = ["ACME"]
contract_id = "{contract}"
currency = "EUR"
hourly_rate_minor = 12000
"""


@pytest.fixture
def memory_source(monkeypatch: pytest.MonkeyPatch) -> InMemorySource:
    source = demo_source(issues=4, per_issue=2, projects=("ACME", "OTHER"))
    monkeypatch.setitem(clients.FACTORIES, "jira", lambda settings, config: source)
    return source


def configure(tmp_path: Path, url: str, *, migrate: bool = True) -> tuple[Path, str]:
    db = tmp_path / "state.db"
    path = tmp_path / "billsync.toml"
    path.write_text(CONFIG.format(db=db, url=url, tenant=DEMO_TENANT_ID, contract=ACME_CONTRACT_ID))
    if migrate:
        upgrade(f"sqlite:///{db}")
    return path, f"sqlite:///{db}"


def invoke(path: Path, *args: str) -> Result:
    runner = CliRunner(env={"KK": "kk-sandbox-token", "BILLSYNC_CONFIG": None})
    return runner.invoke(cli, ["-c", str(path), "sync", *args])


def count(url: str, model: type) -> int:
    engine = create_engine(url)
    with engine.connect() as conn:
        n = conn.scalar(select(func.count()).select_from(model))
    engine.dispose()
    return int(n or 0)


def test_dry_run_prints_the_plan_and_writes_nothing(
    kukkingu: RunningKukkingu, tmp_path: Path, memory_source: InMemorySource
) -> None:
    path, url = configure(tmp_path, kukkingu.url)
    result = invoke(path, "--dry-run")
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert "source mem: 8 entries read (8 new, 0 changed, 0 deleted, 0 bad)" in out
    assert f"invoice {ACME_CONTRACT_ID}-2026-11-1 (new draft)" in out
    assert "+ ACME-1" in out
    assert "+ ACME-3" in out
    assert "= 2 to create, 0 to update; these lines total" in out
    assert "unmapped work: 4 entr(ies) no rule takes" in out
    assert out.rstrip().endswith("dry run: nothing was written")
    # nothing anywhere: no Kukkingu write, no row in the store
    assert writes(kukkingu.requests()) == {}
    assert count(url, Entry) == 0
    assert count(url, Run) == 0


def test_sync_writes_and_summarises_then_dry_run_has_nothing_left(
    kukkingu: RunningKukkingu, tmp_path: Path, memory_source: InMemorySource
) -> None:
    path, url = configure(tmp_path, kukkingu.url)
    result = invoke(path)
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith(
        "mem: 8 entries read; 2 lines created; 0 updated; 1 drafts opened; 2 Kukkingu requests"
    )
    assert count(url, Run) == 1
    again = invoke(path, "--dry-run")
    assert "nothing to write to Kukkingu" in again.stdout


def test_failure_exits_1_with_the_reason(
    tmp_path: Path, memory_source: InMemorySource, caplog: pytest.LogCaptureFixture
) -> None:
    path, _ = configure(tmp_path, "http://127.0.0.1:9")  # nothing listens there
    result = invoke(path)
    assert result.exit_code == 1
    assert "error: mem: Kukkingu POST /api/v1/invoices could not connect" in result.stderr
    # each retry is a warning (shown by default) while it waits, not only the error after
    # the last one
    retry = "Kukkingu POST /api/v1/invoices could not connect (ConnectError); retry 1 in"
    assert [r.levelname for r in caplog.records if retry in r.getMessage()] == ["WARNING"]


def test_unknown_source_and_unmigrated_store(tmp_path: Path, memory_source: InMemorySource) -> None:
    path, _ = configure(tmp_path, "http://127.0.0.1:9", migrate=False)
    result = invoke(path, "--source", "nope")
    assert result.exit_code == 2
    assert "no source named 'nope' (known: mem)" in result.stderr
    result = invoke(path)
    assert result.exit_code == 1
    assert "is not migrated: run `billsync db upgrade` first" in result.stderr


def test_a_kind_without_connector_is_a_clear_error(
    tmp_path: Path, kukkingu: RunningKukkingu, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delitem(clients.FACTORIES, "jira")  # as for a kind with no connector yet
    path, _ = configure(tmp_path, kukkingu.url)
    result = invoke(path)
    assert result.exit_code == 1
    assert "error: mem: source 'mem': no connector for kind 'jira' is available" in result.stderr


def test_inline_sync_takes_the_workers_lock(
    tmp_path: Path,
    kukkingu: RunningKukkingu,
    memory_source: InMemorySource,
    redis_server: RedisServer,
) -> None:
    """With the broker's Redis up, `billsync sync` refuses while a worker syncs the source."""
    if redis_server.process is None:
        redis_server.start()
    path, _ = configure(tmp_path, kukkingu.url)
    path.write_text(path.read_text() + f'[broker]\nurl = "{redis_server.url}"\n')
    redis = Redis.from_url(redis_server.url)
    held = HeldLock(redis, source_lock_key("mem"), ttl=30)
    assert held.acquire()
    try:
        busy = invoke(path)
        assert busy.exit_code == 1
        assert "a sync of mem is running (in a worker)" in busy.stderr
        assert writes(kukkingu.requests()) == {}
    finally:
        held.release()
    done = invoke(path)
    assert done.exit_code == 0, done.output
    assert redis.get(source_lock_key("mem")) is None  # released again
    redis.close()


def test_a_refused_token_is_an_open_problem_until_a_run_gets_through(
    kukkingu: RunningKukkingu, tmp_path: Path, memory_source: InMemorySource
) -> None:
    """A 401 is the operator's to fix: besides the failed run, it is an open configuration
    problem of the source (the dashboard's Problems page lists it), resolved by the next
    run that gets through. Over HTTP against the Kukkingu sandbox."""
    path, url = configure(tmp_path, kukkingu.url)
    refused = CliRunner(env={"KK": "not-the-token", "BILLSYNC_CONFIG": None}).invoke(
        cli, ["-c", str(path), "sync"]
    )
    assert refused.exit_code == 1
    engine = create_engine(url)
    problem = select(Error.reason, Error.resolved_at).where(
        Error.kind == ErrorKind.CONFIGURATION, Error.subject == "sync"
    )
    with engine.connect() as conn:
        (reason, resolved_at), *more = conn.execute(problem).all()
    assert "401" in reason
    assert "not-the-token" not in reason
    assert resolved_at is None
    assert more == []
    assert invoke(path).exit_code == 0  # the right token
    with engine.connect() as conn:
        assert [r.resolved_at is not None for r in conn.execute(problem)] == [True]
    engine.dispose()
