"""Shared set-up for billing tests: settings for the sandbox, a store, sources, invariants."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from pydantic import SecretStr
from sqlalchemy.orm import Session, sessionmaker

from connectors.kukkingu import KukkinguClient
from connectors.retry import RetryPolicy
from sandbox.kukkingu.seed import ACME_CONTRACT_ID, DEMO_TENANT_ID, DEMO_TOKEN, GLOBEX_CONTRACT_ID
from tests.support.memory import InMemorySource
from worker.config import Settings, parse_config
from worker.core.model import Issue, TimeEntry
from worker.store import make_engine, session_factory, upgrade

NOW = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)
WRITE_METHODS = ("POST ", "PUT ", "PATCH ", "DELETE ")


def settings_for(
    base_url: str, *, kukkingu: dict[str, Any] | None = None, **rule_overrides: Any
) -> Settings:
    """A config with one in-memory "jira" source and two rules (Acme EUR, Globex USD);
    ``kukkingu``: more keys of the [kukkingu] section."""
    acme = {
        "source": "mem",
        "projects": ["ACME"],
        "contract_id": ACME_CONTRACT_ID,
        "currency": "EUR",
        "hourly_rate_minor": 12000,
        "person_rates": {"alice": 15000},
        "rounding": {"increment_minutes": 15, "mode": "up", "scope": "entry"},
        **rule_overrides,
    }
    globex = {
        "source": "mem",
        "projects": ["GLX"],
        "contract_id": GLOBEX_CONTRACT_ID,
        "currency": "USD",
        "hourly_rate_minor": 10000,
        "grouping": "entry",
        "period": "weekly",
    }
    data = {
        "billing": {"timezone": "Europe/Berlin"},
        "kukkingu": {
            "base_url": base_url,
            "tenant_id": DEMO_TENANT_ID,
            "token_env": "KK",
            **(kukkingu or {}),
        },
        "sources": [
            {
                "name": "mem",
                "kind": "jira",
                "url": "http://127.0.0.1:1",
                "email_env": "KK",
                "token_env": "KK",
            }
        ],
        "rules": [acme, globex],
    }
    return parse_config(data, environ={"KK": DEMO_TOKEN})


@contextmanager
def store(url: str) -> Iterator[sessionmaker[Session]]:
    upgrade(url)
    engine = make_engine(url)
    try:
        yield session_factory(engine)
    finally:
        engine.dispose()


def client_for(base_url: str, **kwargs: Any) -> KukkinguClient:
    policy = kwargs.pop("policy", RetryPolicy(max_attempts=4, base_delay=0.001, max_wait=2.0))
    return KukkinguClient(
        base_url, DEMO_TENANT_ID, SecretStr(DEMO_TOKEN), policy=policy, timeout=10, **kwargs
    )


def entry(
    n: int, issue: str, minutes: int, day: int = 3, author: str = "bob", hour: int = 9
) -> TimeEntry:
    return TimeEntry(
        key=f"jira:test:worklog:{n}",
        source="mem",
        issue_id=issue,
        author=author,
        started=datetime(2026, 11, day, hour, tzinfo=UTC),
        seconds=minutes * 60,
    )


def demo_source(
    issues: int = 5, per_issue: int = 3, projects: tuple[str, ...] = ("ACME", "GLX")
) -> InMemorySource:
    source = InMemorySource("mem")
    n = 0
    for i in range(issues):
        project = projects[i % len(projects)]
        source.put_issue(
            Issue("mem", str(1000 + i), f"{project}-{i + 1}", project, f"Task {i + 1}")
        )
        for j in range(per_issue):
            n += 1
            start = datetime(2026, 11, 2, 8, tzinfo=UTC) + timedelta(days=j, hours=i % 5)
            source.put_entries(
                [
                    TimeEntry(
                        f"jira:test:worklog:{n}",
                        "mem",
                        str(1000 + i),
                        "alice" if j % 2 else "bob",
                        start,
                        (10 + 17 * j + 7 * i) * 60,
                    )
                ]
            )
    return source


@dataclass
class KukkinguSnapshot:
    """Everything in the sandbox tenant, keyed by invoice number (ids differ between runs)."""

    invoices: dict[str, dict[str, Any]]
    billables: dict[str, list[dict[str, Any]]]

    def lines(self) -> set[tuple[str, str, str, str, int, int]]:
        return {
            (
                number,
                b["referenceType"],
                b["referenceId"],
                str(b["quantity"]),
                b["amountMinor"],
                b["order"],
            )
            for number, items in self.billables.items()
            for b in items
        }


def snapshot(client: KukkinguClient) -> KukkinguSnapshot:
    invoices = {}
    billables: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for invoice in client.list_invoices():
        invoices[invoice.invoice_number] = invoice.model_dump(mode="json", by_alias=True)
        for billable in client.list_billables(invoice.id):
            billables[invoice.invoice_number].append(
                billable.model_dump(mode="json", by_alias=True)
            )
    return KukkinguSnapshot(invoices, dict(billables))


def check_invariants(shot: KukkinguSnapshot) -> list[str]:
    """SPEC §5 invariants 1, 3, 4, 5 on what Kukkingu holds; returns the violations."""
    problems = []
    for number, invoice in shot.invoices.items():
        items = shot.billables.get(number, [])
        refs = [(b["referenceType"], b["referenceId"]) for b in items]
        if len(refs) != len(set(refs)):
            problems.append(f"{number}: duplicate references {sorted(refs)}")
        if len(items) > 100:
            problems.append(f"{number}: {len(items)} billables")
        total = sum(b["amountMinor"] for b in items)
        if invoice["status"] == "DRAFT" and invoice["amountMinor"] != total:
            problems.append(f"{number}: amountMinor {invoice['amountMinor']} != sum {total}")
        for b in items:
            rates = (b.get("metadata") or {}).get("rates", [])
            expected = sum(
                int((Decimal(g["quantity"]) * g["rate"]).quantize(Decimal(1), ROUND_HALF_UP))
                for g in rates
            )
            quantity = sum((Decimal(g["quantity"]) for g in rates), Decimal(0))
            if b["amountMinor"] != expected or Decimal(str(b["quantity"])) != quantity:
                problems.append(f"{number}/{b['referenceId']}: amount or quantity off its rates")
    return problems


def writes(counts: dict[str, int]) -> dict[str, int]:
    return {route: n for route, n in counts.items() if route.startswith(WRITE_METHODS) and n}
