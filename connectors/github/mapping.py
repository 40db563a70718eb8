"""GitHub JSON -> billsync values (pure): issues and the /spend lines of comments.

An issue (or pull request) is known by its numeric ``id``, stable across renames and
transfers; its key is ``owner/repo#number``. Each ``/spend`` line of a comment is an entry
keyed ``github:<host>:comment:<comment id>:<ordinal>``; its author is the comment's author,
its date the given day (noon in the billing time zone) or the comment's creation time.
Issue and pull-request descriptions are not read.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, time
from typing import Any
from zoneinfo import ZoneInfo

from worker.core.model import Issue, TimeEntry
from worker.core.spend import parse_comment
from worker.core.text import clean_text
from worker.ports import BadEntry


def parse_github_time(text: object) -> datetime | None:
    """``2026-11-03T09:00:00Z`` -> aware datetime; None if unreadable."""
    if not isinstance(text, str):
        return None
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo is not None else None


def comment_prefix(host: str, comment_id: object) -> str:
    return f"github:{host}:comment:{comment_id}:"


def issue_number(raw: Mapping[str, Any]) -> int | None:
    """The issue number a comment belongs to, from its ``issue_url``."""
    url = raw.get("issue_url")
    if not isinstance(url, str):
        return None
    tail = url.rstrip("/").rsplit("/", 1)[-1]
    return int(tail) if tail.isdigit() else None


def issue_repository(raw: Mapping[str, Any]) -> str | None:
    """``owner/name`` of the repository an issue is in, from its ``repository_url``."""
    url = raw.get("repository_url")
    if not isinstance(url, str) or "/repos/" not in url:
        return None
    parts = url.rstrip("/").rsplit("/repos/", 1)[1].split("/")
    return "/".join(parts) if len(parts) == 2 and all(parts) else None


def map_issue(source: str, repo: str, raw: Mapping[str, Any]) -> Issue | None:
    issue_id, number = raw.get("id"), raw.get("number")
    if not isinstance(issue_id, int) or not isinstance(number, int):
        return None
    labels = raw.get("labels")
    names = (
        frozenset(
            clean_text(x["name"])
            for x in labels
            if isinstance(x, Mapping) and isinstance(x.get("name"), str)
        )
        if isinstance(labels, list)
        else frozenset()
    )
    title = raw.get("title")
    return Issue(
        source=source,
        issue_id=str(issue_id),
        key=f"{repo}#{number}",
        project=repo,
        summary=clean_text(title) if isinstance(title, str) else "",
        labels=names,
    )


def map_comment(
    host: str, source: str, issue_id: str | None, raw: Mapping[str, Any], zone: ZoneInfo
) -> tuple[list[TimeEntry], list[BadEntry]]:
    """The entries of one comment's ``/spend`` lines, and the bad ones with their reason."""
    comment_id = raw.get("id")
    if not isinstance(comment_id, int):
        return [], []
    prefix = comment_prefix(host, comment_id)
    body = raw.get("body")
    lines = parse_comment(body) if isinstance(body, str) else []
    if not lines:
        return [], []
    user = raw.get("user")
    login = user.get("login") if isinstance(user, Mapping) else None
    created = parse_github_time(raw.get("created_at"))
    entries: list[TimeEntry] = []
    bad: list[BadEntry] = []
    for line in lines:
        key = f"{prefix}{line.ordinal}"
        where = f"GitHub comment {comment_id} line {line.line} ({line.text[:60]!r})"
        problem = line.error
        if problem is None and issue_id is None:
            problem = "its issue is unknown"
        if problem is None and not isinstance(login, str):
            problem = "the comment has no author login"
        if problem is None and line.day is None and created is None:
            problem = f"unreadable created_at {str(raw.get('created_at'))[:40]!r}"
        if problem is not None:
            bad.append(BadEntry(key, f"{where}: {problem}", issue_id))
            continue
        started = datetime.combine(line.day, time(12), zone) if line.day else created
        assert started is not None
        assert line.seconds is not None
        assert isinstance(login, str)
        assert issue_id is not None
        entries.append(TimeEntry(key, source, issue_id, clean_text(login), started, line.seconds))
    return entries, bad
