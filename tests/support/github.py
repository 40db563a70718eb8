"""A GitHub sandbox served over real HTTP for tests, with its admin path at hand."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx
from github import Auth, Github

from sandbox.github import GitHubApp, GitHubState, create_app
from sandbox.github.app import Seeder
from sandbox.github.seed import DEMO_TOKEN, seed_demo
from sandbox.server import ServerThread
from tests.support.admin import ClockAdmin

GITHUB_NOW = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)
"""Where the test fixtures freeze the sandbox clock (the demo data lies in the 8 weeks before)."""


@dataclass
class RunningGitHub(ClockAdmin):
    """The sandbox app, its server, and shortcuts to ``/_sandbox`` (faults, counts, reset,
    clock, data and budget changes). Admin helpers answer the ``data`` of the admin response."""

    app: GitHubApp
    server: ServerThread

    @property
    def url(self) -> str:
        """The API root as on github.com (``/user``, ``/repos/...`` directly under it)."""
        return self.server.url

    @property
    def enterprise_url(self) -> str:
        """The same API as GitHub Enterprise Server serves it, under ``/api/v3``."""
        return f"{self.server.url}/api/v3"

    @property
    def token(self) -> str:
        return DEMO_TOKEN

    def headers(self, token: str | None = None) -> dict[str, str]:
        return {"Authorization": f"token {token or DEMO_TOKEN}"}

    def http(self, token: str | None = DEMO_TOKEN, **options: Any) -> httpx.Client:
        """An httpx client on the API root, with ``token`` (None: anonymous)."""
        headers = {"Authorization": f"token {token}"} if token else {}
        return httpx.Client(base_url=self.url, headers=headers, timeout=10, **options)

    def pygithub(
        self, token: str = DEMO_TOKEN, *, base_url: str | None = None, per_page: int = 100
    ) -> Github:
        """PyGithub as billsync builds it: no library retries, no sleeping between calls."""
        return Github(
            auth=Auth.Token(token),
            base_url=base_url or self.url,
            per_page=per_page,
            seconds_between_requests=0,
            retry=None,
        )

    def reset(self) -> None:
        """Back to the seeded state (clock restored, budgets full), counts and faults cleared;
        in-process."""
        self.app.reset()

    def info(self) -> dict[str, Any]:
        result: dict[str, Any] = self._admin("GET", "/info")
        return result

    # -- data -----------------------------------------------------------------------------

    def add_user(self, login: str, **body: Any) -> dict[str, Any]:
        result: dict[str, Any] = self._admin("POST", "/users", json={"login": login, **body})
        return result

    def add_repo(self, full_name: str, **body: Any) -> dict[str, Any]:
        owner, name = full_name.split("/")
        result: dict[str, Any] = self._admin(
            "POST", "/repos", json={"owner": owner, "name": name, **body}
        )
        return result

    def add_issue(self, repo: str, title: str, **body: Any) -> dict[str, Any]:
        if isinstance(body.get("created_at"), datetime):
            body["created_at"] = body["created_at"].isoformat()
        result: dict[str, Any] = self._admin(
            "POST", "/issues", json={"repo": repo, "title": title, **body}
        )
        return result

    def update_issue(self, repo: str, number: int, **changes: Any) -> dict[str, Any]:
        result: dict[str, Any] = self._admin("PATCH", f"/issues/{repo}/{number}", json=changes)
        return result

    def add_comment(self, repo: str, issue: int, body: str, **more: Any) -> dict[str, Any]:
        if isinstance(more.get("created_at"), datetime):
            more["created_at"] = more["created_at"].isoformat()
        result: dict[str, Any] = self._admin(
            "POST", "/comments", json={"repo": repo, "issue": issue, "body": body, **more}
        )
        return result

    def edit_comment(self, comment_id: int, body: str) -> dict[str, Any]:
        result: dict[str, Any] = self._admin(
            "PATCH", f"/comments/{comment_id}", json={"body": body}
        )
        return result

    def delete_comment(self, comment_id: int) -> None:
        self._admin("DELETE", f"/comments/{comment_id}")

    # -- rate limit -----------------------------------------------------------------------

    def budget(self) -> dict[str, Any]:
        result: dict[str, Any] = self._admin("GET", "/budget")
        return result

    def set_budget(self, **change: Any) -> dict[str, Any]:
        """E.g. ``set_budget(remaining=0)``, ``set_budget(limit=10, status=429)``,
        ``set_budget(token=OTHER_TOKEN, remaining=3)``; default caller: the demo user."""
        result: dict[str, Any] = self._admin("POST", "/budget", json=change)
        return result


@contextmanager
def running_github(
    *, now: datetime | None = None, seed: Seeder | None = seed_demo
) -> Iterator[RunningGitHub]:
    app = create_app(GitHubState(now=now), seed=seed)
    with ServerThread(app, date_header=False) as server:  # the app sends its clock's Date
        yield RunningGitHub(app, server)
