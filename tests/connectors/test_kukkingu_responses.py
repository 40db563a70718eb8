"""Kukkingu client edge cases that a well-behaved sandbox never produces.

The real-HTTP tests against the sandbox are in test_kukkingu_client.py; these use
httpx.MockTransport for answers a broken proxy or a changed API could give: HTML pages,
truncated JSON, missing envelopes, schema drift, odd Retry-After values.
"""

from collections.abc import Callable
from decimal import Decimal

import httpx
import pytest
from pydantic import SecretStr

from connectors.kukkingu import (
    KukkinguBadResponse,
    KukkinguClient,
    KukkinguOutcomeUnknown,
    KukkinguUnavailable,
    NewBillable,
)
from connectors.retry import RetryPolicy

TOKEN = "tok-very-secret-123"
TENANT = "tnt_" + "a" * 24
INVOICE_ID = "inv_" + "1" * 24
INVOICE: dict[str, object] = {
    "id": INVOICE_ID,
    "contract": "ctr_" + "2" * 24,
    "status": "DRAFT",
    "invoiceNumber": "X-1",
    "exchangeRate": 1,
    "currencyCode": "EUR",
    "amountMinor": 0,
    "createdAt": "2026-11-21T10:00:00.000Z",
    "updatedAt": "2026-11-21T10:00:00.000Z",
}


def client_for(handler: Callable[[httpx.Request], httpx.Response], **kw) -> KukkinguClient:
    sleeps: list[float] = []
    client = KukkinguClient(
        "http://kukkingu.test",
        TENANT,
        SecretStr(TOKEN),
        transport=httpx.MockTransport(handler),
        sleep=sleeps.append,
        jitter=lambda: 0.0,
        policy=kw.pop("policy", RetryPolicy(max_attempts=3, base_delay=1.0, max_wait=10.0)),
    )
    client.sleeps = sleeps  # type: ignore[attr-defined]
    return client


def test_every_request_carries_bearer_token_and_tenant() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={"data": INVOICE})

    client_for(handler).get_invoice(INVOICE_ID)
    assert seen[0].headers["authorization"] == f"Bearer {TOKEN}"
    assert seen[0].headers["tenant-id"] == TENANT
    assert seen[0].url.path == f"/api/v1/invoices/{INVOICE_ID}"


def test_path_ids_are_escaped() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(404, json={"error": "NotFound", "message": "no"})

    with pytest.raises(Exception, match="404"):
        client_for(handler).get_invoice("../billables?x=1")
    assert seen[0].url.raw_path == b"/api/v1/invoices/..%2Fbillables%3Fx%3D1"


@pytest.mark.parametrize(
    ("response", "expected"),
    [
        (
            httpx.Response(
                200, text="<html>Bad gateway</html>", headers={"content-type": "text/html"}
            ),
            "answered 200 with a body that is not JSON (text/html)",
        ),
        (httpx.Response(200, text='{"data": {"id": "inv_'), "body that is not JSON"),
        (
            httpx.Response(200, json={"invoice": INVOICE}),
            "without the documented {data: ...} envelope",
        ),
        (httpx.Response(200, json=[INVOICE]), "without the documented {data: ...} envelope"),
        (
            httpx.Response(200, json={"data": {**INVOICE, "status": "PAID"}}),
            "unexpected shape: data.status: Input should be 'DRAFT', 'FINALIZED' or 'VOID'",
        ),
        (
            httpx.Response(
                200, json={"data": {k: v for k, v in INVOICE.items() if k != "amountMinor"}}
            ),
            "unexpected shape: data.amountMinor: Field required",
        ),
    ],
)
def test_bad_answers_are_clear_fatal_errors(response: httpx.Response, expected: str) -> None:
    client = client_for(lambda request: response)
    with pytest.raises(KukkinguBadResponse) as caught:
        client.get_invoice(INVOICE_ID)
    message = str(caught.value)
    assert message.startswith("Kukkingu GET /api/v1/invoices/{invoiceId} ")
    assert expected in message


def test_unknown_response_fields_are_tolerated() -> None:
    client = client_for(lambda r: httpx.Response(200, json={"data": {**INVOICE, "newField": 1}}))
    assert client.get_invoice(INVOICE_ID).status == "DRAFT"


def test_get_retries_5xx_then_succeeds_and_counts_every_try() -> None:
    answers = iter(
        [httpx.Response(502), httpx.Response(503), httpx.Response(200, json={"data": INVOICE})]
    )
    client = client_for(lambda r: next(answers))
    assert client.get_invoice(INVOICE_ID).invoice_number == "X-1"
    assert client.sleeps == [0.5, 1.0]  # type: ignore[attr-defined]
    assert client.request_counts == {"GET /api/v1/invoices/{invoiceId}": 3}


def test_get_gives_up_after_max_attempts_with_retry_after() -> None:
    client = client_for(
        lambda r: httpx.Response(500, json={"error": "Internal", "message": "boom"})
    )
    with pytest.raises(KukkinguUnavailable) as caught:
        client.list_invoices()
    assert caught.value.retry_after == 2.0
    assert caught.value.status == 500
    assert "after 3 tries" in str(caught.value)
    assert "Internal: boom" in str(caught.value)


def test_unreadable_retry_after_falls_back_to_backoff() -> None:
    answers = iter(
        [
            httpx.Response(429, headers={"retry-after": "soon"}),
            httpx.Response(200, json={"data": []}),
        ]
    )
    client = client_for(lambda r: next(answers))
    assert client.list_invoices() == []
    assert client.sleeps == [0.5]  # type: ignore[attr-defined]


def test_create_on_5xx_is_outcome_unknown_and_not_retried() -> None:
    calls: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request)
        return httpx.Response(500)

    client = client_for(handler)
    item = NewBillable(
        description="d", quantity=Decimal("1.5"), amount_minor=150, currency_code="EUR"
    )
    with pytest.raises(KukkinguOutcomeUnknown):
        client.create_billables(INVOICE_ID, [item])
    assert len(calls) == 1


def test_decimal_quantity_is_sent_as_a_json_number() -> None:
    bodies: list[bytes] = []

    def handler(request: httpx.Request) -> httpx.Response:
        bodies.append(request.content)
        return httpx.Response(200, json={"data": []})

    item = NewBillable(
        description="d",
        quantity=Decimal("12.35"),
        amount_minor=148200,
        currency_code="EUR",
        order=3,
    )
    client_for(handler).create_billables(INVOICE_ID, [item])
    assert b'"quantity":12.35' in bodies[0]
    assert b'"amountMinor":148200' in bodies[0]
    assert b"referenceType" not in bodies[0]  # absent optional fields are not sent


def test_token_never_appears_in_errors_or_reprs() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("timed out", request=request)

    client = client_for(handler)
    with pytest.raises(KukkinguUnavailable) as caught:
        client.list_clients()
    for text in (str(caught.value), repr(caught.value), repr(client), repr(client._http.auth)):
        assert TOKEN not in text


@pytest.mark.parametrize("count", [0, 101])
def test_create_refuses_batches_outside_1_to_100(count: int) -> None:
    client = client_for(lambda r: httpx.Response(200, json={"data": []}))
    item = NewBillable(description="d", quantity=Decimal(1), amount_minor=1, currency_code="EUR")
    with pytest.raises(ValueError, match="1-100 billables"):
        client.create_billables(INVOICE_ID, [item] * count)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("quantity", Decimal(-1)),
        ("amount_minor", -1),
        ("amount_minor", 2**53),
        ("currency_code", "EU"),
    ],
)
def test_request_models_check_documented_ranges(field: str, value: object) -> None:
    fields = {"description": "d", "quantity": Decimal(1), "amount_minor": 1, "currency_code": "EUR"}
    with pytest.raises(ValueError, match=field):
        NewBillable(**{**fields, field: value})
