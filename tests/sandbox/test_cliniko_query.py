"""The Cliniko sandbox's query decisions as pure functions: filters (operators longest first,
value formats, null), sort keys, paging bounds and the links of a page."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from sandbox.cliniko.query import (
    GET_FILTER_FIELDS,
    Filter,
    Paging,
    QueryError,
    page_links,
    parse_filter,
    parse_paging,
    parse_sort,
    select,
)
from sandbox.cliniko.state import BillableItem

NOV_1 = datetime(2026, 11, 1, tzinfo=UTC)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("updated_at:>=2026-11-01T00:00:00Z", Filter("updated_at", ">=", NOV_1)),
        ("updated_at:>2026-11-01T00:00:00Z", Filter("updated_at", ">", NOV_1)),
        ("created_at:<=2026-11-01T00:00:00Z", Filter("created_at", "<=", NOV_1)),
        ("created_at:<2026-11-01T00:00:00Z", Filter("created_at", "<", NOV_1)),
        ("archived_at:=2026-11-01T00:00:00Z", Filter("archived_at", "=", NOV_1)),
        ("archived_at:!=2026-11-01T00:00:00Z", Filter("archived_at", "!=", NOV_1)),
        (
            "created_at:>2026-11-01T00:00:00.250Z",
            Filter("created_at", ">", NOV_1.replace(microsecond=250_000)),
        ),
        ("id:>=5", Filter("id", ">=", 5)),  # ">=" is read before ">"
        ("id:>5", Filter("id", ">", 5)),
        ("id:=9223372036854775807", Filter("id", "=", 2**63 - 1)),
        ("tax_id:!=7", Filter("tax_id", "!=", 7)),
        ("id:=-1", Filter("id", "=", -1)),
    ],
)
def test_filters_parse_with_the_longest_operator_first(raw, expected):
    assert parse_filter(raw) == expected


@pytest.mark.parametrize(
    ("raw", "problem"),
    [
        ("updated_at", "expected <field>:<operator><value>"),
        ("name:=Consultation", "cannot filter on 'name'"),
        ("item_code:~CONSULT", "cannot filter on 'item_code'"),
        ("updated_at:2026-11-01T00:00:00Z", "no operator after updated_at:"),
        ("updated_at:~2026", "operator ~ is for strings; updated_at is a date-time"),
        ("id:~~12%", "operator ~~ is for strings; id is a int64"),
        ("updated_at:>=2026-11-01", "is not a UTC date-time"),
        ("updated_at:>=2026-11-01T00:00:00+00:00", "is not a UTC date-time"),
        ("updated_at:>=2026-11-01 00:00:00Z", "is not a UTC date-time"),
        ("updated_at:>=2026-13-01T00:00:00Z", "is not a valid date-time"),
        ("updated_at:>=", "is not a UTC date-time"),
        ("id:>=abc", "is not an int64"),
        ("id:=1.5", "is not an int64"),
        ("id:=9223372036854775808", "is not an int64"),
        ("tax_id:=", "is not an int64"),
    ],
)
def test_bad_filters_are_named(raw, problem):
    with pytest.raises(QueryError) as raised:
        parse_filter(raw)
    assert problem in str(raised.value)
    assert raw in str(raised.value)


def test_get_accepts_archived_at_filters_only():
    assert parse_filter("archived_at:>1970-01-01T00:00:00Z", GET_FILTER_FIELDS).field == (
        "archived_at"
    )
    with pytest.raises(QueryError, match="filterable: archived_at"):
        parse_filter("id:=1", GET_FILTER_FIELDS)


def item(item_id: int, *, archived: datetime | None = None, tax_id: int | None = None):
    return BillableItem(item_id, "x", None, "Service", "1.00", tax_id, NOV_1, NOV_1, archived)


LIVE, ARCHIVED = item(1, tax_id=7), item(2, archived=NOV_1)


@pytest.mark.parametrize(
    ("filters", "ids"),
    [
        ([], [1]),  # archived items are left out by default
        ([parse_filter("archived_at:>1970-01-01T00:00:00Z")], [2]),  # null compares with none
        ([parse_filter("archived_at:<2100-01-01T00:00:00Z")], [2]),
        ([parse_filter("archived_at:=2026-11-01T00:00:00Z")], [2]),
        ([parse_filter("archived_at:!=1970-01-01T00:00:00Z")], [1, 2]),  # null != anything
        ([parse_filter("tax_id:!=7")], []),
        ([parse_filter("tax_id:!=8")], [1]),
        ([parse_filter("tax_id:=7"), parse_filter("archived_at:!=2026-11-01T00:00:00Z")], [1]),
    ],
)
def test_selection_and_null(filters, ids):
    assert [i.id for i in select([LIVE, ARCHIVED], filters)] == ids


def test_a_single_item_keeps_archived_unless_filtered():
    assert select([ARCHIVED], [], keep_archived=True) == [ARCHIVED]


@pytest.mark.parametrize(
    ("sort", "order", "keys"),
    [
        (None, None, [("id", False)]),
        (None, "desc", [("id", True)]),
        ("created_at:desc", None, [("created_at", True)]),
        ("name", None, [("name", False)]),
        ("name", "desc", [("name", True)]),  # order is the direction of keys without one
        ("updated_at:asc,id:desc", "desc", [("updated_at", False), ("id", True)]),
    ],
)
def test_sort_keys(sort, order, keys):
    assert parse_sort(sort, order) == keys


@pytest.mark.parametrize(
    ("sort", "order", "problem"),
    [
        ("price:asc", None, "cannot sort by 'price'"),
        ("created_at:up", None, "direction of created_at must be asc or desc"),
        ("created_at:", None, "direction of created_at must be asc or desc"),
        (None, "newest", "order='newest': must be asc or desc"),
        ("", None, "cannot sort by ''"),
    ],
)
def test_bad_sort_is_named(sort, order, problem):
    with pytest.raises(QueryError, match=problem.replace("(", r"\(")):
        parse_sort(sort, order)


@pytest.mark.parametrize(
    ("page", "per_page", "expected"),
    [
        (None, None, Paging(1, 50)),
        ("3", "100", Paging(3, 100)),
        ("1", "1", Paging(1, 1)),
    ],
)
def test_paging(page, per_page, expected):
    assert parse_paging(page, per_page) == expected


@pytest.mark.parametrize(
    ("page", "per_page", "problem"),
    [
        (None, "0", "per_page='0': must be a whole number between 1 and 100"),
        (None, "101", "per_page='101': must be a whole number between 1 and 100"),
        (None, "ten", "per_page='ten'"),
        (None, "", "per_page=''"),
        ("0", None, "page='0': must be a whole number of at least 1"),
        ("-1", None, "page='-1'"),
        ("1.5", None, "page='1.5'"),
    ],
)
def test_bad_paging_is_named(page, per_page, problem):
    with pytest.raises(QueryError) as raised:
        parse_paging(page, per_page)
    assert problem in str(raised.value)


BASE = "http://127.0.0.1:8733/v1/billable_items"


@pytest.mark.parametrize(
    ("paging", "total", "rels"),
    [
        (Paging(1, 2), 5, {"self": 1, "next": 2}),
        (Paging(2, 2), 5, {"self": 2, "next": 3, "previous": 1}),
        (Paging(3, 2), 5, {"self": 3, "previous": 2}),
        (Paging(1, 50), 0, {"self": 1}),
        (Paging(1, 5), 5, {"self": 1}),
        (Paging(9, 5), 5, {"self": 9, "previous": 8}),  # past the end
    ],
)
def test_links_only_when_relevant(paging, total, rels):
    links = page_links(BASE, [("per_page", str(paging.per_page))], paging, total)
    assert links == {
        rel: f"{BASE}?page={number}&per_page={paging.per_page}" for rel, number in rels.items()
    }


def test_links_keep_the_query_and_put_page_first():
    pairs = [("q[]", "updated_at:>=2026-11-01T00:00:00Z"), ("page", "2"), ("sort", "name")]
    links = page_links(BASE, pairs, Paging(2, 50), 200)
    assert links["next"] == (
        f"{BASE}?page=3&q%5B%5D=updated_at%3A%3E%3D2026-11-01T00%3A00%3A00Z&sort=name"
    )
