"""The Celery app and its one task: sync a source, by name.

Celery on Redis, configured for tasks that must never run twice at once and never be lost
(sources.md §E):

- JSON only; explicit, stable task names; no result backend (nothing reads results);
- ``acks_late`` + ``task_reject_on_worker_lost``: a worker killed mid-sync gives its message
  back and another worker runs it again. That is safe because the sync is idempotent
  (SPEC §5: the ledger, the intents and adoption make a re-run continue, not repeat);
- ``worker_prefetch_multiplier = 1`` so long syncs do not sit reserved behind each other;
- a visibility timeout above the longest task (``broker.visibility_timeout_seconds``, and
  ``task_time_limit`` below it), and no long ETAs: waits become retries with a countdown;
- no Celery ``expires``: Celery would copy it into retries and redeliveries and discard
  them. Beat sets its own header instead, and only a first delivery honours it.

The task is a thin shim over :mod:`worker.coordination` (how a sync starts and ends among
workers): it takes a source *name*, loads the settings once per process, and calls
:func:`worker.sync.sync`, which records the run. Retryable failures (429s, an unreachable
API, a lost lock) retry with the wait the error carries, or exponential backoff, and the run
shows as ``retrying`` until then; configuration errors do not retry. Each worker's main
process sweeps every few seconds for what dead processes left (interrupted runs, owed syncs).
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

from worker import coordination
from worker.broker import TRANSPORT
from worker.clients import kukkingu_client, opened_source
from worker.config import Settings, load_config
from worker.coordination import NOT_AFTER, SYNC_TASK
from worker.errors import ConfigurationError, RetryableError
from worker.locks import HeldLock, SyncLocks
from worker.store import RunTrigger, make_engine, session_factory

log = logging.getLogger("billsync.tasks")

MAX_RETRIES = 8
SWEEP_SECONDS = 10.0  # how often a worker looks for owed syncs nobody runs
RETRY_GRACE = 30.0  # seconds after a retry's due time before it counts as lost

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
        billsync_beat_lock_ttl=broker.lock_ttl_seconds,
        task_soft_time_limit=max(60, broker.task_time_limit_seconds - 60),
        timezone=settings.file.billing.timezone,
        enable_utc=True,
    )
    if settings.broker_url.startswith("redis://"):
        # kombu's Redis transport, mended so a Redis restart does not kill the worker
        app.conf.broker_transport = TRANSPORT
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
    """In the worker's main process: close the runs of dead processes and resend the syncs
    that died without a message to bring them back (:func:`worker.coordination.sweep`)."""
    threading.Thread(target=_sweep, name="billsync sweeper", daemon=True).start()


def _sweep() -> None:
    from worker.sync import interrupt_runs  # deferred: keeps `billsync enqueue` light

    config = settings()
    names = [source.name for source in config.file.sources]
    interval = min(SWEEP_SECONDS, max(1.0, config.file.broker.lock_ttl_seconds / 2))
    redis = redis_client()
    engine = make_engine(config.state_url)
    factory = session_factory(engine)
    while True:
        time.sleep(interval)
        try:
            found = coordination.sweep(redis, names, time.time())
            for run in found.interrupted:
                reason = (
                    f"its process ({run.holder}) stopped without ending the run; "
                    f"noticed by {socket.gethostname()}:{os.getpid()}"
                )
                log.warning("a sync of %s was interrupted: %s", run.source, reason)
                interrupt_runs(factory, run.source, run.task_id, reason)
            for source, trigger in found.resend:
                log.warning(
                    "a sync of %s ended without finishing and nothing brings it back "
                    "(its process was killed, or its retry was lost with Redis): sending it again",
                    source,
                )
                app.send_task(SYNC_TASK, args=[source, trigger], kwargs={"follow_up": True})
        except Exception:  # Redis or the database restarting: the next round tries again
            log.warning("could not sweep for interrupted or owed syncs", exc_info=True)


_redis: Redis | None = None


def redis_client() -> Redis:
    """Redis for locks and markers, one client (pool) per process. Each command is retried
    with backoff for about ten seconds, so a Redis restart (its append-only file keeps the
    keys) is ridden out."""
    global _redis
    if _redis is None:
        _redis = Redis.from_url(
            settings().broker_url,
            retry=Retry(ExponentialBackoff(cap=1.0, base=0.1), 15),
            retry_on_error=[RedisConnectionError, RedisTimeoutError],
        )
    return _redis


def backoff(retries: int) -> float:
    """Exponential backoff with jitter for retries that carry no wait of their own."""
    return float(min(600.0, 5.0 * 2**retries) * (0.5 + random.random() / 2))  # noqa: S311


def _first_delivery(task: Task) -> bool:
    """Not a retry, and not a message Redis gave back after its worker died."""
    delivery = task.request.delivery_info or {}
    redelivered = delivery.get("redelivered") or task.request.get("redelivered")
    return not (task.request.retries or redelivered)


@app.task(name=SYNC_TASK, bind=True, max_retries=None, acks_late=True)  # type: ignore[untyped-decorator]
def sync_source(self: Task, source: str, trigger: str = "schedule", follow_up: bool = False) -> str:
    """Sync one source now, unless another sync of it runs (then: one follow-up later)."""
    config = settings()
    if source not in {s.name for s in config.file.sources}:
        log.error("no source named %r in the configuration; dropping the request", source)
        return "unknown source"
    redis = redis_client()
    not_after = self.request.get(NOT_AFTER)
    debounce = config.file.webhooks.debounce_seconds
    if trigger == "webhook" and not follow_up and debounce and _first_delivery(self):
        # the rest of a burst of events arrives meanwhile; they find this message
        # outstanding and send none (worker.webhooks.request_sync)
        time.sleep(debounce)
    try:
        start = coordination.on_start(
            redis,
            source,
            self.request.id,
            trigger,
            ttl=config.file.broker.lock_ttl_seconds,
            now=time.time(),
            not_after=float(not_after) if not_after is not None else None,
            first_delivery=_first_delivery(self),
        )
    except RedisError as exc:  # Redis down for longer than the client rides out
        raise self.retry(exc=exc, countdown=backoff(self.request.retries)) from exc
    if isinstance(start, coordination.Expired):
        log.info("a scheduled sync of %s was not started before the next was due: dropped", source)
        return "expired"
    if isinstance(start, coordination.Coalesce):
        return "coalesced"
    retrying = False
    try:
        return _run(self, config, redis, start.lock, source, trigger)
    except CeleryRetry:  # the retry's message covers any pending request
        retrying = True
        raise
    finally:
        end: coordination.FollowUp | coordination.Done | None = None
        if not retrying:
            try:
                end = coordination.on_end(redis, source)
            except RedisError:  # the owed mark stays: the sweep sends a sync if need be
                log.warning("could not settle the sync of %s in Redis", source, exc_info=True)
        start.lock.release()
        if isinstance(end, coordination.FollowUp):
            _send_follow_up(redis, source, end.trigger)


def _run(
    task: Task, config: Settings, redis: Redis, lock: HeldLock, source: str, trigger: str
) -> str:
    """The sync itself, with the lock held."""
    from worker.sync import sync  # deferred: keeps `billsync enqueue` light

    engine = make_engine(config.state_url)
    marker = f"{socket.gethostname()}:{os.getpid()}:{task.request.id}"
    locks = SyncLocks(
        redis, lock, config.file.kukkingu.tenant_id, config.file.broker.lock_ttl_seconds
    )

    def retry_wait(exc: BaseException) -> float | None:
        """Seconds until this failure's retry, or None when it is not retried."""
        if not isinstance(exc, RetryableError | RedisError) or task.request.retries >= MAX_RETRIES:
            return None
        retry_after = exc.retry_after if isinstance(exc, RetryableError) else None
        return retry_after if retry_after is not None else backoff(task.request.retries)

    try:
        coordination.begin(
            redis, source, trigger, marker, marker_ttl=config.file.broker.task_time_limit_seconds
        )
        with (
            kukkingu_client(config) as client,
            opened_source(config, config.source(source)) as opened,
        ):
            result = sync(
                config,
                session_factory(engine),
                client,
                opened,
                trigger=RunTrigger(trigger),
                task_id=task.request.id,
                checkpoint=lock.check,
                fence=locks.fence,
                ledger_lock=locks.ledger,
                retry_wait=retry_wait,
            )
        return f"{result.applied.lines_created} created, {result.applied.lines_updated} updated"
    except ConfigurationError:
        log.exception("sync of %s needs an operator: not retried", source)
        raise
    except (RetryableError, RedisError) as exc:
        wait = retry_wait(exc)
        if wait is None:
            raise
        log.warning("sync of %s will be retried in %.0f s: %s", source, wait, exc)
        with suppress(RedisError):
            coordination.on_retry(redis, source, trigger, due=time.time() + wait + RETRY_GRACE)
        # no expiry on a retry: it belongs to a sync that started
        raise task.retry(exc=exc, countdown=wait, expires=None) from exc
    finally:
        with suppress(RedisError):
            coordination.finished(redis, source, marker)
        engine.dispose()


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
            coordination.follow_up_unsent(redis, source)


def enqueue(source: str, trigger: str = "on_demand") -> str:
    """Put a sync of ``source`` on the queue; returns the task id."""
    result = app.send_task(SYNC_TASK, args=[source, trigger])
    return str(result.id)
