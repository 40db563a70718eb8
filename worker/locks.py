"""Redis locks: at most one sync per source, one allocating sync per tenant, one beat.

All are redis-py ``Lock`` objects: ``SET key token NX PX ttl``, released (and extended) only
by the holder's token, so an expired holder can never free someone else's lock.

:class:`HeldLock` keeps a lock alive while long work runs: a daemon thread extends it every
third of its TTL. If an extension fails (the lock expired or Redis lost it), ``lost`` is set
and :meth:`HeldLock.check` raises :class:`LockLost`; the sync calls it between steps, so a
sync that may no longer be alone stops at the next step. Before each Kukkingu write the sync
calls :meth:`HeldLock.fence`, which asks Redis whether the token is still the lock's: a write
never starts under a lock that is gone (fencing). Stopping is safe: the ledger and
the intents make the next sync continue where this one left off.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from types import TracebackType

from redis import Redis
from redis.exceptions import LockError, RedisError
from redis.lock import Lock

from worker.errors import RetryableError

log = logging.getLogger("billsync.locks")

PREFIX = "billsync"
SOURCE_TTL = 60.0  # seconds; extended every 20 s while the sync runs
PENDING_TTL = 600  # seconds a coalesced request waits for its retry before it may be redone
LEDGER_WAIT = 300.0  # seconds a sync waits for another sync's allocation (plan, drafts)
OWED_TTL = 86_400  # an owed sync nobody resumed within a day is left to the schedule


class LockLost(RetryableError):
    """The lock expired or vanished while work ran: stop, the next run continues."""


def source_lock_key(source: str) -> str:
    return f"{PREFIX}:lock:source:{source}"


def pending_key(source: str) -> str:
    return f"{PREFIX}:pending:{source}"


def running_key(source: str) -> str:
    """Who syncs ``source`` right now: ``host:pid:task id`` (for operators and tests)."""
    return f"{PREFIX}:running:{source}"


def owed_key(source: str) -> str:
    """A sync of ``source`` started and has not ended yet (see :func:`owed_syncs`)."""
    return f"{PREFIX}:owed:{source}"


def webhook_key(source: str) -> str:
    """A webhook's sync message of ``source`` is sent and no sync has begun since (see
    :func:`worker.webhooks.request_sync`)."""
    return f"{PREFIX}:webhook:{source}"


def swept_key(source: str) -> str:
    return f"{PREFIX}:swept:{source}"


def ledger_lock_key(tenant: str) -> str:
    return f"{PREFIX}:lock:ledger:{tenant}"


class HeldLock:
    """A lock that is kept alive by a background thread until released."""

    def __init__(self, redis: Redis, key: str, ttl: float = SOURCE_TTL) -> None:
        self.key = key
        self.ttl = ttl
        self._lock: Lock = redis.lock(key, timeout=ttl, thread_local=False)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.lost = False

    def acquire(self, *, blocking: bool = False, wait: float | None = None) -> bool:
        if not self._lock.acquire(blocking=blocking, blocking_timeout=wait):
            return False
        self._thread = threading.Thread(target=self._keep, name=f"extend {self.key}", daemon=True)
        self._thread.start()
        return True

    def _keep(self) -> None:
        while not self._stop.wait(self.ttl / 3):
            try:
                self._lock.extend(self.ttl, replace_ttl=True)
            except (LockError, RedisError) as exc:
                self.lost = True
                log.warning("lost %s (%s): the work stops at its next step", self.key, exc)
                return

    def check(self, step: str = "") -> None:
        if self.lost:
            raise LockLost(f"{self.key} was lost before {step or 'this step'}")

    def fence(self, step: str = "") -> None:
        """Before a write: the lock must be ours in Redis *now*, not just at the last
        extension (a Redis restart or a long stall can lose it in between)."""
        self.check(step)
        try:
            owned = self._lock.owned()
        except RedisError as exc:
            self.lost = True
            raise LockLost(f"{self.key}: could not confirm it before {step} ({exc})") from exc
        if not owned:
            self.lost = True
            raise LockLost(f"{self.key} is no longer held: {step or 'the write'} not sent")

    def release(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5)
        try:
            self._lock.release()
        except (LockError, RedisError) as exc:  # expired, or Redis is gone: nothing to free
            log.info("could not release %s: %s", self.key, exc)

    def __enter__(self) -> HeldLock:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.release()


def request_follow_up(redis: Redis, source: str, trigger: str = "on_demand") -> bool:
    """Mark that a sync of ``source`` (with this trigger) was asked for while one runs.
    True for the first asker; later askers are covered by the same follow-up."""
    return bool(redis.set(pending_key(source), trigger, nx=True, ex=PENDING_TTL))


def pending_follow_up(redis: Redis, source: str) -> str | None:
    """The trigger of the request waiting for a follow-up of ``source``, if one is."""
    value = redis.get(pending_key(source))
    if value is None:
        return None
    return value.decode() if isinstance(value, bytes) else str(value)


def clear_follow_up(redis: Redis, source: str) -> None:
    """A sync is starting: it covers every request made so far."""
    redis.delete(pending_key(source))


@contextmanager
def ledger_lock(
    redis: Redis, tenant: str, wait: float = 300.0, ttl: float = SOURCE_TTL
) -> Iterator[HeldLock]:
    """Hold the tenant's ledger lock (what allocates: plans, drafts) for the block; wait up
    to ``wait``. ``ttl``: how long a dead holder keeps it (extended every third while held)."""
    lock = HeldLock(redis, ledger_lock_key(tenant), ttl=ttl)
    if not lock.acquire(blocking=True, wait=wait):
        raise RetryableError(f"another sync held the ledger for {wait:.0f} s", retry_after=30)
    try:
        yield lock
    finally:
        lock.release()


class SyncLocks:
    """The Redis locks one sync holds: its source's (held already) and, while it allocates
    (plans, creates drafts, sets their totals), its tenant's ledger lock. :meth:`fence`
    checks those held before each write."""

    def __init__(self, redis: Redis, source: HeldLock, tenant: str, ttl: float) -> None:
        self.redis, self.source, self.tenant, self.ttl = redis, source, tenant, ttl
        self._ledger: list[HeldLock] = []

    @contextmanager
    def ledger(self) -> Iterator[HeldLock]:
        with ledger_lock(self.redis, self.tenant, LEDGER_WAIT, ttl=self.ttl) as held:
            self._ledger.append(held)
            try:
                yield held
            finally:
                self._ledger.remove(held)

    def fence(self, step: str) -> None:
        for held in (self.source, *self._ledger):
            held.fence(step)


def mark_owed(redis: Redis, source: str, trigger: str, not_before: float = 0.0) -> None:
    """A sync of ``source`` is under way (or will be retried at ``not_before``, epoch s):
    until :func:`clear_owed`, a worker that finds the source unlocked sends it again."""
    value = json.dumps({"trigger": trigger, "notBefore": not_before})
    redis.set(owed_key(source), value, ex=OWED_TTL)


def clear_owed(redis: Redis, source: str) -> None:
    redis.delete(owed_key(source))


def owed_syncs(
    redis: Redis, sources: Iterable[str], now: float, claim_seconds: int = 30
) -> list[tuple[str, str]]:
    """(source, trigger) of the syncs that are owed but that nobody runs: marked owed, due,
    and the source's lock free. That is a sync whose process died and whose message did not
    come back (Celery could not requeue it over a broken Redis connection, or a countdown
    retry was dropped with the connection: Redis returns those only after the visibility
    timeout). One worker claims each for ``claim_seconds``, so one resumes it."""
    found: list[tuple[str, str]] = []
    for source in sources:
        raw = redis.get(owed_key(source))
        if raw is None or redis.exists(source_lock_key(source)):
            continue
        try:
            owed = json.loads(raw)
            trigger, not_before = str(owed["trigger"]), float(owed["notBefore"])
        except (ValueError, KeyError, TypeError):
            trigger, not_before = "schedule", 0.0
        if not_before > now:
            continue
        if redis.set(swept_key(source), "1", nx=True, ex=claim_seconds):
            found.append((source, trigger))
    return found
