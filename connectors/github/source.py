"""The GitHub time source: ``/spend`` lines of issue and pull-request comments.

Per configured repository, one fetch yields batches the sync records one transaction each
(cursor included):

1. **issues** (pull requests included) updated since the ``issues:<repo>`` cursor:
   ``/repos/{o}/{r}/issues?state=all&sort=updated&direction=asc&since=``, for titles and
   labels; the cursor moves after the last page;
2. **comments** edited or written since the ``comments:<repo>`` cursor, repo-wide:
   ``/repos/{o}/{r}/issues/comments?sort=updated&direction=asc&since=`` (sorted by
   ``updated`` so edits are seen, which GitHub's default order by id would miss). Each
   page is a batch whose cursor is the newest ``updated_at`` on it. A ``/spend`` line
   removed from an edited comment is a deletion of that entry;
3. **deletions**: GitHub has no deletion feed. An issue's ``comments`` count drops when a
   comment is deleted, so the repository's issues are listed (100 a page; the first step's
   pages serve when it listed them all) and only issues with lines on an open draft whose
   count differs from the one recorded at the last look (cursor ``count:<issue id>``), or
   that had comments in step 2 (a deletion and an addition leave the count alone), have
   their comments listed again, with ``If-None-Match`` (a 304 is free of rate limit); an
   issue with comments in step 2 but no open line yet has its recorded count dropped, so
   it is listed once it has one.
   Entries of the issue that no comment yields any more are deleted. An issue that is no
   longer listed is asked for at its address: transferred (301, followed), it is recorded
   in its new repository, where no rule may take it; 404 or 410 (gone private, or out of
   the token's view), it is skipped: invisible is not deleted. A no-change sync thus costs
   a few pages per repository, not one request per issue.

   A deletion a webhook reported (``issue_comment`` ``deleted``, recorded by the dashboard
   server; SPEC §12) is applied first, without listing anything: the comment's entries are
   deleted, and when the issue's comment count the event gave is exactly one less than
   the count last recorded, that count is recorded, so step 3 finds nothing to list again.
   Any other count (an event lost before it, a comment added since) leaves the recorded
   count, and step 3 lists the issue's comments as it would without the webhook.

Every ``since`` re-reads ``overlap_seconds`` behind its cursor; cursors come from GitHub's
own timestamps.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from connectors.github.client import GitHubApi, GitHubConfigError, GitHubLostAccess
from connectors.github.mapping import (
    comment_prefix,
    issue_number,
    issue_repository,
    map_comment,
    map_issue,
    parse_github_time,
)
from worker.core.model import Issue, TimeEntry
from worker.ports import BadEntry, Report, SourceBatch, SourceContext, SourceKind


def _iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


class GitHubSource:
    """``EntrySource`` for one GitHub (or GitHub Enterprise) host."""

    kind = SourceKind.GITHUB

    def __init__(
        self,
        name: str,
        api: GitHubApi,
        *,
        repos: list[str],
        zone: ZoneInfo,
        overlap_seconds: int = 120,
    ) -> None:
        self.name = name
        self.api = api
        self.repos = sorted(set(repos))
        self.zone = zone
        self.overlap = timedelta(seconds=overlap_seconds)

    def close(self) -> None:
        self.api.close()

    def _since(self, cursor: str | None) -> dict[str, str]:
        moment = parse_github_time(cursor)
        return {"since": _iso(moment - self.overlap)} if moment else {}

    def fetch(
        self, cursors: Mapping[str, str], context: SourceContext | None = None
    ) -> Iterator[SourceBatch]:
        context = context or SourceContext()
        cursors = dict(cursors)  # reported deletions update the counts step 3 compares
        # asked before anything is yielded (a later question waits for the recording)
        reports = [r for r in context.reports() if r.kind == "comment_deleted" and r.repo]
        for repo in self.repos:
            try:
                mine = [r for r in reports if (r.repo or "").casefold() == repo.casefold()]
                if mine:
                    yield self._apply_reports(mine, cursors, context)
                yield from self._repository(repo, cursors, context)
            except GitHubLostAccess as exc:
                # lost access is not deletion: its lines stay; every other repository syncs
                why = f"GitHub answered {exc.status}" + (f" ({exc.detail})" if exc.detail else "")
                yield SourceBatch(
                    unreachable=(
                        (
                            f"repository {repo}",
                            f"{why}: the token cannot see repository {repo} (any more), or it "
                            "is gone; its billed lines stay as they are",
                        ),
                    )
                )

    def _repository(
        self, repo: str, cursors: Mapping[str, str], context: SourceContext
    ) -> Iterator[SourceBatch]:
        numbers: dict[int, str] = {}  # issue number -> stable id, as learnt this fetch
        counts: dict[int, int] = {}  # issue number -> GitHub's comment count
        complete = f"issues:{repo}" not in cursors  # step 1 lists every issue
        yield from self._issues(repo, cursors, numbers, counts)
        look = _Look(counts if complete else None)
        yield from self._comments(repo, cursors, numbers, context, look)
        yield from self._relist_open(repo, cursors, context, look, numbers)

    def _apply_reports(
        self, reports: list[Report], cursors: dict[str, str], context: SourceContext
    ) -> SourceBatch:
        """The entries of comments whose deletion a webhook reported, deleted; the issue's
        count recorded when the event's is exactly one less than the one recorded."""
        active = context.active_entry_keys_of({r.issue_id for r in reports if r.issue_id})
        deleted: list[str] = []
        counts: dict[str, str] = {}
        for report in reports:
            prefix = comment_prefix(self.api.host, report.item_id)
            mine = active.get(report.issue_id or "", ())
            deleted += sorted(k for k in mine if k.startswith(prefix))
            stream = f"count:{report.issue_id}"
            known = cursors.get(stream, "")
            if (
                report.comments is not None
                and known.isdigit()
                and int(known) - 1 == report.comments
            ):
                counts[stream] = cursors[stream] = str(report.comments)
        return SourceBatch(
            deleted=tuple(deleted), cursors=counts, settled=tuple(r.id for r in reports)
        )

    # --- 1. issues -------------------------------------------------------------------------

    def _issues(
        self,
        repo: str,
        cursors: Mapping[str, str],
        numbers: dict[int, str],
        counts: dict[int, int],
    ) -> Iterator[SourceBatch]:
        stream = f"issues:{repo}"
        newest = cursors.get(stream)
        params = {"state": "all", "sort": "updated", "direction": "asc", **self._since(newest)}
        route = "/repos/{owner}/{repo}/issues"
        for page in self.api.pages(f"/repos/{repo}/issues", params, route=route):
            issues: list[Issue] = []
            for raw in page:
                issue = map_issue(self.name, repo, raw)
                if issue is None:
                    continue
                issues.append(issue)
                numbers[int(raw["number"])] = issue.issue_id
                if isinstance(raw.get("comments"), int):
                    counts[int(raw["number"])] = raw["comments"]
                newest = _later(newest, raw.get("updated_at"))
            yield SourceBatch(issues=tuple(issues))
        if newest:
            yield SourceBatch(cursors={stream: newest})

    def _issue_ids(
        self, repo: str, wanted: set[int], numbers: dict[int, str], context: SourceContext
    ) -> list[Issue]:
        """Stable ids for issue numbers: learnt this fetch, known to the store, or asked."""
        missing = {n for n in wanted if n not in numbers}
        if missing:
            known = context.issue_ids_by_key([f"{repo}#{n}" for n in missing])
            for key, issue_id in known.items():
                numbers[int(key.rsplit("#", 1)[1])] = issue_id
        found: list[Issue] = []
        for number in sorted(n for n in wanted if n not in numbers):
            answer = self.api.get(
                f"/repos/{repo}/issues/{number}", route="/repos/{owner}/{repo}/issues/{number}"
            )
            issue = (
                map_issue(self.name, repo, answer.data) if isinstance(answer.data, dict) else None
            )
            if issue is not None:
                numbers[number] = issue.issue_id
                found.append(issue)
        return found

    # --- 2. comments -------------------------------------------------------------------------

    def _map(
        self, repo: str, page: list[Any], numbers: dict[int, str], context: SourceContext
    ) -> tuple[list[Issue], list[TimeEntry], list[BadEntry], list[str]]:
        wanted = {n for raw in page if (n := issue_number(raw)) is not None}
        issues = self._issue_ids(repo, wanted, numbers, context)
        entries: list[TimeEntry] = []
        bad: list[BadEntry] = []
        removed: list[str] = []
        ids = {numbers[n] for n in wanted if n in numbers}
        active = context.active_entry_keys_of(ids) if ids else {}  # one question a page
        for raw in page:
            number = issue_number(raw)
            issue_id = numbers.get(number) if number is not None else None
            good, wrong = map_comment(self.api.host, self.name, issue_id, raw, self.zone)
            entries += good
            bad += wrong
            if issue_id is not None and isinstance(raw.get("id"), int):
                # /spend lines taken out of an edited comment: those entries are deleted
                prefix = comment_prefix(self.api.host, raw["id"])
                now = {e.key for e in good} | {b.key for b in wrong}
                removed += sorted(
                    k for k in active.get(issue_id, ()) if k.startswith(prefix) and k not in now
                )
        return issues, entries, bad, removed

    def _comments(
        self,
        repo: str,
        cursors: Mapping[str, str],
        numbers: dict[int, str],
        context: SourceContext,
        look: _Look,
    ) -> Iterator[SourceBatch]:
        stream = f"comments:{repo}"
        newest = cursors.get(stream)
        full = newest is None  # every comment of the repository is on these pages
        since = self._since(newest)
        params = {"sort": "updated", "direction": "asc", **since}
        route = "/repos/{owner}/{repo}/issues/comments"
        for page in self.api.pages(f"/repos/{repo}/issues/comments", params, route=route):
            issues, entries, bad, removed = self._map(repo, page, numbers, context)
            for raw in page:
                newest = _later(newest, raw.get("updated_at"))
                number = issue_number(raw)
                if number is not None and isinstance(raw.get("id"), int):
                    created = raw.get("created_at")
                    new = not since or not isinstance(created, str) or created >= since["since"]
                    look.seen(number, raw["id"], full=full, new=new)
            yield SourceBatch(
                issues=tuple(issues),
                entries=tuple(entries),
                bad=tuple(bad),
                deleted=tuple(removed),
                cursors={stream: newest} if newest else {},
            )

    # --- 3. deletions ---------------------------------------------------------------------------

    def _listed_counts(self, repo: str) -> dict[int, int]:
        """GitHub's comment count of every issue and pull request of ``repo``."""
        counts: dict[int, int] = {}
        route = "/repos/{owner}/{repo}/issues"
        for page in self.api.pages(f"/repos/{repo}/issues", {"state": "all"}, route=route):
            for raw in page:
                if isinstance(raw.get("number"), int) and isinstance(raw.get("comments"), int):
                    counts[raw["number"]] = raw["comments"]
        return counts

    def _relist_open(
        self,
        repo: str,
        cursors: Mapping[str, str],
        context: SourceContext,
        look: _Look,
        numbers: dict[int, str],
    ) -> Iterator[SourceBatch]:
        recorded: dict[str, str] = {}
        if look.counts is not None:  # a first look: remember each fully read issue's count
            for number, total in look.counts.items():
                if number in numbers and look.complete(number, total):
                    recorded[f"count:{numbers[number]}"] = str(total)
        open_here = {
            int(key.rsplit("#", 1)[1]): issue_id
            for issue_id, key in context.open_issues()
            if key.startswith(f"{repo}#") and key.rsplit("#", 1)[1].isdigit()
        }
        if look.counts is None:
            # An issue with a comment written since the last look but no open line (yet:
            # its lines are planned after this step) is not listed; its recorded count is
            # dropped, since it no longer counts that comment: left as it was, it would
            # match GitHub's again once the comment is deleted, and the deletion would go
            # unseen. With no count recorded, the issue is listed once it has an open line.
            stale = sorted(
                f"count:{numbers[n]}"
                for n in look.added
                if n in numbers and n not in open_here and f"count:{numbers[n]}" in cursors
            )
            recorded.update(dict.fromkeys(stale, ""))
        if not open_here:
            if recorded:
                yield SourceBatch(cursors=recorded)
            return
        counts = look.counts if look.counts is not None else self._listed_counts(repo)
        for number, issue_id in sorted(open_here.items()):
            count = counts.get(number)
            if count is None:
                moved = self._whereabouts(repo, number, issue_id)
                if moved is not None:
                    yield SourceBatch(issues=(moved,))
                continue
            stream = f"count:{issue_id}"
            known = cursors.get(stream, recorded.get(stream))
            if known == str(count) and number not in look.added:
                continue  # nothing added or deleted since the last look
            batch = self._relist(repo, number, issue_id, cursors, context, count)
            if batch is not None:
                yield batch
        if recorded:
            yield SourceBatch(cursors=recorded)

    def _whereabouts(self, repo: str, number: int, issue_id: str) -> Issue | None:
        """An issue with lines on an open draft that its repository no longer lists: asked
        for at its address. Transferred, GitHub answers 301 to where it is now (the client
        follows it): the issue in its new repository, which no rule may take. Gone from view
        (404, 410): None, and its lines stay as they are (invisible is not deleted)."""
        try:
            answer = self.api.get(
                f"/repos/{repo}/issues/{number}", route="/repos/{owner}/{repo}/issues/{number}"
            )
        except GitHubConfigError:
            return None
        raw = answer.data if isinstance(answer.data, dict) else {}
        now = issue_repository(raw)
        if str(raw.get("id")) != issue_id or now is None or now.casefold() == repo.casefold():
            return None
        # GitHub's spelling may differ from the config's: a configured repository keeps the
        # config's, so the rules that name it still take the issue
        now = next((r for r in self.repos if r.casefold() == now.casefold()), now)
        return map_issue(self.name, now, raw)

    def _relist(
        self,
        repo: str,
        number: int,
        issue_id: str,
        cursors: Mapping[str, str],
        context: SourceContext,
        count: int,
    ) -> SourceBatch | None:
        """Every comment of one issue again: what no comment yields any more is deleted.
        The batch records the count of comments seen (``count`` when a 304 says no change)."""
        stream = f"etag:{issue_id}"
        path = f"/repos/{repo}/issues/{number}/comments"
        route = "/repos/{owner}/{repo}/issues/{number}/comments"
        try:
            first = self.api.get(path, {"per_page": 100}, etag=cursors.get(stream), route=route)
        except GitHubConfigError:
            return None  # gone from view (404): invisible is not deleted
        if first.status == 304:
            return SourceBatch(cursors={f"count:{issue_id}": str(count)})
        comments = list(first.data or [])
        if len(comments) >= 100:  # more than a page: read the rest (no ETag shortcut)
            comments = [c for page in self.api.pages(path, {}, route=route) for c in page]
        present: set[str] = set()
        entries: list[TimeEntry] = []
        bad: list[BadEntry] = []
        for raw in comments:
            good, wrong = map_comment(self.api.host, self.name, issue_id, raw, self.zone)
            entries += good
            bad += wrong
            present |= {e.key for e in good} | {b.key for b in wrong}
        deleted = sorted(context.active_entry_keys(issue_id) - present)
        new_etag = first.headers.get("etag")
        cursors_out = {f"count:{issue_id}": str(len(comments))}
        if new_etag and len(comments) < 100:
            cursors_out[stream] = new_etag
        return SourceBatch(
            entries=tuple(entries),
            bad=tuple(bad),
            deleted=tuple(deleted),
            cursors=cursors_out,
        )


class _Look:
    """What one fetch learnt about a repository's comments, for the deletion check."""

    def __init__(self, counts: dict[int, int] | None) -> None:
        self.counts = counts  # GitHub's counts, when step 1 listed every issue
        self.added: set[int] = set()  # issues with comments written since the last look
        self._all: dict[int, set[int]] = {}  # issue -> comment ids, when step 2 read all

    def seen(self, number: int, comment_id: int, *, full: bool, new: bool) -> None:
        if new:
            self.added.add(number)
        if full:
            self._all.setdefault(number, set()).add(comment_id)

    def complete(self, number: int, count: int) -> bool:
        """Step 2 read all comments of the repository and exactly ``count`` of this issue."""
        return len(self._all.get(number, ())) == count


def _later(current: str | None, candidate: object) -> str | None:
    """The later of two GitHub timestamps (ISO strings in UTC compare as text)."""
    if not isinstance(candidate, str) or parse_github_time(candidate) is None:
        return current
    return candidate if current is None or candidate > current else current
