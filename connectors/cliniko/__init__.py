"""Cliniko: the price list (billable items) a contract rule may take its rate from."""

from connectors.cliniko.client import (
    ClinikoBadResponse,
    ClinikoClient,
    ClinikoConfigError,
    ClinikoUnavailable,
    cliniko_time,
)
from connectors.cliniko.models import BillableItem

__all__ = [
    "BillableItem",
    "ClinikoBadResponse",
    "ClinikoClient",
    "ClinikoConfigError",
    "ClinikoUnavailable",
    "cliniko_time",
]
