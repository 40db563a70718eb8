"""A Kukkingu sandbox served over real HTTP for tests, with its admin path at hand."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from sandbox.kukkingu import KukkinguApp, KukkinguState, create_app
from sandbox.server import ServerThread
from tests.support.admin import SandboxAdmin


@dataclass
class RunningKukkingu(SandboxAdmin):
    """The sandbox app, its server, and shortcuts to ``/_sandbox`` (faults, counts, reset)."""

    app: KukkinguApp
    server: ServerThread

    @property
    def url(self) -> str:
        return self.server.url

    def reset(self) -> None:
        """Back to the seeded state, counts and faults cleared (in-process: it is faster;
        the HTTP ``POST /_sandbox/reset`` does the same and has its own test)."""
        self.app.reset()


@contextmanager
def running_kukkingu(seed: int = 7) -> Iterator[RunningKukkingu]:
    app = create_app(KukkinguState(rng_seed=seed))
    with ServerThread(app) as server:
        yield RunningKukkingu(app, server)
