"""Exactly once, whatever fails: randomized fault schedules against the Kukkingu sandbox.

Each schedule generates a workload and a scenario of three syncs: a first sync, then edits,
deletions and new work after a human finalized one invoice in Kukkingu, then a sync after
another invoice was voided. The scenario runs twice against a fresh sandbox and a fresh
store: once without faults (the reference) and once with, before every sync attempt,
random 500s, 429s and commit-then-drop faults on every kind of request, and a simulated
process crash at a random step (the in-flight transaction is lost, as in a real crash). A
failed attempt is simply run again, as the scheduler would. Afterwards SPEC §5 invariants
1-7 must hold and Kukkingu must hold exactly what the reference run left there.

``BILLSYNC_FAULT_SCHEDULES`` sets how many schedules run (default 40); the count is printed.
"""

from __future__ import annotations

import os
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from connectors.kukkingu import KukkinguClient
from tests.support.billing import (
    NOW,
    KukkinguSnapshot,
    check_invariants,
    client_for,
    settings_for,
    snapshot,
    store,
    writes,
)
from tests.support.kukkingu import RunningKukkingu
from tests.support.memory import InMemorySource
from worker.config import Settings
from worker.core.model import Issue, TimeEntry
from worker.errors import BillsyncError
from worker.sync import sync

SCHEDULES = int(os.environ.get("BILLSYNC_FAULT_SCHEDULES", "40"))
ROUTES = [
    ("GET", "/api/v1/invoices"),
    ("GET", "/api/v1/billables"),
    ("POST", "/api/v1/invoices"),
    ("POST", "/api/v1/billables"),
    ("PUT", "/api/v1/billables/{billableId}"),
    ("PUT", "/api/v1/invoices/{invoiceId}"),
]
KINDS = ["error500", "rate_limit", "drop_after_commit"]
MAX_ATTEMPTS = 12


class SimulatedCrash(BaseException):
    """The process dies here: nothing after this point of the sync happens."""


@dataclass
class Chaos:
    """Random faults for one sync attempt; ``checkpoint`` crashes at the chosen step."""

    rng: random.Random
    crash_at: int | None = None
    steps: int = 0
    crashes: int = 0
    faults: int = 0

    def arm(self, kukkingu: RunningKukkingu) -> None:
        self.steps = 0
        self.crash_at = self.rng.randint(1, 40) if self.rng.random() < 0.6 else None
        for _ in range(self.rng.randint(0, 3)):
            method, route = self.rng.choice(ROUTES)
            spec: dict[str, object] = {
                "kind": self.rng.choice(KINDS),
                "count": 1,
                "match": {"method": method, "route": route},
            }
            if spec["kind"] == "rate_limit":
                spec["retry_after"] = 0
            kukkingu.fault(spec)
            self.faults += 1

    def checkpoint(self, step: str) -> None:
        self.steps += 1
        if self.steps == self.crash_at:
            self.crashes += 1
            raise SimulatedCrash(step)


@dataclass
class Scenario:
    """A workload and what happens between syncs; identical for both runs of a schedule."""

    seed: int
    issues: list[Issue] = field(default_factory=list)
    entries: list[TimeEntry] = field(default_factory=list)

    def __post_init__(self) -> None:
        rng = random.Random(self.seed)
        projects = ["ACME", "GLX"]
        for n in range(rng.randint(3, 14)):
            project = rng.choice(projects)
            self.issues.append(Issue("mem", str(n), f"{project}-{n}", project, f"Task {n}"))
        for n in range(rng.randint(5, 45)):
            start = datetime(2026, 11, 1, tzinfo=UTC) + timedelta(minutes=rng.randint(0, 28_000))
            issue = rng.choice(self.issues)
            author = rng.choice(["alice", "bob"])
            seconds = rng.randint(1, 300) * 60
            self.entries.append(
                TimeEntry(f"jira:t:worklog:{n}", "mem", issue.issue_id, author, start, seconds)
            )

    def source(self) -> InMemorySource:
        source = InMemorySource("mem", batch_size=7)
        for issue in self.issues:
            source.put_issue(issue)
        source.put_entries(self.entries)
        return source

    def change(self, source: InMemorySource) -> None:
        rng = random.Random(self.seed + 1)
        keys = sorted(source.entries)
        for key in rng.sample(keys, k=min(len(keys), 4)):
            if rng.random() < 0.5:
                source.delete(key)
            else:
                source.edit(key, seconds=source.entries[key].seconds + rng.randint(-20, 90) * 60)
        issue = rng.choice(self.issues)
        start = datetime(2026, 11, 10, 9, tzinfo=UTC)
        source.put_entries(
            [
                TimeEntry(f"jira:t:worklog:new{n}", "mem", issue.issue_id, "bob", start, 3600)
                for n in range(3)
            ]
        )
        if len(self.issues) > 1:  # an issue moves to the other project
            moved = self.issues[1]
            target = "GLX" if moved.project == "ACME" else "ACME"
            source.move(moved.issue_id, f"{target}-{moved.issue_id}x", target)


def human_acts(client: KukkinguClient, action: str) -> str | None:
    """A person finalizes or voids the first DRAFT invoice (by number) in Kukkingu."""
    drafts = sorted((i.invoice_number, i.id) for i in client.list_invoices(status="DRAFT"))
    if not drafts:
        return None
    number, invoice_id = drafts[0]
    if action == "finalize":
        client.finalize_invoice(invoice_id)
    else:
        client.void_invoice(invoice_id)
    return number


def sync_until_done(
    settings: Settings,
    db_url: str,
    client: KukkinguClient,
    source: InMemorySource,
    kukkingu: RunningKukkingu,
    chaos: Chaos | None,
) -> int:
    """Run the sync as a scheduler would: again after every failure. Returns the attempts."""
    for attempt in range(1, MAX_ATTEMPTS + 1):
        checkpoint: Callable[[str], None] = lambda step: None  # noqa: E731
        if chaos is not None and attempt < MAX_ATTEMPTS - 2:
            chaos.arm(kukkingu)
            checkpoint = chaos.checkpoint
        else:
            kukkingu.app.faults.clear()
        with store(db_url) as factory:  # a new process: new engine, nothing cached
            try:
                sync(settings, factory, client, source, now=lambda: NOW, checkpoint=checkpoint)
            except (SimulatedCrash, BillsyncError):
                continue
        kukkingu.app.faults.clear()  # faults left unused must not hit the "human" below
        return attempt
    raise AssertionError(f"the sync did not succeed in {MAX_ATTEMPTS} attempts")


def run_scenario(
    scenario: Scenario, kukkingu: RunningKukkingu, db_url: str, chaos: Chaos | None
) -> tuple[KukkinguSnapshot, dict[str, KukkinguSnapshot]]:
    kukkingu.reset()
    settings = settings_for(kukkingu.url)
    source = scenario.source()
    frozen: dict[str, KukkinguSnapshot] = {}
    with client_for(kukkingu.url) as client:
        sync_until_done(settings, db_url, client, source, kukkingu, chaos)
        finalized = human_acts(client, "finalize")
        if finalized:
            frozen[finalized] = snapshot(client)
        scenario.change(source)
        sync_until_done(settings, db_url, client, source, kukkingu, chaos)
        voided = human_acts(client, "void")
        if voided:
            frozen[voided] = snapshot(client)
        sync_until_done(settings, db_url, client, source, kukkingu, chaos)
        final = snapshot(client)
        # invariant 7: with no source change, a sync writes nothing
        kukkingu.app.faults.clear()
        kukkingu.app.requests.reset()
        with store(db_url) as factory:
            again = sync(settings, factory, client, source, now=lambda: NOW)
        assert writes(kukkingu.requests()) == {}, writes(kukkingu.requests())
        assert again.planned_writes == 0
        # the syncs planned what changed; a plan of everything finds nothing they left out
        with store(db_url) as factory:
            full = sync(settings, factory, client, source, now=lambda: NOW, replan=True)
        assert full.replanned
        assert full.planned_writes == 0, full.plan
    return final, frozen


@pytest.mark.timeout(
    300 + 30 * SCHEDULES
)  # a hang guard: ~1.6 s a schedule when quiet, ~10 s loaded
def test_randomized_fault_schedules_lose_and_double_nothing(
    kukkingu: RunningKukkingu, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    totals = Chaos(random.Random(0))
    for seed in range(SCHEDULES):
        scenario = Scenario(seed)
        reference, _ = run_scenario(
            scenario, kukkingu, f"sqlite:///{tmp_path / f'ref{seed}.db'}", None
        )
        chaos = Chaos(random.Random(seed * 7919))
        result, frozen = run_scenario(
            scenario, kukkingu, f"sqlite:///{tmp_path / f'chaos{seed}.db'}", chaos
        )
        totals.crashes += chaos.crashes
        totals.faults += chaos.faults

        assert check_invariants(result) == [], f"schedule {seed}"  # invariants 1, 3, 4, 5
        # invariant 2: exactly the reference's lines, on the same invoices, in the same order
        assert result.lines() == reference.lines(), f"schedule {seed}"
        assert {n: (i["status"], i["amountMinor"]) for n, i in result.invoices.items()} == {
            n: (i["status"], i["amountMinor"]) for n, i in reference.invoices.items()
        }, f"schedule {seed}"
        # invariant 6: billables of an invoice once it was finalized or voided never change
        for number, then in frozen.items():
            closed = then.billables.get(number, [])
            assert result.billables.get(number, []) == closed, f"schedule {seed}: {number} changed"
    with capsys.disabled():
        print(
            f"\nexactly-once: {SCHEDULES} fault schedules passed "
            f"({totals.faults} injected faults, {totals.crashes} simulated crashes)"
        )
    assert totals.crashes > 0
    assert totals.faults > 0
