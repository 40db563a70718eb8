"""The GitHub sandbox's HTTP face: GitHub REST v3 routes, auth, rate limit, ETags, paging.

``create_app(state)`` returns the ASGI app uvicorn serves. Per request it:

1. sends ``/_sandbox/...`` to the admin app (``admin.py``); everything else is the API, served
   at the root (like ``api.github.com``) and under ``/api/v3`` (like GitHub Enterprise Server);
2. counts it and applies any injected fault (``sandbox.common.faults``);
3. identifies the caller: ``Authorization: token <t>``, ``Bearer <t>`` or Basic with the token
   as password; no header is an anonymous caller (public data only, 60 requests an hour);
   an unknown token is a 401 ``Bad credentials``;
4. refuses the request when the caller's primary budget is spent (403, or 429 when so
   configured), else answers it and charges the budget, except ``/rate_limit`` and a
   ``304 Not Modified`` (``If-None-Match`` / ``If-Modified-Since``), which are free;
5. stamps every API response (faulted ones too) with ``x-ratelimit-*`` and GitHub's other
   headers.

Errors are GitHub's ``{"message", "documentation_url", "status"}``. Paged lists carry a
``Link`` header of absolute ``/repositories/{id}/...`` URLs on the sandbox's own host, as
GitHub sends them. See ``docs/sandbox-github.md`` for every route and decision.
"""

from __future__ import annotations

import base64
import binascii
import contextvars
import email.utils
import hashlib
import itertools
import json
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import format_datetime, parsedate_to_datetime
from typing import Any, NoReturn
from urllib.parse import parse_qsl, urlencode

from starlette.applications import Starlette
from starlette.datastructures import Headers, MutableHeaders
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route
from starlette.types import Message, Receive, Scope, Send

from sandbox.common.admin import is_admin_path
from sandbox.common.faults import (
    FaultInjector,
    FaultPlan,
    FaultSpec,
    RequestCounter,
    default_retry_after,
    route_template,
)
from sandbox.common.webhooks import WebhookSender
from sandbox.github.admin import create_github_admin_app
from sandbox.github.render import Renderer, rate_limit_body
from sandbox.github.seed import GitHubSeedInfo, seed_demo
from sandbox.github.state import Account, Comment, GitHubState, Issue, Repo

Seeder = Callable[[GitHubState], GitHubSeedInfo]

ENTERPRISE_PREFIX = "/api/v3"
DEFAULT_PER_PAGE = 30
MAX_PER_PAGE = 100
API_VERSION = "2022-11-28"

DOCS = "https://docs.github.com/rest"
RATE_DOCS = "https://docs.github.com/rest/overview/rate-limits-for-the-rest-api"
SECONDARY_DOCS = (
    "https://docs.github.com/free-pro-team@latest/rest/overview/"
    "rate-limits-for-the-rest-api#about-secondary-rate-limits"
)
DOC_REPO = "https://docs.github.com/rest/repos/repos#get-a-repository"
DOC_ISSUES = "https://docs.github.com/rest/issues/issues#list-repository-issues"
DOC_ISSUE = "https://docs.github.com/rest/issues/issues#get-an-issue"
DOC_REPO_COMMENTS = (
    "https://docs.github.com/rest/issues/comments#list-issue-comments-for-a-repository"
)
DOC_ISSUE_COMMENTS = "https://docs.github.com/rest/issues/comments#list-issue-comments"
DOC_COMMENT = "https://docs.github.com/rest/issues/comments#get-an-issue-comment"
DOC_REDIRECTS = (
    "https://docs.github.com/rest/guides/best-practices-for-using-the-rest-api#follow-redirects"
)
DOC_USER = "https://docs.github.com/rest/users/users#get-the-authenticated-user"
DOC_A_USER = "https://docs.github.com/rest/users/users#get-a-user"

VARY = "Accept, Authorization, Cookie, X-GitHub-OTP,Accept-Encoding, Accept, X-Requested-With"
OAUTH_SCOPES = "read:org, repo"


class GitHubError(Exception):
    """An error answer in GitHub's shape."""

    def __init__(
        self,
        status: int,
        message: str,
        documentation_url: str = DOCS,
        *,
        errors: list[dict[str, str]] | None = None,
        headers: dict[str, str] | None = None,
        url: str | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.documentation_url = documentation_url
        self.errors = errors
        self.headers = headers or {}
        self.url = url  # a redirect's target, also in the body (GitHub's 301 shape)

    def response(self) -> Response:
        body: dict[str, Any] = {"message": self.message}
        if self.errors is not None:
            body["errors"] = self.errors
        if self.url is not None:
            body["url"] = self.url
        body["documentation_url"] = self.documentation_url
        body["status"] = str(self.status)
        return json_response(body, self.status, self.headers)


def json_response(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    content = json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode()
    return Response(content, status, headers, media_type="application/json; charset=utf-8")


def not_found(documentation_url: str = DOCS) -> GitHubError:
    return GitHubError(404, "Not Found", documentation_url)


def invalid(resource: str, field: str, documentation_url: str) -> GitHubError:
    return GitHubError(
        422,
        "Validation Failed",
        documentation_url,
        errors=[{"resource": resource, "field": field, "code": "invalid"}],
    )


# -- who is calling ---------------------------------------------------------------------------


def token_of(header: str) -> str | None:
    """The token in an ``Authorization`` header (``token``, ``Bearer`` or Basic with the token
    as password), or None when the header holds none."""
    scheme, _, credentials = header.strip().partition(" ")
    credentials = credentials.strip()
    if scheme.lower() in ("token", "bearer"):
        return credentials or None
    if scheme.lower() == "basic":
        try:
            decoded = base64.b64decode(credentials, validate=True).decode()
        except (binascii.Error, UnicodeDecodeError):
            return None
        return decoded.partition(":")[2] or None
    return None


@dataclass(frozen=True)
class Caller:
    """``account`` None: anonymous (or, while answering 401, a bad token)."""

    account: Account | None
    bucket: str
    address: str

    @property
    def login(self) -> str | None:
        return self.account.login if self.account is not None else None


def identify(state: GitHubState, headers: Headers, client: tuple[str, int] | None) -> Caller:
    """The caller behind a request; a bad token is an anonymous caller here (the API answers
    it with 401, charged to the address, as GitHub does)."""
    address = client[0] if client else "unknown"
    header = headers.get("authorization")
    account = None
    if header is not None:
        token = token_of(header)
        account = state.authenticate(token) if token else None
    if account is None:
        return Caller(None, state.address_bucket(address), address)
    return Caller(account, state.user_bucket(account.login), address)


@dataclass(frozen=True)
class _Call:
    caller: Caller
    request_id: str


_CURRENT: contextvars.ContextVar[_Call] = contextvars.ContextVar("github_sandbox_call")


# -- results, conditional requests, paging ----------------------------------------------------


@dataclass
class Result:
    body: Any
    link: str | None = None
    last_modified: int | None = None


def _etag(caller: Caller, content: bytes) -> str:
    """Weak, and specific to the credentials: GitHub's ETags vary with ``Authorization``."""
    digest = hashlib.sha256()
    digest.update((caller.login or "").encode() + b"\0" + content)
    return f'W/"{digest.hexdigest()}"'


def _etag_matches(header: str, etag: str) -> bool:
    wanted = etag.removeprefix("W/")
    for candidate in header.split(","):
        candidate = candidate.strip()
        if candidate == "*" or candidate.removeprefix("W/") == wanted:
            return True
    return False


def _not_modified(headers: Headers, etag: str, last_modified: int | None) -> bool:
    """RFC 9110: ``If-None-Match`` decides alone when present."""
    if_none_match = headers.get("if-none-match")
    if if_none_match is not None:
        return _etag_matches(if_none_match, etag)
    if_modified_since = headers.get("if-modified-since")
    if if_modified_since is None or last_modified is None:
        return False
    try:
        since = parsedate_to_datetime(if_modified_since)
    except (TypeError, ValueError):
        return False
    if since.tzinfo is None:
        since = since.replace(tzinfo=UTC)
    return last_modified <= int(since.timestamp())


def http_date(epoch_seconds: int) -> str:
    return format_datetime(datetime.fromtimestamp(epoch_seconds, UTC), usegmt=True)


def _int_param(raw: str | None, default: int) -> int:
    try:
        return int(raw) if raw is not None else default
    except ValueError:
        return default


def paginate(
    request: Request, items: Sequence[Any], link_path: str
) -> tuple[list[Any], str | None]:
    """One page of ``items`` and its ``Link`` header (None when everything fits one page).

    ``per_page`` defaults to 30 and is capped at 100 (a bigger value gets 100, as on
    GitHub); a non-number or a value below 1 means the default. The links repeat the
    request's query with ``page`` replaced, on ``link_path`` under the request's own root.
    """
    query = request.query_params
    per_page = _int_param(query.get("per_page"), DEFAULT_PER_PAGE)
    per_page = DEFAULT_PER_PAGE if per_page < 1 else min(per_page, MAX_PER_PAGE)
    page = max(1, _int_param(query.get("page"), 1))
    last = max(1, -(-len(items) // per_page))
    chunk = list(items[(page - 1) * per_page : page * per_page])
    rels: list[tuple[str, int]] = []
    if page > 1:
        rels.append(("prev", min(page - 1, last)))
    if page < last:
        rels += [("next", page + 1), ("last", last)]
    if page > 1:
        rels.append(("first", 1))
    if not rels:
        return chunk, None
    pairs = parse_qsl(request.url.query, keep_blank_values=True)
    base = f"{api_root(request)}{link_path}"

    def url(number: int) -> str:
        replaced = [(k, str(number) if k == "page" else v) for k, v in pairs]
        if not any(k == "page" for k, _ in pairs):
            replaced.append(("page", str(number)))
        return f"{base}?{urlencode(replaced)}"

    return chunk, ", ".join(f'<{url(number)}>; rel="{rel}"' for rel, number in rels)


def origin(request: Request) -> str:
    host = request.headers.get("host") or f"{request.url.hostname}:{request.url.port}"
    return f"{request.url.scheme}://{host}"


def api_root(request: Request) -> str:
    root: str = request.scope.get("root_path", "")
    return origin(request) + root


def parse_since(raw: str | None, resource: str, documentation_url: str) -> int | None:
    """ISO 8601 (``2026-11-03T09:00:00Z``; offsets, fractions and bare dates too); an instant
    without an offset is UTC."""
    if raw is None or raw == "":
        return None
    try:
        moment = datetime.fromisoformat(raw.strip().replace(" ", "+"))
    except ValueError:
        raise invalid(resource, "since", documentation_url) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return int(moment.timestamp()) + (1 if moment.microsecond else 0)


def _choice(raw: str | None, allowed: tuple[str, ...], default: str, resource: str, field: str,
            documentation_url: str) -> str:  # fmt: skip
    if raw is None:
        return default
    if raw not in allowed:
        raise invalid(resource, field, documentation_url)
    return raw


# -- the routes -------------------------------------------------------------------------------

Handler = Callable[[Request, Caller], Result]


class GitHubRoutes:
    """One handler per endpoint; ``endpoint`` wraps each in auth, budget and ETag logic."""

    def __init__(self, state: GitHubState) -> None:
        self.state = state

    def routes(self) -> list[BaseRoute]:
        table: list[tuple[str, Handler, bool]] = [
            ("/user", self.user, True),
            ("/users/{username}", self.named_user, True),
            ("/rate_limit", self.rate_limit, False),
        ]
        for base in ("/repos/{owner}/{repo}", "/repositories/{repository_id:int}"):
            table += [
                (base, self.get_repo, True),
                (f"{base}/issues", self.list_issues, True),
                (f"{base}/issues/comments", self.list_repo_comments, True),
                (f"{base}/issues/comments/{{comment_id:int}}", self.get_comment, True),
                (f"{base}/issues/{{number:int}}", self.get_issue, True),
                (f"{base}/issues/{{number:int}}/comments", self.list_issue_comments, True),
            ]
        return [
            Route(path, self.endpoint(handler, counted=counted), methods=["GET"])
            for path, handler, counted in table
        ]

    def endpoint(
        self, handler: Handler, *, counted: bool
    ) -> Callable[[Request], Awaitable[Response]]:
        state = self.state

        async def run(request: Request) -> Response:
            call = _CURRENT.get()
            caller = call.caller
            header = request.headers.get("authorization")
            if header is not None and caller.account is None:
                state.charge(caller.bucket)
                raise GitHubError(401, "Bad credentials", DOCS)
            if counted and not state.admit(caller.bucket):
                raise _limit_exceeded(state, caller, call.request_id)
            try:
                result = handler(request, caller)
            except GitHubError:
                if counted:
                    state.charge(caller.bucket)
                raise
            content = json.dumps(result.body, separators=(",", ":"), ensure_ascii=False).encode()
            headers = {
                "etag": _etag(caller, content),
                "cache-control": (
                    f"{'private' if caller.account else 'public'}, max-age=60, s-maxage=60"
                ),
                "vary": VARY,
            }
            if result.last_modified is not None:
                headers["last-modified"] = http_date(result.last_modified)
            if result.link is not None:
                headers["link"] = result.link
            if _not_modified(request.headers, headers["etag"], result.last_modified):
                del headers["vary"]
                return Response(status_code=304, headers=headers)
            if counted:
                state.charge(caller.bucket)
            return Response(content, 200, headers, media_type="application/json; charset=utf-8")

        return run

    # -- helpers ----------------------------------------------------------------------------

    def _renderer(self, request: Request) -> Renderer:
        return Renderer(self.state, api_root(request), origin(request))

    def _repo(self, request: Request, caller: Caller, documentation_url: str) -> Repo:
        params = request.path_params
        if "repository_id" in params:
            repo = self.state.repo_by_id(params["repository_id"])
        else:
            repo = self.state.find_repo(f"{params['owner']}/{params['repo']}")
        if repo is None or not self.state.can_see(repo, caller.login):
            raise not_found(documentation_url)
        return repo

    def _is_pr(self, repo: Repo) -> Callable[[int], bool]:
        kinds = {i.number: i.is_pr for i in self.state.repo_issues(repo.id)}
        return lambda number: kinds.get(number, False)

    # -- users and rate limit ---------------------------------------------------------------

    def user(self, request: Request, caller: Caller) -> Result:
        if caller.account is None:
            raise GitHubError(401, "Requires authentication", DOC_USER)
        body = self._renderer(request).full_user(caller.account, private=True)
        return Result(body, last_modified=caller.account.updated)

    def named_user(self, request: Request, caller: Caller) -> Result:
        account = self.state.find_account(request.path_params["username"])
        if account is None:
            raise not_found(DOC_A_USER)
        body = self._renderer(request).full_user(account, private=False)
        return Result(body, last_modified=account.updated)

    def rate_limit(self, request: Request, caller: Caller) -> Result:
        core = self.state.rate(caller.bucket)
        body = rate_limit_body(
            core, self.state.clock.epoch(), authenticated=caller.account is not None
        )
        return Result(body)

    # -- repositories -----------------------------------------------------------------------

    def get_repo(self, request: Request, caller: Caller) -> Result:
        repo = self._repo(request, caller, DOC_REPO)
        body = self._renderer(request).repo(repo, caller.login)
        return Result(body, last_modified=max(repo.updated, repo.pushed))

    # -- issues -----------------------------------------------------------------------------

    def list_issues(self, request: Request, caller: Caller) -> Result:
        repo = self._repo(request, caller, DOC_ISSUES)
        query = request.query_params
        state = _choice(query.get("state"), ("open", "closed", "all"), "open", "Issue", "state",
                        DOC_ISSUES)  # fmt: skip
        sort = _choice(query.get("sort"), ("created", "updated", "comments"), "created", "Issue",
                       "sort", DOC_ISSUES)  # fmt: skip
        direction = _choice(query.get("direction"), ("asc", "desc"), "desc", "Issue",
                            "direction", DOC_ISSUES)  # fmt: skip
        since = parse_since(query.get("since"), "Issue", DOC_ISSUES)
        wanted = [
            label.strip().casefold()
            for label in query.get("labels", "").split(",")
            if label.strip()
        ]
        creator = query.get("creator")
        counts = self.state.comment_counts(repo.id)
        issues = [
            issue
            for issue in self.state.repo_issues(repo.id)
            if (state == "all" or issue.state == state)
            and (since is None or issue.updated >= since)
            and all(label in {name.casefold() for name in issue.labels} for label in wanted)
            and (creator is None or issue.user.casefold() == creator.casefold())
        ]

        def key(issue: Issue) -> tuple[int, int]:
            if sort == "updated":
                return (issue.updated, issue.id)
            if sort == "comments":
                return (counts.get(issue.number, 0), issue.id)
            return (issue.created, issue.id)

        issues.sort(key=key, reverse=direction == "desc")
        page, link = paginate(request, issues, f"/repositories/{repo.id}/issues")
        render = self._renderer(request)
        return Result([render.issue(repo, i, counts.get(i.number, 0)) for i in page], link)

    def _moved(
        self, request: Request, caller: Caller, repo: Repo, documentation_url: str
    ) -> NoReturn:
        """A transferred issue's old address answers 301 to its new one, when the caller can
        see where it went; else 404 (GitHub's "Get an issue")."""
        number = request.path_params["number"]
        issue = self.state.moved_issue(repo.id, number)
        target = self.state.repo_by_id(issue.repo_id) if issue is not None else None
        if issue is None or target is None or not self.state.can_see(target, caller.login):
            raise not_found(documentation_url)
        tail = request.url.path.split(f"/issues/{number}", 1)[1]
        location = f"{api_root(request)}/repositories/{target.id}/issues/{issue.number}{tail}"
        raise GitHubError(
            301, "Moved Permanently", DOC_REDIRECTS, headers={"location": location}, url=location
        )

    def get_issue(self, request: Request, caller: Caller) -> Result:
        repo = self._repo(request, caller, DOC_ISSUE)
        issue = self.state.find_issue(repo.id, request.path_params["number"])
        if issue is None:
            self._moved(request, caller, repo, DOC_ISSUE)
        count = self.state.comment_counts(repo.id).get(issue.number, 0)
        body = self._renderer(request).issue(repo, issue, count, single=True)
        return Result(body, last_modified=issue.updated)

    # -- comments ---------------------------------------------------------------------------

    def _render_comments(
        self, request: Request, repo: Repo, comments: Sequence[Comment], link_path: str
    ) -> Result:
        page, link = paginate(request, comments, link_path)
        render = self._renderer(request)
        is_pr = self._is_pr(repo)
        return Result([render.comment(repo, c, is_pr(c.issue_number)) for c in page], link)

    def list_repo_comments(self, request: Request, caller: Caller) -> Result:
        repo = self._repo(request, caller, DOC_REPO_COMMENTS)
        query = request.query_params
        sort = query.get("sort")
        if sort is not None:
            _choice(sort, ("created", "updated"), "created", "IssueComment", "sort",
                    DOC_REPO_COMMENTS)  # fmt: skip
        direction = _choice(query.get("direction"), ("asc", "desc"), "asc", "IssueComment",
                            "direction", DOC_REPO_COMMENTS)  # fmt: skip
        since = parse_since(query.get("since"), "IssueComment", DOC_REPO_COMMENTS)
        comments = [
            c for c in self.state.repo_comments(repo.id) if since is None or c.updated >= since
        ]
        if sort is not None:  # without sort: ascending id, and direction is ignored
            if sort == "updated":
                comments.sort(key=lambda c: (c.updated, c.id))
            else:
                comments.sort(key=lambda c: (c.created, c.id))
            if direction == "desc":
                comments.reverse()
        return self._render_comments(
            request, repo, comments, f"/repositories/{repo.id}/issues/comments"
        )

    def list_issue_comments(self, request: Request, caller: Caller) -> Result:
        repo = self._repo(request, caller, DOC_ISSUE_COMMENTS)
        number = request.path_params["number"]
        if self.state.find_issue(repo.id, number) is None:
            self._moved(request, caller, repo, DOC_ISSUE_COMMENTS)
        since = parse_since(request.query_params.get("since"), "IssueComment", DOC_ISSUE_COMMENTS)
        comments = [
            c
            for c in self.state.issue_comments(repo.id, number)
            if since is None or c.updated >= since
        ]
        return self._render_comments(
            request, repo, comments, f"/repositories/{repo.id}/issues/{number}/comments"
        )

    def get_comment(self, request: Request, caller: Caller) -> Result:
        repo = self._repo(request, caller, DOC_COMMENT)
        comment = self.state.find_comment(request.path_params["comment_id"])
        if comment is None or comment.repo_id != repo.id:
            raise not_found(DOC_COMMENT)
        is_pr = self._is_pr(repo)(comment.issue_number)
        body = self._renderer(request).comment(repo, comment, is_pr)
        return Result(body, last_modified=comment.updated)


def _limit_exceeded(state: GitHubState, caller: Caller, request_id: str) -> GitHubError:
    stamp = state.clock.now().strftime("%Y-%m-%d %H:%M:%S UTC")
    support = (
        f"If you reach out to GitHub Support for help, please include the request ID "
        f"{request_id} and timestamp {stamp}."
    )
    if caller.account is not None:
        message = f"API rate limit exceeded for user ID {caller.account.id}. {support}"
    else:
        message = (
            f"API rate limit exceeded for {caller.address}. (But here's the good news: "
            "Authenticated requests get a higher rate limit. Check out the documentation for "
            f"more details.) {support}"
        )
    return GitHubError(state.limit_status, message, RATE_DOCS)


def _error_renderer(state: GitHubState) -> Callable[[Request, Exception], Response]:
    def render(request: Request, exc: Exception) -> Response:
        if isinstance(exc, GitHubError):
            return exc.response()
        assert isinstance(exc, HTTPException)
        caller = _CURRENT.get().caller
        state.charge(caller.bucket)  # GitHub counts requests to unknown routes too
        if request.headers.get("authorization") is not None and caller.account is None:
            return GitHubError(401, "Bad credentials", DOCS).response()
        if exc.status_code in (404, 405):  # GitHub answers an unknown route or method with 404
            return not_found().response()
        return GitHubError(exc.status_code, str(exc.detail)).response()

    return render


class GitHubApp:
    """The served ASGI app: admin routes, fault injection and the API, plus their state.

    Tests may use ``state``, ``faults``, ``requests`` and :meth:`reset` in-process.
    """

    def __init__(self, state: GitHubState, seed: Seeder | None = seed_demo) -> None:
        self.state = state
        self.faults = FaultPlan()
        self.requests = RequestCounter()
        self.info: GitHubSeedInfo | None = None
        self.webhooks: WebhookSender | None = None  # set by start_sandbox(webhook_url=...)
        self._seed = seed
        self._request_ids = itertools.count(1)
        self._api_routes = GitHubRoutes(state).routes()
        render_error = _error_renderer(state)
        api = Starlette(
            routes=self._api_routes,
            exception_handlers={GitHubError: render_error, HTTPException: render_error},
        )
        self._api = FaultInjector(
            self._stamped(api), self.faults, self.requests, self.route_template, self._answer
        )
        self._admin = create_github_admin_app(self)
        if seed is not None:
            self.reset()

    def reset(self) -> None:
        """Back to the seeded state (same ids, clock restored, budgets full); counts and faults
        cleared."""
        self.faults.clear()
        self.requests.reset()
        if self._seed is not None:
            self.state.reset()
            self.info = self._seed(self.state)

    def info_json(self) -> dict[str, Any]:
        return self.info.to_json() if self.info is not None else {}

    def route_template(self, scope: Scope) -> str | None:
        return route_template(self._api_routes, scope)

    # -- headers on every API response ------------------------------------------------------

    def _rate_headers(self, call: _Call) -> dict[str, str]:
        rate = self.state.rate(call.caller.bucket)
        headers = {
            "x-github-api-version-selected": API_VERSION,
            "x-github-media-type": "github.v3; format=json",
            "x-ratelimit-limit": str(rate.limit),
            "x-ratelimit-remaining": str(rate.remaining),
            "x-ratelimit-reset": str(rate.reset),
            "x-ratelimit-used": str(rate.used),
            "x-ratelimit-resource": "core",
            # GitHub's Date is GitHub's clock: clients compare x-ratelimit-reset with it.
            "date": email.utils.format_datetime(self.state.clock.now(), usegmt=True),
            "access-control-expose-headers": (
                "ETag, Link, Location, Retry-After, X-GitHub-OTP, X-RateLimit-Limit, "
                "X-RateLimit-Remaining, X-RateLimit-Used, X-RateLimit-Resource, "
                "X-RateLimit-Reset, X-OAuth-Scopes, X-Accepted-OAuth-Scopes, X-Poll-Interval, "
                "X-GitHub-Media-Type, X-GitHub-SSO, X-GitHub-Request-Id, Deprecation, Sunset"
            ),
            "access-control-allow-origin": "*",
            "x-content-type-options": "nosniff",
            "x-github-request-id": call.request_id,
        }
        if call.caller.account is not None:
            headers["x-oauth-scopes"] = OAUTH_SCOPES
            headers["x-accepted-oauth-scopes"] = "repo"
        return headers

    def _stamped(self, app: Callable[[Scope, Receive, Send], Awaitable[None]]) -> Any:
        async def stamped(scope: Scope, receive: Receive, send: Send) -> None:
            call = _CURRENT.get()

            async def send_stamped(message: Message) -> None:
                if message["type"] == "http.response.start":
                    headers = MutableHeaders(raw=list(message["headers"]))
                    for name, value in self._rate_headers(call).items():
                        headers[name] = value
                    message = {**message, "headers": headers.raw}
                await send(message)

            await app(scope, receive, send_stamped)

        return stamped

    def _answer(self, fault: FaultSpec) -> Response:
        """An injected fault as GitHub sends it: a 500, or a secondary rate limit (403 or 429
        as ``state.limit_status`` says) with ``retry-after``; budget headers as they stand."""
        call = _CURRENT.get()
        headers = self._rate_headers(call)
        if fault.kind == "rate_limit":
            headers["retry-after"] = str(default_retry_after(fault))
            message = (
                "You have exceeded a secondary rate limit. Please wait a few minutes before you "
                "try again. If you reach out to GitHub Support for help, please include the "
                f"request ID {call.request_id}."
            )
            return GitHubError(
                self.state.limit_status, message, SECONDARY_DOCS, headers=headers
            ).response()
        return GitHubError(500, "Server Error", DOCS, headers=headers).response()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path: str = scope.get("path", "")
        if is_admin_path(path):
            await self._admin(scope, receive, send)
            return
        if scope["type"] != "http":
            await self._api(scope, receive, send)
            return
        if path == ENTERPRISE_PREFIX or path.startswith(ENTERPRISE_PREFIX + "/"):
            scope = {**scope, "root_path": scope.get("root_path", "") + ENTERPRISE_PREFIX}
        caller = identify(self.state, Headers(scope=scope), scope.get("client"))
        request_id = f"C0DE:{next(self._request_ids):X}:5A4D:B111:{self.state.clock.epoch():X}"
        token = _CURRENT.set(_Call(caller, request_id))
        try:
            await self._api(scope, receive, send)
        finally:
            _CURRENT.reset(token)


def create_app(state: GitHubState, *, seed: Seeder | None = seed_demo) -> GitHubApp:
    """The GitHub sandbox app over ``state``.

    With a ``seed`` (the demo data by default; a :func:`sandbox.github.dataset.generate`
    result works too) the state is reset and seeded now and on every ``POST /_sandbox/reset``;
    with ``seed=None`` the state is used as it is.
    """
    return GitHubApp(state, seed)


__all__ = ["ENTERPRISE_PREFIX", "GitHubApp", "GitHubError", "Seeder", "create_app"]
