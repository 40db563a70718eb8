"""A list request's query, as pure decisions: filters (``q[]``), order (``sort``, ``order``),
paging (``page``, ``per_page``) and the links of a page. ``QueryError`` is a 400 whose
message names the parameter and what is wrong with it.

Filters are ``<field>:<operator><value>``; operators are matched longest first, so
``>=5`` is "at least 5", never "greater than =5". Fields and their value formats are the
documented ones (``FILTER_FIELDS``). ``null`` (an item without ``archived_at`` or tax) is
unequal to every value and compares with none: it matches ``!=`` and nothing else.
Archived items are left out of a list unless a filter on ``archived_at`` is given; then the
filters alone decide (``archived_at:>1970-01-01T00:00:00Z`` lists the archived items only,
``archived_at:!=1970-01-01T00:00:00Z`` every item).
"""

from __future__ import annotations

import operator
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal
from urllib.parse import urlencode

from sandbox.cliniko.rules import INT64_MAX
from sandbox.cliniko.state import BillableItem

FieldFormat = Literal["date-time", "int64"]
FILTER_FIELDS: dict[str, FieldFormat] = {
    "archived_at": "date-time",
    "created_at": "date-time",
    "id": "int64",
    "tax_id": "int64",
    "updated_at": "date-time",
}
GET_FILTER_FIELDS: dict[str, FieldFormat] = {"archived_at": "date-time"}
OPERATORS = (">=", "<=", "!=", "~~", ">", "<", "=", "~")  # longest first
STRING_OPERATORS = ("~", "~~")  # contains, wildcard: for string fields only
COMPARE: dict[str, Callable[[Any, Any], bool]] = {
    ">=": operator.ge,
    "<=": operator.le,
    "!=": operator.ne,
    ">": operator.gt,
    "<": operator.lt,
    "=": operator.eq,
}
SORT_FIELDS = ("created_at", "updated_at", "id", "name")
DEFAULT_PER_PAGE = 50
MAX_PER_PAGE = 100

DATE_TIME = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(?:\.[0-9]+)?Z")
INT64 = re.compile(r"-?[0-9]{1,19}")

FIELD_VALUES: dict[str, Callable[[BillableItem], Any]] = {
    "archived_at": lambda item: item.archived,
    "created_at": lambda item: item.created,
    "updated_at": lambda item: item.updated,
    "id": lambda item: item.id,
    "tax_id": lambda item: item.tax_id,
    "name": lambda item: item.name.casefold(),
}


class QueryError(ValueError):
    """A query Cliniko's API would not understand: answered 400 with this message."""


@dataclass(frozen=True)
class Filter:
    field: str
    op: str
    value: datetime | int

    def matches(self, item: BillableItem) -> bool:
        actual = FIELD_VALUES[self.field](item)
        if actual is None:
            return self.op == "!="
        return COMPARE[self.op](actual, self.value)


def parse_date_time(raw: str) -> datetime:
    """``2026-11-01T00:00:00Z`` (fractions allowed); UTC ``Z`` only, as Cliniko requires."""
    if DATE_TIME.fullmatch(raw) is None:
        raise ValueError("is not a UTC date-time such as 2026-11-01T00:00:00Z")
    try:
        return datetime.fromisoformat(raw).astimezone(UTC)
    except ValueError:
        raise ValueError("is not a valid date-time") from None


def parse_int64(raw: str) -> int:
    if INT64.fullmatch(raw) is None or not -INT64_MAX - 1 <= int(raw) <= INT64_MAX:
        raise ValueError("is not an int64")
    return int(raw)


def parse_filter(raw: str, fields: Mapping[str, FieldFormat] = FILTER_FIELDS) -> Filter:
    """One ``q[]`` value, e.g. ``updated_at:>=2026-11-01T00:00:00Z``."""
    field, colon, rest = raw.partition(":")
    known = ", ".join(sorted(fields))
    if not colon:
        raise QueryError(f"q[]={raw!r}: expected <field>:<operator><value>")
    if field not in fields:
        raise QueryError(f"q[]={raw!r}: cannot filter on {field!r} (filterable: {known})")
    op = next((candidate for candidate in OPERATORS if rest.startswith(candidate)), None)
    if op is None:
        raise QueryError(f"q[]={raw!r}: no operator after {field}: (one of {' '.join(OPERATORS)})")
    form = fields[field]
    if op in STRING_OPERATORS:
        raise QueryError(f"q[]={raw!r}: operator {op} is for strings; {field} is a {form}")
    value = rest[len(op) :]
    try:
        parsed: datetime | int = (
            parse_date_time(value) if form == "date-time" else parse_int64(value)
        )
    except ValueError as problem:
        raise QueryError(f"q[]={raw!r}: {value!r} {problem}") from None
    return Filter(field, op, parsed)


def select(
    items: Iterable[BillableItem], filters: Sequence[Filter], *, keep_archived: bool = False
) -> list[BillableItem]:
    """The items every filter matches; archived ones only when a filter names
    ``archived_at`` (or ``keep_archived``, for a single item)."""
    asks_archived = keep_archived or any(f.field == "archived_at" for f in filters)
    return [
        item
        for item in items
        if (asks_archived or item.archived is None) and all(f.matches(item) for f in filters)
    ]


SortKey = tuple[str, bool]  # (field, descending)


def parse_sort(raw: str | None, order: str | None) -> list[SortKey]:
    """``sort=created_at:desc,name`` -> keys; a key without a direction takes the deprecated
    ``order`` (default ``asc``). Without ``sort`` the order is by id."""
    if order is not None and order not in ("asc", "desc"):
        raise QueryError(f"order={order!r}: must be asc or desc")
    default_desc = order == "desc"
    if raw is None:
        return [("id", default_desc)]
    keys: list[SortKey] = []
    for part in raw.split(","):
        field, colon, direction = part.strip().partition(":")
        if field not in SORT_FIELDS:
            raise QueryError(
                f"sort={raw!r}: cannot sort by {field!r} (sortable: {', '.join(SORT_FIELDS)})"
            )
        if colon and direction not in ("asc", "desc"):
            raise QueryError(f"sort={raw!r}: direction of {field} must be asc or desc")
        keys.append((field, direction == "desc" if colon else default_desc))
    return keys


def sort_items(items: Iterable[BillableItem], keys: Sequence[SortKey]) -> list[BillableItem]:
    """Sorted by ``keys``; ties by ascending id, so pages never overlap."""
    ordered = sorted(items, key=lambda item: item.id)
    for field, descending in reversed(keys):
        ordered.sort(key=FIELD_VALUES[field], reverse=descending)  # stable: keeps ties
    return ordered


def parse_positive(name: str, raw: str | None, default: int, highest: int | None) -> int:
    if raw is None:
        return default
    if not (raw.isascii() and raw.isdigit()) or int(raw) < 1:
        bound = f"between 1 and {highest}" if highest is not None else "of at least 1"
        raise QueryError(f"{name}={raw!r}: must be a whole number {bound}")
    if highest is not None and int(raw) > highest:
        raise QueryError(f"{name}={raw!r}: must be a whole number between 1 and {highest}")
    return int(raw)


@dataclass(frozen=True)
class Paging:
    page: int
    per_page: int

    @property
    def offset(self) -> int:
        return (self.page - 1) * self.per_page


def parse_paging(page: str | None, per_page: str | None) -> Paging:
    return Paging(
        parse_positive("page", page, 1, None),
        parse_positive("per_page", per_page, DEFAULT_PER_PAGE, MAX_PER_PAGE),
    )


def page_links(
    base: str, pairs: Sequence[tuple[str, str]], paging: Paging, total: int
) -> dict[str, str]:
    """``self``, and ``next`` / ``previous`` when relevant: ``base`` with the request's query
    (filters, sort, ``per_page``) and ``page`` first, as Cliniko writes them."""
    kept = [(key, value) for key, value in pairs if key != "page"]

    def url(page: int) -> str:
        return f"{base}?{urlencode([('page', str(page)), *kept])}"

    links = {"self": url(paging.page)}
    if paging.page * paging.per_page < total:
        links["next"] = url(paging.page + 1)
    if paging.page > 1:
        links["previous"] = url(paging.page - 1)
    return links


__all__ = [
    "DEFAULT_PER_PAGE",
    "FILTER_FIELDS",
    "GET_FILTER_FIELDS",
    "MAX_PER_PAGE",
    "OPERATORS",
    "SORT_FIELDS",
    "Filter",
    "Paging",
    "QueryError",
    "page_links",
    "parse_filter",
    "parse_paging",
    "parse_sort",
    "select",
    "sort_items",
]
