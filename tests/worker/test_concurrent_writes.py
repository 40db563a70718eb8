"""Kukkingu writes run side by side, bounded, and stop at the first failure (real SQLite,
the Kukkingu sandbox over HTTP)."""

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy.orm import Session, sessionmaker

from tests.support.billing import (
    NOW,
    check_invariants,
    client_for,
    demo_source,
    settings_for,
    snapshot,
    store,
    writes,
)
from tests.support.kukkingu import RunningKukkingu
from worker.applier import Applier
from worker.sync import sync


@pytest.fixture
def factory(tmp_path: Path) -> Iterator[sessionmaker[Session]]:
    with store(f"sqlite:///{tmp_path / 'state.db'}") as f:
        yield f


def test_writes_overlap_up_to_the_bound(kukkingu: RunningKukkingu, factory) -> None:
    """Three items that each wait for the other two finish only if three run at once; a
    fourth never runs beside them (the bound)."""
    with client_for(kukkingu.url) as client:
        applier = Applier(factory, client, concurrency=3)
        together = threading.Barrier(3, timeout=120)
        running, most = 0, 0
        lock = threading.Lock()

        def work(item: int) -> None:
            nonlocal running, most
            with lock:
                running += 1
                most = max(most, running)
            if item < 3:
                together.wait()  # BrokenBarrierError (a failure) unless all three run at once
            with lock:
                running -= 1

        applier._each(range(6), work)
    assert most == 3


def test_the_first_failure_stops_the_writes_not_started(kukkingu: RunningKukkingu, factory):
    class Crash(BaseException):
        pass

    with client_for(kukkingu.url) as client:
        applier = Applier(factory, client, concurrency=2)
        done: list[int] = []

        def work(item: int) -> None:
            if item == 0:
                raise Crash("the process dies")
            done.append(item)

        with pytest.raises(Crash):
            applier._each(range(50), work)
    assert len(done) < 49  # the rest was not started


def test_concurrent_writes_bill_what_one_at_a_time_bills(
    kukkingu: RunningKukkingu, tmp_path: Path
) -> None:
    """The same work with writes one after another and four at once: the same billables on
    the same invoices, and each write once."""
    shots, results = [], []
    for concurrency in (1, 4):
        kukkingu.reset()
        settings = settings_for(kukkingu.url, kukkingu={"concurrency": concurrency})
        source = demo_source(issues=40, per_issue=2)
        url = f"sqlite:///{tmp_path / f'state{concurrency}.db'}"
        with store(url) as factory, client_for(kukkingu.url) as client:
            first = sync(settings, factory, client, source, now=lambda: NOW)
            for n in range(1, 81, 3):
                source.edit(f"jira:test:worklog:{n}", seconds=5400)
            edited = sync(settings, factory, client, source, now=lambda: NOW)
            shots.append(snapshot(client))
        results.append((first, edited))
        assert check_invariants(shots[-1]) == []
        assert first.applied.lines_created == 40 + 20  # Acme per issue, Globex per entry
        assert writes(edited.requests)["PUT /api/v1/billables/{billableId}"] == (
            edited.applied.lines_updated
        )
        assert edited.applied.lines_updated > 10
    (one, _), (four, _) = results
    assert shots[0].lines() == shots[1].lines()
    assert writes(one.requests) == writes(four.requests)  # the lower bound, both
