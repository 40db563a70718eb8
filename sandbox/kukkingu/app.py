"""The Kukkingu sandbox's HTTP face: routes, auth, bodies and error rendering.

``create_app(state)`` returns the ASGI app uvicorn serves. Per request it:

1. counts it and applies any injected fault (``faults.FaultInjector``, outermost);
2. routes it; an unknown path is a 404 and a wrong method a 405, both as JSON;
3. authenticates the bearer token (401) and, except under ``/api/v1/tenants``, checks the
   ``tenant-id`` header (400 missing, 403 not allowed);
4. checks the query (unknown parameters are a 400) and parses the body (``schemas``);
5. calls one :class:`~sandbox.kukkingu.state.KukkinguState` method and wraps the result in
   ``{"data": ...}`` (200), or answers 204 for deletes.

Errors raised anywhere become ``{"error": code, "message": text}``.
``/_sandbox/...`` goes to the admin app instead (``admin.py``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Match, Route
from starlette.types import Receive, Scope, Send

from sandbox.common.faults import route_template
from sandbox.kukkingu import schemas
from sandbox.kukkingu.admin import ADMIN_PREFIX, create_admin_app
from sandbox.kukkingu.errors import ApiError, BadRequest, MethodNotAllowed, NotFound
from sandbox.kukkingu.faults import FaultInjector, FaultPlan, RequestCounter
from sandbox.kukkingu.records import INVOICE_STATUSES, InvoiceStatus
from sandbox.kukkingu.seed import DemoSeed, seed_demo
from sandbox.kukkingu.state import (
    BILLABLE_EXPANDS,
    CONTRACT_EXPANDS,
    INVOICE_EXPANDS,
    KukkinguState,
    parse_expand,
)

API = "/api/v1"
Seeder = Callable[[KukkinguState], DemoSeed]
BodyT = TypeVar("BodyT", bound=schemas.Body)


def _ok(data: object) -> JSONResponse:
    return JSONResponse({"data": data})


def _no_content() -> Response:
    return Response(status_code=204)


def _bearer(request: Request) -> str | None:
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    return token if scheme.lower() == "bearer" and token else None


def _query(request: Request, *allowed: str) -> dict[str, str]:
    """The query parameters, each at most once; an undocumented one is a 400."""
    result: dict[str, str] = {}
    for key, value in request.query_params.multi_items():
        if key not in allowed:
            raise BadRequest(f"{key}: unknown query parameter")
        if key in result:
            raise BadRequest(f"{key}: may be given only once")
        result[key] = value
    return result


async def _body(request: Request, model: type[BodyT]) -> BodyT:
    media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media_type != "application/json":
        raise BadRequest("content-type: must be application/json")
    return schemas.parse_body(model, await request.body())


def _status(raw: str | None) -> InvoiceStatus | None:
    if raw is None:
        return None
    for status in INVOICE_STATUSES:
        if raw == status:
            return status
    raise BadRequest(f"status: must be one of {', '.join(INVOICE_STATUSES)}")


class KukkinguRoutes:
    """One endpoint per documented operation, each a thin call into the state."""

    def __init__(self, state: KukkinguState) -> None:
        self.state = state

    def _token(self, request: Request) -> str:
        return self.state.authenticate(_bearer(request))

    def _tenant(self, request: Request) -> str:
        token = self._token(request)
        return self.state.authorize(token, request.headers.get("tenant-id"))

    def routes(self) -> list[BaseRoute]:
        # The /billables/order route must come before /billables/{billableId}.
        return [
            Route(f"{API}/billables", self.list_billables, methods=["GET"]),
            Route(f"{API}/billables", self.create_billables, methods=["POST"]),
            Route(f"{API}/billables/order", self.reorder_billables, methods=["POST"]),
            Route(f"{API}/billables/{{billableId}}", self.get_billable, methods=["GET"]),
            Route(f"{API}/billables/{{billableId}}", self.replace_billable, methods=["PUT"]),
            Route(f"{API}/billables/{{billableId}}", self.patch_billable, methods=["PATCH"]),
            Route(f"{API}/invoices", self.list_invoices, methods=["GET"]),
            Route(f"{API}/invoices", self.create_invoice, methods=["POST"]),
            Route(f"{API}/invoices/{{invoiceId}}", self.get_invoice, methods=["GET"]),
            Route(f"{API}/invoices/{{invoiceId}}", self.replace_invoice, methods=["PUT"]),
            Route(f"{API}/invoices/{{invoiceId}}/finalize", self.finalize, methods=["POST"]),
            Route(f"{API}/invoices/{{invoiceId}}/void", self.void, methods=["POST"]),
            Route(f"{API}/contracts", self.list_contracts, methods=["GET"]),
            Route(f"{API}/contracts", self.create_contract, methods=["POST"]),
            Route(f"{API}/contracts/{{contractId}}", self.get_contract, methods=["GET"]),
            Route(f"{API}/contracts/{{contractId}}", self.delete_contract, methods=["DELETE"]),
            Route(f"{API}/clients", self.list_clients, methods=["GET"]),
            Route(f"{API}/clients", self.create_client, methods=["POST"]),
            Route(f"{API}/clients/{{clientId}}", self.patch_client, methods=["PATCH"]),
            Route(f"{API}/clients/{{clientId}}", self.delete_client, methods=["DELETE"]),
            Route(f"{API}/tenants", self.list_tenants, methods=["GET"]),
            Route(f"{API}/tenants", self.create_tenant, methods=["POST"]),
            Route(f"{API}/tenants/{{tenantId}}", self.get_tenant, methods=["GET"]),
            Route(f"{API}/tenants/{{tenantId}}", self.patch_tenant, methods=["PATCH"]),
        ]

    # -- billables ------------------------------------------------------------------------

    async def list_billables(self, request: Request) -> Response:
        tenant = self._tenant(request)
        query = _query(request, "invoiceId", "expand")
        expand = parse_expand(query.get("expand"), BILLABLE_EXPANDS)
        return _ok(self.state.list_billables(tenant, query.get("invoiceId"), expand))

    async def create_billables(self, request: Request) -> Response:
        tenant = self._tenant(request)
        _query(request)
        body = await _body(request, schemas.BillablesCreate)
        return _ok(self.state.create_billables(tenant, body))

    async def reorder_billables(self, request: Request) -> Response:
        tenant = self._tenant(request)
        _query(request)
        body = await _body(request, schemas.BillablesReorder)
        return _ok(self.state.reorder_billables(tenant, body))

    async def get_billable(self, request: Request) -> Response:
        tenant = self._tenant(request)
        expand = parse_expand(_query(request, "expand").get("expand"), BILLABLE_EXPANDS)
        billable_id = request.path_params["billableId"]
        return _ok(self.state.get_billable(tenant, billable_id, expand))

    async def replace_billable(self, request: Request) -> Response:
        tenant = self._tenant(request)
        _query(request)
        body = await _body(request, schemas.BillableReplace)
        return _ok(self.state.replace_billable(tenant, request.path_params["billableId"], body))

    async def patch_billable(self, request: Request) -> Response:
        tenant = self._tenant(request)
        _query(request)
        body = await _body(request, schemas.BillablePatch)
        return _ok(self.state.patch_billable(tenant, request.path_params["billableId"], body))

    # -- invoices -------------------------------------------------------------------------

    async def list_invoices(self, request: Request) -> Response:
        tenant = self._tenant(request)
        query = _query(request, "contractId", "status", "expand")
        expand = parse_expand(query.get("expand"), INVOICE_EXPANDS)
        status = _status(query.get("status"))
        return _ok(self.state.list_invoices(tenant, query.get("contractId"), status, expand))

    async def get_invoice(self, request: Request) -> Response:
        """Not on a docs page, but billsync needs it; it takes the same ``expand`` as the list."""
        tenant = self._tenant(request)
        expand = parse_expand(_query(request, "expand").get("expand"), INVOICE_EXPANDS)
        return _ok(self.state.get_invoice(tenant, request.path_params["invoiceId"], expand))

    async def create_invoice(self, request: Request) -> Response:
        tenant = self._tenant(request)
        _query(request)
        body = await _body(request, schemas.InvoiceWrite)
        return _ok(self.state.create_invoice(tenant, body))

    async def replace_invoice(self, request: Request) -> Response:
        tenant = self._tenant(request)
        _query(request)
        body = await _body(request, schemas.InvoiceWrite)
        return _ok(self.state.replace_invoice(tenant, request.path_params["invoiceId"], body))

    async def finalize(self, request: Request) -> Response:
        tenant = self._tenant(request)
        _query(request)
        return _ok(self.state.finalize_invoice(tenant, request.path_params["invoiceId"]))

    async def void(self, request: Request) -> Response:
        tenant = self._tenant(request)
        _query(request)
        return _ok(self.state.void_invoice(tenant, request.path_params["invoiceId"]))

    # -- contracts ------------------------------------------------------------------------

    async def list_contracts(self, request: Request) -> Response:
        tenant = self._tenant(request)
        query = _query(request, "clientId", "expand")
        expand = parse_expand(query.get("expand"), CONTRACT_EXPANDS)
        return _ok(self.state.list_contracts(tenant, query.get("clientId"), expand))

    async def get_contract(self, request: Request) -> Response:
        tenant = self._tenant(request)
        expand = parse_expand(_query(request, "expand").get("expand"), CONTRACT_EXPANDS)
        return _ok(self.state.get_contract(tenant, request.path_params["contractId"], expand))

    async def create_contract(self, request: Request) -> Response:
        tenant = self._tenant(request)
        _query(request)
        body = await _body(request, schemas.ContractCreate)
        return _ok(self.state.create_contract(tenant, body))

    async def delete_contract(self, request: Request) -> Response:
        tenant = self._tenant(request)
        _query(request)
        self.state.delete_contract(tenant, request.path_params["contractId"])
        return _no_content()

    # -- clients --------------------------------------------------------------------------

    async def list_clients(self, request: Request) -> Response:
        tenant = self._tenant(request)
        _query(request)
        return _ok(self.state.list_clients(tenant))

    async def create_client(self, request: Request) -> Response:
        tenant = self._tenant(request)
        _query(request)
        body = await _body(request, schemas.ClientCreate)
        return _ok(self.state.create_client(tenant, body))

    async def patch_client(self, request: Request) -> Response:
        tenant = self._tenant(request)
        _query(request)
        body = await _body(request, schemas.ClientPatch)
        return _ok(self.state.patch_client(tenant, request.path_params["clientId"], body))

    async def delete_client(self, request: Request) -> Response:
        tenant = self._tenant(request)
        _query(request)
        self.state.delete_client(tenant, request.path_params["clientId"])
        return _no_content()

    # -- tenants (token only: no tenant-id header) ------------------------------------------

    async def list_tenants(self, request: Request) -> Response:
        token = self._token(request)
        return _ok(self.state.list_tenants(token, _query(request, "search").get("search")))

    async def create_tenant(self, request: Request) -> Response:
        token = self._token(request)
        _query(request)
        body = await _body(request, schemas.TenantCreate)
        return _ok(self.state.create_tenant(token, body))

    async def get_tenant(self, request: Request) -> Response:
        token = self._token(request)
        _query(request)
        return _ok(self.state.get_tenant(token, request.path_params["tenantId"]))

    async def patch_tenant(self, request: Request) -> Response:
        token = self._token(request)
        _query(request)
        body = await _body(request, schemas.TenantPatch)
        return _ok(self.state.patch_tenant(token, request.path_params["tenantId"], body))


def _allowed_methods(routes: list[BaseRoute], scope: Scope) -> str:
    methods: set[str] = set()
    for route in routes:
        match, _ = route.matches(scope)
        if match is not Match.NONE:
            methods.update(getattr(route, "methods", None) or ())
    return ", ".join(sorted(methods))


def _error_renderer(routes: list[BaseRoute]) -> Callable[[Request, Exception], Response]:
    """ApiError → its own body; the router's 404/405 → the same JSON shape."""

    def render(request: Request, exc: Exception) -> Response:
        if isinstance(exc, HTTPException):
            if exc.status_code == 405:
                allow = {"Allow": _allowed_methods(routes, request.scope)}
                refused = MethodNotAllowed(f"{request.method} is not allowed on {request.url.path}")
                return JSONResponse(refused.body(), refused.status, allow)
            if exc.status_code == 404:
                missing = NotFound(f"no route {request.method} {request.url.path}")
                return JSONResponse(missing.body(), missing.status)
            body = {"error": "Error", "message": str(exc.detail)}
            return JSONResponse(body, exc.status_code, exc.headers)
        assert isinstance(exc, ApiError)
        return JSONResponse(exc.body(), exc.status)

    return render


class KukkinguApp:
    """The served ASGI app: admin routes, fault injection and the API, plus their state.

    Tests may use ``state``, ``faults``, ``requests`` and :meth:`reset` directly (in-process,
    thread-safe) instead of going through ``/_sandbox``.
    """

    def __init__(self, state: KukkinguState, seed: Seeder | None = seed_demo) -> None:
        self.state = state
        self.faults = FaultPlan()
        self.requests = RequestCounter()
        self.demo: DemoSeed | None = None
        self._seed = seed
        self._api_routes = KukkinguRoutes(state).routes()
        render = _error_renderer(self._api_routes)
        api = Starlette(
            routes=self._api_routes,
            exception_handlers={ApiError: render, HTTPException: render},
        )
        self._api = FaultInjector(api, self.faults, self.requests, self.route_template)
        self._admin = create_admin_app(
            plan=self.faults, counter=self.requests, reset=self.reset, info=self._info
        )
        if seed is not None:
            self.reset()

    def reset(self) -> None:
        """Back to the seeded state (same ids as a fresh start); counts and faults cleared."""
        self.faults.clear()
        self.requests.reset()
        if self._seed is not None:
            self.state.reset()
            self.demo = self._seed(self.state)

    def _info(self) -> dict[str, Any]:
        return self.demo.to_json() if self.demo is not None else {}

    def route_template(self, scope: Scope) -> str | None:
        return route_template(self._api_routes, scope)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path: str = scope.get("path", "")
        if path == ADMIN_PREFIX or path.startswith(ADMIN_PREFIX + "/"):
            await self._admin(scope, receive, send)
        else:
            await self._api(scope, receive, send)


def create_app(state: KukkinguState, *, seed: Seeder | None = seed_demo) -> KukkinguApp:
    """The Kukkingu sandbox app over ``state``.

    With a ``seed`` (the demo data by default) the state is reset and seeded now and again on
    every ``POST /_sandbox/reset``; with ``seed=None`` the state is used as it is, and a
    reset only clears counts and faults.
    """
    return KukkinguApp(state, seed)
