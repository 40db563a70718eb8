"""Configuration: one TOML file for the shape, environment variables for the secrets.

``load_config(path)`` reads the file, validates it with the pydantic models below, resolves
every secret from the environment (optionally topped up from the ``env_file`` the config
names) and returns a frozen :class:`Settings`, or raises :class:`ConfigError` listing *every*
problem found, each with its key path (``rules[0].rounding.mode: ...``).

Secrets never live in the file: a key ending in ``_env`` names the environment variable that
holds the value. Resolved secrets are ``SecretStr`` and print as ``**********``.

A ``ca_bundle`` (on ``[kukkingu]``, ``[cliniko]`` and on each source) is a PEM file of CAs
that service's client trusts instead of the default store. A relative path is relative to the
config file; :class:`Settings` holds the resolved path. A missing, unreadable or
certificate-less file is a problem like any other, reported in the same pass.

The key-by-key reference is the README's Configuration section;
``examples/production.toml`` shows every key with a comment.
"""

from __future__ import annotations

import os
import re
import ssl
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from dotenv import dotenv_values
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
)

from worker.currencies import ISO_4217
from worker.errors import ConfigurationError

CONFIG_ENV_VAR = "BILLSYNC_CONFIG"

ENV_NAME = r"^[A-Z_][A-Z0-9_]*$"
TENANT_ID = r"^tnt_[a-z0-9]{24}$"
CONTRACT_ID = r"^ctr_[a-z0-9]{24}$"
SOURCE_NAME = r"^[a-z0-9][a-z0-9_-]{0,62}$"
GITHUB_REPO = r"^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+$"
JIRA_PROJECT = r"^[A-Z][A-Z0-9_]{0,254}$"
TEMPLATE_FIELDS = frozenset({"contract", "currency", "period", "seq"})
# Values people leave in example files; a secret holding one of these is refused.
PLACEHOLDER_SECRETS = frozenset({"", "changeme", "change-me", "secret", "token", "xxx", "todo"})

EnvName = Annotated[str, Field(pattern=ENV_NAME)]
# A PEM file of CAs to trust instead of the default store (checked by _ca_bundle_problems).
CaBundle = Annotated[str, Field(min_length=1)]

# What a pattern mismatch means, by the key it happened on (pydantic only quotes the regex).
PATTERN_MEANING = {
    "tenant_id": "must be a Kukkingu tenant id: tnt_ + 24 lowercase letters or digits",
    "contract_id": "must be a Kukkingu contract id: ctr_ + 24 lowercase letters or digits",
    "name": "must be 1-63 lowercase letters, digits, '-' or '_', starting with a letter or digit",
    "source": "must be a source name (lowercase letters, digits, '-' or '_')",
    "url": "must be an http:// or https:// URL",
    "base_url": "must be an http:// or https:// URL",
    "repos": "must be 'owner/repo'",
    "projects": "must be a Jira project key (uppercase letters, digits, '_'; e.g. PROJ)",
}


class _Strict(BaseModel):
    """Every config section rejects unknown keys (a typo must not be silently ignored)."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class StateConfig(_Strict):
    """Where billsync keeps its ledger. ``url_env`` wins when set (a URL with a password)."""

    url: str = "sqlite:///billsync.db"
    url_env: EnvName | None = None


class BrokerConfig(_Strict):
    """The Celery broker (Redis)."""

    url: str = "redis://127.0.0.1:6379/0"
    url_env: EnvName | None = None
    # A message not acknowledged within this time is delivered again: keep it above the
    # longest sync (task_time_limit_seconds), or a slow sync would run twice.
    visibility_timeout_seconds: Annotated[int, Field(strict=True, ge=60)] = 7200
    task_time_limit_seconds: Annotated[int, Field(strict=True, ge=60)] = 3600
    # A source's sync lock lives this long unless its holder extends it (every third):
    # how long a sync killed with kill -9 keeps others of its source waiting.
    lock_ttl_seconds: Annotated[int, Field(strict=True, ge=3, le=3600)] = 60


class BillingConfig(_Strict):
    timezone: str = "UTC"

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown IANA time zone {value!r}") from None
        return value


class KukkinguConfig(_Strict):
    base_url: Annotated[str, Field(pattern=r"^https?://[^\s/]+(/[^\s]*)?$")]
    tenant_id: Annotated[str, Field(pattern=TENANT_ID)]
    token_env: EnvName
    timeout_seconds: Annotated[float, Field(gt=0, le=600)] = 30.0
    max_attempts: Annotated[int, Field(strict=True, ge=1, le=20)] = 5
    max_retry_wait_seconds: Annotated[float, Field(ge=0, le=3600)] = 30.0
    # writes on different billables and drafts in flight at once (1: one after another)
    concurrency: Annotated[int, Field(strict=True, ge=1, le=16)] = 4
    ca_bundle: CaBundle | None = None


def parse_crontab(value: str) -> Any:
    """A standard five-field crontab (minute hour day-of-month month day-of-week) as Celery's
    ``crontab``. Fields are passed by name: Celery's positional order is different (minute,
    hour, day_of_week, day_of_month, month_of_year)."""
    fields = value.split()
    if len(fields) != 5:
        raise ValueError(f"crontab {value!r} must have 5 fields (minute hour day month weekday)")
    from celery.schedules import crontab  # deferred: celery is heavy and only needed here

    minute, hour, day_of_month, month_of_year, day_of_week = fields
    try:
        return crontab(
            minute=minute,
            hour=hour,
            day_of_month=day_of_month,
            month_of_year=month_of_year,
            day_of_week=day_of_week,
        )
    except ValueError as exc:
        raise ValueError(f"invalid crontab {value!r}: {exc}") from None


def _crontab(value: str) -> str:
    """Validate a crontab with Celery's own parser (what beat will use)."""
    parse_crontab(value)
    return value


Crontab = Annotated[str, Field(min_length=1)]

# An email address somewhere in Cliniko's User-Agent ("App name (someone@example.com)").
CONTACT_EMAIL = re.compile(r"[^\s@<>()]+@[^\s@<>()]+\.[^\s@<>()]+")


class ClinikoConfig(_Strict):
    """The Cliniko account whose billable items price rules (``rate_item``, SPEC §11)."""

    base_url: Annotated[str, Field(pattern=r"^https?://[^\s/]+(/[^\s]*)?$")]
    api_key_env: EnvName
    user_agent: Annotated[str, Field(min_length=1, max_length=255)]
    ca_bundle: CaBundle | None = None
    timeout_seconds: Annotated[float, Field(gt=0, le=600)] = 30.0

    @field_validator("user_agent")
    @classmethod
    def _contact(cls, value: str) -> str:
        if not CONTACT_EMAIL.search(value):
            raise ValueError(
                "Cliniko requires an app name and a contact email in the User-Agent, "
                "e.g. 'billsync (billing@example.com)'"
            )
        return value


class _SourceBase(_Strict):
    name: Annotated[str, Field(pattern=SOURCE_NAME)]
    schedule: Crontab = "*/15 * * * *"
    ca_bundle: CaBundle | None = None

    @field_validator("schedule")
    @classmethod
    def _valid_crontab(cls, value: str) -> str:
        return _crontab(value)


class JiraSourceConfig(_SourceBase):
    kind: Literal["jira"]
    url: Annotated[str, Field(pattern=r"^https?://[^\s/]+(/[^\s]*)?$")]
    auth: Literal["cloud", "datacenter"] = "cloud"
    email_env: EnvName | None = None
    token_env: EnvName
    overlap_seconds: Annotated[int, Field(strict=True, ge=60, le=86400)] = 120


class GitHubSourceConfig(_SourceBase):
    kind: Literal["github"]
    url: Annotated[str, Field(pattern=r"^https?://[^\s/]+(/[^\s]*)?$")] = "https://api.github.com"
    token_env: EnvName


SourceConfig = Annotated[JiraSourceConfig | GitHubSourceConfig, Field(discriminator="kind")]


class RoundingConfig(_Strict):
    increment_minutes: Annotated[int, Field(strict=True, ge=0, le=1440)] = 0
    mode: Literal["up", "nearest", "down"] = "up"
    scope: Literal["entry", "line"] = "entry"


MAX_ITEM_CODE = 100  # Cliniko's item_code limit
MAX_RATE_MINOR = 9007199254740991  # 2^53 - 1: exact in every JSON reader
ItemCode = Annotated[str, Field(min_length=1, max_length=MAX_ITEM_CODE)]


class RuleConfig(_Strict):
    """One contract rule: which work it takes and how that work is priced."""

    source: Annotated[str, Field(pattern=SOURCE_NAME)]
    projects: list[Annotated[str, Field(pattern=JIRA_PROJECT)]] = []
    jql: Annotated[str, Field(min_length=1)] | None = None
    repos: list[Annotated[str, Field(pattern=GITHUB_REPO)]] = []
    non_billable_labels: list[Annotated[str, Field(min_length=1)]] = []
    contract_id: Annotated[str, Field(pattern=CONTRACT_ID)]
    currency: str
    exchange_rate: Annotated[Decimal, Field(ge=0, allow_inf_nan=False)] = Decimal(1)
    # exactly one of the two: a rate in minor units, or a Cliniko billable item's code
    hourly_rate_minor: Annotated[int, Field(strict=True, ge=0, le=MAX_RATE_MINOR)] | None = None
    rate_item: ItemCode | None = None
    # per person: a rate in minor units or an item code (checked by _person_rates)
    person_rates: dict[Annotated[str, Field(min_length=1)], int | str] = {}
    rounding: RoundingConfig = RoundingConfig()
    grouping: Literal["issue", "entry"] = "issue"
    period: Literal["monthly", "weekly", "none"] = "monthly"
    invoice_number: Annotated[str, Field(min_length=1, max_length=200)] = (
        "{contract}-{period}-{seq}"
    )

    @field_validator("currency")
    @classmethod
    def _iso_currency(cls, value: str) -> str:
        if value not in ISO_4217:
            raise ValueError(f"{value!r} is not an active ISO 4217 currency code (e.g. EUR)")
        return value

    @field_validator("person_rates", mode="before")
    @classmethod
    def _person_rates(cls, value: object) -> object:
        if not isinstance(value, dict):
            return value  # the model's own error
        wrong = [
            f"{person!r}: {rate!r}"
            for person, rate in value.items()
            if not (
                (type(rate) is int and 0 <= rate <= MAX_RATE_MINOR)
                or (isinstance(rate, str) and 1 <= len(rate) <= MAX_ITEM_CODE)
            )
        ]
        if wrong:
            raise ValueError(
                "each rate must be an amount in minor units (an integer from 0) or a price "
                f"list item code (1-{MAX_ITEM_CODE} characters); not {', '.join(wrong)}"
            )
        return value

    def item_codes(self) -> list[str]:
        """The price list items the rule's rates come from (none: every rate is a number)."""
        codes = [self.rate_item] if self.rate_item is not None else []
        return codes + [rate for rate in self.person_rates.values() if isinstance(rate, str)]


class WebhooksConfig(_Strict):
    """Jira and GitHub webhooks, received by the dashboard server (SPEC §12)."""

    github_secret_env: EnvName | None = None
    jira_secret_env: EnvName | None = None
    # GitHub caps a delivery at 25 MB; billsync's events are far smaller
    max_body_bytes: Annotated[int, Field(strict=True, ge=1024, le=26_214_400)] = 1_048_576
    # a webhook's sync waits this long before it starts, so a burst of events is one sync
    debounce_seconds: Annotated[float, Field(ge=0, le=60)] = 1.0


class DashboardConfig(_Strict):
    host: str = "127.0.0.1"
    port: Annotated[int, Field(strict=True, ge=1, le=65535)] = 8780
    # Host header names it answers (DNS rebinding); empty: see worker.dashboard.allowed_hosts
    allowed_hosts: list[Annotated[str, Field(min_length=1)]] = []
    token_env: EnvName | None = None
    username: str | None = None
    password_env: EnvName | None = None
    # a draft's page in Kukkingu's web app: {invoice_id} and/or {invoice_number} filled in
    invoice_url: str | None = None

    @field_validator("invoice_url")
    @classmethod
    def _invoice_url(cls, value: str | None) -> str | None:
        if value is None:
            return None
        if not re.fullmatch(r"https?://[^\s/]+(/\S*)?", value):
            raise ValueError(f"{value!r} is not an http(s) URL")
        fields = set(re.findall(r"\{([^{}]*)\}", value))
        if not fields or fields - {"invoice_id", "invoice_number"}:
            raise ValueError("must contain {invoice_id} or {invoice_number}, and no other {field}")
        return value


class FileConfig(_Strict):
    """The TOML file, as written."""

    env_file: str | None = None
    state: StateConfig = StateConfig()
    broker: BrokerConfig = BrokerConfig()
    billing: BillingConfig = BillingConfig()
    kukkingu: KukkinguConfig
    sources: list[SourceConfig] = []
    rules: list[RuleConfig] = []
    cliniko: ClinikoConfig | None = None
    webhooks: WebhooksConfig = WebhooksConfig()
    dashboard: DashboardConfig = DashboardConfig()


@dataclass(frozen=True)
class Problem:
    """One thing wrong with the configuration, located by its key path."""

    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message}" if self.path else self.message


class ConfigError(ConfigurationError):
    """The configuration cannot be used; ``problems`` lists every reason."""

    def __init__(self, source: str, problems: Sequence[Problem]) -> None:
        self.source = source
        self.problems = tuple(problems)
        lines = "\n".join(f"  - {p}" for p in self.problems)
        super().__init__(f"{source}: {len(self.problems)} problem(s)\n{lines}")


@dataclass(frozen=True)
class Settings:
    """The validated configuration plus its resolved secrets: loaded once, then passed in."""

    file: FileConfig
    path: Path | None
    secrets: Mapping[str, SecretStr]
    state_url: str
    broker_url: str

    def secret(self, env_name: str) -> SecretStr:
        return self.secrets[env_name]

    @property
    def timezone(self) -> ZoneInfo:
        return ZoneInfo(self.file.billing.timezone)

    def source(self, name: str) -> JiraSourceConfig | GitHubSourceConfig:
        for source in self.file.sources:
            if source.name == name:
                return source
        raise KeyError(name)


def _key_path(loc: Sequence[int | str], tagged_unions: frozenset[str]) -> str:
    path = ""
    for index, part in enumerate(loc):
        if isinstance(part, int):
            path += f"[{part}]"
        elif index > 0 and part in tagged_unions and isinstance(loc[index - 1], int):
            continue  # pydantic adds the discriminator's tag to the location: not a key
        else:
            path += f".{part}" if path else part
    return path


def _validation_problems(exc: ValidationError) -> list[Problem]:
    problems = []
    for error in exc.errors(include_url=False, include_input=False):
        message = error["msg"]
        if error["type"] == "extra_forbidden":
            message = "unknown key (see the README's Configuration section for the keys)"
            key = error["loc"][-1] if error["loc"] else ""
            if key in INLINE_SECRETS:
                message = (
                    "a secret does not belong in the config file: put it in an environment "
                    f"variable and name it with `{key}_env`"
                )
        elif error["type"] == "missing":
            message = "required key is missing"
        elif error["type"] == "string_pattern_mismatch":
            key = next((p for p in reversed(error["loc"]) if isinstance(p, str)), "")
            if key.endswith("_env"):
                message = "must be an environment variable name (A-Z, 0-9, _), not a value"
            else:
                message = PATTERN_MEANING.get(key, message)
        message = message.removeprefix("Value error, ")
        problems.append(Problem(_key_path(error["loc"], frozenset({"jira", "github"})), message))
    return problems


# each is named by a `<key>_env`
INLINE_SECRETS = frozenset(
    {"token", "password", "email", "api_key", "github_secret", "jira_secret"}
)


def _raw_rule_problems(data: Mapping[str, Any]) -> list[Problem]:
    """The cross-key checks that need no valid model (rules naming unknown sources), so one
    pass reports them beside the keys that failed validation."""
    sources = data.get("sources")
    rules = data.get("rules")
    if not isinstance(sources, list) or not isinstance(rules, list):
        return []
    names = sorted({str(s["name"]) for s in sources if isinstance(s, dict) and "name" in s})
    problems = []
    for index, rule in enumerate(rules):
        if isinstance(rule, dict) and "source" in rule and str(rule["source"]) not in names:
            known = ", ".join(names) or "none configured"
            problems.append(
                Problem(
                    f"rules[{index}].source",
                    f"no source named {str(rule['source'])!r} (known: {known})",
                )
            )
    return problems


def _template_problems(index: int, rule: RuleConfig, rules: Sequence[RuleConfig]) -> list[Problem]:
    path = f"rules[{index}].invoice_number"
    names = set(re.findall(r"\{([^{}]*)\}", rule.invoice_number))
    problems = [
        Problem(path, f"unknown placeholder {{{name}}} (allowed: contract, currency, period, seq)")
        for name in sorted(names - TEMPLATE_FIELDS)
    ]
    required = {"contract", "seq"} | ({"period"} if rule.period != "none" else set())
    if any(r.contract_id == rule.contract_id and r.currency != rule.currency for r in rules):
        required.add("currency")  # the same contract bills in two currencies: numbers must differ
    problems += [
        Problem(path, f"must contain {{{name}}} so that every draft gets a unique invoice number")
        for name in sorted(required - names)
    ]
    return problems


def _rate_problems(index: int, rule: RuleConfig, config: FileConfig) -> list[Problem]:
    where = f"rules[{index}]"
    if rule.hourly_rate_minor is None and rule.rate_item is None:
        return [Problem(where, "give the rule's rate: `hourly_rate_minor` or `rate_item`")]
    if rule.hourly_rate_minor is not None and rule.rate_item is not None:
        return [
            Problem(
                where, "give `hourly_rate_minor` or `rate_item`, not both (which rate applies?)"
            )
        ]
    if rule.item_codes() and config.cliniko is None:
        return [
            Problem(
                where,
                "takes a rate from a price list item: configure the [cliniko] section",
            )
        ]
    return []


def _semantic_problems(config: FileConfig) -> list[Problem]:
    """Checks that span keys: names that must exist, be unique, or agree with each other."""
    problems: list[Problem] = []
    seen: dict[str, int] = {}
    for index, source in enumerate(config.sources):
        if source.name in seen:
            problems.append(
                Problem(
                    f"sources[{index}].name",
                    f"duplicate source name {source.name!r} (also sources[{seen[source.name]}])",
                )
            )
        seen.setdefault(source.name, index)
        if isinstance(source, JiraSourceConfig) and source.auth == "cloud" and not source.email_env:
            problems.append(
                Problem(
                    f"sources[{index}].email_env",
                    "Jira Cloud authenticates with email + API token: name the email's variable",
                )
            )
    kinds = {source.name: source.kind for source in config.sources}
    duplicated = {name for name in seen if sum(s.name == name for s in config.sources) > 1}
    for index, rule in enumerate(config.rules):
        where = f"rules[{index}]"
        kind = kinds.get(rule.source)
        if rule.source in duplicated:
            pass  # which source it means is unclear: the duplicate name is the one problem
        elif kind is None:
            known = ", ".join(sorted(kinds)) or "none configured"
            problems.append(
                Problem(f"{where}.source", f"no source named {rule.source!r} (known: {known})")
            )
        elif kind == "jira":
            if rule.repos:
                problems.append(Problem(f"{where}.repos", "repos apply to GitHub sources only"))
            if not rule.projects and rule.jql is None:
                problems.append(
                    Problem(
                        where, "a Jira rule needs `projects` or `jql` to say which work it takes"
                    )
                )
        else:
            if rule.projects or rule.jql is not None:
                problems.append(
                    Problem(where, "`projects` and `jql` apply to Jira sources only; use `repos`")
                )
            if not rule.repos:
                problems.append(Problem(f"{where}.repos", "a GitHub rule needs at least one repo"))
        problems += _rate_problems(index, rule, config)
        problems += _template_problems(index, rule, config.rules)
    broker = config.broker
    if broker.visibility_timeout_seconds <= broker.task_time_limit_seconds:
        problems.append(
            Problem(
                "broker.visibility_timeout_seconds",
                "must be above broker.task_time_limit_seconds, or a long sync is delivered twice",
            )
        )
    dashboard = config.dashboard
    if dashboard.password_env and not dashboard.username:
        problems.append(Problem("dashboard.username", "required when password_env is set"))
    if dashboard.username and not dashboard.password_env:
        problems.append(Problem("dashboard.password_env", "required when username is set"))
    return problems


def _resolve_path(value: str, base_dir: Path | None) -> Path:
    """A path from the file: relative ones are relative to the config file's directory."""
    path = Path(value)
    if not path.is_absolute() and base_dir is not None:
        path = base_dir / path
    return Path(os.path.abspath(path))


def _ca_bundle_problem(path: Path) -> str | None:
    """Why ``path`` cannot serve as a CA bundle, or None (it loads as the clients load it)."""
    shown = repr(str(path))
    if not path.exists():
        return f"file {shown} does not exist"
    if path.is_dir():
        return f"{shown} is a directory, not a PEM file of CA certificates"
    try:
        text = path.read_bytes()
    except OSError as exc:
        return f"cannot read {shown}: {exc.strerror}"
    if b"-----BEGIN CERTIFICATE-----" not in text:
        return f"{shown} holds no PEM certificate (-----BEGIN CERTIFICATE-----)"
    try:
        ssl.create_default_context(cafile=str(path))
    except (ssl.SSLError, OSError) as exc:
        return f"{shown} is not a usable PEM file of CA certificates: {exc}"
    return None


def _ca_bundles(data: Mapping[str, Any]) -> list[tuple[str, str]]:
    """Every (key path, value) ``ca_bundle`` in the raw TOML data that is a non-empty string
    (anything else is the model's to report)."""
    found = []
    for section in ("kukkingu", "cliniko"):
        table = data.get(section)
        if isinstance(table, dict):
            found.append((f"{section}.ca_bundle", table.get("ca_bundle")))
    sources = data.get("sources")
    if isinstance(sources, list):
        found += [
            (f"sources[{index}].ca_bundle", source.get("ca_bundle"))
            for index, source in enumerate(sources)
            if isinstance(source, dict)
        ]
    return [(path, value) for path, value in found if isinstance(value, str) and value]


def _ca_bundle_problems(data: Mapping[str, Any], base_dir: Path | None) -> list[Problem]:
    """The ca_bundle files that cannot be used, from the raw data: so one pass reports them
    beside the keys that failed validation."""
    problems = []
    for path, value in _ca_bundles(data):
        problem = _ca_bundle_problem(_resolve_path(value, base_dir))
        if problem is not None:
            problems.append(Problem(path, problem))
    return problems


def _with_resolved_ca_bundles(config: FileConfig, base_dir: Path | None) -> FileConfig:
    """``config`` with every ``ca_bundle`` an absolute path (the clients' working directory
    is not the config file's)."""

    def resolved(value: str | None) -> str | None:
        return str(_resolve_path(value, base_dir)) if value else None

    kukkingu = config.kukkingu.model_copy(update={"ca_bundle": resolved(config.kukkingu.ca_bundle)})
    sources = [s.model_copy(update={"ca_bundle": resolved(s.ca_bundle)}) for s in config.sources]
    cliniko = config.cliniko
    if cliniko is not None:
        cliniko = cliniko.model_copy(update={"ca_bundle": resolved(cliniko.ca_bundle)})
    return config.model_copy(update={"kukkingu": kukkingu, "sources": sources, "cliniko": cliniko})


MIN_DASHBOARD_PASSWORD = 12  # characters of a basic-auth password
MIN_WEBHOOK_SECRET = 16  # characters of a webhook secret


def _secret_names(config: FileConfig) -> list[tuple[str, str]]:
    """Every (key path, environment variable) pair the config refers to."""
    names = [("kukkingu.token_env", config.kukkingu.token_env)]
    for key, section in (("state", config.state), ("broker", config.broker)):
        if section.url_env:
            names.append((f"{key}.url_env", section.url_env))
    for index, source in enumerate(config.sources):
        names.append((f"sources[{index}].token_env", source.token_env))
        if isinstance(source, JiraSourceConfig) and source.email_env:
            names.append((f"sources[{index}].email_env", source.email_env))
    if config.cliniko is not None:
        names.append(("cliniko.api_key_env", config.cliniko.api_key_env))
    for key in ("github_secret_env", "jira_secret_env"):
        value = getattr(config.webhooks, key)
        if value:
            names.append((f"webhooks.{key}", value))
    for key in ("token_env", "password_env"):
        value = getattr(config.dashboard, key)
        if value:
            names.append((f"dashboard.{key}", value))
    return names


def _resolve_secrets(
    config: FileConfig, environ: Mapping[str, str]
) -> tuple[dict[str, SecretStr], list[Problem]]:
    secrets: dict[str, SecretStr] = {}
    problems = []
    for path, name in _secret_names(config):
        value = environ.get(name)
        if value is None:
            problems.append(Problem(path, f"environment variable {name} is not set"))
        elif value.strip().lower() in PLACEHOLDER_SECRETS:
            problems.append(
                Problem(path, f"environment variable {name} holds an empty or placeholder value")
            )
        elif path.startswith("webhooks.") and len(value) < MIN_WEBHOOK_SECRET:
            problems.append(
                Problem(
                    path,
                    f"the secret in {name} is shorter than {MIN_WEBHOOK_SECRET} characters "
                    "(anyone who guesses it can make billsync sync: use a long random one)",
                )
            )
        elif path == "dashboard.password_env" and len(value) < MIN_DASHBOARD_PASSWORD:
            problems.append(
                Problem(
                    path,
                    f"the password in {name} is shorter than {MIN_DASHBOARD_PASSWORD} characters "
                    "(the dashboard bills clients: use a long random one, or a token_env)",
                )
            )
        else:
            secrets[name] = SecretStr(value)
    return secrets, problems


def config_path(explicit: str | os.PathLike[str] | None, environ: Mapping[str, str]) -> Path:
    """The config file to use: ``--config``, else ``$BILLSYNC_CONFIG``, else an error."""
    chosen = explicit or environ.get(CONFIG_ENV_VAR)
    if not chosen:
        raise ConfigError(
            "configuration",
            [Problem("", f"no config file: pass --config FILE or set {CONFIG_ENV_VAR}")],
        )
    return Path(chosen)


def parse_config(
    data: Mapping[str, Any],
    *,
    source: str = "configuration",
    base_dir: Path | None = None,
    environ: Mapping[str, str] | None = None,
) -> Settings:
    """Validate already-parsed TOML data and resolve its secrets."""
    environ = dict(os.environ if environ is None else environ)
    try:
        config = FileConfig.model_validate(data)
    except ValidationError as exc:
        problems = _validation_problems(exc)
        problems += [p for p in _raw_rule_problems(data) if p not in problems]
        problems += _ca_bundle_problems(data, base_dir)
        raise ConfigError(source, problems) from None
    problems = _semantic_problems(config)
    problems += _ca_bundle_problems(data, base_dir)
    config = _with_resolved_ca_bundles(config, base_dir)
    if config.env_file:
        env_path = Path(config.env_file)
        if not env_path.is_absolute() and base_dir is not None:
            env_path = base_dir / env_path
        if env_path.is_file():
            # The real environment wins over the file, as with docker compose's env_file.
            file_values = {k: v for k, v in dotenv_values(env_path).items() if v is not None}
            environ = {**file_values, **environ}
        else:
            problems.append(Problem("env_file", f"file {str(env_path)!r} does not exist"))
    secrets, secret_problems = _resolve_secrets(config, environ)
    problems += secret_problems
    if problems:
        raise ConfigError(source, problems)
    state_url = secrets[config.state.url_env].get_secret_value() if config.state.url_env else ""
    broker_url = secrets[config.broker.url_env].get_secret_value() if config.broker.url_env else ""
    return Settings(
        file=config,
        path=None,
        secrets=secrets,
        state_url=state_url or config.state.url,
        broker_url=broker_url or config.broker.url,
    )


def load_config(
    path: str | os.PathLike[str] | None = None, *, environ: Mapping[str, str] | None = None
) -> Settings:
    """Read, validate and resolve the configuration file (see the module docstring)."""
    env = os.environ if environ is None else environ
    file = config_path(path, env)
    try:
        text = file.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(
            str(file), [Problem("", f"cannot read the file: {exc.strerror}")]
        ) from None
    except UnicodeDecodeError:
        raise ConfigError(str(file), [Problem("", "the file is not valid UTF-8")]) from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(str(file), [Problem("", f"not valid TOML: {exc}")]) from None
    settings = parse_config(data, source=str(file), base_dir=file.parent, environ=env)
    return Settings(
        file=settings.file,
        path=file,
        secrets=settings.secrets,
        state_url=settings.state_url,
        broker_url=settings.broker_url,
    )
