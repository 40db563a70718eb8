"""The Cliniko sandbox's rate limit (200 a minute per key on the sandbox clock, 429 with
Retry-After), injected faults, and its admin API (loopback ``/_sandbox``): price edits,
items, the rate limit, the clock, info and reset; and its place in ``start_sandbox``."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from sandbox.cliniko.seed import DEMO_API_KEY, DEMO_USER_AGENT, OTHER_API_KEY
from sandbox.main import start_sandbox
from tests.support.cliniko import RunningCliniko


@pytest.fixture
def http(cliniko: RunningCliniko) -> Iterator[httpx.Client]:
    with cliniko.http() as client:
        yield client


def admin(cliniko: RunningCliniko, method: str, path: str, **kwargs) -> httpx.Response:
    return httpx.request(method, f"{cliniko.url}/_sandbox{path}", timeout=10, **kwargs)


# -- rate limit -------------------------------------------------------------------------------


def test_the_201st_request_in_a_minute_is_429(cliniko, http):
    path = f"/billable_items/{cliniko.item_id('CONSULT-60')}"
    assert cliniko.rate_limit()["limit"] == 200
    for _ in range(200):
        assert http.get(path).status_code == 200
    refused = http.get(path)
    assert refused.status_code == 429
    assert refused.headers["retry-after"] == "60"  # the clock is frozen: all 200 are now
    assert refused.json() == {
        "message": "Too many requests: the limit is 200 requests per minute per API key; "
        "retry after 60 seconds"
    }
    assert cliniko.rate_limit()["used"] == {DEMO_API_KEY: 200}


def test_the_window_slides_on_the_sandbox_clock(cliniko, http):
    cliniko.set_rate_limit(3)
    assert [http.get("/billable_items").status_code for _ in range(2)] == [200, 200]
    cliniko.advance_clock(30)
    assert http.get("/billable_items").status_code == 200
    cliniko.advance_clock(15)
    refused = http.get("/billable_items")
    assert (refused.status_code, refused.headers["retry-after"]) == (429, "15")
    cliniko.advance_clock(14)
    assert http.get("/billable_items").headers["retry-after"] == "1"
    cliniko.advance_clock(1)  # the first two are a minute old: room for two more
    assert [http.get("/billable_items").status_code for _ in range(3)] == [200, 200, 429]


def test_budgets_are_per_key_and_refusals_are_not_charged(cliniko, http):
    cliniko.set_rate_limit(1)
    assert http.get("/billable_items").status_code == 200
    assert http.get("/billable_items").status_code == 429
    with cliniko.http(key=OTHER_API_KEY) as other:
        assert other.get("/billable_items").status_code == 200
    with cliniko.http(key="cliniko-sandbox-key") as same_key_without_shard:
        assert same_key_without_shard.get("/billable_items").status_code == 429
    with cliniko.http(key=None) as anonymous:
        assert anonymous.get("/billable_items").status_code == 401  # no key: no budget
    assert cliniko.rate_limit()["used"] == {DEMO_API_KEY: 1, OTHER_API_KEY: 1}
    cliniko.advance_clock(60)
    assert http.get("/billable_items").status_code == 200


def test_a_refused_user_agent_still_spends_the_keys_budget(cliniko):
    cliniko.set_rate_limit(1)
    with cliniko.http(user_agent="curl/8.0") as client:
        assert client.get("/billable_items").status_code == 403
        assert client.get("/billable_items").status_code == 429


@pytest.mark.parametrize("body", [{"limit": 0}, {"limit": "5"}, {"limit": 5, "x": 1}, {}])
def test_a_bad_rate_limit_change_is_400(cliniko, body):
    response = admin(cliniko, "POST", "/rate_limit", json=body)
    assert response.status_code == 400
    assert response.json()["error"] == "BadRequest"


# -- faults -----------------------------------------------------------------------------------


def test_an_injected_500_then_the_real_answer(cliniko, http):
    cliniko.fault({"kind": "error500", "match": {"route": "/v1/billable_items"}})
    failed = http.get("/billable_items")
    assert failed.status_code == 500
    assert failed.json() == {"message": "Internal server error (a fault injected by the sandbox)"}
    assert failed.headers["date"] == "Fri, 20 Nov 2026 09:00:00 GMT"
    assert http.get("/billable_items").status_code == 200
    assert cliniko.requests() == {"GET /v1/billable_items": 2}


def test_an_injected_429_looks_like_the_real_one(cliniko, http):
    cliniko.fault({"kind": "rate_limit", "retry_after": 7, "match": {"method": "GET"}})
    refused = http.get(f"/billable_items/{cliniko.item_id('REVIEW-30')}")
    assert refused.status_code == 429
    assert refused.headers["retry-after"] == "7"
    assert refused.json()["message"].startswith("Too many requests: the limit is 200")
    assert admin(cliniko, "GET", "/faults").json() == {"data": []}
    assert cliniko.rate_limit()["used"] == {}  # a faulted request never reached the limit


def test_a_create_that_lands_but_whose_answer_is_lost(cliniko, http):
    cliniko.fault({"kind": "drop_after_commit", "match": {"method": "POST"}})
    body = {"name": "Group class", "item_type": "Service", "price": "80.00"}
    with pytest.raises(httpx.RemoteProtocolError):
        http.post("/billable_items", json=body)
    assert [i["name"] for i in cliniko.items()][-1] == "Group class"


# -- admin ------------------------------------------------------------------------------------


def test_admin_price_edit_shows_in_the_api_with_a_new_updated_at(cliniko, http):
    item_id = cliniko.item_id("CONSULT-60")
    cliniko.advance_clock(120)
    edited = cliniko.edit_item(item_id, price="165.00")
    assert edited["price"] == "165.00"
    assert edited["updated_at"] == "2026-11-20T09:02:00Z"
    item = http.get(f"/billable_items/{item_id}").json()
    assert item == edited
    assert http.get("/billable_items", params={"q[]": "updated_at:>=2026-11-20T09:00:00Z"}).json()[
        "billable_items"
    ] == [item]
    assert cliniko.requests() == {
        "GET /v1/billable_items/{id}": 1,
        "GET /v1/billable_items": 1,
    }  # admin calls are not counted


def test_admin_edits_ignore_the_rate_limit(cliniko):
    cliniko.set_rate_limit(1)
    item_id = cliniko.item_id("REVIEW-30")
    for price in ("96.00", "97.00", "98.00"):
        assert cliniko.edit_item(item_id, price=price)["price"] == price


def test_admin_archives_and_unarchives(cliniko, http):
    item_id = cliniko.item_id("CONSULT-OLD")
    back = cliniko.edit_item(item_id, archived_at=None)
    assert back["archived_at"] is None
    listed = http.get("/billable_items").json()["billable_items"]
    assert "CONSULT-OLD" in [item["item_code"] for item in listed]
    gone = cliniko.edit_item(item_id, archived_at="2026-11-20T10:00:00+01:00")
    assert gone["archived_at"] == "2026-11-20T09:00:00Z"


def test_admin_adds_items_with_their_history(cliniko, http):
    item = cliniko.add_item(
        name="Old class",
        item_type="Service",
        price="70.00",
        item_code="CLASS-OLD",
        created_at="2026-01-01T00:00:00Z",
        archived_at="2026-02-01T00:00:00Z",
    )
    assert (item["created_at"], item["archived_at"]) == (
        "2026-01-01T00:00:00Z",
        "2026-02-01T00:00:00Z",
    )
    assert http.get(item["links"]["self"]).json() == item
    assert len(cliniko.items()) == 7


@pytest.mark.parametrize(
    ("method", "path", "body", "status", "fragment"),
    [
        ("PATCH", "/billable_items/{id}", {"price": "4000000000"}, 400, "price must be less"),
        ("PATCH", "/billable_items/{id}", {"price": 150}, 400, "price must be a decimal string"),
        ("PATCH", "/billable_items/{id}", {"colour": "red"}, 400, "colour is not a writable"),
        ("PATCH", "/billable_items/{id}", {"archived_at": "2026-11-20"}, 400, "with an offset"),
        ("PATCH", "/billable_items/{id}", {"created_at": "2026-11-20T00:00:00Z"}, 400, "fixed"),
        ("PATCH", "/billable_items/1", {"price": "1"}, 404, "does not exist"),
        ("PATCH", "/billable_items/x", {"price": "1"}, 404, "does not exist"),
        ("POST", "/billable_items", {"name": "x"}, 400, "item_type can't be blank"),
        ("POST", "/billable_items", [], 400, "must be a JSON object"),
    ],
)
def test_bad_admin_item_changes_are_named(cliniko, method, path, body, status, fragment):
    path = path.replace("{id}", cliniko.item_id("CONSULT-60"))
    response = admin(cliniko, method, path, json=body)
    assert response.status_code == status, response.text
    assert fragment in response.json()["message"]


def test_info_names_the_credentials_and_items(cliniko):
    info = cliniko.info()
    assert info["apiKey"] == DEMO_API_KEY
    assert info["otherApiKey"] == OTHER_API_KEY
    assert info["userAgent"] == DEMO_USER_AGENT
    assert list(info["items"]) == [
        "CONSULT-60",
        "REVIEW-30",
        "BOOK-1",
        "Late cancellation fee",
        "CONSULT-OLD",
        "PRECISE-1",
    ]
    assert info["archivedItems"] == [info["items"]["CONSULT-OLD"]]
    assert info["anchor"] == "2026-11-20T09:00:00Z"
    ids = [int(item_id) for item_id in info["items"].values()]
    assert ids == sorted(ids)
    assert all(len(str(item_id)) == 19 for item_id in ids)


def test_the_clock_can_be_frozen_and_moved(cliniko):
    assert cliniko.clock()["now"] == "2026-11-20T09:00:00Z"
    assert cliniko.advance_clock(90)["now"] == "2026-11-20T09:01:30Z"


def test_reset_over_http_restores_everything(cliniko, http):
    http.post("/billable_items", json={"name": "x", "item_type": "Other", "price": "1"})
    cliniko.edit_item(cliniko.item_id("CONSULT-60"), price="1.00")
    cliniko.set_rate_limit(5)
    cliniko.advance_clock(3600)
    cliniko.fault({"kind": "error500"})
    assert admin(cliniko, "POST", "/reset").status_code == 204
    assert len(cliniko.items()) == 6
    assert cliniko.items()[0]["price"] == "150.00"
    assert cliniko.rate_limit() == {"limit": 200, "windowSeconds": 60, "used": {}}
    assert cliniko.clock()["now"] == "2026-11-20T09:00:00Z"
    assert cliniko.requests() == {}
    assert admin(cliniko, "GET", "/faults").json() == {"data": []}
    assert http.get("/billable_items").status_code == 200


def test_start_sandbox_serves_cliniko_beside_the_others():
    with start_sandbox(kukkingu_port=0, jira_port=0, github_port=0, cliniko_port=0) as running:
        info = running.info()["cliniko"]
        assert info["baseUrl"] == f"{running.cliniko.url}/v1"
        assert info["adminUrl"] == f"{running.cliniko.url}/_sandbox"
        assert (info["apiKey"], info["userAgent"]) == (DEMO_API_KEY, DEMO_USER_AGENT)
        response = httpx.get(
            f"{info['baseUrl']}/billable_items/{info['items']['PRECISE-1']}",
            auth=(info["apiKey"], ""),
            headers={"User-Agent": info["userAgent"]},
            timeout=10,
        )
        assert response.json()["price"] == "99.999"
