"""The Kukkingu Contracting API client (httpx, synchronous).

Every call carries ``Authorization: Bearer <token>`` and the ``tenant-id`` header, goes
through the one retry policy in :mod:`connectors.retry`, and either returns typed models or
raises the project's errors (:mod:`worker.errors`):

    KukkinguError (mixin: method, route, status, api_error, api_message)
      +-- KukkinguAuthError      401/403       -> ConfigurationError
      +-- KukkinguRejected       400/422       -> BadRecordError
      +-- KukkinguNotFound       404           -> FatalError
      +-- KukkinguConflict       409           -> FatalError (e.g. the invoice is no DRAFT)
      +-- KukkinguUnavailable    429/5xx/net   -> RetryableError (carries retry_after)
      +-- KukkinguOutcomeUnknown POST, no answer -> WriteOutcomeUnknown
      +-- KukkinguBadResponse    not JSON / not the documented shape -> FatalError

A TLS certificate that fails verification raises ``UntrustedCertificate`` (a
``ConfigurationError``) at once, without a retry: the same certificate would fail again.
``verify`` is ``True`` (httpx's default trust store) or a PEM file of CAs to trust instead
(the config's ``kukkingu.ca_bundle``).

Messages name the call (``POST /api/v1/billables``) and the reason; the token appears in no
log line, exception or repr. ``request_counts`` counts requests per route template, retries
included, for the run records and the benchmark.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, TypeVar
from urllib.parse import quote

import httpx
from pydantic import SecretStr, TypeAdapter, ValidationError

from connectors.http import Failed, Trust, call, transport_failure, tries
from connectors.kukkingu.models import (
    MAX_BILLABLES_PER_CREATE,
    Billable,
    BillablePatch,
    BillableReplace,
    Client,
    Contract,
    Invoice,
    InvoiceReplace,
    InvoiceStatus,
    NewBillable,
    NewInvoice,
)
from connectors.retry import Attempt, GiveUp, GiveUpKind, RetryPolicy, parse_retry_after
from connectors.tls import host_of, httpx_verify
from worker.errors import (
    BadRecordError,
    ConfigurationError,
    FatalError,
    RetryableError,
    WriteOutcomeUnknown,
)

log = logging.getLogger("billsync.kukkingu")

T = TypeVar("T")
USER_AGENT = "billsync/0.1 (+https://github.com/billsync)"


class KukkinguError(Exception):
    """What every Kukkingu error carries besides its message (set by ``_raise``)."""

    method: str = ""
    route: str = ""
    status: int | None = None
    api_error: str | None = None
    api_message: str | None = None


class KukkinguAuthError(KukkinguError, ConfigurationError):
    """401/403: the token or tenant is wrong; an operator must fix the configuration."""


class KukkinguRejected(KukkinguError, BadRecordError):
    """400/422: Kukkingu refused the payload; the message names the field."""


class KukkinguNotFound(KukkinguError, FatalError):
    """404: the invoice, billable or contract does not exist in this tenant."""


class KukkinguConflict(KukkinguError, FatalError):
    """409: a status rule refused the call (the invoice is no DRAFT, a duplicate number)."""


class KukkinguUnavailable(KukkinguError, RetryableError):
    """429, 5xx or a network failure that retries did not cure; try later."""


class KukkinguOutcomeUnknown(KukkinguError, WriteOutcomeUnknown):
    """A non-idempotent write got no usable answer: it may be stored. Reconcile first."""


class KukkinguBadResponse(KukkinguError, FatalError):
    """A 2xx answer that is not JSON or not the documented shape (an HTML page, drift)."""


_BY_KIND: Mapping[GiveUpKind, type[KukkinguError]] = {
    "configuration": KukkinguAuthError,
    "bad_request": KukkinguRejected,
    "not_found": KukkinguNotFound,
    "conflict": KukkinguConflict,
    "retryable": KukkinguUnavailable,
    "outcome_unknown": KukkinguOutcomeUnknown,
    "fatal": KukkinguBadResponse,
}

# Methods whose repetition cannot store anything twice. POST is not in it: creates, finalize
# and void are not idempotent. (Reorder is, and says so at its call site.)
_IDEMPOTENT = frozenset({"GET", "PUT", "PATCH", "DELETE"})


class _BearerToken(httpx.Auth):
    """Adds the bearer token per request; holds it as a SecretStr so no repr can leak it."""

    def __init__(self, token: SecretStr) -> None:
        self._token = token

    def auth_flow(self, request: httpx.Request) -> Any:
        request.headers["Authorization"] = f"Bearer {self._token.get_secret_value()}"
        yield request

    def __repr__(self) -> str:
        return "_BearerToken(**********)"


def _api_error(response: httpx.Response) -> tuple[str | None, str | None]:
    try:
        body = response.json()
    except ValueError:
        return None, None
    if isinstance(body, dict):
        error, message = body.get("error"), body.get("message")
        return (
            error if isinstance(error, str) else None,
            message if isinstance(message, str) else None,
        )
    return None, None


def _error(
    kind: GiveUpKind,
    *,
    method: str,
    route: str,
    reason: str,
    status: int | None = None,
    response: httpx.Response | None = None,
    retry_after: float | None = None,
) -> KukkinguError:
    api_error, api_message = _api_error(response) if response is not None else (None, None)
    detail = f": {api_error}: {api_message}" if api_error or api_message else ""
    message = f"Kukkingu {method} {route} {reason}{detail}"
    cls = _BY_KIND[kind]
    exc = cls(message, retry_after=retry_after) if issubclass(cls, RetryableError) else cls(message)
    exc.method, exc.route, exc.status = method, route, status
    exc.api_error, exc.api_message = api_error, api_message
    return exc


class KukkinguClient:
    """One tenant's view of the Kukkingu API. Use as a context manager, or call ``close()``."""

    def __init__(
        self,
        base_url: str,
        tenant_id: str,
        token: SecretStr,
        *,
        timeout: float = 30.0,
        policy: RetryPolicy | None = None,
        transport: httpx.BaseTransport | None = None,
        verify: bool | str = True,
        sleep: Callable[[float], None] = time.sleep,
        jitter: Callable[[], float] = random.random,
    ) -> None:
        self.tenant_id = tenant_id
        self.policy = policy or RetryPolicy()
        self.request_counts: Counter[str] = Counter()
        self._counting = threading.Lock()  # the applier's writers share the client
        self._sleep = sleep
        self._jitter = jitter
        self._trust = Trust("Kukkingu", host_of(base_url), verify, "under [kukkingu]")
        self._http = httpx.Client(
            base_url=base_url.rstrip("/"),
            auth=_BearerToken(token),
            headers={"tenant-id": tenant_id, "user-agent": USER_AGENT},
            timeout=timeout,
            transport=transport,
            verify=httpx_verify(verify),
            follow_redirects=False,
        )

    def __enter__(self) -> KukkinguClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    def __repr__(self) -> str:
        return f"KukkinguClient({str(self._http.base_url)!r}, tenant={self.tenant_id!r})"

    # --- the one request path ------------------------------------------------------------

    def _request(
        self,
        method: str,
        route: str,
        *,
        path: Mapping[str, str] | None = None,
        params: Mapping[str, str] | None = None,
        body: Any = None,
        idempotent: bool | None = None,
    ) -> Any:
        """Send one logical call (with retries); return the ``data`` of a 2xx JSON body."""
        url = route.format(**{k: quote(v, safe="") for k, v in (path or {}).items()})
        safe = method in _IDEMPOTENT if idempotent is None else idempotent
        what = f"{method} {route}"

        def once(number: int) -> httpx.Response | Failed:
            with self._counting:
                self.request_counts[what] += 1
            started = time.monotonic()
            try:
                response = self._http.request(method, url, params=params, json=body)
            except httpx.TransportError as exc:
                return transport_failure(exc, number, idempotent=safe, trust=self._trust, what=what)
            log.debug(
                "kukkingu %s -> %s in %.0f ms",
                what,
                response.status_code,
                (time.monotonic() - started) * 1000,
            )
            if response.is_success:
                return response
            retry_after = parse_retry_after(response.headers.get("retry-after"), datetime.now(UTC))
            reason = f"answered {response.status_code} {response.reason_phrase}".strip()
            attempt = Attempt(number, safe, status=response.status_code, retry_after=retry_after)
            return Failed(attempt, reason, response)

        def give_up(decision: GiveUp, failed: Failed, number: int) -> Exception:
            return _error(
                decision.kind,
                method=method,
                route=route,
                reason=tries(failed.reason, number),
                status=failed.attempt.status,
                response=failed.answer,
                retry_after=decision.retry_after,
            )

        response = call(
            f"Kukkingu {what}",
            once,
            give_up,
            policy=self.policy,
            log=log,
            sleep=self._sleep,
            jitter=self._jitter,
        )
        return self._data(method, route, response)

    def _data(self, method: str, route: str, response: httpx.Response) -> Any:
        if response.status_code == 204:
            return None
        try:
            body = response.json()
        except ValueError:
            kind = response.headers.get("content-type", "no content type")
            raise _error(
                "fatal",
                method=method,
                route=route,
                reason=f"answered {response.status_code} with a body that is not JSON ({kind})",
                status=response.status_code,
            ) from None
        if not isinstance(body, dict) or "data" not in body:
            raise _error(
                "fatal",
                method=method,
                route=route,
                reason="answered without the documented {data: ...} envelope",
                status=response.status_code,
            )
        return body["data"]

    def _parse(self, adapter: TypeAdapter[T], data: Any, method: str, route: str) -> T:
        try:
            return adapter.validate_python(data)
        except ValidationError as exc:
            first = exc.errors(include_url=False, include_input=False)[0]
            where = ".".join(str(p) for p in first["loc"]) or "data"
            raise _error(
                "fatal",
                method=method,
                route=route,
                reason=f"answered with an unexpected shape: data.{where}: {first['msg']}",
                status=200,
            ) from None

    def _call(self, adapter: TypeAdapter[T], method: str, route: str, **kwargs: Any) -> T:
        return self._parse(adapter, self._request(method, route, **kwargs), method, route)

    # --- billables --------------------------------------------------------------------------

    def list_billables(self, invoice_id: str) -> list[Billable]:
        return self._call(_BILLABLES, "GET", "/api/v1/billables", params={"invoiceId": invoice_id})

    def get_billable(self, billable_id: str) -> Billable:
        return self._call(
            _BILLABLE, "GET", "/api/v1/billables/{billableId}", path={"billableId": billable_id}
        )

    def create_billables(self, invoice_id: str, billables: Sequence[NewBillable]) -> list[Billable]:
        """Create 1-100 billables on one invoice. Not idempotent: a lost answer raises
        ``KukkinguOutcomeUnknown``; list the invoice's billables before trying again."""
        if not 1 <= len(billables) <= MAX_BILLABLES_PER_CREATE:
            raise ValueError(
                f"create_billables takes 1-{MAX_BILLABLES_PER_CREATE} billables, "
                f"got {len(billables)}"
            )
        body = {"invoiceId": invoice_id, "billables": [b.to_json() for b in billables]}
        return self._call(_BILLABLES, "POST", "/api/v1/billables", body=body)

    def replace_billable(self, billable_id: str, billable: BillableReplace) -> Billable:
        return self._call(
            _BILLABLE,
            "PUT",
            "/api/v1/billables/{billableId}",
            path={"billableId": billable_id},
            body=billable.to_json(),
        )

    def patch_billable(self, billable_id: str, patch: BillablePatch) -> Billable:
        return self._call(
            _BILLABLE,
            "PATCH",
            "/api/v1/billables/{billableId}",
            path={"billableId": billable_id},
            body=patch.to_json(),
        )

    def order_billables(self, invoice_id: str, ids: Sequence[str]) -> list[str]:
        return self._call(
            _IDS,
            "POST",
            "/api/v1/billables/order",
            body={"invoiceId": invoice_id, "ids": list(ids)},
            idempotent=True,  # the same order applied twice is the same order
        )

    # --- invoices ---------------------------------------------------------------------------

    def list_invoices(
        self, *, contract_id: str | None = None, status: InvoiceStatus | None = None
    ) -> list[Invoice]:
        params = {k: v for k, v in (("contractId", contract_id), ("status", status)) if v}
        return self._call(_INVOICES, "GET", "/api/v1/invoices", params=params)

    def get_invoice(self, invoice_id: str) -> Invoice:
        return self._call(
            _INVOICE, "GET", "/api/v1/invoices/{invoiceId}", path={"invoiceId": invoice_id}
        )

    def create_invoice(self, invoice: NewInvoice) -> Invoice:
        """Create a DRAFT. Not idempotent; invoice numbers are unique per tenant, so after a
        lost answer look the number up with ``list_invoices`` before trying again."""
        return self._call(_INVOICE, "POST", "/api/v1/invoices", body=invoice.to_json())

    def replace_invoice(self, invoice_id: str, invoice: InvoiceReplace) -> Invoice:
        return self._call(
            _INVOICE,
            "PUT",
            "/api/v1/invoices/{invoiceId}",
            path={"invoiceId": invoice_id},
            body=invoice.to_json(),
        )

    def finalize_invoice(self, invoice_id: str) -> Invoice:
        return self._call(
            _INVOICE,
            "POST",
            "/api/v1/invoices/{invoiceId}/finalize",
            path={"invoiceId": invoice_id},
        )

    def void_invoice(self, invoice_id: str) -> Invoice:
        return self._call(
            _INVOICE, "POST", "/api/v1/invoices/{invoiceId}/void", path={"invoiceId": invoice_id}
        )

    # --- contracts and clients ---------------------------------------------------------------

    def list_contracts(self, *, client_id: str | None = None) -> list[Contract]:
        params = {"clientId": client_id} if client_id else None
        return self._call(_CONTRACTS, "GET", "/api/v1/contracts", params=params)

    def get_contract(self, contract_id: str) -> Contract:
        return self._call(
            _CONTRACT, "GET", "/api/v1/contracts/{contractId}", path={"contractId": contract_id}
        )

    def list_clients(self) -> list[Client]:
        return self._call(_CLIENTS, "GET", "/api/v1/clients")


_BILLABLE = TypeAdapter(Billable)
_BILLABLES = TypeAdapter(list[Billable])
_INVOICE = TypeAdapter(Invoice)
_INVOICES = TypeAdapter(list[Invoice])
_CONTRACT = TypeAdapter(Contract)
_CONTRACTS = TypeAdapter(list[Contract])
_CLIENTS = TypeAdapter(list[Client])
_IDS = TypeAdapter(list[str])
