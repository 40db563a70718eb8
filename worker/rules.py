"""The contract rules in the core's terms, with rates taken from the price list cache.

A rule's rate is a number in the config (``hourly_rate_minor``, ``person_rates`` values in
minor units) or a Cliniko billable item's code (``rate_item``, or a code as a
``person_rates`` value; SPEC §11). :func:`rules_from` resolves the codes against the price
list cached in the state store (:mod:`worker.prices` fills it) with the pure
:func:`worker.core.price_list.rate_of`; a rule with a code that gives no rate (missing,
archived, not a Service, a price that would need rounding, a list never read) is *held*:
``Rule.held`` says why, and the planner bills none of its new work.

:func:`plan_digest` hashes the resolved rules: a price change, or a rule held or released,
changes the digest, so the next sync plans every issue again and re-prices the open drafts.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from worker.config import RuleConfig, Settings
from worker.core.model import Rule
from worker.core.price_list import NoRate, PriceItem, rate_of
from worker.currencies import exponent
from worker.store import PriceItem as CachedItem
from worker.store import PriceList


@dataclass(frozen=True, slots=True)
class Cache:
    """The cached items by item code, and when the list was last read (None: never)."""

    items: Mapping[str, tuple[PriceItem, ...]]
    read: bool

    @classmethod
    def empty(cls) -> Cache:
        return cls({}, read=False)


def uses_price_list(settings: Settings, source: str | None = None) -> bool:
    """Whether a rule (of ``source``, when given) takes a rate from the price list."""
    return any(
        rule.item_codes() for rule in settings.file.rules if source is None or rule.source == source
    )


def cached_items(session: Session, codes: Iterable[str], base_url: str) -> list[CachedItem] | None:
    """The cached items with these codes, in id order; None when the cache was never read,
    or was read from another account."""
    state = session.get(PriceList, 1)
    if state is None or state.read_at is None or state.base_url != base_url:
        return None
    return list(
        session.scalars(
            select(CachedItem)
            .where(CachedItem.item_code.in_(sorted(set(codes))))
            .order_by(CachedItem.item_id)
        )
    )


def cache_of(rows: list[CachedItem] | None) -> Cache:
    """The pricing view of :func:`cached_items`' rows (None: a list never read)."""
    if rows is None:
        return Cache.empty()
    found: dict[str, list[PriceItem]] = defaultdict(list)
    for row in rows:
        found[row.item_code or ""].append(
            PriceItem(row.item_code or "", row.item_type, row.price, row.archived_at is not None)
        )
    return Cache({code: tuple(items) for code, items in found.items()}, read=True)


def _rate(code: str, currency: str, cache: Cache) -> int | NoRate:
    if not cache.read:
        return NoRate(code, "the price list has not been read from Cliniko yet")
    items = cache.items.get(code, ())
    active = [item for item in items if not item.archived]
    if len(active) > 1:
        return NoRate(
            code,
            f"{len(active)} price list items have the code {code!r}: give each a unique code",
        )
    chosen = active[0] if active else (items[0] if items else None)
    return rate_of(chosen, code, exponent(currency))


def _rule(index: int, rule: RuleConfig, kind: str | None, cache: Cache) -> Rule:
    held: list[str] = []
    prices: dict[str, str] = {}

    def resolve(rate: int | str | None) -> int:
        if rate is None or isinstance(rate, int):
            return rate or 0
        resolved = _rate(rate, rule.currency, cache)
        if isinstance(resolved, NoRate):
            if resolved.reason not in held:
                held.append(resolved.reason)
            return 0
        prices[rate] = next(item.price for item in cache.items[rate] if not item.archived)
        return resolved

    hourly = resolve(rule.rate_item if rule.rate_item is not None else rule.hourly_rate_minor)
    person_rates = {person: resolve(rate) for person, rate in rule.person_rates.items()}
    return Rule(
        index=index,
        source=rule.source,
        reference_type="JIRA" if kind == "jira" else "GITHUB",
        contract_id=rule.contract_id,
        currency=rule.currency,
        hourly_rate_minor=hourly,
        projects=frozenset(rule.projects),
        repos=frozenset(rule.repos),
        has_jql=rule.jql is not None,
        non_billable_labels=frozenset(rule.non_billable_labels),
        exchange_rate=rule.exchange_rate,
        person_rates=person_rates,
        increment_minutes=rule.rounding.increment_minutes,
        rounding_mode=rule.rounding.mode,
        rounding_scope=rule.rounding.scope,
        grouping=rule.grouping,
        period=rule.period,
        invoice_number=rule.invoice_number,
        rate_item=rule.rate_item,
        person_items={p: r for p, r in rule.person_rates.items() if isinstance(r, str)},
        prices=prices,
        held="; ".join(held) if held else None,
    )


def rules_from(settings: Settings, cache: Cache | None = None) -> list[Rule]:
    """The configured contract rules in the core's terms, item rates resolved from
    ``cache`` (None: no price list read; a rule with an item code is then held)."""
    kinds = {source.name: source.kind for source in settings.file.sources}
    cache = cache or Cache.empty()
    return [
        _rule(index, rule, kinds.get(rule.source), cache)
        for index, rule in enumerate(settings.file.rules)
    ]


def priced_rules(session: Session, settings: Settings) -> list[Rule]:
    """The rules, their item rates resolved from the state store's price list cache."""
    codes = [code for rule in settings.file.rules for code in rule.item_codes()]
    cliniko = settings.file.cliniko
    if not codes or cliniko is None:
        return rules_from(settings)
    return rules_from(settings, cache_of(cached_items(session, codes, cliniko.base_url)))


def plan_digest(settings: Settings, rules: list[Rule]) -> str:
    """A digest of what billing is planned by: the (resolved) rules and the time zone. A
    ledger planned under another digest is planned again in full."""
    text = json.dumps(
        [str(settings.timezone), [_digested(rule) for rule in rules]],
        sort_keys=True,
        default=_jsonable,
        separators=(",", ":"),
    )
    return hashlib.sha256(text.encode()).hexdigest()


PRICE_LIST_FIELDS = ("rate_item", "person_items", "prices", "held")


def _digested(rule: Rule) -> dict[str, object]:
    """The rule as hashed: the price list fields only when set, so a rule with numbers
    hashes as it did before rates could come from a price list (no needless full plan)."""
    fields = dataclasses.asdict(rule)
    for name in PRICE_LIST_FIELDS:
        if not fields[name]:
            del fields[name]
    return fields


def _jsonable(value: object) -> object:
    if isinstance(value, frozenset | set):
        return sorted(value, key=str)
    return str(value)
