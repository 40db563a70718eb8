"""The sync end to end: in-memory source -> state store -> Kukkingu sandbox over HTTP."""

from collections.abc import Iterator

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
from worker.sync import sync


@pytest.fixture
def factory(tmp_path) -> Iterator[sessionmaker[Session]]:
    with store(f"sqlite:///{tmp_path / 'state.db'}") as f:
        yield f


def test_first_sync_then_a_rerun_writes_nothing(kukkingu: RunningKukkingu, factory) -> None:
    settings = settings_for(kukkingu.url)
    source = demo_source()
    with client_for(kukkingu.url) as client:
        first = sync(settings, factory, client, source, now=lambda: NOW)
        assert first.applied.lines_created > 0
        shot = snapshot(client)
        assert check_invariants(shot) == []
        kukkingu.app.requests.reset()
        second = sync(settings, factory, client, source, now=lambda: NOW)
        assert writes(kukkingu.requests()) == {}
        assert second.plan.writes == 0
        assert snapshot(client) == shot
