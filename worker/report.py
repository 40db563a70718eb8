"""Human-readable output of a sync: the dry-run plan per invoice, and the run summary."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator

from worker.core.model import DraftKey, LineContent
from worker.currencies import format_minor
from worker.sync import SyncResult


def _hours(content: LineContent) -> str:
    return f"{content.quantity:>7} h"


def plan_lines(result: SyncResult) -> Iterator[str]:
    """The plan per invoice: lines to create (+) and update (~), with totals."""
    plan, view = result.plan, result.view
    numbers = {d.key: d.invoice_number for d in (view.drafts if view else ())}
    numbers |= {d.key: f"{d.invoice_number} (new draft)" for d in plan.new_drafts}
    by_line = {line.id: line for line in (view.lines if view else ())}
    key_of = {d.id: d.key for d in (view.drafts if view else ())}
    changes: dict[DraftKey, list[tuple[str, LineContent]]] = defaultdict(list)
    for create in plan.creates:
        changes[create.draft].append(("+", create.content))
    for update in plan.updates:
        draft = key_of[by_line[update.line_id].draft_id]
        changes[draft].append(("~", update.content))
    i = result.ingested
    yield (
        f"source {result.source}: {i.entries_seen} entries read "
        f"({i.new} new, {i.changed} changed, {i.deleted} deleted, {i.bad} bad)"
    )
    yield (
        "  planned every issue (new rules or prices, or --replan)"
        if result.replanned
        else f"  planned the {result.planned_issues} issue(s) whose billing may have changed"
    )
    if not changes:
        yield "  nothing to write to Kukkingu"
    for draft in sorted(changes):
        items = changes[draft]
        yield f"  invoice {numbers.get(draft, draft)}"
        for mark, content in sorted(items, key=lambda pair: pair[1].position):
            amount = format_minor(content.amount_minor, content.currency)
            extra = "  [late]" if content.metadata.get("late") else ""
            extra += "  [zeroed]" if content.metadata.get("zeroed") else ""
            yield f"    {mark} {content.reference_id:<24} {_hours(content)} {amount:>16}{extra}"
        created = sum(1 for mark, _ in items if mark == "+")
        total = sum(c.amount_minor for _, c in items)
        currency = items[0][1].currency
        yield (
            f"    = {created} to create, {len(items) - created} to update; "
            f"these lines total {format_minor(total, currency)}"
        )
    if plan.drift:
        yield f"  drift (less time on finalized invoices): {len(plan.drift)} entr(ies)"
    if plan.problems:
        yield f"  unmapped work: {len(plan.problems)} entr(ies) no rule takes"
    if plan.excluded:
        yield f"  excluded (non-billable labels): {len(plan.excluded)} entr(ies)"
    if plan.held:
        yield (
            f"  held back: {len(plan.held)} entr(ies) of rules whose price list item gives "
            "no rate (the dashboard's Prices page says why)"
        )


def summary(result: SyncResult) -> str:
    a, i = result.applied, result.ingested
    requests = sum(result.requests.values())
    parts = [
        f"{result.source}: {i.entries_seen} entries read",
        f"{a.lines_created} lines created",
        f"{a.lines_updated} updated",
    ]
    if a.lines_adopted:
        parts.append(f"{a.lines_adopted} adopted after a lost answer")
    if a.lines_rejected:
        parts.append(f"{a.lines_rejected} refused by Kukkingu (see the dashboard's problems)")
    parts.append(f"{a.drafts_created} drafts opened")
    parts.append(f"{requests} Kukkingu requests")
    if result.unmapped_total or i.bad or result.bad_total:
        parts.append(
            f"{result.unmapped_total} unmapped, {i.bad_new} new bad entries "
            f"({result.bad_total} in all; see the dashboard)"
        )
    if result.drift_total:
        parts.append(f"{result.drift_total} drift")
    if i.unreachable:
        lost = ", ".join(what for what, _ in i.unreachable)
        parts.append(f"PARTIAL: {lost} did not answer (see the dashboard's problems)")
    return "; ".join(parts)
