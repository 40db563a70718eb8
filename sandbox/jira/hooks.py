"""The Jira sandbox's webhook payloads (Jira Cloud admin webhooks, REST v2 shapes) for its
admin edits: ``worklog_created`` / ``worklog_updated`` / ``worklog_deleted`` carry the
worklog as ``GET …/worklog/{id}`` shows it; ``jira:issue_created`` / ``jira:issue_updated``
carry the issue with its summary, project, labels and type, the acting user and a
changelog of what changed."""

from __future__ import annotations

from typing import Any

from sandbox.jira.render import FieldSelection, Renderer
from sandbox.jira.seed import DEMO_ACCOUNT_ID
from sandbox.jira.state import Issue, JiraState, Worklog

FIELDS = FieldSelection(("summary", "project", "labels", "issuetype", "created", "updated"))


def _renderer(state: JiraState, base_url: str) -> Renderer:
    return Renderer(state, base_url, "2", state.user(DEMO_ACCOUNT_ID))


def worklog_event(state: JiraState, base_url: str, name: str, worklog: Worklog) -> dict[str, Any]:
    return {
        "timestamp": state.clock.now_ms(),
        "webhookEvent": name,
        "worklog": _renderer(state, base_url).worklog(worklog),
    }


def issue_event(
    state: JiraState, base_url: str, name: str, issue: Issue, changes: list[dict[str, Any]]
) -> dict[str, Any]:
    render = _renderer(state, base_url)
    return {
        "timestamp": state.clock.now_ms(),
        "webhookEvent": name,
        "issue_event_type_name": name.removeprefix("jira:"),
        "user": render.user(DEMO_ACCOUNT_ID),
        "issue": render.issue(issue, FIELDS),
        "changelog": {"id": str(state.clock.now_ms()), "items": changes},
    }
