"""The price list cache (worker.prices) over real HTTP against the Cliniko sandbox, on both
state store backends: a full read, then reads of what changed, a failed read that keeps the
cache, another account's cache not used, and the rules resolved from it (worker.rules)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from pydantic import SecretStr
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from connectors.cliniko import ClinikoClient
from connectors.retry import RetryPolicy
from sandbox.cliniko.seed import DEMO_API_KEY, DEMO_USER_AGENT
from tests.support.billing import store
from tests.support.cliniko import CLINIKO_NOW, RunningCliniko
from worker.config import Settings, parse_config
from worker.prices import refresh_price_list
from worker.rules import plan_digest, priced_rules
from worker.store import PriceItem, PriceList

FAST = RetryPolicy(max_attempts=2, base_delay=0.001, max_wait=1.0)
NOW = CLINIKO_NOW


@pytest.fixture
def factory(db_url: str) -> Iterator[sessionmaker[Session]]:
    with store(db_url) as made:
        yield made


@pytest.fixture
def client(cliniko: RunningCliniko) -> Iterator[ClinikoClient]:
    with ClinikoClient(
        cliniko.base_url, SecretStr(DEMO_API_KEY), DEMO_USER_AGENT, policy=FAST
    ) as opened:
        yield opened


def settings(base_url: str, **rule: Any) -> Settings:
    data = {
        "kukkingu": {
            "base_url": "http://127.0.0.1:1",
            "tenant_id": "tnt_" + "a" * 24,
            "token_env": "KK",
        },
        "sources": [{"name": "gh", "kind": "github", "token_env": "GH"}],
        "rules": [
            {
                "source": "gh",
                "repos": ["acme/app"],
                "contract_id": "ctr_" + "b" * 24,
                "currency": "USD",
                **rule,
            }
        ],
        "cliniko": {
            "base_url": base_url,
            "api_key_env": "CK",
            "user_agent": DEMO_USER_AGENT,
        },
    }
    return parse_config(data, environ={"KK": "kk-token-1", "GH": "gh-token-1", "CK": "ck-1"})


def cached(factory: sessionmaker[Session]) -> dict[str, tuple[str | None, str, bool]]:
    with factory() as session:
        return {
            row.item_id: (row.item_code, row.price, row.archived_at is not None)
            for row in session.scalars(select(PriceItem))
        }


def state(factory: sessionmaker[Session]) -> PriceList:
    with factory() as session:
        return session.get_one(PriceList, 1)


def test_a_full_read_then_reads_of_what_changed(
    factory: sessionmaker[Session], client: ClinikoClient, cliniko: RunningCliniko
) -> None:
    first = refresh_price_list(factory, client, cliniko.base_url, now=NOW)
    assert (first.full, first.items, first.error) == (True, 6, None)
    items = cached(factory)
    assert items[cliniko.item_id("CONSULT-60")] == ("CONSULT-60", "150.00", False)
    assert items[cliniko.item_id("CONSULT-OLD")] == ("CONSULT-OLD", "120.00", True)
    assert state(factory).full_read_at == NOW

    cliniko.clear_requests()
    again = refresh_price_list(factory, client, cliniko.base_url, now=NOW + timedelta(minutes=5))
    # nothing changed: read from the newest change seen less a minute, only the item of
    # that change comes back
    assert (again.full, again.items) == (False, 1)
    assert cliniko.requests() == {"GET /v1/billable_items": 2}

    cliniko.advance_clock(600)
    cliniko.edit_item(cliniko.item_id("REVIEW-30"), price="99.00")
    cliniko.edit_item(cliniko.item_id("BOOK-1"), archived_at=cliniko.clock()["now"])
    changed = refresh_price_list(factory, client, cliniko.base_url, now=NOW + timedelta(hours=1))
    assert (changed.full, changed.items) == (False, 2)  # the edits (older ones out of overlap)
    items = cached(factory)
    assert items[cliniko.item_id("REVIEW-30")] == ("REVIEW-30", "99.00", False)
    assert items[cliniko.item_id("BOOK-1")] == ("BOOK-1", "39.95", True)
    assert len(items) == 6
    assert state(factory).full_read_at == NOW  # a day after it, the next read is full again
    later = refresh_price_list(factory, client, cliniko.base_url, now=NOW + timedelta(days=1))
    assert (later.full, later.items) == (True, 6)


def test_a_failed_read_keeps_the_cache_and_says_why(
    factory: sessionmaker[Session], client: ClinikoClient, cliniko: RunningCliniko
) -> None:
    refresh_price_list(factory, client, cliniko.base_url, now=NOW)
    before = cached(factory)
    cliniko.fault({"kind": "error500", "count": 10})
    failed = refresh_price_list(factory, client, cliniko.base_url, now=NOW + timedelta(hours=1))
    assert failed.error is not None
    assert failed.error.startswith("Cliniko GET /billable_items answered 500 (after 2 tries)")
    assert not failed.configuration
    assert cached(factory) == before
    row = state(factory)
    assert (row.read_at, row.attempted_at, row.error) == (
        NOW,
        NOW + timedelta(hours=1),
        failed.error,
    )
    # the rules are still priced from the cache
    config = settings(cliniko.base_url, rate_item="CONSULT-60")
    with factory() as session:
        (rule,) = priced_rules(session, config)
    assert (rule.hourly_rate_minor, rule.held, dict(rule.prices)) == (
        15000,
        None,
        {"CONSULT-60": "150.00"},
    )


def test_a_refused_key_is_a_configuration_failure(
    factory: sessionmaker[Session], cliniko: RunningCliniko
) -> None:
    with ClinikoClient(
        cliniko.base_url, SecretStr("not-a-key-au1"), DEMO_USER_AGENT, policy=FAST
    ) as wrong:
        failed = refresh_price_list(factory, wrong, cliniko.base_url, now=NOW)
    assert failed.configuration
    assert failed.error is not None
    assert "not-a-key" not in failed.error  # never the key
    config = settings(cliniko.base_url, rate_item="CONSULT-60")
    with factory() as session:
        (rule,) = priced_rules(session, config)
    assert rule.held == "the price list has not been read from Cliniko yet"


@pytest.mark.parametrize(
    ("rule", "held"),
    [
        ({"rate_item": "CONSULT-60"}, None),
        ({"rate_item": "CONSULT-OLD"}, "price list item 'CONSULT-OLD' is archived"),
        ({"rate_item": "BOOK-1"}, "price list item 'BOOK-1' is a Product, not a Service"),
        ({"rate_item": "NOPE"}, "price list item 'NOPE' does not exist"),
        (
            {"rate_item": "PRECISE-1"},
            "price list item 'PRECISE-1': price '99.999' has more decimals than the "
            "currency's 2; it would have to be rounded",
        ),
        (
            {"hourly_rate_minor": 100, "person_rates": {"alice": "CONSULT-OLD", "bob": 7}},
            "price list item 'CONSULT-OLD' is archived",
        ),
    ],
)
def test_rules_resolved_from_the_cache(
    factory: sessionmaker[Session],
    client: ClinikoClient,
    cliniko: RunningCliniko,
    rule: dict[str, Any],
    held: str | None,
) -> None:
    refresh_price_list(factory, client, cliniko.base_url, now=NOW)
    with factory() as session:
        (resolved,) = priced_rules(session, settings(cliniko.base_url, **rule))
    assert resolved.held == held


def test_another_accounts_cache_is_not_used(
    factory: sessionmaker[Session], client: ClinikoClient, cliniko: RunningCliniko
) -> None:
    refresh_price_list(factory, client, cliniko.base_url, now=NOW)
    moved = settings("https://api.uk1.cliniko.com/v1", rate_item="CONSULT-60")
    with factory() as session:
        (rule,) = priced_rules(session, moved)
    assert rule.held == "the price list has not been read from Cliniko yet"


def test_a_price_change_changes_the_rules_digest(
    factory: sessionmaker[Session], client: ClinikoClient, cliniko: RunningCliniko
) -> None:
    config = settings(cliniko.base_url, rate_item="CONSULT-60")
    refresh_price_list(factory, client, cliniko.base_url, now=NOW)
    with factory() as session:
        before = plan_digest(config, priced_rules(session, config))
    cliniko.advance_clock(60)
    cliniko.edit_item(cliniko.item_id("CONSULT-60"), price="150.00")  # no change
    refresh_price_list(factory, client, cliniko.base_url, now=NOW + timedelta(minutes=2))
    with factory() as session:
        assert plan_digest(config, priced_rules(session, config)) == before
    cliniko.edit_item(cliniko.item_id("CONSULT-60"), price="150.50")
    refresh_price_list(factory, client, cliniko.base_url, now=NOW + timedelta(minutes=3))
    with factory() as session:
        assert plan_digest(config, priced_rules(session, config)) != before


def test_a_long_price_is_kept_whole_and_refused(
    factory: sessionmaker[Session], client: ClinikoClient, cliniko: RunningCliniko
) -> None:
    """A price with many decimals is stored as sent: cut to fit a column, it would read
    as an exact price and bill at it."""
    price = "150." + "0" * 70 + "1"
    cliniko.add_item(name="Long price", item_code="LONG-1", item_type="Service", price=price)
    refresh_price_list(factory, client, cliniko.base_url, now=NOW)
    with factory() as session:
        stored = session.scalars(select(PriceItem).where(PriceItem.item_code == "LONG-1")).one()
        assert stored.price == price
        (rule,) = priced_rules(session, settings(cliniko.base_url, rate_item="LONG-1"))
    assert rule.held is not None
    assert "has more decimals than the currency's 2" in rule.held
