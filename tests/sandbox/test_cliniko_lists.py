"""Listing billable items over real HTTP: paging (per_page bounds, default 50, links,
total_entries), every filter operator on a date field and on ids, archived items left out
unless asked for, sort and the deprecated order."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import httpx
import pytest

from sandbox.cliniko.seed import GST_TAX_ID
from tests.support.cliniko import CLINIKO_NOW, RunningCliniko

LIVE = ["CONSULT-60", "REVIEW-30", "BOOK-1", "Late cancellation fee", "PRECISE-1"]
BOOK_CREATED = "2026-09-21T06:00:00Z"


@pytest.fixture
def http(cliniko: RunningCliniko) -> Iterator[httpx.Client]:
    with cliniko.http() as client:
        yield client


def listed(http: httpx.Client, *filters: str, **params: Any) -> list[str]:
    """Item codes (names for items without one) of a list answer, in its order."""
    query: list[tuple[str, Any]] = [("q[]", f) for f in filters] + list(params.items())
    response = http.get("/billable_items", params=query)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["total_entries"] == len(body["billable_items"])
    return [item["item_code"] or item["name"] for item in body["billable_items"]]


def test_the_list_shape(cliniko, http):
    body = http.get("/billable_items").json()
    assert set(body) == {"billable_items", "total_entries", "links"}
    assert body["total_entries"] == 5
    assert body["links"] == {"self": f"{cliniko.base_url}/billable_items?page=1"}
    assert (
        body["billable_items"][0]
        == http.get(f"/billable_items/{cliniko.item_id('CONSULT-60')}").json()
    )


def test_default_order_is_by_id_and_archived_items_are_left_out(http):
    assert listed(http) == LIVE


# -- paging -----------------------------------------------------------------------------------


def test_pages_and_their_links(cliniko, http):
    base = f"{cliniko.base_url}/billable_items"
    first = http.get("/billable_items", params={"per_page": 2}).json()
    assert first["total_entries"] == 5
    assert [i["item_code"] for i in first["billable_items"]] == ["CONSULT-60", "REVIEW-30"]
    assert first["links"] == {
        "self": f"{base}?page=1&per_page=2",
        "next": f"{base}?page=2&per_page=2",
    }
    second = http.get(first["links"]["next"]).json()
    assert second["links"] == {
        "self": f"{base}?page=2&per_page=2",
        "next": f"{base}?page=3&per_page=2",
        "previous": f"{base}?page=1&per_page=2",
    }
    third = http.get(second["links"]["next"]).json()
    assert [i["item_code"] for i in third["billable_items"]] == ["PRECISE-1"]
    assert third["links"] == {
        "self": f"{base}?page=3&per_page=2",
        "previous": f"{base}?page=2&per_page=2",
    }
    assert third["total_entries"] == 5
    past = http.get("/billable_items", params={"per_page": 2, "page": 4}).json()
    assert (past["billable_items"], past["total_entries"]) == ([], 5)


def test_following_next_keeps_filters_and_sort(http):
    params = [("q[]", "created_at:>=2026-09-01T00:00:00Z"), ("sort", "name:desc")]
    url: str | None = "/billable_items"
    seen: list[str] = []
    query: list[tuple[str, Any]] | None = [*params, ("per_page", 1)]
    while url is not None:
        body = http.get(url, params=query).json()
        assert body["total_entries"] == 4
        seen += [i["name"] for i in body["billable_items"]]
        url, query = body["links"].get("next"), None
    assert seen == [
        "Review (30 min)",
        "Precision rate",
        "Late cancellation fee",
        "Exercise workbook",
    ]


def test_default_page_size_is_50(cliniko, http):
    for number in range(50):
        cliniko.app.state.add_item(name=f"Extra {number}", item_type="Other", price="1.00")
    body = http.get("/billable_items").json()
    assert body["total_entries"] == 55
    assert len(body["billable_items"]) == 50
    assert body["links"]["next"] == f"{cliniko.base_url}/billable_items?page=2"
    assert len(http.get(body["links"]["next"]).json()["billable_items"]) == 5
    assert len(http.get("/billable_items", params={"per_page": 100}).json()["billable_items"]) == 55


@pytest.mark.parametrize(
    ("params", "problem"),
    [
        ({"per_page": "0"}, "per_page='0': must be a whole number between 1 and 100"),
        ({"per_page": "101"}, "per_page='101': must be a whole number between 1 and 100"),
        ({"per_page": "all"}, "per_page='all'"),
        ({"page": "0"}, "page='0': must be a whole number of at least 1"),
        ({"page": "two"}, "page='two'"),
        ([("page", "1"), ("page", "2")], "page: given 2 times; give it once"),
        ({"updated_since": "2026-11-01T00:00:00Z"}, "updated_since: unknown query parameter"),
        ({"q": "id:=1"}, "q: unknown query parameter (allowed: page, per_page, q[], sort, order)"),
        ({"q[]": "name:~Consult"}, "cannot filter on 'name'"),
        ({"q[]": "updated_at:~2026"}, "operator ~ is for strings"),
        ({"q[]": "id:~~1%"}, "operator ~~ is for strings"),
        ({"q[]": "updated_at:>=yesterday"}, "is not a UTC date-time"),
        ({"q[]": "id:>=x"}, "is not an int64"),
        ({"sort": "price"}, "cannot sort by 'price'"),
        ({"order": "up"}, "order='up': must be asc or desc"),
    ],
)
def test_bad_query_parameters_are_400_naming_them(http, params, problem):
    response = http.get("/billable_items", params=params)
    assert response.status_code == 400
    message = response.json()["message"]
    assert message.startswith("Bad query: ")
    assert problem in message


# -- filters ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("op", "expected"),
    [
        (">=", ["BOOK-1", "Late cancellation fee", "PRECISE-1"]),
        (">", ["Late cancellation fee", "PRECISE-1"]),
        ("<=", ["CONSULT-60", "REVIEW-30", "BOOK-1"]),
        ("<", ["CONSULT-60", "REVIEW-30"]),
        ("=", ["BOOK-1"]),
        ("!=", ["CONSULT-60", "REVIEW-30", "Late cancellation fee", "PRECISE-1"]),
    ],
)
def test_every_operator_on_a_date_field_and_on_id(cliniko, http, op, expected):
    assert listed(http, f"created_at:{op}{BOOK_CREATED}") == expected
    assert listed(http, f"id:{op}{cliniko.item_id('BOOK-1')}") == expected


def test_updated_at_filters_what_changed(http):
    assert listed(http, "updated_at:>=2026-11-01T00:00:00Z") == ["REVIEW-30"]
    assert listed(http, "updated_at:>2026-11-15T09:00:00Z") == []
    assert listed(http, "updated_at:>2026-11-15T08:59:59.5Z") == ["REVIEW-30"]


def test_filters_combine_with_and(http):
    both = listed(http, "created_at:>=2026-09-01T00:00:00Z", "created_at:<2026-10-01T00:00:00Z")
    assert both == ["REVIEW-30", "BOOK-1"]


def test_tax_id_filters_and_null_taxes(http):
    assert listed(http, f"tax_id:={GST_TAX_ID}") == ["CONSULT-60", "REVIEW-30"]
    assert listed(http, f"tax_id:!={GST_TAX_ID}") == [
        "BOOK-1",
        "Late cancellation fee",
        "PRECISE-1",
    ]


@pytest.mark.parametrize(
    ("archived_filter", "expected"),
    [
        ("archived_at:>1970-01-01T00:00:00Z", ["CONSULT-OLD"]),
        ("archived_at:<2100-01-01T00:00:00Z", ["CONSULT-OLD"]),
        ("archived_at:=2026-11-10T09:00:00Z", ["CONSULT-OLD"]),
        ("archived_at:>2026-11-10T09:00:00Z", []),
        ("archived_at:!=1970-01-01T00:00:00Z", [*LIVE[:4], "CONSULT-OLD", "PRECISE-1"]),
    ],
)
def test_archived_items_only_when_a_filter_on_archived_at_asks(http, archived_filter, expected):
    assert listed(http, archived_filter) == expected


def test_a_sync_since_sees_archivals_only_by_asking_for_them(cliniko, http):
    since = "2026-11-20T00:00:00Z"
    cliniko.advance_clock(60)
    http.post(f"/billable_items/{cliniko.item_id('BOOK-1')}/archive")
    assert listed(http, f"updated_at:>={since}") == []
    assert listed(http, f"archived_at:>={since}") == ["BOOK-1"]


# -- order ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"sort": "updated_at:desc"}, ["REVIEW-30", "PRECISE-1", "Late cancellation fee",
                                       "BOOK-1", "CONSULT-60"]),
        ({"sort": "created_at:asc"}, LIVE),
        ({"sort": "created_at"}, LIVE),
        ({"sort": "id:desc"}, LIVE[::-1]),
        ({"order": "desc"}, LIVE[::-1]),
        ({"order": "asc"}, LIVE),
        ({"sort": "name"}, ["CONSULT-60", "BOOK-1", "Late cancellation fee", "PRECISE-1",
                            "REVIEW-30"]),
        ({"sort": "name", "order": "desc"}, ["REVIEW-30", "PRECISE-1", "Late cancellation fee",
                                             "BOOK-1", "CONSULT-60"]),
    ],
)  # fmt: skip
def test_sort(http, params, expected):
    assert listed(http, **params) == expected


def test_ties_are_broken_by_ascending_id(cliniko, http):
    same = (CLINIKO_NOW - timedelta(hours=1)).isoformat()
    first = cliniko.add_item(name="b", item_type="Other", price="1", created_at=same)
    second = cliniko.add_item(name="B", item_type="Other", price="1", created_at=same)
    ties = [first["id"], second["id"]]

    def ids(sort: str) -> list[str]:
        body = http.get("/billable_items", params={"sort": sort, "per_page": 2}).json()
        return [item["id"] for item in body["billable_items"]]

    assert ids("created_at:desc") == ties  # newest first, then by id
    assert ids("created_at:desc,name:desc") == ties  # "b" and "B" tie too: names casefold
