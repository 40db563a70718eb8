"""The billing core's vocabulary: frozen values in, a frozen plan out.

Sources yield :class:`Issue` and :class:`TimeEntry`; configuration yields :class:`Rule`;
the state store yields a :class:`LedgerView` (the lines and drafts billsync already knows).
:func:`worker.core.planner.plan` turns them into a :class:`Plan`, which the shell carries out.
Durations are integer seconds, datetimes are timezone-aware, money is ``Decimal`` / int
minor units.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any, Literal

RoundingMode = Literal["up", "nearest", "down"]
RoundingScope = Literal["entry", "line"]
Grouping = Literal["issue", "entry"]
PeriodKind = Literal["monthly", "weekly", "none"]
DraftStatus = Literal["DRAFT", "FINALIZED", "VOID"]

MAX_LINES_PER_DRAFT = 100
DESCRIPTION_LIMIT = 255


@dataclass(frozen=True, slots=True)
class Issue:
    """An issue or pull request, as the source describes it now."""

    source: str
    issue_id: str  # stable at the source: survives moves and renames
    key: str  # current key: "PROJ-123" / "owner/repo#42"
    project: str  # Jira project key / GitHub "owner/repo"
    summary: str
    labels: frozenset[str] = frozenset()
    jql_rules: frozenset[int] = frozenset()  # indexes of JQL rules the source says it matches


@dataclass(frozen=True, slots=True)
class TimeEntry:
    """One piece of tracked time (a Jira worklog, one ``/spend`` line)."""

    key: str  # stable for life: jira:<site>:worklog:<id>, github:<host>:comment:<id>:<n>
    source: str
    issue_id: str
    author: str  # Jira accountId / GitHub login
    started: datetime  # timezone-aware
    seconds: int  # raw; negative for a GitHub correction


@dataclass(frozen=True, slots=True)
class Rule:
    """One contract rule from the configuration, in the core's terms."""

    index: int  # position in the config: the first matching rule decides
    source: str
    reference_type: str  # "JIRA" / "GITHUB"
    contract_id: str
    currency: str
    hourly_rate_minor: int
    projects: frozenset[str] = frozenset()
    repos: frozenset[str] = frozenset()
    has_jql: bool = False
    non_billable_labels: frozenset[str] = frozenset()
    exchange_rate: Decimal = Decimal(1)
    person_rates: Mapping[str, int] = field(default_factory=dict)
    increment_minutes: int = 0
    rounding_mode: RoundingMode = "up"
    rounding_scope: RoundingScope = "entry"
    grouping: Grouping = "issue"
    period: PeriodKind = "monthly"
    invoice_number: str = "{contract}-{period}-{seq}"
    # Rates from a price list (SPEC §11), resolved by the shell before planning: the item
    # each rate came from (the rule's, and per person), the price string used per item,
    # and why the rule cannot be priced now (its new work is then held back).
    rate_item: str | None = None
    person_items: Mapping[str, str] = field(default_factory=dict)
    prices: Mapping[str, str] = field(default_factory=dict)
    held: str | None = None

    def rate_for(self, author: str) -> int:
        return self.person_rates.get(author, self.hourly_rate_minor)

    def item_for(self, author: str) -> str | None:
        """The price list item ``author``'s rate comes from, or None (a number)."""
        if author in self.person_rates:
            return self.person_items.get(author)
        return self.rate_item


@dataclass(frozen=True, slots=True, order=True)
class DraftKey:
    """A draft invoice's identity: billsync's drafts are keyed by (contract, currency,
    period) and numbered ``seq`` 1, 2, ... as each fills up."""

    contract_id: str
    currency: str
    period: str
    seq: int


@dataclass(frozen=True, slots=True, order=True)
class GroupKey:
    """What one billable line bills: a (contract, currency, period) and an issue, or one
    entry of it. Built from stable ids, so a moved issue keeps its line."""

    contract_id: str
    currency: str
    period: str
    source: str
    issue_id: str
    entry_key: str = ""  # set for grouping "entry"

    def encode(self) -> str:
        return json.dumps(
            [
                self.contract_id,
                self.currency,
                self.period,
                self.source,
                self.issue_id,
                self.entry_key,
            ],
            separators=(",", ":"),
        )

    @classmethod
    def decode(cls, text: str) -> GroupKey:
        contract_id, currency, period, source, issue_id, entry_key = json.loads(text)
        return cls(contract_id, currency, period, source, issue_id, entry_key)


@dataclass(frozen=True, slots=True)
class LineContent:
    """Everything a billable carries, as billsync computes it."""

    reference_type: str
    reference_id: str
    description: str
    quantity: Decimal
    amount_minor: int
    currency: str
    position: int
    metadata: Mapping[str, Any]

    def digest(self) -> str:
        """A stable hash of the payload: equal digests mean nothing to write."""
        payload = {
            "referenceType": self.reference_type,
            "referenceId": self.reference_id,
            "description": self.description,
            "quantity": str(self.quantity),
            "amountMinor": self.amount_minor,
            "currencyCode": self.currency,
            "order": self.position,
            "metadata": self.metadata,
        }
        text = json.dumps(payload, sort_keys=True, separators=(",", ":"), default=str)
        return hashlib.sha256(text.encode()).hexdigest()


# --- what the ledger already holds ------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class LedgerDraft:
    id: int
    key: DraftKey
    status: DraftStatus
    invoice_number: str
    line_count: int  # every line on it (any source), zeroed ones too: no billable delete
    next_position: int  # the ``order`` the next line on it gets
    references: frozenset[tuple[str, str]] = frozenset()  # (type, id) of the lines on it


@dataclass(frozen=True, slots=True)
class LedgerLine:
    id: int
    group: GroupKey
    draft_id: int
    reference_type: str
    reference_id: str
    position: int
    entries: Mapping[str, int]  # entry key -> raw seconds this line counts
    written_digest: str | None  # digest of what Kukkingu holds; None: never written
    late: bool = False


@dataclass(frozen=True, slots=True)
class LedgerView:
    drafts: tuple[LedgerDraft, ...] = ()
    lines: tuple[LedgerLine, ...] = ()


# --- the plan ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class NewDraft:
    key: DraftKey
    invoice_number: str
    exchange_rate: Decimal


@dataclass(frozen=True, slots=True)
class LineCreate:
    group: GroupKey
    draft: DraftKey
    content: LineContent
    entries: Mapping[str, int]  # entry key -> raw seconds counted on this line
    late: bool


@dataclass(frozen=True, slots=True)
class LineUpdate:
    line_id: int
    content: LineContent
    entries: Mapping[str, int]
    zeroed: bool


@dataclass(frozen=True, slots=True)
class DriftItem:
    """Less time, a deleted entry, or an entry out of every rule (its issue moved to an
    unmapped project or repository, or labelled non-billable) on a line whose invoice is
    FINALIZED."""

    line_id: int
    entry_key: str
    kind: Literal["less_time", "entry_deleted", "out_of_scope"]
    seconds_delta: int


@dataclass(frozen=True, slots=True)
class Problem:
    """An entry that cannot be billed, and why (shown to the operator)."""

    entry_key: str
    kind: Literal["unmapped", "bad_entry"]
    reason: str


@dataclass(frozen=True, slots=True)
class Plan:
    new_drafts: tuple[NewDraft, ...] = ()
    creates: tuple[LineCreate, ...] = ()
    updates: tuple[LineUpdate, ...] = ()
    drift: tuple[DriftItem, ...] = ()
    problems: tuple[Problem, ...] = ()
    excluded: tuple[str, ...] = ()  # entry keys on issues with a non-billable label
    held: tuple[str, ...] = ()  # entry keys of rules that cannot be priced now (Rule.held)

    @property
    def writes(self) -> int:
        return len(self.new_drafts) + len(self.creates) + len(self.updates)
