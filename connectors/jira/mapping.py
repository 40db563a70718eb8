"""Jira JSON -> billsync values (pure): worklogs become TimeEntry or BadEntry, issues Issue.

Vendor shapes stop here. A worklog is bad (reported, never guessed) when a field billsync
needs is missing or unreadable, when ``timeSpentSeconds`` is not a positive integer, or when
it is absurd (more than a week in one worklog). Keys are stable for life:
``jira:<site>:worklog:<id>`` with ``site`` the host of the configured URL, and issues are
known by their id, which survives moves between projects.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from worker.core.model import Issue, TimeEntry
from worker.core.text import clean_text
from worker.ports import BadEntry

MAX_WORKLOG_SECONDS = 7 * 24 * 3600  # one worklog of more than a week is a typo, not work

_FORMATS = ("%Y-%m-%dT%H:%M:%S.%f%z", "%Y-%m-%dT%H:%M:%S%z")


def parse_jira_datetime(text: object) -> datetime | None:
    """``2026-11-03T09:00:00.000+0100`` (Jira's format) -> aware datetime; None if unreadable."""
    if not isinstance(text, str):
        return None
    for fmt in _FORMATS:
        try:
            moment = datetime.strptime(text, fmt)  # noqa: DTZ007 (%z in every format)
        except ValueError:
            continue
        return moment if moment.tzinfo is not None else None
    try:  # ISO 8601 with a colon in the offset, as some proxies rewrite it
        moment = datetime.fromisoformat(text)
    except ValueError:
        return None
    return moment if moment.tzinfo is not None else None


def worklog_key(site: str, worklog_id: object) -> str:
    return clean_text(f"jira:{site}:worklog:{worklog_id}")


def _author(raw: Mapping[str, Any]) -> str | None:
    author = raw.get("author")
    if not isinstance(author, Mapping):
        return None
    for field in ("accountId", "name", "key"):  # Cloud, then Data Center
        value = author.get(field)
        if isinstance(value, str) and value:
            return clean_text(value)
    return None


def map_worklog(site: str, source: str, raw: object) -> TimeEntry | BadEntry:
    """One worklog from ``/worklog/list`` or ``/issue/{key}/worklog``."""
    if not isinstance(raw, Mapping):
        digest = hashlib.sha256(repr(raw).encode()).hexdigest()[:12]
        return BadEntry(worklog_key(site, f"unknown-{digest}"), "worklog is not a JSON object")
    worklog_id = raw.get("id")
    if not isinstance(worklog_id, str | int) or isinstance(worklog_id, bool) or worklog_id == "":
        text = json.dumps(raw, sort_keys=True, default=str)
        digest = hashlib.sha256(text.encode()).hexdigest()[:12]
        return BadEntry(worklog_key(site, f"unknown-{digest}"), "worklog has no id")
    key = worklog_key(site, worklog_id)
    issue_id = raw.get("issueId")
    issue_text = (
        clean_text(str(issue_id)) if isinstance(issue_id, str | int) and issue_id != "" else None
    )
    problems = []
    if issue_text is None:
        problems.append("missing issueId")
    author = _author(raw)
    if author is None:
        problems.append("missing author.accountId")
    started = parse_jira_datetime(raw.get("started"))
    if started is None:
        problems.append(f"unreadable started {str(raw.get('started'))[:40]!r}")
    seconds = raw.get("timeSpentSeconds")
    if not isinstance(seconds, int) or isinstance(seconds, bool):
        problems.append(f"timeSpentSeconds {str(seconds)[:20]!r} is not a whole number")
    elif seconds <= 0:
        problems.append(f"timeSpentSeconds {seconds} is not positive")
    elif seconds > MAX_WORKLOG_SECONDS:
        problems.append(f"timeSpentSeconds {seconds} is more than a week in one worklog")
    if problems:
        return BadEntry(key, f"Jira worklog {worklog_id}: " + "; ".join(problems), issue_text)
    assert issue_text is not None
    assert author is not None
    assert started is not None
    assert isinstance(seconds, int)
    return TimeEntry(key, source, issue_text, author, started, seconds)


def map_issue(
    source: str, raw: Mapping[str, Any], jql_rules: frozenset[int] = frozenset()
) -> Issue | None:
    """An issue from ``/search/jql`` with fields summary, project, labels; None if unusable."""
    issue_id, key = raw.get("id"), raw.get("key")
    fields = raw.get("fields")
    if (
        not isinstance(issue_id, str | int)
        or not isinstance(key, str)
        or not isinstance(fields, Mapping)
    ):
        return None
    project = fields.get("project")
    project_key = project.get("key") if isinstance(project, Mapping) else None
    if not isinstance(project_key, str):
        project_key = key.rsplit("-", 1)[0]
    labels = fields.get("labels")
    summary = fields.get("summary")
    return Issue(
        source=source,
        issue_id=clean_text(str(issue_id)),
        key=clean_text(key),
        project=clean_text(project_key),
        summary=clean_text(summary) if isinstance(summary, str) else "",
        labels=frozenset(clean_text(x) for x in labels if isinstance(x, str))
        if isinstance(labels, list)
        else frozenset(),
        jql_rules=jql_rules,
    )
