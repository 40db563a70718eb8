"""The Jira sandbox's HTTP face: Jira Cloud REST v2 and v3 routes, auth, errors, paging.

``create_app(state)`` returns the ASGI app uvicorn serves. Per request it:

1. counts it and applies any injected fault (``sandbox.common.faults``, outermost); a 429
   carries ``Retry-After`` and Jira's ``X-RateLimit-*`` headers;
2. routes it (``/rest/api/2/...``, ``/rest/api/3/...``, ``/rest/api/latest/...`` = v2);
3. authenticates: HTTP Basic ``email:api-token`` (Cloud) or ``Authorization: Bearer <PAT>``
   (Data Center). ``serverInfo`` also answers anonymous callers, as on Cloud;
4. answers from :class:`~sandbox.jira.state.JiraState`, rendered by ``render.py``.

Errors are Jira's ``{"errorMessages": [...], "errors": {}}``. ``/_sandbox/...`` goes to the
admin app (``admin.py``). See ``docs/sandbox-jira.md`` for every route and decision.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any
from urllib.parse import urlencode

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Match, Route
from starlette.types import Receive, Scope, Send

from sandbox.common.admin import ADMIN_PREFIX, is_admin_path
from sandbox.common.faults import (
    FaultInjector,
    FaultPlan,
    FaultSpec,
    RequestCounter,
    default_retry_after,
    route_template,
)
from sandbox.common.webhooks import WebhookSender
from sandbox.jira import jql
from sandbox.jira.admin import create_jira_admin_app
from sandbox.jira.render import FIELD_CATALOGUE, FieldSelection, Renderer, jira_time
from sandbox.jira.seed import JiraSeedInfo, seed_demo
from sandbox.jira.state import Issue, JiraState, User, to_ms, utcnow

Seeder = Callable[[JiraState], JiraSeedInfo]

API_VERSIONS = ("2", "3", "latest")
SEARCH_DEFAULT_MAX = 50
SEARCH_CAP_FIELDS = 100  # a page with fields holds at most 100 issues
SEARCH_CAP_IDS = 5000  # ... with only id/key, up to 5000
LEGACY_SEARCH_CAP = 100
WORKLOG_PAGE_CAP = 5000
COMMENT_PAGE_CAP = 5000
CHANGED_WORKLOGS_PAGE = 1000
CHANGED_WORKLOGS_WINDOW_MS = 60_000  # /worklog/updated and /deleted skip the last minute
WORKLOG_LIST_MAX = 1000
SERVER_VERSION = (1001, 0, 0)

NOT_AUTHENTICATED = "You are not authenticated. Authentication required to perform this operation."
ISSUE_NOT_FOUND = "Issue does not exist or you do not have permission to see it."
UNBOUNDED = (
    "Unbounded JQL queries are not allowed here. Please add a search restriction to your query."
)
BAD_PAGE_TOKEN = "The provided next page token is invalid or expired."  # noqa: S105
LEGACY_REMOVED = (
    "The requested API has been removed. Please migrate to the /rest/api/3/search/jql API. "
    "A full migration guideline is available at "
    "https://developer.atlassian.com/changelog/#CHANGE-2046"
)
TOKEN_KEY = b"billsync-jira-sandbox"


class JiraError(Exception):
    """An error answer in Jira's shape."""

    def __init__(
        self,
        status: int,
        *messages: str,
        errors: dict[str, str] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__("; ".join(messages))
        self.status = status
        self.messages = list(messages)
        self.errors = errors or {}
        self.headers = headers or {}

    def response(self) -> JSONResponse:
        body = {"errorMessages": self.messages, "errors": self.errors}
        return JSONResponse(body, self.status, self.headers)


def bad_request(message: str) -> JiraError:
    return JiraError(400, message)


def jira_answer(fault: FaultSpec) -> Response:
    """An injected 500 or 429 as Jira Cloud sends them."""
    if fault.kind == "rate_limit":
        retry_after = default_retry_after(fault)
        reset = utcnow() + timedelta(seconds=retry_after)
        headers = {
            "Retry-After": str(retry_after),
            "X-RateLimit-Limit": "100",
            "X-RateLimit-Remaining": "0",
            "X-RateLimit-NearLimit": "true",
            "X-RateLimit-Reset": reset.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "RateLimit-Reason": "jira-burst-based",
        }
        body = {"errorMessages": ["Rate limit exceeded."], "errors": {}}
        return JSONResponse(body, 429, headers)
    return JSONResponse({"errorMessages": ["Internal server error"], "errors": {}}, 500)


# -- request helpers ------------------------------------------------------------------------


def _int(raw: Any, name: str, default: int, *, minimum: int = 0) -> int:
    if raw is None or raw == "":
        return default
    if isinstance(raw, bool):
        raise bad_request(f"The value '{raw}' for '{name}' is not a valid number.")
    try:
        value = int(raw)
    except (TypeError, ValueError):
        raise bad_request(f"The value '{raw}' for '{name}' is not a valid number.") from None
    if value < minimum:
        raise bad_request(f"'{name}' must be at least {minimum}.")
    return value


async def _json_body(request: Request) -> dict[str, Any]:
    raw = await request.body()
    try:
        body = json.loads(raw) if raw else {}
    except (ValueError, UnicodeDecodeError):
        raise bad_request("Unexpected character in the request body: it is not JSON.") from None
    if not isinstance(body, dict):
        raise bad_request("The request body must be a JSON object.")
    return body


def _string_list(value: Any) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        return [value]
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return list(value)
    raise bad_request("'fields' must be a list of strings.")


def _page_token(jql_text: str, offset: int) -> str:
    digest = hmac.new(TOKEN_KEY, f"{jql_text}\0{offset}".encode(), hashlib.sha256)
    payload = f"{offset}:{digest.hexdigest()[:24]}".encode()
    return base64.urlsafe_b64encode(payload).decode().rstrip("=")


def _read_page_token(token: str, jql_text: str) -> int:
    try:
        padded = token + "=" * (-len(token) % 4)
        offset_text, _, _ = base64.urlsafe_b64decode(padded).decode().partition(":")
        offset = int(offset_text)
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise bad_request(BAD_PAGE_TOKEN) from None
    if offset < 0 or not hmac.compare_digest(_page_token(jql_text, offset), token):
        raise bad_request(BAD_PAGE_TOKEN)
    return offset


@dataclass
class Caller:
    user: User
    render: Renderer
    version: str


class JiraRoutes:
    """One handler per endpoint, each registered under every API version."""

    def __init__(self, state: JiraState, *, legacy_search: bool) -> None:
        self.state = state
        self.legacy_search = legacy_search

    # -- auth -------------------------------------------------------------------------------

    def _authenticate(self, request: Request) -> User | None:
        header = request.headers.get("authorization")
        if header is None:
            return None
        scheme, _, credentials = header.partition(" ")
        user: User | None = None
        if scheme.lower() == "basic":
            try:
                decoded = base64.b64decode(credentials.strip(), validate=True).decode()
            except (binascii.Error, UnicodeDecodeError):
                decoded = ""
            email, colon, token = decoded.partition(":")
            if colon:
                user = self.state.authenticate_basic(email, token)
        elif scheme.lower() == "bearer" and credentials.strip():
            user = self.state.authenticate_bearer(credentials.strip())
        if user is None:
            raise JiraError(
                401,
                NOT_AUTHENTICATED,
                headers={
                    "WWW-Authenticate": 'Basic realm="protected-area"',
                    "X-Seraph-LoginReason": "AUTHENTICATED_FAILED",
                },
            )
        return user

    def _caller(self, request: Request) -> Caller:
        user = self._authenticate(request)
        if user is None:
            raise JiraError(
                401, NOT_AUTHENTICATED, headers={"WWW-Authenticate": 'Basic realm="protected-area"'}
            )
        return self._make_caller(request, user)

    def _make_caller(self, request: Request, user: User) -> Caller:
        version = request.url.path.split("/")[3]  # /rest/api/{version}/...
        version = "3" if version == "3" else "2"  # "latest" is v2
        base = str(request.base_url)
        return Caller(user, Renderer(self.state, base, version, user), version)

    def _issue(self, id_or_key: str) -> Issue:
        issue = self.state.find_issue(id_or_key)
        if issue is None or not self.state.browsable(issue):
            raise JiraError(404, ISSUE_NOT_FOUND)
        return issue

    # -- routes -----------------------------------------------------------------------------

    def routes(self) -> list[BaseRoute]:
        table: list[tuple[str, Callable[[Request], Any], list[str]]] = [
            ("serverInfo", self.server_info, ["GET"]),
            ("myself", self.myself, ["GET"]),
            ("field", self.fields, ["GET"]),
            ("search/jql", self.search_jql, ["GET", "POST"]),
            ("search", self.search_legacy, ["GET", "POST"]),
            ("issue/{issueIdOrKey}", self.get_issue, ["GET"]),
            ("issue/{issueIdOrKey}/worklog", self.issue_worklogs, ["GET"]),
            ("issue/{issueIdOrKey}/comment", self.issue_comments, ["GET"]),
            ("worklog/updated", self.worklogs_updated, ["GET"]),
            ("worklog/deleted", self.worklogs_deleted, ["GET"]),
            ("worklog/list", self.worklog_list, ["POST"]),
        ]
        routes: list[BaseRoute] = [
            Route(f"/rest/api/{version}/{path}", handler, methods=methods)
            for version in API_VERSIONS
            for path, handler, methods in table
        ]
        routes.append(Route("/rest/auth/1/session", self.auth_session, methods=["GET"]))
        return routes

    async def auth_session(self, request: Request) -> Response:
        """The old session resource (``JIRA(validate=True)`` calls it); Cloud still answers
        it for a signed-in caller."""
        caller = self._caller(request)
        user = caller.user
        return JSONResponse(
            {
                "self": f"{str(request.base_url).rstrip('/')}/rest/api/latest/user?accountId="
                f"{user.account_id}",
                "name": user.display_name,
                "loginInfo": {"failedLoginCount": 0, "loginCount": 1},
            }
        )

    async def server_info(self, request: Request) -> Response:
        user = self._authenticate(request)  # anonymous is fine; bad credentials are not
        now = self.state.clock.now()
        zone = user.time_zone if user is not None else "UTC"
        return JSONResponse(
            {
                "baseUrl": str(request.base_url).rstrip("/"),
                "displayUrl": str(request.base_url).rstrip("/"),
                "version": ".".join(str(n) for n in SERVER_VERSION) + "-SNAPSHOT",
                "versionNumbers": list(SERVER_VERSION),
                "deploymentType": "Cloud",
                "buildNumber": 100300,
                "buildDate": "2026-01-05T00:00:00.000+0000",
                "serverTime": jira_time(now, zone),
                "scmInfo": "0b1c2d3e4f5a6b7c8d9e0f1a2b3c4d5e6f7a8b9c",
                "serverTitle": "Jira (billsync sandbox)",
                "defaultLocale": {"locale": "en_US"},
                "serverTimeZone": "Etc/UTC",
            }
        )

    async def myself(self, request: Request) -> Response:
        caller = self._caller(request)
        return JSONResponse(caller.render.user(caller.user.account_id, full=True))

    async def fields(self, request: Request) -> Response:
        self._caller(request)
        return JSONResponse(list(FIELD_CATALOGUE))

    # -- search -----------------------------------------------------------------------------

    async def _search_params(self, request: Request) -> dict[str, Any]:
        if request.method == "POST":
            return await _json_body(request)
        query = request.query_params
        return {
            "jql": query.get("jql"),
            "nextPageToken": query.get("nextPageToken"),
            "maxResults": query.get("maxResults"),
            "startAt": query.get("startAt"),
            "fields": query.getlist("fields") or None,
        }

    def _run_jql(self, text: str, user: User) -> list[Issue]:
        query = jql.parse(text)
        return self._matching(query, user)

    def _matching(self, query: jql.Query, user: User) -> list[Issue]:
        # A project the account cannot browse, and its issues, do not exist for its JQL.
        def project_key(value: str) -> str | None:
            project = self.state.project(value)
            return project.key if project is not None and project.browsable else None

        def issue_id(value: str) -> int | None:
            issue = self.state.find_issue(value)
            return issue.id if issue is not None and self.state.browsable(issue) else None

        ctx = jql.Context(user.time_zone, self.state.clock.now(), project_key, issue_id)
        predicate = jql.compile_query(query, ctx)
        return jql.sort_issues(
            [i for i in self.state.issues() if self.state.browsable(i) and predicate(i)],
            query.order,
        )

    async def search_jql(self, request: Request) -> Response:
        caller = self._caller(request)
        params = await self._search_params(request)
        text = params.get("jql") or ""
        if not isinstance(text, str):
            raise bad_request("'jql' must be a string.")
        try:
            query = jql.parse(text)
            if not query.bounded:
                raise jql.JqlError(UNBOUNDED)
            issues = self._matching(query, caller.user)
        except jql.JqlError as exc:
            raise bad_request(str(exc)) from None
        fields = FieldSelection.parse(_string_list(params.get("fields")))
        cap = SEARCH_CAP_IDS if fields.id_or_key_only else SEARCH_CAP_FIELDS
        limit = min(_int(params.get("maxResults"), "maxResults", SEARCH_DEFAULT_MAX), cap)
        token = params.get("nextPageToken")
        offset = _read_page_token(token, text) if isinstance(token, str) and token else 0
        page = issues[offset : offset + limit]
        end = offset + len(page)
        body: dict[str, Any] = {"issues": [caller.render.issue(i, fields) for i in page]}
        if end < len(issues):
            body["nextPageToken"] = _page_token(text, end)
        body["isLast"] = end >= len(issues)
        return JSONResponse(body)

    async def search_legacy(self, request: Request) -> Response:
        caller = self._caller(request)
        if not self.legacy_search:
            raise JiraError(410, LEGACY_REMOVED)
        params = await self._search_params(request)
        text = params.get("jql") or ""
        if not isinstance(text, str):
            raise bad_request("'jql' must be a string.")
        try:
            issues = self._run_jql(text, caller.user)
        except jql.JqlError as exc:
            raise bad_request(str(exc)) from None
        fields = FieldSelection.parse(_string_list(params.get("fields")) or ["*navigable"])
        start = _int(params.get("startAt"), "startAt", 0)
        limit = min(
            _int(params.get("maxResults"), "maxResults", SEARCH_DEFAULT_MAX), LEGACY_SEARCH_CAP
        )
        page = issues[start : start + limit]
        return JSONResponse(
            {
                "expand": "schema,names",
                "startAt": start,
                "maxResults": limit,
                "total": len(issues),
                "issues": [caller.render.issue(i, fields) for i in page],
            }
        )

    # -- issues -----------------------------------------------------------------------------

    async def get_issue(self, request: Request) -> Response:
        caller = self._caller(request)
        issue = self._issue(request.path_params["issueIdOrKey"])
        raw_fields = request.query_params.getlist("fields")
        fields = FieldSelection.parse(raw_fields or ["*all"])
        return JSONResponse(caller.render.issue(issue, fields))

    async def issue_worklogs(self, request: Request) -> Response:
        caller = self._caller(request)
        issue = self._issue(request.path_params["issueIdOrKey"])
        query = request.query_params
        start = _int(query.get("startAt"), "startAt", 0)
        limit = min(_int(query.get("maxResults"), "maxResults", WORKLOG_PAGE_CAP), WORKLOG_PAGE_CAP)
        after = query.get("startedAfter")
        before = query.get("startedBefore")
        after_ms = _int(after, "startedAfter", 0) if after else None
        before_ms = _int(before, "startedBefore", 0) if before else None
        worklogs = [
            w
            for w in self.state.issue_worklogs(issue.id)
            if (after_ms is None or to_ms(w.started) >= after_ms)
            and (before_ms is None or to_ms(w.started) < before_ms)
        ]
        page = worklogs[start : start + limit]
        return JSONResponse(
            {
                "startAt": start,
                "maxResults": limit,
                "total": len(worklogs),
                "worklogs": [caller.render.worklog(w) for w in page],
            }
        )

    async def issue_comments(self, request: Request) -> Response:
        caller = self._caller(request)
        issue = self._issue(request.path_params["issueIdOrKey"])
        query = request.query_params
        start = _int(query.get("startAt"), "startAt", 0)
        limit = min(_int(query.get("maxResults"), "maxResults", COMMENT_PAGE_CAP), COMMENT_PAGE_CAP)
        comments = sorted(self.state.issue_comments(issue.id), key=lambda c: (c.created_ms, c.id))
        order = query.get("orderBy", "created")
        if order.lstrip("+-") != "created":
            raise bad_request(f"The orderBy value '{order}' is not supported.")
        if order.startswith("-"):
            comments.reverse()
        page = comments[start : start + limit]
        return JSONResponse(
            {
                "startAt": start,
                "maxResults": limit,
                "total": len(comments),
                "comments": [caller.render.comment(c) for c in page],
            }
        )

    # -- worklog feeds ----------------------------------------------------------------------

    def _changed(self, request: Request, *, deleted: bool) -> Response:
        caller = self._caller(request)
        since = _int(request.query_params.get("since"), "since", 0)
        page, is_last = self.state.changed_since(
            since,
            deleted=deleted,
            limit=CHANGED_WORKLOGS_PAGE,
            window_ms=CHANGED_WORKLOGS_WINDOW_MS,
        )
        until = page[-1].time_ms if page else since
        path = f"{caller.render.api}/worklog/{'deleted' if deleted else 'updated'}"
        extra = (
            {"expand": request.query_params["expand"]} if "expand" in request.query_params else {}
        )
        body: dict[str, Any] = {
            "values": [
                {"worklogId": change.worklog_id, "updatedTime": change.time_ms, "properties": []}
                for change in page
            ],
            "since": since,
            "until": until,
            "self": f"{path}?{urlencode({'since': since, **extra})}",
        }
        if not is_last:
            body["nextPage"] = f"{path}?{urlencode({'since': until, **extra})}"
        body["lastPage"] = is_last
        return JSONResponse(body)

    async def worklogs_updated(self, request: Request) -> Response:
        return self._changed(request, deleted=False)

    async def worklogs_deleted(self, request: Request) -> Response:
        return self._changed(request, deleted=True)

    async def worklog_list(self, request: Request) -> Response:
        caller = self._caller(request)
        body = await _json_body(request)
        ids = body.get("ids")
        if not isinstance(ids, list) or not ids:
            raise bad_request("The request must contain a non-empty list of worklog 'ids'.")
        if len(ids) > WORKLOG_LIST_MAX:
            raise bad_request(
                f"The number of worklog ids must not exceed {WORKLOG_LIST_MAX} (got {len(ids)})."
            )
        return JSONResponse(
            [
                caller.render.worklog(w)
                for w in self.state.worklogs_by_ids(_ids(ids))
                if (issue := self.state.find_issue(w.issue_id)) is None
                or self.state.browsable(issue)
            ]
        )


def _ids(values: Iterable[Any]) -> list[int]:
    result: list[int] = []
    for value in values:
        if isinstance(value, bool) or not isinstance(value, int | str):
            raise bad_request(f"Worklog id '{value}' is not a number.")
        if isinstance(value, str) and not value.isdigit():
            raise bad_request(f"Worklog id '{value}' is not a number.")
        result.append(int(value))
    return result


def _error_renderer(routes: list[BaseRoute]) -> Callable[[Request, Exception], Response]:
    def render(request: Request, exc: Exception) -> Response:
        if isinstance(exc, JiraError):
            return exc.response()
        assert isinstance(exc, HTTPException)
        if exc.status_code == 405:
            methods: set[str] = set()
            for route in routes:
                match, _ = route.matches(request.scope)
                if match is not Match.NONE:
                    methods.update(getattr(route, "methods", None) or ())
            refused = JiraError(
                405,
                f"Method '{request.method}' is not supported for {request.url.path}.",
                headers={"Allow": ", ".join(sorted(methods))},
            )
            return refused.response()
        if exc.status_code == 404:
            return JiraError(404, f"No resource found for {request.url.path}.").response()
        return JiraError(exc.status_code, str(exc.detail)).response()

    return render


class JiraApp:
    """The served ASGI app: admin routes, fault injection and the API, plus their state.

    Tests may use ``state``, ``faults``, ``requests`` and :meth:`reset` in-process.
    """

    def __init__(
        self, state: JiraState, seed: Seeder | None = seed_demo, *, legacy_search: bool = True
    ) -> None:
        self.state = state
        self.faults = FaultPlan()
        self.requests = RequestCounter()
        self.info: JiraSeedInfo | None = None
        self.webhooks: WebhookSender | None = None  # set by start_sandbox(webhook_url=...)
        self._seed = seed
        self._api_routes = JiraRoutes(state, legacy_search=legacy_search).routes()
        render = _error_renderer(self._api_routes)
        api = Starlette(
            routes=self._api_routes,
            exception_handlers={JiraError: render, HTTPException: render},
        )
        self._api = FaultInjector(api, self.faults, self.requests, self.route_template, jira_answer)
        self._admin = create_jira_admin_app(self)
        if seed is not None:
            self.reset()

    def reset(self) -> None:
        """Back to the seeded state (same ids, clock restored); counts and faults cleared."""
        self.faults.clear()
        self.requests.reset()
        if self._seed is not None:
            self.state.reset()
            self.info = self._seed(self.state)

    def info_json(self) -> dict[str, Any]:
        return self.info.to_json() if self.info is not None else {}

    def route_template(self, scope: Scope) -> str | None:
        return route_template(self._api_routes, scope)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if is_admin_path(scope.get("path", "")):
            await self._admin(scope, receive, send)
        else:
            await self._api(scope, receive, send)


def create_app(
    state: JiraState, *, seed: Seeder | None = seed_demo, legacy_search: bool = True
) -> JiraApp:
    """The Jira sandbox app over ``state``.

    With a ``seed`` (the demo data by default; a :func:`sandbox.jira.dataset.generate` result
    works too) the state is reset and seeded now and on every ``POST /_sandbox/reset``; with
    ``seed=None`` the state is used as it is. ``legacy_search=False`` makes ``/search``
    answer 410 as Jira Cloud does since its removal.
    """
    return JiraApp(state, seed, legacy_search=legacy_search)


__all__ = ["ADMIN_PREFIX", "JiraApp", "JiraError", "Seeder", "create_app", "jira_answer"]
