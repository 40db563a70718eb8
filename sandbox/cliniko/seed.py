"""The fixed demo data every fresh (or reset) Cliniko sandbox starts with.

Credentials are constants because the docs, the tests and the demo hardcode them: the API key
``cliniko-sandbox-key-au1`` (Cliniko keys end in their shard; the key without ``-au1`` works
too) and a second key, ``cliniko-sandbox-other-key-au1``, on the same account but with its
own rate-limit budget. Neither is a secret: the sandbox answers loopback clients only.

Six billable items, created over the 90 days before the sandbox clock's now (the anchor), in
id order: the price list of SPEC §11 (``CONSULT-60`` and ``REVIEW-30``, services; the latter
repriced later, so its ``updated_at`` is after its ``created_at``), a product, an item
without an item code, an archived service and a service priced with three decimals (more
than any currency has: a configuration problem billsync must report). The same anchor gives
the same data, ids included.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sandbox.cliniko.state import ClinikoState
from sandbox.common.clock import iso_z

# Public, documented demo credentials of a loopback-only fake, not secrets.
DEMO_API_KEY = "cliniko-sandbox-key-au1"
OTHER_API_KEY = "cliniko-sandbox-other-key-au1"
DEMO_USER_AGENT = "billsync (billing@example.com)"
GST_TAX_ID = 1_392_460_880_000_000_017  # the tax the services carry (no /taxes route)


@dataclass(frozen=True)
class DemoItem:
    name: str
    item_code: str | None
    item_type: str
    price: str
    tax_id: int | None
    created_days_ago: int
    repriced: tuple[str, int] | None = None  # (new price, days ago)
    archived_days_ago: int | None = None


DEMO_ITEMS: tuple[DemoItem, ...] = (
    DemoItem("Consultation (60 min)", "CONSULT-60", "Service", "150.00", GST_TAX_ID, 90),
    DemoItem(
        "Review (30 min)", "REVIEW-30", "Service", "90.00", GST_TAX_ID, 80, repriced=("95.50", 5)
    ),
    DemoItem("Exercise workbook", "BOOK-1", "Product", "39.95", None, 60),
    DemoItem("Late cancellation fee", None, "Other", "45.00", None, 45),
    DemoItem(
        "Consultation (legacy)",
        "CONSULT-OLD",
        "Service",
        "120.00",
        GST_TAX_ID,
        40,
        archived_days_ago=10,
    ),
    DemoItem("Precision rate", "PRECISE-1", "Service", "99.999", None, 20),
)


@dataclass(frozen=True)
class ClinikoSeedInfo:
    """What ``GET /_sandbox/info`` and ``billsync sandbox --info`` tell about the data."""

    api_key: str
    other_api_key: str
    user_agent: str
    tax_id: int
    anchor: datetime
    items: dict[str, str] = field(default_factory=dict)  # item code (or name) -> id
    archived: tuple[str, ...] = ()  # ids of the archived items

    def to_json(self) -> dict[str, Any]:
        return {
            "apiKey": self.api_key,
            "otherApiKey": self.other_api_key,
            "userAgent": self.user_agent,
            "taxId": str(self.tax_id),
            "items": dict(self.items),
            "archivedItems": list(self.archived),
            "anchor": iso_z(self.anchor),
        }


def seed_demo(state: ClinikoState) -> ClinikoSeedInfo:
    """Fill an empty ``state`` with the demo data, anchored at the sandbox clock's now."""
    anchor = state.clock.now().astimezone(UTC).replace(microsecond=0)
    state.add_key(DEMO_API_KEY)
    state.add_key(OTHER_API_KEY)
    items: dict[str, str] = {}
    archived: list[str] = []
    for demo in DEMO_ITEMS:
        created = anchor - timedelta(days=demo.created_days_ago, hours=3)
        item = state.add_item(
            name=demo.name,
            item_code=demo.item_code,
            item_type=demo.item_type,
            price=demo.price,
            tax_id=demo.tax_id,
            created=created,
        )
        if demo.repriced is not None:
            price, days_ago = demo.repriced
            state.update_item(item.id, {"price": price}, at=anchor - timedelta(days=days_ago))
        if demo.archived_days_ago is not None:
            state.archive_item(item.id, at=anchor - timedelta(days=demo.archived_days_ago))
            archived.append(str(item.id))
        items[demo.item_code or demo.name] = str(item.id)
    return ClinikoSeedInfo(
        api_key=DEMO_API_KEY,
        other_api_key=OTHER_API_KEY,
        user_agent=DEMO_USER_AGENT,
        tax_id=GST_TAX_ID,
        anchor=anchor,
        items=items,
        archived=tuple(archived),
    )


__all__ = [
    "DEMO_API_KEY",
    "DEMO_ITEMS",
    "DEMO_USER_AGENT",
    "GST_TAX_ID",
    "OTHER_API_KEY",
    "ClinikoSeedInfo",
    "DemoItem",
    "seed_demo",
]
