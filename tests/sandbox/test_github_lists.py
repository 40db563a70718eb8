"""The GitHub sandbox's lists over real HTTP: issues (state, since, sort, direction, labels,
pull requests in the list), repository-wide and per-issue comments (default order, sort,
since), paging (defaults, the per_page cap, ``Link`` headers across pages) and how admin
changes show up in them."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from tests.support.github import GITHUB_NOW, RunningGitHub

LINK = re.compile(r'<([^>]+)>; rel="(\w+)"')


@pytest.fixture
def http(github: RunningGitHub) -> Iterator[httpx.Client]:
    with github.http() as client:
        yield client


def links(response: httpx.Response) -> dict[str, str]:
    header = response.headers.get("link")
    return {rel: url for url, rel in LINK.findall(header)} if header else {}


def follow(client: httpx.Client, path: str, **params: Any) -> tuple[list[Any], list[str]]:
    """Every item of a list, following ``rel="next"``; also the URLs requested."""
    response = client.get(path, params=params)
    items, urls = [], [str(response.url)]
    while True:
        assert response.status_code == 200, response.text
        items += response.json()
        nxt = links(response).get("next")
        if nxt is None:
            return items, urls
        urls.append(nxt)
        response = client.get(nxt)


def ts(value: str) -> datetime:
    return datetime.fromisoformat(value)


# -- issues -----------------------------------------------------------------------------------


def test_issues_default_to_open_newest_created_first(http):
    body = http.get("/repos/acme/website/issues").json()
    assert {issue["state"] for issue in body} == {"open"}
    assert len(body) == 7
    created = [(ts(i["created_at"]), i["id"]) for i in body]
    assert created == sorted(created, reverse=True)


def test_issue_states(http):
    closed = http.get("/repos/acme/website/issues", params={"state": "closed"}).json()
    every = http.get("/repos/acme/website/issues", params={"state": "all"}).json()
    assert sorted(i["number"] for i in closed) == [1, 3, 7]
    assert sorted(i["number"] for i in every) == list(range(1, 11))


def test_pull_requests_are_in_the_issue_list(http):
    every = http.get("/repos/acme/website/issues", params={"state": "all"}).json()
    prs = sorted(i["number"] for i in every if "pull_request" in i)
    assert prs == [3, 6, 9]


@pytest.mark.parametrize("sort", ["created", "updated", "comments"])
@pytest.mark.parametrize("direction", ["asc", "desc"])
def test_issue_sort_and_direction(http, sort, direction):
    body = http.get(
        "/repos/acme/api/issues", params={"state": "all", "sort": sort, "direction": direction}
    ).json()
    field = {"created": "created_at", "updated": "updated_at", "comments": "comments"}[sort]
    keys = [i[field] for i in body]
    assert keys == sorted(keys, reverse=direction == "desc")
    assert len(body) == 8


def test_sort_without_direction_is_descending(http):
    body = http.get("/repos/acme/api/issues", params={"state": "all", "sort": "updated"}).json()
    updated = [i["updated_at"] for i in body]
    assert updated == sorted(updated, reverse=True)


def test_since_means_updated_at_or_after(http):
    every = http.get("/repos/acme/api/issues", params={"state": "all"}).json()
    pivot = sorted(i["updated_at"] for i in every)[3]
    body = http.get("/repos/acme/api/issues", params={"state": "all", "since": pivot}).json()
    assert sorted(i["updated_at"] for i in body) == sorted(
        i["updated_at"] for i in every if i["updated_at"] >= pivot
    )
    assert len(body) == 5
    offset = ts(pivot).astimezone(tz=None).isoformat()  # the same instant with an offset
    same = http.get("/repos/acme/api/issues", params={"state": "all", "since": offset}).json()
    assert len(same) == 5


def test_labels_filter_needs_every_label(http):
    bugs = http.get("/repos/acme/api/issues", params={"state": "all", "labels": "bug"}).json()
    assert sorted(i["number"] for i in bugs) == [1, 3, 7]
    both = http.get("/repos/acme/api/issues", params={"state": "all", "labels": "BUG,ci"}).json()
    assert [i["number"] for i in both] == [7]


def test_a_new_comment_moves_the_issue_into_since(github, http):
    since = GITHUB_NOW.isoformat().replace("+00:00", "Z")
    assert http.get("/repos/acme/api/issues", params={"state": "all", "since": since}).json() == []
    github.add_comment("acme/api", 2, "More work.\n/spend 1h")
    body = http.get("/repos/acme/api/issues", params={"state": "all", "since": since}).json()
    assert [i["number"] for i in body] == [2]
    assert body[0]["updated_at"] == "2026-11-20T09:00:00Z"


# -- paging -----------------------------------------------------------------------------------


def test_default_page_is_30_and_per_page_is_capped_at_100(github, http):
    default = http.get("/repos/acme/website/issues/comments")
    assert len(default.json()) == 30
    for index in range(45):  # acme/website holds 63 comments; make it more than 100
        github.app.state.add_comment("acme/website", 2, user="octo-demo", body=f"note {index}")
    capped = http.get("/repos/acme/website/issues/comments", params={"per_page": 500})
    assert len(capped.json()) == 100
    assert parse_qs(urlsplit(links(capped)["next"]).query)["per_page"] == ["500"]
    rest = http.get(links(capped)["next"]).json()
    assert len(rest) == 8


def test_link_header_across_pages(github, http):
    first = http.get("/repos/acme/website/issues/comments", params={"per_page": 10})
    repo_id = http.get("/repos/acme/website").json()["id"]
    rels = links(first)
    assert list(rels) == ["next", "last"]  # no prev/first on the first page
    base = f"{github.url}/repositories/{repo_id}/issues/comments"
    assert rels["next"] == f"{base}?per_page=10&page=2"
    assert rels["last"] == f"{base}?per_page=10&page=7"
    middle = http.get(rels["next"])
    assert list(links(middle)) == ["prev", "next", "last", "first"]
    assert links(middle)["prev"] == f"{base}?per_page=10&page=1"
    assert links(middle)["first"] == f"{base}?per_page=10&page=1"
    last = http.get(rels["last"])
    assert list(links(last)) == ["prev", "first"]
    assert len(last.json()) == 3
    beyond = http.get(f"{base}?per_page=10&page=9")
    assert beyond.status_code == 200
    assert beyond.json() == []


def test_following_links_gives_every_item_once_in_order(http):
    items, urls = follow(
        http,
        "/repos/acme/website/issues/comments",
        sort="updated",
        direction="asc",
        since="2026-09-01T00:00:00Z",
        per_page=20,
    )
    assert len(urls) == 4
    assert all("since=2026-09-01T00%3A00%3A00Z" in url for url in urls[1:])
    ids = [c["id"] for c in items]
    assert len(ids) == len(set(ids)) == 63
    keys = [(c["updated_at"], c["id"]) for c in items]
    assert keys == sorted(keys)


def test_no_link_header_when_everything_fits(http):
    response = http.get("/repos/acme/website/issues", params={"state": "all"})
    assert "link" not in response.headers


def test_links_keep_the_enterprise_prefix(github, http):
    response = http.get("/api/v3/repos/acme/website/issues/comments")
    assert links(response)["next"].startswith(f"{github.url}/api/v3/repositories/")


def test_issue_pages_follow_through_the_repository_id_route(http):
    items, urls = follow(http, "/repos/acme/website/issues", state="all", per_page=3)
    assert [i["number"] for i in items] == list(range(10, 0, -1))
    assert len(urls) == 4
    assert all("/repositories/" in url for url in urls[1:])


# -- comments ---------------------------------------------------------------------------------


def test_repo_comments_default_to_ascending_id(http):
    items, _ = follow(http, "/repos/acme/api/issues/comments", per_page=100)
    ids = [c["id"] for c in items]
    assert ids == sorted(ids)
    assert len(ids) == 49


def test_direction_is_ignored_without_sort(http):
    body = http.get("/repos/acme/api/issues/comments", params={"direction": "desc"}).json()
    ids = [c["id"] for c in body]
    assert ids == sorted(ids)


@pytest.mark.parametrize("sort", ["created", "updated"])
def test_repo_comments_sort_and_direction(http, sort):
    asc = http.get(
        "/repos/acme/api/issues/comments",
        params={"sort": sort, "direction": "asc", "per_page": 100},
    ).json()
    desc = http.get(
        "/repos/acme/api/issues/comments",
        params={"sort": sort, "direction": "desc", "per_page": 100},
    ).json()
    keys = [(c[f"{sort}_at"], c["id"]) for c in asc]
    assert keys == sorted(keys)
    assert [c["id"] for c in desc] == [c["id"] for c in reversed(asc)]
    unspecified = http.get(
        "/repos/acme/api/issues/comments", params={"sort": sort, "per_page": 100}
    ).json()
    assert [c["id"] for c in unspecified] == [c["id"] for c in asc]


def test_seeded_edits_make_updated_order_differ_from_created(http):
    items, _ = follow(http, "/repos/acme/website/issues/comments", per_page=100)
    edited = [c for c in items if c["updated_at"] != c["created_at"]]
    assert edited, "the demo data has edited comments"
    by_updated = http.get(
        "/repos/acme/website/issues/comments", params={"sort": "updated", "per_page": 100}
    ).json()
    assert [c["id"] for c in by_updated] != [c["id"] for c in items]


def test_repo_comments_since(http):
    everything, _ = follow(http, "/repos/acme/api/issues/comments", per_page=100)
    pivot = sorted(c["updated_at"] for c in everything)[40]
    body = http.get(
        "/repos/acme/api/issues/comments", params={"since": pivot, "per_page": 100}
    ).json()
    assert {c["id"] for c in body} == {c["id"] for c in everything if c["updated_at"] >= pivot}


def test_issue_comments_ascending_and_since(http):
    body = http.get("/repos/acme/api/issues/4/comments").json()
    assert len(body) == 11
    ids = [c["id"] for c in body]
    assert ids == sorted(ids)
    assert {c["issue_url"].rsplit("/", 1)[1] for c in body} == {"4"}
    pivot = body[6]["updated_at"]
    later = http.get("/repos/acme/api/issues/4/comments", params={"since": pivot}).json()
    assert {c["id"] for c in later} == {c["id"] for c in body if c["updated_at"] >= pivot}
    paged = http.get("/repos/acme/api/issues/4/comments", params={"per_page": 5})
    assert len(paged.json()) == 5
    assert "/issues/4/comments?per_page=5&page=3" in links(paged)["last"]


def test_pr_comments_link_to_the_pull_request_page(http, github):
    body = http.get("/repos/acme/website/issues/3/comments").json()
    assert body
    assert all("/acme/website/pull/3#issuecomment-" in c["html_url"] for c in body)


# -- admin changes as the API shows them -------------------------------------------------------


def test_editing_a_comment_moves_it_but_not_its_issue(github, http):
    first = http.get("/repos/acme/api/issues/4/comments").json()[0]
    before = http.get("/repos/acme/api/issues/4").json()
    github.advance_clock(3600)
    edited = github.edit_comment(first["id"], "Corrected.\n/spend 2h")
    assert edited["updated_at"] == "2026-11-20T10:00:00Z"
    again = http.get(f"/repos/acme/api/issues/comments/{first['id']}").json()
    assert again["body"] == "Corrected.\n/spend 2h"
    assert again["updated_at"] == "2026-11-20T10:00:00Z"
    assert again["created_at"] == first["created_at"]
    after = http.get("/repos/acme/api/issues/4").json()
    assert after["updated_at"] == before["updated_at"]
    recent = http.get(
        "/repos/acme/api/issues/comments",
        params={"sort": "updated", "direction": "asc", "since": "2026-11-20T09:30:00Z"},
    ).json()
    assert [c["id"] for c in recent] == [first["id"]]


def test_deleting_a_comment_leaves_no_trace(github, http):
    comments = http.get("/repos/acme/api/issues/4/comments").json()
    victim = comments[3]["id"]
    issue_before = http.get("/repos/acme/api/issues/4").json()
    github.advance_clock(60)
    github.delete_comment(victim)
    assert victim not in [c["id"] for c in http.get("/repos/acme/api/issues/4/comments").json()]
    everything, _ = follow(http, "/repos/acme/api/issues/comments", per_page=100)
    assert victim not in [c["id"] for c in everything]
    assert http.get(f"/repos/acme/api/issues/comments/{victim}").status_code == 404
    issue_after = http.get("/repos/acme/api/issues/4").json()
    assert issue_after["updated_at"] == issue_before["updated_at"]
    assert issue_after["comments"] == issue_before["comments"] - 1


def test_adding_issues_prs_and_comments(github, http):
    created = github.add_issue("acme/api", "Log rotation", labels=["ops"], is_pr=True)
    assert created["number"] == 9
    comment = github.add_comment(
        "acme/api",
        9,
        "Done.\n/spend 30m",
        user="bob-ops",
        created_at=GITHUB_NOW - timedelta(hours=2),
    )
    assert comment["created_at"] == "2026-11-20T07:00:00Z"
    issue = http.get("/repos/acme/api/issues/9").json()
    assert issue["pull_request"]["url"].endswith("/repos/acme/api/pulls/9")
    assert [label["name"] for label in issue["labels"]] == ["ops"]
    assert issue["comments"] == 1
    assert issue["updated_at"] == "2026-11-20T09:00:00Z"  # created now; the comment is older
    listed = http.get("/repos/acme/api/issues/9/comments").json()
    assert listed[0]["user"]["login"] == "bob-ops"
    assert listed[0]["id"] > max(
        c["id"] for c in follow(http, "/repos/acme/website/issues/comments", per_page=100)[0]
    )


def test_closing_and_relabelling_an_issue(github, http):
    github.advance_clock(120)
    github.update_issue("acme/api", 2, state="closed", labels=["done"], title="Paginate orders")
    body = http.get("/repos/acme/api/issues/2").json()
    assert body["state"] == "closed"
    assert body["closed_at"] == body["updated_at"] == "2026-11-20T09:02:00Z"
    assert body["title"] == "Paginate orders"
    assert [label["name"] for label in body["labels"]] == ["done"]
    open_numbers = [i["number"] for i in http.get("/repos/acme/api/issues").json()]
    assert 2 not in open_numbers
    github.update_issue("acme/api", 2, state="open")
    reopened = http.get("/repos/acme/api/issues/2").json()
    assert reopened["closed_at"] is None
    assert reopened["state_reason"] == "reopened"


def test_sandbox_timestamps_are_utc_seconds(http):
    body = http.get("/repos/acme/api/issues/comments").json()
    for comment in body:
        moment = ts(comment["created_at"])
        assert moment.tzinfo == UTC or moment.utcoffset() == timedelta(0)
        assert moment < GITHUB_NOW - timedelta(minutes=1)
