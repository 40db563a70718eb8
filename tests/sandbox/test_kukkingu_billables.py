"""Billables in the Kukkingu sandbox: bulk create, replace, patch, reorder, list, expand."""

from __future__ import annotations

import pytest

from sandbox.kukkingu.seed import ACME_CLIENT_ID, ACME_CONTRACT_ID, ID_RE

from .conftest import Kk

MAX = 9007199254740991
BILLABLE_KEYS = {
    "id",
    "invoice",
    "description",
    "quantity",
    "amountMinor",
    "currencyCode",
    "referenceType",
    "referenceId",
    "metadata",
    "order",
    "createdAt",
    "updatedAt",
}


def test_bulk_create_returns_the_created_billables_in_order(kk: Kk):
    invoice = kk.create_invoice()
    created = kk.create_lines(
        invoice["id"],
        kk.line(referenceType="JIRA", referenceId="10001", metadata={"issue": "PROJ-1"}),
        kk.line(description="second", quantity=0, amountMinor=0),
    )
    assert [set(b) for b in created] == [BILLABLE_KEYS, BILLABLE_KEYS]
    first, second = created
    assert ID_RE.match(first["id"])
    assert first["id"].startswith("bil_")
    assert first["invoice"] == invoice["id"]
    assert (first["quantity"], first["amountMinor"], first["currencyCode"]) == (1.5, 15000, "EUR")
    assert (first["referenceType"], first["referenceId"]) == ("JIRA", "10001")
    assert first["metadata"] == {"issue": "PROJ-1"}
    assert (second["referenceType"], second["referenceId"], second["metadata"]) == (None,) * 3
    assert [first["order"], second["order"]] == [0, 1]
    assert kk.lines(invoice["id"]) == created


def test_an_absent_order_takes_the_next_position_on_the_invoice(kk: Kk):
    invoice = kk.create_invoice()
    kk.create_lines(invoice["id"], kk.line(order=4))
    later = kk.create_lines(invoice["id"], kk.line(), kk.line(order=2), kk.line())
    assert [b["order"] for b in later] == [5, 2, 6]


@pytest.mark.parametrize("count", [1, 100])
def test_one_to_a_hundred_billables_per_request(kk: Kk, count):
    invoice = kk.create_invoice()
    created = kk.create_lines(invoice["id"], *[kk.line(referenceId=str(i)) for i in range(count)])
    assert len(created) == count
    assert len(kk.lines(invoice["id"])) == count


@pytest.mark.parametrize(
    ("count", "message"),
    [
        (0, "billables: must contain at least 1 item(s)"),
        (101, "billables: must contain at most 100"),
    ],
)
def test_zero_or_more_than_a_hundred_billables_are_rejected(kk: Kk, count, message):
    invoice = kk.create_invoice()
    body = {"invoiceId": invoice["id"], "billables": [kk.line()] * count}
    response = kk.post("/api/v1/billables", json=body)
    assert response.status_code == 400
    assert response.json()["message"].startswith(message)
    assert kk.lines(invoice["id"]) == []


ITEM_ERRORS = [
    ("description", 7, "must be a string"),
    ("quantity", -0.5, "must be a number >= 0"),
    ("quantity", "1", "must be a number >= 0"),
    ("quantity", False, "must be a number >= 0"),
    ("amountMinor", -1, f"must be an integer between 0 and {MAX}"),
    ("amountMinor", MAX + 1, f"must be an integer between 0 and {MAX}"),
    ("amountMinor", 1.5, f"must be an integer between 0 and {MAX}"),
    ("amountMinor", "100", f"must be an integer between 0 and {MAX}"),
    ("currencyCode", "EURO", "must be a string of exactly 3 characters"),
    ("referenceType", 1, "must be a string"),
    ("referenceId", None, "must be a string"),
    ("metadata", ["a"], "must be an object"),
    ("metadata", "x", "must be an object"),
    ("order", -1, f"must be an integer between 0 and {MAX}"),
    ("order", True, f"must be an integer between 0 and {MAX}"),
    ("invoice", "inv_x", "is not a known field"),
]


@pytest.mark.parametrize(("field", "value", "rule"), ITEM_ERRORS)
def test_create_item_fields_are_validated_and_named_with_their_index(kk: Kk, field, value, rule):
    invoice = kk.create_invoice()
    items = [kk.line(), kk.line(), kk.line(), {**kk.line(), field: value}]
    response = kk.post("/api/v1/billables", json={"invoiceId": invoice["id"], "billables": items})
    assert response.status_code == 400
    assert response.json() == {"error": "BadRequest", "message": f"billables[3].{field}: {rule}"}
    assert kk.lines(invoice["id"]) == []  # all or nothing


@pytest.mark.parametrize("field", ["description", "quantity", "amountMinor", "currencyCode"])
def test_create_item_required_fields(kk: Kk, field):
    invoice = kk.create_invoice()
    item = {k: v for k, v in kk.line().items() if k != field}
    response = kk.post("/api/v1/billables", json={"invoiceId": invoice["id"], "billables": [item]})
    assert response.status_code == 400
    assert response.json()["message"] == f"billables[0].{field}: is required"


def test_create_needs_an_existing_invoice_of_the_tenant(kk: Kk):
    response = kk.post(
        "/api/v1/billables", json={"invoiceId": "inv_nope", "billables": [kk.line()]}
    )
    assert response.status_code == 404
    assert response.json()["message"] == "invoiceId: inv_nope not found in this tenant"


def test_a_billable_currency_must_equal_the_invoice_currency(kk: Kk):
    invoice = kk.create_invoice()
    items = [kk.line(), kk.line(currencyCode="USD")]
    response = kk.post("/api/v1/billables", json={"invoiceId": invoice["id"], "billables": items})
    assert response.status_code == 400
    assert response.json()["message"].startswith("billables[1].currencyCode: must equal")
    line = kk.create_lines(invoice["id"])[0]
    for method in ("put", "patch"):
        body = {**kk.line(order=0), "currencyCode": "USD"}
        response = getattr(kk, method)(f"/api/v1/billables/{line['id']}", json=body)
        assert response.status_code == 400
        assert response.json()["message"].startswith("currencyCode: must equal")


def test_put_is_a_full_replace_that_clears_absent_optional_fields(kk: Kk):
    invoice = kk.create_invoice()
    line = kk.create_lines(
        invoice["id"], kk.line(referenceType="JIRA", referenceId="1", metadata={"a": 1})
    )[0]
    body = {"description": "new", "quantity": 2, "amountMinor": 20000, "currencyCode": "EUR"}
    replaced = kk.ok(kk.put(f"/api/v1/billables/{line['id']}", json={**body, "order": 3}))
    assert {k: replaced[k] for k in body} == body
    assert replaced["order"] == 3
    assert (replaced["referenceType"], replaced["referenceId"], replaced["metadata"]) == (None,) * 3
    assert replaced["createdAt"] == line["createdAt"]
    assert kk.ok(kk.get(f"/api/v1/billables/{line['id']}")) == replaced


@pytest.mark.parametrize(
    "field", ["description", "quantity", "amountMinor", "currencyCode", "order"]
)
def test_put_requires_every_required_field(kk: Kk, field):
    invoice = kk.create_invoice()
    line = kk.create_lines(invoice["id"])[0]
    body = {k: v for k, v in kk.line(order=0).items() if k != field}
    response = kk.put(f"/api/v1/billables/{line['id']}", json=body)
    assert response.status_code == 400
    assert response.json()["message"] == f"{field}: is required"


def test_patch_changes_only_the_sent_fields(kk: Kk):
    invoice = kk.create_invoice()
    line = kk.create_lines(invoice["id"], kk.line(referenceType="JIRA", referenceId="1"))[0]
    patched = kk.ok(kk.patch(f"/api/v1/billables/{line['id']}", json={"amountMinor": 1}))
    assert patched["amountMinor"] == 1
    unchanged = {k: v for k, v in line.items() if k not in {"amountMinor", "updatedAt"}}
    assert {k: patched[k] for k in unchanged} == unchanged


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"invoiceId": "inv_x"}, "invoiceId: is not a known field"),
        ({"invoice": "inv_x"}, "invoice: is not a known field"),
        ({"quantity": None}, "quantity: must be a number >= 0"),
        ({"order": "1"}, f"order: must be an integer between 0 and {MAX}"),
    ],
)
def test_patch_validation_and_no_reparenting(kk: Kk, body, message):
    invoice = kk.create_invoice()
    line = kk.create_lines(invoice["id"])[0]
    response = kk.patch(f"/api/v1/billables/{line['id']}", json=body)
    assert response.status_code == 400
    assert response.json()["message"] == message


def test_unknown_billable_is_404_for_get_put_patch(kk: Kk):
    for method, body in [("GET", None), ("PUT", kk.line(order=0)), ("PATCH", {})]:
        response = kk.request(method, "/api/v1/billables/bil_nope", json=body)
        assert response.status_code == 404, method


@pytest.mark.parametrize("action", ["finalize", "void"])
def test_billables_of_a_non_draft_invoice_are_locked(kk: Kk, action):
    invoice = kk.create_invoice()
    line = kk.create_lines(invoice["id"])[0]
    kk.ok(kk.post(f"/api/v1/invoices/{invoice['id']}/{action}"))
    attempts = [
        kk.post("/api/v1/billables", json={"invoiceId": invoice["id"], "billables": [kk.line()]}),
        kk.put(f"/api/v1/billables/{line['id']}", json=kk.line(order=0)),
        kk.patch(f"/api/v1/billables/{line['id']}", json={"amountMinor": 1}),
        kk.post("/api/v1/billables/order", json={"invoiceId": invoice["id"], "ids": []}),
    ]
    assert [r.status_code for r in attempts] == [409] * 4
    assert {r.json()["error"] for r in attempts} == {"Conflict"}
    assert kk.lines(invoice["id"]) == [line]


def test_reorder_puts_listed_ids_first_and_the_rest_by_creation(kk: Kk):
    invoice = kk.create_invoice()
    a, b, c, d = kk.create_lines(invoice["id"], *[kk.line(description=x) for x in "abcd"])
    # Shuffle the stored order first so "by creation" differs from "by current order".
    kk.ok(kk.patch(f"/api/v1/billables/{a['id']}", json={"order": 50}))
    body = {"invoiceId": invoice["id"], "ids": [d["id"], b["id"]]}
    result = kk.ok(kk.post("/api/v1/billables/order", json=body))
    assert result == [d["id"], b["id"], a["id"], c["id"]]
    listed = kk.lines(invoice["id"])
    assert [(x["id"], x["order"]) for x in listed] == [(i, n) for n, i in enumerate(result)]


@pytest.mark.parametrize(
    ("ids", "message"),
    [
        (lambda a, other: [a, a], "ids[1]: {a} is listed twice"),
        (lambda a, other: [a, other], "ids[1]: {other} is not a billable of invoice"),
        (lambda a, other: ["bil_nope"], "ids[0]: bil_nope is not a billable of invoice"),
        (lambda a, other: [1], "ids[0]: must be a string"),
    ],
    ids=["duplicate", "other-invoice", "unknown", "not-a-string"],
)
def test_reorder_rejects_foreign_and_duplicate_ids(kk: Kk, ids, message):
    invoice = kk.create_invoice()
    other_invoice = kk.create_invoice(invoiceNumber="INV-2")
    a = kk.create_lines(invoice["id"])[0]["id"]
    other = kk.create_lines(other_invoice["id"])[0]["id"]
    body = {"invoiceId": invoice["id"], "ids": ids(a, other)}
    response = kk.post("/api/v1/billables/order", json=body)
    assert response.status_code == 400
    assert response.json()["message"].startswith(message.format(a=a, other=other))


def test_reorder_needs_an_existing_invoice(kk: Kk):
    response = kk.post("/api/v1/billables/order", json={"invoiceId": "inv_nope", "ids": []})
    assert response.status_code == 404
    assert response.json()["message"].startswith("invoiceId:")


def test_list_orders_by_order_then_creation_and_filters_by_invoice(kk: Kk):
    first = kk.create_invoice()
    second = kk.create_invoice(invoiceNumber="INV-2")
    x, y, z = kk.create_lines(first["id"], kk.line(order=1), kk.line(order=0), kk.line(order=1))
    w = kk.create_lines(second["id"])[0]
    assert [b["id"] for b in kk.lines(first["id"])] == [y["id"], x["id"], z["id"]]
    assert [b["id"] for b in kk.lines(second["id"])] == [w["id"]]
    everything = kk.ok(kk.get("/api/v1/billables"))
    assert [b["id"] for b in everything] == [y["id"], x["id"], z["id"], w["id"]]
    assert kk.lines("inv_unknown") == []


@pytest.mark.parametrize(
    ("expand", "invoice_type", "contract_type", "client_type"),
    [
        (None, str, None, None),
        ("invoice", dict, str, None),
        ("invoice.contract", dict, dict, str),
        ("invoice.contract.client", dict, dict, dict),
        ("invoice,invoice.contract", dict, dict, str),
    ],
)
def test_expand_turns_relations_into_objects(
    kk: Kk, expand, invoice_type, contract_type, client_type
):
    invoice = kk.create_invoice()
    line = kk.create_lines(invoice["id"])[0]
    params = {"expand": expand} if expand else {}
    for data in (
        kk.ok(kk.get(f"/api/v1/billables/{line['id']}", params=params)),
        kk.ok(kk.get("/api/v1/billables", params=params))[0],
    ):
        assert type(data["invoice"]) is invoice_type
        if invoice_type is dict:
            assert data["invoice"]["id"] == invoice["id"]
            assert type(data["invoice"]["contract"]) is contract_type
        if contract_type is dict:
            assert data["invoice"]["contract"]["id"] == ACME_CONTRACT_ID
            assert type(data["invoice"]["contract"]["client"]) is client_type
        if client_type is dict:
            assert data["invoice"]["contract"]["client"]["id"] == ACME_CLIENT_ID


@pytest.mark.parametrize("expand", ["contract", "invoice.client", "invoice,", "Invoice"])
def test_unknown_expand_values_are_400(kk: Kk, expand):
    response = kk.get("/api/v1/billables", params={"expand": expand})
    assert response.status_code == 400
    assert response.json()["message"].startswith("expand: unknown value")
