"""Secrets never leak, whatever happens (SPEC §9), with real components end to end.

One session: a full Jira and GitHub sync, a dashboard session over every page, the JSON API
and /metrics, then forced errors (Kukkingu and Jira refusing a wrong token, Kukkingu
answering 500, GitHub refusing a token). Every logger runs at DEBUG (httpx, httpcore,
urllib3, jira, github, celery included) and is captured *before* billsync's redaction
filter, so a token that reaches a log record at all is caught. The token strings must not
appear in those records, in the CLI output, in any page or answer of the dashboard, or in
anything stored in the state store (run errors, problem records).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator

import httpx
import pytest

from sandbox.server import ServerThread
from tests.badinput.harness import World
from tests.support.jira import JIRA_NOW
from worker.config import load_config
from worker.dashboard import create_app
from worker.store import make_engine, session_factory

# The sandboxes' fixed credentials are what billsync holds in this run (examples/sandbox.env);
# the wrong ones are distinctive values for the forced errors.
SECRETS = {
    "kukkingu": "kk-sandbox-token",
    "jira": "jira-sandbox-token",
    "github": "ghp_sandbox_token",
    "dashboard": "dashboard-sandbox-token",
}
WRONG = {
    "BILLSYNC_SANDBOX_KUKKINGU_TOKEN": "tok-SECRET-kukkingu-xyz",
    "BILLSYNC_SANDBOX_JIRA_TOKEN": "tok-SECRET-jira-xyz",
    "BILLSYNC_SANDBOX_GITHUB_TOKEN": "tok-SECRET-github-xyz",
}
ALL = [*SECRETS.values(), *WRONG.values()]
LOGGERS = ("", "httpx", "httpcore", "urllib3", "jira", "github", "celery", "billsync", "requests")
PAGES = ["/", "/runs", "/drafts", "/problems", "/drift", "/runs/1", "/drafts/1"]
API = ["/api/overview", "/api/runs", "/api/drafts", "/api/problems", "/api/drift", "/api/runs/1"]


class Records(logging.Handler):
    """Every record, formatted with its traceback, before any filter could redact it."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.texts: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        text = record.getMessage()
        if record.exc_info:
            text += logging.Formatter().formatException(record.exc_info)
        self.texts.append(f"{record.name}: {text}")


@pytest.fixture
def records() -> Iterator[Records]:
    handler = Records()
    loggers = [logging.getLogger(name) for name in LOGGERS]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.DEBUG)
    logging.getLogger().addHandler(handler)
    try:
        yield handler
    finally:
        logging.getLogger().removeHandler(handler)
        for logger, level in zip(loggers, levels, strict=True):
            logger.setLevel(level)


def leaks(text: str) -> list[str]:
    return [secret for secret in ALL if secret in text]


def test_no_secret_reaches_logs_output_dashboard_metrics_or_the_store(
    world: World, records: Records
) -> None:
    outputs = []
    for source in ("jira-demo", "github-demo"):
        result = world.cli("-vv", "sync", "--source", source)
        assert result.exit_code == 0, result.output
        outputs.append(result.output)
    assert world.snapshot().billables  # the sync did bill

    # forced errors: wrong tokens everywhere, then a Kukkingu 500
    for variable, value in WRONG.items():
        world.env = {variable: value}
        world.jira.advance_clock(120)
        source = "github-demo" if "GITHUB" in variable else "jira-demo"
        result = world.cli("-vv", "sync", "--source", source)
        assert result.exit_code != 0, result.output
        assert "401" in result.output or "Bad credentials" in result.output, result.output
        outputs.append(result.output)
    world.env = {}
    world.kukkingu.fault({"kind": "error500", "count": 5})
    world.jira.add_worklog("ACME-2", started=JIRA_NOW, seconds=600)
    world.jira.advance_clock(120)
    result = world.cli("-vv", "sync", "--source", "jira-demo")
    assert result.exit_code == 1, result.output
    outputs.append(result.output)
    world.kukkingu.app.faults.clear()

    # a dashboard session over every page, the API and the metrics
    settings = load_config(world.config, environ={})
    engine = make_engine(world.state_url)
    app = create_app(settings, factory=session_factory(engine), enqueue=lambda *a: "task-1")
    pages = []
    with ServerThread(app) as server:
        auth = {"Authorization": f"Bearer {SECRETS['dashboard']}"}
        with httpx.Client(base_url=server.url, headers=auth, timeout=10) as client:
            for path in [*PAGES, *API, "/metrics", "/healthz", "/login"]:
                response = client.get(path)
                assert response.status_code == 200, (path, response.status_code)
                pages.append(response.text)
    engine.dispose()

    assert records.texts, "nothing was logged: the capture is broken"
    assert any(r.startswith(("httpx", "urllib3", "httpcore")) for r in records.texts)
    assert leaks("\n".join(records.texts)) == []
    assert leaks("\n".join(outputs)) == []
    assert leaks("\n".join(pages)) == []
    stored = world.stored_text()
    assert "401" in stored  # the refused runs are recorded, their errors without the token
    assert leaks(stored) == []
