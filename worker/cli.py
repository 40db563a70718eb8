"""The ``billsync`` command line.

Exit codes: 0 success, 1 the work failed, 2 a usage error (click's), 78 the configuration
is unusable (``EX_CONFIG`` from sysexits.h), so scripts can tell "fix the config" apart.
"""

from __future__ import annotations

import logging
import os
import sys
from typing import NoReturn

import click

from worker import __version__
from worker.config import ConfigError, Settings, load_config
from worker.logs import configure_logging

EX_CONFIG = 78


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
    type=click.Path(dir_okay=False),
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


def main() -> None:
    """Console-script entry point."""
    cli(prog_name="billsync")


if __name__ == "__main__":  # pragma: no cover
    main()
