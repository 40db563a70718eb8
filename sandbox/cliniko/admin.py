"""The Cliniko sandbox's ``/_sandbox/...`` control endpoints: the shared ones (requests,
faults, reset, info; see :mod:`sandbox.common.admin`) plus the clock, the price list and the
rate limit.

Loopback only, never counted, never faulted, never rate limited, no API key. Answers are
``{"data": ...}``; errors ``{"error": code, "message": text}``::

    GET    /_sandbox/clock                  {"data": {"now", "nowMs", "epoch", "frozen"}}
    POST   /_sandbox/clock                  {"now": iso} freeze at | {"advance": s} | {"real": true}
    GET    /_sandbox/billable_items         every item, archived ones too, as the API shows them
    POST   /_sandbox/billable_items         {"name", "item_type", "price", "item_code"?,
                                             "tax_id"?, "created_at"?, "archived_at"?}
    PATCH  /_sandbox/billable_items/{id}    any of name, item_code, item_type, price, tax_id,
                                             archived_at (null unarchives); updated_at = now
                                             if a value changes
    GET    /_sandbox/rate_limit             {"data": {"limit", "windowSeconds", "used": {key: n}}}
    POST   /_sandbox/rate_limit             {"limit": n} (n >= 1); reset puts 200 back

Item fields follow the API's rules (``rules.py``); a bad one is a 400 naming it.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route
from starlette.types import ASGIApp

from sandbox.cliniko.render import api_root, item_json
from sandbox.cliniko.rules import Unprocessable, describe, validate_write
from sandbox.cliniko.state import RATE_WINDOW, ClinikoState, Invalid, NotFound, whole_seconds
from sandbox.common.admin import (
    ADMIN_PREFIX,
    AdminError,
    clock_routes,
    create_admin_app,
    guard,
    ok,
    parse_body,
)

if TYPE_CHECKING:
    from sandbox.cliniko.app import ClinikoApp

ADMIN_ONLY = ("created_at", "archived_at")


class RateLimitChange(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    limit: int = Field(ge=1)


def _instant(field: str, value: Any) -> datetime | None:
    """An admin body's ISO 8601 instant with an offset (or null)."""
    if value is None:
        return None
    try:
        moment = datetime.fromisoformat(value) if isinstance(value, str) else None
    except ValueError:
        moment = None
    if moment is None or moment.tzinfo is None:
        raise AdminError(400, "BadRequest", f"{field}: give an ISO 8601 instant with an offset")
    return moment


async def _item_body(request: Request, *, creating: bool) -> tuple[dict[str, Any], dict[str, Any]]:
    """(the item fields, checked as the API checks them; the admin-only fields)."""
    try:
        document = json.loads(await request.body())
    except ValueError as exc:
        raise AdminError(400, "BadRequest", f"body: is not valid JSON ({exc})") from None
    if not isinstance(document, dict):
        raise AdminError(400, "BadRequest", "body: must be a JSON object")
    extra = {field: document.pop(field) for field in ADMIN_ONLY if field in document}
    if not creating and "created_at" in extra:
        raise AdminError(400, "BadRequest", "created_at: is fixed once an item exists")
    try:
        values = validate_write(document, creating=creating)
    except Unprocessable as exc:
        raise AdminError(400, "BadRequest", describe(exc.errors)) from None
    return values, {field: _instant(field, value) for field, value in extra.items()}


def _item_id(request: Request) -> int:
    raw: str = request.path_params["item_id"]
    if not (raw.isascii() and raw.isdigit()):
        raise AdminError(404, "NotFound", f"billable item {raw} does not exist")
    return int(raw)


def rate_json(state: ClinikoState) -> dict[str, Any]:
    return {
        "limit": state.limit,
        "windowSeconds": int(RATE_WINDOW.total_seconds()),
        "used": state.usage(),
    }


def create_cliniko_admin_app(app: ClinikoApp) -> ASGIApp:
    state = app.state
    guarded = guard(NotFound, Invalid)

    async def list_items(request: Request) -> Response:
        root = api_root(request)
        return ok([item_json(item, root) for item in state.items()])

    async def add_item(request: Request) -> Response:
        values, extra = await _item_body(request, creating=True)
        item = state.add_item(**values, created=extra.get("created_at"))
        archived_at = extra.get("archived_at")
        if archived_at is not None:
            item = state.archive_item(item.id, at=archived_at)
        return ok(item_json(item, api_root(request)))

    async def edit_item(request: Request) -> Response:
        item_id = _item_id(request)
        values, extra = await _item_body(request, creating=False)
        if "archived_at" in extra:
            archived_at = extra["archived_at"]
            values["archived"] = whole_seconds(archived_at) if archived_at is not None else None
        item = state.update_item(item_id, values)
        return ok(item_json(item, api_root(request)))

    async def get_rate_limit(request: Request) -> Response:
        return ok(rate_json(state))

    async def post_rate_limit(request: Request) -> Response:
        change = await parse_body(request, RateLimitChange)
        state.set_limit(change.limit)
        return ok(rate_json(state))

    prefix = ADMIN_PREFIX
    routes: list[BaseRoute] = [
        *clock_routes(state.clock),
        Route(f"{prefix}/billable_items", guarded(list_items), methods=["GET"]),
        Route(f"{prefix}/billable_items", guarded(add_item), methods=["POST"]),
        Route(f"{prefix}/billable_items/{{item_id}}", guarded(edit_item), methods=["PATCH"]),
        Route(f"{prefix}/rate_limit", guarded(get_rate_limit), methods=["GET"]),
        Route(f"{prefix}/rate_limit", guarded(post_rate_limit), methods=["POST"]),
    ]
    return create_admin_app(
        plan=app.faults,
        counter=app.requests,
        reset=app.reset,
        info=app.info_json,
        extra_routes=routes,
    )


__all__ = ["create_cliniko_admin_app"]
