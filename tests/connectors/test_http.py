"""The shared request loop and the paginators (pure, on literal answers)."""

from __future__ import annotations

import logging
import ssl

import httpx
import pytest
import requests

from connectors.http import (
    Failed,
    LoopGuard,
    RepeatedPage,
    Trust,
    call,
    next_feed_url,
    next_link,
    next_page_token,
    next_start,
    transport_failure,
    tries,
)
from connectors.retry import Attempt, GiveUp, RetryPolicy, Transport
from worker.errors import UntrustedCertificate

LOG = logging.getLogger("test.http")
TRUST = Trust("Kukkingu", "kk.example:443", True, "under [kukkingu]")


class Boom(Exception):
    pass


class Recorder:
    """A give-up callback that remembers the decisions it was given."""

    def __init__(self) -> None:
        self.seen: list[GiveUp] = []

    def __call__(self, decision: GiveUp, failed: Failed, number: int) -> Exception:
        self.seen.append(decision)
        return Boom(failed.reason)


def test_the_loop_retries_transient_failures_then_returns_the_value() -> None:
    slept: list[float] = []
    answers: list[object] = [Failed(Attempt(1, True, status=503), "answered 503"), "done"]

    def once(number: int) -> str | Failed:
        answer = answers[number - 1]
        return answer if isinstance(answer, Failed) else str(answer)

    result = call("x GET /y", once, lambda *a: Boom(), policy=RetryPolicy(), log=LOG,
                  sleep=slept.append, jitter=lambda: 0.0)  # fmt: skip
    assert result == "done"
    assert slept == [0.25]  # base 0.5, first try, half fixed + no jitter


def test_the_loop_gives_up_with_the_clients_error_after_max_attempts() -> None:
    seen: list[tuple[str, int, str]] = []

    def give_up(decision: GiveUp, failed: Failed, number: int) -> Exception:
        seen.append((decision.kind, number, failed.reason))
        return Boom(tries(failed.reason, number))

    with pytest.raises(Boom, match=r"answered 500 \(after 3 tries\)"):
        call(
            "x",
            lambda n: Failed(Attempt(n, True, status=500), "answered 500"),
            give_up,
            policy=RetryPolicy(max_attempts=3),
            log=LOG,
            sleep=lambda s: None,
        )
    assert seen == [("retryable", 3, "answered 500")]


def test_an_unknown_write_outcome_is_never_retried() -> None:
    def once(number: int) -> Failed:
        return Failed(Attempt(number, False, transport=Transport.SENT), "got no complete answer")

    decisions = Recorder()
    with pytest.raises(Boom):
        call("x", once, decisions, policy=RetryPolicy(), log=LOG,
             sleep=lambda s: pytest.fail("slept"))  # fmt: skip
    assert [d.kind for d in decisions.seen] == ["outcome_unknown"]


def test_a_wait_longer_than_max_wait_goes_back_to_the_caller() -> None:
    def once(number: int) -> Failed:
        return Failed(Attempt(number, True, status=429, retry_after=3600.0), "answered 429")

    decisions = Recorder()
    with pytest.raises(Boom):
        call("x", once, decisions, policy=RetryPolicy(), log=LOG,
             sleep=lambda s: pytest.fail("slept"))  # fmt: skip
    assert decisions.seen == [GiveUp("retryable", retry_after=3600.0)]


def test_tries_names_the_count_only_when_there_were_several() -> None:
    assert tries("answered 503", 1) == "answered 503"
    assert tries("answered 503", 4) == "answered 503 (after 4 tries)"


@pytest.mark.parametrize(
    ("exc", "transport", "reason"),
    [
        (httpx.ConnectError("refused"), Transport.NOT_SENT, "could not connect (ConnectError)"),
        (httpx.ConnectTimeout("slow"), Transport.NOT_SENT, "could not connect (ConnectTimeout)"),
        (httpx.ReadTimeout("slow"), Transport.SENT, "got no complete answer (ReadTimeout)"),
        (httpx.RemoteProtocolError("cut"), Transport.SENT, "got no complete answer"),
        (requests.ConnectionError("reset"), Transport.SENT, "could not be reached"),
        (requests.ReadTimeout("slow"), Transport.SENT, "timed out"),
    ],
)
def test_transport_failures_say_whether_anything_was_sent(
    exc: Exception, transport: Transport, reason: str
) -> None:
    failed = transport_failure(exc, 2, idempotent=False, trust=TRUST, what="POST /x")
    assert failed.attempt == Attempt(2, False, transport=transport)
    assert failed.reason.startswith(reason)


@pytest.mark.parametrize("wrap", [httpx.ConnectError, requests.exceptions.SSLError])
def test_a_certificate_that_fails_verification_is_raised_never_a_failed_try(wrap: type) -> None:
    failure = ssl.SSLCertVerificationError(1, "certificate verify failed")
    failure.verify_message = "unable to get local issuer certificate"
    outer = wrap("handshake failed")
    outer.__cause__ = failure
    with pytest.raises(UntrustedCertificate) as caught:
        transport_failure(outer, 1, idempotent=True, trust=TRUST, what="GET /api/v1/invoices")
    message = str(caught.value)
    assert "Kukkingu kk.example:443" in message
    assert "unable to get local issuer certificate" in message
    assert "ca_bundle" in message


# --- paginators -----------------------------------------------------------------------------


def test_jira_page_tokens_until_the_last_page() -> None:
    guard = LoopGuard()
    assert next_page_token({"issues": [], "nextPageToken": "t1", "isLast": False}, guard) == "t1"
    assert next_page_token({"issues": [], "nextPageToken": "t2", "isLast": True}, guard) is None
    assert next_page_token({"issues": [], "isLast": False}, guard) is None  # no token: done
    assert next_page_token({"issues": []}, guard) is None  # isLast defaults to true
    with pytest.raises(RepeatedPage):
        next_page_token({"nextPageToken": "t1", "isLast": False}, guard)


def test_jira_classic_start_at() -> None:
    assert next_start({"total": 250}, 0, 100) == 100
    assert next_start({"total": 250}, 200, 50) is None
    assert next_start({"total": 250}, 100, 0) is None  # an empty page ends it
    assert next_start({}, 0, 100) is None  # no total: one page


def test_jira_worklog_feed_next_page() -> None:
    guard = LoopGuard()
    url = "https://x.atlassian.net/rest/api/2/worklog/updated?since=1700000000001"
    assert next_feed_url({"values": [], "nextPage": url, "lastPage": False}, guard) == url
    assert next_feed_url({"values": [], "nextPage": url, "lastPage": True}, guard) is None
    assert next_feed_url({"values": [], "lastPage": False}, guard) is None
    with pytest.raises(RepeatedPage):
        next_feed_url({"values": [], "nextPage": url, "lastPage": False}, guard)


def test_github_link_headers() -> None:
    link = (
        '<https://api.github.com/repositories/1/issues?page=2>; rel="next", '
        '<https://api.github.com/repositories/1/issues?page=5>; rel="last"'
    )
    guard = LoopGuard()
    assert next_link({"link": link}, guard) == "https://api.github.com/repositories/1/issues?page=2"
    assert next_link({"link": '<https://api.github.com/x?page=1>; rel="prev"'}, guard) is None
    assert next_link({}, guard) is None
    with pytest.raises(RepeatedPage):
        next_link({"link": link}, guard)
