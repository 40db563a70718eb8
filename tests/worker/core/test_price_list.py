"""Rates from price list items (issue 15 item 3): exact, never rounded, Service only."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from worker.core.price_list import NoRate, PriceItem, price_minor, rate_of


@pytest.mark.parametrize(
    ("price", "exponent", "minor"),
    [
        ("150.00", 2, 15000),
        ("95.5", 2, 9550),
        ("120", 2, 12000),
        ("150.000", 2, 15000),  # trailing zeros are no extra decimals: exact
        ("1500", 0, 1500),  # JPY
        ("12.345", 3, 12345),  # KWD
        ("0", 2, 0),
        ("-10.50", 2, -1050),
        (" 42.10 ", 2, 4210),
    ],
)
def test_a_price_in_minor_units(price: str, exponent: int, minor: int) -> None:
    assert price_minor(price, exponent) == minor


@pytest.mark.parametrize(
    ("price", "exponent", "reason"),
    [
        ("99.999", 2, "has more decimals than the currency's 2; it would have to be rounded"),
        ("0.5", 0, "has more decimals than the currency's 0"),
        ("12,50", 2, "is not a decimal number"),
        ("", 2, "is not a decimal number"),
        ("NaN", 2, "is not a finite number"),
        ("Infinity", 2, "is not a finite number"),
    ],
)
def test_a_price_that_would_need_rounding_or_is_no_number_is_refused(
    price: str, exponent: int, reason: str
) -> None:
    with pytest.raises(ValueError, match=reason):
        price_minor(price, exponent)


@given(
    cents=st.integers(min_value=-400_000_000_000, max_value=399_999_999_999),
    exponent=st.sampled_from([0, 2, 3, 4]),
)
def test_any_exact_price_converts_to_exactly_its_minor_units(cents: int, exponent: int) -> None:
    price = str(Decimal(cents).scaleb(-exponent))
    assert price_minor(price, exponent) == cents


@given(
    cents=st.integers(min_value=0, max_value=10**12),
    extra=st.integers(min_value=1, max_value=9),
    exponent=st.sampled_from([0, 2, 3]),
)
def test_a_price_with_one_more_nonzero_decimal_is_never_rounded(
    cents: int, extra: int, exponent: int
) -> None:
    price = str((Decimal(cents) * 10 + extra).scaleb(-(exponent + 1)))
    with pytest.raises(ValueError, match="would have to be rounded"):
        price_minor(price, exponent)


@given(
    cents=st.integers(min_value=0, max_value=10**12),
    zeros=st.integers(min_value=0, max_value=200),
    extra=st.integers(min_value=1, max_value=9),
    exponent=st.sampled_from([0, 2, 3]),
)
def test_a_nonzero_decimal_far_behind_the_point_is_never_rounded_away(
    cents: int, zeros: int, extra: int, exponent: int
) -> None:
    """Decimal arithmetic rounds to 28 digits: a price longer than that must still be
    refused, never read as the exact price it starts with."""
    exact = str(Decimal(cents).scaleb(-exponent)) if exponent else str(cents)
    point = exact if "." in exact else exact + "."
    price = point + "0" * zeros + str(extra)
    with pytest.raises(ValueError, match="would have to be rounded"):
        price_minor(price, exponent)


def test_trailing_zeros_far_behind_the_point_are_exact() -> None:
    assert price_minor("150." + "0" * 100, 2) == 15000


def service(price: str = "150.00", **kwargs: object) -> PriceItem:
    return PriceItem("CONSULT-60", str(kwargs.get("item_type", "Service")), price,
                     bool(kwargs.get("archived", False)))  # fmt: skip


def test_a_service_gives_its_rate() -> None:
    assert rate_of(service(), "CONSULT-60", 2) == 15000


@pytest.mark.parametrize(
    ("item", "reason"),
    [
        (None, "price list item 'CONSULT-60' does not exist"),
        (service(archived=True), "price list item 'CONSULT-60' is archived"),
        (service(item_type="Product"), "price list item 'CONSULT-60' is a Product, not a Service"),
        (service("99.999"), "has more decimals than the currency's 2"),
        (service("-5.00"), "has a negative price"),
    ],
)
def test_an_item_that_gives_no_rate_says_why(item: PriceItem | None, reason: str) -> None:
    answer = rate_of(item, "CONSULT-60", 2)
    assert isinstance(answer, NoRate)
    assert answer.item_code == "CONSULT-60"
    assert reason in answer.reason


def test_an_absurdly_large_price_is_refused_without_computing_it() -> None:
    with pytest.raises(ValueError, match="is too large"):
        price_minor("1E+1000000", 2)
