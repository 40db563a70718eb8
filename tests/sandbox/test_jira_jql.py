"""The JQL subset as pure functions: parsing, bounds, dates and ordering (no HTTP)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from sandbox.jira import jql
from sandbox.jira.state import Issue

NOW = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)


def ctx(zone: str = "Europe/Berlin") -> jql.Context:
    return jql.Context(
        zone,
        NOW,
        lambda v: v.upper() if v.upper() in {"A", "B"} else None,
        lambda v: 1 if v in ("A-1", "1") else None,
    )


def issue(issue_id: int, key: str, updated_ms: int = 0, created_ms: int = 0) -> Issue:
    project = key.split("-")[0]
    return Issue(issue_id, key, project, f"Summary {key}", (), "Task", "", created_ms, updated_ms)


@pytest.mark.parametrize(
    ("text", "bounded"),
    [
        ("", False),
        ("order by key", False),
        ("project = A", True),
        ("project = A order by key", True),
        ("(project = A)", True),
    ],
)
def test_bounded_means_a_where_clause(text, bounded):
    assert jql.parse(text).bounded is bounded


def test_parse_builds_and_or_not_and_order():
    query = jql.parse(
        'project = A AND (key = A-1 OR NOT labels in (x, "y z")) ORDER BY updated DESC, key'
    )
    assert isinstance(query.where, jql.BoolNode)
    assert query.where.operator == "AND"
    assert query.order == (jql.OrderKey("updated", True), jql.OrderKey("key", False))


@pytest.mark.parametrize(
    ("value", "zone", "expected"),
    [
        ("2026/11/03 10:00", "Europe/Berlin", datetime(2026, 11, 3, 9, 0, tzinfo=UTC)),
        ("2026-11-03 10:00", "America/New_York", datetime(2026, 11, 3, 15, 0, tzinfo=UTC)),
        ("2026-11-03", "Europe/Berlin", datetime(2026, 11, 2, 23, 0, tzinfo=UTC)),
        ("2026/07/01", "Europe/Berlin", datetime(2026, 6, 30, 22, 0, tzinfo=UTC)),  # summer
        ("-1d", "UTC", datetime(2026, 11, 19, 9, 0, tzinfo=UTC)),
        ("-1w 2d", "UTC", datetime(2026, 11, 11, 9, 0, tzinfo=UTC)),
        ("1790000000000", "UTC", datetime.fromtimestamp(1790000000, UTC)),
    ],
)
def test_dates_are_read_in_the_users_zone(value, zone, expected):
    assert jql.parse_date(value, "updated", ctx(zone)) == int(expected.timestamp() * 1000)


@pytest.mark.parametrize("value", ["2026/11/31", "tomorrow", "2026-11-03T10:00", "10:00"])
def test_bad_dates_are_errors(value):
    with pytest.raises(jql.JqlError, match="is invalid"):
        jql.parse_date(value, "updated", ctx())


def test_compile_evaluates_clauses_against_issues():
    issues = [issue(1, "A-1", updated_ms=5), issue(2, "A-2", updated_ms=10), issue(3, "B-1")]
    query = jql.parse("project in (a, b) AND updated >= 10 OR key = A-1")
    predicate = jql.compile_query(query, ctx())
    assert [i.key for i in issues if predicate(i)] == ["A-1", "A-2"]


def test_sort_defaults_to_created_desc_with_id_tie_break():
    issues = [
        issue(1, "A-1", created_ms=5),
        issue(2, "A-2", created_ms=5),
        issue(3, "A-10", created_ms=1),
    ]
    assert [i.key for i in jql.sort_issues(issues, ())] == ["A-2", "A-1", "A-10"]
    by_key = jql.sort_issues(issues, (jql.OrderKey("key", False),))
    assert [i.key for i in by_key] == ["A-1", "A-2", "A-10"]  # numeric, not text


@pytest.mark.parametrize(
    "text",
    [
        "project = A AND",
        "project ==",
        "project = (A)",
        "project in A",
        "updated was 1",
        "project = A ORDER BY",
        "project = A extra",
        "project != !",
        "labels is x",
    ],
)
def test_malformed_queries_raise_jql_errors(text):
    with pytest.raises(jql.JqlError):
        jql.compile_query(jql.parse(text), ctx())
