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

Coalescing never parks a message in a worker: Celery drops the countdown messages a worker
holds when its broker connection breaks, and Redis gives them back only after the visibility
timeout (hours). So a request made while a sync runs only marks the source *pending* in
Redis and ends; the running sync, when it ends, sends one fresh follow-up if the mark is
there. A message delivered again because its worker was killed mid-sync finds its own
``running`` marker and waits out the dead holder's lock instead of coalescing.

A sync also marks its source *owed* while it runs (and, when it retries, until its retry
is due). Should its message never come back (Celery could not requeue it over a broken
connection; a countdown retry dropped with one), each worker's main process looks every
few seconds for an owed source whose lock is free, and one of them sends the sync again.
"""

from __future__ import annotations

import logging
import os
import random
import socket
import threading
import time
from contextlib import suppress
from typing import Any

from celery import Celery, Task
from celery.exceptions import Retry as CeleryRetry
from celery.signals import worker_process_init, worker_ready
from redis import Redis
from redis.backoff import ExponentialBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError
from redis.exceptions import TimeoutError as RedisTimeoutError
from redis.retry import Retry

from worker.clients import kukkingu_client
from worker.config import Settings, load_config
from worker.errors import ConfigurationError, RetryableError
from worker.locks import (
    HeldLock,
    clear_follow_up,
    clear_owed,
    ledger_lock,
    mark_owed,
    owed_syncs,
    pending_follow_up,
    request_follow_up,
    running_key,
    source_lock_key,
    swept_key,
)
from worker.sources import open_source
from worker.store import RunTrigger, make_engine, session_factory

log = logging.getLogger("billsync.tasks")

SYNC_TASK = "billsync.sync_source"
MAX_RETRIES = 8
LEDGER_WAIT = 300.0  # seconds a sync waits for another source's ledger phase
SWEEP_SECONDS = 10.0  # how often a worker looks for owed syncs nobody runs
RETRY_GRACE = 30.0  # seconds after a retry's due time before it counts as lost
FOLLOW_UP_CLAIM = 30  # seconds the sweep leaves a follow-up to the sync that sends it

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
    # ride out a Redis restart when sending a follow-up or a retry (~15 s of attempts)
    task_publish_retry_policy={
        "max_retries": 10,
        "interval_start": 0,
        "interval_step": 0.5,
        "interval_max": 2,
    },
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


@worker_ready.connect  # type: ignore[untyped-decorator]
def _start_sweeper(**_: Any) -> None:
    """In the worker's main process: resend the syncs that died without a message to
    bring them back (see :func:`worker.locks.owed_syncs`)."""
    threading.Thread(target=_sweep, name="billsync owed-sync sweeper", daemon=True).start()


def _sweep() -> None:
    config = settings()
    names = [source.name for source in config.file.sources]
    interval = min(SWEEP_SECONDS, max(1.0, config.file.broker.lock_ttl_seconds / 2))
    redis = redis_client()
    while True:
        time.sleep(interval)
        try:
            for source, trigger in owed_syncs(redis, names, time.time()):
                log.warning(
                    "a sync of %s ended without finishing and nothing brings it back "
                    "(its process was killed, or its retry was lost with Redis): sending it again",
                    source,
                )
                app.send_task(SYNC_TASK, args=[source, trigger], kwargs={"follow_up": True})
        except Exception:  # Redis restarting: the next round tries again
            log.warning("could not look for owed syncs", exc_info=True)


def redis_client() -> Redis:
    """Redis for locks and markers. Each command is retried with backoff for about ten
    seconds, so a Redis restart (its append-only file keeps the keys) is ridden out."""
    return Redis.from_url(
        settings().broker_url,
        retry=Retry(ExponentialBackoff(cap=1.0, base=0.1), 15),
        retry_on_error=[RedisConnectionError, RedisTimeoutError],
    )


def _holder_task(redis: Redis, source: str) -> str | None:
    """The task id in ``source``'s running marker (``host:pid:task``), if any."""
    marker = redis.get(running_key(source))
    if marker is None:
        return None
    text = marker.decode() if isinstance(marker, bytes) else str(marker)
    return text.rsplit(":", 1)[-1]


def backoff(retries: int) -> float:
    """Exponential backoff with jitter for retries that carry no wait of their own."""
    return float(min(600.0, 5.0 * 2**retries) * (0.5 + random.random() / 2))  # noqa: S311


@app.task(name=SYNC_TASK, bind=True, max_retries=None, acks_late=True)  # type: ignore[untyped-decorator]
def sync_source(self: Task, source: str, trigger: str = "schedule", follow_up: bool = False) -> str:
    """Sync one source now, unless another sync of it runs (then: one follow-up later)."""
    config = settings()
    names = {s.name for s in config.file.sources}
    if source not in names:
        log.error("no source named %r in the configuration; dropping the request", source)
        return "unknown source"
    redis = redis_client()
    ttl = config.file.broker.lock_ttl_seconds
    lock = HeldLock(redis, source_lock_key(source), ttl=ttl)
    try:
        acquired = lock.acquire()
        if not acquired and _holder_task(redis, source) == self.request.id:
            # delivered again after the worker running this very task died: its lock
            # expires within the TTL, and this delivery is the one that finishes the work
            log.info("sync of %s resumes after its worker died; waiting for its lock", source)
            acquired = lock.acquire(blocking=True, wait=ttl + 2)
        if not acquired:
            # Coalesce: mark the source pending; the running sync sends one follow-up.
            request_follow_up(redis, source, trigger)
            return "coalesced"
    except RedisError as exc:  # Redis down for longer than the client rides out
        raise self.retry(exc=exc, countdown=backoff(self.request.retries)) from exc
    retrying = False
    try:
        return _run(self, config, redis, lock, source, trigger)
    except CeleryRetry:  # the retry's message covers any pending request
        retrying = True
        raise
    finally:
        follow_up_trigger = None if retrying else _settle(redis, source)
        lock.release()
        if follow_up_trigger is not None:
            _send_follow_up(redis, source, follow_up_trigger)


def _run(
    task: Task, config: Settings, redis: Redis, lock: HeldLock, source: str, trigger: str
) -> str:
    """The sync itself, with the lock held."""
    from worker.sync import sync  # deferred: keeps `billsync enqueue` light

    engine = make_engine(config.state_url)
    try:
        clear_follow_up(redis, source)  # this run covers every request made so far
        mark_owed(redis, source, trigger)  # until it ends; a worker resumes it if it dies
        marker = f"{socket.gethostname()}:{os.getpid()}:{task.request.id}"
        redis.set(running_key(source), marker, ex=config.file.broker.task_time_limit_seconds)
        with kukkingu_client(config) as client:
            result = sync(
                config,
                session_factory(engine),
                client,
                open_source(config, config.source(source)),
                trigger=RunTrigger(trigger),
                task_id=task.request.id,
                checkpoint=lock.check,
                ledger_lock=lambda: ledger_lock(
                    redis,
                    config.file.kukkingu.tenant_id,
                    LEDGER_WAIT,
                    ttl=config.file.broker.lock_ttl_seconds,
                ),
            )
        return f"{result.applied.lines_created} created, {result.applied.lines_updated} updated"
    except ConfigurationError:
        log.exception("sync of %s needs an operator: not retried", source)
        raise
    except (RetryableError, RedisError) as exc:
        if task.request.retries >= MAX_RETRIES:
            raise
        retry_after = exc.retry_after if isinstance(exc, RetryableError) else None
        wait = retry_after if retry_after is not None else backoff(task.request.retries)
        log.warning("sync of %s will be retried in %.0f s: %s", source, wait, exc)
        with suppress(RedisError):  # should the retry's message be lost, a worker resends it
            mark_owed(redis, source, trigger, not_before=time.time() + wait + RETRY_GRACE)
        raise task.retry(exc=exc, countdown=wait) from exc
    finally:
        with suppress(RedisError):
            redis.delete(running_key(source))
        engine.dispose()


def _settle(redis: Redis, source: str) -> str | None:
    """A sync ended (done, or failed for good), its lock still held: nothing is owed any
    more, unless a request came while it ran. Then the follow-up is owed, and this worker
    claims sending it (the sweep keeps off for a while). Returns the follow-up's trigger."""
    try:
        trigger = pending_follow_up(redis, source)
        if trigger is None:
            clear_owed(redis, source)
            return None
        if trigger not in {t.value for t in RunTrigger}:
            trigger = RunTrigger.ON_DEMAND.value
        mark_owed(redis, source, trigger)
        redis.set(swept_key(source), "1", ex=FOLLOW_UP_CLAIM)
        return trigger
    except RedisError:  # the owed mark stays as it was: the sweep sends a sync if need be
        log.warning("could not settle the sync of %s in Redis", source, exc_info=True)
        return None


def _send_follow_up(redis: Redis, source: str, trigger: str) -> None:
    """After a sync ends (lock released), the follow-up a request made during it is owed.
    Should sending fail (a broken broker connection can fail in more ways than kombu
    retries), the claim is dropped and the workers' sweep sends it from the owed mark."""
    try:
        app.send_task(SYNC_TASK, args=[source, trigger], kwargs={"follow_up": True})
        log.info("sync of %s: a follow-up was asked for while it ran; sent", source)
    except Exception:
        log.warning("could not send the follow-up of %s; the sweep will", source, exc_info=True)
        with suppress(RedisError):
            redis.delete(swept_key(source))


def enqueue(source: str, trigger: str = "on_demand") -> str:
    """Put a sync of ``source`` on the queue; returns the task id."""
    result = app.send_task(SYNC_TASK, args=[source, trigger])
    return str(result.id)
