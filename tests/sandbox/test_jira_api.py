"""The Jira sandbox over real HTTP with httpx: server info, auth, users, fields, issues,
per-issue worklogs and comments, v2 vs v3 shapes, unknown routes."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from sandbox.jira.seed import (
    DEMO_ACCOUNT_ID,
    DEMO_API_TOKEN,
    DEMO_EMAIL,
    DEMO_PAT,
    DEMO_WORKLOGS,
    PROJECTS,
)
from tests.support.jira import RunningJira

JIRA_TIME = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}[+-]\d{4}$")
NOT_AUTHENTICATED = "You are not authenticated. Authentication required to perform this operation."


@pytest.fixture
def http(jira: RunningJira) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=jira.url, auth=jira.auth, timeout=10) as client:
        yield client


@pytest.fixture
def anonymous(jira: RunningJira) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=jira.url, timeout=10) as client:
        yield client


@pytest.mark.parametrize("version", ["2", "3"])
def test_server_info_says_cloud_and_names_the_sandbox_url(http, jira, version):
    body = http.get(f"/rest/api/{version}/serverInfo").json()
    assert body["deploymentType"] == "Cloud"
    assert body["baseUrl"] == jira.url
    assert body["versionNumbers"] == [1001, 0, 0]
    assert JIRA_TIME.match(body["serverTime"])
    assert body["serverTime"] == "2026-11-20T10:00:00.000+0100"  # the frozen clock, in Berlin


def test_server_info_answers_anonymous_callers_but_not_bad_credentials(anonymous):
    assert anonymous.get("/rest/api/2/serverInfo").status_code == 200
    response = anonymous.get("/rest/api/2/serverInfo", auth=(DEMO_EMAIL, "wrong"))
    assert response.status_code == 401


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Basic " + "ZGVtb0BiaWxsc3luYy50ZXN0Ondyb25n"},  # demo@…:wrong
        {"Authorization": "Basic not-base64!"},
        {"Authorization": "Bearer wrong-pat"},
        {"Authorization": f"Bearer {DEMO_API_TOKEN}"},  # an API token is not a PAT
        {"Authorization": "Token x"},
    ],
    ids=["none", "bad-token", "garbage", "bad-pat", "token-as-bearer", "other-scheme"],
)
def test_missing_or_bad_credentials_are_401_in_jira_shape(anonymous, headers):
    response = anonymous.get("/rest/api/3/myself", headers=headers)
    assert response.status_code == 401
    assert response.json() == {"errorMessages": [NOT_AUTHENTICATED], "errors": {}}
    assert response.headers["WWW-Authenticate"].startswith("Basic")


def test_basic_auth_and_bearer_pat_both_authenticate_the_demo_user(anonymous):
    basic = anonymous.get("/rest/api/3/myself", auth=(DEMO_EMAIL.upper(), DEMO_API_TOKEN))
    bearer = anonymous.get("/rest/api/2/myself", headers={"Authorization": f"Bearer {DEMO_PAT}"})
    assert basic.status_code == bearer.status_code == 200
    assert basic.json()["accountId"] == bearer.json()["accountId"] == DEMO_ACCOUNT_ID


def test_myself_has_the_cloud_user_fields(http):
    body = http.get("/rest/api/3/myself").json()
    assert body["accountId"] == DEMO_ACCOUNT_ID
    assert body["emailAddress"] == DEMO_EMAIL
    assert body["displayName"] == "Demo User"
    assert body["active"] is True
    assert body["timeZone"] == "Europe/Berlin"
    assert body["self"].endswith(
        f"/rest/api/3/user?accountId={DEMO_ACCOUNT_ID.replace(':', '%3A')}"
    )


def test_field_lists_the_system_fields_with_clause_names(http):
    fields = {f["id"]: f for f in http.get("/rest/api/3/field").json()}
    for name in ("summary", "project", "labels", "issuetype", "updated", "created", "worklog"):
        assert fields[name]["custom"] is False
        assert fields[name]["schema"]["system"] == name
    assert "type" in fields["issuetype"]["clauseNames"]
    assert fields["issuekey"]["clauseNames"] == ["id", "issue", "issuekey", "key"]


def test_issue_by_key_and_by_id_with_all_fields_by_default(http, jira):
    by_key = http.get("/rest/api/3/issue/ACME-1").json()
    by_id = http.get(f"/rest/api/3/issue/{by_key['id']}").json()
    assert by_key == by_id
    assert by_key["key"] == "ACME-1"
    assert by_key["self"] == f"{jira.url}/rest/api/3/issue/{by_key['id']}"
    fields = by_key["fields"]
    assert fields["summary"] == "Redesign the landing page hero section"
    assert fields["project"]["key"] == "ACME"
    assert fields["project"]["name"] == PROJECTS["ACME"]
    assert fields["issuetype"]["name"] == "Story"
    assert JIRA_TIME.match(fields["updated"])
    assert JIRA_TIME.match(fields["created"])
    assert fields["worklog"]["maxResults"] == 20
    assert fields["worklog"]["total"] == len(fields["worklog"]["worklogs"])


def test_issue_fields_parameter_limits_the_fields(http):
    body = http.get("/rest/api/2/issue/ACME-5", params={"fields": "summary,labels"}).json()
    assert set(body["fields"]) == {"summary", "labels"}
    assert body["fields"]["labels"] == ["internal"]
    dropped = http.get("/rest/api/2/issue/ACME-5", params={"fields": "*all,-worklog"}).json()
    assert "worklog" not in dropped["fields"]
    assert "summary" in dropped["fields"]


def test_an_unknown_issue_is_404_with_jiras_message(http):
    for ref in ("ACME-999", "NOPE-1", "999999"):
        response = http.get(f"/rest/api/3/issue/{ref}")
        assert response.status_code == 404
        assert response.json() == {
            "errorMessages": ["Issue does not exist or you do not have permission to see it."],
            "errors": {},
        }
        assert http.get(f"/rest/api/3/issue/{ref}/worklog").status_code == 404


def test_a_moved_issue_answers_by_its_old_key_with_the_new_key_and_same_id(http, jira):
    before = http.get("/rest/api/3/issue/ACME-2").json()
    moved = jira.move_issue("ACME-2", "GLX")
    assert moved["key"] == "GLX-11"
    assert moved["id"] == before["id"]
    assert moved["oldKeys"] == ["ACME-2"]
    for ref in ("ACME-2", "GLX-11", before["id"]):
        body = http.get(f"/rest/api/3/issue/{ref}").json()
        assert body["key"] == "GLX-11"
        assert body["fields"]["project"]["key"] == "GLX"
    assert (
        http.get("/rest/api/3/issue/ACME-2/worklog").json()["total"]
        == (http.get("/rest/api/3/issue/GLX-11/worklog").json()["total"])
    )


def _all_worklogs(http: httpx.Client, version: str = "3") -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    for project in PROJECTS:
        issues = http.get(
            f"/rest/api/{version}/search/jql", params={"jql": f"project = {project}"}
        ).json()["issues"]
        for issue in issues:
            found.extend(
                http.get(f"/rest/api/{version}/issue/{issue['id']}/worklog").json()["worklogs"]
            )
    return found


def test_the_demo_worklogs_have_jiras_shape(http):
    worklogs = _all_worklogs(http)
    assert len(worklogs) == DEMO_WORKLOGS
    for worklog in worklogs:
        assert isinstance(worklog["id"], str)
        assert isinstance(worklog["issueId"], str)
        assert JIRA_TIME.match(worklog["started"])
        assert worklog["timeSpentSeconds"] > 0
        assert worklog["timeSpentSeconds"] % 900 == 0
        assert worklog["author"]["accountId"]
        assert "displayName" in worklog["author"]
        assert worklog["updateAuthor"]["active"] is True
        assert worklog["self"].endswith(f"/issue/{worklog['issueId']}/worklog/{worklog['id']}")
    assert len({w["author"]["accountId"] for w in worklogs}) == 4


def test_worklog_time_spent_text_and_comment_shapes_per_version(http, jira):
    started = datetime(2026, 11, 18, 8, 0, tzinfo=UTC)
    added = jira.add_worklog(
        "INT-1", started=started, seconds=9 * 3600 + 30 * 60, comment="Planning\nand review"
    )
    v3 = next(
        w
        for w in http.get("/rest/api/3/issue/INT-1/worklog").json()["worklogs"]
        if w["id"] == added["id"]
    )
    v2 = next(
        w
        for w in http.get("/rest/api/2/issue/INT-1/worklog").json()["worklogs"]
        if w["id"] == added["id"]
    )
    assert v3["timeSpent"] == v2["timeSpent"] == "1d 1h 30m"  # 8-hour days
    assert v3["started"] == "2026-11-18T09:00:00.000+0100"
    assert v2["comment"] == "Planning\nand review"
    assert v3["comment"] == {
        "type": "doc",
        "version": 1,
        "content": [
            {"type": "paragraph", "content": [{"type": "text", "text": "Planning"}]},
            {"type": "paragraph", "content": [{"type": "text", "text": "and review"}]},
        ],
    }


def test_issue_worklogs_page_and_filter_by_started(http, jira):
    issue = jira.add_issue(project="INT", summary="Paged")
    starts = [datetime(2026, 11, day, 9, 0, tzinfo=UTC) for day in (2, 3, 4, 5, 6)]
    for started in starts:
        jira.add_worklog(issue["key"], started=started, seconds=900)
    url = f"/rest/api/3/issue/{issue['key']}/worklog"
    page = http.get(url, params={"startAt": 1, "maxResults": 2}).json()
    assert (page["startAt"], page["maxResults"], page["total"]) == (1, 2, 5)
    assert [w["started"][:10] for w in page["worklogs"]] == ["2026-11-03", "2026-11-04"]
    assert http.get(url).json()["maxResults"] == 5000
    assert http.get(url, params={"maxResults": 99999}).json()["maxResults"] == 5000
    ms = [int(s.timestamp() * 1000) for s in starts]
    window = http.get(url, params={"startedAfter": ms[1], "startedBefore": ms[3]}).json()
    assert window["total"] == 2  # startedAfter inclusive, startedBefore exclusive
    assert [w["started"][:10] for w in window["worklogs"]] == ["2026-11-03", "2026-11-04"]
    assert http.get(url, params={"startAt": "x"}).status_code == 400


def test_comments_page_with_v2_text_and_v3_adf(http):
    issue = http.get("/rest/api/3/issue/ACME-1", params={"fields": "comment"}).json()
    assert issue["fields"]["comment"]["total"] == 1
    v2 = http.get("/rest/api/2/issue/ACME-1/comment").json()
    v3 = http.get("/rest/api/3/issue/ACME-1/comment").json()
    assert (v2["startAt"], v2["total"]) == (0, 1)
    assert v2["comments"][0]["body"] == "Looks good to me."
    assert v3["comments"][0]["body"]["type"] == "doc"
    assert (
        http.get("/rest/api/2/issue/ACME-1/comment", params={"startAt": 1}).json()["comments"] == []
    )


def test_unknown_routes_and_methods_answer_in_jira_shape(http):
    missing = http.get("/rest/api/3/nothing-here")
    assert missing.status_code == 404
    assert "errorMessages" in missing.json()
    refused = http.delete("/rest/api/3/search/jql")
    assert refused.status_code == 405
    assert refused.headers["Allow"] == "GET, HEAD, POST"
    assert http.get("/rest/api/latest/myself").json()["accountId"] == DEMO_ACCOUNT_ID
