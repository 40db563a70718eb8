"""The billing planner: entries + rules + the ledger's view -> a :class:`Plan`.

A pure function of its inputs (entries are processed in key order, groups in key order), so
the same entries in any order give the same plan. For each *group* (what one line bills:
contract, currency, period, issue, or one entry of it) it compares what should be billed
with what the ledger holds:

- lines on FINALIZED invoices are frozen: the time they count stays counted, by entry, in
  whatever group the entry is in now (an entry whose issue moved to another contract, or
  whose date moved to another period, is not billed a second time). More time is **late
  work** (a new line, marked late); less time, a deleted entry, or an entry that left every
  rule (unmapped, or non-billable) is **drift**;
- lines on VOID invoices count nothing: their entries are billed again;
- the one line on a DRAFT invoice (the *live* line) is recomputed and updated in place; when
  all its entries are gone (deleted, or out of every rule) it becomes 0 / 0, marked
  ``zeroed``;
- a group with time to bill and no live line gets a new line on a draft chosen by
  :class:`_Drafts` (at most 100 lines a draft; the next one is opened when full);
- work of a rule that cannot be priced now (``Rule.held``: its price list item is missing,
  archived, or no Service) is held back: its groups are left exactly as the ledger has
  them (no new line, no update, no zeroing), and its entries are listed in ``Plan.held``.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal
from zoneinfo import ZoneInfo

from worker.core.model import (
    MAX_LINES_PER_DRAFT,
    DraftKey,
    DriftItem,
    GroupKey,
    Issue,
    LedgerDraft,
    LedgerLine,
    LedgerView,
    LineContent,
    LineCreate,
    LineUpdate,
    NewDraft,
    Plan,
    Problem,
    Rule,
    TimeEntry,
)
from worker.core.periods import period_of
from worker.core.pricing import ZERO, Item, describe, item_for, line_content


def match_rule(rules: Sequence[Rule], issue: Issue) -> Rule | None:
    """The first rule (in config order) whose source and project / repo / JQL take the issue."""
    for rule in rules:
        if rule.source != issue.source:
            continue
        if (
            issue.project in rule.projects
            or issue.project in rule.repos
            or (rule.has_jql and rule.index in issue.jql_rules)
        ):
            return rule
    return None


def entry_reference(issue_key: str, entry_key: str) -> str:
    """``PROJ-123:<worklog id>`` / ``owner/repo#42:<comment id>:<n>`` for grouping ``entry``."""
    for marker in (":worklog:", ":comment:"):
        if marker in entry_key:
            return f"{issue_key}:{entry_key.split(marker, 1)[1]}"
    return f"{issue_key}:{entry_key}"


@dataclass
class _Slot:
    """A draft during planning: existing or new, with its fill and the references on it."""

    key: DraftKey
    status: str
    next_position: int
    count: int
    references: set[tuple[str, str]]


@dataclass
class _Drafts:
    """Draft bookkeeping: which drafts exist, how full they are, which must be opened."""

    slots: dict[DraftKey, _Slot] = field(default_factory=dict)
    opened: list[NewDraft] = field(default_factory=list)
    # (contract, currency, period) -> its drafts by seq: one lookup per line, not a scan of
    # every draft (that made a 500,000-worklog plan quadratic)
    by_group: dict[tuple[str, str, str], list[_Slot]] = field(default_factory=dict)

    @classmethod
    def from_ledger(cls, drafts: Iterable[LedgerDraft]) -> _Drafts:
        book = cls()
        for draft in drafts:
            book._add(
                _Slot(
                    draft.key,
                    draft.status,
                    draft.next_position,
                    draft.line_count,
                    set(draft.references),
                )
            )
        for group in book.by_group.values():
            group.sort(key=lambda s: s.key.seq)
        return book

    def _add(self, slot: _Slot) -> None:
        self.slots[slot.key] = slot
        key = (slot.key.contract_id, slot.key.currency, slot.key.period)
        self.by_group.setdefault(key, []).append(slot)

    def withdraw(self, slot: _Slot) -> None:
        """Forget ``slot`` if this plan opened it and nothing was placed on it: a draft
        opened for a line that turned out to bill nothing must not become an empty invoice."""
        if slot.count or not self.opened or self.opened[-1].key != slot.key:
            return
        self.opened.pop()
        del self.slots[slot.key]
        self.by_group[(slot.key.contract_id, slot.key.currency, slot.key.period)].remove(slot)

    def _of(self, contract: str, currency: str, period: str) -> list[_Slot]:
        return self.by_group.get((contract, currency, period), [])

    def with_room(self, contract: str, currency: str, period: str) -> _Slot | None:
        for slot in self._of(contract, currency, period):
            if slot.status == "DRAFT" and slot.count < MAX_LINES_PER_DRAFT:
                return slot
        return None

    def closed(self, contract: str, currency: str, period: str) -> bool:
        """Invoiced and finalized, with no DRAFT left open: new work there is late."""
        statuses = {s.status for s in self._of(contract, currency, period)}
        return "FINALIZED" in statuses and "DRAFT" not in statuses

    def open(self, rule: Rule, period: str) -> _Slot:
        seqs = [s.key.seq for s in self._of(rule.contract_id, rule.currency, period)]
        key = DraftKey(rule.contract_id, rule.currency, period, max(seqs, default=0) + 1)
        number = rule.invoice_number.format(
            contract=key.contract_id, currency=key.currency, period=key.period, seq=key.seq
        )
        self.opened.append(NewDraft(key, number, rule.exchange_rate))
        slot = _Slot(key, "DRAFT", 0, 0, set())
        self._add(slot)  # the highest seq of its group: the group stays sorted
        return slot


@dataclass
class _Builder:
    """Accumulates the plan while groups are visited in order."""

    zone: ZoneInfo
    now: datetime
    drafts: _Drafts
    status_by_draft: dict[int, str]
    key_by_draft: dict[int, DraftKey]
    # entry key -> seconds counted on FINALIZED lines (any group), and the newest such line
    covered: dict[str, int] = field(default_factory=dict)
    holder: dict[str, int] = field(default_factory=dict)
    creates: list[LineCreate] = field(default_factory=list)
    updates: list[LineUpdate] = field(default_factory=list)
    drift: list[DriftItem] = field(default_factory=list)

    def count_frozen(self, lines: Iterable[LedgerLine]) -> None:
        """What FINALIZED invoices hold, by entry. A line counts as billed there only if it
        was written; one recorded but never written (its draft closed first) bills nothing."""
        for line in sorted(lines, key=lambda line: line.id):
            if self.status_by_draft[line.draft_id] != "FINALIZED" or not line.written_digest:
                continue
            for key, seconds in line.entries.items():
                self.covered[key] = self.covered.get(key, 0) + seconds
                self.holder[key] = line.id

    def left_behind(self, present: set[str], out_of_scope: set[str]) -> None:
        """Drift for time a FINALIZED invoice holds whose entry is gone, or left every rule."""
        for key in sorted(set(self.covered) - present):
            kind: Literal["entry_deleted", "out_of_scope"] = (
                "out_of_scope" if key in out_of_scope else "entry_deleted"
            )
            self.drift.append(DriftItem(self.holder[key], key, kind, -self.covered[key]))

    def visit(
        self,
        group: GroupKey,
        members: list[tuple[TimeEntry, Rule]],
        lines: list[LedgerLine],
        issue: Issue | None,
    ) -> None:
        frozen = [
            line
            for line in lines
            if self.status_by_draft[line.draft_id] == "FINALIZED" and line.written_digest
        ]
        live = [line for line in lines if self.status_by_draft[line.draft_id] == "DRAFT"]
        voided = any(self.status_by_draft[line.draft_id] == "VOID" for line in lines)
        items = self._items(members)
        rule = members[0][1] if members else None
        late = bool(frozen)

        if live:
            # One live line per group is what the planner creates; should a crash or a bug
            # ever leave more, the oldest one keeps the work and the rest are zeroed.
            keep, *extra = sorted(live, key=lambda line: line.id)
            for line in extra:
                self._update(line, self._zero(line, issue), {}, zeroed=True)
            if rule is None or issue is None:
                self._update(keep, self._zero(keep, issue), {}, zeroed=True)
                return
            content = self._content(
                group,
                rule,
                issue,
                items,
                draft=self.key_by_draft[keep.draft_id],
                position=keep.position,
                own=keep,
                late=late,
                voided=voided,
            )
            entries = {item.entry_key: item.raw_seconds for item in items}
            self._update(keep, content, entries, zeroed=content.quantity == ZERO)
            return

        if rule is None or issue is None or not items:
            return
        late = late or self.drafts.closed(group.contract_id, group.currency, group.period)
        slot = self._choose(group, rule, late)
        content = self._content(
            group,
            rule,
            issue,
            items,
            draft=slot.key,
            position=slot.next_position,
            own=None,
            late=late,
            voided=voided,
        )
        if content.quantity == ZERO:
            # Never billed and nothing to bill: no line. Less time after an invoice was
            # finalized is drift, recorded by _items for the entries that caused it, or
            # here for a negative correction.
            self._negative_drift(items, frozen)
            self.drafts.withdraw(slot)  # a draft opened for this line only is not needed
            return
        slot.count += 1
        slot.next_position += 1
        slot.references.add((content.reference_type, content.reference_id))
        entries = {item.entry_key: item.raw_seconds for item in items}
        self.creates.append(LineCreate(group, slot.key, content, entries, late))

    def _items(self, members: list[tuple[TimeEntry, Rule]]) -> list[Item]:
        """What the live line should count: each entry's time beyond what FINALIZED invoices
        already hold of it; less time than they hold is drift."""
        items = []
        for entry, rule in members:
            before = self.covered.get(entry.key, 0)
            if entry.key in self.covered and entry.seconds < before:
                self.drift.append(
                    DriftItem(
                        self.holder[entry.key], entry.key, "less_time", entry.seconds - before
                    )
                )
            elif entry.seconds != before or entry.key not in self.covered:
                items.append(item_for(entry.key, entry.author, entry.seconds, before, rule))
        return items

    def _negative_drift(self, items: list[Item], frozen: list[LedgerLine]) -> None:
        if not frozen:
            return
        last = max(frozen, key=lambda line: line.id)
        for item in items:
            if item.raw_seconds < 0:
                self.drift.append(DriftItem(last.id, item.entry_key, "less_time", item.raw_seconds))

    def _choose(self, group: GroupKey, rule: Rule, late: bool) -> _Slot:
        own = (group.contract_id, group.currency, group.period)
        slot = self.drafts.with_room(*own)
        if slot is not None:
            return slot
        if not late:
            return self.drafts.open(rule, group.period)
        current = period_of(self.now, self.zone, rule.period)
        slot = self.drafts.with_room(group.contract_id, group.currency, current)
        return slot if slot is not None else self.drafts.open(rule, current)

    def _reference(
        self, group: GroupKey, rule: Rule, issue: Issue, draft: DraftKey, own: LedgerLine | None
    ) -> str:
        reference = entry_reference(issue.key, group.entry_key) if group.entry_key else issue.key
        if draft.period != group.period:
            reference = f"{reference}@{group.period}"  # late work on another period's draft
        wanted = (rule.reference_type, reference)
        mine = own is not None and (own.reference_type, own.reference_id) == wanted
        if wanted in self.drafts.slots[draft].references and not mine:
            reference = f"{reference}~{group.source}"  # two sources, one key, one invoice
        return reference

    def _content(
        self,
        group: GroupKey,
        rule: Rule,
        issue: Issue,
        items: list[Item],
        *,
        draft: DraftKey,
        position: int,
        own: LedgerLine | None,
        late: bool,
        voided: bool,
    ) -> LineContent:
        metadata: dict[str, object] = {
            "source": group.source,
            "issueId": group.issue_id,
            "issueKey": issue.key,
            "period": group.period,
        }
        if late or (own is not None and own.late):
            metadata["late"] = True
        if voided:
            metadata["rebilled"] = True
        return line_content(
            items=items,
            rule=rule,
            reference_id=self._reference(group, rule, issue, draft, own),
            summary=issue.summary,
            position=position,
            metadata=metadata,
        )

    def _zero(self, line: LedgerLine, issue: Issue | None) -> LineContent:
        """The 0 / 0 form of a line whose entries are gone (billables cannot be deleted)."""
        return LineContent(
            reference_type=line.reference_type,
            reference_id=line.reference_id,
            description=describe(line.reference_id, issue.summary if issue else ""),
            quantity=ZERO,
            amount_minor=0,
            currency=line.group.currency,
            position=line.position,
            metadata={
                "source": line.group.source,
                "issueId": line.group.issue_id,
                "period": line.group.period,
                "entries": 0,
                "rawSeconds": 0,
                "billedSeconds": 0,
                "rates": [],
                "zeroed": True,
                **({"late": True} if line.late else {}),
            },
        )

    def _update(
        self, line: LedgerLine, content: LineContent, entries: dict[str, int], *, zeroed: bool
    ) -> None:
        if content.digest() != line.written_digest or dict(line.entries) != entries:
            self.updates.append(LineUpdate(line.id, content, entries, zeroed))
        slot = self.drafts.slots[self.key_by_draft[line.draft_id]]
        slot.references.discard((line.reference_type, line.reference_id))
        slot.references.add((content.reference_type, content.reference_id))


def plan(
    *,
    entries: Iterable[TimeEntry],
    issues: Iterable[Issue],
    rules: Sequence[Rule],
    zone: ZoneInfo,
    now: datetime,
    ledger: LedgerView,
    scope: frozenset[str],
) -> Plan:
    """Plan the billing of ``entries`` (every active entry of the sources in ``scope``).

    ``ledger`` holds every draft (any source) and the lines of the sources in ``scope``;
    lines of other sources are left alone.
    """
    issue_by_id = {(issue.source, issue.issue_id): issue for issue in issues}
    rules = sorted(rules, key=lambda rule: rule.index)
    problems: list[Problem] = []
    excluded: list[str] = []
    held: list[str] = []
    held_groups: set[GroupKey] = set()
    members: dict[GroupKey, list[tuple[TimeEntry, Rule]]] = defaultdict(list)
    for entry in sorted(entries, key=lambda e: e.key):
        if entry.source not in scope:
            raise ValueError(f"entry {entry.key} is from {entry.source}, outside {sorted(scope)}")
        issue = issue_by_id.get((entry.source, entry.issue_id))
        if issue is None:
            problems.append(
                Problem(
                    entry.key, "unmapped", f"issue {entry.issue_id} of {entry.source} is unknown"
                )
            )
            continue
        rule = match_rule(rules, issue)
        if rule is None:
            problems.append(
                Problem(
                    entry.key,
                    "unmapped",
                    f"no rule takes {issue.key} (project {issue.project}) of {entry.source}",
                )
            )
            continue
        if issue.labels & rule.non_billable_labels:
            excluded.append(entry.key)
            continue
        group = GroupKey(
            rule.contract_id,
            rule.currency,
            period_of(entry.started, zone, rule.period),
            entry.source,
            entry.issue_id,
            entry.key if rule.grouping == "entry" else "",
        )
        if rule.held is not None:
            held.append(entry.key)
            held_groups.add(group)
            continue
        members[group].append((entry, rule))

    lines: dict[GroupKey, list[LedgerLine]] = defaultdict(list)
    for line in ledger.lines:
        if line.group.source in scope:
            lines[line.group].append(line)

    builder = _Builder(
        zone=zone,
        now=now,
        drafts=_Drafts.from_ledger(ledger.drafts),
        status_by_draft={d.id: d.status for d in ledger.drafts},
        key_by_draft={d.id: d.key for d in ledger.drafts},
    )
    builder.count_frozen(line for group_lines in lines.values() for line in group_lines)
    for group in sorted((set(members) | set(lines)) - held_groups):
        issue = issue_by_id.get((group.source, group.issue_id))
        builder.visit(group, members.get(group, []), lines.get(group, []), issue)
    present = {entry.key for group_members in members.values() for entry, _ in group_members}
    present.update(held)  # held back, not gone: no drift for them
    builder.left_behind(present, {p.entry_key for p in problems} | set(excluded))

    return Plan(
        new_drafts=tuple(builder.drafts.opened),
        creates=tuple(builder.creates),
        updates=tuple(builder.updates),
        drift=tuple(builder.drift),
        problems=tuple(problems),
        excluded=tuple(excluded),
        held=tuple(held),
    )
