"""Start the sandbox services together, as ``billsync sandbox`` and the demo do.

Each service listens on its own fixed, documented default port on 127.0.0.1 so that
``examples/sandbox.toml`` works without edits (Kukkingu 8730, Jira 8731, GitHub 8732,
Cliniko 8733);
``--info FILE``
writes what a script needs (base URLs, credentials, tenant and contract ids) as JSON.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sandbox.cliniko.app import ClinikoApp
from sandbox.cliniko.app import create_app as create_cliniko_app
from sandbox.cliniko.state import ClinikoState
from sandbox.common.webhooks import WebhookSender
from sandbox.defaults import CLINIKO_PORT, DEFAULT_HOST, GITHUB_PORT, JIRA_PORT, KUKKINGU_PORT
from sandbox.github.app import GitHubApp
from sandbox.github.app import Seeder as GitHubSeeder
from sandbox.github.app import create_app as create_github_app
from sandbox.github.seed import seed_demo as seed_github_demo
from sandbox.github.state import GitHubState
from sandbox.jira.app import JiraApp
from sandbox.jira.app import Seeder as JiraSeeder
from sandbox.jira.app import create_app as create_jira_app
from sandbox.jira.seed import seed_demo as seed_jira_demo
from sandbox.jira.state import JiraState
from sandbox.kukkingu import KukkinguApp, KukkinguState, create_app
from sandbox.server import ServerThread


class SandboxStartError(RuntimeError):
    """A sandbox service could not listen (most often: its port is taken)."""

    def __init__(self, service: str, host: str, port: int, reason: str) -> None:
        self.service, self.host, self.port, self.reason = service, host, port, reason
        super().__init__(
            f"the {service} sandbox cannot listen on {host}:{port} ({reason}); "
            f"is another sandbox running? Stop it or pass --{service}-port"
        )


@dataclass
class RunningSandbox:
    """The started services; ``info()`` is what ``--info FILE`` writes."""

    kukkingu_app: KukkinguApp
    kukkingu: ServerThread
    jira_app: JiraApp
    jira: ServerThread
    github_app: GitHubApp
    github: ServerThread
    cliniko_app: ClinikoApp
    cliniko: ServerThread
    extra: dict[str, Any] = field(default_factory=dict)

    def info(self) -> dict[str, Any]:
        demo = self.kukkingu_app.demo
        assert demo is not None, "the sandbox always starts seeded"
        return {
            "kukkingu": {
                "baseUrl": self.kukkingu.url,
                "adminUrl": f"{self.kukkingu.url}/_sandbox",
                **demo.to_json(),
            },
            "jira": {
                "baseUrl": self.jira.url,
                "adminUrl": f"{self.jira.url}/_sandbox",
                **self.jira_app.info_json(),
            },
            "github": {
                "baseUrl": self.github.url,
                "adminUrl": f"{self.github.url}/_sandbox",
                **self.github_app.info_json(),
            },
            "cliniko": {
                "baseUrl": f"{self.cliniko.url}/v1",
                "adminUrl": f"{self.cliniko.url}/_sandbox",
                **self.cliniko_app.info_json(),
            },
            **self.extra,
        }


def _serve(
    stack: ExitStack, app: Any, name: str, host: str, port: int, *, date_header: bool = True
) -> ServerThread:
    try:
        server = ServerThread(app, host=host, port=port, date_header=date_header)
    except OSError as exc:
        raise SandboxStartError(name, host, port, exc.strerror or str(exc)) from None
    return stack.enter_context(server)


@contextmanager
def start_sandbox(
    host: str = DEFAULT_HOST,
    *,
    kukkingu_port: int = KUKKINGU_PORT,
    jira_port: int = JIRA_PORT,
    github_port: int = GITHUB_PORT,
    cliniko_port: int = CLINIKO_PORT,
    seed: int = 0,
    jira_data: JiraSeeder = seed_jira_demo,
    github_data: GitHubSeeder = seed_github_demo,
    webhook_url: str | None = None,
    webhook_secret: str | None = None,
) -> Iterator[RunningSandbox]:
    """Serve every sandbox API until the block ends. Port 0 picks a free port.
    ``jira_data`` / ``github_data``: what the Jira and GitHub sandboxes hold (the demo data,
    or a generated dataset from ``sandbox.jira.dataset`` / ``sandbox.github.dataset``).
    ``webhook_url``: the Jira and GitHub sandboxes send signed webhooks of their admin edits
    to ``{webhook_url}/hooks/jira`` and ``/hooks/github``, signed with ``webhook_secret``."""
    if webhook_url is not None and not webhook_secret:
        raise ValueError("a webhook URL needs a webhook secret to sign with")
    with ExitStack() as stack:
        kukkingu_app = create_app(KukkinguState(rng_seed=seed))
        kukkingu = _serve(stack, kukkingu_app, "kukkingu", host, kukkingu_port)
        jira_app = create_jira_app(JiraState(), seed=jira_data)
        jira = _serve(stack, jira_app, "jira", host, jira_port)
        github_app = create_github_app(GitHubState(), seed=github_data)
        github = _serve(stack, github_app, "github", host, github_port, date_header=False)
        cliniko_app = create_cliniko_app(ClinikoState())
        cliniko = _serve(stack, cliniko_app, "cliniko", host, cliniko_port, date_header=False)
        if webhook_url is not None and webhook_secret:
            base = webhook_url.rstrip("/")
            jira_hooks = WebhookSender("jira", f"{base}/hooks/jira", webhook_secret)
            github_hooks = WebhookSender("github", f"{base}/hooks/github", webhook_secret)
            for sender in (jira_hooks, github_hooks):
                stack.callback(sender.close)
            jira_app.webhooks, github_app.webhooks = jira_hooks, github_hooks
        yield RunningSandbox(
            kukkingu_app, kukkingu, jira_app, jira, github_app, github, cliniko_app, cliniko
        )


def write_info(path: Path, info: dict[str, Any]) -> None:
    """Write the info JSON atomically, so a script polling for the file never reads half."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        json.dump(info, handle, indent=2)
        handle.write("\n")
    Path(tmp).replace(path)
