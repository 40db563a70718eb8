"""TLS for the three API clients: the CA bundle they trust, and what a failed verification means.

Each client takes ``verify``: ``True`` (the library's default trust store) or the path of a
PEM file of CAs to trust instead (the config's ``ca_bundle``). A certificate that fails
verification is a configuration problem, never a transient one: retrying meets the same
certificate. :func:`verification_failure` finds it in an exception chain (httpx wraps it in
``ConnectError``, requests in ``SSLError`` around urllib3's ``MaxRetryError``), and
:func:`untrusted` turns it into :class:`worker.errors.UntrustedCertificate`, whose message
names the host, what verification said, and what the operator can do about it.
"""

from __future__ import annotations

import ssl
from urllib.parse import urlsplit

from worker.errors import UntrustedCertificate


def httpx_verify(verify: bool | str) -> ssl.SSLContext | bool:
    """httpx's ``verify`` for ours: a CA bundle path becomes a context that trusts that file
    (httpx deprecates passing the path itself)."""
    if isinstance(verify, str):
        return ssl.create_default_context(cafile=verify)
    return verify


def host_of(url: str) -> str:
    """``host[:port]`` of a URL, without any user info."""
    return urlsplit(url).netloc.rpartition("@")[2]


def verification_failure(exc: BaseException) -> ssl.SSLCertVerificationError | None:
    """The certificate verification error somewhere in ``exc``'s chain, if there is one.

    Follows ``__cause__``, ``__context__``, urllib3's ``MaxRetryError.reason`` and exceptions
    passed as arguments (requests wraps urllib3's error that way)."""
    seen: set[int] = set()
    stack: list[BaseException] = [exc]
    while stack:
        current = stack.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        if isinstance(current, ssl.SSLCertVerificationError):
            return current
        linked = [current.__cause__, current.__context__, getattr(current, "reason", None)]
        stack += [e for e in [*linked, *current.args] if isinstance(e, BaseException)]
    return None


def failure_reason(failure: ssl.SSLCertVerificationError) -> str:
    """What verification said, e.g. ``unable to get local issuer certificate``."""
    reason = failure.verify_message or failure.strerror or str(failure)
    return str(reason).rstrip(".")


def certificate_hint(reason: str, *, ca_bundle: str | None, setting: str) -> str:
    """What the operator can do about a failed verification (``setting`` says where the
    service's ``ca_bundle`` key lives, e.g. "under [kukkingu]")."""
    lowered = reason.lower()
    if "mismatch" in lowered:
        return (
            "the certificate is not valid for this host name: check the URL "
            "(a ca_bundle cannot fix a name mismatch)"
        )
    if "expired" in lowered or "not yet valid" in lowered:
        return (
            "the certificate is outside its validity period: the server's certificate must be "
            "renewed (or this machine's clock is wrong)"
        )
    if ca_bundle:
        return f"the ca_bundle {ca_bundle!r} does not hold the CA that signed it: add that CA"
    return (
        f"if the server's certificate comes from a private CA, set `ca_bundle` {setting} "
        "to a PEM file of that CA"
    )


def untrusted(
    service: str,
    host: str,
    what: str,
    failure: ssl.SSLCertVerificationError,
    *,
    verify: bool | str,
    setting: str,
) -> UntrustedCertificate:
    """The configuration error for ``failure`` on ``service``'s ``host`` during ``what``."""
    reason = failure_reason(failure)
    ca_bundle = verify if isinstance(verify, str) else None
    hint = certificate_hint(reason, ca_bundle=ca_bundle, setting=setting)
    return UntrustedCertificate(
        f"{service} {host}: TLS certificate not trusted ({what}): "
        f"certificate verify failed: {reason}; {hint}",
        host=host,
        reason=reason,
    )
