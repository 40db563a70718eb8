"""Sources don't wait for each other (issue 12 item 4): a sync holds the tenant's ledger
lock only while it allocates (plans onto draft seats, creates drafts, sets their amounts),
not while it writes its lines. Real Redis locks, real SQLite, the Kukkingu sandbox over HTTP.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from redis import Redis
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from sandbox.kukkingu.seed import ACME_CONTRACT_ID, DEMO_TENANT_ID, DEMO_TOKEN
from tests.support.billing import NOW, check_invariants, client_for, snapshot, store
from tests.support.kukkingu import RunningKukkingu
from tests.support.memory import InMemorySource
from worker.config import Settings, parse_config
from worker.core.model import Issue, TimeEntry
from worker.ledger import content_of
from worker.locks import HeldLock, SyncLocks, source_lock_key
from worker.ports import SourceKind
from worker.store import Line, Source
from worker.sync import SyncResult, sync

DEADLINE = 120.0  # seconds; generous on a loaded machine, far below the ledger wait (300 s)


def jira_source(name: str) -> dict[str, str]:
    return {
        "name": name,
        "kind": "jira",
        "url": "http://127.0.0.1:1",
        "email_env": "KK",
        "token_env": "KK",
    }


def two_sources(grouping: str = "entry", second: str = "gh") -> Settings:
    """A Jira source and a second one (GitHub ``gh``, or another Jira site) billing the same
    contract: their lines share drafts."""
    common = {
        "contract_id": ACME_CONTRACT_ID,
        "currency": "EUR",
        "hourly_rate_minor": 12000,
        "grouping": grouping,
    }
    other: dict[str, object] = {"source": second, "projects": ["ACME"], **common}
    other_source: dict[str, str] = jira_source(second)
    if second == "gh":
        other = {"source": "gh", "repos": ["acme/web"], **common}
        other_source = {"name": "gh", "kind": "github", "token_env": "KK"}
    data = {
        "kukkingu": {"base_url": "http://unused", "tenant_id": DEMO_TENANT_ID, "token_env": "KK"},
        "sources": [jira_source("jira"), other_source],
        "rules": [{"source": "jira", "projects": ["ACME"], **common}, other],
    }
    return parse_config(data, environ={"KK": DEMO_TOKEN})


def source_with(
    name: str, kind: SourceKind, project: str, entries: int, key: str = ""
) -> InMemorySource:
    source = InMemorySource(name, kind)
    source.put_issue(Issue(name, "1", key or f"{project}#1", project, "Work"))
    start = datetime(2026, 11, 2, 8, tzinfo=UTC)
    source.put_entries(
        TimeEntry(f"{name}:entry:{n}", name, "1", "bob", start + timedelta(hours=n), 1800)
        for n in range(entries)
    )
    return source


@pytest.fixture
def factory(tmp_path: Path) -> Iterator[sessionmaker[Session]]:
    with store(f"sqlite:///{tmp_path / 'state.db'}") as f:
        yield f


class Crash(BaseException):
    """The process dies here (the fault tests' crash: nothing after it is recorded)."""


def run_sync(
    settings: Settings,
    factory: sessionmaker[Session],
    kukkingu: RunningKukkingu,
    redis: Redis,
    source: InMemorySource,
    checkpoint: Callable[[str], None] = lambda step: None,
    *,
    replan: bool = False,
) -> SyncResult:
    """A sync as a worker runs it: under its source's lock, the ledger lock when it
    allocates, fenced by both."""
    lock = HeldLock(redis, source_lock_key(source.name))
    assert lock.acquire()
    locks = SyncLocks(redis, lock, DEMO_TENANT_ID, ttl=60)
    try:
        with client_for(kukkingu.url) as client:
            return sync(
                settings,
                factory,
                client,
                source,
                now=lambda: NOW,
                checkpoint=checkpoint,
                fence=locks.fence,
                ledger_lock=locks.ledger,
                replan=replan,
            )
    finally:
        lock.release()


def assert_billed_once(factory: sessionmaker[Session], kukkingu: RunningKukkingu) -> None:
    """Kukkingu holds each recorded line once, on the one draft both sources share."""
    with client_for(kukkingu.url) as client:
        shot = snapshot(client)
    assert check_invariants(shot) == []
    with factory() as session:
        lines = session.execute(select(Line, Source.name).join(Source)).all()
        assert {name for _, name in lines} == {"jira", "gh"}
        assert len({line.draft_id for line, _ in lines}) == 1
        held = {(line.kukkingu_id, content_of(line).reference_id) for line, _ in lines}
    assert None not in {billable for billable, _ in held}
    assert len(shot.lines()) == len(held) == 35


def test_a_github_sync_completes_while_a_jira_sync_of_the_tenant_writes(
    kukkingu: RunningKukkingu, redis: Redis, factory: sessionmaker[Session]
) -> None:
    settings = two_sources()
    jira = source_with("jira", SourceKind.JIRA, "ACME", entries=30)
    github = source_with("gh", SourceKind.GITHUB, "acme/web", entries=5)
    writing, go_on = threading.Event(), threading.Event()
    results: dict[str, SyncResult] = {}
    failures: list[BaseException] = []

    def jira_checkpoint(step: str) -> None:
        if step == "intent.create_billables" and not go_on.is_set():
            writing.set()  # Jira's lines are recorded, their create is intended, not sent
            go_on.wait(DEADLINE)

    def run(source: InMemorySource, checkpoint: Callable[[str], None]) -> None:
        try:
            results[source.name] = run_sync(settings, factory, kukkingu, redis, source, checkpoint)
        except BaseException as exc:
            failures.append(exc)

    jira_thread = threading.Thread(target=run, args=(jira, jira_checkpoint))
    github_thread = threading.Thread(target=run, args=(github, lambda step: None))
    jira_thread.start()
    try:
        assert writing.wait(DEADLINE), f"the Jira sync never reached its writes: {failures}"
        github_thread.start()
        github_thread.join(DEADLINE)
        github_done = not github_thread.is_alive()
        jira_waiting = not go_on.is_set() and jira_thread.is_alive()
    finally:
        go_on.set()
        jira_thread.join(DEADLINE)
        github_thread.join(DEADLINE)
    assert github_done, "the GitHub sync waited for the Jira sync's writes"
    assert jira_waiting
    assert failures == []
    # each run counts its own source's lines
    assert results["gh"].applied.lines_created == 5
    assert results["jira"].applied.lines_created == 30
    assert_billed_once(factory, kukkingu)


def test_a_source_crashed_mid_write_is_reconciled_by_its_own_next_sync(
    kukkingu: RunningKukkingu, redis: Redis, factory: sessionmaker[Session]
) -> None:
    """Jira's create landed and its answer was lost with the process. The GitHub sync that
    runs next leaves Jira's pending intent alone (its writer may still be alive); Jira's
    next sync adopts the lines its create stored, and writes none twice."""
    settings = two_sources()
    jira = source_with("jira", SourceKind.JIRA, "ACME", entries=30)
    github = source_with("gh", SourceKind.GITHUB, "acme/web", entries=5)

    def crash(step: str) -> None:
        if step == "lines.created":
            raise Crash(step)

    with pytest.raises(Crash):
        run_sync(settings, factory, kukkingu, redis, jira, crash)
    gh = run_sync(settings, factory, kukkingu, redis, github)
    again = run_sync(settings, factory, kukkingu, redis, jira)
    assert (gh.applied.lines_created, gh.applied.lines_adopted) == (5, 0)
    assert (again.applied.lines_created, again.applied.lines_adopted) == (0, 30)
    assert_billed_once(factory, kukkingu)


def test_two_jira_sites_with_one_issue_key_get_two_references_on_a_shared_draft(
    kukkingu: RunningKukkingu, redis: Redis, factory: sessionmaker[Session]
) -> None:
    """Both sites have an ACME-1; one invoice must not hold the reference twice. The second
    sync learns that ACME-1 is taken from the store (the planner is not shown every
    reference of every open draft) and plans again with ``ACME-1~<source>``."""
    settings = two_sources(grouping="issue", second="jira2")
    first = source_with("jira", SourceKind.JIRA, "ACME", entries=3, key="ACME-1")
    second = source_with("jira2", SourceKind.JIRA, "ACME", entries=2, key="ACME-1")
    run_sync(settings, factory, kukkingu, redis, first)
    run_sync(settings, factory, kukkingu, redis, second)
    with client_for(kukkingu.url) as client:
        shot = snapshot(client)
    assert check_invariants(shot) == []
    (number,) = shot.billables
    assert sorted(b["referenceId"] for b in shot.billables[number]) == ["ACME-1", "ACME-1~jira2"]
    again = run_sync(settings, factory, kukkingu, redis, second, replan=True)
    assert again.replanned
    assert again.planned_writes == 0
