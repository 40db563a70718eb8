"""A Cliniko sandbox served over real HTTP for tests, with its admin path at hand."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx

from sandbox.cliniko import ClinikoApp, ClinikoState, create_app
from sandbox.cliniko.app import Seeder
from sandbox.cliniko.seed import DEMO_API_KEY, DEMO_USER_AGENT, seed_demo
from sandbox.server import ServerThread
from tests.support.admin import ClockAdmin

CLINIKO_NOW = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)
"""Where the test fixtures freeze the sandbox clock (the demo items lie in the 90 days before)."""


@dataclass
class RunningCliniko(ClockAdmin):
    """The sandbox app, its server, and shortcuts to ``/_sandbox`` (faults, counts, reset,
    clock, items, rate limit). Admin helpers answer the ``data`` of the admin response."""

    app: ClinikoApp
    server: ServerThread

    @property
    def url(self) -> str:
        """The server root (``/_sandbox`` lives here)."""
        return self.server.url

    @property
    def base_url(self) -> str:
        """The API root, as ``https://api.au1.cliniko.com/v1``."""
        return f"{self.server.url}/v1"

    def http(
        self, key: str | None = DEMO_API_KEY, user_agent: str | None = DEMO_USER_AGENT
    ) -> httpx.Client:
        """An httpx client on the API root with ``key`` (None: no auth) and ``user_agent``
        (None: httpx's own, which Cliniko refuses)."""
        headers = {"User-Agent": user_agent} if user_agent is not None else {}
        auth = (key, "") if key is not None else None
        return httpx.Client(base_url=self.base_url, auth=auth, headers=headers, timeout=10)

    def reset(self) -> None:
        """Back to the seeded state (clock restored, limit 200), counts and faults cleared;
        in-process."""
        self.app.reset()

    def info(self) -> dict[str, Any]:
        result: dict[str, Any] = self._admin("GET", "/info")
        return result

    def item_id(self, code: str) -> str:
        """The id of a demo item by its item code (or name, for one without)."""
        return str(self.info()["items"][code])

    def items(self) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = self._admin("GET", "/billable_items")
        return result

    def add_item(self, **body: Any) -> dict[str, Any]:
        result: dict[str, Any] = self._admin("POST", "/billable_items", json=body)
        return result

    def edit_item(self, item_id: str, **changes: Any) -> dict[str, Any]:
        result: dict[str, Any] = self._admin("PATCH", f"/billable_items/{item_id}", json=changes)
        return result

    def rate_limit(self) -> dict[str, Any]:
        result: dict[str, Any] = self._admin("GET", "/rate_limit")
        return result

    def set_rate_limit(self, limit: int) -> dict[str, Any]:
        result: dict[str, Any] = self._admin("POST", "/rate_limit", json={"limit": limit})
        return result


@contextmanager
def running_cliniko(
    *, now: datetime | None = None, seed: Seeder | None = seed_demo
) -> Iterator[RunningCliniko]:
    app = create_app(ClinikoState(now=now), seed=seed)
    with ServerThread(app, date_header=False) as server:  # the app sends its clock's Date
        yield RunningCliniko(app, server)
