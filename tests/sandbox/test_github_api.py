"""The GitHub sandbox over real HTTP with httpx: users, repositories, issue and comment
objects, auth, visibility, the GitHub Enterprise ``/api/v3`` prefix and error bodies."""

from __future__ import annotations

import base64
import re
from collections.abc import Iterator

import httpx
import pytest

from sandbox.github.seed import DEMO_LOGIN, DEMO_TOKEN, OTHER_LOGIN, OTHER_TOKEN
from tests.support.github import RunningGitHub

TIMESTAMP = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")
BAD_CREDENTIALS = {
    "message": "Bad credentials",
    "documentation_url": "https://docs.github.com/rest",
    "status": "401",
}


@pytest.fixture
def http(github: RunningGitHub) -> Iterator[httpx.Client]:
    with github.http() as client:
        yield client


@pytest.fixture
def anonymous(github: RunningGitHub) -> Iterator[httpx.Client]:
    with github.http(token=None) as client:
        yield client


def test_authenticated_user(http, github):
    response = http.get("/user")
    assert response.status_code == 200
    body = response.json()
    assert body["login"] == DEMO_LOGIN
    assert body["type"] == "User"
    assert body["site_admin"] is False
    assert body["name"] == "Octo Demo"
    assert isinstance(body["id"], int)
    assert base64.b64decode(body["node_id"]).decode() == f"04:User{body['id']}"
    assert body["url"] == f"{github.url}/users/{DEMO_LOGIN}"
    assert "plan" in body
    assert "private_gists" in body
    assert response.headers["content-type"] == "application/json; charset=utf-8"


def test_named_user_is_public_and_unknown_is_404(http):
    body = http.get("/users/alice-dev").json()
    assert body["login"] == "alice-dev"
    assert "plan" not in body
    missing = http.get("/users/nobody-here")
    assert missing.status_code == 404
    assert missing.json()["message"] == "Not Found"


@pytest.mark.parametrize(
    "header",
    [f"token {DEMO_TOKEN}", f"Bearer {DEMO_TOKEN}", f"bearer {DEMO_TOKEN}"],
)
def test_token_and_bearer_schemes(github, header):
    response = httpx.get(f"{github.url}/user", headers={"Authorization": header})
    assert response.status_code == 200
    assert response.json()["login"] == DEMO_LOGIN


def test_basic_auth_with_the_token_as_password(github):
    response = httpx.get(f"{github.url}/user", auth=("anyone", DEMO_TOKEN))
    assert response.json()["login"] == DEMO_LOGIN


@pytest.mark.parametrize(
    "path", ["/user", "/repos/acme/website", "/repos/acme/website/issues", "/rate_limit"]
)
@pytest.mark.parametrize("header", ["token nope", "Bearer nope", "token", "Digest abc"])
def test_bad_credentials_are_401_everywhere(github, path, header):
    response = httpx.get(f"{github.url}{path}", headers={"Authorization": header})
    assert response.status_code == 401
    assert response.json() == BAD_CREDENTIALS
    assert response.headers["x-ratelimit-limit"] == "60"  # charged to the address, as GitHub


def test_user_without_token_requires_authentication(anonymous):
    response = anonymous.get("/user")
    assert response.status_code == 401
    assert response.json() == {
        "message": "Requires authentication",
        "documentation_url": "https://docs.github.com/rest/users/users#get-the-authenticated-user",
        "status": "401",
    }


def test_anonymous_callers_read_public_repositories_on_60_an_hour(anonymous):
    response = anonymous.get("/repos/acme/website/issues")
    assert response.status_code == 200
    assert response.headers["x-ratelimit-limit"] == "60"
    assert response.headers["x-ratelimit-remaining"] == "59"
    assert "x-oauth-scopes" not in response.headers
    assert response.headers["cache-control"].startswith("public")
    assert anonymous.get("/repos/acme/website").json()["permissions"]["push"] is False


@pytest.mark.parametrize(
    "path",
    [
        "/repos/globex/platform",
        "/repos/globex/platform/issues",
        "/repos/globex/platform/issues/1",
        "/repos/globex/platform/issues/1/comments",
        "/repos/globex/platform/issues/comments",
    ],
)
def test_a_private_repository_is_404_to_who_cannot_see_it(github, anonymous, path):
    with github.http(token=OTHER_TOKEN) as other:
        refused = other.get(path)
        assert refused.status_code == 404
        assert refused.json()["message"] == "Not Found"
        assert refused.json()["status"] == "404"
        assert refused.json()["documentation_url"].startswith("https://docs.github.com/rest")
        assert other.get("/user").json()["login"] == OTHER_LOGIN
        assert other.get("/repos/acme/api").status_code == 200
    assert anonymous.get(path).status_code == 404
    with github.http() as demo:
        assert demo.get(path).status_code == 200


def test_repository_object_points_at_the_sandbox(http, github):
    body = http.get("/repos/acme/website").json()
    assert body["full_name"] == "acme/website"
    assert body["name"] == "website"
    assert body["private"] is False
    assert body["visibility"] == "public"
    assert body["owner"]["login"] == "acme"
    assert body["owner"]["type"] == "Organization"
    assert body["organization"]["login"] == "acme"
    assert body["url"] == f"{github.url}/repos/acme/website"
    assert body["issues_url"] == f"{github.url}/repos/acme/website/issues{{/number}}"
    assert body["issue_comment_url"] == (
        f"{github.url}/repos/acme/website/issues/comments{{/number}}"
    )
    assert body["html_url"] == f"{github.url}/acme/website"
    assert body["open_issues_count"] == 7
    assert body["default_branch"] == "main"
    assert body["permissions"]["pull"] is True
    assert TIMESTAMP.match(body["created_at"])
    for key, value in body.items():
        if key.endswith("_url") and key not in ("git_url", "ssh_url", "mirror_url"):
            assert value is None or value.startswith(github.url), key


def test_repository_by_id_and_case_insensitive_names(http):
    by_name = http.get("/repos/ACME/Website").json()
    assert by_name["full_name"] == "acme/website"
    by_id = http.get(f"/repositories/{by_name['id']}").json()
    assert by_id["full_name"] == "acme/website"
    assert http.get("/repositories/1").status_code == 404
    assert http.get("/repos/acme/nothing").status_code == 404


def test_enterprise_prefix_serves_the_same_api_with_prefixed_urls(github):
    with github.http() as client:
        response = client.get("/api/v3/repos/acme/website")
        user = client.get("/api/v3/user")
        unknown = client.get("/api/v3/nothing")
    assert response.status_code == 200
    body = response.json()
    assert body["url"] == f"{github.url}/api/v3/repos/acme/website"
    assert body["owner"]["url"] == f"{github.url}/api/v3/users/acme"
    assert body["html_url"] == f"{github.url}/acme/website"  # web pages live at the root
    assert user.json()["login"] == DEMO_LOGIN
    assert unknown.status_code == 404
    assert github.requests()["GET /repos/{owner}/{repo}"] == 1  # counted without the prefix


def test_issue_object_shape(http, github):
    body = http.get("/repos/acme/website/issues/1").json()
    assert body["number"] == 1
    assert body["title"] == "Login redirect loops on Safari"
    assert body["state"] == "closed"
    assert body["state_reason"] == "completed"
    assert TIMESTAMP.match(body["closed_at"])
    assert body["closed_by"]["login"] == DEMO_LOGIN
    assert body["url"] == f"{github.url}/repos/acme/website/issues/1"
    assert body["repository_url"] == f"{github.url}/repos/acme/website"
    assert body["comments_url"] == f"{github.url}/repos/acme/website/issues/1/comments"
    assert body["html_url"] == f"{github.url}/acme/website/issues/1"
    assert [label["name"] for label in body["labels"]] == ["bug"]
    assert set(body["labels"][0]) >= {"id", "node_id", "url", "name", "color", "default"}
    assert body["user"]["login"] in ("octo-demo", "alice-dev", "bob-ops", "carol-qa")
    assert body["comments"] == 8
    assert "pull_request" not in body
    assert body["author_association"] == "MEMBER"
    assert TIMESTAMP.match(body["created_at"])
    assert TIMESTAMP.match(body["updated_at"])


def test_a_pull_request_through_the_issues_api(http, github):
    body = http.get("/repos/acme/website/issues/3").json()
    html = f"{github.url}/acme/website/pull/3"
    assert body["html_url"] == html
    assert body["pull_request"] == {
        "url": f"{github.url}/repos/acme/website/pulls/3",
        "html_url": html,
        "diff_url": f"{html}.diff",
        "patch_url": f"{html}.patch",
        "merged_at": body["closed_at"],
    }
    assert base64.b64decode(body["node_id"]).decode().startswith("011:PullRequest")


def test_single_comment_and_its_object_shape(http, github):
    first = http.get("/repos/acme/website/issues/comments", params={"per_page": 1}).json()[0]
    single = http.get(f"/repos/acme/website/issues/comments/{first['id']}").json()
    assert single == first
    assert set(first) >= {
        "id", "node_id", "url", "html_url", "issue_url", "body", "user", "created_at",
        "updated_at", "author_association",
    }  # fmt: skip
    assert first["url"] == f"{github.url}/repos/acme/website/issues/comments/{first['id']}"
    assert first["issue_url"].startswith(f"{github.url}/repos/acme/website/issues/")
    assert first["html_url"].endswith(f"#issuecomment-{first['id']}")
    assert set(first["user"]) >= {"login", "id", "node_id", "type", "site_admin", "url"}
    other_repo = http.get(f"/repos/acme/api/issues/comments/{first['id']}")
    assert other_repo.status_code == 404


def test_unknown_issue_route_and_method_are_github_404s(http):
    assert http.get("/repos/acme/website/issues/999").status_code == 404
    assert http.get("/repos/acme/website/issues/abc").status_code == 404
    assert http.get("/repos/acme/website/issues/999/comments").status_code == 404
    unknown = http.get("/no/such/route")
    assert unknown.status_code == 404
    assert unknown.json() == {
        "message": "Not Found",
        "documentation_url": "https://docs.github.com/rest",
        "status": "404",
    }
    assert http.post("/repos/acme/website/issues", json={"title": "x"}).status_code == 404


@pytest.mark.parametrize(
    ("path", "params", "field"),
    [
        ("/repos/acme/website/issues", {"state": "opened"}, "state"),
        ("/repos/acme/website/issues", {"sort": "title"}, "sort"),
        ("/repos/acme/website/issues", {"direction": "up"}, "direction"),
        ("/repos/acme/website/issues", {"since": "yesterday"}, "since"),
        ("/repos/acme/website/issues/comments", {"sort": "comments"}, "sort"),
        ("/repos/acme/website/issues/comments", {"since": "2026-13-01"}, "since"),
        ("/repos/acme/website/issues/1/comments", {"since": "soon"}, "since"),
    ],
)
def test_invalid_parameter_values_are_422(http, path, params, field):
    response = http.get(path, params=params)
    assert response.status_code == 422
    body = response.json()
    assert body["message"] == "Validation Failed"
    assert body["errors"][0]["field"] == field
    assert body["errors"][0]["code"] == "invalid"
    assert body["status"] == "422"
