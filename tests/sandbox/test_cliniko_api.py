"""The Cliniko sandbox's API over real HTTP: auth and the User-Agent rule, one item, create
(201) and every validation rule (422), PATCH, archive (204) and the deprecated DELETE."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from sandbox.cliniko.seed import DEMO_API_KEY, GST_TAX_ID, OTHER_API_KEY
from tests.support.cliniko import RunningCliniko


@pytest.fixture
def http(cliniko: RunningCliniko) -> Iterator[httpx.Client]:
    with cliniko.http() as client:
        yield client


def basic(user: str, password: str = "") -> dict[str, str]:
    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    return {"Authorization": f"Basic {token}", "User-Agent": "billsync (billing@example.com)"}


# -- who may call -----------------------------------------------------------------------------


def test_no_credentials_is_401_saying_how_to_authenticate(cliniko):
    with cliniko.http(key=None) as client:
        response = client.get("/billable_items")
    assert response.status_code == 401
    assert response.json() == {
        "message": "Authentication required: HTTP Basic with your Cliniko API key as the user "
        "name and an empty password"
    }
    assert response.headers["www-authenticate"] == 'Basic realm="Cliniko API"'
    assert response.headers["content-type"] == "application/json; charset=utf-8"


@pytest.mark.parametrize(
    "headers",
    [
        basic("not-a-key-au1"),
        basic(DEMO_API_KEY, "secret"),  # a password is not how Cliniko takes a key
        basic(f"{DEMO_API_KEY}-au1"),
        basic(""),
        {"Authorization": f"Bearer {DEMO_API_KEY}", "User-Agent": "billsync (b@example.com)"},
        {"Authorization": "Basic %%%", "User-Agent": "billsync (b@example.com)"},
    ],
)
def test_a_wrong_key_is_401(cliniko, headers):
    response = httpx.get(f"{cliniko.base_url}/billable_items", headers=headers, timeout=10)
    assert response.status_code == 401
    assert response.json()["message"].startswith("Invalid API key: HTTP Basic with your")


@pytest.mark.parametrize("user", [DEMO_API_KEY, "cliniko-sandbox-key", OTHER_API_KEY])
def test_a_key_works_with_or_without_its_shard_suffix(cliniko, user):
    response = httpx.get(f"{cliniko.base_url}/billable_items", headers=basic(user), timeout=10)
    assert response.status_code == 200, response.text


@pytest.mark.parametrize(
    "user_agent",
    [None, "", "billsync", "billsync/1.0", "billing@example.com", "(billing@example.com)"],
)
def test_a_user_agent_without_app_name_and_email_is_refused(cliniko, user_agent):
    with cliniko.http(user_agent=user_agent) as client:
        response = client.get("/billable_items")
    assert response.status_code == 403
    assert response.json() == {
        "message": "Cliniko requires a User-Agent with the name of your application and a "
        'contact email, e.g. "billsync (billing@example.com)"'
    }


@pytest.mark.parametrize(
    "user_agent",
    [
        "billsync (billing@example.com)",
        "billsync/0.1 (+https://example.com; ops@example.co.uk)",
        "Acme Billing ops@acme.example.org",
    ],
)
def test_a_user_agent_with_app_name_and_email_passes(cliniko, user_agent):
    with cliniko.http(user_agent=user_agent) as client:
        assert client.get("/billable_items").status_code == 200


def test_auth_is_checked_before_the_user_agent(cliniko):
    with cliniko.http(key="wrong-au1", user_agent=None) as client:
        assert client.get("/billable_items").status_code == 401


def test_answers_carry_the_sandbox_clock_as_date(http):
    assert http.get("/billable_items").headers["date"] == "Fri, 20 Nov 2026 09:00:00 GMT"


# -- one item ---------------------------------------------------------------------------------


def test_get_an_item_in_clinikos_shape(cliniko, http):
    item_id = cliniko.item_id("CONSULT-60")
    response = http.get(f"/billable_items/{item_id}")
    assert response.status_code == 200
    root = cliniko.base_url
    assert response.json() == {
        "id": item_id,
        "name": "Consultation (60 min)",
        "item_code": "CONSULT-60",
        "item_type": "Service",
        "price": "150.00",
        "tax": {"links": {"self": f"{root}/taxes/{GST_TAX_ID}"}},
        "archived_at": None,
        "created_at": "2026-08-22T06:00:00Z",
        "updated_at": "2026-08-22T06:00:00Z",
        "links": {"self": f"{root}/billable_items/{item_id}"},
    }


def test_get_returns_an_archived_item_too(cliniko, http):
    body = http.get(f"/billable_items/{cliniko.item_id('CONSULT-OLD')}").json()
    assert body["archived_at"] == "2026-11-10T09:00:00Z"
    assert body["updated_at"] == "2026-11-10T09:00:00Z"


def test_get_with_an_archived_at_filter(cliniko, http):
    archived = f"/billable_items/{cliniko.item_id('CONSULT-OLD')}"
    live = f"/billable_items/{cliniko.item_id('CONSULT-60')}"
    only_archived = {"q[]": "archived_at:>1970-01-01T00:00:00Z"}
    assert http.get(archived, params=only_archived).status_code == 200
    assert http.get(live, params=only_archived).status_code == 404
    refused = http.get(live, params={"q[]": "id:=1"})
    assert refused.status_code == 400
    assert "cannot filter on 'id' (filterable: archived_at)" in refused.json()["message"]
    assert http.get(live, params={"page": "2"}).status_code == 400


@pytest.mark.parametrize("item_id", ["1", "abc", "99999999999999999999", "-1"])
def test_an_unknown_item_is_404(http, item_id):
    response = http.get(f"/billable_items/{item_id}")
    assert response.status_code == 404
    assert response.json()["message"].startswith("Not found")


def test_unknown_routes_and_methods(cliniko, http):
    assert http.get("/taxes/1").status_code == 404
    put = http.put(f"/billable_items/{cliniko.item_id('CONSULT-60')}", json={})
    assert put.status_code == 405
    assert put.headers["allow"] == "DELETE, GET, HEAD, PATCH"
    assert http.patch("/billable_items", json={}).status_code == 405


# -- create -----------------------------------------------------------------------------------


def test_create_answers_201_with_the_item_and_its_location(cliniko, http):
    body = {"name": "Group class", "item_type": "Service", "price": "120.00", "tax_id": "7"}
    response = http.post("/billable_items", json={**body, "item_code": "CLASS-1"})
    assert response.status_code == 201, response.text
    item = response.json()
    assert item["price"] == "120.00"  # the string as written
    assert item["tax"] == {"links": {"self": f"{cliniko.base_url}/taxes/7"}}
    assert (item["name"], item["item_code"], item["item_type"]) == (
        "Group class",
        "CLASS-1",
        "Service",
    )
    assert item["created_at"] == item["updated_at"] == "2026-11-20T09:00:00Z"
    assert item["archived_at"] is None
    assert int(item["id"]) > int(cliniko.item_id("PRECISE-1"))  # ids grow with creation
    assert response.headers["location"] == item["links"]["self"]
    assert http.get(response.headers["location"]).json() == item


def test_create_without_optional_fields(http):
    body = {"name": "Room hire", "item_type": "Other", "price": "-10"}
    item = http.post("/billable_items", json=body).json()
    assert (item["item_code"], item["tax"], item["price"]) == (None, None, "-10")


def rule_cases() -> list[Any]:
    valid = {"name": "Item", "item_type": "Service", "price": "1.00"}

    def case(change: dict[str, Any], field: str, reason: str) -> Any:
        body = {**valid, **change}
        body = {key: value for key, value in body.items() if value is not ...}
        return pytest.param(body, field, reason, id=f"{field}-{reason[:24]}")

    return [
        case({"name": ...}, "name", "can't be blank"),
        case({"name": ""}, "name", "can't be blank"),
        case({"name": "   "}, "name", "can't be blank"),
        case({"name": None}, "name", "can't be blank"),
        case({"name": 5}, "name", "must be a string"),
        case({"name": "n" * 256}, "name", "is too long (maximum is 255 characters)"),
        case({"item_code": "c" * 101}, "item_code", "is too long (maximum is 100 characters)"),
        case({"item_code": 60}, "item_code", "must be a string or null"),
        case({"item_type": ...}, "item_type", "can't be blank"),
        case({"item_type": "service"}, "item_type", "is not included in the list"),
        case({"item_type": "Consultation"}, "item_type", "is not included in the list"),
        case({"price": ...}, "price", "can't be blank"),
        case({"price": 150}, "price", 'must be a decimal string, e.g. "120.00"'),
        case({"price": 1.5}, "price", "must be a decimal string"),
        case({"price": "abc"}, "price", "is not a number"),
        case({"price": "1e3"}, "price", "is not a number"),
        case({"price": "12."}, "price", "is not a number"),
        case({"price": " 12"}, "price", "is not a number"),
        case({"price": "+12"}, "price", "is not a number"),
        case({"price": "4000000000"}, "price", "must be less than 4000000000"),
        case({"price": "4000000000.00"}, "price", "must be less than 4000000000"),
        case({"price": "-4000000000.01"}, "price", "must be greater than or equal to -4000000000"),
        case({"tax_id": "abc"}, "tax_id", "is not a valid id"),
        case({"tax_id": 0}, "tax_id", "is not a valid id"),
        case({"tax_id": True}, "tax_id", "is not a valid id"),
        case({"description": "x"}, "description", "is not a writable field"),
        case({"id": "1"}, "id", "is not a writable field"),
    ]


@pytest.mark.parametrize(("body", "field", "reason"), rule_cases())
def test_create_refuses_each_rule_with_422_naming_the_field(http, body, field, reason):
    response = http.post("/billable_items", json=body)
    assert response.status_code == 422, response.text
    errors = response.json()["errors"]
    assert list(errors) == [field]
    assert errors[field][0].startswith(reason)
    assert response.json()["message"].startswith("The billable item could not be saved: ")
    assert http.get("/billable_items").json()["total_entries"] == 5  # nothing stored


@pytest.mark.parametrize(
    "change",
    [
        {"name": "n" * 255},
        {"item_code": "c" * 100},
        {"item_code": None},
        {"item_code": ""},
        {"price": "3999999999.99"},
        {"price": "-4000000000"},
        {"price": "0"},
        {"price": "99.999"},
        {"tax_id": 9_223_372_036_854_775_807},
        {"tax_id": None},
    ],
)
def test_create_accepts_the_bounds(http, change):
    body = {"name": "Item", "item_type": "Product", "price": "1.00", **change}
    response = http.post("/billable_items", json=body)
    assert response.status_code == 201, response.text


def test_every_problem_is_named_at_once(http):
    response = http.post("/billable_items", json={"name": "", "price": 5, "colour": "red"})
    assert response.status_code == 422
    assert response.json()["errors"] == {
        "name": ["can't be blank"],
        "price": ['must be a decimal string, e.g. "120.00"'],
        "colour": ["is not a writable field (writable: name, item_code, item_type, price, tax_id)"],
        "item_type": ["can't be blank"],
    }


@pytest.mark.parametrize("content", [b"{", b"[]", b'"x"', b"\xff"])
def test_a_body_that_is_no_json_object_is_400(http, content):
    response = http.post("/billable_items", content=content)
    assert response.status_code == 400
    assert response.json()["message"].startswith("The body")


# -- update -----------------------------------------------------------------------------------


def test_patch_changes_the_given_fields_and_moves_updated_at(cliniko, http):
    item_id = cliniko.item_id("CONSULT-60")
    cliniko.advance_clock(3600)
    response = http.patch(f"/billable_items/{item_id}", json={"price": "160.00"})
    assert response.status_code == 200, response.text
    item = response.json()
    assert (item["price"], item["name"], item["item_code"]) == (
        "160.00",
        "Consultation (60 min)",
        "CONSULT-60",
    )
    assert item["created_at"] == "2026-08-22T06:00:00Z"
    assert item["updated_at"] == "2026-11-20T10:00:00Z"
    assert http.get(f"/billable_items/{item_id}").json() == item


def test_patch_without_a_change_keeps_updated_at(cliniko, http):
    item_id = cliniko.item_id("CONSULT-60")
    cliniko.advance_clock(3600)
    for body in ({}, {"price": "150.00", "item_type": "Service"}):
        item = http.patch(f"/billable_items/{item_id}", json=body).json()
        assert item["updated_at"] == "2026-08-22T06:00:00Z"


def test_patch_checks_only_the_given_fields(cliniko, http):
    path = f"/billable_items/{cliniko.item_id('REVIEW-30')}"
    cleared = http.patch(path, json={"item_code": None, "tax_id": None})
    assert cleared.status_code == 200
    assert (cleared.json()["item_code"], cleared.json()["tax"]) == (None, None)
    refused = http.patch(path, json={"price": "4000000000", "name": ""})
    assert refused.status_code == 422
    assert refused.json()["errors"] == {
        "price": ["must be less than 4000000000"],
        "name": ["can't be blank"],
    }
    assert http.get(path).json()["price"] == "95.50"


def test_patch_an_unknown_item_is_404(http):
    assert http.patch("/billable_items/12345", json={"price": "1.00"}).status_code == 404


# -- archive ----------------------------------------------------------------------------------


@pytest.mark.parametrize(("method", "suffix"), [("POST", "/archive"), ("DELETE", "")])
def test_archive_answers_204_and_leaves_the_item_out_of_lists(cliniko, http, method, suffix):
    item_id = cliniko.item_id("BOOK-1")
    cliniko.advance_clock(60)
    response = http.request(method, f"/billable_items/{item_id}{suffix}")
    assert response.status_code == 204
    assert response.content == b""
    item = http.get(f"/billable_items/{item_id}").json()
    assert item["archived_at"] == item["updated_at"] == "2026-11-20T09:01:00Z"
    listed = [i["id"] for i in http.get("/billable_items").json()["billable_items"]]
    assert item_id not in listed
    cliniko.advance_clock(60)
    again = http.request(method, f"/billable_items/{item_id}{suffix}")
    assert again.status_code == 204
    assert http.get(f"/billable_items/{item_id}").json() == item  # the first archive stands


def test_archive_an_unknown_item_is_404(http):
    assert http.post("/billable_items/12345/archive").status_code == 404
    assert http.delete("/billable_items/12345").status_code == 404


def test_requests_are_counted_by_route_template(cliniko, http):
    item_id = cliniko.item_id("BOOK-1")
    http.get("/billable_items")
    http.get(f"/billable_items/{item_id}")
    http.post(f"/billable_items/{item_id}/archive")
    with cliniko.http(key=None) as anonymous:
        anonymous.get("/billable_items")
    assert cliniko.requests() == {
        "GET /v1/billable_items": 2,
        "GET /v1/billable_items/{id}": 1,
        "POST /v1/billable_items/{id}/archive": 1,
    }
