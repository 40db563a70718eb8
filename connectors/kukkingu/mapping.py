"""A line's content <-> Kukkingu's billable (pure): the one place the field names meet.

``new_billable`` and ``billable_replace`` are the bodies of ``POST /api/v1/billables`` (one
item) and ``PUT /api/v1/billables/{id}`` for what the ledger says a line holds;
``content_of`` reads a billable Kukkingu holds back in the ledger's terms (adoption after a
lost answer, and the check of what a refused write left).
"""

from __future__ import annotations

from decimal import Decimal

from connectors.kukkingu.models import Billable, BillableReplace, NewBillable
from worker.core.model import LineContent

CENT = Decimal("0.01")


def new_billable(content: LineContent) -> NewBillable:
    return NewBillable(
        description=content.description,
        quantity=content.quantity,
        amount_minor=content.amount_minor,
        currency_code=content.currency,
        reference_type=content.reference_type,
        reference_id=content.reference_id,
        metadata=dict(content.metadata),
        order=content.position,
    )


def billable_replace(content: LineContent) -> BillableReplace:
    """A full replace: every field the line has (absent optional fields would be cleared)."""
    return BillableReplace(**new_billable(content).model_dump())


def content_of(billable: Billable) -> LineContent:
    """A billable as Kukkingu holds it, in the ledger's terms."""
    return LineContent(
        reference_type=billable.reference_type or "",
        reference_id=billable.reference_id or "",
        description=billable.description,
        quantity=billable.quantity.quantize(CENT),
        amount_minor=billable.amount_minor,
        currency=billable.currency_code,
        position=billable.order or 0,
        metadata=billable.metadata or {},
    )
