"""The Jira time source: issues, worklogs and deletions, incrementally and completely.

One fetch yields batches the sync records one transaction each (cursor included):

1. **issues** of the configured projects (``project in (...)``) and of each JQL rule (those
   are tagged with the rule's index), updated since the ``issues`` cursor, through
   ``/search/jql`` with ``nextPageToken`` and explicit fields; the cursor moves only after
   the last page;
2. **worklogs**: ``/worklog/updated?since=`` pages (at most 1000 ids each), each page's
   worklogs read with one ``POST /worklog/list``; the issues of those worklogs that step 1
   did not return (other projects, issues moved in) are looked up by id. Each page is a
   batch whose cursor is the page's ``until``;
3. **deletions**: ``/worklog/deleted?since=`` pages, cursor ``until`` likewise.

Every feed re-reads an overlap (``overlap_seconds``, at least 60) behind its cursor:
Jira leaves out the last minute and its search is eventually consistent. Re-read entries
are de-duplicated by their stable key when recorded. Issue ids, not keys, identify issues,
so an issue moved to another project keeps its entries.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import replace
from datetime import UTC, datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from connectors.jira.client import JiraApi, JiraQueryRefused
from connectors.jira.mapping import map_issue, map_worklog, parse_jira_datetime, worklog_key
from worker.core.model import Issue, TimeEntry
from worker.sources import BadEntry, SourceBatch, SourceContext
from worker.store import SourceKind

log = logging.getLogger("billsync.jira")

ISSUE_FIELDS = ("summary", "project", "labels", "issuetype", "updated")
ID_CHUNK = 100  # issue ids per `id in (...)` query, to keep the JQL short


def _quote(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


class JiraSource:
    """``EntrySource`` for one configured Jira site."""

    kind = SourceKind.JIRA

    def __init__(
        self,
        name: str,
        api: JiraApi,
        *,
        projects: Iterable[str],
        jql_rules: Mapping[int, str] | None = None,
        overlap_seconds: int = 120,
    ) -> None:
        self.name = name
        self.api = api
        self.projects = sorted(set(projects))
        self.jql_rules = dict(jql_rules or {})
        self.overlap_ms = overlap_seconds * 1000
        self._newest_ms = 0

    # --- issues -------------------------------------------------------------------------------

    def _user_zone(self) -> ZoneInfo:
        """JQL dates are read in the API user's time zone."""
        me = self.api._get_json("GET", "myself")
        try:
            return ZoneInfo(str(me.get("timeZone") or "UTC"))
        except (ZoneInfoNotFoundError, ValueError):
            return ZoneInfo("UTC")

    def _since_clause(self, cursor: str | None) -> str:
        if cursor is None or cursor == "0":
            return ""
        since = max(0, int(cursor) - self.overlap_ms) / 1000
        local = datetime.fromtimestamp(since, UTC).astimezone(self._user_zone())
        return f' AND updated >= "{local.strftime("%Y/%m/%d %H:%M")}"'

    def _searches(self, cursor: str | None) -> list[tuple[str, frozenset[int]]]:
        since = self._since_clause(cursor)
        searches: list[tuple[str, frozenset[int]]] = []
        if self.projects:
            keys = ", ".join(_quote(p) for p in self.projects)
            searches.append((f"project in ({keys}){since} ORDER BY updated ASC", frozenset()))
        for index, jql in sorted(self.jql_rules.items()):
            searches.append((f"({jql}){since} ORDER BY updated ASC", frozenset({index})))
        return searches

    def _issue_pages(self, jql: str, tags: frozenset[int]) -> Iterator[list[Issue]]:
        for page in self.api.search(jql, ISSUE_FIELDS):
            page = [raw for raw in page if isinstance(raw, Mapping)]  # drift: skip, never crash
            for raw in page:
                fields = raw.get("fields")
                updated = parse_jira_datetime(
                    fields.get("updated") if isinstance(fields, Mapping) else None
                )
                if updated is not None:
                    self._newest_ms = max(self._newest_ms, int(updated.timestamp() * 1000))
            yield [i for i in (map_issue(self.name, raw, tags) for raw in page) if i is not None]

    def _issues_by_id(self, ids: Sequence[str]) -> list[Issue]:
        found: list[Issue] = []
        for start in range(0, len(ids), ID_CHUNK):
            chunk = ids[start : start + ID_CHUNK]
            try:
                found.extend(self._search_ids(chunk))
            except JiraQueryRefused:
                # Jira refuses the whole `id in (...)` when one id does not exist (a worklog
                # of a deleted issue, a broken issueId): ask for each alone and leave the
                # missing ones out; their entries show as unmapped work naming the issue.
                for one in chunk if len(chunk) > 1 else ():
                    try:
                        found.extend(self._search_ids([one]))
                    except JiraQueryRefused as exc:
                        log.info("jira issue %s not found: %s", one, exc)
        return found

    def _search_ids(self, ids: Sequence[str]) -> list[Issue]:
        if not all(i.isdigit() for i in ids):
            raise JiraQueryRefused(f"issue ids {list(ids)} are not all numeric")
        found: list[Issue] = []
        for page in self._issue_pages(f"id in ({', '.join(ids)})", frozenset()):
            found.extend(page)
        return found

    # --- the fetch ---------------------------------------------------------------------------

    def fetch(
        self, cursors: Mapping[str, str], context: SourceContext | None = None
    ) -> Iterator[SourceBatch]:
        # The issues cursor is the newest `updated` Jira reported (its clock, not ours).
        self._newest_ms = int(cursors.get("issues", "0"))
        tagged: dict[str, Issue] = {}
        for jql, tags in self._searches(cursors.get("issues")):
            for page in self._issue_pages(jql, tags):
                for issue in page:  # an issue several rules take keeps every tag
                    old = tagged.get(issue.issue_id)
                    if old is not None:
                        issue = replace(issue, jql_rules=old.jql_rules | issue.jql_rules)
                    tagged[issue.issue_id] = issue
                yield SourceBatch(issues=tuple(page))
        yield SourceBatch(cursors={"issues": str(self._newest_ms)})

        yield from self._worklog_batches(cursors, set(tagged), context or SourceContext())
        yield from self._deletion_batches(cursors)

    def _worklog_batches(
        self,
        cursors: Mapping[str, str],
        known: set[str],
        context: SourceContext,
    ) -> Iterator[SourceBatch]:
        previous = int(cursors.get("worklog_updated", "0"))
        since = max(0, previous - self.overlap_ms)
        for page in self.api.worklog_feed("updated", since):
            ids = sorted({int(v["worklogId"]) for v in page["values"] if "worklogId" in v})
            entries: list[TimeEntry] = []
            bad: list[BadEntry] = []
            for raw in self.api.worklogs(ids) if ids else []:
                mapped = map_worklog(self.api.site, self.name, raw)
                if isinstance(mapped, TimeEntry):
                    entries.append(mapped)
                else:
                    bad.append(mapped)
            unknown = {e.issue_id for e in entries} - known
            unknown -= context.known_issues(unknown) if unknown else set()
            issues = self._issues_by_id(sorted(unknown, key=_numeric)) if unknown else []
            known |= {e.issue_id for e in entries}
            previous = _cursor(page, previous)
            yield SourceBatch(
                issues=tuple(issues),
                entries=tuple(entries),
                bad=tuple(bad),
                cursors={"worklog_updated": str(previous)},
            )

    def _deletion_batches(self, cursors: Mapping[str, str]) -> Iterator[SourceBatch]:
        previous = int(cursors.get("worklog_deleted", "0"))
        since = max(0, previous - self.overlap_ms)
        for page in self.api.worklog_feed("deleted", since):
            deleted = tuple(
                worklog_key(self.api.site, v["worklogId"])
                for v in page["values"]
                if "worklogId" in v
            )
            previous = _cursor(page, previous)
            yield SourceBatch(deleted=deleted, cursors={"worklog_deleted": str(previous)})


def _cursor(page: Mapping[str, object], previous: int) -> int:
    """The cursor after a feed page: its ``until`` (the youngest change on it), never behind
    the cursor the fetch started from. The next fetch re-reads ``overlap`` before it."""
    until = page.get("until")
    until_ms = int(until) if isinstance(until, int | str) and str(until).isdigit() else previous
    return max(until_ms, previous)


def _numeric(text: str) -> tuple[int, str]:
    return (int(text), text) if text.isdigit() else (0, text)
