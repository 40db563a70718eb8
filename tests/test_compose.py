"""The docker compose deployment, checked as data (there is no Docker engine in the tests).

docker-compose.yml, .env.example and config/billsync.example.toml must agree with each other
and with the click CLI: every billsync service runs a subcommand (and options) that exist,
the services start in order behind healthchecks, secrets appear only as ``${VAR}``
references that .env.example names, nothing listens beyond 127.0.0.1, beat is never
replicated, and the compose config validates. docs/deployment.md explains the why.
"""

from __future__ import annotations

import importlib
import importlib.util
import re
import string
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import click
import pytest
from dotenv import dotenv_values

from worker.cli import cli
from worker.config import ConfigError, parse_config

ROOT = Path(__file__).resolve().parent.parent
COMPOSE_FILE = ROOT / "docker-compose.yml"
ENV_EXAMPLE = ROOT / ".env.example"
COMPOSE_CONFIG = ROOT / "config" / "billsync.example.toml"

SERVICES = {"redis", "postgres", "migrate", "worker", "beat", "flower", "sandbox"}
BILLSYNC_SERVICES = ["migrate", "worker", "beat", "sandbox"]
# A ${VAR} or $VAR reference that compose interpolates; `$$` is an escaped, literal `$`.
VAR_REFERENCE = re.compile(r"(?<!\$)\$(?:\{([A-Za-z_][A-Za-z0-9_]*)|([A-Za-z_][A-Za-z0-9_]*))")
ONLY_A_REFERENCE = re.compile(r"^\$\{[A-Za-z_][A-Za-z0-9_]*(?:[:]?[-?+][^}]*)?\}$")
# The sandbox listens on every interface inside its container; compose publishes it on loopback.
ALL_INTERFACES = "0.0.0.0"  # noqa: S104
SECRET_NAME = re.compile(r"PASSWORD|TOKEN|SECRET|AUTH|KEY|_URL$")
CREDENTIALS_IN_URL = re.compile(r"://[^/\s@:]*:([^/\s@]+)@")


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    if importlib.util.find_spec("yaml") is None:
        pytest.fail(
            "PyYAML is not installed in the venv, so docker-compose.yml cannot be read: "
            "add `pyyaml` to pyproject's dev extras and run `make lock`",
            pytrace=False,
        )
    yaml = importlib.import_module("yaml")
    data = yaml.safe_load(COMPOSE_FILE.read_text(encoding="utf-8"))
    assert isinstance(data, dict)
    return data


@pytest.fixture(scope="module")
def services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    result = compose["services"]
    assert isinstance(result, dict)
    return result


def _env_example(*, interpolate: bool = False) -> dict[str, str]:
    values = dotenv_values(ENV_EXAMPLE, interpolate=interpolate)
    return {name: value or "" for name, value in values.items()}


def _strings(node: Any) -> Iterator[str]:
    """Every string value (and mapping key) in a parsed YAML document."""
    if isinstance(node, str):
        yield node
    elif isinstance(node, dict):
        for key, value in node.items():
            yield from _strings(key)
            yield from _strings(value)
    elif isinstance(node, list):
        for item in node:
            yield from _strings(item)


def _environment(service: dict[str, Any]) -> dict[str, str]:
    env = service.get("environment") or {}
    if isinstance(env, list):  # the `- NAME=value` form
        env = dict(item.split("=", 1) if "=" in item else (item, "") for item in env)
    return {str(k): "" if v is None else str(v) for k, v in env.items()}


def _depends_on(service: dict[str, Any]) -> dict[str, str]:
    depends = service.get("depends_on") or {}
    assert isinstance(depends, dict), "depends_on must use the long form, with a condition"
    return {name: spec["condition"] for name, spec in depends.items()}


def test_every_service_is_there(services: dict[str, dict[str, Any]]) -> None:
    assert set(services) >= SERVICES, f"missing: {sorted(SERVICES - set(services))}"


@pytest.mark.parametrize("name", BILLSYNC_SERVICES)
def test_billsync_services_share_one_image_env_and_config(
    services: dict[str, dict[str, Any]], name: str
) -> None:
    service = services[name]
    assert service["build"] == "."
    assert service["image"] == services["worker"]["image"]  # one image for every process
    env_file = service["env_file"]
    assert ".env" in ([env_file] if isinstance(env_file, str) else env_file)
    assert _environment(service)["BILLSYNC_CONFIG"] == "/config/billsync.toml"
    assert "./config:/config:ro" in service["volumes"]


@pytest.mark.parametrize("name", BILLSYNC_SERVICES)
def test_billsync_commands_exist_in_the_cli(services: dict[str, dict[str, Any]], name: str) -> None:
    args = [str(arg) for arg in services[name]["command"]]
    group: click.Group = cli
    parent = click.Context(cli, info_name="billsync")
    while True:
        word, args = args[0], args[1:]
        command = group.commands.get(word)
        assert command is not None, (
            f"service {name!r} runs `billsync {word}`, which does not exist "
            f"(known: {', '.join(sorted(group.commands))})"
        )
        if not isinstance(command, click.Group):
            break
        group, parent = command, click.Context(command, info_name=word, parent=parent)
    # Parsing (not invoking) rejects an option or argument the command does not take.
    command.make_context(word, args, parent=parent)


def test_migrate_runs_once_and_everything_waits_for_it(
    services: dict[str, dict[str, Any]],
) -> None:
    migrate = services["migrate"]
    assert [str(a) for a in migrate["command"]] == ["db", "upgrade"]
    assert migrate["restart"] == "no"
    assert _depends_on(migrate) == {"postgres": "service_healthy"}
    assert _depends_on(services["worker"]) == {
        "redis": "service_healthy",
        "postgres": "service_healthy",
        "migrate": "service_completed_successfully",
    }
    beat = _depends_on(services["beat"])
    assert beat["redis"] == "service_healthy"
    assert beat["migrate"] == "service_completed_successfully"


def test_a_healthy_condition_has_a_healthcheck_to_wait_for(
    services: dict[str, dict[str, Any]],
) -> None:
    for name, service in services.items():
        for dependency, condition in _depends_on(service).items():
            assert dependency in services, f"{name} depends on unknown service {dependency}"
            assert condition in {"service_healthy", "service_completed_successfully"}
            if condition == "service_healthy":
                assert "healthcheck" in services[dependency], f"{dependency} has no healthcheck"


@pytest.mark.parametrize(
    ("name", "probe"),
    [
        ("redis", "redis-cli ping"),
        ("postgres", "pg_isready"),
        ("worker", "inspect ping"),
    ],
)
def test_healthchecks(services: dict[str, dict[str, Any]], name: str, probe: str) -> None:
    test = services[name]["healthcheck"]["test"]
    assert test[0] in {"CMD", "CMD-SHELL"}
    assert probe in " ".join(test[1:])


def test_the_worker_healthcheck_names_the_celery_app(
    services: dict[str, dict[str, Any]],
) -> None:
    test = " ".join(services["worker"]["healthcheck"]["test"][1:])
    match = re.search(r"-A ([\w.]+):(\w+)", test)
    assert match, "the healthcheck must name the Celery app: celery -A module:attribute"
    # This container's node only (not any worker's pong): the name the worker command sets.
    command = [str(a) for a in services["worker"]["command"]]
    node = command[command.index("--name") + 1]
    assert node.endswith("@%h")
    assert f"-d {node.replace('%h', '$$HOSTNAME')} " in test
    # Importing the app does not read the config: the broker comes from the environment.
    assert 'CELERY_BROKER_URL="$$BILLSYNC_BROKER_URL"' in test
    app = getattr(importlib.import_module(match[1]), match[2])
    assert isinstance(app, importlib.import_module("celery").Celery)


def test_redis_persists_with_appendonly(services: dict[str, dict[str, Any]]) -> None:
    command = [str(a) for a in services["redis"]["command"]]
    assert command[command.index("--appendonly") + 1] == "yes"


def test_postgres_15_gets_its_password_from_env(services: dict[str, dict[str, Any]]) -> None:
    postgres = services["postgres"]
    assert postgres["image"].startswith("postgres:15")
    assert ONLY_A_REFERENCE.match(_environment(postgres)["POSTGRES_PASSWORD"])


def test_worker_runs_with_a_concurrency_and_can_be_scaled(
    services: dict[str, dict[str, Any]],
) -> None:
    worker = services["worker"]
    assert [str(a) for a in worker["command"]][:3] == ["worker", "--concurrency", "2"]
    # `docker compose up --scale worker=3` needs containers without fixed names or host ports.
    assert "container_name" not in worker
    assert "ports" not in worker


def test_beat_is_exactly_one(services: dict[str, dict[str, Any]]) -> None:
    beat = services["beat"]
    assert [str(a) for a in beat["command"]] == ["beat"]
    assert beat.get("deploy", {}).get("replicas", 1) == 1
    assert beat.get("scale", 1) == 1


def test_optional_services_are_behind_profiles(services: dict[str, dict[str, Any]]) -> None:
    assert services["flower"]["profiles"] == ["flower"]
    assert services["flower"]["image"].startswith("mher/flower")
    flower = " ".join(services["flower"]["command"])
    assert "--broker=" in flower
    assert "FLOWER_BASIC_AUTH" in _environment(services["flower"])
    assert services["sandbox"]["profiles"] == ["sandbox"]
    assert [str(a) for a in services["sandbox"]["command"]] == ["sandbox", "--host", ALL_INTERFACES]
    published = {str(port).rsplit(":", 1)[-1] for port in services["sandbox"]["ports"]}
    assert published == {"8730", "8731", "8732", "8733"}
    for name, service in services.items():
        if name not in {"flower", "sandbox"}:
            assert "profiles" not in service, f"{name} must start with a plain `up`"


def test_ports_are_published_on_loopback_only(services: dict[str, dict[str, Any]]) -> None:
    for name, service in services.items():
        for port in service.get("ports", []):
            if isinstance(port, dict):
                assert port.get("host_ip") == "127.0.0.1", f"{name}: {port}"
            else:
                assert str(port).startswith("127.0.0.1:"), f"{name}: {port}"


def test_no_secret_is_written_in_the_compose_file(
    compose: dict[str, Any], services: dict[str, dict[str, Any]]
) -> None:
    for text in _strings(compose):
        for password in CREDENTIALS_IN_URL.findall(text):
            assert password.startswith("${"), f"a password in a URL: {text!r}"
    secrets = _env_example().keys()
    for name, service in services.items():
        for key, value in _environment(service).items():
            if SECRET_NAME.search(key) or key in secrets:
                assert ONLY_A_REFERENCE.match(value), f"{name}: {key} must be a ${{VAR}}"


def test_env_example_names_every_variable_the_compose_file_uses(
    compose: dict[str, Any],
) -> None:
    used = {
        match[0] or match[1] for text in _strings(compose) for match in VAR_REFERENCE.findall(text)
    }
    assert used, "the compose file should take its secrets from .env"
    missing = used - _env_example().keys()
    assert not missing, f".env.example does not name {sorted(missing)}"


def test_env_example_leaves_every_secret_empty() -> None:
    for name, value in _env_example().items():
        if name.endswith("_URL"):
            assert not CREDENTIALS_IN_URL.search(value.replace("${POSTGRES_PASSWORD}", "")), name
        elif SECRET_NAME.search(name) or name.endswith("_EMAIL"):
            assert value == "", f".env.example must leave {name} empty"


def test_env_example_names_every_variable_the_compose_config_uses() -> None:
    text = COMPOSE_CONFIG.read_text(encoding="utf-8")
    named = set(re.findall(r'^\s*\w+_env\s*=\s*"([A-Z0-9_]+)"', text, flags=re.MULTILINE))
    assert {"BILLSYNC_STATE_URL", "BILLSYNC_BROKER_URL", "KUKKINGU_TOKEN"} <= named
    missing = named - _env_example().keys()
    assert not missing, f".env.example does not name {sorted(missing)}"


def _filled_env() -> dict[str, str]:
    """.env.example with every empty value filled in, and ${VAR}s expanded as compose does."""
    raw = _env_example()
    filled = {
        name: value or f"dummy-{name.lower().replace('_', '-')}" for name, value in raw.items()
    }
    return {name: string.Template(value).substitute(filled) for name, value in filled.items()}


def test_the_compose_config_validates() -> None:
    data = tomllib.loads(COMPOSE_CONFIG.read_text(encoding="utf-8"))
    settings = parse_config(data, base_dir=COMPOSE_CONFIG.parent, environ=_filled_env())
    assert settings.file.env_file is None  # compose passes the environment in
    assert settings.file.state.url_env == "BILLSYNC_STATE_URL"
    assert settings.file.broker.url_env == "BILLSYNC_BROKER_URL"
    assert settings.state_url.startswith("postgresql+psycopg://billsync:dummy-postgres-password@")
    assert settings.state_url.endswith("@postgres:5432/billsync")
    assert settings.broker_url == "redis://redis:6379/0"
    assert {source.kind for source in settings.file.sources} == {"jira", "github"}
    assert {rule.source for rule in settings.file.rules} == {s.name for s in settings.file.sources}


def test_the_compose_config_refuses_the_unfilled_env_example() -> None:
    data = tomllib.loads(COMPOSE_CONFIG.read_text(encoding="utf-8"))
    env = {
        name: string.Template(v).safe_substitute(_env_example())
        for name, v in _env_example().items()
    }
    with pytest.raises(ConfigError) as caught:
        parse_config(data, base_dir=COMPOSE_CONFIG.parent, environ=env)
    refused = " ".join(str(problem) for problem in caught.value.problems)
    for name in ("KUKKINGU_TOKEN", "JIRA_EMAIL", "JIRA_API_TOKEN", "GITHUB_TOKEN"):
        assert name in refused


def test_the_real_config_is_never_committed() -> None:
    ignored = (ROOT / ".gitignore").read_text(encoding="utf-8").splitlines()
    assert "config/billsync.toml" in ignored
    assert ".env" in ignored
