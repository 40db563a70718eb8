"""The Jira connector over real HTTP against the Jira sandbox, with the real `jira` library:
first and incremental syncs, edits, deletions, moves, the last-minute window, more than 1000
changed worklogs, 429 and 5xx mid-sync, and bad worklogs. Entries land in a real store."""

from __future__ import annotations

import itertools
import time
from collections.abc import Iterator, Mapping
from datetime import timedelta

import pytest
from pydantic import SecretStr
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from connectors.jira import JiraApi, JiraConfigError, JiraSource, JiraUnavailable
from connectors.retry import RetryPolicy
from sandbox.jira.dataset import generate
from sandbox.jira.seed import DEMO_API_TOKEN, DEMO_EMAIL, DEMO_PAT
from tests.support.billing import store
from tests.support.jira import JIRA_NOW, RunningJira, running_jira
from worker.ingest import ingest
from worker.ports import SourceBatch, SourceContext
from worker.store import Cursor, Entry, EntryState, SourceIssue

FAST = RetryPolicy(max_attempts=4, base_delay=0.001, max_wait=5.0)


@pytest.fixture
def factory(tmp_path) -> Iterator[sessionmaker[Session]]:
    with store(f"sqlite:///{tmp_path / 'state.db'}") as f:
        yield f


def source_for(jira: RunningJira, **kwargs: object) -> JiraSource:
    api = JiraApi(
        jira.url,
        email=DEMO_EMAIL,
        token=SecretStr(DEMO_API_TOKEN),
        policy=FAST,
        sleep=lambda s: None,
    )
    return JiraSource("jira", api, projects=kwargs.pop("projects", ["ACME", "GLX"]), **kwargs)  # type: ignore[arg-type]


def entries(factory: sessionmaker[Session]) -> dict[str, Entry]:
    with factory() as session:
        return {e.key: e for e in session.scalars(select(Entry))}


def cursors(factory: sessionmaker[Session]) -> dict[str, str]:
    with factory() as session:
        return {c.stream: c.value for c in session.scalars(select(Cursor))}


def key(jira: RunningJira, worklog_id: object) -> str:
    return f"jira:{jira.url.split('://')[1]}:worklog:{worklog_id}"


def test_first_sync_reads_every_worklog_and_issue(jira: RunningJira, factory) -> None:
    source = source_for(jira)
    counts = ingest(factory, source)
    assert counts.new == 250  # the demo dataset: every worklog of the site, INT included
    stored = entries(factory)
    assert all(e.state == EntryState.ACTIVE for e in stored.values())
    with factory() as session:
        projects = {i.project for i in session.scalars(select(SourceIssue))}
    assert projects == {"ACME", "GLX", "INT"}  # INT issues looked up by id for their worklogs
    assert set(cursors(factory)) == {"issues", "worklog_updated", "worklog_deleted"}
    # 1 issue search page, 1 feed page, 1 list call, 1 lookup of INT's issues, 1 deletions page
    assert source.api.request_counts == {
        "GET search/jql": 2,
        "GET worklog/updated": 1,
        "POST worklog/list": 1,
        "GET worklog/deleted": 1,
    }


def test_incremental_sync_edit_delete_and_new_work(jira: RunningJira, factory) -> None:
    source = source_for(jira)
    ingest(factory, source)
    first = entries(factory)
    some = sorted(first)[:3]
    ids = [k.rsplit(":", 1)[1] for k in some]
    jira.advance_clock(600)
    jira.edit_worklog(ids[0], timeSpentSeconds=7200)
    jira.delete_worklog(ids[1])
    new = jira.add_worklog("ACME-1", started=JIRA_NOW, seconds=1800)
    jira.advance_clock(61)  # Jira leaves out the last minute
    source.api.request_counts.clear()
    counts = ingest(factory, source)
    assert (counts.new, counts.changed, counts.deleted) == (1, 1, 1)
    after = entries(factory)
    assert after[some[0]].seconds == 7200
    assert after[some[1]].state == EntryState.DELETED
    assert after[key(jira, new["id"])].seconds == 1800
    assert after[some[2]].content_hash == first[some[2]].content_hash
    # incremental: no full re-read; the changed worklogs only (plus the overlap)
    assert source.api.request_counts["POST worklog/list"] == 1
    assert counts.unchanged <= 3


def test_the_last_minute_is_left_out_until_it_is_over(jira: RunningJira, factory) -> None:
    source = source_for(jira)
    ingest(factory, source)
    added = jira.add_worklog("GLX-1", started=JIRA_NOW, seconds=900)
    jira.advance_clock(30)
    assert ingest(factory, source).new == 0  # 30 s old: Jira does not list it yet
    jira.advance_clock(31)
    assert ingest(factory, source).new == 1
    assert key(jira, added["id"]) in entries(factory)


def test_a_moved_issue_keeps_its_entries(jira: RunningJira, factory) -> None:
    source = source_for(jira)
    ingest(factory, source)
    with factory() as session:
        acme1 = session.scalar(select(SourceIssue).where(SourceIssue.key == "ACME-1"))
        assert acme1 is not None
        issue_id = acme1.external_id
    before = {k for k, e in entries(factory).items() if e.external_issue_id == issue_id}
    moved = jira.move_issue("ACME-1", "GLX")
    jira.advance_clock(120)
    ingest(factory, source)
    with factory() as session:
        row = session.scalar(select(SourceIssue).where(SourceIssue.external_id == issue_id))
        assert row is not None
        assert (row.key, row.project) == (moved["key"], "GLX")
    after = {k for k, e in entries(factory).items() if e.external_issue_id == issue_id}
    assert after == before  # same keys: same entries


def test_more_than_1000_changed_worklogs(factory) -> None:
    data = generate(3, issues=40, worklogs=2500, anchor=JIRA_NOW)
    with running_jira(now=JIRA_NOW + timedelta(hours=1), seed=data) as jira:
        source = source_for(jira, projects=["ACME", "GLX", "INT"])
        counts = ingest(factory, source)
        calls = dict(source.api.request_counts)
    assert counts.new == 2500
    assert calls["GET worklog/updated"] == 3  # 1000 + 1000 + 500, following nextPage
    assert calls["POST worklog/list"] == 3


@pytest.mark.parametrize("kind", ["rate_limit", "error500"])
def test_429_and_5xx_mid_sync_are_retried(jira: RunningJira, factory, kind: str) -> None:
    source = source_for(jira)
    spec: dict[str, object] = {"kind": kind, "count": 2, "match": {"method": "POST"}}
    if kind == "rate_limit":
        spec["retry_after"] = 1
    jira.fault(spec)
    assert ingest(factory, source).new == 250
    assert source.api.request_counts["POST worklog/list"] == 3


def test_a_long_retry_after_is_handed_back_and_nothing_is_lost(jira: RunningJira, factory) -> None:
    source = source_for(jira)
    jira.fault({"kind": "rate_limit", "count": 1, "retry_after": 600, "match": {"method": "POST"}})
    with pytest.raises(JiraUnavailable) as caught:
        ingest(factory, source)
    assert caught.value.retry_after == 600
    assert "worklog_updated" not in cursors(factory)  # the page was not recorded: no cursor
    assert ingest(factory, source).new == 250  # the next run reads it all


def test_bad_worklogs_are_reported_and_the_rest_goes_on(jira: RunningJira, factory) -> None:
    good = jira.add_worklog("ACME-2", started=JIRA_NOW, seconds=600)
    raws: dict[str, dict[str, object]] = {
        "9001": {"timeSpentSeconds": -60, "started": "2026-11-19T09:00:00.000+0100"},
        "9002": {"timeSpentSeconds": 10**9, "started": "2026-11-19T09:00:00.000+0100"},
        "9003": {"timeSpentSeconds": 600, "started": "yesterday at noon"},
        "9004": {"timeSpentSeconds": 600},
    }
    for worklog_id, raw in raws.items():
        author = {"accountId": "712020:x", "displayName": "X", "active": True}
        jira.add_raw_worklog("ACME-2", {"id": worklog_id, "author": author, **raw})
    jira.advance_clock(120)
    counts = ingest(factory, source_for(jira))
    assert counts.bad == 4
    stored = entries(factory)
    reasons = {
        k.rsplit(":", 1)[1]: e.bad_reason for k, e in stored.items() if e.state == EntryState.BAD
    }
    assert "timeSpentSeconds -60 is not positive" in str(reasons["9001"])
    assert "more than a week" in str(reasons["9002"])
    assert "unreadable started 'yesterday at noon'" in str(reasons["9003"])
    assert "unreadable started 'None'" in str(reasons["9004"])
    assert stored[key(jira, good["id"])].state == EntryState.ACTIVE


def test_bearer_pat_and_bad_credentials(jira: RunningJira) -> None:
    api = JiraApi(jira.url, email=None, token=SecretStr(DEMO_PAT), policy=FAST)
    assert api._get_json("GET", "myself")["emailAddress"] == DEMO_EMAIL
    with pytest.raises(JiraConfigError) as caught:
        JiraApi(
            jira.url, email=DEMO_EMAIL, token=SecretStr("wrong-token-123"), policy=FAST
        )._get_json("GET", "myself")
    assert "answered 401" in str(caught.value)
    assert "wrong-token-123" not in str(caught.value)


def test_jql_rules_tag_the_issues_they_return(jira: RunningJira, factory) -> None:
    source = source_for(jira, projects=[], jql_rules={3: 'project = GLX AND labels = "billable"'})
    jira.add_issue(project="GLX", summary="Tagged", labels=["billable"])
    jira.advance_clock(120)
    ingest(factory, source)
    with factory() as session:
        tagged = {i.key: i.jql_rules for i in session.scalars(select(SourceIssue)) if i.jql_rules}
    assert tagged
    assert all(rules == [3] for rules in tagged.values())


def test_an_issue_out_of_its_rules_jql_is_read_again_and_loses_the_tag(
    jira: RunningJira, factory
) -> None:
    """A JQL rule's issue (in no configured project) loses the label the rule asks for,
    then gets a worklog: the rule's search no longer returns it, so it is read again by id
    and tagged with the rules that still take it (none); another keeps its tag."""
    rule = 'project = GLX AND labels = "billable"'
    source = source_for(jira, projects=[], jql_rules={3: rule})
    leaving = jira.add_issue(project="GLX", summary="Leaves the rule", labels=["billable"])
    staying = jira.add_issue(project="GLX", summary="Stays", labels=["billable"])
    jira.advance_clock(120)
    ingest(factory, source)
    jira._admin("PATCH", f"/issues/{leaving['key']}", json={"labels": []})
    for issue in (leaving, staying):
        jira.add_worklog(issue["key"], started=JIRA_NOW - timedelta(hours=1), seconds=1800)
    jira.advance_clock(120)
    ingest(factory, source)
    with factory() as session:
        rules = {i.key: i.jql_rules for i in session.scalars(select(SourceIssue))}
    assert rules[leaving["key"]] == []
    assert rules[staying["key"]] == [3]


def test_a_refused_jql_is_a_configuration_error(jira: RunningJira, factory) -> None:
    source = source_for(jira, projects=[], jql_rules={0: "project WAS ACME"})
    with pytest.raises(JiraConfigError, match="answered 400"):
        ingest(factory, source)


def test_data_center_uses_the_classic_search(
    jira: RunningJira, factory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A Data Center server (deploymentType "Server") has no /search/jql: the classic
    /search with startAt is used. The sandbox serves both; the deployment type is forced."""
    api = JiraApi(jira.url, email=None, token=SecretStr(DEMO_PAT), policy=FAST)
    monkeypatch.setattr(api._jira, "deploymentType", "Server")
    many = [jira.add_issue(project="ACME", summary=f"extra {n}") for n in range(120)]
    assert len(many) == 120
    jira.advance_clock(120)
    source = JiraSource("dc", api, projects=["ACME"])
    ingest(factory, source)
    assert "GET search/jql" not in api.request_counts
    assert api.request_counts["GET search"] >= 2  # more than one page of 100
    with factory() as session:
        assert (
            len(session.scalars(select(SourceIssue).where(SourceIssue.project == "ACME")).all())
            >= 130
        )


@pytest.mark.parametrize(
    ("deployment", "search"), [("cloud", "search/jql"), ("datacenter", "search")]
)
def test_the_configured_deployment_saves_the_server_info_call(
    jira: RunningJira, factory, deployment: str, search: str
) -> None:
    """With `auth` from the config the library does not ask serverInfo (one request a sync);
    the deployment alone picks the search API."""
    email = DEMO_EMAIL if deployment == "cloud" else None
    token = DEMO_API_TOKEN if deployment == "cloud" else DEMO_PAT
    api = JiraApi(jira.url, email=email, token=SecretStr(token), policy=FAST,
                  deployment=deployment)  # type: ignore[arg-type]  # fmt: skip
    ingest(factory, JiraSource("jira", api, projects=["ACME", "GLX"]))
    assert "GET /rest/api/2/serverInfo" not in jira.requests()
    assert api.request_counts[f"GET {search}"] >= 1
    assert len(entries(factory)) == 250


def test_the_next_page_is_read_while_a_batch_is_recorded(jira: RunningJira, factory) -> None:
    """Ingest records a batch while the source already asks Jira for what follows
    (worker.prefetch). Here the batch that moves the issues cursor is held until the client
    has sent another request (the worklog feed, which needs nothing from the store). Read
    page by page, that request could only come after the hold."""
    api = JiraApi(jira.url, email=DEMO_EMAIL, token=SecretStr(DEMO_API_TOKEN), policy=FAST)
    source = JiraSource("jira", api, projects=["ACME", "GLX"])
    overlapped: list[bool] = []
    batches: list[SourceBatch] = []
    real_fetch = source.fetch

    def fetch(
        cursors: Mapping[str, str], context: SourceContext | None = None
    ) -> Iterator[SourceBatch]:
        for batch in real_fetch(cursors, context):
            batches.append(batch)
            yield batch

    recording = itertools.count()  # ingest records the batches in the order they came

    def hold_the_issues_cursor(step: str) -> None:
        if step != "ingest.batch":
            return
        # the batch about to be recorded (not batches[-1]: the read-ahead may be further)
        batch = batches[next(recording)]
        if overlapped or "issues" not in batch.cursors:
            return
        sent = sum(api.request_counts.values())
        deadline = time.monotonic() + 60
        while sum(api.request_counts.values()) == sent and time.monotonic() < deadline:
            time.sleep(0.01)
        overlapped.append(sum(api.request_counts.values()) > sent)

    source.fetch = fetch  # type: ignore[method-assign]
    counts = ingest(factory, source, checkpoint=hold_the_issues_cursor)
    assert overlapped == [True]
    assert counts.new == 250  # and nothing was lost or read twice
    assert len(entries(factory)) == 250
