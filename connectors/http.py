"""The one request-and-retry loop of the three API clients, and their pure paginators.

Each client (httpx for Kukkingu, the ``jira`` library's requests session, PyGithub's
requester) sends one try its own way and says what it came to: a value, or a
:class:`Failed` try (a non-2xx status or a transport failure, with the reason to name in a
message). :func:`call` does the rest the same way for all three: the retry table
(:func:`connectors.retry.decide`), the log line, the sleep, and the error raised when it
gives up, which the client builds. :func:`transport_failure` turns a library's exception
into a :class:`Failed` try, except a certificate that fails verification: that is raised as
a configuration error naming the host (:mod:`connectors.tls`), never retried.

The paginators read one answer and say where the next page is; each guards against a
server that repeats itself (which would loop forever). They are pure, and tested on literal
answers.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

import httpx
import requests
from requests.utils import parse_header_links

from connectors.retry import Attempt, GiveUp, RetryPolicy, Transport, decide
from connectors.tls import untrusted, verification_failure

T = TypeVar("T")


@dataclass(frozen=True)
class Failed:
    """A try that did not succeed: what the retry table needs, and what to tell people."""

    attempt: Attempt
    reason: str  # "answered 503 Service Unavailable", "could not connect (ConnectError)"
    answer: Any = None  # the failed answer (response, headers), for the error message


GiveUpError = Callable[[GiveUp, Failed, int], Exception]
"""Builds the error raised when the loop gives up: (decision, last try, tries made)."""


def call(
    what: str,
    once: Callable[[int], T | Failed],
    give_up: GiveUpError,
    *,
    policy: RetryPolicy,
    log: logging.Logger,
    sleep: Callable[[float], None] = time.sleep,
    jitter: Callable[[], float] = random.random,
) -> T:
    """Try ``once(number)`` until it gives a value or the retry table gives up."""
    number = 0
    while True:
        number += 1
        outcome = once(number)
        if not isinstance(outcome, Failed):
            return outcome
        decision = decide(outcome.attempt, policy, jitter())
        if isinstance(decision, GiveUp):
            raise give_up(decision, outcome, number)
        # a warning: a sync waiting on a service that does not answer should say so
        log.warning("%s %s; retry %d in %.2f s", what, outcome.reason, number, decision.wait)
        sleep(decision.wait)


def tries(reason: str, number: int) -> str:
    """``reason`` with how many tries it took, when there was more than one."""
    return reason if number == 1 else f"{reason} (after {number} tries)"


@dataclass(frozen=True)
class Trust:
    """Whose certificate a client checks, for the error when verification fails."""

    service: str  # "Kukkingu", "Jira", "GitHub"
    host: str  # host[:port]
    verify: bool | str  # True, or the ca_bundle path
    setting: str  # where the service's ca_bundle lives: "under [kukkingu]", "on this source"


def raise_if_untrusted(exc: BaseException, trust: Trust, what: str) -> None:
    """A certificate that failed verification is the operator's to fix: raise it as such."""
    failure = verification_failure(exc)
    if failure is not None:
        raise untrusted(
            trust.service, trust.host, what, failure, verify=trust.verify, setting=trust.setting
        ) from None


def transport_failure(
    exc: Exception, number: int, *, idempotent: bool, trust: Trust, what: str
) -> Failed:
    """A library's transport exception as a failed try. Before anything was sent (refused,
    connect timeout) a write may be retried; after, its outcome is unknown. A certificate
    that fails verification is raised as the operator's to fix, never retried."""
    raise_if_untrusted(exc, trust, what)
    name = type(exc).__name__
    not_sent = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)
    if isinstance(exc, not_sent):
        return Failed(
            Attempt(number, idempotent, transport=Transport.NOT_SENT), f"could not connect ({name})"
        )
    if isinstance(exc, httpx.TransportError):
        return Failed(
            Attempt(number, idempotent, transport=Transport.SENT),
            f"got no complete answer ({name})",
        )
    if isinstance(exc, requests.Timeout):
        return Failed(Attempt(number, idempotent, transport=Transport.SENT), "timed out")
    return Failed(
        Attempt(number, idempotent, transport=Transport.SENT), f"could not be reached ({name})"
    )


# --- paginators (pure) ------------------------------------------------------------------------


class RepeatedPage(ValueError):
    """A server gave the same next-page pointer twice: following it would never end."""


class LoopGuard:
    """Remembers the next-page pointers followed so far."""

    def __init__(self) -> None:
        self._seen: set[str] = set()

    def follow(self, pointer: str) -> str:
        if pointer in self._seen:
            raise RepeatedPage(pointer)
        self._seen.add(pointer)
        return pointer


def next_page_token(page: Mapping[str, Any], guard: LoopGuard) -> str | None:
    """Jira Cloud ``/search/jql``: the ``nextPageToken`` to send, or None after the last page
    (``isLast`` true, or no token)."""
    token = page.get("nextPageToken")
    if page.get("isLast", True) or not isinstance(token, str) or not token:
        return None
    return guard.follow(token)


def next_start(page: Mapping[str, Any], start: int, count: int) -> int | None:
    """Jira Data Center ``/search`` (``startAt``): the next ``startAt``, or None when this
    page was empty or reached ``total``. ``count`` is how many issues this page held."""
    total = page.get("total")
    following = start + count
    if count == 0 or not isinstance(total, int) or following >= total:
        return None
    return following


def next_feed_url(page: Mapping[str, Any], guard: LoopGuard) -> str | None:
    """Jira ``/worklog/updated`` and ``/worklog/deleted``: the absolute ``nextPage`` URL, or
    None on the last page (``lastPage`` true, or no URL)."""
    url = page.get("nextPage")
    if page.get("lastPage", True) or not isinstance(url, str) or not url:
        return None
    return guard.follow(url)


def next_link(headers: Mapping[str, str], guard: LoopGuard | None = None) -> str | None:
    """GitHub lists: the ``rel="next"`` URL of the ``Link`` header, or None."""
    link = headers.get("link")
    if not link:
        return None
    for item in parse_header_links(link):
        if item.get("rel") == "next" and item.get("url"):
            url = str(item["url"])
            return guard.follow(url) if guard is not None else url
    return None
