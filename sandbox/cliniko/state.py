"""The Cliniko sandbox's store: billable items, the API keys that may read them, the sandbox
clock and the per-key rate-limit windows. Pure Python, one lock, no HTTP (``app.py`` serves
it).

Items are frozen values: a change stores a new one, so a caller never sees an item change
under its feet. Instants are aware UTC datetimes in whole seconds, as Cliniko writes them
(``2026-11-20T09:00:00Z``). Ids are large int64s that grow with creation, so "ascending id"
is "oldest first". ``updated_at`` moves only when a change alters a value (Rails does not
touch a record saved without changes); archiving moves it too.
"""

from __future__ import annotations

import math
import threading
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from sandbox.common.clock import SandboxClock

FIRST_ITEM_ID = 1_392_460_883_283_501_057
ID_STEP = 65_537  # ids look like Cliniko's (19 digits) and still grow with creation
RATE_LIMIT = 200  # requests per key and window, as Cliniko documents
RATE_WINDOW = timedelta(seconds=60)
SHARD = "au1"  # the suffix of a sandbox API key, as in https://api.au1.cliniko.com/v1


@dataclass(frozen=True, slots=True)
class BillableItem:
    id: int
    name: str
    item_code: str | None
    item_type: str  # Product | Service | Other (rules.ITEM_TYPES)
    price: str  # a decimal string, kept exactly as written
    tax_id: int | None
    created: datetime
    updated: datetime
    archived: datetime | None = None


class NotFound(LookupError):
    """No such billable item."""


class Invalid(ValueError):
    """A change the store refuses (the admin API answers 400)."""


def whole_seconds(moment: datetime) -> datetime:
    if moment.tzinfo is None:
        raise Invalid("naive datetime: the sandbox needs timezone-aware instants")
    return moment.astimezone(UTC).replace(microsecond=0)


class ClinikoState:
    """Everything the Cliniko sandbox knows, behind one lock.

    ``now``: freeze the sandbox clock at this instant (default: the real clock). ``reset()``
    empties the store, forgets the keys and the rate-limit windows, puts the limit back to
    200 and the clock back to how it was created.
    """

    def __init__(self, *, now: datetime | None = None) -> None:
        self.clock = SandboxClock(now)
        self._lock = threading.RLock()
        self._items: dict[int, BillableItem] = {}
        self._keys: set[str] = set()
        self._next_id = FIRST_ITEM_ID
        self._limit = RATE_LIMIT
        self._windows: dict[str, deque[datetime]] = {}

    def reset(self) -> None:
        with self._lock:
            self._items = {}
            self._keys = set()
            self._next_id = FIRST_ITEM_ID
            self._limit = RATE_LIMIT
            self._windows = {}
            self.clock.restore()

    def _at(self, moment: datetime | None) -> datetime:
        return whole_seconds(moment if moment is not None else self.clock.now())

    # -- API keys ---------------------------------------------------------------------------

    def add_key(self, key: str) -> None:
        """A key usable with or without its ``-au1`` shard suffix, as Cliniko's are."""
        if not key.endswith(f"-{SHARD}") or len(key) <= len(SHARD) + 1:
            raise Invalid(f"an API key ends in its shard suffix -{SHARD}")
        with self._lock:
            self._keys.add(key)

    def authenticate(self, user: str) -> str | None:
        """The full key (the rate-limit bucket) that ``user`` names, or None."""
        with self._lock:
            if user in self._keys:
                return user
            full = f"{user}-{SHARD}"
            return full if full in self._keys else None

    # -- rate limit -------------------------------------------------------------------------

    @property
    def limit(self) -> int:
        with self._lock:
            return self._limit

    def set_limit(self, limit: int) -> None:
        if limit < 1:
            raise Invalid("the rate limit is at least 1 request per minute")
        with self._lock:
            self._limit = limit

    def admit(self, key: str) -> int | None:
        """Count a request of ``key`` in its sliding one-minute window: None when admitted,
        else the whole seconds until one would be (a refused request is not counted)."""
        now = self.clock.now()
        with self._lock:
            window = self._windows.setdefault(key, deque())
            while window and window[0] <= now - RATE_WINDOW:
                window.popleft()
            if len(window) < self._limit:
                window.append(now)
                return None
            # the request that must leave the window before there is room again
            frees_at = window[len(window) - self._limit] + RATE_WINDOW
            return max(1, math.ceil((frees_at - now).total_seconds()))

    def usage(self) -> dict[str, int]:
        """Requests each key has in its window now."""
        now = self.clock.now()
        with self._lock:
            return {
                key: sum(1 for at in window if at > now - RATE_WINDOW)
                for key, window in sorted(self._windows.items())
            }

    # -- billable items ---------------------------------------------------------------------

    def add_item(
        self,
        *,
        name: str,
        item_type: str,
        price: str,
        item_code: str | None = None,
        tax_id: int | None = None,
        created: datetime | None = None,
    ) -> BillableItem:
        """A new item; its values must already be valid (``rules.validate_write``)."""
        at = self._at(created)
        with self._lock:
            item = BillableItem(
                id=self._next_id,
                name=name,
                item_code=item_code,
                item_type=item_type,
                price=price,
                tax_id=tax_id,
                created=at,
                updated=at,
            )
            self._next_id += ID_STEP
            self._items[item.id] = item
            return item

    def find_item(self, item_id: int) -> BillableItem | None:
        with self._lock:
            return self._items.get(item_id)

    def item(self, item_id: int) -> BillableItem:
        found = self.find_item(item_id)
        if found is None:
            raise NotFound(f"billable item {item_id} does not exist")
        return found

    def items(self) -> list[BillableItem]:
        """Every item, archived ones too, by ascending id."""
        with self._lock:
            return sorted(self._items.values(), key=lambda item: item.id)

    def update_item(
        self, item_id: int, changes: Mapping[str, Any], *, at: datetime | None = None
    ) -> BillableItem:
        """Apply validated ``changes`` (field name -> value; ``archived`` too). ``updated``
        moves to ``at`` (default: now) only if a value changes."""
        moment = self._at(at)
        with self._lock:
            item = self.item(item_id)
            changed = replace(item, **changes)
            if changed != item:
                changed = replace(changed, updated=moment)
                self._items[item_id] = changed
            return changed

    def archive_item(self, item_id: int, *, at: datetime | None = None) -> BillableItem:
        """Archive an item; archiving an archived item changes nothing."""
        moment = self._at(at)
        with self._lock:
            item = self.item(item_id)
            if item.archived is not None:
                return item
            return self.update_item(item_id, {"archived": moment}, at=moment)


__all__ = [
    "FIRST_ITEM_ID",
    "ID_STEP",
    "RATE_LIMIT",
    "RATE_WINDOW",
    "SHARD",
    "BillableItem",
    "ClinikoState",
    "Invalid",
    "NotFound",
]
