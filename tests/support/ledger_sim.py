"""A pure stand-in for the recorded ledger: applies a Plan to a LedgerView, as if every
write succeeded. Lets planner tests walk through several syncs without any I/O."""

from __future__ import annotations

from dataclasses import replace

from worker.core.model import DraftStatus, LedgerDraft, LedgerLine, LedgerView, Plan


def apply(view: LedgerView, plan: Plan) -> LedgerView:
    drafts = {d.id: d for d in view.drafts}
    lines = {line.id: line for line in view.lines}
    next_id = max([*drafts, *lines, 0]) + 1
    by_key = {d.key: d.id for d in drafts.values()}
    for new in plan.new_drafts:
        drafts[next_id] = LedgerDraft(next_id, new.key, "DRAFT", new.invoice_number, 0, 0)
        by_key[new.key] = next_id
        next_id += 1
    for create in plan.creates:
        draft = drafts[by_key[create.draft]]
        c = create.content
        lines[next_id] = LedgerLine(
            id=next_id,
            group=create.group,
            draft_id=draft.id,
            reference_type=c.reference_type,
            reference_id=c.reference_id,
            position=c.position,
            entries=dict(create.entries),
            written_digest=c.digest(),
            late=create.late,
        )
        drafts[draft.id] = replace(
            draft,
            line_count=draft.line_count + 1,
            next_position=max(draft.next_position, c.position + 1),
            references=draft.references | {(c.reference_type, c.reference_id)},
        )
        next_id += 1
    for update in plan.updates:
        line = lines[update.line_id]
        c = update.content
        draft = drafts[line.draft_id]
        drafts[draft.id] = replace(
            draft,
            references=(draft.references - {(line.reference_type, line.reference_id)})
            | {(c.reference_type, c.reference_id)},
        )
        lines[line.id] = replace(
            line,
            reference_id=c.reference_id,
            entries=dict(update.entries),
            written_digest=c.digest(),
        )
    return LedgerView(tuple(drafts.values()), tuple(lines.values()))


def set_status(view: LedgerView, number: str, status: DraftStatus) -> LedgerView:
    drafts = tuple(
        replace(d, status=status) if d.invoice_number == number else d for d in view.drafts
    )
    return LedgerView(drafts, view.lines)
