"""Fixtures for the sandbox's contract tests: raw httpx clients with and without the demo
credentials, plus shortcuts for common set-ups. The server itself is the shared per-module
``kukkingu`` fixture (tests/conftest.py), reset before every test."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from sandbox.kukkingu.seed import (
    ACME_CONTRACT_ID,
    DEMO_TENANT_ID,
    DEMO_TOKEN,
)
from tests.support.kukkingu import RunningKukkingu


@pytest.fixture
def sandbox(kukkingu: RunningKukkingu) -> RunningKukkingu:
    """The shared per-module Kukkingu sandbox (tests/conftest.py), freshly reset."""
    return kukkingu


class Kk:
    """An httpx client with the demo credentials plus shortcuts for common set-ups."""

    def __init__(self, http: httpx.Client) -> None:
        self.http = http

    def request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        return self.http.request(method, path, **kwargs)

    def get(self, path: str, **kwargs: Any) -> httpx.Response:
        return self.http.get(path, **kwargs)

    def post(self, path: str, **kwargs: Any) -> httpx.Response:
        return self.http.post(path, **kwargs)

    def put(self, path: str, **kwargs: Any) -> httpx.Response:
        return self.http.put(path, **kwargs)

    def patch(self, path: str, **kwargs: Any) -> httpx.Response:
        return self.http.patch(path, **kwargs)

    def delete(self, path: str, **kwargs: Any) -> httpx.Response:
        return self.http.delete(path, **kwargs)

    def ok(self, response: httpx.Response) -> Any:
        assert response.status_code == 200, response.text
        return response.json()["data"]

    def invoice_body(self, **overrides: Any) -> dict[str, Any]:
        body: dict[str, Any] = {
            "contractId": ACME_CONTRACT_ID,
            "invoiceNumber": "INV-1",
            "exchangeRate": 1,
            "currencyCode": "EUR",
            "amountMinor": 0,
        }
        body.update(overrides)
        return {k: v for k, v in body.items() if v is not None}

    def create_invoice(self, **overrides: Any) -> dict[str, Any]:
        result: dict[str, Any] = self.ok(
            self.post("/api/v1/invoices", json=self.invoice_body(**overrides))
        )
        return result

    @staticmethod
    def line(**overrides: Any) -> dict[str, Any]:
        item: dict[str, Any] = {
            "description": "PROJ-1 Fix the login",
            "quantity": 1.5,
            "amountMinor": 15000,
            "currencyCode": "EUR",
        }
        item.update(overrides)
        return item

    def create_lines(self, invoice_id: str, *items: dict[str, Any]) -> list[dict[str, Any]]:
        body = {"invoiceId": invoice_id, "billables": list(items) or [self.line()]}
        result: list[dict[str, Any]] = self.ok(self.post("/api/v1/billables", json=body))
        return result

    def lines(self, invoice_id: str) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = self.ok(
            self.get("/api/v1/billables", params={"invoiceId": invoice_id})
        )
        return result


@pytest.fixture
def kk(sandbox: RunningKukkingu) -> Iterator[Kk]:
    headers = {"Authorization": f"Bearer {DEMO_TOKEN}", "tenant-id": DEMO_TENANT_ID}
    with httpx.Client(base_url=sandbox.url, headers=headers, timeout=10) as http:
        yield Kk(http)


@pytest.fixture
def bare(sandbox: RunningKukkingu) -> Iterator[httpx.Client]:
    """A client without any credentials, for auth and admin tests."""
    with httpx.Client(base_url=sandbox.url, timeout=10) as http:
        yield http
