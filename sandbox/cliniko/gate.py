"""Who may call the Cliniko sandbox's API: :class:`Gate` checks, in this order, HTTP Basic
with a known API key as the user name and an empty password (401), the key's rate limit
(429 with ``Retry-After``) and a User-Agent naming an application and a contact email (403).
"""

from __future__ import annotations

import base64
import binascii
import re

from starlette.datastructures import Headers
from starlette.types import ASGIApp, Receive, Scope, Send

from sandbox.cliniko.errors import ClinikoError, too_many
from sandbox.cliniko.seed import DEMO_USER_AGENT
from sandbox.cliniko.state import ClinikoState

EMAIL = re.compile(r"[^\s()<>@,;:\"\[\]]+@[^\s()<>@,;:\"\[\]]+\.[A-Za-z]{2,}")
AUTH_HINT = "HTTP Basic with your Cliniko API key as the user name and an empty password"
USER_AGENT_HINT = (
    "Cliniko requires a User-Agent with the name of your application and a contact email, "
    f'e.g. "{DEMO_USER_AGENT}"'
)


def basic_user(header: str) -> str | None:
    """The user name of an ``Authorization: Basic`` header whose password is empty, else
    None (another scheme, bad base64, a password)."""
    scheme, _, credentials = header.strip().partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        decoded = base64.b64decode(credentials.strip(), validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        return None
    user, _, password = decoded.partition(":")
    return user if user and not password else None


def names_app_and_email(user_agent: str | None) -> bool:
    """``billsync (billing@example.com)``: a contact email and, beside it, an app name."""
    if user_agent is None:
        return False
    email = EMAIL.search(user_agent)
    if email is None:
        return False
    rest = user_agent[: email.start()] + user_agent[email.end() :]
    return any(character.isalnum() for character in rest)


class Gate:
    """ASGI wrapper in front of the API routes: auth (401), rate limit (429), User-Agent
    (403). A key is charged for every request it authenticates that the limit admits."""

    def __init__(self, app: ASGIApp, state: ClinikoState) -> None:
        self.app = app
        self.state = state

    def refusal(self, headers: Headers) -> ClinikoError | None:
        header = headers.get("authorization")
        if header is None:
            return ClinikoError(
                401,
                f"Authentication required: {AUTH_HINT}",
                headers={"www-authenticate": 'Basic realm="Cliniko API"'},
            )
        user = basic_user(header)
        key = self.state.authenticate(user) if user is not None else None
        if key is None:
            return ClinikoError(
                401,
                f"Invalid API key: {AUTH_HINT}",
                headers={"www-authenticate": 'Basic realm="Cliniko API"'},
            )
        retry_after = self.state.admit(key)
        if retry_after is not None:
            return too_many(self.state.limit, retry_after)
        if not names_app_and_email(headers.get("user-agent")):
            return ClinikoError(403, USER_AGENT_HINT)
        return None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            refusal = self.refusal(Headers(scope=scope))
            if refusal is not None:
                await refusal.response()(scope, receive, send)
                return
        await self.app(scope, receive, send)


__all__ = ["Gate", "basic_user", "names_app_and_email"]
