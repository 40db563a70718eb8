"""The GitHub sandbox's ``/_sandbox/...`` control endpoints: the shared ones (requests, faults,
reset, info; see :mod:`sandbox.common.admin`) plus the clock, data changes and budgets.

Loopback only, never counted, never faulted, no ``x-ratelimit-*``. Answers are
``{"data": ...}``; errors ``{"error": code, "message": text}``::

    GET    /_sandbox/clock                 {"data": {"now", "epoch", "frozen"}}
    POST   /_sandbox/clock                 {"now": iso} freeze at | {"advance": s} | {"real": true}
    POST   /_sandbox/users                 {"login", "name"?, "type"?, "email"?, "token"?}
    POST   /_sandbox/repos                 {"owner", "name", "private"?, "description"?,
                                            "members"?}
    POST   /_sandbox/issues                {"repo": "o/r", "title", "body"?, "labels"?,
                                            "is_pr"?, "user"?, "created_at"?}
    PATCH  /_sandbox/issues/{o}/{r}/{n}    {"title"?, "body"?, "labels"?, "state"?, "user"?}
    POST   /_sandbox/issues/{o}/{r}/{n}/transfer  {"repo": "o/x"}: same id and comments, the
                                            next number there; the old address answers 301
    POST   /_sandbox/comments              {"repo", "issue", "body", "user"?, "created_at"?}
    PATCH  /_sandbox/comments/{id}         {"body"}: updated_at moves, the issue's does not
    DELETE /_sandbox/comments/{id}         204: gone everywhere, no trace
    GET    /_sandbox/budget                {"data": {"status", "budgets": {bucket: rate}}}
    POST   /_sandbox/budget                {"login"? | "token"? | "address"?, "limit"?,
                                            "remaining"?, "used"?, "reset"?, "status"?}

``user`` defaults to the demo user; times default to the sandbox clock.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, model_validator
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
from sandbox.github.hooks import comment_event, issue_events, transfer_event
from sandbox.github.render import Renderer, rate_json, timestamp
from sandbox.github.seed import DEMO_LOGIN
from sandbox.github.state import Comment, GitHubState, Invalid, Issue, NotFound, Rate, Repo

if TYPE_CHECKING:
    from sandbox.github.app import GitHubApp


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class UserCreate(_Body):
    login: str = Field(min_length=1)
    name: str | None = None
    type: Literal["User", "Organization"] = "User"
    email: str | None = None
    token: str | None = None


class RepoCreate(_Body):
    owner: str
    name: str = Field(min_length=1)
    private: bool = False
    description: str = ""
    members: list[str] = Field(default_factory=list)


class IssueCreate(_Body):
    repo: str
    title: str = Field(min_length=1)
    body: str | None = None
    labels: list[str] = Field(default_factory=list)
    is_pr: bool = False
    user: str = DEMO_LOGIN
    created_at: AwareDatetime | None = None


class IssuePatch(_Body):
    title: str | None = Field(default=None, min_length=1)
    body: str | None = None
    labels: list[str] | None = None
    state: Literal["open", "closed"] | None = None
    user: str = DEMO_LOGIN


class IssueTransfer(_Body):
    repo: str  # "owner/name" it goes to


class CommentCreate(_Body):
    repo: str
    issue: int
    body: str
    user: str = DEMO_LOGIN
    created_at: AwareDatetime | None = None


class CommentEdit(_Body):
    body: str


class BudgetChange(_Body):
    login: str | None = None
    token: str | None = None
    address: str | None = None
    limit: int | None = Field(default=None, ge=0)
    remaining: int | None = Field(default=None, ge=0)
    used: int | None = Field(default=None, ge=0)
    reset: int | None = None
    status: Literal[403, 429] | None = None

    @model_validator(mode="after")
    def _one_caller(self) -> BudgetChange:
        if sum(v is not None for v in (self.login, self.token, self.address)) > 1:
            raise ValueError("give at most one of login, token, address")
        return self


def repo_json(repo: Repo) -> dict[str, Any]:
    return {
        "id": repo.id,
        "full_name": repo.full_name,
        "private": repo.private,
        "description": repo.description,
        "members": sorted(repo.members),
    }


def issue_json(repo: Repo, issue: Issue) -> dict[str, Any]:
    return {
        "id": issue.id,
        "repo": repo.full_name,
        "number": issue.number,
        "title": issue.title,
        "labels": list(issue.labels),
        "state": issue.state,
        "is_pr": issue.is_pr,
        "user": issue.user,
        "created_at": timestamp(issue.created),
        "updated_at": timestamp(issue.updated),
        "closed_at": timestamp(issue.closed),
    }


def comment_json(state: GitHubState, comment: Comment) -> dict[str, Any]:
    repo = state.repo_by_id(comment.repo_id)
    return {
        "id": comment.id,
        "repo": repo.full_name if repo is not None else None,
        "issue": comment.issue_number,
        "user": comment.user,
        "body": comment.body,
        "created_at": timestamp(comment.created),
        "updated_at": timestamp(comment.updated),
    }


def _rate(rate: Rate) -> dict[str, int]:
    return rate_json(rate)


def create_github_admin_app(app: GitHubApp) -> ASGIApp:
    state = app.state

    guarded = guard(NotFound, Invalid)

    def render(request: Request) -> Renderer:
        from sandbox.github.app import api_root, origin  # the app imports this module

        return Renderer(state, api_root(request), origin(request))

    def comment_hook(request: Request, comment: Comment, action: str, before: str = "") -> None:
        """A signed ``issue_comment`` webhook, when started with a webhook URL."""
        if app.webhooks is None:
            return
        repo = state.repo_by_id(comment.repo_id)
        issue = state.find_issue(comment.repo_id, comment.issue_number) if repo else None
        if repo is not None and issue is not None:
            payload = comment_event(render(request), repo, issue, comment, action, before=before)
            app.webhooks.send("issue_comment", payload)

    def _comment_id(request: Request) -> int:
        raw = request.path_params["comment_id"]
        if not raw.isdigit():
            raise _AdminError(404, "NotFound", f"comment {raw} does not exist")
        return int(raw)

    async def add_user(request: Request) -> Response:
        body = await _parse(request, UserCreate)
        account = state.add_account(
            body.login,
            name=body.name,
            type=body.type,
            email=body.email,
            tokens=(body.token,) if body.token else (),
        )
        return ok({"id": account.id, "login": account.login, "type": account.type})

    async def add_repo(request: Request) -> Response:
        body = await _parse(request, RepoCreate)
        repo = state.add_repo(
            body.owner,
            body.name,
            private=body.private,
            description=body.description,
            members=body.members,
        )
        return ok(repo_json(repo))

    async def add_issue(request: Request) -> Response:
        body = await _parse(request, IssueCreate)
        issue = state.add_issue(
            body.repo,
            title=body.title,
            user=body.user,
            body=body.body,
            labels=body.labels,
            is_pr=body.is_pr,
            created=body.created_at,
        )
        return ok(issue_json(state.repo(body.repo), issue))

    async def patch_issue(request: Request) -> Response:
        body = await _parse(request, IssuePatch)
        params = request.path_params
        repo_name = f"{params['owner']}/{params['repo']}"
        number = params["number"]
        found = state.find_issue(state.repo(repo_name).id, number)
        before = (
            {"title": found.title, "body": found.body, "labels": found.labels, "state": found.state}
            if found is not None
            else {}
        )
        issue = state.update_issue(
            repo_name,
            number,
            title=body.title,
            body=body.body,
            labels=body.labels,
            state=body.state,
            by=body.user,
        )
        if app.webhooks is not None:
            sender = body.user or DEMO_LOGIN
            for payload in issue_events(
                render(request), state.repo(repo_name), issue, sender=sender, before=before
            ):
                app.webhooks.send("issues", payload)
        return ok(issue_json(state.repo(repo_name), issue))

    async def transfer_issue(request: Request) -> Response:
        body = await _parse(request, IssueTransfer)
        params = request.path_params
        old_repo = state.repo(f"{params['owner']}/{params['repo']}")
        issue = state.transfer_issue(old_repo.full_name, params["number"], body.repo)
        if app.webhooks is not None:
            payload = transfer_event(
                render(request), old_repo, state.repo(body.repo), issue, int(params["number"])
            )
            app.webhooks.send("issues", payload)
        return ok(issue_json(state.repo(body.repo), issue))

    async def add_comment(request: Request) -> Response:
        body = await _parse(request, CommentCreate)
        comment = state.add_comment(
            body.repo, body.issue, user=body.user, body=body.body, created=body.created_at
        )
        comment_hook(request, comment, "created")
        return ok(comment_json(state, comment))

    async def edit_comment(request: Request) -> Response:
        comment_id = _comment_id(request)
        body = await _parse(request, CommentEdit)
        before = state.comment(comment_id).body
        comment = state.edit_comment(comment_id, body=body.body)
        comment_hook(request, comment, "edited", before)
        return ok(comment_json(state, comment))

    async def delete_comment(request: Request) -> Response:
        gone = state.delete_comment(_comment_id(request))
        comment_hook(request, gone, "deleted")
        return Response(status_code=204)

    def budgets_json() -> dict[str, Any]:
        return {
            "status": state.limit_status,
            "budgets": {bucket: _rate(rate) for bucket, rate in state.budgets().items()},
        }

    async def get_budget(request: Request) -> Response:
        return ok(budgets_json())

    async def post_budget(request: Request) -> Response:
        body = await _parse(request, BudgetChange)
        if body.address is not None:
            bucket = state.address_bucket(body.address)
        elif body.token is not None:
            account = state.authenticate(body.token)
            if account is None:
                raise _AdminError(404, "NotFound", "no user has that token")
            bucket = state.user_bucket(account.login)
        else:
            bucket = state.user_bucket(state.account(body.login or DEMO_LOGIN).login)
        rate = state.set_budget(
            bucket, limit=body.limit, remaining=body.remaining, used=body.used, reset=body.reset
        )
        if body.status is not None:
            state.limit_status = body.status
        return ok({"bucket": bucket, "status": state.limit_status, **_rate(rate)})

    prefix = ADMIN_PREFIX
    routes: list[BaseRoute] = [
        *clock_routes(state.clock),
        Route(f"{prefix}/users", guarded(add_user), methods=["POST"]),
        Route(f"{prefix}/repos", guarded(add_repo), methods=["POST"]),
        Route(f"{prefix}/issues", guarded(add_issue), methods=["POST"]),
        Route(
            f"{prefix}/issues/{{owner}}/{{repo}}/{{number:int}}",
            guarded(patch_issue),
            methods=["PATCH"],
        ),
        Route(
            f"{prefix}/issues/{{owner}}/{{repo}}/{{number:int}}/transfer",
            guarded(transfer_issue),
            methods=["POST"],
        ),
        Route(f"{prefix}/comments", guarded(add_comment), methods=["POST"]),
        Route(f"{prefix}/comments/{{comment_id}}", guarded(edit_comment), methods=["PATCH"]),
        Route(f"{prefix}/comments/{{comment_id}}", guarded(delete_comment), methods=["DELETE"]),
        Route(f"{prefix}/budget", guarded(get_budget), methods=["GET"]),
        Route(f"{prefix}/budget", guarded(post_budget), methods=["POST"]),
    ]
    return create_admin_app(
        plan=app.faults,
        counter=app.requests,
        reset=app.reset,
        info=app.info_json,
        extra_routes=routes,
    )


__all__ = ["create_github_admin_app"]
