"""The GitHub sandbox's admin API (loopback ``/_sandbox``), its demo data (credentials,
repositories, the ``/spend`` cases of SPEC §4) and the generated datasets."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from sandbox.github import GitHubState, create_app, generate, seed_demo
from sandbox.github.seed import DEMO_COMMENTS, DEMO_ISSUES, DEMO_TOKEN, OTHER_TOKEN
from tests.support.github import GITHUB_NOW, RunningGitHub, running_github
from worker.core.spend import parse_comment


def admin(github: RunningGitHub, method: str, path: str, **kwargs) -> httpx.Response:
    return httpx.request(method, f"{github.url}/_sandbox{path}", timeout=10, **kwargs)


# -- admin API --------------------------------------------------------------------------------


def test_info_names_the_credentials_and_data(github):
    info = github.info()
    assert info["token"] == DEMO_TOKEN
    assert info["otherToken"] == OTHER_TOKEN
    assert info["repos"] == {"acme/website": False, "acme/api": False, "globex/platform": True}
    assert info["issues"] == len(DEMO_ISSUES) == 25
    assert info["comments"] == DEMO_COMMENTS == 150
    assert info["anchor"] == GITHUB_NOW.isoformat()


def test_clock_freeze_advance_and_real(github):
    assert github.clock() == {
        "now": "2026-11-20T09:00:00Z",
        "nowMs": int(GITHUB_NOW.timestamp()) * 1000,
        "epoch": int(GITHUB_NOW.timestamp()),
        "frozen": True,
    }
    assert github.advance_clock(90)["now"] == "2026-11-20T09:01:30Z"
    later = datetime(2026, 12, 1, tzinfo=UTC)
    assert github.freeze_clock(later)["now"] == "2026-12-01T00:00:00Z"
    real = admin(github, "POST", "/clock", json={"real": True}).json()["data"]
    assert real["frozen"] is False
    github.reset()
    assert github.clock()["now"] == "2026-11-20T09:00:00Z"


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("POST", "/clock", {"now": "2026-11-20T09:00:00"}),  # naive
        ("POST", "/clock", {"advance": 1, "real": True}),
        ("POST", "/issues", {"repo": "acme/api"}),
        ("POST", "/issues", {"repo": "acme/api", "title": "x", "bogus": 1}),
        ("POST", "/comments", {"repo": "acme/api", "issue": "4", "body": "x"}),
        ("POST", "/budget", {"status": 500}),
        ("POST", "/budget", {"login": "octo-demo", "token": DEMO_TOKEN}),
        ("POST", "/budget", {"remaining": 6000}),
        ("POST", "/repos", {"owner": "acme", "name": "website"}),  # exists
    ],
)
def test_admin_refuses_bad_bodies(github, method, path, body):
    response = admin(github, method, path, json=body)
    assert response.status_code == 400, response.text
    assert response.json()["error"] == "BadRequest"


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("POST", "/issues", {"repo": "acme/nothing", "title": "x"}),
        ("POST", "/comments", {"repo": "acme/api", "issue": 99, "body": "x"}),
        ("PATCH", "/comments/1", {"body": "x"}),
        ("DELETE", "/comments/1", None),
        ("PATCH", "/issues/acme/api/99", {"title": "x"}),
        ("POST", "/issues", {"repo": "acme/api", "title": "x", "user": "ghost-user"}),
        ("POST", "/budget", {"token": "nope"}),
    ],
)
def test_admin_404s(github, method, path, body):
    response = admin(github, method, path, json=body) if body else admin(github, method, path)
    assert response.status_code == 404, response.text


def test_admin_answers_loopback_only(github):
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "method": "GET",
        "path": "/_sandbox/info",
        "headers": [],
        "query_string": b"",
        "client": ("203.0.113.9", 5000),
        "server": ("127.0.0.1", 80),
        "scheme": "http",
        "root_path": "",
        "http_version": "1.1",
    }
    asyncio.run(github.app(scope, receive, send))
    assert sent[0]["status"] == 403


def test_new_user_repo_and_token(github):
    github.add_user("dana", name="Dana Dev", token="ghp_dana")
    github.add_repo("acme/secret", private=True, members=["dana"])
    github.add_issue("acme/secret", "Hidden work", user="dana")
    github.add_comment("acme/secret", 1, "/spend 1h", user="dana")
    with github.http(token="ghp_dana") as dana:
        assert dana.get("/user").json()["login"] == "dana"
        body = dana.get("/repos/acme/secret/issues/comments").json()
        assert [c["user"]["login"] for c in body] == ["dana"]
    with github.http() as demo:
        assert demo.get("/repos/acme/secret").status_code == 404


def test_reset_restores_the_seed_with_the_same_ids(github):
    with github.http() as http:
        before = http.get("/repos/acme/api/issues/comments", params={"per_page": 100}).json()
        github.delete_comment(before[0]["id"])
        github.add_issue("acme/api", "temporary")
        github.set_budget(remaining=0)
        github.fault({"kind": "error500"})
        github.reset()
        after = http.get("/repos/acme/api/issues/comments", params={"per_page": 100}).json()
    assert after == before
    assert github.requests() == {"GET /repos/{owner}/{repo}/issues/comments": 1}


# -- demo data --------------------------------------------------------------------------------


def demo_state() -> GitHubState:
    state = GitHubState(now=GITHUB_NOW)
    seed_demo(state)
    return state


def all_comments(state: GitHubState):
    return [c for repo in state.repos() for c in state.repo_comments(repo.id)]


def test_demo_data_is_deterministic():
    first, second = demo_state(), demo_state()
    assert [(c.id, c.body, c.created, c.updated) for c in all_comments(first)] == [
        (c.id, c.body, c.created, c.updated) for c in all_comments(second)
    ]


def test_demo_data_timing():
    state = demo_state()
    comments = all_comments(state)
    assert len(comments) == DEMO_COMMENTS
    latest = int((GITHUB_NOW - timedelta(minutes=2)).timestamp())
    earliest = int((GITHUB_NOW - timedelta(weeks=9)).timestamp())
    assert all(earliest <= c.created <= c.updated <= latest for c in comments)
    by_id = sorted(comments, key=lambda c: c.id)
    assert [c.created for c in by_id] == sorted(c.created for c in by_id)  # ids grow with time
    assert sum(c.updated > c.created for c in comments) >= 5
    assert {c.user for c in comments} == {"octo-demo", "alice-dev", "bob-ops", "carol-qa"}
    globex = state.repo("globex/platform")
    assert "carol-qa" not in {c.user for c in state.repo_comments(globex.id)}


def test_demo_data_has_the_spend_cases_of_the_spec():
    bodies = [c.body for c in all_comments(demo_state())]
    parsed = [parse_comment(body) for body in bodies]
    entries = [line for lines in parsed for line in lines if line.error is None]
    bad = [line for lines in parsed for line in lines if line.error is not None]
    assert sum(1 for lines in parsed if any(line.error is None for line in lines)) >= 100
    assert any(line.seconds is not None and line.seconds < 0 for line in entries)
    assert any(line.day is not None for line in entries)
    assert any(line.seconds == 0 for line in entries)
    assert any(sum(line.error is None for line in lines) >= 3 for lines in parsed)
    assert {line.text for line in bad} >= {"/spend 1h30", "/spend 1.5h", "/spend 1h 30m"}
    assert any("```\r\n/spend 1h" in b or "```\n/spend 1h" in b for b in bodies)
    assert any(b.startswith("> /spend 2h") for b in bodies)
    assert any("`/spend 1h`" in b for b in bodies)
    assert any("\r\n" in b for b in bodies)
    assert any("/spend" not in b for b in bodies)


def test_demo_issues_and_labels():
    state = demo_state()
    issues = [i for repo in state.repos() for i in state.repo_issues(repo.id)]
    assert len(issues) == 25
    assert sum(i.is_pr for i in issues) == 7
    assert sum("internal" in i.labels for i in issues) == 4
    assert {i.state for i in issues} == {"open", "closed"}


# -- generated datasets -----------------------------------------------------------------------


def test_generated_dataset_scales_and_is_deterministic():
    started = time.perf_counter()
    data = generate(7, repos=5, issues=200, comments=5000, anchor=GITHUB_NOW)
    state = GitHubState(now=GITHUB_NOW)
    info = data.load(state)
    assert time.perf_counter() - started < 5
    assert state.comment_total() == 5000 == info.comments
    assert info.issues == 200
    assert list(info.repos) == [
        "acme/website", "acme/api", "globex/platform", "acme/service-04", "globex/service-05",
    ]  # fmt: skip
    again = GitHubState(now=GITHUB_NOW)
    generate(7, repos=5, issues=200, comments=5000, anchor=GITHUB_NOW).load(again)
    assert [(c.id, c.body) for c in all_comments(state)] == [
        (c.id, c.body) for c in all_comments(again)
    ]
    other = GitHubState(now=GITHUB_NOW)
    generate(8, repos=5, issues=200, comments=5000, anchor=GITHUB_NOW).load(other)
    assert [c.body for c in all_comments(other)] != [c.body for c in all_comments(state)]


def test_generated_dataset_served_and_paged():
    with running_github(now=GITHUB_NOW, seed=generate(3, issues=40, comments=450)) as github:
        with github.http() as http:
            first = http.get("/repos/acme/website/issues/comments", params={"per_page": 100})
            assert first.status_code == 200
            assert 'rel="last"' in first.headers["link"]
        assert github.info()["generated"]["seed"] == 3


def test_generate_refuses_negative_sizes():
    with pytest.raises(ValueError, match=">= 0"):
        generate(1, issues=-1, comments=0)


def test_create_app_without_seed_uses_the_state_as_is():
    state = GitHubState(now=GITHUB_NOW)
    app = create_app(state, seed=None)
    assert app.info_json() == {}
    assert state.repos() == []
