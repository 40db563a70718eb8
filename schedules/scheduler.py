"""A beat scheduler that schedules only while it holds a Redis lock: exactly one beat.

Two beats (a second one started by mistake, a rolling deploy) would send every scheduled
sync twice. Each tick, this scheduler takes or renews ``billsync:lock:beat`` (token + TTL);
a beat that does not hold it sends nothing and checks again soon, so it takes over within
one TTL if the active beat dies. (The per-source lock would keep two copies of one sync
from overlapping anyway; this keeps the schedule from doubling.)
"""

from __future__ import annotations

import contextlib
import logging
from typing import Any

from celery.beat import PersistentScheduler
from redis import Redis
from redis.exceptions import LockError, RedisError
from redis.lock import Lock

log = logging.getLogger("billsync.beat")

BEAT_LOCK = "billsync:lock:beat"
BEAT_LOCK_TTL = 30.0
STANDBY_CHECK = 5.0  # seconds between attempts of a beat that does not hold the lock


class LockedScheduler(PersistentScheduler):  # type: ignore[misc]
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        redis = Redis.from_url(self.app.conf.broker_url)
        self._lock: Lock = redis.lock(BEAT_LOCK, timeout=BEAT_LOCK_TTL, thread_local=False)
        self._held = False

    def _hold(self) -> bool:
        try:
            if self._held:
                self._lock.extend(BEAT_LOCK_TTL, replace_ttl=True)
            else:
                self._held = bool(self._lock.acquire(blocking=False))
                if self._held:
                    log.info("this beat holds %s: it schedules", BEAT_LOCK)
        except (LockError, RedisError) as exc:
            if self._held:
                log.warning("this beat lost %s (%s): standing by", BEAT_LOCK, exc)
            self._held = False
        return self._held

    def tick(self, *args: Any, **kwargs: Any) -> float:
        if not self._hold():
            return STANDBY_CHECK
        return float(min(super().tick(*args, **kwargs), BEAT_LOCK_TTL / 3))

    def close(self) -> None:
        if self._held:
            with contextlib.suppress(LockError, RedisError):
                self._lock.release()
        super().close()
