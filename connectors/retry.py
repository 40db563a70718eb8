"""The retry policy for HTTP calls, as one table of pure decisions.

``decide(attempt, policy)`` looks at what happened to one try and says what to do next:
:class:`Retry` after some seconds, or :class:`GiveUp` with the kind of error to raise. The
caller does the I/O and the sleeping; this module only decides, so every row is unit tested.

========================================  ==========================  ===========================
what happened                             idempotent call             non-idempotent write (POST)
========================================  ==========================  ===========================
429                                       wait Retry-After / backoff  same: a 429 was not applied
500-599                                   backoff                     give up: outcome unknown
could not connect (nothing was sent)      backoff                     backoff
sent, then timeout / disconnect           backoff                     give up: outcome unknown
401, 403                                  configuration error         configuration error
400, 422                                  bad request                 bad request
404                                       not found                   not found
409                                       conflict                    conflict
anything else                             fatal                       fatal
========================================  ==========================  ===========================

Retrying a write whose outcome is unknown could store it twice, so the policy never does:
it raises ``WriteOutcomeUnknown`` and the caller reconciles (lists, adopts, then retries).
A wait longer than ``max_wait`` is never slept here: the caller gets a retryable error that
carries ``retry_after``, so a worker can reschedule instead of blocking.
"""

from __future__ import annotations

import email.utils
from dataclasses import dataclass
from datetime import datetime
from enum import Enum
from typing import Literal


class Transport(Enum):
    """How a try failed below HTTP, if it did."""

    NOT_SENT = "not_sent"  # connection refused / connect timeout / pool timeout
    SENT = "sent"  # the request may have reached the server: read timeout, disconnect


GiveUpKind = Literal[
    "retryable", "outcome_unknown", "configuration", "bad_request", "not_found", "conflict", "fatal"
]


@dataclass(frozen=True)
class RetryPolicy:
    max_attempts: int = 5
    base_delay: float = 0.5  # first backoff; doubles each try
    max_wait: float = 30.0  # longest single sleep; beyond it the caller reschedules


@dataclass(frozen=True)
class Attempt:
    number: int  # 1 for the first try
    idempotent: bool
    status: int | None = None
    transport: Transport | None = None
    retry_after: float | None = None  # seconds, already parsed


@dataclass(frozen=True)
class Retry:
    wait: float


@dataclass(frozen=True)
class GiveUp:
    kind: GiveUpKind
    retry_after: float | None = None


def backoff(number: int, policy: RetryPolicy, jitter: float) -> float:
    """Exponential backoff for try ``number`` with jitter in [0, 1): half fixed, half random."""
    ceiling = min(policy.max_wait, policy.base_delay * 2.0 ** (number - 1))
    return ceiling * (0.5 + jitter / 2)


def _status_kind(status: int) -> GiveUpKind | None:
    if status in (401, 403):
        return "configuration"
    if status in (400, 422):
        return "bad_request"
    if status == 404:
        return "not_found"
    if status == 409:
        return "conflict"
    if status == 429 or status >= 500:
        return None  # transient: see decide()
    return "fatal"


def decide(attempt: Attempt, policy: RetryPolicy, jitter: float = 0.5) -> Retry | GiveUp:
    """What to do after ``attempt`` failed (any non-2xx status or a transport failure)."""
    if attempt.status is not None:
        kind = _status_kind(attempt.status)
        if kind is not None:
            return GiveUp(kind)
        if attempt.status >= 500 and not attempt.idempotent:
            return GiveUp("outcome_unknown")
    elif attempt.transport is Transport.SENT and not attempt.idempotent:
        return GiveUp("outcome_unknown")

    wait = (
        attempt.retry_after
        if attempt.retry_after is not None
        else backoff(attempt.number, policy, jitter)
    )
    if attempt.number >= policy.max_attempts or wait > policy.max_wait:
        return GiveUp("retryable", retry_after=wait)
    return Retry(wait)


def parse_retry_after(value: str | None, now: datetime) -> float | None:
    """``Retry-After`` as seconds: either delta-seconds or an HTTP date (RFC 9110 §10.2.3)."""
    if value is None:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None  # unreadable: fall back to backoff rather than guess
    return max(0.0, (when - now).total_seconds())
