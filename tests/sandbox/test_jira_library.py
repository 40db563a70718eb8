"""The real ``jira`` library (pycontribs) against the sandbox, unchanged: construction
(serverInfo), enhanced search, issue, worklogs, myself, fields, Cloud-only paths, 429s and
HTTPS."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest
from jira import JIRA, JIRAError

from sandbox.jira.seed import DEMO_ACCOUNT_ID, DEMO_PAT
from sandbox.jira.tls import make_tls_files
from sandbox.server import ServerThread
from tests.support.jira import RunningJira


@pytest.fixture
def client(jira: RunningJira) -> Iterator[JIRA]:
    """The library as billsync uses it; max_retries=0 so a 429 is not slept on."""
    with closing(JIRA(server=jira.url, basic_auth=jira.auth, max_retries=0)) as connected:
        yield connected


def connect(url: str, **options: Any) -> closing[JIRA]:
    return closing(JIRA(server=url, max_retries=0, **options))


def test_construction_calls_server_info_and_detects_cloud(jira):
    with closing(JIRA(server=jira.url, basic_auth=jira.auth)) as client:
        pass
    assert client._is_cloud
    assert client._version == (1001, 0, 0)
    assert jira.requests() == {"GET /rest/api/2/serverInfo": 1}


def test_validate_true_also_works(jira):
    with connect(jira.url, basic_auth=jira.auth, validate=True) as client:
        assert client.myself()["accountId"] == DEMO_ACCOUNT_ID
    assert jira.requests()["GET /rest/auth/1/session"] == 1


def test_token_auth_uses_the_pat_as_bearer(jira):
    with connect(jira.url, token_auth=DEMO_PAT) as client:
        assert client.myself()["emailAddress"] == "demo@billsync.test"


def test_bad_credentials_raise_jira_error_401(jira):
    with pytest.raises(JIRAError) as caught:
        connect(jira.url, basic_auth=("demo@billsync.test", "wrong"))
    assert caught.value.status_code == 401
    assert "not authenticated" in str(caught.value.text)


def test_enhanced_search_pages_and_maps_fields(client):
    first = client.enhanced_search_issues("project = ACME ORDER BY key ASC", maxResults=5)
    assert [issue.key for issue in first] == [f"ACME-{n}" for n in range(1, 6)]
    assert first[0].fields.summary == "Redesign the landing page hero section"
    assert first[0].fields.project.key == "ACME"
    token = first.nextPageToken
    assert token
    second = client.enhanced_search_issues(
        "project = ACME ORDER BY key ASC", nextPageToken=token, maxResults=5
    )
    assert [issue.key for issue in second] == [f"ACME-{n}" for n in range(6, 11)]
    everything = client.enhanced_search_issues(
        "project in (ACME, GLX, INT)", maxResults=0, fields="summary,labels"
    )
    assert len(everything) == 30
    assert {tuple(i.fields.labels) for i in everything if "internal" in i.fields.labels}


def test_enhanced_search_with_post_and_json_result(client):
    body = client.enhanced_search_issues(
        "project = INT ORDER BY key DESC", maxResults=2, json_result=True, use_post=True
    )
    assert [issue["key"] for issue in body["issues"]] == ["INT-8", "INT-7"]
    assert body["isLast"] is False
    assert "total" not in body


def test_search_issues_delegates_to_search_jql_on_cloud_and_refuses_start_at(client, jira):
    found = client.search_issues("project = GLX ORDER BY key", maxResults=3)
    assert [issue.key for issue in found] == ["GLX-1", "GLX-2", "GLX-3"]
    counts = jira.requests()
    assert counts.get("GET /rest/api/2/search/jql") == 1
    assert "GET /rest/api/2/search" not in counts
    with pytest.raises(JIRAError, match="deprecated in Jira Cloud"):
        client.search_issues("project = GLX", startAt=3)


def test_issue_worklogs_myself_and_fields(client, jira):
    issue = client.issue("ACME-1")
    assert issue.key == "ACME-1"
    assert issue.fields.issuetype.name == "Story"
    worklogs = client.worklogs("ACME-1")
    assert len(worklogs) == issue.fields.worklog.total
    assert all(w.issueId == issue.id for w in worklogs)
    assert all(w.timeSpentSeconds > 0 for w in worklogs)
    assert client.myself()["accountId"] == DEMO_ACCOUNT_ID
    names = {field["id"] for field in client.fields()}
    assert {"summary", "project", "labels", "worklog"} <= names
    partial = client.issue("GLX-2", fields="summary")
    assert partial.fields.summary == "Rate limiter for the public API"


def test_a_moved_issue_is_found_by_its_old_key(client, jira):
    jira.move_issue("INT-3", "ACME")
    assert client.issue("INT-3").key == "ACME-13"


def test_missing_issue_is_a_404_jira_error(client):
    with pytest.raises(JIRAError) as caught:
        client.issue("ACME-404")
    assert caught.value.status_code == 404
    assert caught.value.text == "Issue does not exist or you do not have permission to see it."


def test_rate_limit_reaches_the_caller_as_429_with_retry_after(client, jira, caplog):
    jira.fault({"kind": "rate_limit", "retry_after": 7, "match": {"route": "/rest/api/2/myself"}})
    caplog.set_level(logging.CRITICAL, logger="jira")
    with pytest.raises(JIRAError) as caught:
        client.myself()
    assert caught.value.status_code == 429
    response = caught.value.response
    assert response is not None
    assert response.headers["Retry-After"] == "7"
    assert response.headers["X-RateLimit-Remaining"] == "0"
    assert response.headers["RateLimit-Reason"] == "jira-burst-based"
    assert client.myself()["accountId"] == DEMO_ACCOUNT_ID  # the fault is used up


def test_error500_is_a_jira_error(client, jira):
    jira.fault({"kind": "error500", "match": {"method": "GET", "route": "/rest/api/2/field"}})
    with pytest.raises(JIRAError) as caught:
        client.fields()
    assert caught.value.status_code == 500
    assert jira.requests()["GET /rest/api/2/field"] == 1


def test_the_library_works_over_https_with_the_sandbox_ca(jira, tmp_path: Path):
    files = make_tls_files(tmp_path / "tls")
    with ServerThread(jira.app, ssl_certfile=str(files.cert), ssl_keyfile=str(files.key)) as tls:
        assert tls.url.startswith("https://127.0.0.1:")
        with connect(tls.url, basic_auth=jira.auth, options={"verify": str(files.ca)}) as client:
            assert client.server_info()["baseUrl"] == tls.url
            found = client.enhanced_search_issues("issuekey = ACME-2", fields="summary")
            assert found[0].self.startswith("https://")
        with (
            connect(tls.url, basic_auth=jira.auth, get_server_info=False) as untrusted,
            pytest.raises(Exception, match="CERTIFICATE_VERIFY_FAILED"),
        ):
            untrusted.myself()
