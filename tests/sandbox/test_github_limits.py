"""The GitHub sandbox's primary rate limit (headers, /rate_limit, exhaustion with 403 or 429,
refill at reset on the sandbox clock), conditional requests (ETag / If-None-Match,
Last-Modified / If-Modified-Since, 304s that cost nothing) and injected faults."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from sandbox.github.seed import DEMO_TOKEN, OTHER_TOKEN
from tests.support.github import GITHUB_NOW, RunningGitHub

RESET = int(GITHUB_NOW.timestamp()) + 3600
RATE_HEADERS = (
    "x-ratelimit-limit",
    "x-ratelimit-remaining",
    "x-ratelimit-used",
    "x-ratelimit-reset",
    "x-ratelimit-resource",
)


@pytest.fixture
def http(github: RunningGitHub) -> Iterator[httpx.Client]:
    with github.http() as client:
        yield client


def rate(response: httpx.Response) -> tuple[int, int, int, int]:
    h = response.headers
    return (
        int(h["x-ratelimit-limit"]),
        int(h["x-ratelimit-remaining"]),
        int(h["x-ratelimit-used"]),
        int(h["x-ratelimit-reset"]),
    )


# -- the budget -------------------------------------------------------------------------------


def test_each_request_spends_one_and_says_so(http):
    first = http.get("/repos/acme/website")
    second = http.get("/repos/acme/website/issues")
    assert rate(first) == (5000, 4999, 1, RESET)
    assert rate(second) == (5000, 4998, 2, RESET)
    assert second.headers["x-ratelimit-resource"] == "core"


@pytest.mark.parametrize(
    "path", ["/user", "/nothing", "/repos/acme/website/issues/999", "/repos/a/b/issues"]
)
def test_errors_carry_the_headers_and_count(http, path):
    response = http.get(path)
    assert response.status_code in (200, 404)
    assert all(name in response.headers for name in RATE_HEADERS)
    assert response.headers["x-github-request-id"]
    assert rate(response)[2] == 1


def test_rate_limit_endpoint_is_free_and_shaped_like_github(http):
    http.get("/user")
    body = http.get("/rate_limit").json()
    again = http.get("/rate_limit")
    core = {"limit": 5000, "used": 1, "remaining": 4999, "reset": RESET}
    assert body["resources"]["core"] == core
    assert body["rate"] == core
    assert body["resources"]["search"]["limit"] == 30
    assert {"graphql", "code_search", "integration_manifest"} <= set(body["resources"])
    assert rate(again) == (5000, 4999, 1, RESET)


def test_budgets_are_per_user(github, http):
    http.get("/user")
    with github.http(token=OTHER_TOKEN) as other:
        assert rate(other.get("/user"))[1] == 4999
    assert rate(http.get("/user"))[1] == 4998


def test_exhausted_budget_answers_403_with_githubs_body(github, http):
    github.set_budget(remaining=1)
    assert http.get("/repos/acme/api").status_code == 200
    refused = http.get("/repos/acme/api")
    assert refused.status_code == 403
    body = refused.json()
    user_id = http.get("/rate_limit").json()  # free even now
    assert body["message"].startswith("API rate limit exceeded for user ID ")
    assert "request ID" in body["message"]
    assert body["documentation_url"] == (
        "https://docs.github.com/rest/overview/rate-limits-for-the-rest-api"
    )
    assert body["status"] == "403"
    assert refused.headers["x-ratelimit-remaining"] == "0"
    assert int(refused.headers["x-ratelimit-reset"]) == RESET
    assert user_id["resources"]["core"]["remaining"] == 0
    demo = github.app.state.account("octo-demo")
    assert f"user ID {demo.id}." in body["message"]


def test_exhausted_budget_can_answer_429(github, http):
    github.set_budget(remaining=0, status=429)
    refused = http.get("/repos/acme/api/issues")
    assert refused.status_code == 429
    assert refused.json()["status"] == "429"
    assert refused.headers["x-ratelimit-remaining"] == "0"


def test_refusals_are_counted_as_github_counts_them(github, http):
    github.set_budget(limit=3)
    for _ in range(5):
        http.get("/repos/acme/api")
    assert github.budget()["budgets"]["user:octo-demo"] == {
        "limit": 3,
        "used": 5,
        "remaining": 0,
        "reset": RESET,
    }


def test_the_budget_refills_at_reset_on_the_sandbox_clock(github, http):
    github.set_budget(remaining=0)
    assert http.get("/repos/acme/api").status_code == 403
    github.advance_clock(3599)
    assert http.get("/repos/acme/api").status_code == 403
    github.advance_clock(1)
    refilled = http.get("/repos/acme/api")
    assert refilled.status_code == 200
    assert rate(refilled) == (5000, 4999, 1, RESET + 3600)


def test_explicit_reset_and_used(github, http):
    changed = github.set_budget(used=4990, reset=RESET + 60)
    assert changed["remaining"] == 10
    assert rate(http.get("/user")) == (5000, 9, 4991, RESET + 60)


def test_anonymous_budget_is_60_per_address(github):
    with github.http(token=None) as anonymous:
        github.set_budget(address="127.0.0.1", remaining=0)
        refused = anonymous.get("/repos/acme/website")
    assert refused.status_code == 403
    assert refused.json()["message"].startswith("API rate limit exceeded for 127.0.0.1.")
    assert refused.headers["x-ratelimit-limit"] == "60"


def test_other_token_budget_via_token(github):
    github.set_budget(token=OTHER_TOKEN, remaining=0)
    with github.http(token=OTHER_TOKEN) as other:
        assert other.get("/user").status_code == 403
    with github.http(token=DEMO_TOKEN) as demo:
        assert demo.get("/user").status_code == 200


# -- conditional requests ---------------------------------------------------------------------


def test_etag_and_304_cost_nothing(http, github):
    first = http.get("/repos/acme/website/issues/comments")
    etag = first.headers["etag"]
    assert etag.startswith('W/"')
    assert len(etag) == 64 + 4
    again = http.get("/repos/acme/website/issues/comments", headers={"If-None-Match": etag})
    assert again.status_code == 304
    assert again.content == b""
    assert again.headers["etag"] == etag
    assert rate(again)[1] == rate(first)[1] == 4999
    strong = etag.removeprefix("W/")
    assert http.get("/repos/acme/website/issues/comments", headers={"If-None-Match": strong})\
        .status_code == 304  # fmt: skip
    listed = f'"nope", {etag}'
    assert http.get("/repos/acme/website/issues/comments", headers={"If-None-Match": listed})\
        .status_code == 304  # fmt: skip


def test_a_change_changes_the_etag(http, github):
    etag = http.get("/repos/acme/api/issues/4/comments").headers["etag"]
    comment_id = http.get("/repos/acme/api/issues/4/comments").json()[0]["id"]
    github.edit_comment(comment_id, "edited")
    changed = http.get("/repos/acme/api/issues/4/comments", headers={"If-None-Match": etag})
    assert changed.status_code == 200
    assert changed.headers["etag"] != etag
    assert rate(changed)[2] == 3


def test_etags_are_specific_to_the_credentials(github, http):
    etag = http.get("/repos/acme/api").headers["etag"]
    with github.http(token=OTHER_TOKEN) as other:
        response = other.get("/repos/acme/api", headers={"If-None-Match": etag})
    assert response.status_code == 200


def test_last_modified_and_if_modified_since(http, github):
    first = http.get("/repos/acme/api/issues/4")
    last_modified = first.headers["last-modified"]
    assert last_modified.endswith(" GMT")
    same = http.get("/repos/acme/api/issues/4", headers={"If-Modified-Since": last_modified})
    assert same.status_code == 304
    assert rate(same)[2] == 1
    github.advance_clock(5)
    github.add_comment("acme/api", 4, "/spend 1h")
    newer = http.get("/repos/acme/api/issues/4", headers={"If-Modified-Since": last_modified})
    assert newer.status_code == 200
    assert "last-modified" not in http.get("/repos/acme/api/issues").headers


def test_if_none_match_decides_alone(http):
    first = http.get("/repos/acme/api/issues/4")
    response = http.get(
        "/repos/acme/api/issues/4",
        headers={"If-None-Match": '"other"', "If-Modified-Since": first.headers["last-modified"]},
    )
    assert response.status_code == 200


def test_conditional_request_while_exhausted_is_refused_first(github, http):
    etag = http.get("/repos/acme/api").headers["etag"]
    github.set_budget(remaining=0)
    assert http.get("/repos/acme/api", headers={"If-None-Match": etag}).status_code == 403


# -- faults -----------------------------------------------------------------------------------


def test_error500_fault_has_github_body_and_rate_headers(github, http):
    github.fault({"kind": "error500", "match": {"route": "/repos/{owner}/{repo}/issues"}})
    failed = http.get("/repos/acme/api/issues")
    assert failed.status_code == 500
    assert failed.json()["message"] == "Server Error"
    assert all(name in failed.headers for name in RATE_HEADERS)
    assert rate(failed)[2] == 0  # it never reached the API
    assert http.get("/repos/acme/api/issues").status_code == 200


@pytest.mark.parametrize("status", [403, 429])
def test_rate_limit_fault_is_a_secondary_limit(github, http, status):
    github.set_budget(status=status)
    github.fault({"kind": "rate_limit", "retry_after": 7, "count": 2})
    limited = http.get("/repos/acme/api/issues/comments")
    assert limited.status_code == status
    assert limited.headers["retry-after"] == "7"
    assert limited.json()["message"].startswith("You have exceeded a secondary rate limit")
    assert limited.headers["x-ratelimit-remaining"] == "5000"  # not the primary limit
    assert http.get("/user").status_code == status
    assert http.get("/user").status_code == 200


def test_fault_on_the_enterprise_prefix_matches_the_same_route(github, http):
    github.fault({"kind": "error500", "match": {"method": "GET", "route": "/user"}})
    assert http.get("/api/v3/user").status_code == 500
    assert github.requests() == {"GET /user": 1}


def test_paged_follow_up_requests_have_their_own_route(github, http):
    github.fault(
        {"kind": "error500", "match": {"route": "/repositories/{repository_id}/issues/comments"}}
    )
    first = http.get("/repos/acme/website/issues/comments")
    assert first.status_code == 200
    nxt = first.headers["link"].split(">")[0].lstrip("<")
    assert http.get(nxt).status_code == 500


def test_drop_after_commit_still_charges_the_budget(github, http):
    github.fault({"kind": "drop_after_commit", "match": {"route": "/user"}})
    with pytest.raises(httpx.TransportError):
        http.get("/user")
    assert rate(http.get("/repos/acme/api"))[2] == 2


def test_admin_calls_are_neither_counted_nor_stamped(github, http):
    http.get("/user")
    response = httpx.get(f"{github.url}/_sandbox/requests")
    assert "x-ratelimit-limit" not in response.headers
    assert github.requests() == {"GET /user": 1}
    assert github.budget()["budgets"]["user:octo-demo"]["used"] == 1
