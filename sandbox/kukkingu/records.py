"""The stored resources and how each one is rendered as JSON.

Records are plain mutable dataclasses owned by :class:`~sandbox.kukkingu.state.KukkinguState`
and only touched under its lock. Relations are stored as ids; rendering puts the id in the
relation field (``"invoice": "inv_…"``) and the state swaps in the full object when a
request asks to ``expand`` it. Unset optional fields render as ``null`` so that every
documented key is always present.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

InvoiceStatus = Literal["DRAFT", "FINALIZED", "VOID"]
INVOICE_STATUSES: tuple[InvoiceStatus, ...] = ("DRAFT", "FINALIZED", "VOID")

JsonObject = dict[str, Any]


def format_timestamp(moment: datetime | None) -> str | None:
    """UTC with milliseconds, as the service answers: ``2026-11-21T10:00:00.000Z``."""
    if moment is None:
        return None
    moment = moment.astimezone(UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


@dataclass
class Record:
    """Fields every resource has; ``seq`` breaks ties between equal ``createdAt`` values."""

    id: str
    tenant_id: str
    seq: int
    created_at: datetime
    updated_at: datetime

    def _base(self) -> JsonObject:
        return {
            "id": self.id,
            "createdAt": format_timestamp(self.created_at),
            "updatedAt": format_timestamp(self.updated_at),
        }


@dataclass
class Tenant(Record):
    name: str = ""
    description: str | None = None

    def to_json(self) -> JsonObject:
        return {**self._base(), "name": self.name, "description": self.description}


@dataclass
class Client(Record):
    name: str = ""
    description: str | None = None
    order: int = 0

    def to_json(self) -> JsonObject:
        return {
            **self._base(),
            "name": self.name,
            "description": self.description,
            "order": self.order,
        }


@dataclass
class Contract(Record):
    client_id: str = ""
    name: str = ""
    amount_minor: int = 0
    currency_code: str = ""
    description: str | None = None
    order: int = 0
    valid_from: datetime | None = None
    valid_to: datetime | None = None

    def to_json(self) -> JsonObject:
        return {
            **self._base(),
            "client": self.client_id,
            "name": self.name,
            "amountMinor": self.amount_minor,
            "currencyCode": self.currency_code,
            "description": self.description,
            "order": self.order,
            "validFrom": format_timestamp(self.valid_from),
            "validTo": format_timestamp(self.valid_to),
        }


@dataclass
class Invoice(Record):
    contract_id: str = ""
    status: InvoiceStatus = "DRAFT"
    invoice_number: str = ""
    exchange_rate: int | float = 1
    currency_code: str = ""
    amount_minor: int = 0
    issued_at: datetime | None = None
    due_at: datetime | None = None
    paid_at: datetime | None = None

    def to_json(self) -> JsonObject:
        return {
            **self._base(),
            "contract": self.contract_id,
            "status": self.status,
            "invoiceNumber": self.invoice_number,
            "exchangeRate": self.exchange_rate,
            "currencyCode": self.currency_code,
            "amountMinor": self.amount_minor,
            "issuedAt": format_timestamp(self.issued_at),
            "dueAt": format_timestamp(self.due_at),
            "paidAt": format_timestamp(self.paid_at),
        }


@dataclass
class Billable(Record):
    invoice_id: str = ""
    description: str = ""
    quantity: int | float = 0
    amount_minor: int = 0
    currency_code: str = ""
    order: int = 0
    reference_type: str | None = None
    reference_id: str | None = None
    metadata: JsonObject | None = field(default=None)

    def to_json(self) -> JsonObject:
        return {
            **self._base(),
            "invoice": self.invoice_id,
            "description": self.description,
            "quantity": self.quantity,
            "amountMinor": self.amount_minor,
            "currencyCode": self.currency_code,
            "referenceType": self.reference_type,
            "referenceId": self.reference_id,
            "metadata": self.metadata,
            "order": self.order,
        }
