"""GitHub's JSON shapes (REST v3, API version 2022-11-28) for the sandbox's store.

Every URL points at the sandbox itself: ``api`` is the API root the request came in on
(``http://127.0.0.1:8732`` or ``http://127.0.0.1:8732/api/v3``), ``web`` the bare origin
(where GitHub Enterprise serves its web pages). PyGithub follows the ``url`` fields, so they
must be right; the ``html_url`` fields are never fetched.
"""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

from sandbox.github.state import Account, Comment, GitHubState, Issue, Rate, Repo

GHOST_ID = 10137  # what GitHub shows for a deleted account


def timestamp(epoch_seconds: int | None) -> str | None:
    if epoch_seconds is None:
        return None
    return datetime.fromtimestamp(epoch_seconds, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def node_id(kind: str, number: int) -> str:
    """GitHub's legacy global node id: base64 of ``"<len>:<Type><id>"``."""
    return base64.b64encode(f"0{len(kind)}:{kind}{number}".encode()).decode()


def label_color(name: str) -> str:
    return hashlib.sha256(name.casefold().encode()).hexdigest()[:6]


REACTIONS = ("+1", "-1", "laugh", "hooray", "confused", "heart", "rocket", "eyes")


@dataclass(frozen=True)
class Renderer:
    state: GitHubState
    api: str  # no trailing slash
    web: str  # no trailing slash

    # -- users ------------------------------------------------------------------------------

    def user(self, login: str) -> dict[str, Any]:
        account = self.state.find_account(login)
        if account is None:
            return self._simple_user("ghost", GHOST_ID, "User")
        return self._simple_user(account.login, account.id, account.type)

    def _simple_user(self, login: str, number: int, kind: str) -> dict[str, Any]:
        url = f"{self.api}/users/{login}"
        return {
            "login": login,
            "id": number,
            "node_id": node_id(kind, number),
            "avatar_url": f"{self.web}/avatars/u/{number}?v=4",
            "gravatar_id": "",
            "url": url,
            "html_url": f"{self.web}/{login}",
            "followers_url": f"{url}/followers",
            "following_url": f"{url}/following{{/other_user}}",
            "gists_url": f"{url}/gists{{/gist_id}}",
            "starred_url": f"{url}/starred{{/owner}}{{/repo}}",
            "subscriptions_url": f"{url}/subscriptions",
            "organizations_url": f"{url}/orgs",
            "repos_url": f"{url}/repos",
            "events_url": f"{url}/events{{/privacy}}",
            "received_events_url": f"{url}/received_events",
            "type": kind,
            "user_view_type": "public",
            "site_admin": False,
        }

    def full_user(self, account: Account, *, private: bool) -> dict[str, Any]:
        """``GET /users/{login}``, or ``GET /user`` with the private fields."""
        public_repos = sum(
            1
            for repo in self.state.repos()
            if repo.owner.casefold() == account.login.casefold() and not repo.private
        )
        body = self._simple_user(account.login, account.id, account.type)
        body.update(
            {
                "name": account.name,
                "company": None,
                "blog": "",
                "location": None,
                "email": account.email,
                "hireable": None,
                "bio": None,
                "twitter_username": None,
                "public_repos": public_repos,
                "public_gists": 0,
                "followers": 0,
                "following": 0,
                "created_at": timestamp(account.created),
                "updated_at": timestamp(account.updated),
            }
        )
        if private:
            body.update(
                {
                    "private_gists": 0,
                    "total_private_repos": 0,
                    "owned_private_repos": 0,
                    "disk_usage": 0,
                    "collaborators": 0,
                    "two_factor_authentication": True,
                    "plan": {
                        "name": "free",
                        "space": 976562499,
                        "collaborators": 0,
                        "private_repos": 10000,
                    },
                }
            )
        return body

    # -- repositories -----------------------------------------------------------------------

    def repo(self, repo: Repo, viewer: str | None) -> dict[str, Any]:
        url = f"{self.api}/repos/{repo.full_name}"
        html = f"{self.web}/{repo.full_name}"
        host = self.web.split("://", 1)[-1]
        open_count = sum(1 for i in self.state.repo_issues(repo.id) if i.state == "open")
        member = viewer is not None and self.state.is_member(repo, viewer)
        owner = self.user(repo.owner)
        body: dict[str, Any] = {
            "id": repo.id,
            "node_id": node_id("Repository", repo.id),
            "name": repo.name,
            "full_name": repo.full_name,
            "private": repo.private,
            "owner": owner,
            "html_url": html,
            "description": repo.description or None,
            "fork": False,
            "url": url,
            "forks_url": f"{url}/forks",
            "keys_url": f"{url}/keys{{/key_id}}",
            "collaborators_url": f"{url}/collaborators{{/collaborator}}",
            "teams_url": f"{url}/teams",
            "hooks_url": f"{url}/hooks",
            "issue_events_url": f"{url}/issues/events{{/number}}",
            "events_url": f"{url}/events",
            "assignees_url": f"{url}/assignees{{/user}}",
            "branches_url": f"{url}/branches{{/branch}}",
            "tags_url": f"{url}/tags",
            "blobs_url": f"{url}/git/blobs{{/sha}}",
            "git_tags_url": f"{url}/git/tags{{/sha}}",
            "git_refs_url": f"{url}/git/refs{{/sha}}",
            "trees_url": f"{url}/git/trees{{/sha}}",
            "statuses_url": f"{url}/statuses/{{sha}}",
            "languages_url": f"{url}/languages",
            "stargazers_url": f"{url}/stargazers",
            "contributors_url": f"{url}/contributors",
            "subscribers_url": f"{url}/subscribers",
            "subscription_url": f"{url}/subscription",
            "commits_url": f"{url}/commits{{/sha}}",
            "git_commits_url": f"{url}/git/commits{{/sha}}",
            "comments_url": f"{url}/comments{{/number}}",
            "issue_comment_url": f"{url}/issues/comments{{/number}}",
            "contents_url": f"{url}/contents/{{+path}}",
            "compare_url": f"{url}/compare/{{base}}...{{head}}",
            "merges_url": f"{url}/merges",
            "archive_url": f"{url}/{{archive_format}}{{/ref}}",
            "downloads_url": f"{url}/downloads",
            "issues_url": f"{url}/issues{{/number}}",
            "pulls_url": f"{url}/pulls{{/number}}",
            "milestones_url": f"{url}/milestones{{/number}}",
            "notifications_url": f"{url}/notifications{{?since,all,participating}}",
            "labels_url": f"{url}/labels{{/name}}",
            "releases_url": f"{url}/releases{{/id}}",
            "deployments_url": f"{url}/deployments",
            "created_at": timestamp(repo.created),
            "updated_at": timestamp(repo.updated),
            "pushed_at": timestamp(repo.pushed),
            "git_url": f"git://{host}/{repo.full_name}.git",
            "ssh_url": f"git@{host.split(':')[0]}:{repo.full_name}.git",
            "clone_url": f"{html}.git",
            "svn_url": html,
            "homepage": None,
            "size": 1024,
            "stargazers_count": 0,
            "watchers_count": 0,
            "language": "Python",
            "has_issues": True,
            "has_projects": True,
            "has_downloads": True,
            "has_wiki": False,
            "has_pages": False,
            "has_discussions": False,
            "forks_count": 0,
            "mirror_url": None,
            "archived": False,
            "disabled": False,
            "open_issues_count": open_count,
            "license": None,
            "allow_forking": not repo.private,
            "is_template": False,
            "web_commit_signoff_required": False,
            "topics": [],
            "visibility": "private" if repo.private else "public",
            "forks": 0,
            "open_issues": open_count,
            "watchers": 0,
            "default_branch": "main",
            "permissions": {
                "admin": False,
                "maintain": False,
                "push": member,
                "triage": member,
                "pull": True,
            },
            "temp_clone_token": "",
            "network_count": 0,
            "subscribers_count": 0,
        }
        if repo.owner and owner["type"] == "Organization":
            body["organization"] = owner
        return body

    # -- issues -----------------------------------------------------------------------------

    def _association(self, repo: Repo, login: str) -> str:
        if login.casefold() == repo.owner.casefold():
            return "OWNER"
        return "MEMBER" if self.state.is_member(repo, login) else "CONTRIBUTOR"

    def label(self, repo: Repo, name: str) -> dict[str, Any]:
        label_id = self.state.label_id(repo, name)
        return {
            "id": label_id,
            "node_id": node_id("Label", label_id),
            "url": f"{self.api}/repos/{repo.full_name}/labels/{quote(name, safe='')}",
            "name": name,
            "color": label_color(name),
            "default": False,
            "description": None,
        }

    def reactions(self, url: str) -> dict[str, Any]:
        return {"url": f"{url}/reactions", "total_count": 0, **dict.fromkeys(REACTIONS, 0)}

    def issue_html(self, repo: Repo, issue_number: int, is_pr: bool) -> str:
        return f"{self.web}/{repo.full_name}/{'pull' if is_pr else 'issues'}/{issue_number}"

    def issue(
        self, repo: Repo, issue: Issue, comments: int, *, single: bool = False
    ) -> dict[str, Any]:
        repo_url = f"{self.api}/repos/{repo.full_name}"
        url = f"{repo_url}/issues/{issue.number}"
        body: dict[str, Any] = {
            "url": url,
            "repository_url": repo_url,
            "labels_url": f"{url}/labels{{/name}}",
            "comments_url": f"{url}/comments",
            "events_url": f"{url}/events",
            "html_url": self.issue_html(repo, issue.number, issue.is_pr),
            "id": issue.id,
            "node_id": node_id("PullRequest" if issue.is_pr else "Issue", issue.id),
            "number": issue.number,
            "title": issue.title,
            "user": self.user(issue.user),
            "labels": [self.label(repo, name) for name in issue.labels],
            "state": issue.state,
            "locked": False,
            "assignee": None,
            "assignees": [],
            "milestone": None,
            "comments": comments,
            "created_at": timestamp(issue.created),
            "updated_at": timestamp(issue.updated),
            "closed_at": timestamp(issue.closed),
            "author_association": self._association(repo, issue.user),
            "type": None,
            "active_lock_reason": None,
        }
        if issue.is_pr:
            pull = f"{repo_url}/pulls/{issue.number}"
            html = body["html_url"]
            body["draft"] = False
            body["pull_request"] = {
                "url": pull,
                "html_url": html,
                "diff_url": f"{html}.diff",
                "patch_url": f"{html}.patch",
                "merged_at": timestamp(issue.closed),
            }
        body["body"] = issue.body
        if single:  # only the single-issue answer names who closed it
            body["closed_by"] = self.user(issue.closed_by) if issue.closed_by else None
        body.update(
            {
                "reactions": self.reactions(url),
                "timeline_url": f"{url}/timeline",
                "performed_via_github_app": None,
                "state_reason": issue.state_reason,
            }
        )
        return body

    # -- comments ---------------------------------------------------------------------------

    def comment(self, repo: Repo, comment: Comment, is_pr: bool) -> dict[str, Any]:
        repo_url = f"{self.api}/repos/{repo.full_name}"
        url = f"{repo_url}/issues/comments/{comment.id}"
        html = self.issue_html(repo, comment.issue_number, is_pr)
        return {
            "url": url,
            "html_url": f"{html}#issuecomment-{comment.id}",
            "issue_url": f"{repo_url}/issues/{comment.issue_number}",
            "id": comment.id,
            "node_id": node_id("IssueComment", comment.id),
            "user": self.user(comment.user),
            "created_at": timestamp(comment.created),
            "updated_at": timestamp(comment.updated),
            "author_association": self._association(repo, comment.user),
            "body": comment.body,
            "reactions": self.reactions(url),
            "performed_via_github_app": None,
        }


def rate_json(rate: Rate) -> dict[str, int]:
    return {
        "limit": rate.limit,
        "used": rate.used,
        "remaining": rate.remaining,
        "reset": rate.reset,
    }


# Other resources of /rate_limit: (limit for a user, for anonymous callers, window seconds).
OTHER_RESOURCES: dict[str, tuple[int, int, int]] = {
    "search": (30, 10, 60),
    "graphql": (5000, 0, 3600),
    "integration_manifest": (5000, 5000, 3600),
    "source_import": (100, 100, 60),
    "code_scanning_upload": (1000, 1000, 3600),
    "code_scanning_autofix": (10, 10, 60),
    "actions_runner_registration": (10000, 10000, 3600),
    "scim": (15000, 15000, 3600),
    "dependency_snapshots": (100, 100, 60),
    "dependency_sbom": (100, 100, 60),
    "audit_log": (1750, 1750, 3600),
    "audit_log_streaming": (15, 15, 60),
    "code_search": (10, 10, 60),
}


def rate_limit_body(core: Rate, now: int, *, authenticated: bool) -> dict[str, Any]:
    """The ``GET /rate_limit`` body: ``core`` is the real budget; the other resources are
    untouched (the sandbox serves no search or GraphQL)."""
    resources: dict[str, Any] = {"core": rate_json(core)}
    for name, (user_limit, anonymous_limit, window) in OTHER_RESOURCES.items():
        limit = user_limit if authenticated else anonymous_limit
        resources[name] = {"limit": limit, "used": 0, "remaining": limit, "reset": now + window}
    return {"resources": resources, "rate": rate_json(core)}
