"""An hourly rate from a price list item (a Cliniko billable item, SPEC §11), pure.

A rule may take its rate from an item instead of a number in the config. The item's
``price`` is a decimal string per unit, and one unit is one hour. It becomes the rule's
rate in minor units of the rule's currency, exactly:

- ``Decimal`` only, never a float;
- never rounded: a price that needs more decimals than the currency has ("99.999" in USD)
  is a configuration problem, not a guess. Trailing zeros are not more decimals
  ("150.000" is 15000 cents: the value fits exactly);
- only an item of type ``Service`` prices work; a missing or archived item, another type,
  or a negative price is a problem, and the rule's new work waits for it to be fixed.

:func:`rate_of` answers with the rate, or with the reason no rate can be taken; the caller
holds the rule's new work back and shows the reason.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

MAX_RATE_MINOR = 9_007_199_254_740_991  # the largest rate the config accepts (2^53 - 1)
MAX_RATE_DIGITS = 20  # more digits than that is beyond any rate (and not worth computing)


@dataclass(frozen=True, slots=True)
class PriceItem:
    """What the price list says about one item, as last read."""

    item_code: str
    item_type: str  # "Service", "Product", "Other"
    price: str  # the decimal string as the price list sent it
    archived: bool = False


@dataclass(frozen=True, slots=True)
class NoRate:
    """Why an item gives no rate: for the operator, naming the item."""

    item_code: str
    reason: str


def price_minor(price: str, exponent: int) -> int:
    """``price`` (a decimal string) in minor units of a currency with ``exponent`` decimals.

    Exact whatever the length: the digits are shifted, never computed with (``Decimal``
    arithmetic rounds to the context's 28 digits, which would read ``150.00…001`` as
    ``150.00``). Raises ``ValueError`` naming the reason when it is not a finite decimal or
    needs more decimals than the currency has."""
    try:
        value = Decimal(price.strip())
    except InvalidOperation:
        raise ValueError(f"price {price!r} is not a decimal number") from None
    if not value.is_finite():
        raise ValueError(f"price {price!r} is not a finite number")
    sign, digits, point = value.as_tuple()
    assert isinstance(point, int)  # finite
    kept = list(digits)
    while point < 0 and len(kept) > 1 and kept[-1] == 0:  # trailing zeros are not decimals
        kept.pop()
        point += 1
    if point + exponent < 0 and any(kept):
        raise ValueError(
            f"price {price!r} has more decimals than the currency's {exponent}; "
            "it would have to be rounded"
        )
    shift = point + exponent
    if any(kept) and len(kept) + shift > MAX_RATE_DIGITS:
        raise ValueError(f"price {price!r} is too large")
    whole = int("".join(map(str, kept)) or "0")
    minor = whole * 10**shift if shift >= 0 else 0  # a shift below 0 is left only for 0
    return -minor if sign else minor


def rate_of(item: PriceItem | None, item_code: str, exponent: int) -> int | NoRate:
    """The hourly rate in minor units that ``item`` gives, or why it gives none."""
    if item is None:
        return NoRate(item_code, f"price list item {item_code!r} does not exist")
    if item.archived:
        return NoRate(item_code, f"price list item {item_code!r} is archived")
    if item.item_type != "Service":
        return NoRate(
            item_code,
            f"price list item {item_code!r} is a {item.item_type}, not a Service",
        )
    try:
        rate = price_minor(item.price, exponent)
    except ValueError as exc:
        return NoRate(item_code, f"price list item {item_code!r}: {exc}")
    if rate < 0:
        return NoRate(item_code, f"price list item {item_code!r} has a negative price")
    if rate > MAX_RATE_MINOR:
        return NoRate(item_code, f"price list item {item_code!r}: the price is too large")
    return rate
