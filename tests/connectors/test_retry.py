"""The retry table in connectors.retry, row by row."""

from datetime import UTC, datetime

import pytest

from connectors.retry import (
    Attempt,
    GiveUp,
    Retry,
    RetryPolicy,
    Transport,
    backoff,
    decide,
    parse_retry_after,
)

POLICY = RetryPolicy(max_attempts=4, base_delay=0.5, max_wait=10.0)


@pytest.mark.parametrize(
    ("attempt", "expected"),
    [
        # 429: never applied, so retried for reads and writes alike, honouring Retry-After
        (Attempt(1, idempotent=True, status=429, retry_after=3.0), Retry(3.0)),
        (Attempt(1, idempotent=False, status=429, retry_after=2.0), Retry(2.0)),
        (Attempt(1, idempotent=False, status=429), Retry(0.5)),
        # a Retry-After longer than the cap is handed back, not slept
        (Attempt(1, idempotent=True, status=429, retry_after=60.0), GiveUp("retryable", 60.0)),
        # 5xx: retried when idempotent; a write's outcome is unknown
        (Attempt(1, idempotent=True, status=500), Retry(0.5)),
        (Attempt(2, idempotent=True, status=503), Retry(1.0)),
        (Attempt(1, idempotent=False, status=500), GiveUp("outcome_unknown")),
        (Attempt(1, idempotent=False, status=502), GiveUp("outcome_unknown")),
        # transport: nothing sent is always safe to retry; a sent write is unknown
        (Attempt(1, idempotent=False, transport=Transport.NOT_SENT), Retry(0.5)),
        (Attempt(1, idempotent=True, transport=Transport.SENT), Retry(0.5)),
        (Attempt(1, idempotent=False, transport=Transport.SENT), GiveUp("outcome_unknown")),
        # statuses nobody should retry
        (Attempt(1, idempotent=True, status=401), GiveUp("configuration")),
        (Attempt(1, idempotent=True, status=403), GiveUp("configuration")),
        (Attempt(1, idempotent=False, status=400), GiveUp("bad_request")),
        (Attempt(1, idempotent=True, status=422), GiveUp("bad_request")),
        (Attempt(1, idempotent=True, status=404), GiveUp("not_found")),
        (Attempt(1, idempotent=False, status=409), GiveUp("conflict")),
        (Attempt(1, idempotent=True, status=418), GiveUp("fatal")),
        (Attempt(1, idempotent=True, status=301), GiveUp("fatal")),
        # out of attempts: retryable, with the wait that would have come next
        (Attempt(4, idempotent=True, status=500), GiveUp("retryable", 4.0)),
        (Attempt(4, idempotent=False, status=429, retry_after=1.0), GiveUp("retryable", 1.0)),
    ],
)
def test_decide(attempt: Attempt, expected: Retry | GiveUp) -> None:
    # jitter 0.0 makes the random half of the backoff zero: waits are exactly half the ceiling
    result = decide(attempt, RetryPolicy(max_attempts=4, base_delay=1.0, max_wait=10.0), 0.0)
    assert result == expected


@pytest.mark.parametrize(
    ("number", "jitter", "expected"),
    [(1, 0.0, 0.25), (1, 1.0, 0.5), (2, 0.0, 0.5), (3, 0.5, 1.5), (10, 0.0, 5.0), (10, 1.0, 10.0)],
)
def test_backoff_doubles_and_is_capped(number: int, jitter: float, expected: float) -> None:
    assert backoff(number, POLICY, jitter) == pytest.approx(expected)


NOW = datetime(2026, 11, 21, 12, 0, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (None, None),
        ("7", 7.0),
        (" 0 ", 0.0),
        ("Sat, 21 Nov 2026 12:00:30 GMT", 30.0),
        ("Sat, 21 Nov 2026 11:59:00 GMT", 0.0),  # in the past: go now
        ("soon", None),
        ("-5", None),
        ("1.5", None),  # RFC 9110 allows only whole seconds
    ],
)
def test_parse_retry_after(header: str | None, expected: float | None) -> None:
    assert parse_retry_after(header, NOW) == expected
