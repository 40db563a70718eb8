"""The source port (pure): what a time source yields, and what it may ask the store.

A source (the Jira and GitHub connectors, or an in-memory one in tests) yields
:class:`SourceBatch` values: issues, entries, deletions, bad entries, unreachable parts and
the cursor values that cover them; :mod:`worker.ingest` records each batch in one
transaction. Connectors import this module and :mod:`worker.core`, nothing of the store.
"""

from __future__ import annotations

import enum
from collections.abc import Collection, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Protocol

from worker.core.model import Issue, TimeEntry


class SourceKind(enum.StrEnum):
    JIRA = "jira"
    GITHUB = "github"


@dataclass(frozen=True, slots=True)
class BadEntry:
    """An entry the source could not turn into a TimeEntry, and why."""

    key: str
    reason: str
    issue_id: str | None = None


@dataclass(frozen=True, slots=True)
class SourceBatch:
    issues: tuple[Issue, ...] = ()
    entries: tuple[TimeEntry, ...] = ()
    deleted: tuple[str, ...] = ()  # entry keys deleted at the source
    bad: tuple[BadEntry, ...] = ()
    cursors: Mapping[str, str] = field(default_factory=dict)  # stream -> new value ("": drop)
    # parts of the source that stopped answering (a repository the token lost): (what, why).
    # Lost access is not deletion: what was read from them before stays as it is.
    unreachable: tuple[tuple[str, str], ...] = ()
    # ids of webhook reports (SourceContext.reports) this batch covers: they are removed in
    # the batch's transaction
    settled: tuple[int, ...] = ()


@dataclass(frozen=True, slots=True)
class Report:
    """A change a webhook reported before the sync (SPEC §12): ``kind`` is
    ``comment_deleted`` (GitHub), ``worklog`` or ``worklog_deleted`` (Jira)."""

    id: int
    kind: str
    item_id: str  # the comment's or worklog's id
    repo: str | None = None  # GitHub: owner/repo
    issue_id: str | None = None
    comments: int | None = None  # GitHub: the issue's comment count after it


class SourceContext:
    """What a source may ask the store while it fetches (read-only). This base class
    knows nothing, which suits a first sync, a dry run and tests."""

    def issue_scopes(self, ids: Collection[str]) -> dict[str, tuple[str, frozenset[int]]]:
        """The known ones among these issue ids: their project (or repository) and the JQL
        rules that took them, as last recorded."""
        return {}

    def issue_ids_by_key(self, keys: Collection[str]) -> dict[str, str]:
        """The stable ids of issues known by their current key (``owner/repo#42``)."""
        return {}

    def open_issues(self) -> list[tuple[str, str]]:
        """(issue id, key) of the issues with lines on DRAFT invoices."""
        return []

    def active_entry_keys(self, issue_id: str) -> set[str]:
        """The keys of the issue's entries the store holds as active."""
        return self.active_entry_keys_of([issue_id]).get(issue_id, set())

    def active_entry_keys_of(self, issue_ids: Collection[str]) -> dict[str, set[str]]:
        """:meth:`active_entry_keys` of several issues at once (absent: none)."""
        return {}

    def reports(self) -> list[Report]:
        """Changes webhooks reported that no sync has read yet, oldest first."""
        return []


class EntrySource(Protocol):
    """What the sync needs from a time source."""

    name: str
    kind: SourceKind

    def fetch(self, cursors: Mapping[str, str], context: SourceContext) -> Iterator[SourceBatch]:
        """Everything changed since ``cursors`` (empty on the first sync), in batches;
        ``context`` answers questions about what the store already holds."""
        ...
