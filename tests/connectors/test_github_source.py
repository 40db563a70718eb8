"""The GitHub connector over real HTTP against the GitHub sandbox, with the real PyGithub:
first and incremental syncs, edited /spend comments, pagination past several pages, rate
limits exhausted and recovered, malformed lines. Entries land in a real store. Deleted
comments and 304s need lines on open drafts: see tests/test_end_to_end_github.py."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest
from pydantic import SecretStr
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from connectors.github import GitHubApi, GitHubConfigError, GitHubRateLimited, GitHubSource
from connectors.retry import RetryPolicy
from sandbox.github.dataset import generate
from sandbox.github.seed import DEMO_TOKEN
from tests.support.billing import store
from tests.support.github import GITHUB_NOW, RunningGitHub, running_github
from worker.core.spend import parse_comment
from worker.ingest import ingest
from worker.store import Entry, EntryState, SourceIssue

BERLIN = ZoneInfo("Europe/Berlin")
REPOS = ["acme/api", "acme/website", "globex/platform"]


@pytest.fixture
def factory(tmp_path) -> Iterator[sessionmaker[Session]]:
    with store(f"sqlite:///{tmp_path / 'state.db'}") as f:
        yield f


def source_for(github: RunningGitHub, repos: list[str] = REPOS, **api: object) -> GitHubSource:
    policy = api.pop("policy", RetryPolicy(max_attempts=4, base_delay=0.001, max_wait=5.0))
    client = GitHubApi(github.url, SecretStr(DEMO_TOKEN), policy=policy, **api)  # type: ignore[arg-type]
    return GitHubSource("gh", client, repos=repos, zone=BERLIN)


def entries(factory: sessionmaker[Session]) -> dict[str, Entry]:
    with factory() as session:
        return {e.key: e for e in session.scalars(select(Entry))}


def expected_lines(github: RunningGitHub) -> tuple[int, int]:
    """(good, bad) /spend lines over every comment of the demo repos, by the parser."""
    good = bad = 0
    with github.http() as http:
        for repo in REPOS:
            url = f"/repos/{repo}/issues/comments?per_page=100"
            while url:
                response = http.get(url)
                for comment in response.json():
                    for line in parse_comment(comment["body"]):
                        good += line.error is None
                        bad += line.error is not None
                url = response.links.get("next", {}).get("url", "")
    return good, bad


def test_first_sync_reads_every_spend_line(github: RunningGitHub, factory) -> None:
    good, bad = expected_lines(github)
    counts = ingest(factory, source_for(github))
    assert (counts.new, counts.bad) == (good, bad)
    assert good > 50
    assert bad >= 2  # the seed's malformed "/spend 1h30" and "/spend 1.5h"
    stored = entries(factory)
    reasons = [e.bad_reason for e in stored.values() if e.state == EntryState.BAD]
    assert any("duration '1h30' ends in a number without unit" in str(r) for r in reasons)
    with factory() as session:
        keys = {i.key for i in session.scalars(select(SourceIssue))}
    assert {"acme/website#1", "globex/platform#1"} <= keys  # PRs and issues alike


def test_incremental_sync_sees_new_and_edited_comments(github: RunningGitHub, factory) -> None:
    source = source_for(github)
    ingest(factory, source)
    github.advance_clock(600)
    added = github.add_comment("acme/api", 1, "Reviewed.\n/spend 45m\n/spend 15m 2026-11-02")
    edited = github.add_comment("acme/api", 2, "/spend 1h\n/spend 2h")
    github.advance_clock(60)
    ingest(factory, source)
    github.advance_clock(600)
    github.edit_comment(edited["id"], "/spend 1h30m")  # one line changed, one taken out
    source.api.request_counts.clear()
    counts = ingest(factory, source)
    stored = entries(factory)
    host = source.api.host
    assert stored[f"github:{host}:comment:{added['id']}:1"].seconds == 2700
    assert stored[f"github:{host}:comment:{added['id']}:2"].seconds == 900
    assert stored[f"github:{host}:comment:{edited['id']}:1"].seconds == 5400
    assert stored[f"github:{host}:comment:{edited['id']}:2"].state == EntryState.DELETED
    assert (counts.changed, counts.deleted) == (1, 1)
    # incremental: one page of issues and one of comments per repo, nothing more
    assert source.api.request_counts == {
        "GET /repos/{owner}/{repo}/issues": 3,
        "GET /repos/{owner}/{repo}/issues/comments": 3,
    }


def test_pagination_past_several_pages(factory) -> None:
    data = generate(5, repos=1, issues=30, comments=650, anchor=GITHUB_NOW)
    with running_github(now=GITHUB_NOW, seed=data) as github:
        repo = next(iter(github.info()["repos"]))
        source = source_for(github, [repo])
        counts = ingest(factory, source)
        calls = dict(source.api.request_counts)
    assert calls["GET /repos/{owner}/{repo}/issues/comments"] == 7  # 650 comments, 100 a page
    assert counts.entries_seen > 0


def test_an_exhausted_rate_limit_is_handed_back_then_recovers(
    github: RunningGitHub, factory
) -> None:
    source = source_for(github)
    reset = int(GITHUB_NOW.timestamp()) + 3600
    github.set_budget(remaining=0, reset=reset)
    with pytest.raises(GitHubRateLimited) as caught:
        ingest(factory, source)
    assert caught.value.retry_after is not None
    assert 3500 < caught.value.retry_after <= 3601
    when = datetime.fromtimestamp(reset, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    assert "the API rate limit is exhausted" in str(caught.value)
    assert f"it resets at {when}" in str(caught.value)
    assert entries(factory) == {}
    github.advance_clock(3601)  # the budget refills at reset
    good, _ = expected_lines(github)
    assert ingest(factory, source).new == good


@pytest.mark.parametrize("status", [403, 429])
def test_a_short_rate_limit_wait_is_slept_and_the_sync_goes_on(
    github: RunningGitHub, factory, status: int
) -> None:
    waits: list[float] = []

    def sleep(seconds: float) -> None:  # waiting = letting the sandbox clock run
        waits.append(seconds)
        github.advance_clock(seconds)

    source = source_for(github, sleep=sleep)
    good, _ = expected_lines(github)
    github.set_budget(remaining=2, reset=int(GITHUB_NOW.timestamp()) + 3, status=status)
    assert ingest(factory, source).new == good
    assert waits
    assert all(w <= 5 for w in waits)


def test_a_secondary_limit_fault_with_retry_after(github: RunningGitHub, factory) -> None:
    good, _ = expected_lines(github)
    github.fault({"kind": "rate_limit", "count": 2, "retry_after": 1})
    source = source_for(github, sleep=lambda s: None)
    assert ingest(factory, source).new == good


def test_a_repo_the_token_cannot_see_is_reported_and_the_others_sync(
    github: RunningGitHub, factory
) -> None:
    counts = ingest(factory, source_for(github, ["acme/nope", "acme/api"]))
    assert counts.new > 0  # acme/api synced
    ((what, why),) = counts.unreachable
    assert what == "repository acme/nope"
    assert why.startswith("GitHub answered 404")
    assert "{owner}" not in why


def test_bad_token(github: RunningGitHub, factory) -> None:
    api = GitHubApi(github.url, SecretStr("ghp_wrong_token_1234"))
    with pytest.raises(GitHubConfigError) as caught:
        ingest(factory, GitHubSource("gh", api, repos=["acme/api"], zone=BERLIN))
    assert "answered 401: Bad credentials" in str(caught.value)
    assert "ghp_wrong_token_1234" not in str(caught.value)


def test_enterprise_base_url(github: RunningGitHub, factory) -> None:
    api = GitHubApi(github.enterprise_url, SecretStr(DEMO_TOKEN))
    counts = ingest(factory, GitHubSource("ghe", api, repos=["acme/api"], zone=BERLIN))
    assert counts.new > 0
    assert api.host == github.url.split("://")[1]


def test_an_issue_transferred_to_a_configured_repository_keeps_the_configs_spelling(
    github: RunningGitHub,
) -> None:
    """GitHub answers a transferred issue's old address with 301 to its new one; the issue
    is recorded in its new repository under the name the config gives it (GitHub's names
    are case-insensitive), so the rule naming that repository still takes it."""
    source = source_for(github, repos=["acme/website", "ACME/Api"])
    try:
        issues = github.app.state.repo_issues(github.app.state.repo("acme/website").id)
        # (number, id) before the transfers: the sandbox's issue objects move with them
        (number, issue_id), (hidden, hidden_id) = [(i.number, i.id) for i in issues if not i.is_pr][
            :2
        ]
        github._admin("POST", f"/issues/acme/website/{number}/transfer", json={"repo": "acme/api"})
        moved = source._whereabouts("acme/website", number, str(issue_id))
        assert moved is not None
        assert (moved.issue_id, moved.project) == (str(issue_id), "ACME/Api")
        assert moved.key.startswith("ACME/Api#")
        # out of view (a private repository the token cannot see) is not a move
        github.add_repo("acme/vault", private=True)
        github._admin(
            "POST", f"/issues/acme/website/{hidden}/transfer", json={"repo": "acme/vault"}
        )
        assert source._whereabouts("acme/website", hidden, str(hidden_id)) is None
    finally:
        source.close()
