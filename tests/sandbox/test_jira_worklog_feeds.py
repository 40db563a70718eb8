"""/worklog/updated, /worklog/deleted and /worklog/list: paging past 1000 with absolute
nextPage URLs, the last-minute window on the sandbox clock, inclusive ``since``, deletions."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from sandbox.jira import generate
from sandbox.jira.seed import DEMO_WORKLOGS
from tests.support.jira import JIRA_NOW, RunningJira, running_jira

STARTED = datetime(2026, 11, 19, 8, 0, tzinfo=UTC)


@pytest.fixture
def http(jira: RunningJira) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=jira.url, auth=jira.auth, timeout=10) as client:
        yield client


def feed(http: httpx.Client, kind: str, since: int, version: str = "3") -> dict[str, Any]:
    response = http.get(f"/rest/api/{version}/worklog/{kind}", params={"since": since})
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def ids(body: dict[str, Any]) -> list[int]:
    return [value["worklogId"] for value in body["values"]]


def test_updated_lists_every_demo_worklog_oldest_first_in_jiras_shape(http, jira):
    body = feed(http, "updated", 0)
    assert body["lastPage"] is True
    assert "nextPage" not in body
    assert len(body["values"]) == DEMO_WORKLOGS
    times = [value["updatedTime"] for value in body["values"]]
    assert times == sorted(times)
    assert all(value["properties"] == [] for value in body["values"])
    assert all(isinstance(value["worklogId"], int) for value in body["values"])
    assert body["since"] == 0
    assert body["until"] == times[-1]
    assert body["self"] == f"{jira.url}/rest/api/3/worklog/updated?since=0"


def test_a_change_shows_up_only_once_a_minute_of_sandbox_time_has_passed(http, jira):
    added = jira.add_worklog("ACME-1", started=STARTED, seconds=1800)
    updated_ms = added["updatedMs"]
    assert updated_ms == int(JIRA_NOW.timestamp() * 1000)  # the frozen clock
    assert int(added["id"]) not in ids(feed(http, "updated", updated_ms - 1))
    jira.advance_clock(59.999)
    assert ids(feed(http, "updated", updated_ms)) == []
    jira.advance_clock(0.001)
    assert ids(feed(http, "updated", updated_ms)) == [int(added["id"])]


def test_since_is_inclusive(http, jira):
    added = jira.add_worklog("ACME-1", started=STARTED, seconds=1800)
    jira.advance_clock(120)
    at = feed(http, "updated", added["updatedMs"])
    assert ids(at) == [int(added["id"])]
    assert at["since"] == at["until"] == added["updatedMs"]
    after = feed(http, "updated", added["updatedMs"] + 1)
    assert after["values"] == []
    assert after["until"] == added["updatedMs"] + 1
    assert after["lastPage"] is True


def test_an_edit_moves_a_worklog_forward_in_the_feed(http, jira):
    first = jira.add_worklog("GLX-1", started=STARTED, seconds=900)
    jira.advance_clock(30)
    jira.edit_worklog(first["id"], timeSpentSeconds=2700, comment="more")
    jira.advance_clock(61)
    since = int(JIRA_NOW.timestamp() * 1000)
    body = feed(http, "updated", since)
    assert body["values"] == [
        {"worklogId": int(first["id"]), "updatedTime": since + 30_000, "properties": []}
    ]
    [shown] = http.post("/rest/api/3/worklog/list", json={"ids": [int(first["id"])]}).json()
    assert shown["timeSpentSeconds"] == 2700
    assert shown["timeSpent"] == "45m"
    assert shown["created"] != shown["updated"]


def test_deleted_feed_lists_deletions_after_the_window_and_lists_stop_showing_them(http, jira):
    victim = ids(feed(http, "updated", 0))[0]
    since = int(JIRA_NOW.timestamp() * 1000)
    assert feed(http, "deleted", 0)["values"] == []
    jira.delete_worklog(victim)
    assert feed(http, "deleted", 0)["values"] == []  # still inside the last minute
    jira.advance_clock(60)
    body = feed(http, "deleted", 0, version="2")
    assert body["values"] == [{"worklogId": victim, "updatedTime": since, "properties": []}]
    assert body["self"].endswith("/rest/api/2/worklog/deleted?since=0")
    assert victim not in ids(feed(http, "updated", 0))
    assert http.post("/rest/api/3/worklog/list", json={"ids": [victim]}).json() == []


def test_worklog_list_returns_known_ids_and_silently_omits_unknown_ones(http):
    wanted = ids(feed(http, "updated", 0))[:3]
    body = http.post(
        "/rest/api/3/worklog/list", json={"ids": [wanted[0], 1, str(wanted[1]), wanted[2]]}
    ).json()
    assert [int(w["id"]) for w in body] == wanted
    assert body[0]["comment"]["type"] == "doc" if "comment" in body[0] else True


def test_worklog_list_refuses_more_than_1000_ids_and_bad_bodies(http):
    assert http.post("/rest/api/3/worklog/list", json={"ids": list(range(1000))}).status_code == 200
    too_many = http.post("/rest/api/3/worklog/list", json={"ids": list(range(1001))})
    assert too_many.status_code == 400
    assert "1000" in too_many.json()["errorMessages"][0]
    bad: dict[str, Any]
    for bad in ({}, {"ids": []}, {"ids": ["x"]}, {"ids": [True]}):
        assert http.post("/rest/api/3/worklog/list", json=bad).status_code == 400
    assert http.post("/rest/api/3/worklog/list", content=b"{nope").status_code == 400
    assert http.get("/rest/api/3/worklog/updated", params={"since": "yesterday"}).status_code == 400


def test_feeds_page_1000_at_a_time_with_absolute_next_page_urls():
    data = generate(3, issues=40, worklogs=2500, anchor=JIRA_NOW)
    with (
        running_jira(now=JIRA_NOW + timedelta(minutes=5), seed=data) as big,
        httpx.Client(auth=big.auth, timeout=30) as http,
    ):
        url: str | None = f"{big.url}/rest/api/3/worklog/updated?since=0"
        pages: list[dict[str, Any]] = []
        while url is not None:
            body = http.get(url).json()
            pages.append(body)
            url = body.get("nextPage")
            if url is not None:
                assert url.startswith(f"{big.url}/rest/api/3/worklog/updated?since=")
                assert body["lastPage"] is False
                assert url.endswith(f"since={body['until']}")
        all_ids = {int(w.id) for w in big.app.state.iter_worklogs()}
    assert len(pages) == 3
    assert [len(page["values"]) for page in pages[:2]] == [1000, 1000]
    assert pages[-1]["lastPage"] is True
    seen = [value["worklogId"] for page in pages for value in page["values"]]
    assert set(seen) == all_ids
    assert len(all_ids) == 2500
    # since is inclusive: each next page starts again at the previous page's last item
    assert pages[1]["values"][0]["updatedTime"] == pages[0]["until"]
