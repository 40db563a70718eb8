"""The generic ``/_sandbox/...`` control endpoints every sandbox offers.

billsync itself never calls them. They need no token but answer only loopback clients
(403 otherwise), are not counted and never meet an injected fault:

    GET    /_sandbox/requests   {"data": {"POST /api/v1/billables": 3, ...}}
    DELETE /_sandbox/requests   reset the counts (204)
    GET    /_sandbox/faults     {"data": [pending faults]}
    POST   /_sandbox/faults     queue one fault (body: faults.FaultSpec) → {"data": fault}
    DELETE /_sandbox/faults     clear every pending fault (204)
    POST   /_sandbox/reset      back to the freshly seeded state; counts and faults cleared (204)
    GET    /_sandbox/info       {"data": what the sandbox was seeded with}

A sandbox adds its own routes (``extra_routes``, already prefixed). Errors are
``{"error": code, "message": text}``.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route
from starlette.types import ASGIApp, Receive, Scope, Send

from sandbox.common.clock import ClockChange, SandboxClock
from sandbox.common.faults import FaultPlan, FaultSpec, RequestCounter

ADMIN_PREFIX = "/_sandbox"
LOOPBACK_HOSTS = frozenset({"127.0.0.1", "::1", "localhost"})


def admin_error(status: int, code: str, message: str) -> JSONResponse:
    """An admin error answer: ``{"error": code, "message": message}``."""
    return JSONResponse({"error": code, "message": message}, status_code=status)


def describe_plainly(exc: ValidationError) -> str:
    """``loc: message`` for every error, joined by ``; ``."""
    return "; ".join(
        f"{'.'.join(str(part) for part in error['loc']) or 'body'}: {error['msg']}"
        for error in exc.errors()
    )


def is_admin_path(path: str) -> bool:
    return path == ADMIN_PREFIX or path.startswith(ADMIN_PREFIX + "/")


class LoopbackOnly:
    """Refuses admin calls from anything but the local machine."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        client = scope.get("client")
        if scope["type"] == "http" and (client is None or client[0] not in LOOPBACK_HOSTS):
            response = admin_error(403, "Forbidden", "the sandbox admin API answers loopback only")
            await response(scope, receive, send)
            return
        await self.app(scope, receive, send)


def create_admin_app(
    *,
    plan: FaultPlan,
    counter: RequestCounter,
    reset: Callable[[], None],
    info: Callable[[], dict[str, Any]],
    describe: Callable[[ValidationError], str] = describe_plainly,
    extra_routes: Sequence[BaseRoute] = (),
    exception_handlers: dict[Any, Callable[[Request, Exception], Response]] | None = None,
) -> ASGIApp:
    """The admin routes, wired to the sandbox's fault plan, counter and reset."""

    async def get_requests(request: Request) -> Response:
        return JSONResponse({"data": counter.snapshot()})

    async def delete_requests(request: Request) -> Response:
        counter.reset()
        return Response(status_code=204)

    async def get_faults(request: Request) -> Response:
        return JSONResponse({"data": plan.pending()})

    async def post_fault(request: Request) -> Response:
        try:
            spec = FaultSpec.model_validate(json.loads(await request.body()))
        except ValueError as exc:  # JSONDecodeError and ValidationError both
            message = describe(exc) if isinstance(exc, ValidationError) else str(exc)
            return admin_error(400, "BadRequest", message)
        return JSONResponse({"data": plan.add(spec).to_json()})

    async def delete_faults(request: Request) -> Response:
        plan.clear()
        return Response(status_code=204)

    async def post_reset(request: Request) -> Response:
        reset()
        return Response(status_code=204)

    async def get_info(request: Request) -> Response:
        return JSONResponse({"data": info()})

    def http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        code = {404: "NotFound", 405: "MethodNotAllowed"}.get(exc.status_code, "Error")
        return admin_error(
            exc.status_code, code, f"{request.method} {request.url.path}: {exc.detail}"
        )

    router = Starlette(
        routes=[
            Route(f"{ADMIN_PREFIX}/requests", get_requests, methods=["GET"]),
            Route(f"{ADMIN_PREFIX}/requests", delete_requests, methods=["DELETE"]),
            Route(f"{ADMIN_PREFIX}/faults", get_faults, methods=["GET"]),
            Route(f"{ADMIN_PREFIX}/faults", post_fault, methods=["POST"]),
            Route(f"{ADMIN_PREFIX}/faults", delete_faults, methods=["DELETE"]),
            Route(f"{ADMIN_PREFIX}/reset", post_reset, methods=["POST"]),
            Route(f"{ADMIN_PREFIX}/info", get_info, methods=["GET"]),
            *extra_routes,
        ],
        exception_handlers={HTTPException: http_error, **(exception_handlers or {})},
    )
    return LoopbackOnly(router)


BodyT = TypeVar("BodyT", bound=BaseModel)


class AdminError(Exception):
    """An admin request that cannot be carried out: answered with ``status`` and ``code``."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


async def parse_body(request: Request, model: type[BodyT]) -> BodyT:
    """The request's JSON body as ``model``; a 400 AdminError naming the problem otherwise."""
    raw = await request.body()
    try:
        json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise AdminError(400, "BadRequest", f"body: is not valid JSON ({exc})") from None
    try:
        return model.model_validate_json(raw)
    except ValidationError as exc:
        raise AdminError(400, "BadRequest", describe_plainly(exc)) from None


Handler = Callable[[Request], Awaitable[Response]]


def ok(data: Any) -> JSONResponse:
    """A successful admin answer: ``{"data": ...}``."""
    return JSONResponse({"data": data})


def guard(not_found: type[Exception], invalid: type[Exception]) -> Callable[[Handler], Handler]:
    """Wrap admin handlers so the sandbox's own errors become JSON answers (404, 400)."""

    def wrap(handler: Handler) -> Handler:
        async def run(request: Request) -> Response:
            try:
                return await handler(request)
            except AdminError as exc:
                return admin_error(exc.status, exc.code, exc.message)
            except not_found as exc:
                return admin_error(404, "NotFound", str(exc))
            except invalid as exc:
                return admin_error(400, "BadRequest", str(exc))

        return run

    return wrap


def clock_routes(clock: SandboxClock) -> list[BaseRoute]:
    """``GET`` and ``POST /_sandbox/clock``: read and change a sandbox's clock."""

    async def get_clock(request: Request) -> Response:
        return ok(clock.to_json())

    async def post_clock(request: Request) -> Response:
        try:
            change = await parse_body(request, ClockChange)
        except AdminError as exc:
            return admin_error(exc.status, exc.code, exc.message)
        return ok(change.apply(clock))

    return [
        Route(f"{ADMIN_PREFIX}/clock", get_clock, methods=["GET"]),
        Route(f"{ADMIN_PREFIX}/clock", post_clock, methods=["POST"]),
    ]
