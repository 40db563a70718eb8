"""CSRF protection: one random token per session, in a hidden field of every form.

The token lives in the signed session cookie (:mod:`worker.dashboard.auth`); every form
renders it as ``<input type="hidden" name="csrf_token">`` and every POST must send it back
equal (compared in constant time) or get 403. A cross-site form can make the browser send
the cookie, but it cannot read the token to put it in the body.

A POST authenticated by an ``Authorization: Bearer`` header needs no token: a browser never
adds that header on its own, so such a request cannot be forged by another site. Basic auth
*is* added by browsers, so it gets no such exemption.
"""

from __future__ import annotations

import hmac
import secrets
from typing import Any

FIELD = "csrf_token"


def new_token() -> str:
    return secrets.token_urlsafe(32)


def ensure_token(session: dict[str, Any]) -> str:
    """The session's token, created on first use."""
    token = session.get("csrf")
    if not isinstance(token, str) or not token:
        token = new_token()
        session["csrf"] = token
    return token


def valid(session: dict[str, Any], submitted: str | None) -> bool:
    expected = session.get("csrf")
    if not isinstance(expected, str) or not expected or not submitted:
        return False
    return hmac.compare_digest(expected.encode(), submitted.encode())


def bearer_request(authorization: str | None) -> bool:
    """True when the request carries a bearer header (exempt: not sent by browsers alone)."""
    return bool(authorization) and str(authorization).lower().startswith("bearer ")
