"""The Kukkingu client over real HTTP against the sandbox: every endpoint, every error
mapping, and each injected fault (500, 429 + Retry-After, commit-then-drop, latency)."""

from collections.abc import Iterator
from decimal import Decimal

import pytest
from pydantic import SecretStr

from connectors.kukkingu import (
    BillablePatch,
    BillableReplace,
    InvoiceReplace,
    KukkinguAuthError,
    KukkinguClient,
    KukkinguConflict,
    KukkinguNotFound,
    KukkinguOutcomeUnknown,
    KukkinguRejected,
    KukkinguUnavailable,
    NewBillable,
    NewInvoice,
)
from connectors.retry import RetryPolicy
from sandbox.kukkingu.seed import (
    ACME_CLIENT_ID,
    ACME_CONTRACT_ID,
    DEMO_TENANT_ID,
    DEMO_TOKEN,
    GLOBEX_CONTRACT_ID,
    OTHER_TENANT_ID,
)
from tests.support.kukkingu import RunningKukkingu

POLICY = RetryPolicy(max_attempts=3, base_delay=0.01, max_wait=5.0)


class Recorder:
    def __init__(self) -> None:
        self.sleeps: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.sleeps.append(seconds)


@pytest.fixture
def sleeps() -> Recorder:
    return Recorder()


@pytest.fixture
def client(kukkingu: RunningKukkingu, sleeps: Recorder) -> Iterator[KukkinguClient]:
    with KukkinguClient(
        kukkingu.url, DEMO_TENANT_ID, SecretStr(DEMO_TOKEN), timeout=5, policy=POLICY, sleep=sleeps
    ) as kk:
        yield kk


def new_invoice(number: str = "ACME-2026-11-1", contract: str = ACME_CONTRACT_ID) -> NewInvoice:
    return NewInvoice(
        contract_id=contract,
        invoice_number=number,
        exchange_rate=Decimal("1.12"),
        currency_code="EUR" if contract == ACME_CONTRACT_ID else "USD",
        amount_minor=0,
    )


def line(n: int, **overrides: object) -> NewBillable:
    fields: dict[str, object] = {
        "description": f"PROJ-{n} Some work",
        "quantity": Decimal("1.25"),
        "amount_minor": 15000,
        "currency_code": "EUR",
        "reference_type": "JIRA",
        "reference_id": f"PROJ-{n}",
        "metadata": {"source": "jira-main", "entries": 2},
        "order": n,
    }
    fields.update(overrides)
    return NewBillable(**fields)


def test_contracts_and_clients(client: KukkinguClient) -> None:
    contracts = {c.id: c for c in client.list_contracts()}
    assert set(contracts) == {ACME_CONTRACT_ID, GLOBEX_CONTRACT_ID}
    assert contracts[ACME_CONTRACT_ID].client == ACME_CLIENT_ID
    assert [c.id for c in client.list_contracts(client_id=ACME_CLIENT_ID)] == [ACME_CONTRACT_ID]
    assert client.get_contract(GLOBEX_CONTRACT_ID).currency_code == "USD"
    assert {c.name for c in client.list_clients()} == {"Acme GmbH", "Globex Corp"}


def test_invoice_and_billable_lifecycle(client: KukkinguClient) -> None:
    invoice = client.create_invoice(new_invoice())
    assert (invoice.status, invoice.exchange_rate, invoice.amount_minor) == (
        "DRAFT",
        Decimal("1.12"),
        0,
    )
    created = client.create_billables(invoice.id, [line(n) for n in range(100)])
    assert len(created) == 100
    assert created[0].quantity == Decimal("1.25")
    assert created[0].metadata == {"source": "jira-main", "entries": 2}
    listed = client.list_billables(invoice.id)
    assert [b.reference_id for b in listed] == [f"PROJ-{n}" for n in range(100)]

    first = created[0]
    replaced = client.replace_billable(
        first.id,
        BillableReplace(
            description="PROJ-0 New title",
            quantity=Decimal("2.5"),
            amount_minor=30000,
            currency_code="EUR",
            order=0,
            reference_type="JIRA",
            reference_id="PROJ-0",
        ),
    )
    assert (replaced.quantity, replaced.metadata) == (Decimal("2.5"), None)  # PUT replaces
    patched = client.patch_billable(first.id, BillablePatch(metadata={"zeroed": True}))
    assert (patched.description, patched.metadata) == ("PROJ-0 New title", {"zeroed": True})
    assert client.get_billable(first.id).amount_minor == 30000

    order = client.order_billables(invoice.id, [created[99].id, created[98].id])
    assert order[:3] == [created[99].id, created[98].id, created[0].id]

    total = sum(b.amount_minor for b in client.list_billables(invoice.id))
    body = new_invoice().model_copy(update={"amount_minor": total})
    updated = client.replace_invoice(invoice.id, InvoiceReplace(**body.model_dump()))
    assert updated.amount_minor == total == 30000 + 99 * 15000

    assert [i.id for i in client.list_invoices(contract_id=ACME_CONTRACT_ID, status="DRAFT")] == [
        invoice.id
    ]
    assert client.finalize_invoice(invoice.id).status == "FINALIZED"
    assert client.list_invoices(status="DRAFT") == []
    with pytest.raises(KukkinguConflict) as caught:
        client.create_billables(invoice.id, [line(100)])
    assert caught.value.status == 409
    assert caught.value.api_error == "Conflict"
    assert client.void_invoice(invoice.id).status == "VOID"
    with pytest.raises(KukkinguConflict):
        client.void_invoice(invoice.id)


def test_duplicate_invoice_number_is_a_conflict(client: KukkinguClient) -> None:
    client.create_invoice(new_invoice("SAME-1"))
    with pytest.raises(KukkinguConflict, match="POST /api/v1/invoices answered 409"):
        client.create_invoice(new_invoice("SAME-1"))


def test_rejected_payload_names_the_field(client: KukkinguClient) -> None:
    invoice = client.create_invoice(new_invoice())
    with pytest.raises(KukkinguRejected) as caught:
        client.create_billables(invoice.id, [line(1), line(2, currency_code="USD")])
    assert caught.value.status == 400
    assert "billables[1].currencyCode" in str(caught.value)


def test_unknown_ids_are_not_found(client: KukkinguClient) -> None:
    with pytest.raises(KukkinguNotFound):
        client.get_invoice("inv_" + "0" * 24)
    with pytest.raises(KukkinguNotFound):
        client.get_billable("bil_" + "0" * 24)


def test_bad_token_is_a_configuration_error(kukkingu: RunningKukkingu) -> None:
    kk = KukkinguClient(kukkingu.url, DEMO_TENANT_ID, SecretStr("wrong-token-value"))
    with kk, pytest.raises(KukkinguAuthError) as caught:
        kk.list_invoices()
    assert caught.value.status == 401
    assert "wrong-token-value" not in str(caught.value)


def test_tenant_not_allowed_for_token_is_a_configuration_error(kukkingu: RunningKukkingu) -> None:
    kk = KukkinguClient(kukkingu.url, OTHER_TENANT_ID, SecretStr(DEMO_TOKEN))
    with kk, pytest.raises(KukkinguAuthError) as caught:
        kk.list_contracts()
    assert caught.value.status == 403


# --- injected faults ------------------------------------------------------------------------


def test_get_retries_through_500s(
    client: KukkinguClient, kukkingu: RunningKukkingu, sleeps: Recorder
) -> None:
    kukkingu.fault({"kind": "error500", "count": 2, "match": {"method": "GET"}})
    assert len(client.list_contracts()) == 2
    assert len(sleeps.sleeps) == 2
    assert kukkingu.requests()["GET /api/v1/contracts"] == 3
    assert client.request_counts["GET /api/v1/contracts"] == 3


def test_get_gives_up_when_500s_persist(client: KukkinguClient, kukkingu: RunningKukkingu) -> None:
    kukkingu.fault({"kind": "error500", "count": 5})
    with pytest.raises(KukkinguUnavailable) as caught:
        client.list_invoices()
    assert caught.value.retry_after is not None
    assert kukkingu.requests()["GET /api/v1/invoices"] == 3


def test_create_on_500_is_outcome_unknown_and_sent_once(
    client: KukkinguClient, kukkingu: RunningKukkingu
) -> None:
    invoice = client.create_invoice(new_invoice())
    kukkingu.fault({"kind": "error500", "count": 1, "match": {"route": "/api/v1/billables"}})
    with pytest.raises(KukkinguOutcomeUnknown):
        client.create_billables(invoice.id, [line(1)])
    assert kukkingu.requests()["POST /api/v1/billables"] == 1
    assert client.list_billables(invoice.id) == []  # this fault answers before storing


def test_create_after_429_is_retried_after_retry_after_and_stored_once(
    client: KukkinguClient, kukkingu: RunningKukkingu, sleeps: Recorder
) -> None:
    invoice = client.create_invoice(new_invoice())
    kukkingu.fault(
        {"kind": "rate_limit", "count": 1, "retry_after": 2, "match": {"method": "POST"}}
    )
    created = client.create_billables(invoice.id, [line(1), line(2)])
    assert sleeps.sleeps == [2.0]
    assert [b.id for b in client.list_billables(invoice.id)] == [b.id for b in created]
    assert kukkingu.requests()["POST /api/v1/billables"] == 2


def test_long_retry_after_is_handed_back_not_slept(
    client: KukkinguClient, kukkingu: RunningKukkingu, sleeps: Recorder
) -> None:
    kukkingu.fault({"kind": "rate_limit", "count": 1, "retry_after": 120})
    with pytest.raises(KukkinguUnavailable) as caught:
        client.list_clients()
    assert caught.value.retry_after == 120.0
    assert sleeps.sleeps == []


def test_create_dropped_after_commit_is_outcome_unknown_and_is_stored(
    client: KukkinguClient, kukkingu: RunningKukkingu
) -> None:
    invoice = client.create_invoice(new_invoice())
    kukkingu.fault(
        {"kind": "drop_after_commit", "count": 1, "match": {"route": "/api/v1/billables"}}
    )
    with pytest.raises(KukkinguOutcomeUnknown, match="got no complete answer"):
        client.create_billables(invoice.id, [line(1), line(2)])
    # Not retried (that would duplicate) ...
    assert kukkingu.requests()["POST /api/v1/billables"] == 1
    # ... and the write is there: recovery adopts by (referenceType, referenceId).
    stored = client.list_billables(invoice.id)
    assert [(b.reference_type, b.reference_id) for b in stored] == [
        ("JIRA", "PROJ-1"),
        ("JIRA", "PROJ-2"),
    ]


def test_invoice_create_dropped_after_commit_can_be_found_by_number(
    client: KukkinguClient, kukkingu: RunningKukkingu
) -> None:
    kukkingu.fault({"kind": "drop_after_commit", "count": 1, "match": {"method": "POST"}})
    with pytest.raises(KukkinguOutcomeUnknown):
        client.create_invoice(new_invoice("LOST-1"))
    found = [
        i
        for i in client.list_invoices(contract_id=ACME_CONTRACT_ID)
        if i.invoice_number == "LOST-1"
    ]
    assert len(found) == 1


def test_idempotent_put_dropped_after_commit_is_retried(
    client: KukkinguClient, kukkingu: RunningKukkingu
) -> None:
    invoice = client.create_invoice(new_invoice())
    (billable,) = client.create_billables(invoice.id, [line(1)])
    kukkingu.fault({"kind": "drop_after_commit", "count": 1, "match": {"method": "PUT"}})
    body = BillableReplace(
        description="d", quantity=Decimal(3), amount_minor=36000, currency_code="EUR", order=1
    )
    assert client.replace_billable(billable.id, body).amount_minor == 36000
    assert kukkingu.requests()["PUT /api/v1/billables/{billableId}"] == 2


def test_latency_beyond_the_timeout_is_retried_then_unavailable(
    kukkingu: RunningKukkingu, sleeps: Recorder
) -> None:
    kukkingu.fault({"kind": "latency", "ms": 400, "match": {"method": "GET"}})
    with (
        KukkinguClient(
            kukkingu.url,
            DEMO_TENANT_ID,
            SecretStr(DEMO_TOKEN),
            timeout=0.1,
            policy=POLICY,
            sleep=sleeps,
        ) as kk,
        pytest.raises(KukkinguUnavailable, match=r"ReadTimeout\) \(after 3 tries\)"),
    ):
        kk.list_clients()


def test_latency_within_the_timeout_just_slows_down(
    client: KukkinguClient, kukkingu: RunningKukkingu
) -> None:
    kukkingu.fault({"kind": "latency", "ms": 50})
    assert len(client.list_clients()) == 2


def test_nothing_listening_is_unavailable_after_retries(sleeps: Recorder) -> None:
    # Port 9 (discard) has no listener on loopback: the connection is refused.
    with (
        KukkinguClient(
            "http://127.0.0.1:9", DEMO_TENANT_ID, SecretStr(DEMO_TOKEN), policy=POLICY, sleep=sleeps
        ) as kk,
        pytest.raises(KukkinguUnavailable, match="could not connect"),
    ):
        kk.create_invoice(new_invoice())  # nothing was sent, so even a POST is retried
    assert len(sleeps.sleeps) == 2
