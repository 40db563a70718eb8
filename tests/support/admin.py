"""What the test handles of every sandbox share: its ``/_sandbox`` admin path over HTTP."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import httpx


class SandboxAdmin:
    """Admin helpers for a served sandbox; subclasses give ``url``. Helpers answer the
    ``data`` of the admin response and raise AssertionError on an error answer."""

    @property
    def url(self) -> str:
        raise NotImplementedError

    def _admin(self, method: str, path: str, **kwargs: Any) -> Any:
        response = httpx.request(method, f"{self.url}/_sandbox{path}", timeout=10, **kwargs)
        if response.status_code >= 400:
            raise AssertionError(
                f"{method} /_sandbox{path}: {response.status_code} {response.text}"
            )
        return response.json()["data"] if response.status_code == 200 else None

    def fault(self, spec: dict[str, Any]) -> None:
        self._admin("POST", "/faults", json=spec)

    def requests(self) -> dict[str, int]:
        counts: dict[str, int] = self._admin("GET", "/requests")
        return counts

    def clear_requests(self) -> None:
        self._admin("DELETE", "/requests")


class ClockAdmin(SandboxAdmin):
    """For sandboxes with a controllable clock (Jira, GitHub)."""

    def clock(self) -> dict[str, Any]:
        result: dict[str, Any] = self._admin("GET", "/clock")
        return result

    def freeze_clock(self, now: datetime) -> dict[str, Any]:
        result: dict[str, Any] = self._admin("POST", "/clock", json={"now": now.isoformat()})
        return result

    def advance_clock(self, seconds: float) -> dict[str, Any]:
        result: dict[str, Any] = self._admin("POST", "/clock", json={"advance": seconds})
        return result
