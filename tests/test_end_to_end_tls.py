"""End to end over HTTPS: `billsync sync` (CLI, real clients) against the Kukkingu, Jira and
GitHub sandboxes served with a certificate from a throwaway private CA.

With `ca_bundle` (relative to the config file) on [kukkingu] and on both sources, the sync
bills both sources and exits 0. Without it, each service's certificate is refused: the sync
exits 1 (a source failed) and says, per source, which host's certificate failed and why, and
nothing reached the sandboxes' HTTP layer. The environment's CA variables are cleared, so only
the key can make a client trust the CA.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from sqlalchemy import select

from sandbox.jira.tls import make_tls_files
from sandbox.main import RunningSandbox, start_sandbox
from sandbox.server import ServerThread
from tests.support.billing import store, writes
from tests.support.tls import CLIENT_CA_VARIABLES, serve_tls
from worker.cli import cli
from worker.store import Error

ROOT = Path(__file__).resolve().parent.parent
UNKNOWN_CA = "certificate verify failed: unable to get local issuer certificate"


@dataclass
class HttpsSandbox:
    apps: RunningSandbox  # the apps (also served over plain HTTP; unused here)
    kukkingu: ServerThread
    jira: ServerThread
    github: ServerThread
    cliniko: ServerThread


@pytest.fixture(autouse=True)
def no_ca_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in CLIENT_CA_VARIABLES:
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def https(tmp_path: Path) -> Iterator[HttpsSandbox]:
    files = make_tls_files(tmp_path / "tls")  # tls/ca.pem beside the config
    with (
        start_sandbox(kukkingu_port=0, jira_port=0, github_port=0, cliniko_port=0) as apps,
        serve_tls(apps.kukkingu_app, files) as kukkingu,
        serve_tls(apps.jira_app, files) as jira,
        serve_tls(apps.github_app, files, date_header=False) as github,
        serve_tls(apps.cliniko_app, files, date_header=False) as cliniko,
    ):
        yield HttpsSandbox(apps, kukkingu, jira, github, cliniko)


def config(tmp_path: Path, https: HttpsSandbox, *, ca_on: set[str]) -> str:
    """examples/sandbox.toml against the HTTPS servers, with `ca_bundle` on the named
    sections ("kukkingu", "jira", "github", "cliniko")."""
    text = (ROOT / "examples" / "sandbox.toml").read_text()
    for plain, served in (
        ("http://127.0.0.1:8730", https.kukkingu.url),
        ("http://127.0.0.1:8731", https.jira.url),
        ("http://127.0.0.1:8732", https.github.url),
        ("http://127.0.0.1:8733", https.cliniko.url),
    ):
        assert served.startswith("https://127.0.0.1:")
        text = text.replace(plain, served)
    for section, after in (
        ("kukkingu", "max_retry_wait_seconds = 5.0\n"),
        ("jira", 'schedule = "*/5 * * * *"\n'),
        ("github", 'schedule = "*/10 * * * *"\n'),
        ("cliniko", 'user_agent = "billsync (billing@example.com)"\n'),
    ):
        if section in ca_on:
            text = text.replace(after, after + 'ca_bundle = "tls/ca.pem"\n')
    text = text.replace('env_file = "sandbox.env"', f'env_file = "{ROOT}/examples/sandbox.env"')
    text = text.replace("sqlite:///billsync-demo.db", f"sqlite:///{tmp_path / 'state.db'}")
    path = tmp_path / "billsync.toml"
    path.write_text(text)
    return str(path)


def invoke(*args: str) -> Result:
    return CliRunner(env={"BILLSYNC_CONFIG": None}).invoke(cli, list(args))


def prepare(path: str) -> None:
    for command in (["config", "check"], ["db", "upgrade"]):
        result = invoke("-c", path, *command)
        assert result.exit_code == 0, result.output


def test_sync_over_https_with_the_ca_bundle(tmp_path: Path, https: HttpsSandbox) -> None:
    path = config(tmp_path, https, ca_on={"kukkingu", "jira", "github", "cliniko"})
    prepare(path)
    result = invoke("-c", path, "sync")
    assert result.exit_code == 0, result.output
    assert "jira-demo: 250 entries read;" in result.stdout
    assert "github-demo: " in result.stdout
    assert writes(dict(https.apps.kukkingu_app.requests.snapshot()))["POST /api/v1/billables"] > 0
    # github-demo's rule read the price list: the items in use, then the archived ones
    assert dict(https.apps.cliniko_app.requests.snapshot()) == {"GET /v1/billable_items": 2}


def test_an_untrusted_cliniko_certificate_holds_its_rule_and_names_cliniko(
    tmp_path: Path, https: HttpsSandbox
) -> None:
    path = config(tmp_path, https, ca_on={"kukkingu", "jira", "github"})
    prepare(path)
    result = invoke("-c", path, "sync", "--source", "github-demo")
    assert result.exit_code == 0, result.output  # the other rules bill
    assert dict(https.apps.cliniko_app.requests.snapshot()) == {}  # nothing got through
    with store(f"sqlite:///{tmp_path / 'state.db'}") as factory, factory() as session:
        reasons = {
            e.subject: e.reason
            for e in session.scalars(select(Error).where(Error.resolved_at.is_(None)))
        }
    assert reasons["price list"].startswith(
        f"Cliniko 127.0.0.1:{https.cliniko.port}: TLS certificate not trusted"
    )
    assert "set `ca_bundle` under [cliniko]" in reasons["price list"]
    assert reasons["rules[3]"].startswith("the price list has not been read from Cliniko yet")


def test_sync_without_ca_bundle_names_each_host_and_the_problem(
    tmp_path: Path, https: HttpsSandbox
) -> None:
    path = config(tmp_path, https, ca_on=set())
    prepare(path)
    result = invoke("-c", path, "sync")
    assert result.exit_code == 1, result.output
    hint = "if the server's certificate comes from a private CA, set `ca_bundle` on this source"
    assert (
        f"error: jira-demo: Jira 127.0.0.1:{https.jira.port}: TLS certificate not trusted "
        f"(GET search/jql): {UNKNOWN_CA}; {hint}"
    ) in result.stderr
    assert (
        f"error: github-demo: GitHub 127.0.0.1:{https.github.port}: TLS certificate not trusted"
    ) in result.stderr
    assert f"{UNKNOWN_CA}; {hint}" in result.stderr.split("error: github-demo:")[1]
    for app in (https.apps.jira_app, https.apps.github_app, https.apps.kukkingu_app):
        assert dict(app.requests.snapshot()) == {}  # no HTTP request got through


def test_sync_without_the_kukkingu_ca_bundle_names_kukkingu(
    tmp_path: Path, https: HttpsSandbox
) -> None:
    path = config(tmp_path, https, ca_on={"jira", "github"})
    prepare(path)
    result = invoke("-c", path, "sync", "--source", "jira-demo")
    assert result.exit_code == 1, result.output
    assert (
        f"error: jira-demo: Kukkingu 127.0.0.1:{https.kukkingu.port}: TLS certificate not trusted ("
    ) in result.stderr
    hint = "if the server's certificate comes from a private CA, set `ca_bundle` under [kukkingu]"
    assert f"{UNKNOWN_CA}; {hint}" in result.stderr
    assert dict(https.apps.kukkingu_app.requests.snapshot()) == {}
