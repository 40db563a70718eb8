"""Money and quantities: ``Decimal`` only, one rounding rule (half up), integer minor units.

Every amount billsync writes is computed here, so a rounding question has one answer:

- ``hours(seconds)``: a quantity in hours, rounded half up to 2 decimals;
- ``line_amount(quantity, rate_minor)``: round-half-up(quantity x hourly rate), in minor units.

Floats never touch money: a float cannot hold 0.1 exactly, and 1000 lines of float cents
drift. Values are rounded at the last step, once.
"""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal

SECONDS_PER_HOUR = 3600
CENT = Decimal("0.01")
UNIT = Decimal(1)


def round_half_up(value: Decimal, step: Decimal = UNIT) -> Decimal:
    """``value`` rounded to a multiple of ``step`` (1, 0.01, ...), ties away from zero."""
    return value.quantize(step, rounding=ROUND_HALF_UP)


def hours(seconds: int) -> Decimal:
    """A duration in whole seconds as hours with 2 decimals (5400 s -> 1.50)."""
    return round_half_up(Decimal(seconds) / SECONDS_PER_HOUR, CENT)


def line_amount(quantity: Decimal, rate_minor: int) -> int:
    """The line total in minor units: round-half-up(quantity x hourly rate)."""
    return int(round_half_up(quantity * rate_minor))
