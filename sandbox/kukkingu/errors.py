"""The sandbox's error answers, raised by the state and rendered by the app.

Each class fixes one documented status and its ``error`` code (section 14 of the API notes):

    ApiError
      +-- BadRequest     400  validation; the message names the field
      +-- Unauthorized   401  missing or unknown bearer token
      +-- Forbidden      403  token not allowed for the tenant, or unknown tenant
      +-- NotFound       404  no such resource in this tenant
      +-- MethodNotAllowed 405
      +-- Conflict       409  a status rule or a uniqueness rule forbids the change

The state raises them without knowing about HTTP; the app turns them into
``{"error": code, "message": text}`` bodies.
"""

from __future__ import annotations

from typing import ClassVar


class ApiError(Exception):
    """An error the sandbox answers with ``{"error": code, "message": message}``."""

    status: ClassVar[int] = 500
    code: ClassVar[str] = "InternalServerError"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def body(self) -> dict[str, str]:
        """The JSON error body the real service is assumed to send."""
        return {"error": self.code, "message": self.message}


class BadRequest(ApiError):
    status = 400
    code = "BadRequest"


class Unauthorized(ApiError):
    status = 401
    code = "Unauthorized"


class Forbidden(ApiError):
    status = 403
    code = "Forbidden"


class NotFound(ApiError):
    status = 404
    code = "NotFound"


class MethodNotAllowed(ApiError):
    status = 405
    code = "MethodNotAllowed"


class Conflict(ApiError):
    status = 409
    code = "Conflict"
