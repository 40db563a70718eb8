"""Rounding, rate groups, quantity and amount, descriptions: SPEC §4 rules 4-6, table by table."""

from decimal import Decimal

import pytest

from worker.core.model import Rule
from worker.core.pricing import Item, describe, item_for, price, round_seconds

M = 60


@pytest.mark.parametrize(
    ("seconds", "increment", "mode", "expected"),
    [
        (0, 15, "up", 0),
        (10 * M, 0, "up", 10 * M),  # no rounding
        (10 * M, 15, "up", 15 * M),
        (15 * M, 15, "up", 15 * M),  # exact multiples stay
        (16 * M, 15, "down", 15 * M),
        (14 * M, 15, "down", 0),
        (7 * M, 15, "nearest", 0),
        (7 * M + 30, 15, "nearest", 15 * M),  # a tie rounds up
        (8 * M, 15, "nearest", 15 * M),
        (-10 * M, 15, "up", -15 * M),  # magnitude rounded, sign kept
        (-20 * M, 15, "up", -30 * M),
        (-7 * M - 30, 15, "nearest", -15 * M),
        (-16 * M, 15, "down", -15 * M),
        (1, 6, "up", 6 * M),
        (61 * M, 60, "up", 120 * M),
    ],
)
def test_round_seconds(seconds: int, increment: int, mode: str, expected: int) -> None:
    assert round_seconds(seconds, increment, mode) == expected  # type: ignore[arg-type]


def rule(**overrides: object) -> Rule:
    fields: dict[str, object] = {
        "index": 0,
        "source": "s",
        "reference_type": "JIRA",
        "contract_id": "ctr_x",
        "currency": "EUR",
        "hourly_rate_minor": 12000,
    }
    fields.update(overrides)
    return Rule(**fields)  # type: ignore[arg-type]


def items(*pairs: tuple[str, int], r: Rule) -> list[Item]:
    return [item_for(f"e{n}", author, s, 0, r) for n, (author, s) in enumerate(pairs)]


@pytest.mark.parametrize(
    ("overrides", "entries", "quantity", "amount"),
    [
        # plain: 90 minutes at 120.00
        ({}, [("bob", 90 * M)], "1.50", 18000),
        # entry scope: each entry rounded up to 15m: 10m + 10m -> 30m
        ({"increment_minutes": 15}, [("bob", 10 * M), ("bob", 10 * M)], "0.50", 6000),
        # line scope: the sum rounded: 20m -> 30m
        (
            {"increment_minutes": 15, "rounding_scope": "line"},
            [("bob", 10 * M), ("bob", 10 * M)],
            "0.50",
            6000,
        ),
        (
            {"increment_minutes": 15, "rounding_scope": "line"},
            [("bob", 8 * M), ("bob", 7 * M)],
            "0.25",
            3000,
        ),
        # a -20m correction cancels a 20m entry
        ({"increment_minutes": 15}, [("bob", 20 * M), ("bob", -20 * M)], "0.00", 0),
        # net negative -> billed 0 / 0
        ({}, [("bob", 10 * M), ("bob", -30 * M)], "0.00", 0),
        # per-person rates: alice at 150.00 -> two rate groups
        ({"person_rates": {"alice": 15000}}, [("bob", 60 * M), ("alice", 30 * M)], "1.50", 19500),
        # quantity half-up to 2 decimals: 1 s -> 0.00 h; 18 s -> 0.01 h
        ({}, [("bob", 18)], "0.01", 120),
        ({}, [("bob", 17)], "0.00", 0),
        # amount half-up: 0.05 h x 100.10 = 5.005 -> 5.01
        ({"hourly_rate_minor": 10010}, [("bob", 180)], "0.05", 501),
        # zero entries are valid and bill nothing
        ({}, [("bob", 0)], "0.00", 0),
        # a rate of 0 bills quantity but no money
        ({"hourly_rate_minor": 0}, [("bob", 3600)], "1.00", 0),
    ],
)
def test_price(
    overrides: dict[str, object], entries: list[tuple[str, int]], quantity: str, amount: int
) -> None:
    r = rule(**overrides)
    priced = price(items(*entries, r=r), r)
    assert priced.quantity == Decimal(quantity)
    assert priced.amount_minor == amount


def test_rate_groups_are_priced_separately_and_summed() -> None:
    # 20m at 100.00 and 20m at 100.01: each group rounds on its own
    r = rule(hourly_rate_minor=10000, person_rates={"alice": 10001})
    priced = price(items(("bob", 20 * M), ("alice", 20 * M), r=r), r)
    assert [g["rate"] for g in priced.rate_groups] == [10000, 10001]
    assert [g["amountMinor"] for g in priced.rate_groups] == [3300, 3300]  # 0.33 x rate
    assert priced.amount_minor == 6600
    assert priced.quantity == Decimal("0.66")


def test_late_delta_is_rounded_as_the_difference_of_rounded_values() -> None:
    r = rule(increment_minutes=15)
    # 10m billed (as 15m) and frozen; now 12m: round(12m) - round(10m) = 0
    assert item_for("e", "bob", 12 * M, 10 * M, r) == Item("e", "bob", 2 * M, 0)
    # now 20m: round(20m) - round(10m) = 30m - 15m
    assert item_for("e", "bob", 20 * M, 10 * M, r) == Item("e", "bob", 10 * M, 15 * M)


@pytest.mark.parametrize(
    ("reference", "summary", "expected"),
    [
        ("PROJ-1", "Fix the login", "PROJ-1 Fix the login"),
        ("PROJ-1", "  spaces\n and\tnewlines ", "PROJ-1 spaces and newlines"),
        ("PROJ-1", "", "PROJ-1"),
        ("PROJ-1", "x" * 300, "PROJ-1 " + "x" * 247 + "…"),
        ("o/r#1", "é" * 254, "o/r#1 " + "é" * 248 + "…"),
        # bidirectional overrides and isolates would make the line read otherwise
        ("PROJ-1", "pay \u202etnuocca\u202c now \u2066x\u2069", "PROJ-1 pay tnuocca now x"),
        ("PROJ-1", "\u202a\u202b\u202d \u2067\u2068", "PROJ-1"),
    ],
)
def test_describe(reference: str, summary: str, expected: str) -> None:
    assert describe(reference, summary) == expected
    assert len(describe(reference, summary)) <= 255
