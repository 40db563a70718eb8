"""Who may use the dashboard, and the signed session cookie that remembers a browser.

Credentials come from ``[dashboard]`` (secrets from the environment, never the file):

- ``token_env``: a bearer token. API clients and Prometheus send
  ``Authorization: Bearer <token>``; a browser types it into the login form once.
- ``username`` + ``password_env``: HTTP basic auth, or the same pair in the login form.

Every request may authenticate with a bearer header, a basic-auth header, or a session
cookie set by the login form. All comparisons are constant-time (:func:`hmac.compare_digest`).

With no credential configured the dashboard refuses to start (:class:`DashboardAuthError`),
unless the operator asked for ``--insecure-no-auth`` *and* it binds to a loopback address;
then every request counts as the user ``local`` (CSRF protection stays on).

The session is a cookie holding JSON signed with HMAC-SHA256 under a key drawn at random
when the app is created: a restart logs every browser out, and no key is ever configured
or stored. It carries the CSRF token (:mod:`worker.dashboard.csrf`), the user once logged
in, an expiry, and one flash message.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import secrets
import time
from dataclasses import dataclass
from typing import Any

from worker.config import Settings
from worker.errors import ConfigurationError

SESSION_COOKIE = "billsync_session"
SESSION_SECONDS = 12 * 3600
LOOPBACK = frozenset({"127.0.0.1", "::1", "localhost"})


class DashboardAuthError(ConfigurationError):
    """The dashboard would be open to anyone: configure a login or pass the insecure flag."""


def _same(given: str, expected: str) -> bool:
    return hmac.compare_digest(given.encode(), expected.encode())


@dataclass(frozen=True)
class Credentials:
    token: str | None = None
    username: str | None = None
    password: str | None = None
    insecure_no_auth: bool = False

    @classmethod
    def from_settings(
        cls, settings: Settings, *, host: str, insecure_no_auth: bool = False
    ) -> Credentials:
        """The configured login, or :class:`DashboardAuthError` if there is none (see above)."""
        config = settings.file.dashboard
        token = settings.secret(config.token_env).get_secret_value() if config.token_env else None
        password = (
            settings.secret(config.password_env).get_secret_value() if config.password_env else None
        )
        username = config.username if password else None
        if token or username:
            return cls(token=token, username=username, password=password)
        if not insecure_no_auth:
            raise DashboardAuthError(
                "the dashboard has no login: set [dashboard] token_env (a bearer token) or "
                "username + password_env (basic auth); or, on 127.0.0.1 only, pass "
                "--insecure-no-auth"
            )
        if host not in LOOPBACK:
            raise DashboardAuthError(
                f"--insecure-no-auth is refused on {host}: it is only allowed on 127.0.0.1"
            )
        return cls(insecure_no_auth=True)

    def check_token(self, token: str) -> bool:
        return self.token is not None and _same(token, self.token)

    def check_password(self, username: str, password: str) -> bool:
        if self.username is None or self.password is None:
            return False
        # Both compared every time: the timing says nothing about which one was wrong.
        user_ok = _same(username, self.username)
        password_ok = _same(password, self.password)
        return user_ok and password_ok

    def from_header(self, header: str | None) -> str | None:
        """The user an ``Authorization`` header proves, or None."""
        if not header:
            return None
        scheme, _, value = header.partition(" ")
        value = value.strip()
        if scheme.lower() == "bearer" and self.check_token(value):
            return "token"
        if scheme.lower() == "basic":
            try:
                decoded = base64.b64decode(value, validate=True).decode()
            except (binascii.Error, UnicodeDecodeError):
                return None
            username, sep, password = decoded.partition(":")
            if sep and self.check_password(username, password):
                return username
        return None


class SessionCodec:
    """Signs and checks the session cookie (JSON, HMAC-SHA256, base64url)."""

    def __init__(self, key: bytes | None = None, *, max_age: int = SESSION_SECONDS) -> None:
        self._key = key or secrets.token_bytes(32)
        self.max_age = max_age

    def _sign(self, payload: bytes) -> str:
        return hmac.new(self._key, payload, hashlib.sha256).hexdigest()

    def dumps(self, data: dict[str, Any]) -> str:
        payload = base64.urlsafe_b64encode(json.dumps(data, separators=(",", ":")).encode())
        return f"{payload.decode()}.{self._sign(payload)}"

    def loads(self, cookie: str | None, *, now: float | None = None) -> dict[str, Any]:
        """The session the cookie holds, or an empty one if it is missing, forged or old."""
        if not cookie or "." not in cookie:
            return {}
        payload, _, signature = cookie.rpartition(".")
        if not hmac.compare_digest(signature, self._sign(payload.encode())):
            return {}
        try:
            data = json.loads(base64.urlsafe_b64decode(payload.encode()))
        except (binascii.Error, ValueError):
            return {}
        if not isinstance(data, dict):
            return {}
        if float(data.get("exp", 0)) < (time.time() if now is None else now):
            return {}
        return data
