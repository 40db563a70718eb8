"""search/jql (cursor pages, fields, caps, bounded JQL), the legacy /search, and the JQL
subset over HTTP: operators, dates in the user's time zone, ORDER BY, Jira-style errors."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from sandbox.jira.seed import DEMO_ISSUES
from tests.support.jira import RunningJira, running_jira

UNBOUNDED = (
    "Unbounded JQL queries are not allowed here. Please add a search restriction to your query."
)


@pytest.fixture
def http(jira: RunningJira) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=jira.url, auth=jira.auth, timeout=10) as client:
        yield client


def search(http: httpx.Client, jql: str, **params) -> dict[str, Any]:
    response = http.get("/rest/api/3/search/jql", params={"jql": jql, **params})
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def keys(body: dict[str, Any]) -> list[str]:
    return [issue["key"] for issue in body["issues"]]


def error(http: httpx.Client, jql: str, path: str = "/rest/api/3/search/jql") -> str:
    response = http.get(path, params={"jql": jql})
    assert response.status_code == 400, response.text
    body = response.json()
    assert body["errors"] == {}
    [message] = body["errorMessages"]
    return str(message)


def test_default_answer_is_id_key_self_only_with_no_total(http, jira):
    body = search(http, "project = ACME ORDER BY key")
    assert set(body) == {"issues", "isLast"}  # no total, no nextPageToken on the last page
    assert body["isLast"] is True
    first = body["issues"][0]
    assert set(first) == {"expand", "id", "key", "self"}
    assert first["self"] == f"{jira.url}/rest/api/3/issue/{first['id']}"
    assert len(body["issues"]) == sum(1 for issue in DEMO_ISSUES if issue[0] == "ACME")


def test_pages_follow_next_page_tokens_until_is_last(http):
    jql = "project in (ACME, GLX, INT) ORDER BY key ASC"
    seen: list[str] = []
    token: str | None = None
    pages = 0
    while True:
        params = {"maxResults": 7, **({"nextPageToken": token} if token else {})}
        body = search(http, jql, **params)
        pages += 1
        seen.extend(keys(body))
        if body["isLast"]:
            assert "nextPageToken" not in body
            break
        token = body["nextPageToken"]
        assert len(body["issues"]) == 7
    assert pages == 5
    assert len(seen) == len(set(seen)) == 30
    assert seen[:3] == ["ACME-1", "ACME-2", "ACME-3"]  # by number, not as text


def test_tokens_are_opaque_stable_and_bound_to_their_query(http):
    jql = "project = ACME ORDER BY created"
    first = search(http, jql, maxResults=5)
    again = search(http, jql, maxResults=5)
    assert first["nextPageToken"] == again["nextPageToken"]
    assert first["nextPageToken"] != "5"
    assert jql not in first["nextPageToken"]
    second = search(http, jql, maxResults=5, nextPageToken=first["nextPageToken"])
    assert set(keys(first)).isdisjoint(keys(second))
    for bad in ("garbage", first["nextPageToken"][:-2], "LTE6YWJj"):
        response = http.get("/rest/api/3/search/jql", params={"jql": jql, "nextPageToken": bad})
        assert response.status_code == 400
    other_query = http.get(
        "/rest/api/3/search/jql",
        params={"jql": "project = GLX", "nextPageToken": first["nextPageToken"]},
    )
    assert other_query.status_code == 400


def test_post_takes_the_same_parameters_as_a_json_body(http):
    body = http.post(
        "/rest/api/3/search/jql",
        json={
            "jql": "project = INT ORDER BY key DESC",
            "maxResults": 3,
            "fields": ["summary", "labels"],
            "expand": None,
            "properties": None,
            "reconcileIssues": [],
        },
    ).json()
    assert keys(body) == ["INT-8", "INT-7", "INT-6"]
    assert set(body["issues"][0]["fields"]) == {"summary", "labels"}
    assert body["isLast"] is False
    nxt = http.post(
        "/rest/api/3/search/jql",
        json={"jql": "project = INT ORDER BY key DESC", "nextPageToken": body["nextPageToken"]},
    ).json()
    assert keys(nxt) == ["INT-5", "INT-4", "INT-3", "INT-2", "INT-1"]


def test_fields_as_comma_list_repeated_params_all_and_navigable(http):
    comma = search(http, "issuekey = ACME-1", fields="summary,updated")
    assert set(comma["issues"][0]["fields"]) == {"summary", "updated"}
    repeated = http.get(
        "/rest/api/3/search/jql",
        params=[("jql", "issuekey = ACME-1"), ("fields", "summary"), ("fields", "labels")],
    ).json()
    assert set(repeated["issues"][0]["fields"]) == {"summary", "labels"}
    everything = search(http, "issuekey = ACME-1", fields="*all")["issues"][0]["fields"]
    navigable = search(http, "issuekey = ACME-1", fields="*navigable")["issues"][0]["fields"]
    assert "worklog" in everything
    assert "worklog" not in navigable
    assert "summary" in navigable


def test_max_results_defaults_to_50_and_is_capped_by_the_fields_asked(jira):
    with running_jira(now=jira.app.state.clock.now(), seed=None) as big:
        state = big.app.state
        state.add_project("BIG", "Big")
        for n in range(5200):
            state.add_issue(project="BIG", summary=f"Issue {n}")
        with httpx.Client(base_url=big.url, timeout=30) as client:
            client.headers["Authorization"] = "Bearer x"
            state.add_user("u", "U", "u@x.test", pat="x")
            ids_only = client.get(
                "/rest/api/3/search/jql", params={"jql": "project = BIG", "maxResults": 9999}
            ).json()
            with_fields = client.get(
                "/rest/api/3/search/jql",
                params={"jql": "project = BIG", "maxResults": 9999, "fields": "summary"},
            ).json()
            default = client.get("/rest/api/3/search/jql", params={"jql": "project = BIG"}).json()
    assert len(ids_only["issues"]) == 5000
    assert len(with_fields["issues"]) == 100
    assert len(default["issues"]) == 50


@pytest.mark.parametrize("jql", ["", "ORDER BY key", "order by updated DESC, key ASC"])
def test_unbounded_jql_is_refused_by_search_jql(http, jql):
    assert error(http, jql) == UNBOUNDED


def test_legacy_search_pages_with_start_at_and_total(http):
    first = http.get(
        "/rest/api/2/search", params={"jql": "project = GLX ORDER BY key", "maxResults": 4}
    ).json()
    assert (first["startAt"], first["maxResults"], first["total"]) == (0, 4, 10)
    assert keys(first) == ["GLX-1", "GLX-2", "GLX-3", "GLX-4"]
    assert "summary" in first["issues"][0]["fields"]  # legacy default: *navigable
    third = http.post(
        "/rest/api/2/search",
        json={"jql": "project = GLX ORDER BY key", "startAt": 8, "maxResults": 4},
    ).json()
    assert keys(third) == ["GLX-9", "GLX-10"]
    unbounded = http.get("/rest/api/2/search", params={"jql": "order by key"}).json()
    assert unbounded["total"] == 30


def test_legacy_search_can_answer_410_as_cloud_does_since_its_removal(jira):
    with running_jira(now=jira.app.state.clock.now(), legacy_search=False) as cloud:
        response = httpx.get(
            f"{cloud.url}/rest/api/3/search", params={"jql": "project = ACME"}, auth=cloud.auth
        )
    assert response.status_code == 410
    assert response.json()["errorMessages"][0].startswith("The requested API has been removed.")


@pytest.mark.parametrize(
    ("jql", "expected"),
    [
        ("project = INT AND key in (INT-2, INT-3) ORDER BY key", ["INT-2", "INT-3"]),
        ("issuekey = ACME-3", ["ACME-3"]),
        ("key = 'ACME-3' OR key = \"GLX-1\" ORDER BY key DESC", ["GLX-1", "ACME-3"]),
        (
            "project = ACME AND labels = internal ORDER BY key",
            ["ACME-5", "ACME-8", "ACME-10", "ACME-12"],
        ),
        ("project = ACME AND labels in (legal, performance) ORDER BY key", ["ACME-3", "ACME-6"]),
        ("project = GLX AND issuetype = Bug ORDER BY key", ["GLX-3", "GLX-8"]),
        ("project in (ACME) AND summary ~ vat", ["ACME-9"]),
        (
            "project = INT AND NOT (key in (INT-1, INT-2, INT-3, INT-4, INT-5, INT-6)) ORDER BY "
            "key",
            ["INT-7", "INT-8"],
        ),
        (
            "PROJECT = int and KEY not in (INT-1,INT-2,INT-3,INT-4,INT-5,INT-6,INT-7) order by "
            "key asc",
            ["INT-8"],
        ),
        ("project = 'Internal' AND key = INT-8", ["INT-8"]),
    ],
)
def test_the_jql_subset_selects_and_orders(http, jql, expected):
    assert keys(search(http, jql, maxResults=100)) == expected


def test_id_in_and_ordering_by_several_fields(http):
    ids = [search(http, f"issuekey = {k}")["issues"][0]["id"] for k in ("GLX-2", "ACME-4")]
    body = search(http, f"id in ({ids[0]}, {ids[1]}) ORDER BY project ASC, key DESC")
    assert keys(body) == ["ACME-4", "GLX-2"]


def test_updated_compares_in_the_users_time_zone_in_every_date_form(http, jira):
    issue = jira.add_issue(project="INT", summary="Fresh")
    jira.freeze_clock(datetime(2026, 11, 25, 9, 30, tzinfo=UTC))  # 10:30 in Berlin
    touched = jira.add_issue(project="INT", summary="Touched later")
    epoch = int(datetime(2026, 11, 25, 9, 30, tzinfo=UTC).timestamp() * 1000)
    for value in ('"2026/11/25 10:30"', '"2026-11-25 10:30"', str(epoch)):
        assert keys(search(http, f"project = INT AND updated >= {value}")) == [touched["key"]]
    assert keys(search(http, 'project = INT AND updated > "2026/11/25 10:31"')) == []
    day = search(http, "project = INT AND updated >= 2026-11-25 ORDER BY key")
    assert keys(day) == [touched["key"]]
    both = search(http, 'project = INT AND updated >= "2026-11-20" ORDER BY key')
    assert keys(both) == [issue["key"], touched["key"]]
    relative = search(http, "project = INT AND updated >= -1h")
    assert keys(relative) == [touched["key"]]
    assert keys(
        search(
            http, 'project = INT AND created < "2026/11/25 10:30" AND created >= "2026/11/20 10:00"'
        )
    ) == [issue["key"]]


@pytest.mark.parametrize(
    ("jql", "message"),
    [
        ("project = NOPE", "The value 'NOPE' does not exist for the field 'project'."),
        (
            "key in (ACME-1, ACME-999)",
            "An issue with key 'ACME-999' does not exist for field 'key'.",
        ),
        ("colour = red", "Field 'colour' does not exist or you do not have permission to view it."),
        (
            "project = ACME AND updated >= '2026/13/45'",
            "Date value '2026/13/45' for field 'updated' is invalid. Valid formats include: "
            "'yyyy/MM/dd HH:mm', 'yyyy-MM-dd HH:mm', 'yyyy/MM/dd', 'yyyy-MM-dd', or a period "
            "format e.g. '-5d', '4w 2d'.",
        ),
        (
            "project = ACME AND",
            "Error in the JQL Query: Expecting a field name before the end of the query.",
        ),
        (
            "project ACME",
            "Error in the JQL Query: Expecting operator. The valid operators are "
            "'=', '!=', '<', '>', '<=', '>=', '~', '!~', 'IN', 'NOT IN', 'IS' and "
            "'IS NOT' but got 'ACME'. (line 1, character 9)",
        ),
        (
            "project = ACME ORDER key",
            "Error in the JQL Query: Expecting 'by' but got 'key'. (line 1, character 22)",
        ),
        (
            "project in (ACME, GLX",
            "Error in the JQL Query: Expecting ')' before the end of the query.",
        ),
        (
            'summary ~ "open',
            "Error in the JQL Query: The quoted string 'open' has not been "
            "completed. (line 1, character 11)",
        ),
        (
            "project = ACME AND updated >= startOfDay()",
            "Error in the JQL Query: the sandbox does not support JQL functions ('startOfDay()'). "
            "(line 1, character 31)",
        ),
        ("project = ACME ORDER BY labels", "Field 'labels' does not support sorting."),
        (
            "project = ACME ORDER BY key, id, created, updated, project, summary, issuetype, key",
            "Error in the JQL Query: ORDER BY accepts at most 7 fields.",
        ),
    ],
)
def test_unsupported_or_wrong_jql_is_a_400_naming_the_problem(http, jql, message):
    assert error(http, jql) == message
    assert error(http, jql, "/rest/api/2/search") == message
