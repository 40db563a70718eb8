"""Signed webhook deliveries from a sandbox (``billsync sandbox --webhook-url URL``).

The Jira and GitHub sandboxes call :meth:`WebhookSender.send` after an admin edit; a
background thread posts each delivery in order, as the real services do:

- GitHub: ``X-GitHub-Event``, ``X-GitHub-Delivery`` (a GUID), ``X-GitHub-Hook-ID``,
  ``X-Hub-Signature-256: sha256=<hex>`` (HMAC-SHA256 of the body with the secret),
  ``User-Agent: GitHub-Hookshot/…``, a JSON body;
- Jira Cloud admin webhooks: ``X-Atlassian-Webhook-Identifier`` (a delivery id, the same on
  a retry), ``X-Hub-Signature: sha256=<hex>``, ``X-Atlassian-Webhook-Flow: Primary``, a
  JSON body with ``webhookEvent`` and ``timestamp``.

A delivery the receiver does not take (no answer, or 5xx) is tried again up to 3 times a
few seconds apart with the same delivery id, then dropped (GitHub does not retry on its
own; Jira retries: the sandbox retries for both, so a test can see a redelivery). Every
attempt is kept in :attr:`WebhookSender.log` for tests.
"""

from __future__ import annotations

import hashlib
import hmac
import itertools
import json
import logging
import queue
import threading
import time
import uuid
from dataclasses import dataclass
from typing import Any, Literal

import httpx

log = logging.getLogger("sandbox.webhooks")

Service = Literal["github", "jira"]
ATTEMPTS = 3
RETRY_WAIT = 2.0  # seconds between tries
HOOK_ID = 1  # X-GitHub-Hook-ID of the sandbox's one webhook


@dataclass(frozen=True)
class Attempt:
    event: str
    delivery: str
    status: int | None  # None: no answer
    number: int


class WebhookSender:
    """Posts signed deliveries of one service to ``url`` from a daemon thread."""

    def __init__(
        self, service: Service, url: str, secret: str, *, retry_wait: float = RETRY_WAIT
    ) -> None:
        self.service = service
        self.url = url
        self._secret = secret.encode()
        self._retry_wait = retry_wait
        self._queue: queue.Queue[tuple[str, bytes, str] | None] = queue.Queue()
        self._ids = itertools.count(1)
        self.log: list[Attempt] = []
        self._idle = threading.Event()
        self._idle.set()
        self._thread = threading.Thread(target=self._run, name=f"{service} webhooks", daemon=True)
        self._thread.start()

    def __repr__(self) -> str:  # never the secret
        return f"WebhookSender({self.service!r}, {self.url!r})"

    def send(self, event: str, payload: dict[str, Any]) -> None:
        """Queue one delivery of ``event`` (GitHub's event name, or Jira's webhookEvent)."""
        body = json.dumps(payload, separators=(",", ":")).encode()
        delivery = str(uuid.uuid4()) if self.service == "github" else str(next(self._ids))
        self._idle.clear()
        self._queue.put((event, body, delivery))

    def wait_idle(self, timeout: float) -> bool:
        """Wait until every queued delivery was posted (or given up); True if so."""
        return self._idle.wait(timeout)

    def close(self) -> None:
        self._queue.put(None)
        self._thread.join(timeout=10)

    def _headers(self, event: str, body: bytes, delivery: str) -> dict[str, str]:
        signature = "sha256=" + hmac.new(self._secret, body, hashlib.sha256).hexdigest()
        if self.service == "github":
            return {
                "Content-Type": "application/json",
                "User-Agent": "GitHub-Hookshot/sandbox",
                "X-GitHub-Event": event,
                "X-GitHub-Delivery": delivery,
                "X-GitHub-Hook-ID": str(HOOK_ID),
                "X-Hub-Signature-256": signature,
            }
        return {
            "Content-Type": "application/json; charset=UTF-8",
            "User-Agent": "Atlassian Webhook HTTP Client",
            "X-Atlassian-Webhook-Identifier": delivery,
            "X-Atlassian-Webhook-Flow": "Primary",
            "X-Hub-Signature": signature,
        }

    def _run(self) -> None:
        with httpx.Client(timeout=10) as client:
            while True:
                item = self._queue.get()
                if item is None:
                    return
                event, body, delivery = item
                headers = self._headers(event, body, delivery)
                for number in range(1, ATTEMPTS + 1):
                    try:
                        status: int | None = client.post(
                            self.url, content=body, headers=headers
                        ).status_code
                    except httpx.HTTPError:
                        status = None
                    self.log.append(Attempt(event, delivery, status, number))
                    if status is not None and status < 500:
                        break
                    log.warning(
                        "%s webhook %s to %s: %s (try %d of %d)",
                        self.service,
                        event,
                        self.url,
                        status or "no answer",
                        number,
                        ATTEMPTS,
                    )
                    if number < ATTEMPTS:
                        time.sleep(self._retry_wait)
                if self._queue.empty():
                    self._idle.set()
