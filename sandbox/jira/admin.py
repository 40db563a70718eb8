"""The Jira sandbox's ``/_sandbox/...`` control endpoints: the shared ones (requests, faults,
reset, info; see :mod:`sandbox.common.admin`) plus the clock and data changes a test needs.

Loopback only, never counted, never faulted. Answers are ``{"data": ...}``; errors
``{"error": code, "message": text}``::

    GET    /_sandbox/clock                  {"data": {"now", "nowMs", "frozen"}}
    POST   /_sandbox/clock                  {"now": iso} freeze at | {"advance": s} | {"real": true}
    PATCH  /_sandbox/projects/{key}         {"browse": false} the API account loses Browse
                                             projects there (true gives it back)
    POST   /_sandbox/issues                 {"project" | "key", "summary", "labels"?, "issuetype"?}
    PATCH  /_sandbox/issues/{key}           {"summary"?, "labels"?, "issuetype"?}
    POST   /_sandbox/issues/{key}/move      {"project": "NEW"} → new key NEW-n, same id
    POST   /_sandbox/issues/{key}/comments  {"accountId"?, "body"}
    POST   /_sandbox/worklogs               {"issue", "accountId"?, "started", "timeSpentSeconds",
                                             "comment"?}
    PUT    /_sandbox/worklogs/{id}          any of {"started", "timeSpentSeconds", "comment",
                                             "accountId", "updateAccountId"}
    DELETE /_sandbox/worklogs/{id}          204; listed by /worklog/deleted from now on
    POST   /_sandbox/worklogs/raw           {"issue", "worklog": {...}} stored and served as is

Every change stamps ``updated`` with the sandbox clock. Started with a webhook URL
(``billsync sandbox --webhook-url``), the sandbox also sends a signed webhook for each issue
and worklog change (:mod:`sandbox.jira.hooks`, :mod:`sandbox.common.webhooks`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route
from starlette.types import ASGIApp

from sandbox.common.admin import (
    ADMIN_PREFIX,
    clock_routes,
    create_admin_app,
    guard,
    ok,
)
from sandbox.common.admin import AdminError as _AdminError
from sandbox.common.admin import parse_body as _parse
from sandbox.jira.hooks import issue_event, worklog_event
from sandbox.jira.render import jira_time
from sandbox.jira.seed import DEMO_ACCOUNT_ID
from sandbox.jira.state import Invalid, Issue, NotFound, Worklog

if TYPE_CHECKING:
    from sandbox.jira.app import JiraApp


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class IssueCreate(_Body):
    project: str | None = None
    key: str | None = None
    summary: str = Field(min_length=1)
    labels: list[str] = Field(default_factory=list)
    issuetype: str = "Task"


class ProjectPatch(_Body):
    browse: bool  # may the API account browse the project


class IssuePatch(_Body):
    summary: str | None = Field(default=None, min_length=1)
    labels: list[str] | None = None
    issuetype: str | None = None


class IssueMove(_Body):
    project: str


class CommentCreate(_Body):
    accountId: str = DEMO_ACCOUNT_ID
    body: str


class WorklogCreate(_Body):
    issue: str | int
    accountId: str = DEMO_ACCOUNT_ID
    started: AwareDatetime
    timeSpentSeconds: int
    comment: str = ""


class WorklogEdit(_Body):
    started: AwareDatetime | None = None
    timeSpentSeconds: int | None = None
    comment: str | None = None
    accountId: str | None = None
    updateAccountId: str | None = None


class RawWorklog(_Body):
    issue: str | int
    worklog: dict[str, Any]


def issue_json(issue: Issue, time_zone: str) -> dict[str, Any]:
    return {
        "id": str(issue.id),
        "key": issue.key,
        "project": issue.project_key,
        "summary": issue.summary,
        "labels": list(issue.labels),
        "issuetype": issue.issuetype,
        "created": jira_time(issue.created_ms, time_zone),
        "updated": jira_time(issue.updated_ms, time_zone),
        "updatedMs": issue.updated_ms,
        "oldKeys": list(issue.old_keys),
    }


def worklog_json(worklog: Worklog, time_zone: str) -> dict[str, Any]:
    if worklog.raw is not None:
        return {"id": str(worklog.id), "issueId": str(worklog.issue_id), "raw": worklog.raw}
    return {
        "id": str(worklog.id),
        "issueId": str(worklog.issue_id),
        "accountId": worklog.author,
        "updateAccountId": worklog.update_author,
        "started": jira_time(worklog.started, time_zone),
        "timeSpentSeconds": worklog.seconds,
        "comment": worklog.comment,
        "created": jira_time(worklog.created_ms, time_zone),
        "updated": jira_time(worklog.updated_ms, time_zone),
        "updatedMs": worklog.updated_ms,
    }


def _worklog_id(request: Request) -> int:
    raw = request.path_params["worklogId"]
    if not raw.isdigit():
        raise _AdminError(404, "NotFound", f"worklog {raw} does not exist")
    return int(raw)


def create_jira_admin_app(app: JiraApp) -> ASGIApp:
    state = app.state
    zone = "UTC"

    guarded = guard(NotFound, Invalid)

    def notify(request: Request, payload: dict[str, Any]) -> None:
        """A signed webhook of the edit, when the sandbox was started with a webhook URL."""
        if app.webhooks is not None:
            app.webhooks.send(payload["webhookEvent"], payload)

    def base(request: Request) -> str:
        return str(request.base_url)

    def issue_changed(request: Request, issue: Issue, items: list[dict[str, Any]]) -> None:
        if app.webhooks is not None:
            notify(request, issue_event(state, base(request), "jira:issue_updated", issue, items))

    def worklog_changed(request: Request, name: str, worklog: Worklog) -> None:
        if app.webhooks is not None:
            notify(request, worklog_event(state, base(request), name, worklog))

    async def add_issue(request: Request) -> Response:
        body = await _parse(request, IssueCreate)
        issue = state.add_issue(
            project=body.project,
            key=body.key,
            summary=body.summary,
            labels=body.labels,
            issuetype=body.issuetype,
            reporter=DEMO_ACCOUNT_ID,
        )
        if app.webhooks is not None:
            notify(request, issue_event(state, base(request), "jira:issue_created", issue, []))
        return ok(issue_json(issue, zone))

    async def patch_issue(request: Request) -> Response:
        body = await _parse(request, IssuePatch)
        issue = state.update_issue(
            request.path_params["key"],
            summary=body.summary,
            labels=body.labels,
            issuetype=body.issuetype,
        )
        changed = body.model_dump(exclude_none=True)
        issue_changed(
            request, issue, [{"field": k, "toString": str(v)} for k, v in changed.items()]
        )
        return ok(issue_json(issue, zone))

    async def patch_project(request: Request) -> Response:
        body = await _parse(request, ProjectPatch)
        project = state.set_browsable(request.path_params["key"], body.browse)
        return ok({"key": project.key, "name": project.name, "browse": project.browsable})

    async def move_issue(request: Request) -> Response:
        body = await _parse(request, IssueMove)
        issue = state.move_issue(request.path_params["key"], body.project)
        issue_changed(request, issue, [{"field": "project", "toString": body.project}])
        return ok(issue_json(issue, zone))

    async def add_comment(request: Request) -> Response:
        body = await _parse(request, CommentCreate)
        comment = state.add_comment(
            request.path_params["key"], author=body.accountId, body=body.body
        )
        return ok({"id": str(comment.id), "issueId": str(comment.issue_id)})

    async def add_worklog(request: Request) -> Response:
        body = await _parse(request, WorklogCreate)
        worklog = state.add_worklog(
            body.issue,
            author=body.accountId,
            started=body.started,
            seconds=body.timeSpentSeconds,
            comment=body.comment,
        )
        worklog_changed(request, "worklog_created", worklog)
        return ok(worklog_json(worklog, zone))

    async def edit_worklog(request: Request) -> Response:
        worklog_id = _worklog_id(request)
        body = await _parse(request, WorklogEdit)
        worklog = state.edit_worklog(
            worklog_id,
            started=body.started,
            seconds=body.timeSpentSeconds,
            comment=body.comment,
            author=body.accountId,
            update_author=body.updateAccountId,
        )
        worklog_changed(request, "worklog_updated", worklog)
        return ok(worklog_json(worklog, zone))

    async def delete_worklog(request: Request) -> Response:
        worklog_id = _worklog_id(request)
        gone = state.worklog(worklog_id)
        state.delete_worklog(worklog_id)
        worklog_changed(request, "worklog_deleted", gone)
        return Response(status_code=204)

    async def add_raw(request: Request) -> Response:
        body = await _parse(request, RawWorklog)
        worklog = state.add_raw_worklog(body.issue, body.worklog)
        worklog_changed(request, "worklog_created", worklog)
        return ok(worklog_json(worklog, zone))

    prefix = ADMIN_PREFIX
    routes: list[BaseRoute] = [
        *clock_routes(state.clock),
        Route(f"{prefix}/projects/{{key}}", guarded(patch_project), methods=["PATCH"]),
        Route(f"{prefix}/issues", guarded(add_issue), methods=["POST"]),
        Route(f"{prefix}/issues/{{key}}", guarded(patch_issue), methods=["PATCH"]),
        Route(f"{prefix}/issues/{{key}}/move", guarded(move_issue), methods=["POST"]),
        Route(f"{prefix}/issues/{{key}}/comments", guarded(add_comment), methods=["POST"]),
        Route(f"{prefix}/worklogs", guarded(add_worklog), methods=["POST"]),
        Route(f"{prefix}/worklogs/raw", guarded(add_raw), methods=["POST"]),
        Route(f"{prefix}/worklogs/{{worklogId}}", guarded(edit_worklog), methods=["PUT"]),
        Route(f"{prefix}/worklogs/{{worklogId}}", guarded(delete_worklog), methods=["DELETE"]),
    ]
    return create_admin_app(
        plan=app.faults,
        counter=app.requests,
        reset=app.reset,
        info=app.info_json,
        extra_routes=routes,
    )


__all__ = ["create_jira_admin_app"]
