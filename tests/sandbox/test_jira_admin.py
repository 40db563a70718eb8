"""The Jira sandbox's ``/_sandbox`` admin API, reset, seeding and the generated dataset."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from sandbox.jira import JiraState, create_app, generate
from sandbox.jira.seed import DEMO_ACCOUNT_ID, DEMO_ISSUES, DEMO_WORKLOGS, PROJECTS, seed_demo
from tests.support.jira import JIRA_NOW, RunningJira

NOW_MS = int(JIRA_NOW.timestamp() * 1000)


@pytest.fixture
def bare(jira: RunningJira) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=jira.url, timeout=10) as client:
        yield client


@pytest.fixture
def http(jira: RunningJira) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=jira.url, auth=jira.auth, timeout=10) as client:
        yield client


def test_clock_can_be_read_frozen_advanced_and_released(bare):
    assert bare.get("/_sandbox/clock").json()["data"] == {
        "now": "2026-11-20T09:00:00Z",
        "nowMs": NOW_MS,
        "epoch": NOW_MS // 1000,
        "frozen": True,
    }
    moved = bare.post("/_sandbox/clock", json={"advance": 90.5}).json()["data"]
    assert moved["nowMs"] == NOW_MS + 90_500
    frozen = bare.post("/_sandbox/clock", json={"now": "2027-01-01T12:00:00+01:00"}).json()
    assert frozen["data"]["now"] == "2027-01-01T11:00:00Z"
    before = int(time.time() * 1000)
    real = bare.post("/_sandbox/clock", json={"real": True}).json()["data"]
    after = int(time.time() * 1000) + 1
    assert real["frozen"] is False
    assert before <= real["nowMs"] <= after  # the real clock, read during the call
    for bad in ({}, {"advance": 1, "real": True}, {"now": "2027-01-01T12:00:00"}, {"x": 1}):
        response = bare.post("/_sandbox/clock", json=bad)
        assert response.status_code == 400, bad
        assert response.json()["error"] == "BadRequest"


def test_reset_restores_data_clock_counts_and_faults(jira, bare, http):
    jira.add_issue(project="ACME", summary="Temporary")
    jira.advance_clock(3600)
    jira.fault({"kind": "error500"})
    http.get("/rest/api/3/myself")
    assert bare.post("/_sandbox/reset").status_code == 204
    assert bare.get("/_sandbox/faults").json()["data"] == []
    assert bare.get("/_sandbox/requests").json()["data"] == {}
    assert bare.get("/_sandbox/clock").json()["data"]["nowMs"] == NOW_MS
    assert http.get("/rest/api/3/issue/ACME-13").status_code == 404


def test_info_names_the_credentials_and_the_data(bare):
    info = bare.get("/_sandbox/info").json()["data"]
    assert info["email"] == "demo@billsync.test"
    assert info["apiToken"] == "jira-sandbox-token"
    assert info["pat"] == "jira-sandbox-pat"
    assert info["accountId"] == DEMO_ACCOUNT_ID
    assert info["projects"] == PROJECTS
    assert (info["issues"], info["worklogs"]) == (len(DEMO_ISSUES), DEMO_WORKLOGS)
    assert len(info["users"]) == 4
    assert info["anchor"] == JIRA_NOW.isoformat()


def test_admin_calls_are_neither_counted_nor_faulted(jira, bare, http):
    jira.fault({"kind": "error500"})
    assert bare.get("/_sandbox/clock").status_code == 200
    assert bare.get("/_sandbox/requests").json()["data"] == {}
    assert http.get("/rest/api/3/issue/ACME-1").status_code == 500
    assert http.get("/rest/api/3/issue/ACME-1").status_code == 200
    assert jira.requests() == {"GET /rest/api/3/issue/{issueIdOrKey}": 2}


def test_bad_fault_specs_are_refused(bare):
    response = bare.post("/_sandbox/faults", json={"kind": "explode"})
    assert response.status_code == 400
    assert bare.post("/_sandbox/faults", json={"kind": "latency"}).status_code == 400


def test_add_issue_by_project_or_key_bumps_numbers_and_validates(jira, http):
    added = jira.add_issue(project="GLX", summary="New one", labels=["internal"], issuetype="Bug")
    assert added["key"] == "GLX-11"
    assert added["updatedMs"] == NOW_MS
    explicit = jira.add_issue(key="INT-50", summary="Numbered")
    assert explicit["key"] == "INT-50"
    assert jira.add_issue(project="INT", summary="After")["key"] == "INT-51"
    body = http.get("/rest/api/3/issue/GLX-11", params={"fields": "labels,issuetype"}).json()
    assert body["fields"]["labels"] == ["internal"]
    assert body["fields"]["issuetype"]["name"] == "Bug"
    for bad in (
        {"summary": "no project"},
        {"project": "NOPE", "summary": "x"},
        {"key": "INT-50", "summary": "taken"},
        {"key": "bad", "summary": "x"},
        {"project": "ACME"},
    ):
        response = httpx.post(f"{jira.url}/_sandbox/issues", json=bad)
        assert response.status_code in (400, 404), bad


def test_patch_issue_and_comments_stamp_updated(jira, bare, http):
    jira.advance_clock(600)
    patched = bare.patch("/_sandbox/issues/ACME-4", json={"summary": "Renamed"}).json()["data"]
    assert patched["summary"] == "Renamed"
    assert patched["updatedMs"] == NOW_MS + 600_000
    comment = bare.post("/_sandbox/issues/ACME-4/comments", json={"body": "Hello"})
    assert comment.status_code == 200
    comments = http.get("/rest/api/2/issue/ACME-4/comment").json()["comments"]
    assert comments[-1]["body"] == "Hello"


def test_worklog_changes_stamp_the_issue_updated(jira, http):
    jira.advance_clock(300)
    added = jira.add_worklog(
        "ACME-7",
        started=datetime(2026, 11, 19, 9, tzinfo=UTC),
        seconds=600,
        accountId="712020:b0b00000-0000-4000-8000-00000000b0b0",
        comment="note",
    )
    assert added["accountId"].endswith("b0b0")
    issue = http.get("/rest/api/3/issue/ACME-7", params={"fields": "updated"}).json()
    assert issue["fields"]["updated"] == "2026-11-20T10:05:00.000+0100"
    jira.advance_clock(300)
    edited = jira.edit_worklog(
        added["id"], started=datetime(2026, 11, 18, 9, tzinfo=UTC), updateAccountId=DEMO_ACCOUNT_ID
    )
    assert edited["started"].startswith("2026-11-18T09:00:00.000+0000")
    assert edited["updateAccountId"] == DEMO_ACCOUNT_ID
    assert edited["updatedMs"] == NOW_MS + 600_000
    jira.delete_worklog(added["id"])
    missing = httpx.delete(f"{jira.url}/_sandbox/worklogs/{added['id']}")
    assert missing.status_code == 404
    assert httpx.put(f"{jira.url}/_sandbox/worklogs/abc", json={}).status_code == 404


def test_raw_worklogs_are_served_exactly_as_stored(jira, http):
    broken = {
        "id": "77777",
        "issueId": "10000",
        "started": "yesterday-ish",
        "timeSpentSeconds": -3600,
    }
    stored = jira.add_raw_worklog("ACME-1", broken)
    assert stored["id"] == "77777"
    no_id = jira.add_raw_worklog("ACME-1", {"timeSpentSeconds": 10**12})
    listed = http.get("/rest/api/3/issue/ACME-1/worklog").json()["worklogs"]
    assert broken in listed
    assert {"timeSpentSeconds": 10**12} in listed
    by_id = http.post("/rest/api/3/worklog/list", json={"ids": [77777, int(no_id["id"])]}).json()
    assert by_id == [broken, {"timeSpentSeconds": 10**12}]
    jira.advance_clock(61)
    feed = http.get("/rest/api/3/worklog/updated", params={"since": NOW_MS}).json()
    assert {v["worklogId"] for v in feed["values"]} == {77777, int(no_id["id"])}
    clash = httpx.post(
        f"{jira.url}/_sandbox/worklogs/raw", json={"issue": "ACME-1", "worklog": {"id": 77777}}
    )
    assert clash.status_code == 400


def test_the_admin_api_answers_loopback_clients_only(jira):
    app = jira.app
    scope_client = ("10.0.0.5", 1234)
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "method": "GET",
        "path": "/_sandbox/clock",
        "headers": [],
        "query_string": b"",
        "client": scope_client,
        "server": ("127.0.0.1", 80),
        "scheme": "http",
        "root_path": "",
        "http_version": "1.1",
    }
    asyncio.run(app(scope, receive, send))
    assert sent[0]["status"] == 403


def test_demo_seed_is_deterministic_for_an_anchor_and_all_before_it():
    def snapshot() -> list[tuple[Any, ...]]:
        state = JiraState(now=JIRA_NOW)
        seed_demo(state)
        return [
            (w.id, w.issue_id, w.author, w.started, w.seconds, w.updated_ms)
            for w in state.iter_worklogs()
        ]

    first, second = snapshot(), snapshot()
    assert first == second
    assert len(first) == DEMO_WORKLOGS
    assert all(row[5] <= NOW_MS - 60_000 for row in first)
    starts = [row[3] for row in first]
    assert min(starts) >= JIRA_NOW - timedelta(weeks=8, days=1)
    assert all(s.minute % 15 == 0 and s.weekday() < 5 for s in starts)


def test_generated_dataset_has_its_size_and_is_deterministic():
    # how fast it loads is the benchmark's business (SPEC §10), never a test's
    state = JiraState(now=JIRA_NOW)
    info = generate(11, issues=2000, worklogs=50_000, anchor=JIRA_NOW).load(state)
    assert (info.issues, info.worklogs) == (2000, 50_000)
    assert len(state.issues()) == 2000
    assert state.worklog_count() == 50_000
    again = JiraState(now=JIRA_NOW)
    generate(11, issues=20, worklogs=300, anchor=JIRA_NOW).load(again)
    twice = JiraState(now=JIRA_NOW)
    generate(11, issues=20, worklogs=300, anchor=JIRA_NOW).load(twice)
    assert [(w.issue_id, w.started, w.seconds) for w in again.iter_worklogs()] == [
        (w.issue_id, w.started, w.seconds) for w in twice.iter_worklogs()
    ]


def test_create_app_accepts_a_dataset_as_seed_and_reseeds_on_reset():
    app = create_app(JiraState(now=JIRA_NOW), seed=generate(5, issues=10, worklogs=40))
    assert app.info is not None
    assert app.info.worklogs == 40
    app.state.add_issue(project="ACME", summary="extra")
    app.reset()
    assert len(app.state.issues()) == 10
    unseeded = create_app(JiraState(now=JIRA_NOW), seed=None)
    assert unseeded.state.issues() == []
    assert unseeded.info_json() == {}
