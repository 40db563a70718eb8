"""The real PyGithub (2.10) against the sandbox, unchanged, configured as billsync uses it
(``per_page=100, seconds_between_requests=0, retry=None``; smaller pages where a test needs
several): user, repository, issue and comment lists following ``Link`` headers through
several pages, ``since``, rate limits, conditional requests and the exceptions it raises."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from github import (
    BadCredentialsException,
    Github,
    GithubException,
    RateLimitExceededException,
    UnknownObjectException,
)

from sandbox.github.seed import DEMO_LOGIN, OTHER_TOKEN
from tests.support.github import GITHUB_NOW, RunningGitHub


@pytest.fixture
def gh(github: RunningGitHub) -> Iterator[Github]:
    client = github.pygithub()
    yield client
    client.close()


@pytest.fixture
def small_pages(github: RunningGitHub) -> Iterator[Github]:
    """Pages of 10, so the demo data spans several."""
    client = github.pygithub(per_page=10)
    yield client
    client.close()


def test_get_user(gh, github):
    user = gh.get_user()
    assert user.login == DEMO_LOGIN
    assert user.name == "Octo Demo"
    assert user.type == "User"
    assert github.requests() == {"GET /user": 1}
    assert gh.rate_limiting == (4999, 5000)
    assert gh.rate_limiting_resettime == int(GITHUB_NOW.timestamp()) + 3600


def test_get_repo(gh, github):
    repo = gh.get_repo("acme/website")
    assert repo.full_name == "acme/website"
    assert repo.private is False
    assert repo.owner.login == "acme"
    assert repo.url == f"{github.url}/repos/acme/website"
    assert github.requests() == {"GET /repos/{owner}/{repo}": 1}


def test_get_issues_since_sorted_by_updated_ascending(small_pages, github):
    repo = small_pages.get_repo("acme/api")
    github.clear_requests()
    since = GITHUB_NOW - timedelta(weeks=10)
    issues = list(repo.get_issues(state="all", since=since, sort="updated", direction="asc"))
    assert len(issues) == 8
    updated = [i.updated_at for i in issues]
    assert updated == sorted(updated)
    assert {i.number for i in issues if i.pull_request is not None} == {3, 6}


def test_get_issues_pages_of_three(github):
    client = github.pygithub(per_page=3)
    try:
        repo = client.get_repo("acme/website")
        github.clear_requests()
        issues = list(repo.get_issues(state="all", sort="updated", direction="asc"))
    finally:
        client.close()
    assert sorted(i.number for i in issues) == list(range(1, 11))
    assert github.requests() == {
        "GET /repos/{owner}/{repo}/issues": 1,
        "GET /repositories/{repository_id}/issues": 3,
    }


def test_get_issues_comments_paginates_and_sorts_by_updated(small_pages, github):
    repo = small_pages.get_repo("acme/website")
    github.clear_requests()
    since = datetime(2026, 9, 1, tzinfo=UTC)
    comments = list(repo.get_issues_comments(sort="updated", direction="asc", since=since))
    assert len(comments) == 63
    assert len({c.id for c in comments}) == 63
    keys = [(c.updated_at, c.id) for c in comments]
    assert keys == sorted(keys)
    assert all(c.updated_at >= since for c in comments)
    assert github.requests() == {
        "GET /repos/{owner}/{repo}/issues/comments": 1,
        "GET /repositories/{repository_id}/issues/comments": 6,
    }
    first = comments[0]
    assert first.user.login in ("octo-demo", "alice-dev", "bob-ops", "carol-qa")
    assert first.body
    assert first.issue_url.startswith(f"{github.url}/repos/acme/website/issues/")


def test_incremental_pull_sees_only_what_changed(gh, github):
    repo = gh.get_repo("acme/api")
    everything = list(repo.get_issues_comments(sort="updated", direction="asc"))
    cursor = everything[-1].updated_at
    github.advance_clock(600)
    edited = everything[0]
    github.edit_comment(edited.id, "Re-estimated.\n/spend 3h")
    added = github.add_comment("acme/api", 5, "Interviews.\n/spend 2h")
    changed = list(repo.get_issues_comments(sort="updated", direction="asc", since=cursor))
    assert [c.id for c in changed][-2:] == [edited.id, added["id"]]
    assert changed[-2].body == "Re-estimated.\n/spend 3h"


def test_issue_get_comments_with_since(gh):
    issue = gh.get_repo("acme/api").get_issue(4)
    comments = list(issue.get_comments())
    assert len(comments) == 11 == issue.comments
    pivot = comments[5].updated_at
    later = list(issue.get_comments(since=pivot))
    assert {c.id for c in later} == {c.id for c in comments if c.updated_at >= pivot}


def test_total_count_and_reversed_use_the_last_link(small_pages):
    repo = small_pages.get_repo("acme/website")
    comments = repo.get_issues_comments()
    assert comments.totalCount == 63
    forwards = [c.id for c in repo.get_issues_comments()]
    backwards = [c.id for c in repo.get_issues_comments().reversed]
    assert backwards == forwards[::-1]


def test_get_rate_limit(gh):
    gh.get_user().login  # noqa: B018 (one counted request)
    limits = gh.get_rate_limit()
    assert limits.resources.core.limit == 5000
    assert limits.resources.core.remaining == 4999
    assert limits.resources.core.used == 1
    assert limits.resources.core.reset == GITHUB_NOW + timedelta(hours=1)
    assert limits.rate.remaining == 4999
    assert limits.resources.search.limit == 30


def test_enterprise_base_url(github):
    client = github.pygithub(base_url=github.enterprise_url, per_page=10)
    try:
        repo = client.get_repo("acme/website")
        assert repo.url == f"{github.url}/api/v3/repos/acme/website"
        comments = list(repo.get_issues_comments(sort="updated", direction="asc"))
        assert len(comments) == 63
        assert client.get_user().login == DEMO_LOGIN
    finally:
        client.close()


def test_conditional_update_returns_false_and_costs_nothing(gh, github):
    repo = gh.get_repo("acme/api")
    assert repo.update() is False
    assert gh.rate_limiting[0] == 4999
    issue = repo.get_issue(4)
    github.advance_clock(60)
    github.update_issue("acme/api", 4, title="Document the webhook signature")
    assert issue.update() is True
    assert issue.title == "Document the webhook signature"


def test_bad_credentials(github):
    client = github.pygithub(token="ghp_wrong")
    try:
        with pytest.raises(BadCredentialsException) as caught:
            client.get_user().login  # noqa: B018
    finally:
        client.close()
    assert caught.value.status == 401


def test_private_repository_is_unknown_to_other_users(github):
    client = github.pygithub(token=OTHER_TOKEN)
    try:
        with pytest.raises(UnknownObjectException):
            client.get_repo("globex/platform")
        assert client.get_repo("acme/api").full_name == "acme/api"
    finally:
        client.close()


def test_primary_limit_403_raises_rate_limit_exceeded(gh, github):
    github.set_budget(remaining=0)
    with pytest.raises(RateLimitExceededException) as caught:
        gh.get_repo("acme/api")
    assert caught.value.status == 403
    assert (caught.value.headers or {})["x-ratelimit-remaining"] == "0"
    assert gh.rate_limiting == (0, 5000)


def test_primary_limit_429_is_a_plain_github_exception(gh, github):
    github.set_budget(remaining=0, status=429)
    with pytest.raises(GithubException) as caught:
        gh.get_repo("acme/api")
    assert caught.value.status == 429
    assert not isinstance(caught.value, RateLimitExceededException)


def test_secondary_limit_fault_raises_rate_limit_exceeded(gh, github):
    github.fault({"kind": "rate_limit", "retry_after": 30})
    with pytest.raises(RateLimitExceededException) as caught:
        gh.get_repo("acme/api")
    assert (caught.value.headers or {})["retry-after"] == "30"
    assert gh.get_repo("acme/api").full_name == "acme/api"


def test_server_error_in_the_middle_of_paging(small_pages, github):
    repo = small_pages.get_repo("acme/website")
    github.fault(
        {"kind": "error500", "match": {"route": "/repositories/{repository_id}/issues/comments"}}
    )
    pages = repo.get_issues_comments()
    with pytest.raises(GithubException) as caught:
        list(pages)
    assert caught.value.status == 500


def test_a_transferred_issue_answers_301_and_the_library_follows_it(gh, github):
    """GitHub: "Get an issue" answers 301 Moved Permanently for a transferred issue, and 404
    when the caller cannot see where it went. The issue keeps its id and comments."""
    github.add_repo("acme/archive")
    github.add_repo("acme/vault", private=True)
    website = gh.get_repo("acme/website")
    issue = next(i for i in website.get_issues(state="all") if i.pull_request is None)
    comments = [c.id for c in issue.get_comments()]
    moved = github._admin(
        "POST", f"/issues/acme/website/{issue.number}/transfer", json={"repo": "acme/archive"}
    )
    with github.http() as http:
        raw = http.get(f"/repos/acme/website/issues/{issue.number}")
        assert raw.status_code == 301
        archive = gh.get_repo("acme/archive")
        target = f"{github.url}/repositories/{archive.id}/issues/{moved['number']}"
        assert raw.headers["location"] == target
        assert raw.json()["message"] == "Moved Permanently"
        assert raw.json()["url"] == target
    followed = website.get_issue(issue.number)  # PyGithub follows a same-host 301
    assert followed.id == issue.id
    assert followed.repository_url.endswith("/repos/acme/archive")
    assert [c.id for c in followed.get_comments()] == comments
    assert issue.number not in [i.number for i in website.get_issues(state="all")]

    other = next(
        i for i in website.get_issues(state="all") if i.pull_request is None and i.id != issue.id
    )
    github._admin(
        "POST", f"/issues/acme/website/{other.number}/transfer", json={"repo": "acme/vault"}
    )
    with github.http(token=OTHER_TOKEN) as http:
        assert http.get(f"/repos/acme/website/issues/{other.number}").status_code == 404
    carol = github.pygithub(OTHER_TOKEN)
    try:
        with pytest.raises(UnknownObjectException):  # carol cannot see acme/vault
            carol.get_repo("acme/website").get_issue(other.number)
    finally:
        carol.close()
