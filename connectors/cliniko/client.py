"""Cliniko's price list: the billable items billsync may take hourly rates from (SPEC §11).

Cliniko's API is read here, never written. One client per API key:

- HTTP Basic with the API key as the user name and an empty password, and a User-Agent
  with an app name and a contact email (Cliniko may refuse a request without one; the
  config checks it before any request);
- ``GET /billable_items`` with ``per_page=100``, following ``links.next``;
- a full read asks twice: the items in use (Cliniko leaves archived ones out of a list),
  then the archived ones (``q[]=archived_at:>...``); an incremental read asks for the items
  updated since the last read and those archived since;
- every call goes through the shared request loop (``connectors.http.call``): 429 (Cliniko
  allows 200 requests a minute per key), 5xx and network failures are retried, honouring
  ``Retry-After``; 401/403 are configuration errors; a certificate that fails verification
  is one too, never retried.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable, Iterator, Mapping
from datetime import UTC, datetime
from typing import Any

import httpx
from pydantic import SecretStr, TypeAdapter, ValidationError

from connectors.cliniko.models import BillableItem
from connectors.http import Failed, LoopGuard, RepeatedPage, Trust, call, transport_failure
from connectors.retry import Attempt, GiveUp, RetryPolicy, parse_retry_after
from connectors.tls import host_of, httpx_verify
from worker.errors import ConfigurationError, FatalError, RetryableError

log = logging.getLogger("billsync.cliniko")

PER_PAGE = 100  # Cliniko's largest page
EPOCH = "1970-01-01T00:00:00Z"  # an archived_at filter every archived item passes
ITEMS = TypeAdapter(list[BillableItem])


class ClinikoUnavailable(RetryableError):
    """429, 5xx or network trouble that retries did not cure; the cached prices stay."""


class ClinikoConfigError(ConfigurationError):
    """401/403: the API key (or the User-Agent) is refused; the operator must fix it."""


class ClinikoBadResponse(FatalError):
    """An answer that is not the JSON Cliniko documents."""


def cliniko_time(moment: datetime) -> str:
    """A filter value as Cliniko wants it: UTC, ``Z``."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class ClinikoClient:
    """The billable items of one Cliniko account (one API key). A context manager."""

    def __init__(
        self,
        base_url: str,
        api_key: SecretStr,
        user_agent: str,
        *,
        timeout: float = 30.0,
        policy: RetryPolicy | None = None,
        transport: httpx.BaseTransport | None = None,
        verify: bool | str = True,
        sleep: Callable[[float], None] = time.sleep,
        jitter: Callable[[], float] = random.random,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.policy = policy or RetryPolicy()
        self.request_counts: dict[str, int] = {}
        self._sleep = sleep
        self._jitter = jitter
        self._trust = Trust("Cliniko", host_of(base_url), verify, "under [cliniko]")
        self._http = httpx.Client(
            auth=httpx.BasicAuth(api_key.get_secret_value(), ""),
            headers={"user-agent": user_agent, "accept": "application/json"},
            timeout=timeout,
            transport=transport,
            verify=httpx_verify(verify),
            follow_redirects=False,
        )

    def __enter__(self) -> ClinikoClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    def __repr__(self) -> str:  # never the key
        return f"ClinikoClient({self.base_url!r})"

    # --- the price list ------------------------------------------------------------------

    def price_list(self, since: datetime | None = None) -> list[BillableItem]:
        """Every billable item (``since`` None), or those updated or archived since then;
        archived items included, since an archived item must stop its rule's billing."""
        if since is None:
            current, archived = [], [f"archived_at:>{EPOCH}"]
        else:
            current = [f"updated_at:>={cliniko_time(since)}"]
            archived = [f"archived_at:>={cliniko_time(since)}"]
        found: dict[str, BillableItem] = {}
        for filters in (current, archived):
            for page in self.pages(filters):
                found.update((item.id, item) for item in page)
        return sorted(found.values(), key=lambda item: int(item.id) if item.id.isdigit() else 0)

    def pages(self, filters: list[str]) -> Iterator[list[BillableItem]]:
        """``GET /billable_items`` with these ``q[]`` filters, page by page."""
        url: str | None = f"{self.base_url}/billable_items"
        params: Any = [("per_page", str(PER_PAGE)), *(("q[]", f) for f in filters)]
        guard = LoopGuard()
        while url is not None:
            body = self._get(url, params)
            try:
                items = ITEMS.validate_python(body.get("billable_items"))
            except ValidationError as exc:
                first = exc.errors(include_url=False, include_input=False)[0]
                where = ".".join(str(p) for p in first["loc"])
                raise ClinikoBadResponse(
                    f"Cliniko GET /billable_items answered an unexpected item: [{where}]: "
                    f"{first['msg']}"
                ) from None
            yield items
            following = (body.get("links") or {}).get("next")
            try:
                url = guard.follow(following) if isinstance(following, str) else None
            except RepeatedPage:
                raise ClinikoBadResponse(
                    "Cliniko GET /billable_items gave the same next page twice"
                ) from None
            params = None  # the next link carries the query

    # --- the one request path -------------------------------------------------------------

    def _get(self, url: str, params: Any) -> Mapping[str, Any]:
        what = "GET /billable_items"

        def once(number: int) -> httpx.Response | Failed:
            self.request_counts[what] = self.request_counts.get(what, 0) + 1
            try:
                response = self._http.get(url, params=params)
            except httpx.TransportError as exc:
                return transport_failure(exc, number, idempotent=True, trust=self._trust, what=what)
            if response.is_success:
                return response
            if response.status_code in (401, 403):
                raise ClinikoConfigError(
                    f"Cliniko {what} answered {response.status_code}: {_message(response)} "
                    "(check [cliniko] api_key_env and user_agent)"
                )
            if response.status_code != 429 and response.status_code < 500:
                raise ClinikoBadResponse(
                    f"Cliniko {what} answered {response.status_code}: {_message(response)}"
                )
            retry_after = parse_retry_after(response.headers.get("retry-after"), datetime.now(UTC))
            attempt = Attempt(number, True, status=response.status_code, retry_after=retry_after)
            return Failed(attempt, f"answered {response.status_code}")

        def give_up(decision: GiveUp, failed: Failed, number: int) -> Exception:
            return ClinikoUnavailable(
                f"Cliniko {what} {failed.reason} (after {number} tries)",
                retry_after=decision.retry_after,
            )

        response = call(
            f"Cliniko {what}",
            once,
            give_up,
            policy=self.policy,
            log=log,
            sleep=self._sleep,
            jitter=self._jitter,
        )
        try:
            body = response.json()
        except ValueError:
            kind = response.headers.get("content-type", "no content type")
            raise ClinikoBadResponse(
                f"Cliniko {what} answered {response.status_code} with a body that is not JSON "
                f"({kind})"
            ) from None
        if not isinstance(body, dict):
            raise ClinikoBadResponse(f"Cliniko {what} answered JSON that is not an object")
        return body


def _message(response: httpx.Response) -> str:
    """Cliniko's own words, if its answer has any (never the request's credentials)."""
    try:
        body = response.json()
    except ValueError:
        return response.reason_phrase or "no message"
    message = body.get("message") if isinstance(body, dict) else None
    return str(message)[:300] if message else (response.reason_phrase or "no message")
