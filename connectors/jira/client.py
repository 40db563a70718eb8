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
import random
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

import requests
from jira import JIRA, JIRAError
from pydantic import SecretStr

from connectors.retry import Attempt, GiveUp, RetryPolicy, Transport, decide, parse_retry_after
from connectors.tls import host_of, untrusted, verification_failure
from worker.errors import ConfigurationError, FatalError, RetryableError

log = logging.getLogger("billsync.jira")
logging.getLogger("jira").setLevel(logging.WARNING)

WORKLOG_LIST_LIMIT = 1000
SEARCH_PAGE = 100


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
    ) -> None:
        self.url = url.rstrip("/")
        self.site = urlsplit(self.url).netloc
        self._verify = verify
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
                **auth,
            )
        except JIRAError as exc:
            raise self._error(exc.status_code, exc.response, "GET serverInfo") from None
        except requests.RequestException as exc:
            self._raise_if_untrusted(exc, "GET serverInfo")
            raise JiraUnavailable(
                f"Jira {self.site}: could not reach serverInfo ({type(exc).__name__})"
            ) from None

    def __repr__(self) -> str:
        return f"JiraApi({self.url!r})"

    def close(self) -> None:
        self._jira.close()  # type: ignore[no-untyped-call]

    def _raise_if_untrusted(self, exc: BaseException, what: str) -> None:
        """A certificate that failed verification is the operator's to fix: raise it as such."""
        failure = verification_failure(exc)
        if failure is not None:
            raise untrusted(
                "Jira",
                host_of(self.url),
                what,
                failure,
                verify=self._verify,
                setting="on this source",
            ) from None

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
        number = 0
        while True:
            number += 1
            self.request_counts[what] = self.request_counts.get(what, 0) + 1
            try:
                response = self._jira._session.request(method, url, params=params, json=body)
            except JIRAError as exc:
                if exc.status_code in (429,) or (exc.status_code or 0) >= 500:
                    header = (
                        exc.response.headers.get("Retry-After")
                        if exc.response is not None
                        else None
                    )
                    attempt = Attempt(
                        number,
                        True,
                        status=exc.status_code,
                        retry_after=parse_retry_after(header, datetime.now(UTC)),
                    )
                    reason = f"answered {exc.status_code}"
                else:
                    raise self._error(exc.status_code, exc.response, what) from None
            except requests.ConnectionError as exc:
                self._raise_if_untrusted(exc, what)  # never retried: the same certificate fails
                attempt = Attempt(number, True, transport=Transport.SENT)
                reason = f"could not be reached ({type(exc).__name__})"
            except requests.Timeout:
                attempt = Attempt(number, True, transport=Transport.SENT)
                reason = "timed out"
            else:
                try:
                    return response.json()
                except ValueError:
                    kind = response.headers.get("content-type", "no content type")
                    raise JiraBadResponse(
                        f"Jira {self.site} {what} answered {response.status_code} with a body "
                        f"that is not JSON ({kind})"
                    ) from None
            decision = decide(attempt, self.policy, random.random())  # noqa: S311 (jitter)
            if isinstance(decision, GiveUp):
                raise JiraUnavailable(
                    f"Jira {self.site} {what} {reason} (after {number} tries)",
                    retry_after=decision.retry_after,
                )
            log.info("jira %s %s; retry %d in %.2f s", what, reason, number, decision.wait)
            self._sleep(decision.wait)

    # --- the calls billsync needs ------------------------------------------------------------

    @property
    def cloud(self) -> bool:
        """``deploymentType`` from serverInfo (read when the library connected)."""
        return bool(self._jira._is_cloud)

    def search(self, jql: str, fields: Sequence[str]) -> Iterator[list[dict[str, Any]]]:
        """Pages of issues for ``jql``: Cloud's ``/search/jql`` with ``nextPageToken``, or
        Data Center's ``/search`` with ``startAt`` (Cloud has removed that one)."""
        if not self.cloud:
            yield from self._search_classic(jql, fields)
            return
        token: str | None = None
        seen: set[str] = set()
        while True:
            params: dict[str, Any] = {
                "jql": jql,
                "fields": ",".join(fields),
                "maxResults": SEARCH_PAGE,
            }
            if token:
                params["nextPageToken"] = token
            page = self._get_json("GET", "search/jql", params=params)
            if not isinstance(page, dict) or not isinstance(page.get("issues"), list):
                raise JiraBadResponse(f"Jira {self.site} search/jql answered without `issues`")
            yield [i for i in page["issues"] if isinstance(i, dict)]
            token = page.get("nextPageToken")
            if page.get("isLast", True) or not token:
                return
            if token in seen:  # a server that repeats a token would loop forever
                raise JiraBadResponse(f"Jira {self.site} search/jql repeated a page token")
            seen.add(token)

    def _search_classic(self, jql: str, fields: Sequence[str]) -> Iterator[list[dict[str, Any]]]:
        start = 0
        while True:
            params = {
                "jql": jql,
                "fields": ",".join(fields),
                "startAt": start,
                "maxResults": SEARCH_PAGE,
            }
            page = self._get_json("GET", "search", params=params)
            if not isinstance(page, dict) or not isinstance(page.get("issues"), list):
                raise JiraBadResponse(f"Jira {self.site} search answered without `issues`")
            issues = [i for i in page["issues"] if isinstance(i, dict)]
            yield issues
            start += len(issues)
            total = page.get("total")
            if not issues or not isinstance(total, int) or start >= total:
                return

    def worklog_feed(self, kind: str, since_ms: int) -> Iterator[dict[str, Any]]:
        """Pages of ``/worklog/updated`` or ``/worklog/deleted`` from ``since_ms``."""
        route = f"worklog/{kind}"
        url: str = route
        params: dict[str, Any] | None = {"since": since_ms}
        seen: set[str] = set()
        while True:
            page = self._get_json("GET", url, params=params, route=route)
            if not isinstance(page, dict) or not isinstance(page.get("values"), list):
                raise JiraBadResponse(f"Jira {self.site} {route} answered without `values`")
            yield page
            if page.get("lastPage", True) or not page.get("nextPage"):
                return
            url, params = str(page["nextPage"]), None  # absolute, as Jira gives it
            if url in seen:
                raise JiraBadResponse(f"Jira {self.site} {route} repeated a nextPage URL")
            seen.add(url)

    def worklogs(self, ids: Sequence[int]) -> list[Any]:
        """``POST /worklog/list`` for up to 1000 ids (Jira omits the ones it will not show)."""
        if len(ids) > WORKLOG_LIST_LIMIT:
            raise ValueError(f"worklog/list takes at most {WORKLOG_LIST_LIMIT} ids")
        result = self._get_json("POST", "worklog/list", body={"ids": list(ids)})
        if not isinstance(result, list):
            raise JiraBadResponse(f"Jira {self.site} worklog/list did not answer with a list")
        return result
