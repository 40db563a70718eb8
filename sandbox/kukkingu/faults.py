"""Fault injection and request counting for the Kukkingu sandbox.

The machinery (fault kinds, matching, the FIFO plan, request counts, the ASGI wrapper) is
shared with the other sandboxes and lives in :mod:`sandbox.common.faults`; see its docstring
for the fault kinds. This module only decides how an injected 500 or 429 looks in Kukkingu's
error shape, ``{"error": code, "message": text}``, with ``Retry-After`` on a 429.
"""

from __future__ import annotations

from starlette.responses import JSONResponse, Response
from starlette.types import ASGIApp

from sandbox.common.faults import (
    Fault,
    FaultKind,
    FaultMatch,
    FaultPlan,
    FaultSpec,
    RequestCounter,
    RouteResolver,
    default_retry_after,
)
from sandbox.common.faults import FaultInjector as _FaultInjector

__all__ = [
    "Fault",
    "FaultInjector",
    "FaultKind",
    "FaultMatch",
    "FaultPlan",
    "FaultSpec",
    "RequestCounter",
    "RouteResolver",
    "kukkingu_answer",
]


def kukkingu_answer(fault: FaultSpec) -> Response:
    """An injected 500 or 429 in Kukkingu's error shape."""
    if fault.kind == "rate_limit":
        body = {"error": "TooManyRequests", "message": "injected fault: rate_limit"}
        headers = {"Retry-After": str(default_retry_after(fault))}
        return JSONResponse(body, status_code=429, headers=headers)
    body = {"error": "InternalServerError", "message": "injected fault: error500"}
    return JSONResponse(body, status_code=500)


class FaultInjector(_FaultInjector):
    """The shared injector, answering faults in Kukkingu's error shape."""

    def __init__(
        self, app: ASGIApp, plan: FaultPlan, counter: RequestCounter, resolve: RouteResolver
    ) -> None:
        super().__init__(app, plan, counter, resolve, kukkingu_answer)
