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
in with a session id, an expiry, and one flash message. Logging out revokes the session id
on the server (:class:`Revoked`), so a copy of the cookie stops working too.

Wrong credentials are throttled (:class:`LoginThrottle`): per client address and for all
clients together, in a sliding window. A throttled client is refused (429) even with the
right credentials until its window has room again; every failure is logged with the
client's address, never with what it sent.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import secrets
import time
from collections import OrderedDict, deque
from collections.abc import Callable
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


class Revoked:
    """Session ids logged out before their cookie expired (kept until it would have)."""

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self._until: dict[str, float] = {}
        self._clock = clock

    def revoke(self, sid: str, expires: float) -> None:
        now = self._clock()
        self._until = {k: v for k, v in self._until.items() if v > now}
        self._until[sid] = expires

    def __contains__(self, sid: object) -> bool:
        return isinstance(sid, str) and self._until.get(sid, 0) > self._clock()


class LoginThrottle:
    """At most ``per_client`` wrong credentials from one address, and ``overall`` from all
    addresses, within ``window`` seconds; past that, logins wait (see the module)."""

    MAX_CLIENTS = 10_000  # addresses remembered; the oldest are forgotten first

    def __init__(
        self,
        *,
        per_client: int = 10,
        overall: int = 100,
        window: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.per_client, self.overall, self.window = per_client, overall, window
        self._clock = clock
        self._clients: OrderedDict[str, deque[float]] = OrderedDict()
        self._all: deque[float] = deque()

    def _prune(self, times: deque[float], now: float) -> None:
        while times and times[0] <= now - self.window:
            times.popleft()

    def retry_after(self, client: str) -> float | None:
        """Seconds until ``client`` may try again, or None when it may now."""
        now = self._clock()
        self._prune(self._all, now)
        mine = self._clients.get(client, deque())
        self._prune(mine, now)
        waits = []
        if len(mine) >= self.per_client:
            waits.append(mine[0] + self.window - now)
        if len(self._all) >= self.overall:
            waits.append(self._all[0] + self.window - now)
        return max(waits) if waits else None

    def failed(self, client: str) -> None:
        now = self._clock()
        self._all.append(now)
        self._clients.setdefault(client, deque()).append(now)
        self._clients.move_to_end(client)
        while len(self._clients) > self.MAX_CLIENTS:
            self._clients.popitem(last=False)
