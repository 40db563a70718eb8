"""TLS for the three clients, over real HTTPS: the sandboxes on https://127.0.0.1 with a
certificate from a throwaway ``trustme`` CA, the real httpx, ``jira`` and PyGithub clients.

- With ``verify`` set to the CA's PEM file (the config's ``ca_bundle``) a real request succeeds,
  with the environment's CA variables cleared, or pointing at another CA: the key alone decides.
- Without it, the call fails with ``UntrustedCertificate`` (a configuration error) naming the
  host and the certificate problem, after exactly one connection: the relay in front of the
  server counts them (a failed handshake never reaches the sandbox's request counts), the
  client's own counts say one try, and nothing was slept.
- The pure parts: finding the failure in an exception chain, and the hint per problem.

Bad ``ca_bundle`` files are config errors: tests/worker/test_config.py.
"""

from __future__ import annotations

import ssl
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import trustme
from pydantic import SecretStr

from connectors.github import GitHubApi
from connectors.jira import JiraApi
from connectors.kukkingu import KukkinguClient
from connectors.retry import RetryPolicy
from connectors.tls import certificate_hint, verification_failure
from sandbox.github.seed import DEMO_TOKEN as GITHUB_TOKEN
from sandbox.jira.seed import DEMO_API_TOKEN, DEMO_EMAIL
from sandbox.jira.tls import TlsFiles, make_tls_files
from sandbox.kukkingu.seed import DEMO_TENANT_ID
from sandbox.kukkingu.seed import DEMO_TOKEN as KUKKINGU_TOKEN
from sandbox.server import ServerThread
from tests.support.github import RunningGitHub
from tests.support.jira import RunningJira
from tests.support.kukkingu import RunningKukkingu
from tests.support.tls import CLIENT_CA_VARIABLES, ConnectionRelay, serve_tls
from worker.clients import github_source, jira_source, kukkingu_client
from worker.config import GitHubSourceConfig, JiraSourceConfig, Settings, parse_config
from worker.errors import ConfigurationError, RetryableError, UntrustedCertificate

# Retries allowed and instant: if a client retried a certificate failure, it would show.
POLICY = RetryPolicy(max_attempts=5, base_delay=0.001, max_wait=5.0)
UNKNOWN_CA = "certificate verify failed: unable to get local issuer certificate"


@pytest.fixture(autouse=True)
def no_ca_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    """Only ``verify`` / ``ca_bundle`` may make a client trust the test CA."""
    for name in CLIENT_CA_VARIABLES:
        monkeypatch.delenv(name, raising=False)


@pytest.fixture(scope="module")
def tls(tmp_path_factory: pytest.TempPathFactory) -> TlsFiles:
    return make_tls_files(tmp_path_factory.mktemp("tls"))


@pytest.fixture(scope="module")
def other_ca(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A PEM file of a CA that signed nothing the sandboxes serve."""
    path = tmp_path_factory.mktemp("other") / "other-ca.pem"
    trustme.CA().cert_pem.write_to_path(str(path))
    return path


@pytest.fixture(params=["cleared", "elsewhere"])
def ca_variables(
    request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch, other_ca: Path
) -> str:
    """The environment's CA variables: unset, or each naming a CA that does not sign the
    sandboxes' certificate (the key must win over them)."""
    if request.param == "elsewhere":
        for name in ("SSL_CERT_FILE", "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE"):
            monkeypatch.setenv(name, str(other_ca))
    return str(request.param)


@pytest.fixture(scope="module")
def kukkingu_https(kukkingu_module: RunningKukkingu, tls: TlsFiles) -> Iterator[ServerThread]:
    with serve_tls(kukkingu_module.app, tls) as server:
        yield server


@pytest.fixture(scope="module")
def jira_https(jira_module: RunningJira, tls: TlsFiles) -> Iterator[ServerThread]:
    with serve_tls(jira_module.app, tls) as server:
        yield server


@pytest.fixture(scope="module")
def github_https(github_module: RunningGitHub, tls: TlsFiles) -> Iterator[ServerThread]:
    with serve_tls(github_module.app, tls, date_header=False) as server:
        yield server


def assert_untrusted(
    error: UntrustedCertificate, service: str, relay: ConnectionRelay, problem: str = UNKNOWN_CA
) -> None:
    host = f"127.0.0.1:{relay.port}"
    assert isinstance(error, ConfigurationError)
    assert not isinstance(error, RetryableError)
    assert error.host == host
    message = str(error)
    assert message.startswith(f"{service} {host}: TLS certificate not trusted")
    assert problem in message
    assert relay.connections == 1  # one try: never retried


# --- Kukkingu (httpx) ------------------------------------------------------------------------


def kukkingu_client_for(url: str, verify: bool | str, sleeps: list[float]) -> KukkinguClient:
    return KukkinguClient(
        url,
        DEMO_TENANT_ID,
        SecretStr(KUKKINGU_TOKEN),
        timeout=10,
        policy=POLICY,
        verify=verify,
        sleep=sleeps.append,
    )


def test_kukkingu_trusts_its_ca_bundle(
    kukkingu: RunningKukkingu, kukkingu_https: ServerThread, tls: TlsFiles, ca_variables: str
) -> None:
    assert kukkingu_https.url.startswith("https://127.0.0.1:")
    with kukkingu_client_for(kukkingu_https.url, str(tls.ca), []) as client:
        assert len(client.list_contracts()) == 2
    assert kukkingu.requests()["GET /api/v1/contracts"] == 1


def test_kukkingu_untrusted_certificate_is_a_configuration_error_tried_once(
    kukkingu: RunningKukkingu, kukkingu_https: ServerThread
) -> None:
    sleeps: list[float] = []
    with (
        ConnectionRelay(kukkingu_https.port) as relay,
        kukkingu_client_for(relay.url, True, sleeps) as client,
        pytest.raises(UntrustedCertificate) as caught,
    ):
        client.list_contracts()
    assert_untrusted(caught.value, "Kukkingu", relay)
    assert "(GET /api/v1/contracts)" in str(caught.value)
    assert "set `ca_bundle` under [kukkingu] to a PEM file of that CA" in str(caught.value)
    assert client.request_counts == {"GET /api/v1/contracts": 1}
    assert sleeps == []
    assert "GET /api/v1/contracts" not in kukkingu.requests()  # no HTTP request got through
    assert KUKKINGU_TOKEN not in str(caught.value)


def test_kukkingu_write_with_an_untrusted_certificate_is_not_retried(
    kukkingu: RunningKukkingu, kukkingu_https: ServerThread
) -> None:
    """A POST too: the handshake failed, so nothing was sent and nothing is unknown."""
    sleeps: list[float] = []
    with (
        ConnectionRelay(kukkingu_https.port) as relay,
        kukkingu_client_for(relay.url, True, sleeps) as client,
        pytest.raises(UntrustedCertificate) as caught,
    ):
        client.finalize_invoice("inv_x")  # a POST that is not idempotent
    assert_untrusted(caught.value, "Kukkingu", relay)
    assert "(POST /api/v1/invoices/{invoiceId}/finalize)" in str(caught.value)
    assert sleeps == []


def test_kukkingu_ca_bundle_without_the_signing_ca_says_so(
    kukkingu_https: ServerThread, other_ca: Path
) -> None:
    with (
        ConnectionRelay(kukkingu_https.port) as relay,
        kukkingu_client_for(relay.url, str(other_ca), []) as client,
        pytest.raises(UntrustedCertificate) as caught,
    ):
        client.list_contracts()
    assert_untrusted(caught.value, "Kukkingu", relay)
    assert f"the ca_bundle {str(other_ca)!r} does not hold the CA that signed it" in str(
        caught.value
    )


def test_kukkingu_self_signed_certificate(kukkingu_module: RunningKukkingu, tmp_path: Path) -> None:
    authority = trustme.CA()  # serves its own (self-signed) CA certificate
    cert, key = tmp_path / "self.pem", tmp_path / "self.key"
    authority.cert_pem.write_to_path(str(cert))
    authority.private_key_pem.write_to_path(str(key))
    with (
        ServerThread(kukkingu_module.app, ssl_certfile=str(cert), ssl_keyfile=str(key)) as server,
        ConnectionRelay(server.port) as relay,
        kukkingu_client_for(relay.url, True, []) as client,
        pytest.raises(UntrustedCertificate) as caught,
    ):
        client.list_contracts()
    assert_untrusted(caught.value, "Kukkingu", relay, "certificate verify failed: self-signed")
    assert "set `ca_bundle`" in str(caught.value)


def test_kukkingu_certificate_for_another_host(
    kukkingu_module: RunningKukkingu, tmp_path: Path
) -> None:
    files = make_tls_files(tmp_path, hosts=("localhost",))  # not valid for 127.0.0.1
    with (
        serve_tls(kukkingu_module.app, files) as server,
        ConnectionRelay(server.port) as relay,
        kukkingu_client_for(relay.url, str(files.ca), []) as client,
        pytest.raises(UntrustedCertificate) as caught,
    ):
        client.list_contracts()
    problem = "certificate verify failed: IP address mismatch, certificate is not valid for"
    assert_untrusted(caught.value, "Kukkingu", relay, problem)
    assert "check the URL (a ca_bundle cannot fix a name mismatch)" in str(caught.value)


# --- Jira (the jira library, requests) ------------------------------------------------------


def jira_api_for(url: str, verify: bool | str, sleeps: list[float]) -> JiraApi:
    return JiraApi(
        url,
        email=DEMO_EMAIL,
        token=SecretStr(DEMO_API_TOKEN),
        timeout=10,
        policy=POLICY,
        verify=verify,
        sleep=sleeps.append,
    )


def test_jira_trusts_its_ca_bundle(
    jira: RunningJira, jira_https: ServerThread, tls: TlsFiles, ca_variables: str
) -> None:
    api = jira_api_for(jira_https.url, str(tls.ca), [])
    try:
        assert api.cloud
        pages = list(api.search("project = ACME", ["summary"]))
        assert pages[0]
    finally:
        api.close()
    assert jira.requests()["GET /rest/api/2/serverInfo"] == 1


def test_jira_untrusted_certificate_at_connect_is_a_configuration_error_tried_once(
    jira: RunningJira, jira_https: ServerThread
) -> None:
    sleeps: list[float] = []
    with ConnectionRelay(jira_https.port) as relay, pytest.raises(UntrustedCertificate) as caught:
        jira_api_for(relay.url, True, sleeps)
    assert_untrusted(caught.value, "Jira", relay)
    assert "(GET serverInfo)" in str(caught.value)
    assert "set `ca_bundle` on this source to a PEM file of that CA" in str(caught.value)
    assert sleeps == []
    assert "GET /rest/api/2/serverInfo" not in jira.requests()
    assert DEMO_API_TOKEN not in str(caught.value)


def test_jira_untrusted_certificate_mid_sync_is_not_retried(
    jira: RunningJira, jira_https: ServerThread, tls: TlsFiles
) -> None:
    """The retry loop's path: the client connected, then stops trusting the server (as when
    the server's certificate is replaced by one from another CA). One try, no sleep."""
    sleeps: list[float] = []
    with ConnectionRelay(jira_https.port) as relay:
        api = jira_api_for(relay.url, str(tls.ca), sleeps)
        try:
            connected = relay.connections
            api._jira._session.verify = True  # the library passes this with every request
            with pytest.raises(UntrustedCertificate) as caught:
                next(api.worklog_feed("updated", 0))
        finally:
            api.close()
        assert relay.connections == connected + 1
    assert "Jira 127.0.0.1:" in str(caught.value)
    assert f"(GET worklog/updated): {UNKNOWN_CA}; the ca_bundle {str(tls.ca)!r} does not hold" in (
        str(caught.value)
    )
    assert api.request_counts == {"GET worklog/updated": 1}
    assert sleeps == []


# --- GitHub (PyGithub, requests) ------------------------------------------------------------


def github_api_for(url: str, verify: bool | str, sleeps: list[float]) -> GitHubApi:
    return GitHubApi(
        url, SecretStr(GITHUB_TOKEN), policy=POLICY, verify=verify, sleep=sleeps.append
    )


def test_github_trusts_its_ca_bundle(
    github: RunningGitHub, github_https: ServerThread, tls: TlsFiles, ca_variables: str
) -> None:
    api = github_api_for(github_https.url, str(tls.ca), [])
    try:
        assert api.get("/repos/acme/api").status == 200
        # pagination follows the absolute https:// Link URLs the server sends
        comments = [c for page in api.pages("/repos/acme/api/issues/comments", {}) for c in page]
        assert comments
    finally:
        api.close()
    assert github.requests()["GET /repos/{owner}/{repo}"] == 1


def test_github_untrusted_certificate_is_a_configuration_error_tried_once(
    github: RunningGitHub, github_https: ServerThread
) -> None:
    sleeps: list[float] = []
    with ConnectionRelay(github_https.port) as relay:
        api = github_api_for(relay.url, True, sleeps)
        try:
            with pytest.raises(UntrustedCertificate) as caught:
                api.get("/repos/acme/api")
        finally:
            api.close()
        assert_untrusted(caught.value, "GitHub", relay)
    assert "(GET /repos/acme/api)" in str(caught.value)
    assert "set `ca_bundle` on this source to a PEM file of that CA" in str(caught.value)
    assert api.request_counts == {"GET /repos/acme/api": 1}
    assert sleeps == []
    assert "GET /repos/{owner}/{repo}" not in github.requests()
    assert GITHUB_TOKEN not in str(caught.value)


# --- from the config: worker/clients.py passes each ca_bundle to its client -----------------


def settings_for(
    tmp_path: Path,
    kukkingu_url: str,
    jira_url: str,
    github_url: str,
    ca_bundle: str | None,
) -> Settings:
    extra = {"ca_bundle": ca_bundle} if ca_bundle else {}
    data = {
        "kukkingu": {
            "base_url": kukkingu_url,
            "tenant_id": DEMO_TENANT_ID,
            "token_env": "KK",
            "max_attempts": 3,
            **extra,
        },
        "sources": [
            {
                "name": "jira",
                "kind": "jira",
                "url": jira_url,
                "email_env": "JE",
                "token_env": "JT",
                **extra,
            },
            {"name": "github", "kind": "github", "url": github_url, "token_env": "GT", **extra},
        ],
    }
    environ = {"KK": KUKKINGU_TOKEN, "JE": DEMO_EMAIL, "JT": DEMO_API_TOKEN, "GT": GITHUB_TOKEN}
    return parse_config(data, base_dir=tmp_path, environ=environ)


def test_each_configured_ca_bundle_reaches_its_client(
    tmp_path: Path,
    tls: TlsFiles,
    kukkingu: RunningKukkingu,
    kukkingu_https: ServerThread,
    jira: RunningJira,
    jira_https: ServerThread,
    github: RunningGitHub,
    github_https: ServerThread,
) -> None:
    (tmp_path / "ca.pem").write_bytes(tls.ca.read_bytes())  # relative to the config file
    settings = settings_for(
        tmp_path, kukkingu_https.url, jira_https.url, github_https.url, "ca.pem"
    )
    jira_config, github_config = settings.file.sources
    assert isinstance(jira_config, JiraSourceConfig)
    assert isinstance(github_config, GitHubSourceConfig)
    assert settings.file.kukkingu.ca_bundle == str(tmp_path / "ca.pem")
    assert jira_config.ca_bundle == github_config.ca_bundle == str(tmp_path / "ca.pem")
    with kukkingu_client(settings) as client:
        assert len(client.list_contracts()) == 2
    jira_api = jira_source(settings, jira_config).api
    try:
        assert jira_api.cloud
    finally:
        jira_api.close()
    github_api = github_source(settings, github_config).api
    try:
        assert github_api.get("/repos/acme/api").status == 200
    finally:
        github_api.close()


def test_without_ca_bundle_the_configured_clients_refuse_the_certificate(
    tmp_path: Path,
    kukkingu_https: ServerThread,
    jira_https: ServerThread,
    github_https: ServerThread,
) -> None:
    settings = settings_for(tmp_path, kukkingu_https.url, jira_https.url, github_https.url, None)
    jira_config, github_config = settings.file.sources
    assert isinstance(jira_config, JiraSourceConfig)
    assert isinstance(github_config, GitHubSourceConfig)
    with kukkingu_client(settings) as client, pytest.raises(UntrustedCertificate):
        client.list_contracts()
    jira = jira_source(settings, jira_config)  # no request yet: the config says the deployment
    try:
        with pytest.raises(UntrustedCertificate, match=f"Jira 127.0.0.1:{jira_https.port}"):
            next(iter(jira.api.search("project = ACME", ["summary"])))
    finally:
        jira.close()
    github_api = github_source(settings, github_config).api
    try:
        with pytest.raises(UntrustedCertificate, match=f"GitHub 127.0.0.1:{github_https.port}"):
            github_api.get("/repos/acme/api")
    finally:
        github_api.close()


# --- the pure parts -------------------------------------------------------------------------


def test_verification_failure_is_found_through_the_chain() -> None:
    failure = ssl.SSLCertVerificationError(1, "certificate verify failed")
    wrapped = httpx.ConnectError("wrapped")  # as httpx raises it: from httpcore's error
    inner = OSError("httpcore")
    inner.__context__ = failure
    wrapped.__cause__ = inner
    assert verification_failure(wrapped) is failure

    class MaxRetry(Exception):  # urllib3 keeps the cause in `.reason`
        def __init__(self, reason: BaseException) -> None:
            super().__init__("max retries")
            self.reason = reason

    outer = OSError(MaxRetry(ValueError("x")))  # requests passes urllib3's error as an arg
    assert verification_failure(outer) is None
    assert verification_failure(OSError(MaxRetry(failure))) is failure
    assert verification_failure(httpx.ConnectError("[Errno 111] Connection refused")) is None


@pytest.mark.parametrize(
    ("reason", "ca_bundle", "hint"),
    [
        ("unable to get local issuer certificate", None, "set `ca_bundle` under [kukkingu]"),
        ("self-signed certificate", None, "set `ca_bundle` under [kukkingu]"),
        ("self-signed certificate in certificate chain", None, "from a private CA"),
        ("unable to get local issuer certificate", "/ca.pem", "'/ca.pem' does not hold the CA"),
        ("Hostname mismatch, certificate is not valid for 'a.b'", None, "check the URL"),
        ("IP address mismatch, certificate is not valid for '10.0.0.1'", "/ca.pem", "the URL"),
        ("certificate has expired", None, "must be renewed"),
        ("certificate is not yet valid", "/ca.pem", "this machine's clock is wrong"),
    ],
)
def test_certificate_hint(reason: str, ca_bundle: str | None, hint: str) -> None:
    assert hint in certificate_hint(reason, ca_bundle=ca_bundle, setting="under [kukkingu]")
