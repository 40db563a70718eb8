"""The Jira time source: issues, worklogs and deletions, incrementally and completely.

One fetch yields batches the sync records one transaction each (cursor included):

1. **issues** of the configured projects (``project in (...)``) and of each JQL rule (those
   are tagged with the rule's index), updated since the ``issues`` cursor, through
   ``/search/jql`` with ``nextPageToken`` and explicit fields; then one id-only search for
   what changed outside every project and rule, and, by id, those of them with lines on
   open drafts (they left every rule); the cursor moves only after all of it;
2. **worklogs**: ``/worklog/updated?since=`` pages (at most 1000 ids each), each page's
   worklogs read with one ``POST /worklog/list``; the issues of those worklogs that step 1
   did not return are looked up by id when billsync has never seen them (other projects,
   issues moved in) or holds them as in scope (they may have moved out). Each page is a
   batch whose cursor is the page's ``until``;
3. **deletions**: ``/worklog/deleted?since=`` pages, cursor ``until`` likewise.

Before step 2, the worklogs webhooks reported written or deleted (SPEC §12) are read by id
with ``POST /worklog/list``: the feeds leave out the last minute, so without this an edit
would reach its draft a minute or more after its webhook. A reported deletion is applied
when Jira no longer returns the worklog. The feeds list them again later; re-read entries
change nothing.

A configured project Jira refuses (the account lost Browse projects there) is reported as
unreachable and the others are read; its cursors at that moment are kept (``lost:<key>``)
and restored when it answers again, so nothing logged on it meanwhile is skipped.

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

from connectors.jira.client import ID_PAGE, WORKLOG_LIST_LIMIT, JiraApi, JiraQueryRefused
from connectors.jira.mapping import map_issue, map_worklog, parse_jira_datetime, worklog_key
from worker.core.model import Issue, TimeEntry
from worker.ports import BadEntry, Report, SourceBatch, SourceContext, SourceKind

log = logging.getLogger("billsync.jira")

ISSUE_FIELDS = ("summary", "project", "labels", "issuetype", "updated")
LOST = "lost:"  # cursor of a project that stopped answering: the cursors when it was lost
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

    def _rule_searches(self, since: str) -> list[tuple[str, frozenset[int]]]:
        """Each JQL rule's search, its issues tagged with the rule."""
        return [
            (f"({jql}){since} ORDER BY updated ASC", frozenset({index}))
            for index, jql in sorted(self.jql_rules.items())
        ]

    # --- projects that stop answering ---------------------------------------------------------

    def _lost(self, key: str) -> str | None:
        """Why project ``key`` does not answer (Jira refuses a JQL naming a project the
        account cannot browse, or that is gone), or None if it does."""
        try:
            next(iter(self.api.search(f"project = {_quote(key)}", ("id",))), None)
        except JiraQueryRefused as exc:
            return (
                f"{exc}: the account cannot browse project {key} (any more), or it is gone; "
                "its billed lines stay as they are"
            )
        return None

    def _reachable(self, cursors: Mapping[str, str]) -> tuple[list[str], dict[str, str], list[str]]:
        """(projects to search, lost projects and why, projects answering again): the
        projects lost at an earlier sync are asked first, alone."""
        lost: dict[str, str] = {}
        back: list[str] = []
        for key in self.projects:
            if f"{LOST}{key}" in cursors:
                why = self._lost(key)
                if why is None:
                    back.append(key)
                else:
                    lost[key] = why
        return [p for p in self.projects if p not in lost], lost, back

    def _project_pages(
        self, since: str, projects: list[str], lost: dict[str, str]
    ) -> Iterator[list[Issue]]:
        """The issues of ``projects`` updated ``since``. A refused search (a project that
        stopped answering) finds the lost projects, adds them to ``lost`` and searches the
        rest; only a refusal of the first page can be that."""
        pages = self._issue_pages(_in_projects(projects, since), frozenset())
        try:
            first = next(pages, None)
        except JiraQueryRefused:
            lost |= {key: why for key in projects if (why := self._lost(key)) is not None}
            rest = [p for p in projects if p not in lost]
            if len(rest) == len(projects):
                raise  # not a project: the query itself is refused
            if rest:
                yield from self._project_pages(since, rest, lost)
            return
        if first is not None:
            yield first
            yield from pages

    def _issue_pages(
        self, jql: str, tags: frozenset[int], *, cursor: bool = True
    ) -> Iterator[list[Issue]]:
        """Pages of a search; ``cursor``: their ``updated`` may move the issues cursor (the
        project and rule searches only: a lookup by id is not a complete read of anything)."""
        for page in self.api.search(jql, ISSUE_FIELDS):
            page = [raw for raw in page if isinstance(raw, Mapping)]  # drift: skip, never crash
            for raw in page if cursor else ():
                fields = raw.get("fields")
                updated = parse_jira_datetime(
                    fields.get("updated") if isinstance(fields, Mapping) else None
                )
                if updated is not None:
                    self._newest_ms = max(self._newest_ms, int(updated.timestamp() * 1000))
            yield [i for i in (map_issue(self.name, raw, tags) for raw in page) if i is not None]

    def _issues_by_id(self, ids: Sequence[str]) -> list[Issue]:
        """The issues with these ids; ids Jira does not know (deleted, or in a project the
        account cannot see) are left out."""
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
        for page in self._issue_pages(f"id in ({', '.join(ids)})", frozenset(), cursor=False):
            found.extend(page)
        return found

    def _left_every_rule(self, since: str, projects: Sequence[str]) -> set[str]:
        """Ids of the issues updated ``since`` that no project search or JQL rule takes (an
        issue of a project the account cannot browse is not among them: Jira hides it)."""
        scope = [f"project in ({', '.join(_quote(p) for p in projects)})"] if projects else []
        scope += [f"({jql})" for _, jql in sorted(self.jql_rules.items())]
        if not scope:
            return set()
        outside = f"NOT ({' OR '.join(scope)})"
        condition = since.removeprefix(" AND ")
        jql = f"{condition} AND {outside}" if condition else outside
        found: set[str] = set()
        for page in self.api.search(jql, ("id",), page_size=ID_PAGE):
            found |= {str(raw["id"]) for raw in page if isinstance(raw.get("id"), str | int)}
        return found

    def _reread(self, ids: Sequence[str]) -> list[Issue]:
        """Issues billsync holds as in scope, read again by id, each tagged with the JQL
        rules that still take it: they may have left every rule."""
        found = {issue.issue_id: issue for issue in self._issues_by_id(ids)}
        ordered = sorted(found, key=_numeric)
        for index, jql in sorted(self.jql_rules.items()):
            for start in range(0, len(ordered), ID_CHUNK):
                chunk = ", ".join(ordered[start : start + ID_CHUNK])
                for page in self._issue_pages(
                    f"({jql}) AND id in ({chunk})", frozenset({index}), cursor=False
                ):
                    for issue in page:
                        old = found[issue.issue_id]
                        found[issue.issue_id] = replace(old, jql_rules=old.jql_rules | {index})
        return [found[i] for i in ordered]

    def close(self) -> None:
        self.api.close()

    # --- the fetch ---------------------------------------------------------------------------

    def fetch(
        self, cursors: Mapping[str, str], context: SourceContext | None = None
    ) -> Iterator[SourceBatch]:
        context = context or SourceContext()
        # asked before anything is yielded: a question asked later waits until every batch
        # yielded before it is recorded, which would stop the next page's read-ahead
        reports = [r for r in context.reports() if r.kind in ("worklog", "worklog_deleted")]
        projects, lost, back = self._reachable(cursors)
        if back:
            # A project that answers again: what changed in it while it did not answer was
            # skipped by the cursors, so they go back to where they were when it was lost.
            cursors = _rewound(cursors, [cursors[f"{LOST}{key}"] for key in back])
        # The issues cursor is the newest `updated` Jira reported (its clock, not ours).
        self._newest_ms = int(cursors.get("issues", "0"))
        since = self._since_clause(cursors.get("issues"))
        tagged: dict[str, Issue] = {}

        def take(page: list[Issue]) -> SourceBatch:
            for issue in page:  # an issue several rules take keeps every tag
                old = tagged.get(issue.issue_id)
                if old is not None:
                    issue = replace(issue, jql_rules=old.jql_rules | issue.jql_rules)
                tagged[issue.issue_id] = issue
            return SourceBatch(issues=tuple(page))

        if projects:
            for page in self._project_pages(since, projects, lost):
                yield take(page)
        for jql, tags in self._rule_searches(since):
            for page in self._issue_pages(jql, tags):
                yield take(page)
        if lost:
            marks = f"{cursors.get('issues', '0')},{cursors.get('worklog_updated', '0')}"
            yield SourceBatch(
                unreachable=tuple((f"project {key}", why) for key, why in sorted(lost.items())),
                cursors={f"{LOST}{key}": cursors.get(f"{LOST}{key}", marks) for key in lost},
            )
        # An issue with lines on an open draft that the searches did not return, but that
        # changed, may have left every rule (moved to another project, out of a rule's JQL):
        # one id-only search finds what changed outside every rule, and those with open
        # lines are read again, before the cursor moves past the change.
        stale: list[str] = []
        open_ids = {i for i, _ in context.open_issues() if i not in tagged and i.isdigit()}
        if open_ids:
            reachable = [p for p in projects if p not in lost]
            stale = sorted(open_ids & self._left_every_rule(since, reachable), key=_numeric)
        if stale:
            moved = self._reread(stale)
            tagged |= {issue.issue_id: issue for issue in moved}
            if moved:
                yield SourceBatch(issues=tuple(moved))
        yield SourceBatch(cursors={"issues": str(self._newest_ms)})

        known = set(tagged)
        if reports:
            yield from self._reported(reports, known, context)
        yield from self._worklog_batches(cursors, known, context)
        yield from self._deletion_batches(cursors)
        if back:  # read again in full: forget the marks
            yield SourceBatch(cursors={f"{LOST}{key}": "" for key in back})

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
            batch = self._read_worklogs(ids, known, context)
            previous = _cursor(page, previous)
            yield replace(batch, cursors={"worklog_updated": str(previous)})

    def _read_worklogs(
        self, ids: Sequence[int], known: set[str], context: SourceContext
    ) -> SourceBatch:
        """These worklogs (one ``POST /worklog/list``), with the issues they name that the
        store does not know, or holds as in scope without this fetch's searches returning
        them (they may have left every rule since)."""
        entries: list[TimeEntry] = []
        bad: list[BadEntry] = []
        for raw in self.api.worklogs(ids) if ids else []:
            mapped = map_worklog(self.api.site, self.name, raw)
            if isinstance(mapped, TimeEntry):
                entries.append(mapped)
            else:
                bad.append(mapped)
        unknown = {e.issue_id for e in entries} - known
        scopes = context.issue_scopes(unknown) if unknown else {}
        stale = sorted(
            (i for i, (project, rules) in scopes.items() if project in self.projects or rules),
            key=_numeric,
        )
        unknown -= set(scopes)
        issues = self._issues_by_id(sorted(unknown, key=_numeric)) if unknown else []
        issues += self._reread(stale) if stale else []
        known |= {e.issue_id for e in entries}
        return SourceBatch(issues=tuple(issues), entries=tuple(entries), bad=tuple(bad))

    def _reported(
        self, reports: Sequence[Report], known: set[str], context: SourceContext
    ) -> Iterator[SourceBatch]:
        """Worklogs webhooks reported written or deleted, read by id: the worklog feeds
        leave out the last minute, the webhook does not. A worklog reported deleted that
        Jira no longer returns is deleted; one it returns is recorded as it is (a deletion
        reported for a worklog that still exists is not believed)."""
        ids = sorted({int(r.item_id) for r in reports if r.item_id.isdigit()})
        for start in range(0, len(ids), WORKLOG_LIST_LIMIT):
            chunk = ids[start : start + WORKLOG_LIST_LIMIT]
            batch = self._read_worklogs(chunk, known, context)
            found = {e.key for e in batch.entries} | {b.key for b in batch.bad}
            gone = {
                worklog_key(self.api.site, r.item_id)
                for r in reports
                if r.kind == "worklog_deleted" and r.item_id.isdigit() and int(r.item_id) in chunk
            }
            settled = tuple(
                r.id for r in reports if not r.item_id.isdigit() or int(r.item_id) in chunk
            )
            yield replace(batch, deleted=tuple(sorted(gone - found)), settled=settled)

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


def _in_projects(projects: Sequence[str], since: str) -> str:
    keys = ", ".join(_quote(p) for p in projects)
    return f"project in ({keys}){since} ORDER BY updated ASC"


def _rewound(cursors: Mapping[str, str], marks: Sequence[str]) -> dict[str, str]:
    """``cursors`` with the issues and worklog cursors back at the earliest of ``marks``
    (``"<issues>,<worklog_updated>"``, as recorded when a project was lost)."""
    out = dict(cursors)
    for mark in marks:
        issues, _, worklogs = mark.partition(",")
        for stream, value in (("issues", issues), ("worklog_updated", worklogs)):
            if value.isdigit() and int(value) < int(out.get(stream, "0") or "0"):
                out[stream] = value
    return out


def _cursor(page: Mapping[str, object], previous: int) -> int:
    """The cursor after a feed page: its ``until`` (the youngest change on it), never behind
    the cursor the fetch started from. The next fetch re-reads ``overlap`` before it."""
    until = page.get("until")
    until_ms = int(until) if isinstance(until, int | str) and str(until).isdigit() else previous
    return max(until_ms, previous)


def _numeric(text: str) -> tuple[int, str]:
    return (int(text), text) if text.isdigit() else (0, text)
