"""The Cliniko sandbox's HTTP face: the billable items routes of Cliniko's API under ``/v1``.

``create_app(state)`` returns the ASGI app uvicorn serves. Per request it:

1. sends ``/_sandbox/...`` to the admin app (``admin.py``); everything else is the API;
2. counts it and applies any injected fault (``sandbox.common.faults``);
3. checks the caller (:class:`Gate`), in this order: HTTP Basic with a known API key as the
   user name and an empty password (else 401); the key's budget of 200 requests in any
   60 seconds of the sandbox clock (else 429 with ``Retry-After``); a User-Agent naming an
   application and a contact email (else 403);
4. answers it, with the sandbox clock's ``Date``.

Errors are ``{"message": text}``; a refused write (422) adds ``"errors": {field: [reasons]}``.
Bad query parameters are 400s whose message names the parameter. See
``docs/sandbox-cliniko.md`` for every route and decision.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable, Sequence
from email.utils import format_datetime
from typing import Any
from urllib.parse import parse_qsl

from starlette.applications import Starlette
from starlette.datastructures import MutableHeaders
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Match, Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from sandbox.cliniko.admin import create_cliniko_admin_app
from sandbox.cliniko.errors import ClinikoError, json_response, too_many
from sandbox.cliniko.gate import Gate
from sandbox.cliniko.query import (
    FILTER_FIELDS,
    GET_FILTER_FIELDS,
    FieldFormat,
    Filter,
    QueryError,
    page_links,
    parse_filter,
    parse_paging,
    parse_sort,
    select,
    sort_items,
)
from sandbox.cliniko.render import API_ROOT, api_root, item_json, item_url, list_json
from sandbox.cliniko.rules import INT64_MAX, Unprocessable, describe, validate_write
from sandbox.cliniko.seed import ClinikoSeedInfo, seed_demo
from sandbox.cliniko.state import BillableItem, ClinikoState
from sandbox.common.admin import is_admin_path
from sandbox.common.faults import (
    FaultInjector,
    FaultPlan,
    FaultSpec,
    RequestCounter,
    default_retry_after,
    route_template,
)

Seeder = Callable[[ClinikoState], ClinikoSeedInfo]

LIST_PARAMETERS = ("page", "per_page", "q[]", "sort", "order")
GET_PARAMETERS = ("q[]",)


# -- requests ---------------------------------------------------------------------------------


def query_pairs(request: Request, allowed: Sequence[str]) -> list[tuple[str, str]]:
    """The query's parameters in order; unknown or repeated ones (but ``q[]``) are a 400."""
    pairs = parse_qsl(request.url.query, keep_blank_values=True)
    counts = Counter(key for key, _ in pairs)
    for key, count in counts.items():
        if key not in allowed:
            raise QueryError(f"{key}: unknown query parameter (allowed: {', '.join(allowed)})")
        if count > 1 and key != "q[]":
            raise QueryError(f"{key}: given {count} times; give it once")
    return pairs


def filters_of(pairs: Sequence[tuple[str, str]], fields: dict[str, FieldFormat]) -> list[Filter]:
    return [parse_filter(value, fields) for key, value in pairs if key == "q[]"]


def item_id(request: Request) -> int:
    raw: str = request.path_params["id"]
    if not (raw.isascii() and raw.isdigit()) or int(raw) > INT64_MAX:
        raise ClinikoError(404, f"Not found: no billable item {raw}")
    return int(raw)


async def body_object(request: Request) -> dict[str, Any]:
    raw = await request.body()
    try:
        document = json.loads(raw)
    except ValueError as exc:  # UnicodeDecodeError is one too
        raise ClinikoError(400, f"The body is not valid JSON: {exc}") from None
    if not isinstance(document, dict):
        raise ClinikoError(400, "The body must be a JSON object of billable item fields")
    return document


def checked(body: dict[str, Any], *, creating: bool) -> dict[str, Any]:
    try:
        return validate_write(body, creating=creating)
    except Unprocessable as exc:
        raise ClinikoError(
            422,
            f"The billable item could not be saved: {describe(exc.errors)}",
            errors=exc.errors,
        ) from None


# -- the routes -------------------------------------------------------------------------------


class ClinikoRoutes:
    """One handler per endpoint of Cliniko's billable items."""

    def __init__(self, state: ClinikoState) -> None:
        self.state = state

    def routes(self) -> list[BaseRoute]:
        items = f"{API_ROOT}/billable_items"
        return [
            Route(items, self.list_items, methods=["GET"]),
            Route(items, self.create_item, methods=["POST"]),
            Route(f"{items}/{{id}}", self.get_item, methods=["GET"]),
            Route(f"{items}/{{id}}", self.update_item, methods=["PATCH"]),
            Route(f"{items}/{{id}}", self.delete_item, methods=["DELETE"]),
            Route(f"{items}/{{id}}/archive", self.archive_item, methods=["POST"]),
        ]

    def _item(self, request: Request) -> BillableItem:
        wanted = item_id(request)
        found = self.state.find_item(wanted)
        if found is None:
            raise ClinikoError(404, f"Not found: no billable item {wanted}")
        return found

    async def list_items(self, request: Request) -> Response:
        pairs = query_pairs(request, LIST_PARAMETERS)
        query = dict(pairs)
        filters = filters_of(pairs, FILTER_FIELDS)
        keys = parse_sort(query.get("sort"), query.get("order"))
        paging = parse_paging(query.get("page"), query.get("per_page"))
        chosen = sort_items(select(self.state.items(), filters), keys)
        page = chosen[paging.offset : paging.offset + paging.per_page]
        root = api_root(request)
        links = page_links(f"{root}/billable_items", pairs, paging, len(chosen))
        return json_response(list_json(page, root, len(chosen), links))

    async def get_item(self, request: Request) -> Response:
        pairs = query_pairs(request, GET_PARAMETERS)
        filters = filters_of(pairs, GET_FILTER_FIELDS)
        item = self._item(request)
        if not select([item], filters, keep_archived=True):
            raise ClinikoError(404, f"Not found: billable item {item.id} does not match q[]")
        return json_response(item_json(item, api_root(request)))

    async def create_item(self, request: Request) -> Response:
        query_pairs(request, ())
        values = checked(await body_object(request), creating=True)
        item = self.state.add_item(**values)
        root = api_root(request)
        headers = {"location": item_url(root, item.id)}
        return json_response(item_json(item, root), 201, headers)

    async def update_item(self, request: Request) -> Response:
        query_pairs(request, ())
        item = self._item(request)
        values = checked(await body_object(request), creating=False)
        updated = self.state.update_item(item.id, values)
        return json_response(item_json(updated, api_root(request)))

    async def archive_item(self, request: Request) -> Response:
        query_pairs(request, ())
        self.state.archive_item(self._item(request).id)
        return Response(status_code=204)

    async def delete_item(self, request: Request) -> Response:
        """Deprecated by Cliniko in favour of ``POST .../archive``; it archives too."""
        return await self.archive_item(request)


def allowed_methods(routes: Sequence[BaseRoute], scope: Scope) -> list[str]:
    """Every method some route serves on this path (Starlette's 405 names one route's)."""
    methods: set[str] = set()
    for route in routes:
        match, _ = route.matches({**scope, "method": "GET"})
        if match is not Match.NONE:
            methods |= getattr(route, "methods", None) or set()
    return sorted(methods)


def error_renderer(routes: Sequence[BaseRoute]) -> Callable[[Request, Exception], Response]:
    def render(request: Request, exc: Exception) -> Response:
        if isinstance(exc, ClinikoError):
            return exc.response()
        if isinstance(exc, QueryError):
            return ClinikoError(400, f"Bad query: {exc}").response()
        assert isinstance(exc, HTTPException)
        path = request.url.path
        if exc.status_code == 405:
            allow = ", ".join(allowed_methods(routes, request.scope))
            message = f"Method not allowed: {request.method} {path} (allowed: {allow})"
            return ClinikoError(405, message, headers={"allow": allow}).response()
        if exc.status_code == 404:
            return ClinikoError(404, f"Not found: {path}").response()
        return ClinikoError(exc.status_code, str(exc.detail)).response()

    return render


class ClinikoApp:
    """The served ASGI app: admin routes, fault injection and the API, plus their state.

    Tests may use ``state``, ``faults``, ``requests`` and :meth:`reset` in-process.
    """

    def __init__(self, state: ClinikoState, seed: Seeder | None = seed_demo) -> None:
        self.state = state
        self.faults = FaultPlan()
        self.requests = RequestCounter()
        self.info: ClinikoSeedInfo | None = None
        self._seed = seed
        self._api_routes = ClinikoRoutes(state).routes()
        render = error_renderer(self._api_routes)
        api = Starlette(
            routes=self._api_routes,
            exception_handlers={ClinikoError: render, QueryError: render, HTTPException: render},
        )
        self._api = FaultInjector(
            self._dated(Gate(api, state)),
            self.faults,
            self.requests,
            self.route_template,
            self._answer,
        )
        self._admin = create_cliniko_admin_app(self)
        if seed is not None:
            self.reset()

    def reset(self) -> None:
        """Back to the seeded state (same ids, clock restored, rate limit 200 and windows
        empty); counts and faults cleared."""
        self.faults.clear()
        self.requests.reset()
        if self._seed is not None:
            self.state.reset()
            self.info = self._seed(self.state)

    def info_json(self) -> dict[str, Any]:
        return self.info.to_json() if self.info is not None else {}

    def route_template(self, scope: Scope) -> str | None:
        return route_template(self._api_routes, scope)

    def _date(self) -> str:
        return format_datetime(self.state.clock.now(), usegmt=True)

    def _dated(self, app: ASGIApp) -> ASGIApp:
        """Every answer carries the sandbox clock's ``Date`` (the server sends none)."""

        async def dated(scope: Scope, receive: Receive, send: Send) -> None:
            async def send_dated(message: Message) -> None:
                if message["type"] == "http.response.start":
                    headers = MutableHeaders(raw=list(message["headers"]))
                    headers["date"] = self._date()
                    message = {**message, "headers": headers.raw}
                await send(message)

            await app(scope, receive, send_dated)

        return dated

    def _answer(self, fault: FaultSpec) -> Response:
        """An injected 500, or a 429 like the real limit's with ``Retry-After``."""
        if fault.kind == "rate_limit":
            error = too_many(self.state.limit, default_retry_after(fault))
        else:
            error = ClinikoError(500, "Internal server error (a fault injected by the sandbox)")
        error.headers["date"] = self._date()
        return error.response()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if is_admin_path(scope.get("path", "")):
            await self._admin(scope, receive, send)
            return
        await self._api(scope, receive, send)


def create_app(state: ClinikoState, *, seed: Seeder | None = seed_demo) -> ClinikoApp:
    """The Cliniko sandbox app over ``state``.

    With a ``seed`` (the demo data by default) the state is reset and seeded now and on every
    ``POST /_sandbox/reset``; with ``seed=None`` the state is used as it is.
    """
    return ClinikoApp(state, seed)


__all__ = ["ClinikoApp", "ClinikoError", "Seeder", "create_app"]
