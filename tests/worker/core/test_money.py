"""worker.core.money: exact decimal arithmetic with one rounding rule."""

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from worker.core.money import hours, line_amount, round_half_up


@pytest.mark.parametrize(
    ("seconds", "expected"),
    [
        (0, "0.00"),
        (3600, "1.00"),
        (5400, "1.50"),
        (18, "0.01"),  # 0.005 h: a tie, rounded up
        (17, "0.00"),  # 0.00472 h
        (60, "0.02"),  # 0.01666 h
        (-1200, "-0.33"),  # sign kept; magnitude rounded
        (-18, "-0.01"),  # half up = away from zero
        (10**12, "277777777.78"),
    ],
)
def test_hours(seconds: int, expected: str) -> None:
    assert hours(seconds) == Decimal(expected)
    assert str(hours(seconds)) == expected


@pytest.mark.parametrize(
    ("quantity", "rate", "expected"),
    [
        ("1.50", 12000, 18000),
        ("0.33", 10001, 3300),  # 3300.33
        ("0.05", 10010, 501),  # 500.5 -> tie -> up
        ("0.00", 99999, 0),
        ("2.25", 0, 0),
        ("12.35", 12000, 148200),
    ],
)
def test_line_amount(quantity: str, rate: int, expected: int) -> None:
    assert line_amount(Decimal(quantity), rate) == expected


def test_round_half_up_steps() -> None:
    assert round_half_up(Decimal("2.5")) == 3
    assert round_half_up(Decimal("2.345"), Decimal("0.01")) == Decimal("2.35")
    assert round_half_up(Decimal("-2.5")) == -3


@given(st.integers(min_value=0, max_value=10**9), st.integers(min_value=0, max_value=10**7))
def test_amount_is_within_half_a_minor_unit_of_the_exact_product(seconds: int, rate: int) -> None:
    quantity = hours(seconds)
    amount = line_amount(quantity, rate)
    assert isinstance(amount, int)
    assert abs(Decimal(amount) - quantity * rate) <= Decimal("0.5")
