"""GitHub JSON -> billsync values: issues, comments' /spend lines, their keys and dates."""

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from connectors.github.client import web_host
from connectors.github.mapping import issue_number, map_comment, map_issue, parse_github_time
from connectors.http import next_link
from worker.core.planner import entry_reference

BERLIN = ZoneInfo("Europe/Berlin")
COMMENT = {
    "id": 777,
    "issue_url": "https://api.github.com/repos/acme/web/issues/42",
    "user": {"login": "octo"},
    "created_at": "2026-11-03T23:30:00Z",
    "updated_at": "2026-11-04T08:00:00Z",
    "body": "Fixed it.\n/spend 1h30m\n/spend 2h 2026-11-01\n/spend 1h30\n",
}


def test_each_spend_line_is_an_entry_or_a_bad_entry() -> None:
    entries, bad = map_comment("github.com", "gh", "9001", COMMENT, BERLIN)
    assert [(e.key, e.seconds, e.author, e.issue_id) for e in entries] == [
        ("github:github.com:comment:777:1", 5400, "octo", "9001"),
        ("github:github.com:comment:777:2", 7200, "octo", "9001"),
    ]
    # no date: the comment's creation time; a date: noon that day in the billing zone
    assert entries[0].started == datetime(2026, 11, 3, 23, 30, tzinfo=UTC)
    assert entries[1].started == datetime(2026, 11, 1, 12, 0, tzinfo=BERLIN)
    (wrong,) = bad
    assert wrong.key == "github:github.com:comment:777:3"
    assert wrong.reason.startswith(
        "GitHub comment 777 line 4 ('/spend 1h30'): duration '1h30' ends in"
    )
    assert wrong.issue_id == "9001"


def test_a_comment_without_spend_lines_yields_nothing() -> None:
    assert map_comment("h", "gh", "1", {**COMMENT, "body": "LGTM"}, BERLIN) == ([], [])
    assert map_comment("h", "gh", "1", {**COMMENT, "body": None}, BERLIN) == ([], [])


def test_unknown_issue_or_author_makes_bad_entries() -> None:
    _, bad = map_comment("h", "gh", None, COMMENT, BERLIN)
    assert all("its issue is unknown" in b.reason for b in bad[:2])
    _, bad = map_comment("h", "gh", "1", {**COMMENT, "user": None}, BERLIN)
    assert "the comment has no author login" in bad[0].reason


def test_issue_mapping_and_numbers() -> None:
    raw = {
        "id": 9001,
        "number": 42,
        "title": "Login",
        "labels": [{"name": "bug"}, {"x": 1}],
        "pull_request": {},
    }
    issue = map_issue("gh", "acme/web", raw)
    assert issue is not None
    assert (issue.issue_id, issue.key, issue.project, issue.labels) == (
        "9001",
        "acme/web#42",
        "acme/web",
        frozenset({"bug"}),
    )
    assert map_issue("gh", "acme/web", {"id": "x", "number": 1}) is None
    assert issue_number(COMMENT) == 42
    assert issue_number({"issue_url": "https://x/repos/a/b/pulls"}) is None


def test_references_hosts_links_and_times() -> None:
    assert entry_reference("acme/web#42", "github:github.com:comment:777:2") == "acme/web#42:777:2"
    assert web_host("https://api.github.com") == "github.com"
    assert web_host("https://ghe.example.com/api/v3") == "ghe.example.com"
    link = (
        '<https://api.github.com/x?page=2>; rel="next", '
        '<https://api.github.com/x?page=5>; rel="last"'
    )
    assert next_link({"link": link}) == "https://api.github.com/x?page=2"
    assert next_link({"link": '<https://api.github.com/x?page=1>; rel="prev"'}) is None
    assert next_link({}) is None
    assert parse_github_time("2026-11-03T09:00:00Z") == datetime(2026, 11, 3, 9, tzinfo=UTC)
    assert parse_github_time("yesterday") is None
