"""The sandbox's Cliniko error answers: ``{"message": text}``, plus ``"errors": {field:
[reasons]}`` on a refused write (422), as JSON with the headers an error needs."""

from __future__ import annotations

import json
from typing import Any

from starlette.responses import Response

JSON_TYPE = "application/json; charset=utf-8"


class ClinikoError(Exception):
    """An error answer in the sandbox's Cliniko shape."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        errors: dict[str, list[str]] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status, self.message, self.errors = status, message, errors
        self.headers = headers or {}

    def response(self) -> Response:
        body: dict[str, Any] = {"message": self.message}
        if self.errors is not None:
            body["errors"] = self.errors
        return json_response(body, self.status, self.headers)


def json_response(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    content = json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode()
    return Response(content, status, headers, media_type=JSON_TYPE)


def too_many(limit: int, retry_after: int) -> ClinikoError:
    return ClinikoError(
        429,
        f"Too many requests: the limit is {limit} requests per minute per API key; "
        f"retry after {retry_after} seconds",
        headers={"retry-after": str(retry_after)},
    )


__all__ = ["JSON_TYPE", "ClinikoError", "json_response", "too_many"]
