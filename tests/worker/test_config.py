"""Configuration: every problem is reported with its key path, secrets come from the env."""

import re
import tomllib
import typing
from pathlib import Path
from typing import Any

import pytest
import trustme
from pydantic import BaseModel

from worker.config import (
    ConfigError,
    FileConfig,
    GitHubSourceConfig,
    JiraSourceConfig,
    load_config,
    parse_config,
)

TENANT = "tnt_" + "a" * 24
CONTRACT = "ctr_" + "b" * 24
ENV = {"KK_TOKEN": "kk-secret-value", "JIRA_EMAIL": "me@example.com", "JIRA_TOKEN": "jt-secret"}


def minimal() -> dict[str, Any]:
    return {
        "kukkingu": {
            "base_url": "http://127.0.0.1:8730",
            "tenant_id": TENANT,
            "token_env": "KK_TOKEN",
        },
        "sources": [
            {
                "name": "jira-main",
                "kind": "jira",
                "url": "http://127.0.0.1:8731",
                "email_env": "JIRA_EMAIL",
                "token_env": "JIRA_TOKEN",
            }
        ],
        "rules": [
            {
                "source": "jira-main",
                "projects": ["PROJ"],
                "contract_id": CONTRACT,
                "currency": "EUR",
                "hourly_rate_minor": 12000,
            }
        ],
    }


def problems(data: dict[str, Any], environ: dict[str, str] | None = None) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        parse_config(data, environ=ENV if environ is None else environ)
    return [str(p) for p in caught.value.problems]


def test_minimal_config_loads_with_defaults() -> None:
    settings = parse_config(minimal(), environ=ENV)
    rule = settings.file.rules[0]
    assert (rule.grouping, rule.period, rule.rounding.mode, rule.rounding.scope) == (
        "issue",
        "monthly",
        "up",
        "entry",
    )
    assert settings.state_url == "sqlite:///billsync.db"
    assert settings.secret("KK_TOKEN").get_secret_value() == "kk-secret-value"
    assert settings.file.billing.timezone == "UTC"


def test_secrets_never_print() -> None:
    settings = parse_config(minimal(), environ=ENV)
    assert "kk-secret-value" not in repr(settings)
    assert "kk-secret-value" not in str(settings.secrets)


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (
            lambda d: d["kukkingu"].update(tenant_id="tenant-1"),
            "kukkingu.tenant_id: must be a Kukkingu tenant id",
        ),
        (lambda d: d["kukkingu"].update(tokn_env="X"), "kukkingu.tokn_env: unknown key"),
        (lambda d: d["kukkingu"].pop("token_env"), "kukkingu.token_env: required key is missing"),
        (
            lambda d: d["kukkingu"].update(token_env="kk-secret-value"),
            "kukkingu.token_env: must be an environment variable name",
        ),
        (
            lambda d: d.update(billing={"timezone": "Mars/Olympus"}),
            "billing.timezone: unknown IANA time zone 'Mars/Olympus'",
        ),
        (
            lambda d: d["sources"][0].update(schedule="61 * * * *"),
            "sources[0].schedule: invalid crontab '61 * * * *'",
        ),
        (
            lambda d: d["sources"][0].update(schedule="* * *"),
            "sources[0].schedule: crontab '* * *' must have 5 fields",
        ),
        (
            lambda d: d["sources"][0].update(kind="gitlab"),
            "sources[0]: Input tag 'gitlab' found using 'kind' does not match",
        ),
        (
            lambda d: d["sources"][0].update(overlap_seconds=30),
            "sources[0].overlap_seconds: Input should be greater than or equal to 60",
        ),
        (
            lambda d: d["sources"][0].pop("email_env"),
            "sources[0].email_env: Jira Cloud authenticates with email + API token",
        ),
        (
            lambda d: d["sources"].append(dict(d["sources"][0])),
            "sources[1].name: duplicate source name 'jira-main' (also sources[0])",
        ),
        (
            lambda d: d["rules"][0].update(currency="EURO"),
            "rules[0].currency: 'EURO' is not an active ISO 4217 currency code",
        ),
        (
            lambda d: d["rules"][0].update(currency="XYZ"),
            "rules[0].currency: 'XYZ' is not an active ISO 4217",
        ),
        (
            lambda d: d["rules"][0].update(hourly_rate_minor=-5),
            "rules[0].hourly_rate_minor: Input should be greater than or equal to 0",
        ),
        (
            lambda d: d["rules"][0].update(hourly_rate_minor="120"),
            "rules[0].hourly_rate_minor: Input should be a valid integer",
        ),
        (
            lambda d: d["rules"][0].update(exchange_rate=-1),
            "rules[0].exchange_rate: Input should be greater than or equal to 0",
        ),
        (
            lambda d: d["rules"][0].update(rounding={"mode": "sideways"}),
            "rules[0].rounding.mode: Input should be 'up', 'nearest' or 'down'",
        ),
        (
            lambda d: d["rules"][0].update(rounding={"increment_minutes": -15}),
            "rules[0].rounding.increment_minutes: Input should be greater than or equal to 0",
        ),
        (
            lambda d: d["rules"][0].update(grouping="day"),
            "rules[0].grouping: Input should be 'issue' or 'entry'",
        ),
        (
            lambda d: d["rules"][0].update(period="yearly"),
            "rules[0].period: Input should be 'monthly', 'weekly' or 'none'",
        ),
        (
            lambda d: d["rules"][0].update(source="jira-other"),
            "rules[0].source: no source named 'jira-other' (known: jira-main)",
        ),
        (
            lambda d: d["rules"][0].update(projects=[]),
            "rules[0]: a Jira rule needs `projects` or `jql`",
        ),
        (
            lambda d: d["rules"][0].update(projects=["proj"]),
            "rules[0].projects[0]: must be a Jira project key",
        ),
        (
            lambda d: d["rules"][0].update(repos=["o/r"]),
            "rules[0].repos: repos apply to GitHub sources only",
        ),
        (
            lambda d: d["rules"][0].update(contract_id="ctr_1"),
            "rules[0].contract_id: must be a Kukkingu contract id",
        ),
        (
            lambda d: d["rules"][0].update(invoice_number="INV-{seq}"),
            "rules[0].invoice_number: must contain {contract}",
        ),
        (
            lambda d: d["rules"][0].update(invoice_number="{contract}-{seq}"),
            "rules[0].invoice_number: must contain {period}",
        ),
        (
            lambda d: d["rules"][0].update(invoice_number="{contract}-{period}-{seq}-{client}"),
            "rules[0].invoice_number: unknown placeholder {client}",
        ),
        (
            lambda d: d["rules"].append({**d["rules"][0], "currency": "USD"}),
            "rules[0].invoice_number: must contain {currency}",
        ),
        (
            lambda d: d.update(
                broker={"visibility_timeout_seconds": 600, "task_time_limit_seconds": 900}
            ),
            "broker.visibility_timeout_seconds: must be above broker.task_time_limit_seconds",
        ),
        (
            lambda d: d.update(dashboard={"username": "ops"}),
            "dashboard.password_env: required when username is set",
        ),
        (
            lambda d: d.update(env_file="does-not-exist.env"),
            "env_file: file 'does-not-exist.env' does not exist",
        ),
    ],
)
def test_each_problem_names_its_key(change, expected: str) -> None:
    data = minimal()
    change(data)
    found = problems(data)
    assert any(p.startswith(expected) for p in found), found


def test_github_rule_needs_repos_not_projects() -> None:
    data = minimal()
    data["sources"].append({"name": "gh", "kind": "github", "token_env": "GH_TOKEN"})
    data["rules"].append(
        {
            "source": "gh",
            "projects": ["X"],
            "contract_id": CONTRACT,
            "currency": "EUR",
            "hourly_rate_minor": 1,
        }
    )
    found = problems(data, {**ENV, "GH_TOKEN": "ghp_x"})
    assert "rules[1]: `projects` and `jql` apply to Jira sources only; use `repos`" in found
    assert "rules[1].repos: a GitHub rule needs at least one repo" in found


def test_missing_and_placeholder_secrets_are_reported_together() -> None:
    found = problems(minimal(), {"KK_TOKEN": "changeme", "JIRA_EMAIL": "me@example.com"})
    assert found == [
        "kukkingu.token_env: environment variable KK_TOKEN holds an empty or placeholder value",
        "sources[0].token_env: environment variable JIRA_TOKEN is not set",
    ]


def test_every_problem_is_reported_at_once() -> None:
    data = minimal()
    data["kukkingu"]["tenant_id"] = "x"
    data["rules"][0]["currency"] = "EURO"
    data["rules"][0]["rounding"] = {"scope": "invoice"}
    assert len(problems(data)) == 3


def test_state_url_from_env_wins(tmp_path: Path) -> None:
    data = minimal()
    data["state"] = {"url_env": "STATE_URL"}
    settings = parse_config(data, environ={**ENV, "STATE_URL": "postgresql+psycopg://u:pw@db/b"})
    assert settings.state_url == "postgresql+psycopg://u:pw@db/b"


def test_env_file_fills_missing_secrets_and_real_env_wins(tmp_path: Path) -> None:
    (tmp_path / "secrets.env").write_text("KK_TOKEN=from-file\nJIRA_TOKEN=jira-from-file\n")
    (tmp_path / "billsync.toml").write_text(
        'env_file = "secrets.env"\n'
        "[kukkingu]\n"
        f'base_url = "http://127.0.0.1:8730"\ntenant_id = "{TENANT}"\ntoken_env = "KK_TOKEN"\n'
    )
    settings = load_config(tmp_path / "billsync.toml", environ={"KK_TOKEN": "from-env"})
    assert settings.secret("KK_TOKEN").get_secret_value() == "from-env"
    assert settings.path == tmp_path / "billsync.toml"


# --- ca_bundle: a PEM file of CAs to trust, on [kukkingu] and on each source ---------------


@pytest.fixture(scope="module")
def ca_pem(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("ca") / "private-ca.pem"
    trustme.CA().cert_pem.write_to_path(str(path))
    return path


def with_github(data: dict[str, Any]) -> dict[str, Any]:
    data["sources"].append({"name": "gh", "kind": "github", "token_env": "JIRA_TOKEN"})
    return data


def test_ca_bundles_are_optional_and_resolved_from_the_config_file(tmp_path: Path) -> None:
    assert parse_config(minimal(), environ=ENV).file.kukkingu.ca_bundle is None
    (tmp_path / "tls").mkdir()
    trustme.CA().cert_pem.write_to_path(str(tmp_path / "tls" / "ca.pem"))
    path = tmp_path / "billsync.toml"
    path.write_text(
        "[kukkingu]\n"
        f'base_url = "https://kukkingu.internal"\ntenant_id = "{TENANT}"\ntoken_env = "KK_TOKEN"\n'
        'ca_bundle = "tls/ca.pem"\n'
        "[[sources]]\n"
        'name = "gh"\nkind = "github"\nurl = "https://ghe.internal/api/v3"\n'
        'token_env = "KK_TOKEN"\nca_bundle = "tls/ca.pem"\n'
    )
    settings = load_config(path, environ={"KK_TOKEN": "kk-secret-value"})
    expected = str(tmp_path / "tls" / "ca.pem")  # relative to the file, not the working dir
    assert settings.file.kukkingu.ca_bundle == expected
    assert settings.file.sources[0].ca_bundle == expected


def test_ca_bundles_on_every_section(ca_pem: Path) -> None:
    data = with_github(minimal())
    data["kukkingu"]["ca_bundle"] = str(ca_pem)
    for source in data["sources"]:
        source["ca_bundle"] = str(ca_pem)
    settings = parse_config(data, environ=ENV)
    assert settings.file.kukkingu.ca_bundle == str(ca_pem)
    assert [s.ca_bundle for s in settings.file.sources] == [str(ca_pem), str(ca_pem)]


def _key_only(path: Path) -> None:
    trustme.CA().private_key_pem.write_to_path(str(path))


def _broken_certificate(path: Path) -> None:
    path.write_text("-----BEGIN CERTIFICATE-----\nnot base64!\n-----END CERTIFICATE-----\n")


@pytest.mark.parametrize(
    ("make", "problem"),
    [
        (None, "file {path!r} does not exist"),
        (Path.mkdir, "{path!r} is a directory, not a PEM file of CA certificates"),
        (
            lambda p: p.write_text("just some text\n"),
            "{path!r} holds no PEM certificate (-----BEGIN CERTIFICATE-----)",
        ),
        (_key_only, "{path!r} holds no PEM certificate"),
        (_broken_certificate, "{path!r} is not a usable PEM file of CA certificates"),
    ],
    ids=["missing", "directory", "not-pem", "key-only", "broken"],
)
@pytest.mark.parametrize(
    "key", ["kukkingu.ca_bundle", "sources[0].ca_bundle", "sources[1].ca_bundle"]
)
def test_an_unusable_ca_bundle_names_the_key_and_the_path(
    tmp_path: Path, make: Any, problem: str, key: str
) -> None:
    path = tmp_path / "ca.pem"
    if make is not None:
        make(path)
    data = with_github(minimal())
    section = data["kukkingu"] if key.startswith("kukkingu") else data["sources"][int(key[8])]
    section["ca_bundle"] = str(path)
    found = problems(data)
    assert len(found) == 1, found
    assert found[0].startswith(f"{key}: " + problem.format(path=str(path))), found


def test_an_unusable_ca_bundle_is_reported_with_every_other_problem(tmp_path: Path) -> None:
    data = minimal()
    data["kukkingu"]["ca_bundle"] = "missing-ca.pem"
    data["sources"][0]["ca_bundle"] = str(tmp_path)  # a directory
    semantic = problems(data, {"JIRA_EMAIL": "me@example.com", "JIRA_TOKEN": "jt"})
    assert semantic == [
        f"kukkingu.ca_bundle: file {str(Path('missing-ca.pem').absolute())!r} does not exist",
        f"sources[0].ca_bundle: {str(tmp_path)!r} is a directory, not a PEM file of CA "
        "certificates",
        "kukkingu.token_env: environment variable KK_TOKEN is not set",
    ]
    data["kukkingu"]["tenant_id"] = "tenant-1"  # a key the model refuses: the same pass
    invalid = problems(data)
    assert invalid[0].startswith("kukkingu.tenant_id: must be a Kukkingu tenant id")
    assert invalid[1:] == semantic[:2]


def test_an_empty_or_mistyped_ca_bundle_is_refused() -> None:
    data = minimal()
    data["kukkingu"]["ca_bundle"] = ""
    data["sources"][0]["ca_bundle"] = True
    found = problems(data)
    assert any(p.startswith("kukkingu.ca_bundle: String should have at least 1") for p in found)
    assert any(p.startswith("sources[0].ca_bundle: Input should be a valid string") for p in found)


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (b"[kukkingu\n", "not valid TOML"),
        (b"\xff\xfe broken", "not valid UTF-8"),
        (b"", "kukkingu: required key is missing"),
    ],
)
def test_unreadable_files(tmp_path: Path, content: bytes, expected: str) -> None:
    path = tmp_path / "billsync.toml"
    path.write_bytes(content)
    with pytest.raises(ConfigError) as caught:
        load_config(path, environ={})
    assert expected in str(caught.value)
    assert str(path) in str(caught.value)


def test_no_config_path_says_how_to_give_one() -> None:
    with pytest.raises(ConfigError, match="pass --config FILE or set BILLSYNC_CONFIG"):
        load_config(None, environ={})


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read the file"):
        load_config(tmp_path / "nope.toml", environ={})


ROOT = Path(__file__).resolve().parents[2]


def _keys(model: type[BaseModel]) -> set[str]:
    """Every key name a config model accepts, recursively."""
    names: set[str] = set()
    for name, field in model.model_fields.items():
        names.add(name)
        for arg in typing.get_args(field.annotation) or (field.annotation,):
            for inner in typing.get_args(arg) or (arg,):
                if isinstance(inner, type) and issubclass(inner, BaseModel):
                    names |= _keys(inner)
    return names


ALL_KEYS = _keys(FileConfig) | _keys(JiraSourceConfig) | _keys(GitHubSourceConfig)


@pytest.mark.parametrize("key", sorted(ALL_KEYS))
def test_every_key_is_documented_in_the_readme(key: str) -> None:
    readme = (ROOT / "README.md").read_text()
    assert re.search(rf"`(\[\[|\[)?(\w+\.)?{key}(\]\]|\])?`", readme), f"README.md lacks {key!r}"


@pytest.mark.parametrize("key", sorted(ALL_KEYS - {"jql"}))
def test_every_key_appears_in_the_production_example(key: str) -> None:
    assert re.search(rf"^#?\s*{key} =|\[+\w*\.?{key}\]+", _production(), re.MULTILINE), key


def _production() -> str:
    return (ROOT / "examples" / "production.toml").read_text()


def test_production_example_is_valid() -> None:
    names = set(re.findall(r'_env = "([A-Z0-9_]+)"', _production()))
    environ = {name: f"value-of-{name.lower()}" for name in names}
    settings = parse_config(tomllib.loads(_production()), environ=environ)
    assert settings.state_url == "value-of-billsync_state_url"
    assert len(settings.file.sources) == 2


@pytest.mark.parametrize(("password", "refused"), [("short-pw-11", True), ("long-enough1", False)])
def test_a_dashboard_password_under_12_characters_is_refused(password: str, refused: bool) -> None:
    data = minimal()
    data["dashboard"] = {"username": "ops", "password_env": "DASH_PW"}
    environ = {**ENV, "DASH_PW": password}
    if not refused:
        assert parse_config(data, environ=environ).secret("DASH_PW").get_secret_value() == password
        return
    found = problems(data, environ)
    message = "dashboard.password_env: the password in DASH_PW is shorter than 12 characters"
    assert any(p.startswith(message) for p in found), found
    assert not any(password in p for p in found)  # the password itself is never shown


CLINIKO = {
    "base_url": "https://api.au1.cliniko.com/v1",
    "api_key_env": "CLINIKO_KEY",
    "user_agent": "billsync (billing@example.com)",
}


def priced_by_item(**rule: Any) -> dict[str, Any]:
    data = minimal()
    del data["rules"][0]["hourly_rate_minor"]
    data["rules"][0].update(rule)
    data["cliniko"] = dict(CLINIKO)
    return data


def test_a_rule_may_take_its_rate_from_a_price_list_item() -> None:
    data = priced_by_item(rate_item="CONSULT-60", person_rates={"alice": "REVIEW-30", "bob": 9000})
    settings = parse_config(data, environ={**ENV, "CLINIKO_KEY": "key-au1"})
    rule = settings.file.rules[0]
    assert (rule.hourly_rate_minor, rule.rate_item) == (None, "CONSULT-60")
    assert rule.item_codes() == ["CONSULT-60", "REVIEW-30"]
    assert rule.person_rates == {"alice": "REVIEW-30", "bob": 9000}
    assert settings.secret("CLINIKO_KEY").get_secret_value() == "key-au1"


@pytest.mark.parametrize(
    ("rule", "expected"),
    [
        ({}, "rules[0]: give the rule's rate: `hourly_rate_minor` or `rate_item`"),
        (
            {"hourly_rate_minor": 100, "rate_item": "X"},
            "rules[0]: give `hourly_rate_minor` or `rate_item`, not both",
        ),
        ({"rate_item": "X" * 101}, "rules[0].rate_item: String should have at most 100"),
        ({"rate_item": ""}, "rules[0].rate_item: String should have at least 1 character"),
        (
            {"rate_item": "X", "person_rates": {"a": -1, "b": 1.5}},
            "rules[0].person_rates: each rate must be an amount in minor units (an integer from "
            "0) or a price list item code (1-100 characters); not 'a': -1, 'b': 1.5",
        ),
    ],
)
def test_a_rule_has_exactly_one_rate(rule: dict[str, Any], expected: str) -> None:
    found = problems(priced_by_item(**rule), {**ENV, "CLINIKO_KEY": "key-au1"})
    assert any(p.startswith(expected) for p in found), found


def test_an_item_rate_needs_the_cliniko_section() -> None:
    data = priced_by_item(hourly_rate_minor=100, person_rates={"alice": "REVIEW-30"})
    del data["cliniko"]
    assert problems(data) == [
        "rules[0]: takes a rate from a price list item: configure the [cliniko] section"
    ]


@pytest.mark.parametrize(
    ("user_agent", "refused"),
    [
        ("billsync", True),
        ("billsync (billing at example dot com)", True),
        ("billsync (billing@example.com)", False),
        ("Acme billing sync ops@acme.example", False),
    ],
)
def test_the_cliniko_user_agent_needs_a_contact_email(user_agent: str, refused: bool) -> None:
    data = priced_by_item(rate_item="CONSULT-60")
    data["cliniko"]["user_agent"] = user_agent
    environ = {**ENV, "CLINIKO_KEY": "key-au1"}
    if not refused:
        assert parse_config(data, environ=environ).file.cliniko is not None
        return
    assert problems(data, environ) == [
        "cliniko.user_agent: Cliniko requires an app name and a contact email in the "
        "User-Agent, e.g. 'billsync (billing@example.com)'"
    ]


def test_the_cliniko_key_comes_from_the_environment() -> None:
    data = priced_by_item(rate_item="CONSULT-60")
    data["cliniko"]["api_key"] = "key-au1"
    found = problems(data, {**ENV, "CLINIKO_KEY": "key-au1"})
    assert found == [
        "cliniko.api_key: a secret does not belong in the config file: put it in an "
        "environment variable and name it with `api_key_env`"
    ]
    assert problems(priced_by_item(rate_item="X")) == [
        "cliniko.api_key_env: environment variable CLINIKO_KEY is not set"
    ]


def test_webhook_secrets_come_from_the_environment_and_are_long() -> None:
    data = minimal()
    data["webhooks"] = {"github_secret_env": "GH_HOOK", "jira_secret_env": "JIRA_HOOK"}
    environ = {**ENV, "GH_HOOK": "a-long-random-secret-1", "JIRA_HOOK": "short-secret"}
    found = problems(data, environ)
    assert found == [
        "webhooks.jira_secret_env: the secret in JIRA_HOOK is shorter than 16 characters "
        "(anyone who guesses it can make billsync sync: use a long random one)"
    ]
    assert "short-secret" not in str(found)
    data["webhooks"] = {"github_secret": "inline-secret-value-1"}
    assert problems(data) == [
        "webhooks.github_secret: a secret does not belong in the config file: put it in an "
        "environment variable and name it with `github_secret_env`"
    ]
    data["webhooks"] = {"jira_secret_env": "JIRA_HOOK", "debounce_seconds": 61}
    found = problems(data, {**ENV, "JIRA_HOOK": "a-long-random-secret-2"})
    assert found == ["webhooks.debounce_seconds: Input should be less than or equal to 60"]
