"""A faithful in-memory emulation of the Jira Cloud REST API (v2 and v3), enough for the
real ``jira`` library and billsync's connector (see ``docs/sandbox-jira.md``).

    state = JiraState()
    app = create_app(state)            # seeded with the demo data of ``seed``
    with ServerThread(app) as server:  # sandbox.server
        JIRA(server=server.url, basic_auth=(DEMO_EMAIL, DEMO_API_TOKEN))

Modules: ``state`` (store and sandbox clock), ``jql`` (the JQL subset), ``render`` (Jira's
JSON shapes), ``app`` (routes, auth, paging), ``admin`` (``/_sandbox`` control endpoints),
``seed`` (demo data and credentials), ``dataset`` (generated data of any size), ``tls``
(a throwaway CA for HTTPS).
"""

from sandbox.common.clock import SandboxClock
from sandbox.jira.app import JiraApp, create_app
from sandbox.jira.dataset import Dataset, generate
from sandbox.jira.seed import (
    DEMO_ACCOUNT_ID,
    DEMO_API_TOKEN,
    DEMO_EMAIL,
    DEMO_PAT,
    JiraSeedInfo,
    seed_demo,
)
from sandbox.jira.state import JiraState

__all__ = [
    "DEMO_ACCOUNT_ID",
    "DEMO_API_TOKEN",
    "DEMO_EMAIL",
    "DEMO_PAT",
    "Dataset",
    "JiraApp",
    "JiraSeedInfo",
    "JiraState",
    "SandboxClock",
    "create_app",
    "generate",
    "seed_demo",
]
