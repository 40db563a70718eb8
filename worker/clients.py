"""Wiring: API clients built from validated settings (the only place that does it)."""

from __future__ import annotations

from connectors.kukkingu import KukkinguClient
from connectors.retry import RetryPolicy
from worker.config import Settings


def kukkingu_client(settings: Settings) -> KukkinguClient:
    """The Kukkingu client for the configured tenant, with the configured retry policy."""
    config = settings.file.kukkingu
    return KukkinguClient(
        config.base_url,
        config.tenant_id,
        settings.secret(config.token_env),
        timeout=config.timeout_seconds,
        policy=RetryPolicy(
            max_attempts=config.max_attempts, max_wait=config.max_retry_wait_seconds
        ),
    )
