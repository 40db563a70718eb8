"""The ``/_sandbox/...`` control endpoints of the Kukkingu sandbox.

They are the shared ones of :mod:`sandbox.common.admin` (requests, faults, reset, info;
loopback only, never counted, never faulted), with fault-spec errors described the way the
Kukkingu API describes its own 400s.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from starlette.types import ASGIApp

from sandbox.common.admin import ADMIN_PREFIX, LOOPBACK_HOSTS, LoopbackOnly
from sandbox.common.admin import create_admin_app as _create_admin_app
from sandbox.kukkingu.faults import FaultPlan, RequestCounter
from sandbox.kukkingu.schemas import describe_validation_error

__all__ = ["ADMIN_PREFIX", "LOOPBACK_HOSTS", "LoopbackOnly", "create_admin_app"]


def create_admin_app(
    *,
    plan: FaultPlan,
    counter: RequestCounter,
    reset: Callable[[], None],
    info: Callable[[], dict[str, Any]],
) -> ASGIApp:
    """The admin routes, wired to the sandbox's fault plan, counter and reset."""
    return _create_admin_app(
        plan=plan, counter=counter, reset=reset, info=info, describe=describe_validation_error
    )
