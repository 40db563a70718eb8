"""Jira JSON -> TimeEntry / BadEntry / Issue: the pure mapping, case by case."""

from datetime import UTC, datetime, timedelta, timezone

import pytest

from connectors.jira.mapping import map_issue, map_worklog, parse_jira_datetime
from worker.core.model import TimeEntry
from worker.ports import BadEntry

AUTHOR = {"accountId": "acc-1", "displayName": "A", "active": True}
GOOD = {
    "id": "10",
    "issueId": "100",
    "author": AUTHOR,
    "started": "2026-11-03T09:00:00.000+0100",
    "timeSpentSeconds": 5400,
}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-11-03T09:00:00.000+0100", datetime(2026, 11, 3, 8, 0, tzinfo=UTC)),
        ("2026-11-03T09:00:00+0000", datetime(2026, 11, 3, 9, 0, tzinfo=UTC)),
        ("2026-11-03T09:00:00.000-0530", datetime(2026, 11, 3, 14, 30, tzinfo=UTC)),
        ("2026-11-03T09:00:00+01:00", datetime(2026, 11, 3, 8, 0, tzinfo=UTC)),
        ("2026-11-03T09:00:00.000", None),  # no offset: the instant is unknown
        ("2026-13-03T09:00:00.000+0100", None),
        ("", None),
        (None, None),
        (12345, None),
    ],
)
def test_parse_jira_datetime(text: object, expected: datetime | None) -> None:
    assert parse_jira_datetime(text) == expected


def test_a_good_worklog_keeps_its_offset_instant() -> None:
    entry = map_worklog("acme.atlassian.net", "jira", GOOD)
    assert entry == TimeEntry(
        "jira:acme.atlassian.net:worklog:10",
        "jira",
        "100",
        "acc-1",
        datetime(2026, 11, 3, 9, tzinfo=timezone(timedelta(hours=1))),
        5400,
    )


def test_data_center_authors_are_known_by_name() -> None:
    raw = {**GOOD, "author": {"name": "jsmith", "key": "JIRAUSER1"}}
    entry = map_worklog("jira.example.com", "dc", raw)
    assert isinstance(entry, TimeEntry)
    assert entry.author == "jsmith"


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"timeSpentSeconds": 0}, "timeSpentSeconds 0 is not positive"),
        ({"timeSpentSeconds": -5}, "timeSpentSeconds -5 is not positive"),
        ({"timeSpentSeconds": 8 * 24 * 3600}, "more than a week in one worklog"),
        ({"timeSpentSeconds": "3600"}, "timeSpentSeconds '3600' is not a whole number"),
        ({"timeSpentSeconds": True}, "is not a whole number"),
        ({"timeSpentSeconds": 1.5}, "is not a whole number"),
        ({"started": "tomorrow"}, "unreadable started 'tomorrow'"),
        ({"issueId": None}, "missing issueId"),
        ({"author": None}, "missing author.accountId"),
        ({"author": {"displayName": "no id"}}, "missing author.accountId"),
    ],
)
def test_bad_worklogs_name_the_worklog_and_the_reason(
    change: dict[str, object], reason: str
) -> None:
    bad = map_worklog("s", "jira", {**GOOD, **change})
    assert isinstance(bad, BadEntry)
    assert bad.key == "jira:s:worklog:10"
    assert bad.reason.startswith("Jira worklog 10: ")
    assert reason in bad.reason


def test_several_problems_are_all_named() -> None:
    bad = map_worklog("s", "jira", {"id": "11", "timeSpentSeconds": -1})
    assert isinstance(bad, BadEntry)
    for reason in (
        "missing issueId",
        "missing author.accountId",
        "unreadable started",
        "not positive",
    ):
        assert reason in bad.reason


@pytest.mark.parametrize("raw", [None, [], "worklog", {"issueId": "1"}, {"id": ""}, {"id": True}])
def test_worklogs_without_an_id_still_get_a_stable_key(raw: object) -> None:
    first, second = map_worklog("s", "jira", raw), map_worklog("s", "jira", raw)
    assert isinstance(first, BadEntry)
    assert first == second
    assert first.key.startswith("jira:s:worklog:unknown-")


def test_map_issue() -> None:
    raw = {
        "id": "100",
        "key": "ACME-7",
        "fields": {"summary": "Fix it", "project": {"key": "ACME"}, "labels": ["a", 3, "b"]},
    }
    issue = map_issue("jira", raw, frozenset({2}))
    assert issue is not None
    assert (issue.issue_id, issue.key, issue.project, issue.summary) == (
        "100",
        "ACME-7",
        "ACME",
        "Fix it",
    )
    assert issue.labels == frozenset({"a", "b"})
    assert issue.jql_rules == frozenset({2})
    assert map_issue("jira", {"id": "1", "key": "X-1", "fields": {}}).project == "X"  # type: ignore[union-attr]
    assert map_issue("jira", {"key": "X-1"}) is None
