"""The Jira REST calls billsync makes, through the pycontribs ``jira`` library.

The library builds the session (auth, server info, Cloud detection); the worklog feeds it
does not wrap are called through that same session.

**Who retries**: we do, once, in :meth:`JiraApi._get_json`, with the project's retry table
(``connectors.retry``). The library's ``ResilientSession`` is created with
``max_retries=0``: left alone it retries 429/503 itself and *sleeps* inside the worker for
up to ``2 x Retry-After`` (see sources.md A5), which would hide waits from the scheduler.
Every call here is a read, so 429, 5xx and network failures are retried with backoff,
honouring ``Retry-After``; a wait longer than ``max_wait`` is raised as
:class:`JiraUnavailable` with ``retry_after`` so a worker reschedules. 401/403 and a refused
JQL are configuration errors. So is a TLS certificate that fails verification
(:class:`worker.errors.UntrustedCertificate`, never retried): ``verify`` is ``True`` or a PEM
file of CAs to trust instead (the source's ``ca_bundle``); the library passes it with every
request, so it wins over ``REQUESTS_CA_BUNDLE``.

The library logs request and response details at DEBUG (its own warning says so); its
logger is held at WARNING here so credentials cannot reach a log.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, Literal
from urllib.parse import urlsplit

import requests
from jira import JIRA, JIRAError
from pydantic import SecretStr

from connectors.http import (
    Failed,
    LoopGuard,
    RepeatedPage,
    Trust,
    call,
    next_feed_url,
    next_page_token,
    next_start,
    raise_if_untrusted,
    transport_failure,
)
from connectors.retry import Attempt, GiveUp, RetryPolicy, parse_retry_after
from connectors.tls import host_of
from worker.errors import ConfigurationError, FatalError, RetryableError

log = logging.getLogger("billsync.jira")
logging.getLogger("jira").setLevel(logging.WARNING)

WORKLOG_LIST_LIMIT = 1000
SEARCH_PAGE = 100
ID_PAGE = 5000  # Cloud's /search/jql page when only ids are asked for


class JiraUnavailable(RetryableError):
    """429, 5xx or network trouble that retries did not cure; try again later."""


class JiraConfigError(ConfigurationError):
    """401/403, or Jira refused a JQL filter: the operator must fix the configuration."""


class JiraQueryRefused(JiraConfigError):
    """A 400: Jira refused the query itself (bad JQL, an id that does not exist)."""


class JiraBadResponse(FatalError):
    """A 2xx answer that is not the JSON Jira documents (an HTML page, truncated JSON)."""


def _jira_messages(response: requests.Response | None) -> str:
    if response is None:
        return ""
    try:
        body = response.json()
    except ValueError:
        return ""
    if not isinstance(body, dict):
        return ""
    messages = [m for m in body.get("errorMessages", []) if isinstance(m, str)]
    errors = body.get("errors")
    if isinstance(errors, dict):
        messages += [f"{k}: {v}" for k, v in errors.items()]
    return "; ".join(messages)[:500]


class JiraApi:
    """One Jira site, with the project's retry policy around every call."""

    def __init__(
        self,
        url: str,
        *,
        email: str | None,
        token: SecretStr,
        timeout: float = 30.0,
        policy: RetryPolicy | None = None,
        verify: bool | str = True,
        sleep: Callable[[float], None] = time.sleep,
        deployment: Literal["cloud", "datacenter"] | None = None,
    ) -> None:
        """``deployment``, when the config says it, saves the library's ``serverInfo`` call
        (one request on every sync); without it, serverInfo's ``deploymentType`` decides."""
        self.url = url.rstrip("/")
        self._deployment = deployment
        self.site = urlsplit(self.url).netloc
        self._trust = Trust("Jira", host_of(self.url), verify, "on this source")
        self.policy = policy or RetryPolicy()
        self.request_counts: dict[str, int] = {}
        self._sleep = sleep
        auth: dict[str, Any]
        if email is not None:
            auth = {"basic_auth": (email, token.get_secret_value())}
        else:
            auth = {"token_auth": token.get_secret_value()}
        try:
            self._jira = JIRA(
                server=self.url,
                max_retries=0,  # we retry (see the module docstring)
                timeout=timeout,
                options={"verify": verify, "check_update": False},
                get_server_info=deployment is None,
                **auth,
            )
        except JIRAError as exc:
            raise self._error(exc.status_code, exc.response, "GET serverInfo") from None
        except requests.RequestException as exc:
            raise_if_untrusted(exc, self._trust, "GET serverInfo")
            raise JiraUnavailable(
                f"Jira {self.site}: could not reach serverInfo ({type(exc).__name__})"
            ) from None

    def __repr__(self) -> str:
        return f"JiraApi({self.url!r})"

    def close(self) -> None:
        self._jira.close()  # type: ignore[no-untyped-call]

    # --- the one request path -------------------------------------------------------------

    def _error(
        self, status: int | None, response: requests.Response | None, what: str
    ) -> Exception:
        detail = _jira_messages(response)
        message = f"Jira {self.site} {what} answered {status}" + (f": {detail}" if detail else "")
        if status in (401, 403):
            return JiraConfigError(message + " (check the source's email and token)")
        if status == 400:
            return JiraQueryRefused(message)
        return JiraBadResponse(message)

    def _get_json(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        body: Any = None,
        route: str | None = None,
    ) -> Any:
        """One logical call with retries; the JSON body of a 2xx answer."""
        url = path if path.startswith("http") else f"{self.url}/rest/api/2/{path}"
        what = f"{method} {route or path}"

        def once(number: int) -> Any:
            self.request_counts[what] = self.request_counts.get(what, 0) + 1
            try:
                response = self._jira._session.request(method, url, params=params, json=body)
            except JIRAError as exc:
                if exc.status_code != 429 and (exc.status_code or 0) < 500:
                    raise self._error(exc.status_code, exc.response, what) from None
                header = (
                    exc.response.headers.get("Retry-After") if exc.response is not None else None
                )
                retry_after = parse_retry_after(header, datetime.now(UTC))
                attempt = Attempt(number, True, status=exc.status_code, retry_after=retry_after)
                return Failed(attempt, f"answered {exc.status_code}")
            except (requests.ConnectionError, requests.Timeout) as exc:
                return transport_failure(exc, number, idempotent=True, trust=self._trust, what=what)
            try:
                return response.json()
            except ValueError:
                kind = response.headers.get("content-type", "no content type")
                raise JiraBadResponse(
                    f"Jira {self.site} {what} answered {response.status_code} with a body "
                    f"that is not JSON ({kind})"
                ) from None

        def give_up(decision: GiveUp, failed: Failed, number: int) -> Exception:
            return JiraUnavailable(
                f"Jira {self.site} {what} {failed.reason} (after {number} tries)",
                retry_after=decision.retry_after,
            )

        return call(f"Jira {what}", once, give_up, policy=self.policy, log=log, sleep=self._sleep)

    # --- the calls billsync needs ------------------------------------------------------------

    @property
    def cloud(self) -> bool:
        """Jira Cloud: as configured, or ``deploymentType`` from serverInfo (read when the
        library connected)."""
        if self._deployment is not None:
            return self._deployment == "cloud"
        return bool(self._jira._is_cloud)

    def search(
        self, jql: str, fields: Sequence[str], *, page_size: int = SEARCH_PAGE
    ) -> Iterator[list[dict[str, Any]]]:
        """Pages of issues for ``jql``: Cloud's ``/search/jql`` with ``nextPageToken``, or
        Data Center's ``/search`` with ``startAt`` (Cloud has removed that one). Jira may
        answer fewer than ``page_size`` a page (Cloud gives up to 5000 when only ``id`` is
        asked for, 100 with fields)."""
        if not self.cloud:
            yield from self._search_classic(jql, fields, page_size)
            return
        token: str | None = None
        guard = LoopGuard()
        while True:
            params: dict[str, Any] = {
                "jql": jql,
                "fields": ",".join(fields),
                "maxResults": page_size,
            }
            if token:
                params["nextPageToken"] = token
            page = self._get_json("GET", "search/jql", params=params)
            if not isinstance(page, dict) or not isinstance(page.get("issues"), list):
                raise JiraBadResponse(f"Jira {self.site} search/jql answered without `issues`")
            yield [i for i in page["issues"] if isinstance(i, dict)]
            try:
                token = next_page_token(page, guard)
            except RepeatedPage:  # a server that repeats a token would loop forever
                raise JiraBadResponse(
                    f"Jira {self.site} search/jql repeated a page token"
                ) from None
            if token is None:
                return

    def _search_classic(
        self, jql: str, fields: Sequence[str], page_size: int
    ) -> Iterator[list[dict[str, Any]]]:
        start = 0
        while True:
            params = {
                "jql": jql,
                "fields": ",".join(fields),
                "startAt": start,
                "maxResults": page_size,
            }
            page = self._get_json("GET", "search", params=params)
            if not isinstance(page, dict) or not isinstance(page.get("issues"), list):
                raise JiraBadResponse(f"Jira {self.site} search answered without `issues`")
            issues = [i for i in page["issues"] if isinstance(i, dict)]
            yield issues
            following = next_start(page, start, len(issues))
            if following is None:
                return
            start = following

    def worklog_feed(self, kind: str, since_ms: int) -> Iterator[dict[str, Any]]:
        """Pages of ``/worklog/updated`` or ``/worklog/deleted`` from ``since_ms``."""
        route = f"worklog/{kind}"
        url: str = route
        params: dict[str, Any] | None = {"since": since_ms}
        guard = LoopGuard()
        while True:
            page = self._get_json("GET", url, params=params, route=route)
            if not isinstance(page, dict) or not isinstance(page.get("values"), list):
                raise JiraBadResponse(f"Jira {self.site} {route} answered without `values`")
            yield page
            try:
                following = next_feed_url(page, guard)  # absolute, as Jira gives it
            except RepeatedPage:
                raise JiraBadResponse(f"Jira {self.site} {route} repeated a nextPage URL") from None
            if following is None:
                return
            url, params = following, None

    def worklogs(self, ids: Sequence[int]) -> list[Any]:
        """``POST /worklog/list`` for up to 1000 ids (Jira omits the ones it will not show)."""
        if len(ids) > WORKLOG_LIST_LIMIT:
            raise ValueError(f"worklog/list takes at most {WORKLOG_LIST_LIMIT} ids")
        result = self._get_json("POST", "worklog/list", body={"ids": list(ids)})
        if not isinstance(result, list):
            raise JiraBadResponse(f"Jira {self.site} worklog/list did not answer with a list")
        return result
