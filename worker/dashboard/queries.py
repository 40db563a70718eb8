"""Read-only queries for the dashboard: plain dataclasses, no ORM objects leave this module.

Every function takes an open :class:`~sqlalchemy.orm.Session` and only reads. Times are
timezone-aware UTC; the templates convert them for display.
"""

from __future__ import annotations

import itertools
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from worker.config import Settings, parse_crontab
from worker.core.model import MAX_LINES_PER_DRAFT
from worker.currencies import format_minor
from worker.ledger import open_drift, open_problems
from worker.rules import cache_of, cached_items, rules_from
from worker.store.models import (
    Cursor,
    Draft,
    Drift,
    Entry,
    EntryState,
    Error,
    ErrorKind,
    Line,
    LineState,
    PriceItem,
    PriceList,
    Run,
    RunStatus,
    Source,
    SourceIssue,
)

RUN_LIMIT = 100
CHART_DAYS = 14


def jsonable(value: Any) -> Any:
    """A dataclass tree as JSON-ready data (datetimes as UTC ISO strings)."""
    if hasattr(value, "__dataclass_fields__"):
        value = asdict(value)
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    if isinstance(value, datetime):
        return value.isoformat()
    return value


# --- runs -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class RunRow:
    id: int
    source: str | None
    trigger: str
    status: str
    started_at: datetime
    finished_at: datetime | None
    duration_seconds: float | None
    counts: dict[str, Any]
    requests: dict[str, Any]
    error: str | None
    task_id: str | None
    retry_at: datetime | None = None  # a ``retrying`` run's next attempt

    @property
    def lines_created(self) -> int:
        return int(self.counts.get("linesCreated", 0) or 0)

    @property
    def lines_updated(self) -> int:
        return int(self.counts.get("linesUpdated", 0) or 0)

    @property
    def requests_total(self) -> int:
        return sum(_flat_requests(self.requests).values())

    @property
    def requests_flat(self) -> dict[str, int]:
        return _flat_requests(self.requests)


def _flat_requests(requests: dict[str, Any], prefix: str = "") -> dict[str, int]:
    """``{"kukkingu": {"GET /x": 2}}`` -> ``{"kukkingu GET /x": 2}``."""
    flat: dict[str, int] = {}
    for key, value in requests.items():
        name = f"{prefix} {key}".strip()
        if isinstance(value, dict):
            flat.update(_flat_requests(value, name))
        elif isinstance(value, int | float):
            flat[name] = int(value)
    return flat


def _run_row(run: Run, source_names: dict[int, str]) -> RunRow:
    duration = None
    if run.finished_at is not None:
        duration = (run.finished_at - run.started_at).total_seconds()
    return RunRow(
        id=run.id,
        source=source_names.get(run.source_id) if run.source_id is not None else None,
        trigger=str(run.trigger),
        status=str(run.status),
        started_at=run.started_at,
        finished_at=run.finished_at,
        duration_seconds=duration,
        counts=dict(run.counts or {}),
        requests=dict(run.requests or {}),
        error=run.error,
        task_id=run.task_id,
        retry_at=run.retry_at,
    )


def _source_names(session: Session) -> dict[int, str]:
    return {row.id: row.name for row in session.scalars(select(Source))}


def runs(
    session: Session,
    *,
    source: str | None = None,
    status: str | None = None,
    trigger: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    limit: int = RUN_LIMIT,
    offset: int = 0,
) -> list[RunRow]:
    """The newest runs first, filtered by source name, status, trigger and start time
    (``since`` inclusive, ``until`` exclusive); ``limit`` of them after skipping ``offset``."""
    names = _source_names(session)
    query = (
        select(Run)
        .order_by(Run.started_at.desc(), Run.id.desc())
        .limit(max(1, limit))
        .offset(max(0, offset))
    )
    if since is not None:
        query = query.where(Run.started_at >= since)
    if until is not None:
        query = query.where(Run.started_at < until)
    if source:
        query = query.join(Source, Run.source_id == Source.id).where(Source.name == source)
    if status:
        query = query.where(Run.status == status)
    if trigger:
        query = query.where(Run.trigger == trigger)
    return [_run_row(run, names) for run in session.scalars(query)]


def last_run(session: Session, source_id: int, names: dict[int, str]) -> RunRow | None:
    """The newest run of a source (what the overview and the Problems page show)."""
    newest = session.scalars(
        select(Run)
        .where(Run.source_id == source_id)
        .order_by(Run.started_at.desc(), Run.id.desc())
        .limit(1)
    ).first()
    return None if newest is None else _run_row(newest, names)


def run(session: Session, run_id: int) -> RunRow | None:
    row = session.get(Run, run_id)
    return None if row is None else _run_row(row, _source_names(session))


@dataclass(frozen=True)
class DayBar:
    day: date
    runs: int
    failed: int
    lines: int


def runs_per_day(session: Session, *, now: datetime, zone: ZoneInfo) -> list[DayBar]:
    """Runs, failed runs and lines created+updated per local day, for the last CHART_DAYS."""
    today = now.astimezone(zone).date()
    first = today - timedelta(days=CHART_DAYS - 1)
    since = datetime(first.year, first.month, first.day, tzinfo=zone) - timedelta(days=1)
    totals: dict[date, list[int]] = {
        first + timedelta(days=i): [0, 0, 0] for i in range(CHART_DAYS)
    }
    for row in session.scalars(select(Run).where(Run.started_at >= since)):
        day = row.started_at.astimezone(zone).date()
        if day not in totals:
            continue
        counts = row.counts or {}
        totals[day][0] += 1
        totals[day][1] += row.status == RunStatus.FAILED
        totals[day][2] += int(counts.get("linesCreated", 0) or 0)
        totals[day][2] += int(counts.get("linesUpdated", 0) or 0)
    return [DayBar(day, *values) for day, values in sorted(totals.items())]


# --- sources --------------------------------------------------------------------------------


@dataclass(frozen=True)
class SourceRow:
    name: str
    kind: str
    configured: bool
    schedule: str | None
    status: str  # ok | failing | never run | running | queued
    last_run: RunRow | None
    last_success_at: datetime | None
    cursor_stream: str | None
    cursor_value: str | None
    cursor_updated_at: datetime | None
    cursor_at: datetime | None  # the cursor's value as an instant, when it is one
    lag_seconds: float | None
    next_run_at: datetime | None
    unmapped: int
    bad_entries: int
    config_errors: int
    drift: int

    @property
    def needs_attention(self) -> bool:
        return self.status == "failing" or bool(
            self.unmapped or self.bad_entries or self.config_errors or self.drift
        )


@dataclass(frozen=True)
class Attention:
    level: str  # "error" | "warning"
    message: str
    link: str


@dataclass(frozen=True)
class Overview:
    sources: list[SourceRow]
    attention: list[Attention]
    chart: list[DayBar] = field(default_factory=list)


def _parse_time(value: str) -> datetime | None:
    """A cursor value as an instant: GitHub's ISO times, Jira's epoch milliseconds."""
    if value.isdigit() and len(value) >= 12:
        return datetime.fromtimestamp(int(value) / 1000, UTC)
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo is not None else None


def _position(cursors: Sequence[Cursor]) -> Cursor | None:
    """The most advanced cursor (the newest instant among those that are instants; ETag
    rows and the like are not positions), else the one written last."""
    timed = [(t, c) for c in cursors if (t := _parse_time(c.value)) is not None]
    if timed:
        return max(timed, key=lambda pair: pair[0])[1]
    return max(cursors, key=lambda c: c.updated_at, default=None)


def cursor_lag(value: str, updated_at: datetime, now: datetime) -> float:
    """How far behind a cursor is: from its value when it is a timestamp, else its update."""
    moment = _parse_time(value) or updated_at
    return max(0.0, (now - moment).total_seconds())


def next_run(schedule: str, now: datetime, zone: ZoneInfo) -> datetime | None:
    """The next time ``schedule`` (five crontab fields, in ``zone``) fires after ``now``.

    Celery's own parser expands the fields; like Celery, day of month and day of week must
    both match.
    """
    tab = parse_crontab(schedule)
    local = now.astimezone(zone).replace(second=0, microsecond=0) + timedelta(minutes=1)
    minutes, hours = sorted(tab.minute), sorted(tab.hour)
    for offset in range(366 * 5):
        day = local.date() + timedelta(days=offset)
        if (
            day.month not in tab.month_of_year
            or day.day not in tab.day_of_month
            or (day.weekday() + 1) % 7 not in tab.day_of_week
        ):
            continue
        for hour, minute in itertools.product(hours, minutes):
            candidate = datetime(day.year, day.month, day.day, hour, minute, tzinfo=zone)
            if candidate >= local:
                return candidate.astimezone(now.tzinfo)
    return None


def overview(
    session: Session,
    configured: Sequence[tuple[str, str, str]],
    *,
    now: datetime,
    zone: ZoneInfo,
    live: dict[str, str] | None = None,
) -> Overview:
    """Every source (configured as ``(name, kind, crontab)``, or only in the store).

    ``live`` maps a source name to "running" or "queued" as Redis says right now.
    """
    live = live or {}
    rows = {row.name: row for row in session.scalars(select(Source))}
    names = _source_names(session)
    errors = open_problems(session)
    drift = open_drift(session)
    config = {name: (kind, schedule) for name, kind, schedule in configured}
    ordered = [name for name, _, _ in configured] + sorted(set(rows) - set(config))
    result = []
    for name in ordered:
        row = rows.get(name)
        kind, schedule = config.get(name, (str(row.kind) if row else "?", None))
        last: RunRow | None = None
        cursor: Cursor | None = None
        if row is not None:
            last = last_run(session, row.id, names)
            cursor = _position(
                session.scalars(select(Cursor).where(Cursor.source_id == row.id)).all()
            )
        if name in live:
            status = live[name]
        elif last is None:
            status = "never run"
        else:
            status = {"failed": "failing", "succeeded": "ok"}.get(last.status, last.status)
        sid = row.id if row is not None else -1
        result.append(
            SourceRow(
                name=name,
                kind=kind,
                configured=name in config,
                schedule=schedule,
                status=status,
                last_run=last,
                last_success_at=row.last_success_at if row else None,
                cursor_stream=cursor.stream if cursor else None,
                cursor_value=cursor.value if cursor else None,
                cursor_updated_at=cursor.updated_at if cursor else None,
                cursor_at=_parse_time(cursor.value) if cursor else None,
                lag_seconds=cursor_lag(cursor.value, cursor.updated_at, now) if cursor else None,
                next_run_at=next_run(schedule, now, zone) if schedule else None,
                unmapped=errors.get((sid, "unmapped"), 0),
                bad_entries=errors.get((sid, "bad_entry"), 0),
                config_errors=errors.get((sid, "configuration"), 0),
                drift=drift.get(sid, 0),
            )
        )
    attention = _attention(result, errors)
    price_list = session.get(PriceList, 1)
    if price_list is not None and price_list.error is not None:
        cached = (
            f"billing uses the prices read {price_list.read_at:%Y-%m-%d %H:%M} UTC"
            if price_list.read_at is not None
            else "rules priced by an item are held until a read succeeds"
        )
        attention.append(
            Attention("warning", f"the Cliniko price list could not be read; {cached}", "/prices")
        )
    return Overview(result, attention, runs_per_day(session, now=now, zone=zone))


def _attention(
    sources: list[SourceRow], errors: dict[tuple[int | None, str], int]
) -> list[Attention]:
    items = []
    for src in sources:
        if src.status == "failing":
            items.append(Attention("error", f"source {src.name}: its last run failed", "/problems"))
        if src.config_errors:
            items.append(
                Attention(
                    "error",
                    f"source {src.name}: {src.config_errors} configuration error(s)",
                    "/problems",
                )
            )
        if not src.configured:
            items.append(
                Attention(
                    "warning",
                    f"source {src.name} is in the store but not in the configuration",
                    "/",
                )
            )
    general = errors.get((None, "configuration"), 0)
    if general:
        items.append(Attention("error", f"{general} configuration error(s)", "/problems"))
    unmapped = sum(s.unmapped for s in sources)
    bad = sum(s.bad_entries for s in sources)
    drift = sum(s.drift for s in sources)
    if unmapped:
        items.append(
            Attention(
                "warning", f"{unmapped} time entries match no rule (unmapped work)", "/problems"
            )
        )
    if bad:
        items.append(
            Attention("warning", f"{bad} bad time entries need fixing at the source", "/problems")
        )
    if drift:
        items.append(
            Attention(
                "warning", f"{drift} drift row(s) on finalized invoices not acknowledged", "/drift"
            )
        )
    return items


# --- drafts ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class DraftRow:
    id: int
    invoice_number: str
    contract_id: str
    currency: str
    period: str
    seq: int
    status: str
    kukkingu_id: str | None
    lines: int
    capacity: int
    amount_minor: int
    totals: dict[str, str]  # currency -> formatted sum of its lines

    @property
    def fill_percent(self) -> int:
        return min(100, round(100 * self.lines / self.capacity)) if self.capacity else 0


@dataclass(frozen=True)
class LineRow:
    id: int
    position: int
    reference: str
    description: str
    quantity: str
    amount_minor: int
    amount: str
    currency: str
    period: str
    state: str
    late: bool
    zeroed: bool
    kukkingu_id: str | None
    source: str | None = None  # the source's name
    reference_type: str = ""  # JIRA, GITHUB
    reference_id: str = ""  # ACME-1, owner/repo#3


def drafts(session: Session) -> list[DraftRow]:
    sums: dict[int, dict[str, int]] = defaultdict(dict)
    counts: dict[int, int] = defaultdict(int)
    rows = session.execute(
        select(Line.draft_id, Line.currency, func.count(), func.sum(Line.amount_minor)).group_by(
            Line.draft_id, Line.currency
        )
    )
    for draft_id, currency, n, total in rows:
        sums[draft_id][currency] = int(total or 0)
        counts[draft_id] += int(n)
    result = []
    for draft in session.scalars(select(Draft).order_by(Draft.created_at.desc(), Draft.id.desc())):
        totals = sums.get(draft.id) or {draft.currency: 0}
        result.append(
            DraftRow(
                id=draft.id,
                invoice_number=draft.invoice_number,
                contract_id=draft.contract_id,
                currency=draft.currency,
                period=draft.period,
                seq=draft.seq,
                status=str(draft.status),
                kukkingu_id=draft.kukkingu_id,
                lines=counts.get(draft.id, 0),
                capacity=MAX_LINES_PER_DRAFT,
                amount_minor=draft.amount_minor,
                totals={c: format_minor(v, c) for c, v in sorted(totals.items())},
            )
        )
    return result


def draft_totals(rows: Sequence[DraftRow], session: Session) -> dict[str, str]:
    """The sum of every line, per currency, across all drafts."""
    totals = session.execute(
        select(Line.currency, func.sum(Line.amount_minor)).group_by(Line.currency)
    )
    return {c: format_minor(int(v or 0), c) for c, v in sorted(totals)} if rows else {}


def draft(session: Session, draft_id: int) -> tuple[DraftRow, list[LineRow]] | None:
    found = next((d for d in drafts(session) if d.id == draft_id), None)
    if found is None:
        return None
    lines = session.scalars(select(Line).where(Line.draft_id == draft_id).order_by(Line.position))
    names = _source_names(session)
    return found, [
        LineRow(
            id=line.id,
            position=line.position,
            reference=f"{line.reference_type}:{line.reference_id}",
            description=line.description,
            quantity=str(line.quantity),
            amount_minor=line.amount_minor,
            amount=format_minor(line.amount_minor, line.currency),
            currency=line.currency,
            period=line.period,
            state=str(line.state),
            late=line.late,
            zeroed=line.state == LineState.ZEROED,
            kukkingu_id=line.kukkingu_id,
            source=names.get(line.source_id),
            reference_type=line.reference_type,
            reference_id=line.reference_id,
        )
        for line in lines
    ]


# --- problems and drift ---------------------------------------------------------------------


@dataclass(frozen=True)
class UnmappedGroup:
    source: str | None
    project: str
    issue: str
    summary: str
    entries: int
    seconds: int
    first_seen_at: datetime


@dataclass(frozen=True)
class BadEntry:
    id: int
    source: str | None
    subject: str
    reason: str
    created_at: datetime
    author: str | None = None  # who logged the entry (a Jira account id, a GitHub login)
    issue: str | None = None  # its issue's key, as the source shows it


@dataclass(frozen=True)
class Problems:
    unmapped: list[UnmappedGroup]
    unmapped_by_project: dict[str, int]
    bad_entries: list[BadEntry]
    other: list[BadEntry]  # configuration and API errors, still open
    failed_runs: list[RunRow] = field(default_factory=list)  # each source's, when it failed

    @property
    def empty(self) -> bool:
        return not (self.unmapped or self.bad_entries or self.other or self.failed_runs)


FAILED_STATES = (RunStatus.FAILED, RunStatus.INTERRUPTED, RunStatus.RETRYING)


def problems(session: Session) -> Problems:
    names = _source_names(session)
    open_errors = session.scalars(
        select(Error)
        .where(Error.resolved_at.is_(None))
        .order_by(Error.created_at.desc(), Error.id.desc())
    ).all()
    unmapped_keys = [e.subject for e in open_errors if e.kind == ErrorKind.UNMAPPED]
    entries = (
        {e.key: e for e in session.scalars(select(Entry).where(Entry.key.in_(unmapped_keys)))}
        if unmapped_keys
        else {}
    )
    issues = (
        {
            (i.source_id, i.external_id): i
            for i in session.scalars(
                select(SourceIssue).where(
                    SourceIssue.external_id.in_({e.external_issue_id for e in entries.values()})
                )
            )
        }
        if entries
        else {}
    )
    groups: dict[tuple[str | None, str, str], dict[str, Any]] = {}
    for error in open_errors:
        if error.kind != ErrorKind.UNMAPPED:
            continue
        entry = entries.get(error.subject)
        issue = None
        if entry is not None and entry.external_issue_id is not None:
            issue = issues.get((entry.source_id, entry.external_issue_id))
        src = names.get(error.source_id) if error.source_id is not None else None
        project = issue.project if issue else "(unknown project)"
        key = (
            issue.key
            if issue
            else (entry.external_issue_id if entry else None) or "(unknown issue)"
        )
        group = groups.setdefault(
            (src, project, str(key)),
            {
                "summary": issue.summary if issue else "",
                "entries": 0,
                "seconds": 0,
                "first": error.created_at,
            },
        )
        group["entries"] += 1
        group["seconds"] += (entry.seconds or 0) if entry and entry.state != EntryState.BAD else 0
        group["first"] = min(group["first"], error.created_at)
    unmapped = [
        UnmappedGroup(s, p, i, g["summary"], g["entries"], g["seconds"], g["first"])
        for (s, p, i), g in sorted(groups.items(), key=lambda kv: (kv[0][1], kv[0][2]))
    ]
    by_project: dict[str, int] = defaultdict(int)
    for found in unmapped:
        by_project[found.project] += found.entries

    bad_keys = [e.subject for e in open_errors if e.kind == ErrorKind.BAD_ENTRY]
    bad_rows = {
        entry.key: (entry.author, issue_key)
        for start in range(0, len(bad_keys), 500)
        for entry, issue_key in session.execute(
            select(Entry, SourceIssue.key)
            .outerjoin(
                SourceIssue,
                (SourceIssue.source_id == Entry.source_id)
                & (SourceIssue.external_id == Entry.external_issue_id),
            )
            .where(Entry.key.in_(bad_keys[start : start + 500]))
        )
    }

    def bad(error: Error) -> BadEntry:
        src = names.get(error.source_id) if error.source_id is not None else None
        author, issue_key = bad_rows.get(error.subject, (None, None))
        return BadEntry(
            error.id, src, error.subject, error.reason, error.created_at, author, issue_key
        )

    failed_runs = [
        last
        for source_id in sorted(names, key=lambda i: names[i])
        if (last := last_run(session, source_id, names)) is not None
        and last.status in FAILED_STATES
    ]

    return Problems(
        failed_runs=failed_runs,
        unmapped=unmapped,
        unmapped_by_project=dict(sorted(by_project.items())),
        bad_entries=[bad(e) for e in open_errors if e.kind == ErrorKind.BAD_ENTRY],
        other=[
            bad(e) for e in open_errors if e.kind not in (ErrorKind.BAD_ENTRY, ErrorKind.UNMAPPED)
        ],
    )


@dataclass(frozen=True)
class DriftRow:
    id: int
    kind: str
    invoice_number: str
    draft_id: int
    line_reference: str
    line_description: str
    entry: str | None
    seconds_delta: int
    detected_at: datetime
    acknowledged_at: datetime | None
    acknowledged_by: str | None = None


def acknowledge_drift(session: Session, drift_id: int, who: str, now: datetime) -> DriftRow | None:
    """Record that ``who`` acknowledged drift row ``drift_id`` (the first time only)."""
    row = session.get(Drift, drift_id)
    if row is None:
        return None
    if row.acknowledged_at is None:
        row.acknowledged_at, row.acknowledged_by = now, who[:255]
        session.flush()
    return drift(session, drift_id=drift_id)[0]


def drift(session: Session, *, drift_id: int | None = None) -> list[DriftRow]:
    """Every drift row, unacknowledged first; or the one ``drift_id``."""
    query = (
        select(Drift, Line, Draft, Entry)
        .join(Line, Drift.line_id == Line.id)
        .join(Draft, Line.draft_id == Draft.id)
        .outerjoin(Entry, Drift.entry_id == Entry.id)
        .order_by(Drift.acknowledged_at.is_not(None), Drift.detected_at.desc(), Drift.id.desc())
    )
    rows = session.execute(query if drift_id is None else query.where(Drift.id == drift_id))
    return [
        DriftRow(
            id=d.id,
            kind=str(d.kind),
            invoice_number=draft_.invoice_number,
            draft_id=draft_.id,
            line_reference=f"{line.reference_type}:{line.reference_id}",
            line_description=line.description,
            entry=entry.key if entry is not None else (d.detail or {}).get("entry"),
            seconds_delta=d.seconds_delta,
            detected_at=d.detected_at,
            acknowledged_at=d.acknowledged_at,
            acknowledged_by=d.acknowledged_by,
        )
        for d, line, draft_, entry in rows
    ]


# --- prices (SPEC §11) -------------------------------------------------------------------------


@dataclass(frozen=True)
class PriceRow:
    """One rate of one rule: the rule's own, or a person's; from the config or an item."""

    rule: int
    source: str
    contract_id: str
    currency: str
    person: str | None  # None: the rule's rate
    item_code: str | None  # None: a number in the config
    price: str | None  # the item's price as Cliniko gives it (None: no item, or not cached)
    rate: str | None  # the rate in use, formatted (None: the rule is held)
    read_at: datetime | None  # when the item was last read
    updated_at: datetime | None  # when Cliniko last changed it
    held: str | None  # why the rule's new work is held back


@dataclass(frozen=True)
class PriceListState:
    configured: bool
    base_url: str | None
    read_at: datetime | None  # the last read that succeeded: how old the cache is
    attempted_at: datetime | None
    error: str | None  # why the last attempt failed (None: it succeeded)
    items: int


@dataclass(frozen=True)
class Prices:
    cache: PriceListState
    rows: list[PriceRow]


def prices(session: Session, settings: Settings) -> Prices:
    """Each rule's rates, where they come from and the price in use, and the cache's age."""
    cliniko = settings.file.cliniko
    state = session.get(PriceList, 1)
    codes = {code for rule in settings.file.rules for code in rule.item_codes()}
    used = cached_items(session, codes, cliniko.base_url) if codes and cliniko else None
    rules = {rule.index: rule for rule in rules_from(settings, cache_of(used))}
    cached: dict[str, PriceItem] = {}
    for item in sorted(used or (), key=lambda i: i.archived_at is not None):  # in use first
        cached.setdefault(item.item_code or "", item)
    rows = []
    for index, config in enumerate(settings.file.rules):
        rule = rules[index]
        rates: list[tuple[str | None, int | str | None, int]] = [
            (None, config.rate_item or config.hourly_rate_minor, rule.hourly_rate_minor)
        ]
        rates += [
            (person, rate, rule.person_rates[person])
            for person, rate in config.person_rates.items()
        ]
        for person, given, resolved in rates:
            code = given if isinstance(given, str) else None
            found = cached.get(code) if code else None
            rows.append(
                PriceRow(
                    rule=index,
                    source=config.source,
                    contract_id=config.contract_id,
                    currency=config.currency,
                    person=person,
                    item_code=code,
                    price=found.price if found is not None else None,
                    rate=None if rule.held else format_minor(resolved, config.currency),
                    read_at=found.read_at if found is not None else None,
                    updated_at=found.updated_at if found is not None else None,
                    held=rule.held,
                )
            )
    items = session.scalar(select(func.count()).select_from(PriceItem)) or 0
    return Prices(
        cache=PriceListState(
            configured=cliniko is not None,
            base_url=cliniko.base_url if cliniko is not None else None,
            read_at=state.read_at if state is not None else None,
            attempted_at=state.attempted_at if state is not None else None,
            error=state.error if state is not None else None,
            items=items,
        ),
        rows=rows,
    )
