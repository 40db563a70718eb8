"""The ``billsync`` command line.

Exit codes: 0 success, 1 the work failed, 2 a usage error (click's), 78 the configuration
is unusable (``EX_CONFIG`` from sysexits.h), so scripts can tell "fix the config" apart.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import sys
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

import click

from sandbox.defaults import CLINIKO_PORT, DEFAULT_HOST, GITHUB_PORT, JIRA_PORT, KUKKINGU_PORT
from worker import __version__
from worker.config import ConfigError, Settings, load_config
from worker.logs import configure_logging

if TYPE_CHECKING:
    from connectors.kukkingu import Billable

# Start fast: `billsync --version`, `sync` and `enqueue` import only what they use. The
# sandbox, the dashboard, the API clients and the connectors are imported by the commands
# that need them (tests/worker/test_cli.py checks what the sync path loads).

EX_CONFIG = 78
DEMO_CONFIG = Path("examples/sandbox.toml")


def _fail_config(error: ConfigError) -> NoReturn:
    click.echo(f"error: configuration {error.source} is not usable:", err=True)
    for problem in error.problems:
        click.echo(f"  - {problem}", err=True)
    sys.exit(EX_CONFIG)


class _State:
    """What the group options leave for the subcommands; the config is loaded on demand."""

    def __init__(self, config: str | None) -> None:
        self.config = config
        self._settings: Settings | None = None

    def settings(self) -> Settings:
        if self._settings is None:
            try:
                self._settings = load_config(self.config)
            except ConfigError as error:
                _fail_config(error)
            configure_logging(secrets=self._settings.secrets.values())
        return self._settings


pass_state = click.make_pass_decorator(_State)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--config",
    "-c",
    type=click.Path(),  # read by load_config: an unreadable file is a config error (exit 78)
    envvar="BILLSYNC_CONFIG",
    help="The TOML config file (default: $BILLSYNC_CONFIG).",
)
@click.option("--verbose", "-v", count=True, help="More log output (-vv for debug).")
@click.version_option(__version__, prog_name="billsync")
@click.pass_context
def cli(ctx: click.Context, config: str | None, verbose: int) -> None:
    """billsync: tracked time in Jira and GitHub -> billables on Kukkingu draft invoices."""
    configure_logging(level=[logging.WARNING, logging.INFO, logging.DEBUG][min(verbose, 2)])
    ctx.obj = _State(config)


# --- config -------------------------------------------------------------------------------


@cli.group("config")
def config_group() -> None:
    """Inspect the configuration."""


@config_group.command("check")
@pass_state
def config_check(state: _State) -> None:
    """Validate the config file and its secrets; print every problem with its key path."""
    settings = state.settings()
    file = settings.file
    click.echo(
        f"ok: {settings.path}: {len(file.sources)} source(s), {len(file.rules)} rule(s), "
        f"billing timezone {file.billing.timezone}, state {_safe_url(settings.state_url)}"
    )


def _safe_url(url: str) -> str:
    """A database or broker URL with its password hidden, for messages."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:  # unparsable: show the scheme only, never the rest
        return url.split(":", 1)[0] + "://…"


# --- db -----------------------------------------------------------------------------------


@cli.group("db")
def db_group() -> None:
    """Manage the state store (SQLite by default, PostgreSQL for scale)."""


def _state_url(state: _State, url: str | None) -> str:
    return url or os.environ.get("BILLSYNC_STATE_URL") or state.settings().state_url


@db_group.command("upgrade")
@click.option("--url", help="Database URL (default: $BILLSYNC_STATE_URL, else the config's).")
@click.option("--revision", default="head", show_default=True)
@pass_state
def db_upgrade(state: _State, url: str | None, revision: str) -> None:
    """Create or migrate the state store's tables (safe to run again)."""
    from worker.store.migrate import current, upgrade

    target = _state_url(state, url)
    upgrade(target, revision)
    click.echo(f"ok: {_safe_url(target)} is at revision {current(target)}")


@db_group.command("current")
@click.option("--url", help="Database URL (default: $BILLSYNC_STATE_URL, else the config's).")
@pass_state
def db_current(state: _State, url: str | None) -> None:
    """Print the state store's migration revision."""
    from worker.store.migrate import current

    click.echo(current(_state_url(state, url)) or "empty (run `billsync db upgrade`)")


# --- sync ---------------------------------------------------------------------------------


@cli.command("sync")
@click.option("--source", "source_name", help="Only this source (default: every source).")
@click.option("--dry-run", is_flag=True, help="Print the plan; write nothing anywhere.")
@click.option(
    "--replan",
    is_flag=True,
    help="Plan every issue again, not only what changed (a rules change does this itself).",
)
@pass_state
def sync_command(state: _State, source_name: str | None, dry_run: bool, replan: bool) -> None:
    """Sync time into Kukkingu now, inline (no broker); non-zero exit on failure."""
    from worker.store import current, head

    settings = state.settings()
    configs = settings.file.sources
    if source_name is not None:
        configs = [c for c in configs if c.name == source_name]
        if not configs:
            known = ", ".join(c.name for c in settings.file.sources) or "none configured"
            raise click.UsageError(f"no source named {source_name!r} (known: {known})")
    if not configs:
        raise click.ClickException("the configuration has no [[sources]] to sync")
    if current(settings.state_url) != head():
        raise click.ClickException(
            f"the state store {_safe_url(settings.state_url)} is not migrated: "
            "run `billsync db upgrade` first"
        )
    failed = _run_syncs(settings, [c.name for c in configs], dry_run=dry_run, replan=replan)
    if dry_run:
        click.echo("dry run: nothing was written")
    if failed:
        sys.exit(1)


def _run_syncs(
    settings: Settings, names: list[str], *, dry_run: bool, replan: bool = False
) -> bool:
    """Sync (or plan) each named source in turn; True when one of them failed."""
    from sqlalchemy.exc import SQLAlchemyError

    from worker.clients import kukkingu_client, opened_source
    from worker.errors import BillsyncError
    from worker.progress import terminal_progress
    from worker.report import plan_lines, summary
    from worker.store import make_engine, session_factory
    from worker.sync import dry_run as plan_only
    from worker.sync import sync

    engine = make_engine(settings.state_url)
    factory = session_factory(engine)
    redis = None if dry_run else _reachable_redis(settings)
    failed = False
    try:
        with kukkingu_client(settings) as client:
            for name in names:
                try:
                    with opened_source(settings, settings.source(name)) as source:
                        if dry_run:
                            result = plan_only(settings, factory, client, source, replan=replan)
                            click.echo("\n".join(plan_lines(result)))
                            continue
                        with (
                            _inline_locks(settings, redis, name) as (checkpoint, ledger, fence),
                            terminal_progress(name) as progress,
                        ):
                            result = sync(
                                settings,
                                factory,
                                client,
                                source,
                                progress=progress,
                                checkpoint=checkpoint,
                                ledger_lock=ledger,
                                fence=fence,
                                replan=replan,
                            )
                        click.echo(summary(result))
                        for what, why in result.ingested.unreachable:
                            failed = True  # partial: an operator must restore access
                            click.echo(f"error: {name}: {what}: {why}", err=True)
                except BillsyncError as exc:
                    failed = True
                    click.echo(f"error: {name}: {exc}", err=True)
                except SQLAlchemyError as exc:
                    failed = True
                    logging.getLogger("billsync.cli").debug("state store error", exc_info=True)
                    reason = getattr(exc, "orig", None) or exc
                    click.echo(f"error: {name}: the state store failed: {reason}", err=True)
    finally:
        engine.dispose()
        if redis is not None:
            redis.close()
    return failed


def _reachable_redis(settings: Settings) -> Any:
    """The broker's Redis if it answers now, else None (the demo, a laptop without one)."""
    from redis import Redis
    from redis.exceptions import RedisError

    redis = Redis.from_url(settings.broker_url, socket_connect_timeout=1, socket_timeout=5)
    try:
        redis.ping()
    except RedisError:
        redis.close()
        click.echo("note: no Redis at the broker URL: the state store provides the locks", err=True)
        return None
    return redis


@contextlib.contextmanager
def _inline_locks(settings: Settings, redis: Any, name: str) -> Any:
    """The locks a worker takes: in Redis when it answers, else from the state store (no
    write happens without a lock). Refused while another process syncs this source; the
    ledger lock is waited for. Yields (checkpoint, ledger lock, fence)."""
    from worker.errors import ConfigurationError
    from worker.locks import LEDGER_WAIT, HeldLock, SyncLocks, source_lock_key
    from worker.store.locks import StoreLockBusy, store_lock

    tenant = settings.file.kukkingu.tenant_id
    if redis is None:
        try:
            with store_lock(settings.state_url, f"source:{name}"):
                yield (
                    (lambda step: None),
                    (lambda: store_lock(settings.state_url, f"ledger:{tenant}", wait=LEDGER_WAIT)),
                    (lambda step: None),  # the store's locks cannot be lost while held
                )
        except StoreLockBusy as exc:
            raise ConfigurationError(f"a sync of {name} is running elsewhere: {exc}") from exc
        return
    lock = HeldLock(redis, source_lock_key(name), ttl=settings.file.broker.lock_ttl_seconds)
    if not lock.acquire():
        raise ConfigurationError(
            f"a sync of {name} is running (in a worker); `billsync enqueue --source {name}` "
            "queues one after it"
        )
    locks = SyncLocks(redis, lock, tenant, settings.file.broker.lock_ttl_seconds)
    try:
        yield lock.check, locks.ledger, locks.fence
    finally:
        lock.release()


# --- the service: worker, beat, enqueue --------------------------------------------------------


def _celery(state: _State) -> Any:
    """The Celery app configured from the config file; children inherit $BILLSYNC_CONFIG."""
    from schedules.beat import beat_schedule
    from worker.tasks import configure

    settings = state.settings()
    if settings.path is not None:
        os.environ["BILLSYNC_CONFIG"] = str(settings.path.resolve())
    app = configure(settings)
    app.conf.beat_schedule = beat_schedule(settings)
    return app


@cli.command("worker")
@click.option("--concurrency", "-c", default=2, show_default=True, help="Sync processes.")
@click.option("--loglevel", default="INFO", show_default=True)
@click.option("--name", "hostname", default="billsync@%h", show_default=True, help="Node name.")
@pass_state
def worker_command(state: _State, concurrency: int, loglevel: str, hostname: str) -> None:
    """Run a Celery worker for sync tasks (prefork; acks late; one task prefetched)."""
    app = _celery(state)
    app.worker_main(
        [
            "worker",
            f"--concurrency={concurrency}",
            f"--loglevel={loglevel}",
            f"--hostname={hostname}",
            "-Q",
            "billsync",
        ]
    )


@cli.command("beat")
@click.option("--loglevel", default="INFO", show_default=True)
@click.option(
    "--schedule-file",
    type=click.Path(dir_okay=False, path_type=Path),
    default=Path("celerybeat-schedule"),
    show_default=True,
    help="Where beat keeps the last run times.",
)
@pass_state
def beat_command(state: _State, loglevel: str, schedule_file: Path) -> None:
    """Run the scheduler: one sync per source on its crontab (one active beat at a time)."""
    app = _celery(state)
    app.start(
        [
            "beat",
            f"--loglevel={loglevel}",
            "--scheduler=schedules.scheduler:LockedScheduler",
            f"--schedule={schedule_file}",
        ]
    )


@cli.command("enqueue")
@click.option(
    "--source",
    "source_names",
    multiple=True,
    help="This source (repeat for several; default: every source, once each).",
)
@pass_state
def enqueue_command(state: _State, source_names: tuple[str, ...]) -> None:
    """Put syncs on the queue now (each coalesced with a running sync of its source); print
    their ids. A source named twice is sent twice, in the order given."""
    from worker.tasks import enqueue

    _celery(state)
    names = [s.name for s in state.settings().file.sources]
    unknown = [name for name in source_names if name not in names]
    if unknown:
        raise click.UsageError(
            f"no source named {', '.join(map(repr, unknown))} (known: {', '.join(names)})"
        )
    for name in source_names or names:
        click.echo(f"{name}: {enqueue(name)}")


@cli.command("dashboard")
@click.option("--host", help="Address to listen on (default: [dashboard] host, 127.0.0.1).")
@click.option("--port", type=int, help="Port (default: [dashboard] port, 8780).")
@click.option(
    "--insecure-no-auth",
    is_flag=True,
    help="Serve without a login when none is configured (refused unless on 127.0.0.1).",
)
@pass_state
def dashboard_command(
    state: _State, host: str | None, port: int | None, insecure_no_auth: bool
) -> None:
    """Serve the operator dashboard, its JSON API and /metrics (docs/dashboard.md)."""
    import uvicorn
    from redis import Redis

    from worker.dashboard import DashboardAuthError, create_app
    from worker.store import make_engine, session_factory

    settings = state.settings()
    config = settings.file.dashboard
    host = host or config.host
    engine = make_engine(settings.state_url, sqlite_immediate=False)
    redis = Redis.from_url(settings.broker_url, socket_connect_timeout=2, socket_timeout=2)
    try:
        app = create_app(
            settings,
            factory=session_factory(engine),
            redis=redis,
            host=host,
            insecure_no_auth=insecure_no_auth,
        )
    except DashboardAuthError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(EX_CONFIG)
    if insecure_no_auth and not (config.token_env or config.password_env):
        click.echo("warning: the dashboard has no login (--insecure-no-auth)", err=True)
    try:
        uvicorn.run(app, host=host, port=port or config.port, log_level="info", access_log=False)
    finally:
        redis.close()
        engine.dispose()


# --- sandbox and demo -----------------------------------------------------------------------


def _wait_for_signal() -> None:
    """Block until Ctrl-C or SIGTERM (docker stop)."""
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    while not stop.wait(3600):
        pass


@cli.command("sandbox")
@click.option("--host", default=DEFAULT_HOST, show_default=True, help="Address to listen on.")
@click.option(
    "--kukkingu-port", default=KUKKINGU_PORT, show_default=True, help="0 picks a free port."
)
@click.option("--jira-port", default=JIRA_PORT, show_default=True, help="0 picks a free port.")
@click.option("--github-port", default=GITHUB_PORT, show_default=True, help="0 picks a free port.")
@click.option(
    "--cliniko-port", default=CLINIKO_PORT, show_default=True, help="0 picks a free port."
)
@click.option("--seed", default=0, show_default=True, help="Seed for generated ids.")
@click.option(
    "--webhook-url",
    metavar="URL",
    help="Send signed webhooks of Jira and GitHub admin edits to URL/hooks/jira and "
    "URL/hooks/github (the dashboard's address).",
)
@click.option(
    "--webhook-secret-env",
    metavar="NAME",
    default="BILLSYNC_SANDBOX_WEBHOOK_SECRET",
    show_default=True,
    help="The environment variable holding the secret the webhooks are signed with.",
)
@click.option(
    "--info",
    "info_path",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write base URLs, credentials, tenant and contract ids as JSON to this file.",
)
def sandbox_command(
    host: str,
    kukkingu_port: int,
    jira_port: int,
    github_port: int,
    cliniko_port: int,
    seed: int,
    webhook_url: str | None,
    webhook_secret_env: str,
    info_path: Path | None,
) -> None:
    """Serve the sandbox APIs (Kukkingu, Jira, GitHub, Cliniko) with demo data until
    interrupted."""
    from sandbox.main import SandboxStartError, start_sandbox, write_info

    secret = os.environ.get(webhook_secret_env) if webhook_url else None
    if webhook_url and not secret:
        raise click.ClickException(
            f"--webhook-url needs the secret to sign with: set {webhook_secret_env} "
            "(the same value as the dashboard's [webhooks] github_secret_env / jira_secret_env)"
        )
    try:
        with start_sandbox(
            host,
            kukkingu_port=kukkingu_port,
            jira_port=jira_port,
            github_port=github_port,
            cliniko_port=cliniko_port,
            seed=seed,
            webhook_url=webhook_url,
            webhook_secret=secret,
        ) as running:
            info = running.info()
            if info_path is not None:
                write_info(info_path, info)
            _print_sandbox(info, info_path)
            if webhook_url:
                click.echo(f"Webhooks          admin edits are sent to {webhook_url}/hooks/...")
            click.echo("Serving; press Ctrl-C to stop.")
            _wait_for_signal()
    except SandboxStartError as exc:
        raise click.ClickException(str(exc)) from None


def _print_sandbox(info: dict[str, Any], info_path: Path | None) -> None:
    kk = info["kukkingu"]
    click.echo(f"Kukkingu sandbox  {kk['baseUrl']}")
    click.echo(f"  token           {kk['token']}   (public sandbox value)")
    click.echo(f"  tenant-id       {kk['tenantId']}")
    for name, contract_id in kk["contracts"].items():
        click.echo(f"  contract        {contract_id}  {name}")
    click.echo(f"  admin           {kk['adminUrl']}/requests | /faults | /reset | /info")
    jira = info["jira"]
    click.echo(f"Jira sandbox      {jira['baseUrl']}")
    click.echo(f"  login           {jira['email']} / {jira['apiToken']}   (public sandbox values)")
    click.echo(f"  projects        {', '.join(sorted(jira['projects']))}")
    click.echo(f"  admin           {jira['adminUrl']}/worklogs | /issues | /clock | /faults")
    github = info["github"]
    click.echo(f"GitHub sandbox    {github['baseUrl']}")
    click.echo(f"  token           {github['token']}   (public sandbox value)")
    click.echo(f"  repos           {', '.join(sorted(github['repos']))}")
    click.echo(f"  admin           {github['adminUrl']}/comments | /issues | /budget | /faults")
    price_list = info["cliniko"]
    click.echo(f"Cliniko sandbox   {price_list['baseUrl']}")
    click.echo(f"  api key         {price_list['apiKey']}   (public sandbox value)")
    click.echo(f"  user agent      {price_list['userAgent']}")
    click.echo(f"  items           {', '.join(sorted(price_list['items']))}")
    click.echo(f"  admin           {price_list['adminUrl']}/billable_items | /faults")
    if info_path is not None:
        click.echo(f"Info written to {info_path}")


def _demo_port(base_url: str, what: str) -> int:
    import httpx

    url = httpx.URL(base_url)
    if url.host not in ("127.0.0.1", "localhost"):
        raise click.ClickException(
            f"the demo serves the sandbox on 127.0.0.1, but {what} is {base_url}; "
            "use examples/sandbox.toml"
        )
    return url.port or (443 if url.scheme == "https" else 80)


@cli.command("demo")
@click.option("--wait/--no-wait", default=True, help="Keep serving after the sync (default).")
@pass_state
def demo_command(state: _State, wait: bool) -> None:
    """Sandbox + migrations + one full sync, in one command (no Docker, no Redis)."""
    from sandbox.main import SandboxStartError, start_sandbox
    from worker.clients import kukkingu_client
    from worker.currencies import format_minor
    from worker.store.migrate import upgrade

    if state.config is None and DEMO_CONFIG.is_file():
        state.config = str(DEMO_CONFIG)
    settings = state.settings()
    kukkingu_port = _demo_port(settings.file.kukkingu.base_url, "kukkingu.base_url")
    ports = {"jira": JIRA_PORT, "github": GITHUB_PORT, "cliniko": 0}
    where = {"kukkingu": "kukkingu.base_url"}
    for source in settings.file.sources:
        ports[source.kind] = _demo_port(source.url, f"source {source.name}'s url")
        where[source.kind] = f"the url of source {source.name}"
    if settings.file.cliniko is not None:
        ports["cliniko"] = _demo_port(settings.file.cliniko.base_url, "cliniko.base_url")
        where["cliniko"] = "cliniko.base_url"
    webhook_url, webhook_secret = _demo_webhooks(settings) if wait else (None, None)
    try:
        with start_sandbox(
            kukkingu_port=kukkingu_port,
            jira_port=ports["jira"],
            github_port=ports["github"],
            cliniko_port=ports["cliniko"],
            webhook_url=webhook_url,
            webhook_secret=webhook_secret,
        ) as running:
            _print_sandbox(running.info(), None)
            if webhook_url:
                click.echo(
                    f"Webhooks          Jira and GitHub admin edits are sent to {webhook_url}"
                )
            earlier = _fresh_demo_store(settings.state_url)
            upgrade(settings.state_url)
            click.echo(f"State store       {_safe_url(settings.state_url)} (migrated)")
            if earlier is not None:
                click.echo(f"                  (the earlier demo's is kept as {earlier})")
            click.echo("Sync:")
            failed = _run_syncs(settings, [s.name for s in settings.file.sources], dry_run=False)
            with kukkingu_client(settings) as client:
                click.echo("Draft invoices in the Kukkingu sandbox:")
                priced: list[Billable] = []
                for invoice in sorted(client.list_invoices(), key=lambda i: i.invoice_number):
                    lines = client.list_billables(invoice.id)
                    amount = format_minor(invoice.amount_minor, invoice.currency_code)
                    click.echo(
                        f"  {invoice.invoice_number:<42} {invoice.status:<9} "
                        f"{len(lines):>3} lines {amount:>16}"
                    )
                    priced.extend(line for line in lines if _price_items(line.metadata or {}))
                if priced:
                    example = priced[0]
                    items = ", ".join(_price_items(example.metadata or {}))
                    click.echo(
                        f"Priced by the Cliniko price list: {len(priced)} line(s), e.g. "
                        f"{example.reference_id} at {items}"
                    )
            click.echo(f"Next: `{_me()} -c {settings.path} sync --dry-run` shows what a sync")
            click.echo("      would do; change worklogs, comments or prices through the sandboxes'")
            click.echo("      admin paths (docs/sandbox-jira.md, docs/sandbox-github.md,")
            click.echo("      docs/sandbox-cliniko.md), sync again.")
            if failed:
                raise click.ClickException("the demo sync failed (see above)")
            if wait:
                _demo_dashboard(settings)
    except SandboxStartError as exc:
        raise click.ClickException(
            f"the {exc.service} sandbox cannot listen on {exc.host}:{exc.port} ({exc.reason}); "
            f"is another sandbox or demo running? Stop it, or give the demo another port in "
            f"{where.get(exc.service, 'the config')} ({settings.path})"
        ) from None


def _demo_webhooks(settings: Settings) -> tuple[str | None, str | None]:
    """Where the demo's sandboxes send webhooks of admin edits (the dashboard), and the
    secret they sign with: when ``[webhooks]`` names one secret for both services."""
    hooks = settings.file.webhooks
    names = {hooks.github_secret_env, hooks.jira_secret_env} - {None}
    if len(names) != 1:
        return None, None
    (name,) = names
    assert name is not None
    dashboard = settings.file.dashboard
    host = "127.0.0.1" if dashboard.host in ("0.0.0.0", "::") else dashboard.host  # noqa: S104
    return f"http://{host}:{dashboard.port}", settings.secret(name).get_secret_value()


def _price_items(metadata: Mapping[str, Any]) -> list[str]:
    """``"CONSULT-60 (150.00 an hour)"`` for each rate of a line taken from the price list."""
    rates = metadata.get("rates")
    return [
        f"{rate['item']} ({rate['price']} an hour)"
        for rate in (rates if isinstance(rates, list) else [])
        if isinstance(rate, dict) and rate.get("item")
    ]


def _me() -> str:
    """How to run this billsync from here: ``billsync`` when it is the one on the PATH (an
    activated venv), else its path (``.venv/bin/billsync`` after ``make``)."""
    import shutil

    me = Path(sys.argv[0]).absolute()
    found = shutil.which("billsync")
    if found is not None and Path(found).absolute() == me:
        return "billsync"
    try:
        return str(me.relative_to(Path.cwd()))
    except ValueError:
        return str(me)


def _fresh_demo_store(url: str) -> Path | None:
    """The demo's sandboxes start empty every time, so its ledger must too: a ledger of an
    earlier demo names invoices the new sandbox never had. A SQLite file is moved aside
    (returned); another database must be empty."""
    from sqlalchemy import func, select
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import SQLAlchemyError

    from worker.store import Source, make_engine

    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if not parsed.database or parsed.database == ":memory:":
            return None
        path = Path(parsed.database)
        if not path.exists():
            return None
        kept = path.with_name(path.name + ".previous")
        for suffix in ("", "-wal", "-shm"):  # the journal goes with its database
            journal = path.with_name(path.name + suffix)
            if journal.exists():
                journal.replace(kept.with_name(kept.name + suffix))
            else:
                kept.with_name(kept.name + suffix).unlink(missing_ok=True)
        return kept
    engine = make_engine(url)
    try:
        with engine.connect() as connection:
            synced = connection.scalar(select(func.count()).select_from(Source))
    except SQLAlchemyError:
        return None  # no ledger yet (the tables are made next)
    finally:
        engine.dispose()
    if synced:
        raise click.ClickException(
            f"the demo's sandboxes start empty, but the state store {_safe_url(url)} holds "
            "an earlier ledger; point [state] url at a new database for the demo"
        )
    return None


def _demo_dashboard(settings: Settings) -> None:
    """Serve the dashboard until Ctrl-C. The demo has no Redis: "Sync now" syncs inline."""
    from sandbox.server import ServerThread
    from worker.clients import kukkingu_client, opened_source
    from worker.dashboard import create_app
    from worker.store import RunTrigger, make_engine, session_factory
    from worker.sync import sync

    engine = make_engine(settings.state_url)
    factory = session_factory(engine)
    lock = threading.Lock()  # one demo sync at a time, like the per-source lock
    waiting: set[str] = set()  # sources with a sync waiting for the lock: it covers requests
    guard = threading.Lock()

    def sync_inline(source: str, trigger: str) -> str:
        with guard:
            if source in waiting:
                return f"inline {source} (a sync of it is about to start)"
            waiting.add(source)

        def run() -> None:
            with lock, kukkingu_client(settings) as client:
                with guard:
                    waiting.discard(source)  # it begins: later requests need another sync
                try:
                    # the state store's locks, as `billsync sync` takes them without Redis
                    with (
                        opened_source(settings, settings.source(source)) as opened,
                        _inline_locks(settings, None, source) as (checkpoint, ledger, fence),
                    ):
                        sync(
                            settings,
                            factory,
                            client,
                            opened,
                            checkpoint=checkpoint,
                            ledger_lock=ledger,
                            fence=fence,
                            trigger=RunTrigger(trigger),  # on_demand, or webhook
                        )
                except Exception:
                    logging.getLogger("billsync.demo").exception("demo sync of %s", source)

        threading.Thread(target=run, name=f"demo sync {source}", daemon=True).start()
        return f"inline {source}"

    config = settings.file.dashboard
    token_note = f" (token from {config.token_env})" if config.token_env else ""
    app = create_app(settings, factory=factory, enqueue=sync_inline, inline_syncs=True)
    server = ServerThread(app, host=config.host, port=config.port)
    with server:
        click.echo(f"Dashboard         {server.url}/  log in with the sandbox token{token_note}")
        click.echo("Serving; press Ctrl-C to stop.")
        _wait_for_signal()
    engine.dispose()


# --- bench --------------------------------------------------------------------------------


@cli.command("bench")
@click.option(
    "--size",
    "sizes",
    type=click.Choice(["XS", "S", "M", "L", "XL"], case_sensitive=False),
    multiple=True,
    help="Dataset size, repeatable (XS: 400 worklogs, a smoke test; S: 5,000 (the default); "
    "M: 50,000; L: 500,000; XL: 1,000,000).",
)
@click.option("--latency-ms", default=0, show_default=True, help="Fixed latency per request.")
@click.option(
    "--source",
    "kinds",
    type=click.Choice(["jira", "github"]),
    multiple=True,
    help="Only these sources (repeatable; default: both).",
)
@click.option(
    "--workdir",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("bench-work"),
    show_default=True,
    help="Where the config, state store, log and profiles go (recreated each run).",
)
@click.option(
    "--json", "json_path", type=click.Path(dir_okay=False, path_type=Path), help="Write JSON here."
)
@click.option(
    "--profile", is_flag=True, help="cProfile each sync into WORKDIR/<phase>-<source>.prof."
)
@click.option(
    "--plot",
    "plot_path",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Draw peak RSS and wall time against dataset size (the sizes measured) as an SVG.",
)
@click.option(
    "--webhooks",
    is_flag=True,
    help="Instead: edit-to-billable latency through Jira webhooks, with a real Redis and one "
    "worker (SPEC §12), against the scheduled sync.",
)
@click.option(
    "--edits", default=20, show_default=True, help="With --webhooks: how many edits to time."
)
def bench_command(
    sizes: tuple[str, ...],
    latency_ms: int,
    kinds: tuple[str, ...],
    workdir: Path,
    json_path: Path | None,
    profile: bool,
    plot_path: Path | None,
    webhooks: bool,
    edits: int,
) -> None:
    """Benchmark full, no-change and 1%-changed syncs on a generated dataset (SPEC §10).

    Several --size options run one after another (each in WORKDIR/<size>); the JSON is then
    a list with one object per size. With --webhooks: the latency from an edit to its
    billable, through the webhook."""
    import json

    from worker.bench import SIZES, routes, run_bench, table

    if latency_ms < 0:
        raise click.BadParameter("must be >= 0", param_hint="--latency-ms")
    chosen = list(dict.fromkeys(s.upper() for s in sizes)) or ["S"]
    if webhooks:
        from worker.benchhooks import run_webhook_bench

        if edits < 1:
            raise click.BadParameter("must be >= 1", param_hint="--edits")
        for name in chosen:
            where = workdir if len(chosen) == 1 else workdir / name
            try:
                hooked = run_webhook_bench(SIZES[name], where, edits=edits, report=click.echo)
            except RuntimeError as exc:
                raise click.ClickException(str(exc)) from None
            click.echo("")
            for line in hooked.lines():
                click.echo(line)
        return
    results, failed = [], []
    for name in chosen:
        where = workdir if len(chosen) == 1 else workdir / name
        result = run_bench(
            SIZES[name],
            where,
            latency_ms=latency_ms,
            sources=kinds or ("jira", "github"),
            profile=profile,
            report=click.echo,
        )
        results.append(result)
        if any(p.exit_code != 0 for p in result.phases):
            failed.append(str(where / "sync.log"))
        click.echo("")
        for line in table(result):
            click.echo(line)
        click.echo("")
        click.echo("Requests per route:")
        for line in routes(result):
            click.echo(line)
        click.echo("")
    if json_path is not None:
        json_path.parent.mkdir(parents=True, exist_ok=True)
        reports = [r.to_json() for r in results]
        document = reports[0] if len(reports) == 1 else reports
        json_path.write_text(json.dumps(document, indent=2) + "\n")
        click.echo(f"JSON written to {json_path}")
    if plot_path is not None:
        from worker.benchplot import svg

        plot_path.parent.mkdir(parents=True, exist_ok=True)
        plot_path.write_text(svg(results))
        click.echo(f"plot written to {plot_path}")
    if failed:
        raise click.ClickException(f"a sync failed; see {', '.join(failed)}")


def main() -> None:
    """Console-script entry point."""
    cli(prog_name="billsync")


if __name__ == "__main__":  # pragma: no cover
    main()
