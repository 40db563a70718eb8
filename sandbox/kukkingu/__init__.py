"""A strict in-memory emulation of the Kukkingu Contracting API (see ``docs/sandbox.md``).

    state = KukkinguState()
    app = create_app(state)            # seeded with the demo data of ``seed``
    with ServerThread(app) as server:  # sandbox.server
        ...                            # talk to server.url with the demo token

Modules: ``state`` (store and business rules), ``schemas`` (request bodies), ``records``
(stored resources and their JSON), ``app`` (routes), ``admin`` (``/_sandbox`` control
endpoints), ``faults`` (fault injection and request counts), ``seed`` (demo data),
``errors`` (the error answers).
"""

from sandbox.kukkingu.app import KukkinguApp, create_app
from sandbox.kukkingu.seed import DemoSeed, seed_demo
from sandbox.kukkingu.state import KukkinguState

__all__ = ["DemoSeed", "KukkinguApp", "KukkinguState", "create_app", "seed_demo"]
