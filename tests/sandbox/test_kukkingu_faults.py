"""Fault injection, request counts, reset and the rest of the ``/_sandbox`` admin API."""

from __future__ import annotations

import asyncio
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest

from sandbox.kukkingu import KukkinguState, create_app
from sandbox.kukkingu.faults import FaultSpec
from sandbox.kukkingu.seed import (
    ACME_CONTRACT_ID,
    DEMO_TENANT_ID,
    DEMO_TOKEN,
    GLOBEX_CONTRACT_ID,
    OTHER_TENANT_ID,
    OTHER_TOKEN,
)
from tests.support.waiting import wait_for

from .conftest import Kk


def add_fault(bare: httpx.Client, **spec: Any) -> dict[str, Any]:
    response = bare.post("/_sandbox/faults", json=spec)
    assert response.status_code == 200, response.text
    fault: dict[str, Any] = response.json()["data"]
    return fault


def counts(bare: httpx.Client) -> dict[str, int]:
    result: dict[str, int] = bare.get("/_sandbox/requests").json()["data"]
    return result


def test_error500_answers_before_processing_so_nothing_is_stored(kk: Kk, bare):
    add_fault(bare, kind="error500", count=2)
    for _ in range(2):
        response = kk.post("/api/v1/invoices", json=kk.invoice_body())
        assert response.status_code == 500
        assert response.json()["error"] == "InternalServerError"
    assert kk.ok(kk.get("/api/v1/invoices")) == []
    assert kk.post("/api/v1/invoices", json=kk.invoice_body()).status_code == 200


def test_rate_limit_is_429_with_retry_after_and_stores_nothing(kk: Kk, bare):
    add_fault(bare, kind="rate_limit", count=1, retry_after=3)
    response = kk.post("/api/v1/invoices", json=kk.invoice_body())
    assert response.status_code == 429
    assert response.headers["Retry-After"] == "3"
    assert response.json() == {"error": "TooManyRequests", "message": "injected fault: rate_limit"}
    assert kk.ok(kk.get("/api/v1/invoices")) == []


def test_drop_after_commit_stores_the_write_but_sends_no_response(kk: Kk, bare):
    invoice = kk.create_invoice()
    add_fault(
        bare, kind="drop_after_commit", match={"method": "POST", "route": "/api/v1/billables"}
    )
    body = {"invoiceId": invoice["id"], "billables": [kk.line(referenceId="PROJ-1")]}
    with pytest.raises(httpx.RemoteProtocolError):
        kk.post("/api/v1/billables", json=body)
    stored = kk.lines(invoice["id"])
    assert [b["referenceId"] for b in stored] == ["PROJ-1"]
    # The fault is used up; the same client (new connection) works again.
    assert kk.post("/api/v1/billables", json=body).status_code == 200
    assert len(kk.lines(invoice["id"])) == 2


def test_latency_delays_every_matching_request_until_cleared(kk: Kk, bare):
    add_fault(bare, kind="latency", ms=150, match={"route": "/api/v1/clients"})
    for _ in range(2):
        started = time.monotonic()
        assert kk.get("/api/v1/clients").status_code == 200
        assert time.monotonic() - started >= 0.15
    assert [f["kind"] for f in bare.get("/_sandbox/faults").json()["data"]] == ["latency"]
    # not matched: no delay. Asserted without a clock: a matched request would sleep for
    # ten minutes, far past the client's timeout
    add_fault(bare, kind="latency", ms=600_000, match={"route": "/api/v1/clients"})
    assert kk.get("/api/v1/invoices", timeout=60).status_code == 200
    assert bare.delete("/_sandbox/faults").status_code == 204
    assert bare.get("/_sandbox/faults").json() == {"data": []}


def test_hold_keeps_matching_writes_unprocessed_until_released(kk: Kk, bare, sandbox):
    invoice = kk.create_invoice()
    add_fault(bare, kind="hold", match={"method": "POST", "route": "/api/v1/billables"})
    body = {"invoiceId": invoice["id"], "billables": [kk.line(referenceId="PROJ-1")]}
    with ThreadPoolExecutor(1) as pool:
        answer = pool.submit(kk.post, "/api/v1/billables", json=body)
        wait_for(lambda: sandbox.app.faults.held() == 1, "the write to be held")
        assert [f["held"] for f in bare.get("/_sandbox/faults").json()["data"]] == [1]
        assert kk.lines(invoice["id"]) == []  # held: not processed
        assert kk.get("/api/v1/invoices").status_code == 200  # other routes go on
        assert bare.delete("/_sandbox/faults").status_code == 204
        assert answer.result(timeout=60).status_code == 200
    assert [b["referenceId"] for b in kk.lines(invoice["id"])] == ["PROJ-1"]


def test_a_held_request_whose_client_goes_away_is_never_processed(kk: Kk, bare, sandbox):
    invoice = kk.create_invoice()
    add_fault(bare, kind="hold", count=1, match={"method": "POST"})
    body = {"invoiceId": invoice["id"], "billables": [kk.line(referenceId="PROJ-1")]}
    doomed = httpx.Client(base_url=str(kk.http.base_url), headers=kk.http.headers)
    with ThreadPoolExecutor(1) as pool:
        answer = pool.submit(doomed.post, "/api/v1/billables", json=body)
        wait_for(lambda: sandbox.app.faults.held() == 1, "the write to be held")
        doomed.close()  # the client dies with its request in flight
        with pytest.raises(httpx.HTTPError):
            answer.result(timeout=60)
    wait_for(lambda: sandbox.app.faults.held() == 0, "the held request to be dropped")
    bare.delete("/_sandbox/faults")
    assert kk.lines(invoice["id"]) == []
    # count=1 held one request; the next one is not held
    assert kk.post("/api/v1/billables", json=body).status_code == 200


def test_faults_hit_only_matching_requests_in_fifo_order(kk: Kk, bare):
    add_fault(bare, kind="error500", match={"method": "POST"})
    add_fault(bare, kind="rate_limit", match={"route": "/api/v1/invoices/{invoiceId}"})
    add_fault(bare, kind="rate_limit")
    # GET /invoices matches neither of the first two, so it takes the third (unmatched) one.
    assert kk.get("/api/v1/invoices").status_code == 429
    assert kk.get("/api/v1/invoices").status_code == 200
    assert kk.get("/api/v1/invoices/inv_x").status_code == 429
    assert kk.get("/api/v1/invoices/inv_x").status_code == 404
    assert kk.post("/api/v1/invoices", json=kk.invoice_body()).status_code == 500
    assert kk.post("/api/v1/invoices", json=kk.invoice_body()).status_code == 200


def test_pending_faults_are_listed_with_what_remains(kk: Kk, bare):
    add_fault(bare, kind="error500", count=2, match={"method": "GET"})
    kk.get("/api/v1/clients")
    pending = bare.get("/_sandbox/faults").json()["data"]
    assert len(pending) == 1
    assert (pending[0]["kind"], pending[0]["count"], pending[0]["remaining"]) == ("error500", 2, 1)
    assert pending[0]["match"] == {"method": "GET"}


@pytest.mark.parametrize(
    "spec",
    [
        {"kind": "explode"},
        {"kind": "error500", "count": 0},
        {"kind": "error500", "count": "2"},
        {"kind": "latency"},
        {"kind": "error500", "ms": 5},
        {"kind": "error500", "retry_after": 5},
        {"kind": "error500", "match": {"path": "/x"}},
        {"kind": "error500", "extra": 1},
    ],
)
def test_bad_fault_specs_are_400(bare, spec):
    response = bare.post("/_sandbox/faults", json=spec)
    assert response.status_code == 400
    assert response.json()["error"] == "BadRequest"
    assert bare.get("/_sandbox/faults").json() == {"data": []}


def test_requests_are_counted_by_route_template(kk: Kk, bare):
    invoice = kk.create_invoice()
    kk.get(f"/api/v1/invoices/{invoice['id']}")
    kk.get("/api/v1/invoices/inv_other")
    kk.create_lines(invoice["id"])
    kk.create_lines(invoice["id"])
    kk.get("/api/v1/nowhere")
    kk.delete("/api/v1/invoices")
    bare.get("/api/v1/clients")  # a 401 still counts: the client made the request
    assert counts(bare) == {
        "DELETE /api/v1/invoices": 1,
        "GET /api/v1/clients": 1,
        "GET /api/v1/invoices/{invoiceId}": 2,
        "GET /api/v1/nowhere": 1,
        "POST /api/v1/billables": 2,
        "POST /api/v1/invoices": 1,
    }
    assert bare.delete("/_sandbox/requests").status_code == 204
    assert counts(bare) == {}


def test_faulted_requests_are_counted_too(kk: Kk, bare):
    add_fault(bare, kind="error500")
    kk.get("/api/v1/clients")
    assert counts(bare) == {"GET /api/v1/clients": 1}


def test_reset_restores_the_seed_and_clears_counts_and_faults(kk: Kk, bare):
    first_id = kk.create_invoice()["id"]
    kk.delete(f"/api/v1/contracts/{GLOBEX_CONTRACT_ID}")
    add_fault(bare, kind="latency", ms=1)
    assert bare.post("/_sandbox/reset").status_code == 204
    assert counts(bare) == {}
    assert bare.get("/_sandbox/faults").json() == {"data": []}
    assert kk.ok(kk.get("/api/v1/invoices")) == []
    contracts = [c["id"] for c in kk.ok(kk.get("/api/v1/contracts"))]
    assert contracts == [ACME_CONTRACT_ID, GLOBEX_CONTRACT_ID]
    assert kk.create_invoice()["id"] == first_id  # the same ids as a fresh start


def test_info_serves_the_demo_values(bare):
    info = bare.get("/_sandbox/info").json()["data"]
    assert info == {
        "token": DEMO_TOKEN,
        "tenantId": DEMO_TENANT_ID,
        "otherToken": OTHER_TOKEN,
        "otherTenantId": OTHER_TENANT_ID,
        "clients": {
            "Acme GmbH": "clnt_demoacmegmbh000000000001",
            "Globex Corp": "clnt_demoglobexcorp0000000001",
        },
        "contracts": {"Acme retainer": ACME_CONTRACT_ID, "Globex support": GLOBEX_CONTRACT_ID},
    }


def test_admin_calls_are_neither_counted_nor_faulted(bare):
    add_fault(bare, kind="error500", count=5)
    assert bare.get("/_sandbox/info").status_code == 200
    assert bare.get("/_sandbox/requests").json() == {"data": {}}
    assert bare.get("/_sandbox/nothing").status_code == 404


def test_the_admin_api_answers_loopback_clients_only():
    app = create_app(KukkinguState())

    async def ask(client: tuple[str, int]) -> int:
        transport = httpx.ASGITransport(app=app, client=client)
        async with httpx.AsyncClient(transport=transport, base_url="http://sandbox") as http:
            return (await http.get("/_sandbox/info")).status_code

    assert asyncio.run(ask(("10.1.2.3", 4000))) == 403
    assert asyncio.run(ask(("127.0.0.1", 4000))) == 200


def test_drop_after_commit_refuses_a_server_other_than_uvicorn():
    app = create_app(KukkinguState())
    app.faults.add(FaultSpec(kind="drop_after_commit"))

    async def ask() -> None:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://sandbox") as http:
            await http.get("/api/v1/clients", headers={"Authorization": f"Bearer {DEMO_TOKEN}"})

    with pytest.raises(RuntimeError, match="served by uvicorn"):
        asyncio.run(ask())
