"""Jira Cloud's JSON shapes for the sandbox's records: users, issues (with field selection),
worklogs, comments, the field catalogue, and Jira's timestamp and duration formats.

v3 renders rich text (worklog and issue comments) as an Atlassian Document Format document,
v2 as plain text. Timestamps are shown in the requesting user's time zone with a numeric
offset, ``2026-11-03T09:00:00.000+0100``.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import quote
from zoneinfo import ZoneInfo

from sandbox.jira.state import Comment, Issue, JiraState, Project, User, Worklog, from_ms

ISSUE_WORKLOG_EMBED_LIMIT = 20  # the ``worklog`` field of an issue carries at most 20

ISSUE_TYPES = {"Task": "10001", "Bug": "10002", "Story": "10003", "Epic": "10004"}


def _system_field(
    field_id: str,
    name: str,
    schema_type: str,
    *,
    clause_names: Iterable[str] = (),
    navigable: bool = True,
    orderable: bool = True,
    searchable: bool = True,
    items: str | None = None,
) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": schema_type, "system": field_id}
    if items is not None:
        schema["items"] = items
    return {
        "id": field_id,
        "key": field_id,
        "name": name,
        "custom": False,
        "orderable": orderable,
        "navigable": navigable,
        "searchable": searchable,
        "clauseNames": list(clause_names) or [field_id],
        "schema": schema,
    }


FIELD_CATALOGUE: tuple[dict[str, Any], ...] = (
    _system_field("summary", "Summary", "string"),
    _system_field("project", "Project", "project", orderable=False),
    _system_field("labels", "Labels", "array", items="string"),
    _system_field("issuetype", "Issue Type", "issuetype", clause_names=("issuetype", "type")),
    _system_field("created", "Created", "datetime", clause_names=("created", "createdDate")),
    _system_field("updated", "Updated", "datetime", clause_names=("updated", "updatedDate")),
    _system_field("status", "Status", "status", orderable=False),
    _system_field("reporter", "Reporter", "user"),
    _system_field("timespent", "Time Spent", "number", orderable=False),
    _system_field("worklog", "Log Work", "array", navigable=False, items="worklog"),
    _system_field("comment", "Comment", "comments-page", navigable=False),
    {
        "id": "issuekey",
        "key": "issuekey",
        "name": "Key",
        "custom": False,
        "orderable": False,
        "navigable": True,
        "searchable": False,
        "clauseNames": ["id", "issue", "issuekey", "key"],
    },
)
ALL_FIELDS = tuple(f["id"] for f in FIELD_CATALOGUE if f["id"] != "issuekey")
NAVIGABLE_FIELDS = tuple(
    f["id"] for f in FIELD_CATALOGUE if f["navigable"] and f["id"] in ALL_FIELDS
)


@dataclass(frozen=True)
class FieldSelection:
    """Which fields an issue carries, from a ``fields`` parameter (``*all``, ``*navigable``,
    names, ``-name`` to drop one). Unknown names are ignored, as Jira does."""

    names: tuple[str, ...]

    @classmethod
    def parse(cls, raw: Iterable[str] | None, default: Iterable[str] = ()) -> FieldSelection:
        items = [part.strip() for value in (raw or ()) for part in value.split(",")]
        items = [item for item in items if item]
        if not items:
            return cls(tuple(default))
        chosen: list[str] = []
        dropped: set[str] = set()
        for item in items:
            if item == "*all":
                chosen.extend(ALL_FIELDS)
            elif item == "*navigable":
                chosen.extend(NAVIGABLE_FIELDS)
            elif item.startswith("-"):
                dropped.add(item[1:])
            elif item in ALL_FIELDS:
                chosen.append(item)
        return cls(tuple(dict.fromkeys(n for n in chosen if n not in dropped)))

    @property
    def id_or_key_only(self) -> bool:
        return not self.names


def jira_time(moment: datetime | int, time_zone: str) -> str:
    """``2026-11-03T09:00:00.000+0100``: Jira's format, in ``time_zone``."""
    if isinstance(moment, int):
        moment = from_ms(moment)
    local = moment.astimezone(ZoneInfo(time_zone))
    return (
        local.strftime("%Y-%m-%dT%H:%M:%S.")
        + f"{local.microsecond // 1000:03d}"
        + (local.strftime("%z"))
    )


def time_spent(seconds: int) -> str:
    """Jira's ``timeSpent`` text with its default 8-hour day and 5-day week: ``1d 2h 30m``."""
    minutes = max(seconds, 0) // 60
    parts: list[str] = []
    for unit, size in (("w", 5 * 8 * 60), ("d", 8 * 60), ("h", 60), ("m", 1)):
        count, minutes = divmod(minutes, size)
        if count:
            parts.append(f"{count}{unit}")
    return " ".join(parts) or "0m"


def adf(text: str) -> dict[str, Any]:
    """Plain text as an ADF document: one paragraph per line."""
    paragraphs = [
        {"type": "paragraph", "content": [{"type": "text", "text": line}] if line else []}
        for line in text.split("\n")
    ]
    return {"type": "doc", "version": 1, "content": paragraphs}


class Renderer:
    """Renders records for one request: its base URL, API version and viewer."""

    def __init__(self, state: JiraState, base_url: str, version: str, viewer: User) -> None:
        self.state = state
        self.base = base_url.rstrip("/")
        self.version = version
        self.api = f"{self.base}/rest/api/{version}"
        self.tz = viewer.time_zone

    def rich_text(self, text: str) -> Any:
        return adf(text) if self.version == "3" else text

    def time(self, moment: datetime | int) -> str:
        return jira_time(moment, self.tz)

    def user(self, account_id: str, *, full: bool = False) -> dict[str, Any]:
        user = self.state.user(account_id)
        body: dict[str, Any] = {
            "self": f"{self.api}/user?accountId={quote(user.account_id)}",
            "accountId": user.account_id,
            "avatarUrls": {
                size: f"{self.base}/avatar/{quote(user.account_id)}?s={size[:2]}"
                for size in ("48x48", "24x24", "16x16", "32x32")
            },
            "displayName": user.display_name,
            "active": user.active,
            "timeZone": user.time_zone,
            "accountType": "atlassian",
        }
        if full:
            body["emailAddress"] = user.email
            body["locale"] = "en_US"
            body["groups"] = {"size": 1, "items": []}
            body["applicationRoles"] = {"size": 1, "items": []}
            body["expand"] = "groups,applicationRoles"
        return body

    def project(self, project: Project) -> dict[str, Any]:
        return {
            "self": f"{self.api}/project/{project.id}",
            "id": str(project.id),
            "key": project.key,
            "name": project.name,
            "projectTypeKey": "software",
            "simplified": False,
        }

    def worklog(self, worklog: Worklog) -> dict[str, Any]:
        if worklog.raw is not None:
            return dict(worklog.raw)
        body: dict[str, Any] = {
            "self": f"{self.api}/issue/{worklog.issue_id}/worklog/{worklog.id}",
            "author": self.user(worklog.author),
            "updateAuthor": self.user(worklog.update_author),
        }
        if worklog.comment:
            body["comment"] = self.rich_text(worklog.comment)
        body.update(
            {
                "created": self.time(worklog.created_ms),
                "updated": self.time(worklog.updated_ms),
                "started": self.time(worklog.started),
                "timeSpent": time_spent(worklog.seconds),
                "timeSpentSeconds": worklog.seconds,
                "id": str(worklog.id),
                "issueId": str(worklog.issue_id),
            }
        )
        return body

    def comment(self, comment: Comment) -> dict[str, Any]:
        return {
            "self": f"{self.api}/issue/{comment.issue_id}/comment/{comment.id}",
            "id": str(comment.id),
            "author": self.user(comment.author),
            "body": self.rich_text(comment.body),
            "updateAuthor": self.user(comment.author),
            "created": self.time(comment.created_ms),
            "updated": self.time(comment.updated_ms),
            "jsdPublic": True,
        }

    def issue(self, issue: Issue, fields: FieldSelection) -> dict[str, Any]:
        body: dict[str, Any] = {
            "expand": "renderedFields,names,schema,operations,editmeta,changelog,"
            "versionedRepresentations",
            "id": str(issue.id),
            "self": f"{self.api}/issue/{issue.id}",
            "key": issue.key,
        }
        if fields.names:
            body["fields"] = {name: self._field(issue, name) for name in fields.names}
        return body

    def _field(self, issue: Issue, name: str) -> Any:
        if name == "summary":
            return issue.summary
        if name == "project":
            project = self.state.project(issue.project_key)
            assert project is not None
            return self.project(project)
        if name == "labels":
            return list(issue.labels)
        if name == "issuetype":
            type_id = ISSUE_TYPES.get(issue.issuetype, "10000")
            return {
                "self": f"{self.api}/issuetype/{type_id}",
                "id": type_id,
                "name": issue.issuetype,
                "subtask": False,
                "hierarchyLevel": 1 if issue.issuetype == "Epic" else 0,
            }
        if name == "created":
            return self.time(issue.created_ms)
        if name == "updated":
            return self.time(issue.updated_ms)
        if name == "status":
            return {"name": "In Progress", "id": "3", "statusCategory": {"key": "indeterminate"}}
        if name == "reporter":
            return self.user(issue.reporter) if issue.reporter else None
        worklogs = self.state.issue_worklogs(issue.id)
        if name == "timespent":
            return sum(w.seconds for w in worklogs if w.raw is None) or None
        if name == "worklog":
            shown = worklogs[:ISSUE_WORKLOG_EMBED_LIMIT]
            return {
                "startAt": 0,
                "maxResults": ISSUE_WORKLOG_EMBED_LIMIT,
                "total": len(worklogs),
                "worklogs": [self.worklog(w) for w in shown],
            }
        comments = self.state.issue_comments(issue.id)
        return {
            "comments": [self.comment(c) for c in comments],
            "self": f"{self.api}/issue/{issue.id}/comment",
            "maxResults": len(comments),
            "total": len(comments),
            "startAt": 0,
        }
