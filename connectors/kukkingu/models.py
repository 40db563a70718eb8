"""Typed Kukkingu payloads: what billsync sends (strict) and what it reads back (tolerant).

Request models reject unknown fields and check the documented ranges before anything is
sent, so a bad line fails here with a field name instead of as a 400 from the server.
Response models ignore fields they do not know (an API may grow) but require every field
billsync relies on, so schema drift is a clear error instead of a silent ``None``.
Python names are snake_case; the wire names are the API's camelCase aliases.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, PlainSerializer
from pydantic.alias_generators import to_camel

MAX_SAFE_INTEGER = 9007199254740991
MAX_BILLABLES_PER_CREATE = 100

InvoiceStatus = Literal["DRAFT", "FINALIZED", "VOID"]

# Kukkingu takes JSON numbers; Decimal is kept exact in Python and written as a number.
JsonNumber = Annotated[Decimal, PlainSerializer(float, return_type=float, when_used="json")]
MinorAmount = Annotated[int, Field(ge=0, le=MAX_SAFE_INTEGER, strict=True)]
Position = Annotated[int, Field(ge=0, le=MAX_SAFE_INTEGER, strict=True)]
CurrencyCode = Annotated[str, Field(min_length=3, max_length=3)]


def api_timestamp(moment: datetime) -> str:
    """A datetime as the API writes it: UTC, milliseconds, ``Z`` (its regex refuses offsets)."""
    if moment.tzinfo is None:
        raise ValueError("timestamps sent to Kukkingu must be timezone-aware")
    utc = moment.astimezone(UTC)
    return utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond // 1000:03d}Z"


ApiTimestamp = Annotated[
    datetime, PlainSerializer(api_timestamp, return_type=str, when_used="json")
]


class _Request(BaseModel):
    model_config = ConfigDict(
        extra="forbid", frozen=True, alias_generator=to_camel, populate_by_name=True
    )

    def to_json(self) -> dict[str, Any]:
        return self.model_dump(mode="json", by_alias=True, exclude_none=True)


class _Response(BaseModel):
    model_config = ConfigDict(
        extra="ignore", frozen=True, alias_generator=to_camel, populate_by_name=True
    )


# --- requests ---------------------------------------------------------------------------


class NewBillable(_Request):
    """One item of ``POST /api/v1/billables``."""

    description: str
    quantity: Annotated[JsonNumber, Field(ge=0, allow_inf_nan=False)]
    amount_minor: MinorAmount
    currency_code: CurrencyCode
    reference_type: str | None = None
    reference_id: str | None = None
    metadata: dict[str, Any] | None = None
    order: Position | None = None


class BillableReplace(_Request):
    """``PUT /api/v1/billables/{id}``: a full replace (absent optional fields are cleared)."""

    description: str
    quantity: Annotated[JsonNumber, Field(ge=0, allow_inf_nan=False)]
    amount_minor: MinorAmount
    currency_code: CurrencyCode
    order: Position
    reference_type: str | None = None
    reference_id: str | None = None
    metadata: dict[str, Any] | None = None


class BillablePatch(_Request):
    """``PATCH /api/v1/billables/{id}``: only the fields given change."""

    description: str | None = None
    quantity: Annotated[JsonNumber, Field(ge=0, allow_inf_nan=False)] | None = None
    amount_minor: MinorAmount | None = None
    currency_code: CurrencyCode | None = None
    order: Position | None = None
    reference_type: str | None = None
    reference_id: str | None = None
    metadata: dict[str, Any] | None = None


class NewInvoice(_Request):
    """``POST /api/v1/invoices``; the invoice starts as a DRAFT."""

    contract_id: str
    invoice_number: Annotated[str, Field(min_length=1, max_length=255)]
    exchange_rate: Annotated[JsonNumber, Field(ge=0, allow_inf_nan=False)]
    currency_code: CurrencyCode
    amount_minor: MinorAmount
    issued_at: ApiTimestamp | None = None
    due_at: ApiTimestamp | None = None
    paid_at: ApiTimestamp | None = None


class InvoiceReplace(NewInvoice):
    """``PUT /api/v1/invoices/{id}``: the same fields as create, all of them sent."""


# --- responses --------------------------------------------------------------------------


class Billable(_Response):
    id: str
    invoice: str
    description: str
    quantity: Decimal
    amount_minor: int
    currency_code: str
    reference_type: str | None = None
    reference_id: str | None = None
    metadata: dict[str, Any] | None = None
    order: int | None = None
    created_at: datetime
    updated_at: datetime


class Invoice(_Response):
    id: str
    contract: str
    status: InvoiceStatus
    invoice_number: str
    exchange_rate: Decimal
    currency_code: str
    amount_minor: int
    issued_at: datetime | None = None
    due_at: datetime | None = None
    paid_at: datetime | None = None
    created_at: datetime
    updated_at: datetime


class Contract(_Response):
    id: str
    client: str
    name: str
    amount_minor: int
    currency_code: str
    description: str | None = None
    order: int | None = None
    valid_from: datetime | None = None
    valid_to: datetime | None = None
    created_at: datetime
    updated_at: datetime


class Client(_Response):
    id: str
    name: str
    description: str | None = None
    order: int | None = None
    created_at: datetime
    updated_at: datetime
