"""Wiring: API clients built from validated settings (the only place that does it).

Each client trusts its section's ``ca_bundle`` (a PEM file of CAs, resolved by the config)
instead of its library's default store when one is set.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from worker.config import GitHubSourceConfig, JiraSourceConfig, Settings
from worker.errors import ConfigurationError
from worker.ports import EntrySource

if TYPE_CHECKING:  # each connector is imported when a source of its kind is built
    from connectors.cliniko import ClinikoClient
    from connectors.github import GitHubSource
    from connectors.jira import JiraSource
    from connectors.kukkingu import KukkinguClient


def kukkingu_client(
    settings: Settings, *, attempts: int | None = None, timeout: float | None = None
) -> KukkinguClient:
    """The Kukkingu client for the configured tenant, with the configured retry policy
    (``attempts`` and ``timeout`` override it: a page waiting on a read asks once)."""
    from connectors.kukkingu import KukkinguClient
    from connectors.retry import RetryPolicy

    config = settings.file.kukkingu
    return KukkinguClient(
        config.base_url,
        config.tenant_id,
        settings.secret(config.token_env),
        timeout=config.timeout_seconds if timeout is None else timeout,
        verify=config.ca_bundle or True,
        policy=RetryPolicy(
            max_attempts=config.max_attempts if attempts is None else attempts,
            max_wait=config.max_retry_wait_seconds,
        ),
    )


# The cached prices keep billing going through a Cliniko outage: a sync does not wait long.
CLINIKO_ATTEMPTS = 3
CLINIKO_MAX_WAIT = 10.0


def cliniko_client(settings: Settings) -> ClinikoClient | None:
    """The client of the configured Cliniko price list, or None when there is none."""
    from connectors.cliniko import ClinikoClient
    from connectors.retry import RetryPolicy

    config = settings.file.cliniko
    if config is None:
        return None
    return ClinikoClient(
        config.base_url,
        settings.secret(config.api_key_env),
        config.user_agent,
        timeout=config.timeout_seconds,
        verify=config.ca_bundle or True,
        policy=RetryPolicy(max_attempts=CLINIKO_ATTEMPTS, max_wait=CLINIKO_MAX_WAIT),
    )


def jira_source(settings: Settings, config: JiraSourceConfig) -> JiraSource:
    """The Jira source for one configured site: its projects and JQL rules from the rules."""
    from connectors.jira import JiraApi, JiraSource

    email = None
    if config.auth == "cloud":  # basic auth: email + API token; datacenter: the PAT as bearer
        if config.email_env is None:
            raise ValueError("a cloud Jira source needs email_env (config check says so)")
        email = settings.secret(config.email_env).get_secret_value()
    api = JiraApi(
        config.url,
        email=email,
        token=settings.secret(config.token_env),
        verify=config.ca_bundle or True,
        deployment=config.auth,  # "cloud" or "datacenter": no serverInfo call needed
    )
    rules = list(enumerate(settings.file.rules))
    return JiraSource(
        config.name,
        api,
        projects={p for _, rule in rules if rule.source == config.name for p in rule.projects},
        jql_rules={i: rule.jql for i, rule in rules if rule.source == config.name and rule.jql},
        overlap_seconds=config.overlap_seconds,
    )


def github_source(settings: Settings, config: GitHubSourceConfig) -> GitHubSource:
    """The GitHub source for one configured host: the repos its rules name."""
    from connectors.github import GitHubApi, GitHubSource

    api = GitHubApi(config.url, settings.secret(config.token_env), verify=config.ca_bundle or True)
    repos = sorted(
        {r for rule in settings.file.rules if rule.source == config.name for r in rule.repos}
    )
    return GitHubSource(config.name, api, repos=repos, zone=settings.timezone)


# --- the registry: sources by kind ------------------------------------------------------------

SourceFactory = Callable[[Settings, Any], EntrySource]  # (settings, the source's config)


def _jira(settings: Settings, config: Any) -> EntrySource:
    return jira_source(settings, config)


def _github(settings: Settings, config: Any) -> EntrySource:
    return github_source(settings, config)


# The connectors, by source kind; tests may register stand-ins.
FACTORIES: dict[str, SourceFactory] = {"jira": _jira, "github": _github}


def open_source(settings: Settings, config: Any) -> EntrySource:
    """The configured source as an EntrySource, or a configuration error saying why not."""
    factory = FACTORIES.get(config.kind)
    if factory is None:
        raise ConfigurationError(
            f"source {config.name!r}: no connector for kind {config.kind!r} is available "
            "in this version of billsync"
        )
    return factory(settings, config)


@contextmanager
def opened_source(settings: Settings, config: Any) -> Iterator[EntrySource]:
    """:func:`open_source`, closing its API client (connections) when done."""
    source = open_source(settings, config)
    try:
        yield source
    finally:
        close = getattr(source, "close", None)
        if callable(close):
            close()
