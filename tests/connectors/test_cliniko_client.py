"""The Cliniko client over real HTTP against the Cliniko sandbox: the price list read in
full and since a moment, archived items included, pages followed, and the failures (a
refused key or User-Agent, 429 and 5xx) as the shared request loop treats them."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest
from pydantic import SecretStr

from connectors.cliniko import (
    ClinikoClient,
    ClinikoConfigError,
    ClinikoUnavailable,
)
from connectors.retry import RetryPolicy
from sandbox.cliniko.seed import DEMO_API_KEY, DEMO_USER_AGENT
from tests.support.cliniko import CLINIKO_NOW, RunningCliniko

FAST = RetryPolicy(max_attempts=3, base_delay=0.001, max_wait=5.0)


@pytest.fixture
def client(cliniko: RunningCliniko) -> Iterator[ClinikoClient]:
    with ClinikoClient(
        cliniko.base_url, SecretStr(DEMO_API_KEY), DEMO_USER_AGENT, policy=FAST
    ) as opened:
        yield opened


def codes(items: list) -> set[str | None]:  # type: ignore[type-arg]
    return {item.item_code for item in items}


def test_a_full_read_has_every_item_archived_ones_included(
    cliniko: RunningCliniko, client: ClinikoClient
) -> None:
    items = client.price_list()
    assert {"CONSULT-60", "REVIEW-30", "BOOK-1", "CONSULT-OLD", "PRECISE-1"} <= codes(items)
    by_code = {item.item_code: item for item in items}
    assert by_code["CONSULT-60"].price == "150.00"  # the decimal string, as Cliniko sends it
    assert by_code["CONSULT-60"].item_type == "Service"
    assert by_code["CONSULT-OLD"].archived_at is not None
    assert by_code["BOOK-1"].item_type == "Product"
    assert len(items) == len(cliniko.items())
    # two reads: the items in use, then the archived ones
    assert client.request_counts == {"GET /billable_items": 2}


def test_pages_are_followed_by_their_next_link(
    cliniko: RunningCliniko, client: ClinikoClient
) -> None:
    for n in range(150):
        cliniko.add_item(name=f"Session {n}", item_code=f"S-{n}", item_type="Service", price="1.00")
    items = client.price_list()
    assert {f"S-{n}" for n in range(150)} <= codes(items)
    assert len(items) == len(cliniko.items())  # none twice, none lost
    assert client.request_counts == {"GET /billable_items": 3}  # 2 pages in use, 1 archived


def test_a_read_since_a_moment_has_what_changed_or_was_archived_since(
    cliniko: RunningCliniko, client: ClinikoClient
) -> None:
    since = CLINIKO_NOW - timedelta(minutes=1)
    assert client.price_list(since) == []
    cliniko.advance_clock(60)
    cliniko.edit_item(cliniko.item_id("CONSULT-60"), price="160.00")
    cliniko.edit_item(cliniko.item_id("REVIEW-30"), archived_at="2026-11-20T09:01:00Z")
    changed = {item.item_code: item for item in client.price_list(since)}
    assert set(changed) == {"CONSULT-60", "REVIEW-30"}
    assert changed["CONSULT-60"].price == "160.00"
    assert changed["REVIEW-30"].archived_at is not None


@pytest.mark.parametrize(
    ("key", "agent"),
    [("not-the-key", DEMO_USER_AGENT), (DEMO_API_KEY, "billsync")],
    ids=["wrong key", "no contact email"],
)
def test_a_refused_key_or_user_agent_is_a_configuration_error(
    cliniko: RunningCliniko, key: str, agent: str
) -> None:
    with (
        ClinikoClient(cliniko.base_url, SecretStr(key), agent, policy=FAST) as refused,
        pytest.raises(ClinikoConfigError) as raised,
    ):
        refused.price_list()
    message = str(raised.value)
    assert "Cliniko GET /billable_items answered 40" in message
    assert "[cliniko]" in message
    assert "not-the-key" not in message
    assert refused.request_counts == {"GET /billable_items": 1}  # not retried


def test_429_is_waited_out_and_5xx_retried_until_the_loop_gives_up(
    cliniko: RunningCliniko, client: ClinikoClient
) -> None:
    cliniko.fault({"kind": "rate_limit", "count": 1, "retry_after": 1})
    assert client.price_list()  # one 429, then the answer
    assert client.request_counts == {"GET /billable_items": 3}
    cliniko.fault({"kind": "error500", "count": 10})
    with pytest.raises(ClinikoUnavailable, match=r"answered 500 \(after 3 tries\)"):
        client.price_list()
