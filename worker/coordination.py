"""How a sync starts and ends among workers: decisions over Redis, without Celery.

The Celery task (:mod:`worker.tasks`) is a shim over these. Each decision is a function of
Redis' state (plus the message's facts) that returns what to do, so it can be tested on
its own against a real Redis:

- :func:`on_start` → :class:`Start` (the lock is held: sync), :class:`Coalesce` (a sync runs:
  one follow-up is owed) or :class:`Expired` (a scheduled send never started before the next
  was due). A message delivered again after its worker died finds its own task id in the
  running marker and waits out the dead holder's lock (``Start(resumed=True)``).
- :func:`begin` marks the running sync: the request mark cleared, the source *owed*, the
  running marker set. :func:`on_retry` keeps it owed until its retry is due.
- :func:`on_end` → :class:`FollowUp` (a request came while it ran; this worker sends it) or
  :class:`Done`. :func:`follow_up_unsent` hands a follow-up that could not be sent to the
  sweep.
- :func:`sweep` (every worker's main process, every few seconds) finds what a dead process
  left: a running marker whose lock is free is an *interrupted* run, and an owed source
  whose lock is free is a sync to send again.

Coalescing never parks a message in a worker: Celery drops the countdown messages a worker
holds when its broker connection breaks, and Redis gives them back only after the
visibility timeout (hours). So a request made while a sync runs only marks the source
*pending*; the running sync sends one follow-up when it ends.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from redis import Redis

from worker.locks import (
    HeldLock,
    clear_follow_up,
    clear_owed,
    mark_owed,
    owed_syncs,
    pending_follow_up,
    request_follow_up,
    running_key,
    source_lock_key,
    swept_key,
    webhook_key,
)

log = logging.getLogger("billsync.coordination")

SYNC_TASK = "billsync.sync_source"  # stable on purpose: queued messages name it
NOT_AFTER = "billsync_not_after"  # message header (epoch s) beat sets on a scheduled send
# worker.store.RunTrigger's values
TRIGGERS = frozenset({"schedule", "on_demand", "cli", "webhook"})
FOLLOW_UP_CLAIM = 30  # seconds the sweep leaves a follow-up to the sync that sends it
# deletes the running marker only if it still names the same holder
_DELETE_IF = "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end"


@dataclass(frozen=True)
class Start:
    """The source's lock is held: run the sync (and release ``lock`` at the end)."""

    lock: HeldLock
    resumed: bool = False  # a redelivery of a sync whose worker died


@dataclass(frozen=True)
class Coalesce:
    """Another sync of the source runs; it sends one follow-up when it ends."""


@dataclass(frozen=True)
class Expired:
    """A scheduled send that never started before its expiry: the next one covers it."""

    not_after: float


@dataclass(frozen=True)
class FollowUp:
    """A request came while the sync ran: send one sync with this trigger."""

    trigger: str


@dataclass(frozen=True)
class Done:
    """Nothing is owed any more."""


@dataclass(frozen=True)
class Interrupted:
    """A run whose process died: its running marker stayed, its lock expired."""

    source: str
    task_id: str
    holder: str  # host:pid


@dataclass(frozen=True)
class Sweep:
    interrupted: list[Interrupted]
    resend: list[tuple[str, str]]  # (source, trigger)


def holder_task(redis: Redis, source: str) -> str | None:
    """The task id in ``source``'s running marker (``host:pid:task``), if any."""
    marker = redis.get(running_key(source))
    if marker is None:
        return None
    return _text(marker).rsplit(":", 1)[-1]


def on_start(
    redis: Redis,
    source: str,
    task_id: str,
    trigger: str,
    *,
    ttl: float,
    now: float,
    not_after: float | None = None,
    first_delivery: bool = True,
) -> Start | Coalesce | Expired:
    """Decide what a delivered sync message does. Expiry applies only to the first delivery
    of a scheduled send: a retry or a redelivery belongs to a sync that started."""
    if first_delivery and not_after is not None and now > not_after:
        return Expired(not_after)
    lock = HeldLock(redis, source_lock_key(source), ttl=ttl)
    if lock.acquire():
        return Start(lock)
    if holder_task(redis, source) == task_id:
        # delivered again after the worker running this very task died: its lock expires
        # within the TTL, and this delivery is the one that finishes the work
        log.info("sync of %s resumes after its worker died; waiting for its lock", source)
        if lock.acquire(blocking=True, wait=ttl + 2):
            return Start(lock, resumed=True)
    request_follow_up(redis, source, _trigger(source, trigger))
    # The sync holding the lock may have ended between the try above and the mark: it saw
    # no mark and owes nothing, so nobody would act on it. Try once more: with the lock,
    # this message is the sync (its begin clears the mark). Should the ending sync have
    # seen the mark after all, its follow-up runs once more: one sync too many, none lost.
    if lock.acquire():
        return Start(lock)
    return Coalesce()


def begin(redis: Redis, source: str, trigger: str, marker: str, *, marker_ttl: int) -> None:
    """The lock is held and the sync starts: it covers every request made so far, it is owed
    until it ends (a worker resumes it if it dies), and the marker names its holder."""
    clear_follow_up(redis, source)
    redis.delete(webhook_key(source))  # a webhook's next event sends a message again
    mark_owed(redis, source, trigger)
    redis.set(running_key(source), marker, ex=marker_ttl)


def on_retry(redis: Redis, source: str, trigger: str, *, due: float) -> None:
    """The sync will be retried at ``due`` (epoch s): should the retry's message be lost, a
    worker sends it again after that."""
    mark_owed(redis, source, trigger, not_before=due)


def finished(redis: Redis, source: str, marker: str) -> None:
    """The sync's process ends its run: the marker goes (unless someone else's by now)."""
    redis.eval(_DELETE_IF, 1, running_key(source), marker)


def on_end(redis: Redis, source: str) -> FollowUp | Done:
    """A sync ended (done, or failed for good), its lock still held: nothing is owed any
    more, unless a request came while it ran. Then the follow-up is owed, and this worker
    claims sending it (the sweep keeps off for a while)."""
    trigger = pending_follow_up(redis, source)
    if trigger is None:
        clear_owed(redis, source)
        return Done()
    trigger = _trigger(source, trigger)
    mark_owed(redis, source, trigger)
    redis.set(swept_key(source), "1", ex=FOLLOW_UP_CLAIM)
    return FollowUp(trigger)


def follow_up_unsent(redis: Redis, source: str) -> None:
    """Sending the follow-up failed: drop the claim, the sweep sends it from the owed mark."""
    redis.delete(swept_key(source))


def sweep(redis: Redis, sources: list[str], now: float) -> Sweep:
    """What dead processes left. A live sync always holds its lock (extended every third of
    its TTL) and deletes its marker before releasing it, so a marker without a lock names a
    process that died. Each interrupted marker is claimed by deleting it (one worker wins)."""
    interrupted = []
    for source in sources:
        marker = redis.get(running_key(source))
        if marker is None or redis.exists(source_lock_key(source)):
            continue
        text = _text(marker)
        if redis.eval(_DELETE_IF, 1, running_key(source), text):
            host_pid, _, task_id = text.rpartition(":")
            interrupted.append(Interrupted(source, task_id, host_pid))
    return Sweep(interrupted, owed_syncs(redis, sources, now))


def _trigger(source: str, trigger: str) -> str:
    if trigger in TRIGGERS:
        return trigger
    log.warning("sync of %s: unknown trigger %r taken as on_demand", source, trigger)
    return "on_demand"


def _text(value: object) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
