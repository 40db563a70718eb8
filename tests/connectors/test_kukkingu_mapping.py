"""A line's content to Kukkingu's billable bodies and back (pure, literal values)."""

from __future__ import annotations

from decimal import Decimal

from hypothesis import given
from hypothesis import strategies as st

from connectors.kukkingu import Billable
from connectors.kukkingu.mapping import billable_replace, content_of, new_billable
from worker.core.model import LineContent

CONTENT = LineContent(
    reference_type="JIRA",
    reference_id="ACME-7@2026-10",
    description="ACME-7 Checkout shows wrong VAT",
    quantity=Decimal("1.50"),
    amount_minor=18000,
    currency="EUR",
    position=4,
    metadata={"source": "jira-demo", "late": True},
)


def test_the_create_body_carries_every_field_by_its_api_name() -> None:
    assert new_billable(CONTENT).to_json() == {
        "description": "ACME-7 Checkout shows wrong VAT",
        "quantity": 1.5,
        "amountMinor": 18000,
        "currencyCode": "EUR",
        "referenceType": "JIRA",
        "referenceId": "ACME-7@2026-10",
        "metadata": {"source": "jira-demo", "late": True},
        "order": 4,
    }


def test_the_replace_body_is_the_same_fields() -> None:
    assert billable_replace(CONTENT).to_json() == new_billable(CONTENT).to_json()


def held(body: dict[str, object]) -> Billable:
    return Billable.model_validate(
        {
            **body,
            "id": "bil_1",
            "invoice": "inv_1",
            "createdAt": "2026-11-20T09:00:00Z",
            "updatedAt": "2026-11-20T09:00:00Z",
        }
    )


@given(
    quantity=st.decimals(min_value=0, max_value=10_000, places=2),
    amount=st.integers(min_value=0, max_value=10**12),
    position=st.integers(min_value=0, max_value=99),
)
def test_what_billsync_writes_reads_back_as_the_same_content(
    quantity: Decimal, amount: int, position: int
) -> None:
    content = LineContent(
        reference_type="GITHUB",
        reference_id="acme/api#3",
        description="acme/api#3 Rate limiter",
        quantity=quantity,
        amount_minor=amount,
        currency="USD",
        position=position,
        metadata={"entries": 2},
    )
    back = content_of(held(new_billable(content).to_json()))
    assert back == content
    assert back.digest() == content.digest()


def test_absent_optional_fields_read_as_empty() -> None:
    body = {"description": "d", "quantity": 0, "amountMinor": 0, "currencyCode": "EUR"}
    assert content_of(held(body)) == LineContent("", "", "d", Decimal("0.00"), 0, "EUR", 0, {})
