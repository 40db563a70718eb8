"""The GitHub REST calls billsync makes, through PyGithub's requester.

PyGithub is configured once here: 100 items a page, **no** 0.25 s pause between requests
(``seconds_between_requests=None``: billsync only reads), and ``retry=None``. Its default
``GithubRetry`` would sleep until ``x-ratelimit-reset`` (up to an hour, silently) and does
not retry 429 at all (sources.md B4). Instead, :meth:`GitHubApi.get` applies the project's
retry table: 5xx and network errors are retried with backoff; 429, and 403 with
``x-ratelimit-remaining: 0`` (primary limit) or ``retry-after`` (secondary limit), wait for
``retry-after`` / ``x-ratelimit-reset`` when that is short, and otherwise raise
:class:`GitHubRateLimited` carrying ``retry_after`` so the worker reschedules.

Lists follow the ``Link`` header's absolute ``next`` URL, never a URL built here.
Conditional requests: pass the ``etag`` of the last answer; a 304 (which GitHub does not
count against the rate limit) comes back as ``status == 304`` with no data.

A TLS certificate that fails verification is a configuration error
(:class:`worker.errors.UntrustedCertificate`) and is never retried. ``verify`` is ``True`` or a
PEM file of CAs to trust instead (the source's ``ca_bundle``); PyGithub passes it with every
request, so it wins over ``REQUESTS_CA_BUNDLE``.
"""

from __future__ import annotations

import email.utils
import json
import logging
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

import requests
from github import Auth, Github
from pydantic import SecretStr

from connectors.http import (
    Failed,
    LoopGuard,
    RepeatedPage,
    Trust,
    call,
    next_link,
    transport_failure,
    tries,
)
from connectors.retry import Attempt, GiveUp, RetryPolicy, parse_retry_after
from connectors.tls import host_of
from worker.errors import ConfigurationError, FatalError, RetryableError

log = logging.getLogger("billsync.github")


class GitHubRateLimited(RetryableError):
    """A rate limit whose reset is too far away to wait for in the worker."""


class GitHubUnavailable(RetryableError):
    """5xx or network trouble that retries did not cure."""


class GitHubConfigError(ConfigurationError):
    """401, 403 without a rate limit, or a repository the token cannot see."""


def _rate_limited(host: str, what: str, reason: str, headers: Mapping[str, str]) -> str:
    """Says that the rate limit is used up and when it resets (GitHub's clock, in UTC)."""
    text = f"GitHub {host}: the API rate limit is exhausted ({what} {reason})"
    reset = headers.get("x-ratelimit-reset", "")
    if reset.isdigit():
        at = datetime.fromtimestamp(int(reset), UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
        text += f"; it resets at {at}"
    elif headers.get("retry-after"):
        text += f"; GitHub asks to wait {headers['retry-after']} s"
    return text + "; the sync is retried then"


class GitHubLostAccess(GitHubConfigError):
    """A repository answers 403 (not a rate limit), 404 or 410: the token cannot see it
    (any more), or it is gone. The rest of the source goes on."""

    def __init__(self, message: str, status: int, detail: str) -> None:
        super().__init__(message)
        self.status, self.detail = status, detail


class GitHubBadResponse(FatalError):
    """A 2xx answer that is not the JSON GitHub documents."""


@dataclass(frozen=True)
class Answer:
    status: int  # 200 or 304
    headers: Mapping[str, str]
    data: Any


def web_host(base_url: str) -> str:
    """The host entry keys use: ``github.com`` for the public API, else the API's host."""
    host = urlsplit(base_url).netloc
    return "github.com" if host == "api.github.com" else host


class GitHubApi:
    def __init__(
        self,
        base_url: str,
        token: SecretStr,
        *,
        timeout: float = 30.0,
        policy: RetryPolicy | None = None,
        verify: bool | str = True,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.host = web_host(self.base_url)
        self.policy = policy or RetryPolicy()
        self.request_counts: dict[str, int] = {}
        self._sleep = sleep
        self._verify = verify
        self._github = Github(
            auth=Auth.Token(token.get_secret_value()),
            base_url=self.base_url,
            per_page=100,
            timeout=int(timeout),
            verify=verify,
            retry=None,  # we retry (module docstring)
            seconds_between_requests=None,  # no 0.25 s throttle: billsync only reads
            seconds_between_writes=None,
        )

    def __repr__(self) -> str:
        return f"GitHubApi({self.base_url!r})"

    def close(self) -> None:
        self._github.close()

    def _attempt(self, number: int, status: int, headers: Mapping[str, str]) -> Attempt | None:
        """The retry table's view of a non-2xx answer; None if it is not transient.

        ``x-ratelimit-reset`` is GitHub's clock, so the wait is measured from the answer's
        ``Date`` (also GitHub's clock); billsync's own clock is only the fallback."""
        now = _server_time(headers) or datetime.now(UTC)
        retry_after = parse_retry_after(headers.get("retry-after"), now)
        limited = status == 429 or (
            status == 403
            and (headers.get("x-ratelimit-remaining") == "0" or retry_after is not None)
        )
        if limited:
            if retry_after is None and headers.get("x-ratelimit-reset", "").isdigit():
                retry_after = max(0.0, int(headers["x-ratelimit-reset"]) - now.timestamp() + 1)
            return Attempt(number, True, status=429, retry_after=retry_after)
        if status >= 500:
            return Attempt(number, True, status=status)
        return None

    def get(
        self,
        path: str,
        params: Mapping[str, Any] | None = None,
        *,
        etag: str | None = None,
        route: str | None = None,
    ) -> Answer:
        """One GET with retries; ``path`` is relative to the API or an absolute Link URL."""
        what = f"GET {route or path}"
        headers = {"If-None-Match": etag} if etag else {}

        def once(number: int) -> Answer | Failed:
            self.request_counts[what] = self.request_counts.get(what, 0) + 1
            try:
                status, response_headers, body = self._github.requester.requestJson(
                    "GET", path, dict(params) if params else None, headers
                )
            except requests.RequestException as exc:
                return transport_failure(
                    exc, number, idempotent=True, trust=self._trust(exc), what=what
                )
            if status == 304:
                return Answer(304, response_headers, None)
            if 200 <= status < 300:
                return Answer(status, response_headers, self._json(body, what, status))
            attempt = self._attempt(number, status, response_headers)
            if attempt is None:
                raise self._error(status, body, what)
            return Failed(attempt, f"answered {status}", response_headers)

        def give_up(decision: GiveUp, failed: Failed, number: int) -> Exception:
            if failed.attempt.status == 429:  # 429, or a 403 that is a rate limit
                return GitHubRateLimited(
                    _rate_limited(self.host, what, failed.reason, failed.answer or {}),
                    retry_after=decision.retry_after,
                )
            return GitHubUnavailable(
                f"GitHub {self.host} {what} {tries(failed.reason, number)}",
                retry_after=decision.retry_after,
            )

        return call(f"GitHub {what}", once, give_up, policy=self.policy, log=log, sleep=self._sleep)

    def _trust(self, exc: requests.RequestException) -> Trust:
        """Whose certificate failed: a Link URL may name another host than the API's."""
        url = getattr(exc.request, "url", None)
        host = host_of(url) if isinstance(url, str) and "://" in url else host_of(self.base_url)
        return Trust("GitHub", host, self._verify, "on this source")

    def _json(self, body: str, what: str, status: int) -> Any:
        try:
            return json.loads(body) if body else None
        except ValueError:
            raise GitHubBadResponse(
                f"GitHub {self.host} {what} answered {status} with a body that is not JSON"
            ) from None

    def _error(self, status: int, body: str, what: str) -> Exception:
        try:
            message = json.loads(body).get("message", "")
        except (ValueError, AttributeError):
            message = ""
        text = f"GitHub {self.host} {what} answered {status}" + (f": {message}" if message else "")
        if status == 401:
            return GitHubConfigError(text + " (check the source's token and its access)")
        if status == 403:
            return GitHubLostAccess(
                text + " (check the source's token and its access)", status, message
            )
        if status in (404, 410):
            return GitHubLostAccess(
                text + " (no such repository, or the token cannot see it)", status, message
            )
        return GitHubBadResponse(text)

    def pages(
        self, path: str, params: Mapping[str, Any], *, route: str | None = None
    ) -> Iterator[list[Any]]:
        """Every page of a list, following the ``Link`` header's ``next`` URL."""
        url: str = path
        query: Mapping[str, Any] | None = {**params, "per_page": 100}
        guard = LoopGuard()
        while True:
            answer = self.get(url, query, route=route or path)
            if not isinstance(answer.data, list):
                raise GitHubBadResponse(f"GitHub {self.host} {route or path} did not answer a list")
            yield answer.data
            try:
                following = next_link(answer.headers, guard)
            except RepeatedPage:
                raise GitHubBadResponse(
                    f"GitHub {self.host} {route or path} repeated a Link URL"
                ) from None
            if following is None:
                return
            url, query = following, None


def _server_time(headers: Mapping[str, str]) -> datetime | None:
    try:
        return email.utils.parsedate_to_datetime(headers.get("date", ""))
    except (TypeError, ValueError):
        return None
