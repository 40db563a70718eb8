"""Tenant isolation, end to end: billsync configured for tenant A never reads or writes
tenant B, even when B holds invoices with A's invoice numbers and billables with A's
references; a config naming a tenant its token cannot open fails clearly and writes nothing."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner
from pydantic import SecretStr

from connectors.kukkingu import KukkinguClient
from sandbox.main import RunningSandbox, start_sandbox
from tests.support.billing import check_invariants, snapshot
from tests.test_end_to_end_jira import admin, config_for, run
from worker.cli import cli


@pytest.fixture
def sandbox() -> Iterator[RunningSandbox]:
    with start_sandbox(kukkingu_port=0, jira_port=0, github_port=0, cliniko_port=0) as running:
        yield running


def tenant_b(sandbox: RunningSandbox) -> tuple[httpx.Client, KukkinguClient]:
    info = sandbox.info()["kukkingu"]
    headers = {
        "Authorization": f"Bearer {info['otherToken']}",
        "tenant-id": info["otherTenantId"],
    }
    raw = httpx.Client(base_url=f"{info['baseUrl']}/api/v1", headers=headers, timeout=10)
    typed = KukkinguClient(info["baseUrl"], info["otherTenantId"], SecretStr(info["otherToken"]))
    return raw, typed


def test_a_sync_for_tenant_a_leaves_tenant_b_alone(tmp_path: Path, sandbox: RunningSandbox) -> None:
    config = str(config_for(tmp_path, sandbox))
    run("-c", config, "db", "upgrade")
    run("-c", config, "sync", "--source", "jira-demo")
    info = sandbox.info()["kukkingu"]
    with KukkinguClient(info["baseUrl"], info["tenantId"], SecretStr(info["token"])) as a:
        first_a = snapshot(a)
    assert first_a.invoices

    # tenant B: its own client and contract, and a draft under each of A's invoice numbers
    # holding a billable with A's first reference on it
    raw, b = tenant_b(sandbox)
    with raw, b:
        client = raw.post("/clients", json={"name": "Acme GmbH"}).json()["data"]
        contract = raw.post(
            "/contracts",
            json={
                "clientId": client["id"],
                "name": "Look-alike",
                "amountMinor": 0,
                "currencyCode": "EUR",
            },
        ).json()["data"]
        for number, items in first_a.billables.items():
            invoice = raw.post(
                "/invoices",
                json={
                    "contractId": contract["id"],
                    "invoiceNumber": number,
                    "exchangeRate": 1,
                    "currencyCode": "EUR",
                    "amountMinor": 100,
                },
            )
            assert invoice.status_code in (200, 201), invoice.text
            created = raw.post(
                "/billables",
                json={
                    "invoiceId": invoice.json()["data"]["id"],
                    "billables": [
                        {
                            "description": "tenant B's own work",
                            "quantity": 1,
                            "amountMinor": 100,
                            "currencyCode": "EUR",
                            "order": 0,
                            "referenceType": items[0]["referenceType"],
                            "referenceId": items[0]["referenceId"],
                        }
                    ],
                },
            )
            assert created.status_code in (200, 201), created.text
        before_b = snapshot(b)

        # more work for A, on an issue of an Acme draft (monthly), then A syncs again
        issue, period = next(
            (b["referenceId"], b["metadata"]["period"])
            for items in first_a.billables.values()
            for b in items
            if b["referenceId"].startswith("ACME-")
        )
        admin(
            sandbox.jira.url,
            "POST",
            "/worklogs",
            json={
                "issue": issue,
                "started": f"{period}-01T10:00:00+01:00",
                "timeSpentSeconds": 3600,
            },
        )
        sandbox.jira_app.state.clock.advance(120)
        run("-c", config, "sync", "--source", "jira-demo")
        with KukkinguClient(info["baseUrl"], info["tenantId"], SecretStr(info["token"])) as a:
            second_a = snapshot(a)
        after_b = snapshot(b)

    assert after_b == before_b, "billsync for tenant A changed tenant B"
    assert check_invariants(second_a) == []
    assert set(second_a.invoices) == set(first_a.invoices)  # no invoice adopted from B
    grown = [
        n
        for n in first_a.invoices
        if second_a.invoices[n]["amountMinor"] != first_a.invoices[n]["amountMinor"]
    ]
    assert len(grown) == 1  # the new hour landed on A's own draft


def test_a_tenant_the_token_cannot_open_is_a_clear_error(
    tmp_path: Path, sandbox: RunningSandbox
) -> None:
    info = sandbox.info()["kukkingu"]
    path = config_for(tmp_path, sandbox)
    path.write_text(path.read_text().replace(info["tenantId"], info["otherTenantId"]))
    run("-c", str(path), "db", "upgrade")
    raw, b = tenant_b(sandbox)
    with raw, b:
        before_b = snapshot(b)
        result = CliRunner(env={"BILLSYNC_CONFIG": None}).invoke(
            cli, ["-c", str(path), "sync", "--source", "jira-demo"]
        )
        after_b = snapshot(b)
    assert result.exit_code == 1, result.output
    assert info["otherTenantId"] in result.output
    assert "403" in result.output or "forbidden" in result.output.lower()
    assert info["token"] not in result.output
    assert after_b == before_b
