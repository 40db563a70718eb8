"""The Kukkingu sandbox's general contract: auth, tenancy, envelopes, validation, lookups.

Billable and invoice rules have their own files; faults and the admin API too.
"""

from __future__ import annotations

import re

import pytest

from sandbox.kukkingu.seed import (
    ACME_CLIENT_ID,
    ACME_CONTRACT_ID,
    DEMO_TENANT_ID,
    DEMO_TOKEN,
    GLOBEX_CLIENT_ID,
    GLOBEX_CONTRACT_ID,
    ID_RE,
    OTHER_CONTRACT_ID,
    OTHER_TENANT_ID,
    OTHER_TOKEN,
)

from .conftest import Kk

MAX = 9007199254740991
TS_RULE = "must be a UTC timestamp such as 2023-10-05T14:48:00.000Z"
TIMESTAMP_OUT = r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$"

# -- auth and tenancy --------------------------------------------------------------------


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Bearer nope"},
        {"Authorization": DEMO_TOKEN},
        {"Authorization": f"Basic {DEMO_TOKEN}"},
        {"Authorization": "Bearer  x"},
    ],
    ids=["missing", "unknown", "no-scheme", "basic", "double-space"],
)
@pytest.mark.parametrize("path", ["/api/v1/billables", "/api/v1/tenants"])
def test_requests_without_a_known_bearer_token_are_401(bare, headers, path):
    response = bare.get(path, headers={"tenant-id": DEMO_TENANT_ID, **headers})
    assert response.status_code == 401
    assert response.json()["error"] == "Unauthorized"
    assert response.json()["message"]


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/api/v1/billables"),
        ("GET", "/api/v1/invoices"),
        ("GET", f"/api/v1/contracts/{ACME_CONTRACT_ID}"),
        ("GET", "/api/v1/clients"),
        ("DELETE", f"/api/v1/clients/{ACME_CLIENT_ID}"),
    ],
)
def test_the_tenant_id_header_is_required_outside_tenants(bare, method, path):
    response = bare.request(method, path, headers={"Authorization": f"Bearer {DEMO_TOKEN}"})
    assert response.status_code == 400
    assert response.json() == {"error": "BadRequest", "message": "tenant-id: header is required"}


@pytest.mark.parametrize(
    ("token", "tenant"),
    [
        (DEMO_TOKEN, OTHER_TENANT_ID),
        (OTHER_TOKEN, DEMO_TENANT_ID),
        (DEMO_TOKEN, "tnt_doesnotexist0000000000000"),
    ],
    ids=["demo-token-other-tenant", "other-token-demo-tenant", "unknown-tenant"],
)
def test_a_tenant_the_token_may_not_use_is_403(bare, token, tenant):
    response = bare.get(
        "/api/v1/clients", headers={"Authorization": f"Bearer {token}", "tenant-id": tenant}
    )
    assert response.status_code == 403
    assert response.json()["error"] == "Forbidden"


def test_another_tenants_resources_are_404_and_invisible_in_lists(kk: Kk, bare):
    response = kk.get(f"/api/v1/contracts/{OTHER_CONTRACT_ID}")
    assert response.status_code == 404
    assert response.json()["error"] == "NotFound"
    assert OTHER_CONTRACT_ID not in {c["id"] for c in kk.ok(kk.get("/api/v1/contracts"))}
    # ...and a write naming it through this tenant cannot reach it either.
    response = kk.post("/api/v1/invoices", json=kk.invoice_body(contractId=OTHER_CONTRACT_ID))
    assert response.status_code == 404
    assert response.json()["message"].startswith("contractId:")
    # The other tenant's token sees its own contract.
    other = bare.get(
        f"/api/v1/contracts/{OTHER_CONTRACT_ID}",
        headers={"Authorization": f"Bearer {OTHER_TOKEN}", "tenant-id": OTHER_TENANT_ID},
    )
    assert other.status_code == 200
    assert other.json()["data"]["name"] == "Initech project"


def test_an_invoice_of_another_tenant_is_404_for_every_operation(kk: Kk, bare):
    invoice = kk.create_invoice()
    other = {"Authorization": f"Bearer {OTHER_TOKEN}", "tenant-id": OTHER_TENANT_ID}
    path = f"/api/v1/invoices/{invoice['id']}"
    for method, suffix in [("GET", ""), ("POST", "/finalize"), ("POST", "/void")]:
        assert bare.request(method, path + suffix, headers=other).status_code == 404
    put = bare.put(path, headers=other, json=kk.invoice_body(contractId=OTHER_CONTRACT_ID))
    assert put.status_code == 404
    assert kk.ok(kk.get(path))["status"] == "DRAFT"


# -- routing, envelopes, bodies ------------------------------------------------------------


def test_unknown_routes_are_404_json(kk: Kk):
    response = kk.get("/api/v1/nothing-here")
    assert response.status_code == 404
    assert response.json()["error"] == "NotFound"


@pytest.mark.parametrize(
    ("method", "path", "allow"),
    [
        ("DELETE", "/api/v1/invoices", "GET, HEAD, POST"),
        ("PATCH", "/api/v1/invoices/inv_x", "GET, HEAD, PUT"),
        ("DELETE", "/api/v1/billables/bil_x", "GET, HEAD, PATCH, PUT"),
        ("GET", "/api/v1/invoices/inv_x/finalize", "POST"),
        ("GET", "/api/v1/clients/clnt_x", "DELETE, PATCH"),
    ],
)
def test_a_wrong_method_is_405_json_with_every_allowed_method(kk: Kk, method, path, allow):
    response = kk.request(method, path)
    assert response.status_code == 405
    assert response.json()["error"] == "MethodNotAllowed"
    assert response.headers["Allow"] == allow


@pytest.mark.parametrize(
    ("content", "headers", "message"),
    [
        (b"{not json", {"content-type": "application/json"}, "body: is not valid JSON"),
        (b"", {"content-type": "application/json"}, "body: is not valid JSON"),
        (b'{"name": NaN}', {"content-type": "application/json"}, "body: is not valid JSON"),
        (b"[]", {"content-type": "application/json"}, "body: must be an object"),
        (
            b'{"name": "x"}',
            {"content-type": "text/plain"},
            "content-type: must be application/json",
        ),
        (b'{"name": "x"}', {}, "content-type: must be application/json"),
    ],
)
def test_bodies_must_be_a_json_object(kk: Kk, content, headers, message):
    response = kk.post("/api/v1/clients", content=content, headers=headers)
    assert response.status_code == 400
    assert response.json()["message"].startswith(message)


def test_undocumented_query_parameters_are_400(kk: Kk):
    response = kk.get("/api/v1/billables", params={"limit": "10"})
    assert response.status_code == 400
    assert response.json()["message"] == "limit: unknown query parameter"


def test_success_is_200_with_a_data_envelope_and_ms_utc_timestamps(kk: Kk):
    response = kk.post("/api/v1/clients", json={"name": "Initrode"})
    assert response.status_code == 200
    client = response.json()["data"]
    assert set(client) == {"id", "name", "description", "order", "createdAt", "updatedAt"}
    assert ID_RE.match(client["id"])
    assert client["id"].startswith("clnt_")
    assert client["createdAt"] == client["updatedAt"]
    assert re.match(TIMESTAMP_OUT, client["createdAt"])


# -- validation table ------------------------------------------------------------------------

CONTRACT = {"clientId": ACME_CLIENT_ID, "name": "C", "amountMinor": 0, "currencyCode": "EUR"}


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("name", "", "name: must be a string of 1 to 255 characters"),
        ("name", "x" * 256, "name: must be a string of 1 to 255 characters"),
        ("name", 5, "name: must be a string of 1 to 255 characters"),
        ("amountMinor", -1, f"amountMinor: must be an integer between 0 and {MAX}"),
        ("amountMinor", MAX + 1, f"amountMinor: must be an integer between 0 and {MAX}"),
        ("amountMinor", "5", f"amountMinor: must be an integer between 0 and {MAX}"),
        ("amountMinor", True, f"amountMinor: must be an integer between 0 and {MAX}"),
        ("amountMinor", 5.0, f"amountMinor: must be an integer between 0 and {MAX}"),
        ("currencyCode", "EU", "currencyCode: must be a string of exactly 3 characters"),
        ("currencyCode", "EURO", "currencyCode: must be a string of exactly 3 characters"),
        ("order", -1, f"order: must be an integer between 0 and {MAX}"),
        ("clientId", None, "clientId: must be a string"),
        ("description", 1, "description: must be a string"),
        ("validFrom", "2023-02-29T00:00:00Z", f"validFrom: {TS_RULE}"),
        ("validFrom", "2024-01-01T10:00:00+01:00", f"validFrom: {TS_RULE}"),
        ("validFrom", "2024-01-01", f"validFrom: {TS_RULE}"),
        ("validFrom", "2024-04-31T00:00:00Z", f"validFrom: {TS_RULE}"),
        ("validFrom", "2024-01-01T24:00:00Z", f"validFrom: {TS_RULE}"),
        ("surprise", 1, "surprise: is not a known field"),
    ],
)
def test_contract_fields_are_validated_and_named(kk: Kk, field, value, message):
    response = kk.post("/api/v1/contracts", json={**CONTRACT, field: value})
    assert response.status_code == 400
    assert response.json() == {"error": "BadRequest", "message": message}


@pytest.mark.parametrize("field", ["clientId", "name", "amountMinor", "currencyCode"])
def test_contract_required_fields(kk: Kk, field):
    body = {k: v for k, v in CONTRACT.items() if k != field}
    response = kk.post("/api/v1/contracts", json=body)
    assert response.status_code == 400
    assert response.json()["message"] == f"{field}: is required"


@pytest.mark.parametrize(
    ("sent", "stored"),
    [
        ("2024-02-29T10:00:00Z", "2024-02-29T10:00:00.000Z"),  # leap day
        ("2000-02-29T10:00Z", "2000-02-29T10:00:00.000Z"),  # seconds optional, 400-year leap
        ("2026-11-21T10:00:00.123456Z", "2026-11-21T10:00:00.123Z"),  # any fraction digits
        ("2026-11-21T10:00:00.5Z", "2026-11-21T10:00:00.500Z"),
    ],
)
def test_accepted_timestamps_come_back_as_utc_milliseconds(kk: Kk, sent, stored):
    contract = kk.ok(kk.post("/api/v1/contracts", json={**CONTRACT, "validFrom": sent}))
    assert contract["validFrom"] == stored


def test_1900_is_not_a_leap_year(kk: Kk):
    response = kk.post("/api/v1/contracts", json={**CONTRACT, "validTo": "1900-02-29T00:00Z"})
    assert response.status_code == 400


def test_a_referenced_client_must_exist_in_the_tenant(kk: Kk):
    response = kk.post("/api/v1/contracts", json={**CONTRACT, "clientId": "clnt_nope"})
    assert response.status_code == 404
    assert response.json()["message"] == "clientId: clnt_nope not found in this tenant"


# -- contracts ---------------------------------------------------------------------------------


def test_seeded_contracts_and_expand_client(kk: Kk):
    contracts = kk.ok(kk.get("/api/v1/contracts"))
    assert [(c["id"], c["name"], c["currencyCode"], c["client"]) for c in contracts] == [
        (ACME_CONTRACT_ID, "Acme retainer", "EUR", ACME_CLIENT_ID),
        (GLOBEX_CONTRACT_ID, "Globex support", "USD", GLOBEX_CLIENT_ID),
    ]
    expanded = kk.ok(kk.get(f"/api/v1/contracts/{GLOBEX_CONTRACT_ID}", params={"expand": "client"}))
    assert expanded["client"]["id"] == GLOBEX_CLIENT_ID
    assert expanded["client"]["name"] == "Globex Corp"


def test_contracts_filter_by_client(kk: Kk):
    filtered = kk.ok(kk.get("/api/v1/contracts", params={"clientId": GLOBEX_CLIENT_ID}))
    assert [c["id"] for c in filtered] == [GLOBEX_CONTRACT_ID]


@pytest.mark.parametrize("expand", ["invoice", "client,", "contract", "CLIENT", ""])
def test_contracts_reject_unknown_expand_values(kk: Kk, expand):
    response = kk.get("/api/v1/contracts", params={"expand": expand})
    assert response.status_code == 400
    assert response.json()["message"].startswith("expand: unknown value")


def test_delete_contract_is_204_then_404_and_blocked_by_invoices(kk: Kk):
    kk.create_invoice(contractId=GLOBEX_CONTRACT_ID, currencyCode="USD")
    blocked = kk.delete(f"/api/v1/contracts/{GLOBEX_CONTRACT_ID}")
    assert blocked.status_code == 409
    created = kk.ok(kk.post("/api/v1/contracts", json=CONTRACT))
    deleted = kk.delete(f"/api/v1/contracts/{created['id']}")
    assert deleted.status_code == 204
    assert deleted.content == b""
    assert kk.get(f"/api/v1/contracts/{created['id']}").status_code == 404
    assert kk.delete(f"/api/v1/contracts/{created['id']}").status_code == 404


# -- clients -----------------------------------------------------------------------------------


def test_client_create_patch_delete(kk: Kk):
    client = kk.ok(kk.post("/api/v1/clients", json={"name": "Initrode", "description": "d"}))
    assert client["order"] == 2  # after the two seeded clients
    patched = kk.ok(kk.patch(f"/api/v1/clients/{client['id']}", json={"order": 9}))
    assert (patched["name"], patched["description"], patched["order"]) == ("Initrode", "d", 9)
    assert kk.delete(f"/api/v1/clients/{client['id']}").status_code == 204
    assert client["id"] not in {c["id"] for c in kk.ok(kk.get("/api/v1/clients"))}
    assert kk.patch(f"/api/v1/clients/{client['id']}", json={}).status_code == 404


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"name": "x", "description": "d" * 1025}, "description: must be a string of 0 to 1024"),
        ({"name": None}, "name: must be a string of 1 to 255 characters"),
        ({"order": MAX + 1}, f"order: must be an integer between 0 and {MAX}"),
    ],
)
def test_client_patch_validation(kk: Kk, body, message):
    response = kk.patch(f"/api/v1/clients/{ACME_CLIENT_ID}", json=body)
    assert response.status_code == 400
    assert response.json()["message"].startswith(message)


def test_a_client_with_contracts_cannot_be_deleted(kk: Kk):
    response = kk.delete(f"/api/v1/clients/{ACME_CLIENT_ID}")
    assert response.status_code == 409
    assert response.json()["error"] == "Conflict"


# -- tenants -----------------------------------------------------------------------------------


def test_tenants_need_no_tenant_header_and_list_only_the_tokens_tenants(bare):
    auth = {"Authorization": f"Bearer {DEMO_TOKEN}"}
    listed = bare.get("/api/v1/tenants", headers=auth).json()["data"]
    assert [t["id"] for t in listed] == [DEMO_TENANT_ID]
    assert bare.get(f"/api/v1/tenants/{OTHER_TENANT_ID}", headers=auth).status_code == 404


def test_a_created_tenant_becomes_usable_by_its_creator_only(bare):
    auth = {"Authorization": f"Bearer {DEMO_TOKEN}"}
    created = bare.post("/api/v1/tenants", headers=auth, json={"name": "Second Shop"})
    assert created.status_code == 200
    tenant_id = created.json()["data"]["id"]
    assert ID_RE.match(tenant_id)
    assert tenant_id.startswith("tnt_")
    clients = bare.get("/api/v1/clients", headers={**auth, "tenant-id": tenant_id})
    assert clients.status_code == 200
    assert clients.json() == {"data": []}
    other = {"Authorization": f"Bearer {OTHER_TOKEN}", "tenant-id": tenant_id}
    assert bare.get("/api/v1/clients", headers=other).status_code == 403
    found = bare.get("/api/v1/tenants", headers=auth, params={"search": "second"}).json()
    assert [t["id"] for t in found["data"]] == [tenant_id]
    patched = bare.patch(
        f"/api/v1/tenants/{tenant_id}", headers=auth, json={"description": "shop"}
    ).json()["data"]
    assert (patched["name"], patched["description"]) == ("Second Shop", "shop")
    assert bare.get(f"/api/v1/tenants/{tenant_id}", headers=auth).json()["data"] == patched


@pytest.mark.parametrize(
    "body", [{}, {"name": ""}, {"name": "x" * 256}, {"name": "x", "id": "tnt_mine"}]
)
def test_tenant_create_validation(bare, body):
    auth = {"Authorization": f"Bearer {DEMO_TOKEN}"}
    response = bare.post("/api/v1/tenants", headers=auth, json=body)
    assert response.status_code == 400
    assert response.json()["error"] == "BadRequest"


def test_ids_are_reproducible_for_a_given_seed(kk: Kk, sandbox):
    first = kk.create_invoice()["id"]
    sandbox.app.reset()
    assert kk.create_invoice()["id"] == first
