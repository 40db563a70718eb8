"""Invoices in the Kukkingu sandbox: create, get, list, full-replace PUT, finalize, void."""

from __future__ import annotations

import pytest

from sandbox.kukkingu.seed import (
    ACME_CLIENT_ID,
    ACME_CONTRACT_ID,
    GLOBEX_CONTRACT_ID,
    ID_RE,
    OTHER_CONTRACT_ID,
)

from .conftest import Kk

MAX = 9007199254740991
INVOICE_KEYS = {
    "id",
    "contract",
    "status",
    "invoiceNumber",
    "exchangeRate",
    "currencyCode",
    "amountMinor",
    "issuedAt",
    "dueAt",
    "paidAt",
    "createdAt",
    "updatedAt",
}


def test_create_starts_as_draft_and_stores_the_amount_as_given(kk: Kk):
    invoice = kk.create_invoice(amountMinor=123, exchangeRate=1.25, issuedAt="2026-11-01T00:00Z")
    assert set(invoice) == INVOICE_KEYS
    assert ID_RE.match(invoice["id"])
    assert invoice["id"].startswith("inv_")
    assert (invoice["status"], invoice["contract"]) == ("DRAFT", ACME_CONTRACT_ID)
    assert (invoice["amountMinor"], invoice["exchangeRate"]) == (123, 1.25)
    assert (invoice["issuedAt"], invoice["dueAt"]) == ("2026-11-01T00:00:00.000Z", None)
    kk.create_lines(invoice["id"], kk.line(amountMinor=5000))
    assert kk.ok(kk.get(f"/api/v1/invoices/{invoice['id']}"))["amountMinor"] == 123


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("invoiceNumber", "", "invoiceNumber: must be a string of 1 to 255 characters"),
        ("invoiceNumber", "9" * 256, "invoiceNumber: must be a string of 1 to 255 characters"),
        ("exchangeRate", -0.1, "exchangeRate: must be a number >= 0"),
        ("exchangeRate", "1", "exchangeRate: must be a number >= 0"),
        ("amountMinor", MAX + 1, f"amountMinor: must be an integer between 0 and {MAX}"),
        ("currencyCode", "E", "currencyCode: must be a string of exactly 3 characters"),
        ("dueAt", "2026-11-21T10:00:00.000+00:00", "dueAt: must be a UTC timestamp"),
        ("paidAt", "2025-02-29T10:00:00Z", "paidAt: must be a UTC timestamp"),
        ("status", "FINALIZED", "status: is not a known field"),
    ],
)
def test_invoice_fields_are_validated_and_named(kk: Kk, field, value, message):
    response = kk.post("/api/v1/invoices", json={**kk.invoice_body(), field: value})
    assert response.status_code == 400
    assert response.json()["message"].startswith(message)


@pytest.mark.parametrize(
    "field", ["contractId", "invoiceNumber", "exchangeRate", "currencyCode", "amountMinor"]
)
def test_invoice_required_fields(kk: Kk, field):
    response = kk.post("/api/v1/invoices", json=kk.invoice_body(**{field: None}))
    assert response.status_code == 400
    assert response.json()["message"] == f"{field}: is required"


def test_a_duplicate_invoice_number_is_409_on_create_and_put(kk: Kk):
    kk.create_invoice(invoiceNumber="INV-1")
    duplicate = kk.post("/api/v1/invoices", json=kk.invoice_body(invoiceNumber="INV-1"))
    assert duplicate.status_code == 409
    assert duplicate.json()["message"].startswith("invoiceNumber:")
    second = kk.create_invoice(invoiceNumber="INV-2")
    put = kk.put(f"/api/v1/invoices/{second['id']}", json=kk.invoice_body(invoiceNumber="INV-1"))
    assert put.status_code == 409
    # Re-sending its own number is not a duplicate.
    same = kk.put(f"/api/v1/invoices/{second['id']}", json=kk.invoice_body(invoiceNumber="INV-2"))
    assert same.status_code == 200


def test_get_and_list_with_filters_and_expand(kk: Kk):
    acme = kk.create_invoice(invoiceNumber="A")
    globex = kk.create_invoice(invoiceNumber="G", contractId=GLOBEX_CONTRACT_ID, currencyCode="USD")
    kk.ok(kk.post(f"/api/v1/invoices/{globex['id']}/finalize"))
    assert kk.ok(kk.get(f"/api/v1/invoices/{acme['id']}")) == acme
    assert [i["id"] for i in kk.ok(kk.get("/api/v1/invoices"))] == [acme["id"], globex["id"]]
    by_contract = kk.ok(kk.get("/api/v1/invoices", params={"contractId": ACME_CONTRACT_ID}))
    assert [i["id"] for i in by_contract] == [acme["id"]]
    finalized = kk.ok(kk.get("/api/v1/invoices", params={"status": "FINALIZED"}))
    assert [i["id"] for i in finalized] == [globex["id"]]
    expanded = kk.ok(kk.get(f"/api/v1/invoices/{acme['id']}", params={"expand": "contract.client"}))
    assert expanded["contract"]["id"] == ACME_CONTRACT_ID
    assert expanded["contract"]["client"]["id"] == ACME_CLIENT_ID
    listed = kk.ok(kk.get("/api/v1/invoices", params={"expand": "contract"}))
    assert listed[0]["contract"]["client"] == ACME_CLIENT_ID


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"status": "draft"}, "status: must be one of DRAFT, FINALIZED, VOID"),
        ({"expand": "client"}, "expand: unknown value 'client'"),
        ({"expand": "invoice"}, "expand: unknown value 'invoice'"),
    ],
)
def test_invoice_list_query_validation(kk: Kk, params, message):
    response = kk.get("/api/v1/invoices", params=params)
    assert response.status_code == 400
    assert response.json()["message"].startswith(message)


def test_unknown_invoice_is_404(kk: Kk):
    assert kk.get("/api/v1/invoices/inv_nope").status_code == 404
    assert kk.put("/api/v1/invoices/inv_nope", json=kk.invoice_body()).status_code == 404


def test_draft_put_is_a_full_replace(kk: Kk):
    invoice = kk.create_invoice(dueAt="2026-12-01T00:00Z", paidAt="2026-12-02T00:00Z")
    body = kk.invoice_body(
        contractId=GLOBEX_CONTRACT_ID, invoiceNumber="X", exchangeRate=0.9, amountMinor=7
    )
    replaced = kk.ok(kk.put(f"/api/v1/invoices/{invoice['id']}", json=body))
    assert (replaced["contract"], replaced["invoiceNumber"]) == (GLOBEX_CONTRACT_ID, "X")
    assert (replaced["exchangeRate"], replaced["amountMinor"]) == (0.9, 7)
    assert (replaced["dueAt"], replaced["paidAt"], replaced["status"]) == (None, None, "DRAFT")


def test_draft_put_needs_an_existing_contract(kk: Kk):
    invoice = kk.create_invoice()
    body = kk.invoice_body(contractId=OTHER_CONTRACT_ID)
    response = kk.put(f"/api/v1/invoices/{invoice['id']}", json=body)
    assert response.status_code == 404
    assert response.json()["message"].startswith("contractId:")


def test_a_draft_with_billables_cannot_change_currency(kk: Kk):
    invoice = kk.create_invoice()
    kk.create_lines(invoice["id"])
    response = kk.put(f"/api/v1/invoices/{invoice['id']}", json=kk.invoice_body(currencyCode="USD"))
    assert response.status_code == 409


ISSUED = "2026-11-01T00:00:00.000Z"


@pytest.mark.parametrize(
    ("change", "status"),
    [
        ({"paidAt": "2026-11-30T12:00:00Z"}, 200),
        ({}, 200),
        ({"amountMinor": 1}, 409),
        ({"invoiceNumber": "INV-9"}, 409),
        ({"exchangeRate": 2}, 409),
        ({"currencyCode": "USD"}, 409),
        ({"contractId": GLOBEX_CONTRACT_ID}, 409),
        ({"issuedAt": None}, 409),
        ({"dueAt": "2026-12-01T00:00:00Z"}, 409),
    ],
)
def test_a_finalized_invoice_only_takes_a_new_paid_at(kk: Kk, change, status):
    invoice = kk.create_invoice(issuedAt=ISSUED)
    kk.ok(kk.post(f"/api/v1/invoices/{invoice['id']}/finalize"))
    # Locked fields sent unchanged (issuedAt in another spelling of the same instant).
    body = {**kk.invoice_body(issuedAt="2026-11-01T00:00Z"), **change}
    response = kk.put(
        f"/api/v1/invoices/{invoice['id']}", json={k: v for k, v in body.items() if v is not None}
    )
    assert response.status_code == status, response.text
    stored = kk.ok(kk.get(f"/api/v1/invoices/{invoice['id']}"))
    assert stored["status"] == "FINALIZED"
    if status == 200:
        assert stored["paidAt"] == ("2026-11-30T12:00:00.000Z" if change else None)
    else:
        assert response.json()["error"] == "Conflict"
        assert stored["amountMinor"] == 0
        assert stored["issuedAt"] == ISSUED


def test_a_void_invoice_cannot_be_updated(kk: Kk):
    invoice = kk.create_invoice()
    kk.ok(kk.post(f"/api/v1/invoices/{invoice['id']}/void"))
    response = kk.put(f"/api/v1/invoices/{invoice['id']}", json=kk.invoice_body())
    assert response.status_code == 409


@pytest.mark.parametrize(
    ("steps", "last_status", "final"),
    [
        (["finalize"], 200, "FINALIZED"),
        (["void"], 200, "VOID"),
        (["finalize", "void"], 200, "VOID"),
        (["finalize", "finalize"], 409, "FINALIZED"),
        (["void", "finalize"], 409, "VOID"),
        (["void", "void"], 409, "VOID"),
        (["finalize", "void", "void"], 409, "VOID"),
    ],
)
def test_status_transitions(kk: Kk, steps, last_status, final):
    invoice = kk.create_invoice()
    responses = [kk.post(f"/api/v1/invoices/{invoice['id']}/{step}") for step in steps]
    assert [r.status_code for r in responses[:-1]] == [200] * (len(steps) - 1)
    assert responses[-1].status_code == last_status
    if last_status == 200:
        assert responses[-1].json()["data"]["status"] == final
    else:
        assert responses[-1].json()["error"] == "Conflict"
    assert kk.ok(kk.get(f"/api/v1/invoices/{invoice['id']}"))["status"] == final


@pytest.mark.parametrize("action", ["finalize", "void"])
def test_transitions_on_an_unknown_invoice_are_404(kk: Kk, action):
    assert kk.post(f"/api/v1/invoices/inv_nope/{action}").status_code == 404
