"""A Cliniko billable item as billsync reads it (the fields of SPEC §11; others ignored)."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict


class BillableItem(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")

    id: str  # an int64, as a string
    name: str
    item_code: str | None = None
    item_type: str  # "Product", "Service", "Other"; only a Service may price a rule
    price: str  # a decimal string per unit (one unit is one hour here); never a float
    archived_at: datetime | None = None
    created_at: datetime
    updated_at: datetime
