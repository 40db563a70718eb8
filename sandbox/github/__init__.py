"""A faithful in-memory emulation of the GitHub REST API (v3), enough for the real PyGithub
and billsync's connector (see ``docs/sandbox-github.md``).

    state = GitHubState()
    app = create_app(state)            # seeded with the demo data of ``seed``
    with ServerThread(app) as server:  # sandbox.server
        Github(auth=Auth.Token(DEMO_TOKEN), base_url=server.url)

Modules: ``state`` (store, sandbox clock, rate-limit budgets), ``render`` (GitHub's JSON
shapes), ``app`` (routes, auth, budget, ETags, paging), ``admin`` (``/_sandbox`` control
endpoints), ``seed`` (demo data and credentials), ``dataset`` (generated data of any size).
"""

from sandbox.common.clock import SandboxClock
from sandbox.github.app import ENTERPRISE_PREFIX, GitHubApp, create_app
from sandbox.github.dataset import Dataset, generate
from sandbox.github.seed import (
    DEMO_LOGIN,
    DEMO_TOKEN,
    OTHER_LOGIN,
    OTHER_TOKEN,
    GitHubSeedInfo,
    seed_demo,
)
from sandbox.github.state import GitHubState

__all__ = [
    "DEMO_LOGIN",
    "DEMO_TOKEN",
    "ENTERPRISE_PREFIX",
    "OTHER_LOGIN",
    "OTHER_TOKEN",
    "Dataset",
    "GitHubApp",
    "GitHubSeedInfo",
    "GitHubState",
    "SandboxClock",
    "create_app",
    "generate",
    "seed_demo",
]
