"""Pricing one line: rounding, rate groups, quantity, amount, description and metadata.

Rounding works on the magnitude and keeps the sign (a ``-20m`` correction cancels a ``20m``
entry); ``nearest`` rounds ties up. Scope ``entry`` rounds each entry and sums; scope
``line`` sums the raw seconds of each rate group and rounds the sum. Each rate group (one
hourly rate, from the per-person overrides) is priced on its own:
``amount = sum(round_half_up(quantity_g x rate_g))`` and ``quantity = sum(quantity_g)``.
A rate taken from a price list item is its own group, and the group's metadata names the
item and the price used (``item``, ``price``).
A line whose quantity or amount comes out <= 0 is billed as 0 / 0 (Kukkingu has no negative
lines).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from worker.core.model import (
    DESCRIPTION_LIMIT,
    LineContent,
    RoundingMode,
    Rule,
)
from worker.core.money import hours, line_amount

ZERO = Decimal("0.00")


def round_seconds(seconds: int, increment_minutes: int, mode: RoundingMode) -> int:
    """``seconds`` rounded to a multiple of the increment: on the magnitude, sign kept."""
    step = increment_minutes * 60
    if step == 0 or seconds == 0:
        return seconds
    magnitude = abs(seconds)
    whole, rest = divmod(magnitude, step)
    if rest and (mode == "up" or (mode == "nearest" and rest * 2 >= step)):
        whole += 1
    return whole * step * (1 if seconds > 0 else -1)


@dataclass(frozen=True, slots=True)
class Item:
    """One entry's share of a line: its raw seconds and, for scope ``entry``, the rounded
    seconds it contributes (a late delta contributes round(now) - round(before))."""

    entry_key: str
    author: str
    raw_seconds: int
    rounded_seconds: int


def item_for(entry_key: str, author: str, seconds: int, already_billed: int, rule: Rule) -> Item:
    """The share of an entry not yet billed (``already_billed`` raw seconds are)."""
    rounded_now = round_seconds(seconds, rule.increment_minutes, rule.rounding_mode)
    rounded_before = round_seconds(already_billed, rule.increment_minutes, rule.rounding_mode)
    return Item(entry_key, author, seconds - already_billed, rounded_now - rounded_before)


# Bidirectional overrides and isolates (U+202A-U+202E, U+2066-U+2069): in an invoice line
# they can make the text read otherwise than it is stored ("Trojan Source").
BIDI_CONTROLS = dict.fromkeys([*range(0x202A, 0x202F), *range(0x2066, 0x206A)])


def describe(reference: str, summary: str) -> str:
    """``"<reference> <summary>"`` without bidirectional controls, whitespace collapsed, cut
    to 255 characters with an ellipsis."""
    summary = summary.translate(BIDI_CONTROLS)
    text = f"{reference.translate(BIDI_CONTROLS)} {' '.join(summary.split())}".strip()
    if len(text) <= DESCRIPTION_LIMIT:
        return text
    return text[: DESCRIPTION_LIMIT - 1].rstrip() + "…"


@dataclass(frozen=True, slots=True)
class Priced:
    quantity: Decimal
    amount_minor: int
    billed_seconds: int
    rate_groups: tuple[dict[str, Any], ...]


def price(items: Iterable[Item], rule: Rule) -> Priced:
    """Quantity and amount of a line holding ``items`` under ``rule``."""
    seconds_by_rate: dict[tuple[int, str], int] = defaultdict(int)
    for item in items:
        counted = item.rounded_seconds if rule.rounding_scope == "entry" else item.raw_seconds
        seconds_by_rate[rule.rate_for(item.author), rule.item_for(item.author) or ""] += counted
    groups = []
    quantity = ZERO
    amount = 0
    billed = 0
    for rate, code in sorted(seconds_by_rate):
        seconds = seconds_by_rate[rate, code]
        if rule.rounding_scope == "line":
            seconds = round_seconds(seconds, rule.increment_minutes, rule.rounding_mode)
        group_quantity = hours(seconds)
        group_amount = line_amount(group_quantity, rate)
        quantity += group_quantity
        amount += group_amount
        billed += seconds
        group: dict[str, Any] = {
            "rate": rate,
            "quantity": str(group_quantity),
            "amountMinor": group_amount,
        }
        if code:
            group.update(item=code, price=rule.prices.get(code, ""))
        groups.append(group)
    if quantity <= 0 or amount < 0:
        return Priced(ZERO, 0, billed, ())
    return Priced(quantity, amount, billed, tuple(groups))


def line_content(
    *,
    items: Iterable[Item],
    rule: Rule,
    reference_id: str,
    summary: str,
    position: int,
    metadata: Mapping[str, Any],
) -> LineContent:
    """The full billable for ``items``; metadata gains the rate groups and the counts."""
    items = tuple(items)
    priced = price(items, rule)
    meta = {
        **metadata,
        "entries": len(items),
        "rawSeconds": sum(i.raw_seconds for i in items),
        "billedSeconds": priced.billed_seconds,
        "rates": list(priced.rate_groups),
    }
    if priced.quantity == 0:
        meta["zeroed"] = True
    return LineContent(
        reference_type=rule.reference_type,
        reference_id=reference_id,
        description=describe(reference_id, summary),
        quantity=priced.quantity,
        amount_minor=priced.amount_minor,
        currency=rule.currency,
        position=position,
        metadata=meta,
    )
