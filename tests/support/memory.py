"""A time source held in memory (tests, dry runs of the billing core)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import replace

from worker.core.model import Issue, TimeEntry
from worker.ports import SourceBatch, SourceContext, SourceKind


class InMemorySource:
    """A time source held in memory, with a change log the cursor walks (tests, dry runs).

    Every change gets the next sequence number; the cursor ``log`` is the last number a sync
    has recorded. ``batch_size`` splits a fetch into several batches, as a paginated API
    would.
    """

    def __init__(
        self, name: str = "mem", kind: SourceKind = SourceKind.JIRA, batch_size: int = 1000
    ) -> None:
        self.name, self.kind, self.batch_size = name, kind, batch_size
        self.issues: dict[str, Issue] = {}
        self.entries: dict[str, TimeEntry] = {}
        self._log: list[tuple[str, str]] = []  # (kind, key): "issue" | "entry" | "deleted"

    def put_issue(self, issue: Issue) -> None:
        self.issues[issue.issue_id] = issue
        self._log.append(("issue", issue.issue_id))

    def put_entries(self, entries: Iterable[TimeEntry]) -> None:
        for entry in entries:
            self.entries[entry.key] = entry
            self._log.append(("entry", entry.key))

    def edit(self, key: str, **changes: object) -> None:
        self.put_entries([replace(self.entries[key], **changes)])  # type: ignore[arg-type]

    def delete(self, key: str) -> None:
        del self.entries[key]
        self._log.append(("deleted", key))

    def move(self, issue_id: str, key: str, project: str) -> None:
        self.put_issue(replace(self.issues[issue_id], key=key, project=project))

    def fetch(
        self, cursors: Mapping[str, str], context: SourceContext | None = None
    ) -> Iterator[SourceBatch]:
        start = int(cursors.get("log", "0"))
        end = len(self._log)
        for low in range(start, end, self.batch_size):
            high = min(low + self.batch_size, end)
            issues: dict[str, Issue] = {}
            entries: dict[str, TimeEntry] = {}
            deleted: list[str] = []
            for kind, key in self._log[low:high]:
                if kind == "issue":
                    issues[key] = self.issues[key]
                elif kind == "entry" and key in self.entries:
                    entries[key] = self.entries[key]
                elif kind == "deleted":
                    deleted.append(key)
            yield SourceBatch(
                issues=tuple(issues.values()),
                entries=tuple(entries.values()),
                deleted=tuple(deleted),
                cursors={"log": str(high)},
            )
