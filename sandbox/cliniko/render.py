"""Cliniko's JSON shapes for billable items and their lists.

Every URL is absolute, on the host and under the ``/v1`` root the request came in on (as
Cliniko's ``links`` point at ``https://api.au1.cliniko.com/v1/...``). Ids are strings, times
are UTC with ``Z`` in whole seconds, the price is the decimal string as written.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from starlette.requests import Request

from sandbox.cliniko.state import BillableItem
from sandbox.common.clock import iso_z

API_ROOT = "/v1"


def api_root(request: Request) -> str:
    """``http://<host the request named>/v1``: where the links of an answer point."""
    host = request.headers.get("host") or f"{request.url.hostname}:{request.url.port}"
    return f"{request.url.scheme}://{host}{API_ROOT}"


def item_url(root: str, item_id: int) -> str:
    return f"{root}/billable_items/{item_id}"


def item_json(item: BillableItem, root: str) -> dict[str, Any]:
    """One billable item; ``root`` is e.g. ``http://127.0.0.1:8733/v1``."""
    tax = None if item.tax_id is None else {"links": {"self": f"{root}/taxes/{item.tax_id}"}}
    return {
        "id": str(item.id),
        "name": item.name,
        "item_code": item.item_code,
        "item_type": item.item_type,
        "price": item.price,
        "tax": tax,
        "archived_at": iso_z(item.archived) if item.archived is not None else None,
        "created_at": iso_z(item.created),
        "updated_at": iso_z(item.updated),
        "links": {"self": item_url(root, item.id)},
    }


def list_json(
    items: Sequence[BillableItem], root: str, total: int, links: dict[str, str]
) -> dict[str, Any]:
    return {
        "billable_items": [item_json(item, root) for item in items],
        "total_entries": total,
        "links": links,
    }


__all__ = ["API_ROOT", "api_root", "item_json", "item_url", "list_json"]
