"""What a billable item write may contain: the field rules of Cliniko's schema, as one pure
function the API (422) and the admin API (400) share.

``validate_write(body, creating=...)`` returns the store's changes (``name``, ``item_code``,
``item_type``, ``price``, ``tax_id``) or raises :class:`Unprocessable` naming every bad field
with Rails-style reasons (``{"price": ["must be less than 4000000000"]}``). A create needs
``name``, ``item_type`` and ``price``; an update checks only the fields it carries.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from decimal import Decimal
from typing import Any

ITEM_TYPES = ("Product", "Service", "Other")
MAX_NAME = 255
MAX_ITEM_CODE = 100
PRICE_MIN = Decimal(-4_000_000_000)  # inclusive
PRICE_MAX = Decimal(4_000_000_000)  # exclusive
INT64_MAX = 2**63 - 1
WRITABLE = ("name", "item_code", "item_type", "price", "tax_id")
REQUIRED_ON_CREATE = ("name", "item_type", "price")

DECIMAL = re.compile(r"-?[0-9]+(?:\.[0-9]+)?")
BLANK = "can't be blank"


class Unprocessable(ValueError):
    """A write Cliniko would refuse with 422: ``errors`` maps each field to its reasons."""

    def __init__(self, errors: dict[str, list[str]]) -> None:
        self.errors = errors
        super().__init__(describe(errors))


def describe(errors: Mapping[str, list[str]]) -> str:
    """``price must be less than 4000000000; name can't be blank``."""
    return "; ".join(f"{field} {reason}" for field, reasons in errors.items() for reason in reasons)


def _name(value: Any) -> str:
    if value is None or (isinstance(value, str) and not value.strip()):
        raise ValueError(BLANK)
    if not isinstance(value, str):
        raise ValueError("must be a string")
    if len(value) > MAX_NAME:
        raise ValueError(f"is too long (maximum is {MAX_NAME} characters)")
    return value


def _item_code(value: Any) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise ValueError("must be a string or null")
    if len(value) > MAX_ITEM_CODE:
        raise ValueError(f"is too long (maximum is {MAX_ITEM_CODE} characters)")
    return value


def _item_type(value: Any) -> str:
    if value is None or value == "":
        raise ValueError(BLANK)
    if value not in ITEM_TYPES:
        raise ValueError(f"is not included in the list ({', '.join(ITEM_TYPES)})")
    return str(value)


def _price(value: Any) -> str:
    if value is None or value == "":
        raise ValueError(BLANK)
    if not isinstance(value, str):
        raise ValueError('must be a decimal string, e.g. "120.00"')
    if DECIMAL.fullmatch(value) is None:
        raise ValueError("is not a number")
    amount = Decimal(value)
    if amount < PRICE_MIN:
        raise ValueError(f"must be greater than or equal to {PRICE_MIN}")
    if amount >= PRICE_MAX:
        raise ValueError(f"must be less than {PRICE_MAX}")
    return value  # as written: "120.00" stays "120.00"


def _tax_id(value: Any) -> int | None:
    if value is None:
        return None
    if isinstance(value, int) and not isinstance(value, bool):
        number = value
    elif isinstance(value, str) and value.isascii() and value.isdigit():
        number = int(value)
    else:
        raise ValueError('is not a valid id (an int64, e.g. "1")')
    if not 1 <= number <= INT64_MAX:
        raise ValueError('is not a valid id (an int64, e.g. "1")')
    return number


CHECKS: dict[str, Callable[[Any], Any]] = {
    "name": _name,
    "item_code": _item_code,
    "item_type": _item_type,
    "price": _price,
    "tax_id": _tax_id,
}


def validate_write(body: Mapping[str, Any], *, creating: bool) -> dict[str, Any]:
    """The changes ``body`` asks for, checked; :class:`Unprocessable` lists every problem."""
    errors: dict[str, list[str]] = {}
    values: dict[str, Any] = {}
    for field, value in body.items():
        check = CHECKS.get(field)
        if check is None:
            errors[field] = [f"is not a writable field (writable: {', '.join(WRITABLE)})"]
            continue
        try:
            values[field] = check(value)
        except ValueError as problem:
            errors[field] = [str(problem)]
    if creating:
        for field in REQUIRED_ON_CREATE:
            if field not in body:
                errors[field] = [BLANK]
    if errors:
        raise Unprocessable(errors)
    return values


__all__ = [
    "ITEM_TYPES",
    "MAX_ITEM_CODE",
    "MAX_NAME",
    "PRICE_MAX",
    "PRICE_MIN",
    "WRITABLE",
    "Unprocessable",
    "describe",
    "validate_write",
]
