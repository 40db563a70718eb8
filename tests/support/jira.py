"""A Jira sandbox served over real HTTP for tests, with its admin path at hand."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sandbox.jira import JiraApp, JiraState, create_app
from sandbox.jira.app import Seeder
from sandbox.jira.seed import DEMO_API_TOKEN, DEMO_EMAIL, seed_demo
from sandbox.server import ServerThread
from tests.support.admin import ClockAdmin

JIRA_NOW = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)
"""Where the test fixtures freeze the sandbox clock (a Friday, 10:00 in Berlin)."""


@dataclass
class RunningJira(ClockAdmin):
    """The sandbox app, its server, and shortcuts to ``/_sandbox`` (faults, counts, reset,
    clock and data changes). Admin helpers answer the ``data`` of the admin response."""

    app: JiraApp
    server: ServerThread

    @property
    def url(self) -> str:
        return self.server.url

    @property
    def auth(self) -> tuple[str, str]:
        """The demo user's Basic credentials (email, API token)."""
        return (DEMO_EMAIL, DEMO_API_TOKEN)

    def reset(self) -> None:
        """Back to the seeded state (clock restored), counts and faults cleared; in-process."""
        self.app.reset()

    # -- data -----------------------------------------------------------------------------

    def add_issue(self, **body: Any) -> dict[str, Any]:
        result: dict[str, Any] = self._admin("POST", "/issues", json=body)
        return result

    def move_issue(self, key: str, project: str) -> dict[str, Any]:
        result: dict[str, Any] = self._admin(
            "POST", f"/issues/{key}/move", json={"project": project}
        )
        return result

    def add_worklog(
        self, issue: str, *, started: datetime, seconds: int, **more: Any
    ) -> dict[str, Any]:
        body = {"issue": issue, "started": started.isoformat(), "timeSpentSeconds": seconds}
        result: dict[str, Any] = self._admin("POST", "/worklogs", json={**body, **more})
        return result

    def add_raw_worklog(self, issue: str, worklog: dict[str, Any]) -> dict[str, Any]:
        result: dict[str, Any] = self._admin(
            "POST", "/worklogs/raw", json={"issue": issue, "worklog": worklog}
        )
        return result

    def edit_worklog(self, worklog_id: str | int, **changes: Any) -> dict[str, Any]:
        if isinstance(changes.get("started"), datetime):
            changes["started"] = changes["started"].isoformat()
        result: dict[str, Any] = self._admin("PUT", f"/worklogs/{worklog_id}", json=changes)
        return result

    def delete_worklog(self, worklog_id: str | int) -> None:
        self._admin("DELETE", f"/worklogs/{worklog_id}")


@contextmanager
def running_jira(
    *, now: datetime | None = None, seed: Seeder | None = seed_demo, **options: Any
) -> Iterator[RunningJira]:
    app = create_app(JiraState(now=now), seed=seed, **options)
    with ServerThread(app) as server:
        yield RunningJira(app, server)
