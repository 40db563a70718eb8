"""The Celery app and its one task: sync a source, by name.

Celery on Redis, configured for tasks that must never run twice at once and never be lost
(sources.md §E):

- JSON only; explicit, stable task names; no result backend (nothing reads results);
- ``acks_late`` + ``task_reject_on_worker_lost``: a worker killed mid-sync gives its message
  back and another worker runs it again. That is safe because the sync is idempotent
  (SPEC §5: the ledger, the intents and adoption make a re-run continue, not repeat);
- ``worker_prefetch_multiplier = 1`` so long syncs do not sit reserved behind each other;
- a visibility timeout above the longest task (``broker.visibility_timeout_seconds``, and
  ``task_time_limit`` below it), and no long ETAs: waits become retries with a countdown.

The task is a thin shim: it takes a source *name*, loads the settings once per process,
takes the source's lock (or coalesces into one follow-up), and calls :func:`worker.sync.sync`,
which records the run. Retryable failures (429s, an unreachable API, a lost lock) retry with
the wait the error carries, or exponential backoff; configuration errors do not retry.
"""

from __future__ import annotations

import logging
import os
import random
import socket
from contextlib import suppress
from typing import Any

from celery import Celery, Task
from celery.signals import worker_process_init
from redis import Redis
from redis.exceptions import RedisError

from worker.clients import kukkingu_client
from worker.config import Settings, load_config
from worker.errors import ConfigurationError, RetryableError
from worker.locks import (
    HeldLock,
    clear_follow_up,
    ledger_lock,
    request_follow_up,
    running_key,
    source_lock_key,
)
from worker.sources import open_source
from worker.store import RunTrigger, make_engine, session_factory

log = logging.getLogger("billsync.tasks")

SYNC_TASK = "billsync.sync_source"
MAX_RETRIES = 8
LEDGER_WAIT = 300.0  # seconds a sync waits for another source's ledger phase

app = Celery("billsync")
app.conf.update(
    task_serializer="json",
    accept_content=["json"],
    result_serializer="json",
    task_ignore_result=True,
    result_backend=None,
    task_acks_late=True,
    task_reject_on_worker_lost=True,
    worker_prefetch_multiplier=1,
    worker_hijack_root_logger=False,
    broker_connection_retry_on_startup=True,
    task_default_queue="billsync",
)

_settings: Settings | None = None


def configure(settings: Settings) -> Celery:
    """Point the app at the configured broker, with the timeouts the config sets."""
    global _settings
    _settings = settings
    broker = settings.file.broker
    app.conf.update(
        broker_url=settings.broker_url,
        broker_transport_options={"visibility_timeout": broker.visibility_timeout_seconds},
        task_time_limit=broker.task_time_limit_seconds,
        task_soft_time_limit=max(60, broker.task_time_limit_seconds - 60),
        timezone=settings.file.billing.timezone,
        enable_utc=True,
    )
    return app


def settings() -> Settings:
    """The settings of this process: loaded once, from ``$BILLSYNC_CONFIG`` (the command line
    sets it before Celery starts, so prefork children load the same file)."""
    global _settings
    if _settings is None:
        configure(load_config(os.environ.get("BILLSYNC_CONFIG")))
    assert _settings is not None
    return _settings


@worker_process_init.connect  # type: ignore[untyped-decorator]
def _load_settings_in_child(**_: Any) -> None:
    settings()


def redis_client() -> Redis:
    return Redis.from_url(settings().broker_url)


def backoff(retries: int) -> float:
    """Exponential backoff with jitter for retries that carry no wait of their own."""
    return float(min(600.0, 5.0 * 2**retries) * (0.5 + random.random() / 2))  # noqa: S311


@app.task(name=SYNC_TASK, bind=True, max_retries=None, acks_late=True)  # type: ignore[untyped-decorator]
def sync_source(self: Task, source: str, trigger: str = "schedule", follow_up: bool = False) -> str:
    """Sync one source now, unless another sync of it runs (then: one follow-up later)."""
    from worker.sync import sync  # deferred: keeps `billsync enqueue` light

    config = settings()
    names = {s.name for s in config.file.sources}
    if source not in names:
        log.error("no source named %r in the configuration; dropping the request", source)
        return "unknown source"
    redis = redis_client()
    lock = HeldLock(redis, source_lock_key(source), ttl=config.file.broker.lock_ttl_seconds)
    try:
        acquired = lock.acquire()
    except RedisError as exc:  # Redis restarting: try again shortly
        raise self.retry(exc=exc, countdown=backoff(self.request.retries)) from exc
    if not acquired:
        # Coalesce: the first request made during a run owns one follow-up, the others
        # are covered by it. The follow-up waits for the lock's TTL (it expires if the
        # holder died), never for long.
        if follow_up or request_follow_up(redis, source):
            wait = max(1.0, (redis.pttl(source_lock_key(source)) or 1000) / 1000 + 1)
            raise self.retry(countdown=wait, kwargs={"follow_up": True, "trigger": trigger})
        return "coalesced"
    engine = make_engine(config.state_url)
    try:
        clear_follow_up(redis, source)
        marker = f"{socket.gethostname()}:{os.getpid()}:{self.request.id}"
        redis.set(running_key(source), marker, ex=config.file.broker.task_time_limit_seconds)
        with kukkingu_client(config) as client:
            result = sync(
                config,
                session_factory(engine),
                client,
                open_source(config, config.source(source)),
                trigger=RunTrigger(trigger),
                task_id=self.request.id,
                checkpoint=lock.check,
                ledger_lock=lambda: ledger_lock(redis, config.file.kukkingu.tenant_id, LEDGER_WAIT),
            )
        return f"{result.applied.lines_created} created, {result.applied.lines_updated} updated"
    except ConfigurationError:
        log.exception("sync of %s needs an operator: not retried", source)
        raise
    except (RetryableError, RedisError) as exc:
        if self.request.retries >= MAX_RETRIES:
            raise
        retry_after = exc.retry_after if isinstance(exc, RetryableError) else None
        wait = retry_after if retry_after is not None else backoff(self.request.retries)
        log.warning("sync of %s will be retried in %.0f s: %s", source, wait, exc)
        raise self.retry(exc=exc, countdown=wait) from exc
    finally:
        with suppress(RedisError):
            redis.delete(running_key(source))
        lock.release()
        engine.dispose()


def enqueue(source: str, trigger: str = "on_demand") -> str:
    """Put a sync of ``source`` on the queue; returns the task id."""
    result = app.send_task(SYNC_TASK, args=[source, trigger])
    return str(result.id)
