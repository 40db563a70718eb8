"""The project's error taxonomy: errors are named by what the caller should do.

    BillsyncError
      +-- RetryableError        transient: try again later, after ``retry_after`` seconds if set
      |     +-- WriteOutcomeUnknown   a write may or may not have been stored: reconcile first
      +-- ConfigurationError    the operator must fix something (bad config, 401/403): don't loop
      |     +-- UntrustedCertificate  a server's TLS certificate failed verification
      +-- BadRecordError        one input record is wrong: skip it, report it, go on
      +-- FatalError            a bug or a broken contract with an API: stop and report

Messages name the thing and the reason, and never carry a secret.
"""

from __future__ import annotations


class BillsyncError(Exception):
    """Base of every error billsync raises on purpose."""


class RetryableError(BillsyncError):
    """A transient failure (429, 5xx, a timeout); the same call may succeed later."""

    def __init__(self, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class WriteOutcomeUnknown(RetryableError):
    """A non-idempotent write got no answer: it may have been stored. Reconcile, then retry."""


class ConfigurationError(BillsyncError):
    """Something the operator must fix: the config file, a secret, a permission."""


class UntrustedCertificate(ConfigurationError):
    """A server's TLS certificate failed verification (an unknown CA, a self-signed
    certificate, a name mismatch, an expired certificate). Retrying cannot help: the operator
    trusts the CA with ``ca_bundle`` or fixes the URL. ``host`` is the server's host:port,
    ``reason`` what verification said (e.g. "unable to get local issuer certificate")."""

    def __init__(self, message: str, *, host: str, reason: str) -> None:
        super().__init__(message)
        self.host = host
        self.reason = reason


class BadRecordError(BillsyncError):
    """One input record cannot be used; the rest of the work goes on."""


class FatalError(BillsyncError):
    """An unexpected answer or state that retrying will not fix."""
