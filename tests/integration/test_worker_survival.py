"""The processes around the ledger, as an operator runs them (SPEC §6): workers that keep
serving across Redis restarts, retries that no schedule expiry discards, a write that never
starts under a lost lock, and a standby beat that takes over without sending the minute
again. Real redis-server, real `billsync worker` / `beat` processes, PostgreSQL, sandboxes.
Every wait is on an event, with a generous deadline."""

from __future__ import annotations

import re
import signal
import time
from collections import Counter
from datetime import UTC, datetime

from celery import Celery
from redis import Redis
from sqlalchemy import create_engine, select
from sqlalchemy.orm import sessionmaker

from sandbox.common.faults import FaultMatch, FaultSpec
from sandbox.main import RunningSandbox
from schedules.beat import EXPIRES_IN, beat_schedule
from schedules.scheduler import stamp
from tests.integration.conftest import hold_writes, release_writes, writing
from tests.support.redis import RedisServer
from tests.support.service import (
    SOURCES,
    Service,
    assert_exactly_once,
    assert_never_overlapping,
    runs,
    wait_until,
)
from worker.config import load_config
from worker.coordination import SYNC_TASK
from worker.locks import running_key
from worker.store import Run

DISCARDED = "Discarding revoked task"


def send_as_beat(service: Service, source: str, expires_in: float) -> str:
    """Send ``source``'s scheduled sync the way beat does (its entry's options, stamped by
    the scheduler), with the expiry shortened to ``expires_in`` seconds."""
    settings = load_config(service.config)
    entry = beat_schedule(settings)[f"sync {source}"]
    options = dict(entry["options"])
    options["headers"] = {**options["headers"], EXPIRES_IN: expires_in}
    with Celery(broker=settings.broker_url) as app:
        app.conf.task_default_queue = "billsync"  # the queue workers consume (worker.tasks)
        result = app.send_task(SYNC_TASK, args=list(entry["args"]), **stamp(options, time.time()))
    return str(result.id)


def run_rows(factory: sessionmaker, task_id: str) -> list[Run]:  # type: ignore[type-arg]
    with factory() as session:
        return list(session.scalars(select(Run).where(Run.task_id == task_id).order_by(Run.id)))


def test_a_retry_outlives_the_schedule_expiry_and_shows_as_retrying(
    service: Service, sandbox: RunningSandbox, state_url: str, redis: Redis
) -> None:
    """A 429 whose Retry-After is beyond the client's own waiting becomes a Celery retry,
    due after the scheduled send's expiry. Celery's ``expires`` (what beat used to send) is
    copied into the retry, which Celery then discards ("Discarding revoked task"). The
    retry must run, and the run waits as ``retrying`` meanwhile."""
    engine = create_engine(state_url)
    factory = sessionmaker(engine)
    try:
        service.worker("w1")
        wait_until(lambda: " ready." in service.log("w1"), 120, service, "the worker")
        # the sync's first write is held (it started: the expiry no longer applies), then
        # answered 429 with a Retry-After longer than the client waits by itself
        hold_writes(sandbox)
        sandbox.kukkingu_app.faults.add(
            FaultSpec(kind="rate_limit", retry_after=8, count=1, match=FaultMatch(method="POST"))
        )
        expires_in = 5.0
        sent_at = time.time()
        task_id = send_as_beat(service, "jira-demo", expires_in=expires_in)
        wait_until(lambda: writing(sandbox, redis, "jira-demo"), 120, service, "its first write")
        while time.time() <= sent_at + expires_in + 1:  # the send's deadline passes
            time.sleep(0.2)
        release_writes(sandbox)

        def retrying() -> bool:
            rows = run_rows(factory, task_id)
            return bool(rows) and rows[0].status == "retrying"

        wait_until(retrying, 120, service, "the run, retrying")
        first = run_rows(factory, task_id)[0]
        assert first.retry_at is not None
        assert first.finished_at is not None
        assert first.retry_at > first.finished_at
        assert "429" in (first.error or "") or "TooManyRequests" in (first.error or "")

        def retried() -> bool:
            return any(r.status == "succeeded" for r in run_rows(factory, task_id))

        wait_until(retried, 180, service, "the retry of the same message, succeeded")
        assert DISCARDED not in service.log("w1")
        statuses = [r.status for r in run_rows(factory, task_id)]
        assert statuses == ["failed", "succeeded"], statuses  # the wait ended with the retry
    finally:
        engine.dispose()


def test_a_scheduled_send_that_never_started_in_time_is_dropped(
    service: Service, sandbox: RunningSandbox, state_url: str, redis: Redis
) -> None:
    engine = create_engine(state_url)
    factory = sessionmaker(engine)
    try:
        late = send_as_beat(service, "jira-demo", expires_in=-1)  # due before it is taken
        timely = send_as_beat(service, "github-demo", expires_in=600)
        service.worker("w1")
        wait_until(
            lambda: any(
                st == "succeeded" for n, _, st, _, _ in runs(factory) if n == "github-demo"
            ),
            180,
            service,
            "the timely scheduled sync",
        )
        wait_until(lambda: late in service.log("w1"), 120, service, "the late one, taken")
        wait_until(lambda: redis.llen("billsync") == 0, 120, service, "the queue, drained")
        assert [r.status for r in run_rows(factory, timely)] == ["succeeded"]
        assert run_rows(factory, late) == []
        assert "was not started before the next was due: dropped" in service.log("w1")
    finally:
        engine.dispose()


def test_a_write_never_starts_under_a_lock_that_is_gone(
    service: Service, sandbox: RunningSandbox, state_url: str, redis: Redis
) -> None:
    """The sync's locks vanish while one of its writes is in flight (a Redis restart that
    lost them, a stall past the TTL). That write lands; the sync sends no other: the fence
    checks the lock before each write batch, whether or not the keeper thread has noticed
    the loss yet."""
    engine = create_engine(state_url)
    factory = sessionmaker(engine)
    # One write in flight, so "the next write" is well defined; with concurrent writes each
    # one passes the same fence (Applier._intend) before it starts.
    service.write_one_at_a_time()
    try:
        hold_writes(sandbox)
        service.worker("w1")  # one process: its log is the sync's, in order
        service.enqueue("jira-demo")
        wait_until(lambda: writing(sandbox, redis, "jira-demo"), 120, service, "a Jira write")
        for key in redis.scan_iter("billsync:lock:*"):
            redis.delete(key)
        release_writes(sandbox)

        def stopped() -> bool:
            return "will be retried" in service.log("w1")

        wait_until(stopped, 120, service, "the sync, stopped by its fence")
        fenced = service.log("w1").split("will be retried", 1)[0]
        writes = re.findall(r"HTTP Request: (?:POST|PUT) ", fenced)
        assert len(writes) == 1, f"only the write in flight lands, not {len(writes)}"
        # stopped by the lost lock: the fence before the next write found it gone, or (on a
        # loaded machine) the keeper's extension failed first and the next step stopped
        assert re.search(r"is no longer held|was lost before", service.log("w1"))
        # the retry (or a worker's resend) finishes the work, exactly once
        wait_until(
            lambda: any(st == "succeeded" for _, _, st, _, _ in runs(factory)),
            180,
            service,
            "the retry",
        )
        wait_until(lambda: redis.get(running_key("jira-demo")) is None, 120, service, "quiet")
        assert_never_overlapping(runs(factory))
    finally:
        engine.dispose()


def test_workers_keep_serving_across_five_redis_restarts(
    service: Service,
    sandbox: RunningSandbox,
    state_url: str,
    redis: Redis,
    redis_server: RedisServer,
) -> None:
    """Redis restarted five times, each time while a sync is in the middle of its writes:
    every worker process is still there afterwards and serves new requests."""
    engine = create_engine(state_url)
    factory = sessionmaker(engine)
    try:
        # two processes each: a worker then has a free slot, and its task channel waits on
        # Redis (BRPOP) while it holds the running sync's message, as in production
        service.worker("w1", concurrency=2)
        service.worker("w2", concurrency=2)
        for round_ in range(5):
            hold_writes(sandbox)
            source = SOURCES[round_ % 2]
            service.enqueue(source)
            wait_until(
                lambda source=source: writing(sandbox, redis, source),  # type: ignore[misc]
                180,
                service,
                f"a write of {source}, round {round_}",
            )
            redis_server.restart()
            release_writes(sandbox)
            for name in ("w1", "w2"):
                assert service.processes[name].poll() is None, f"{name} died:\n{service.logs()}"
        restarted_at = datetime.now(UTC)
        service.enqueue(*SOURCES)

        def served() -> bool:
            return all(
                any(
                    n == s and st == "succeeded" and a > restarted_at
                    for n, _, st, a, _ in runs(factory)
                )
                for s in SOURCES
            )

        wait_until(served, 240, service, "a sync of each source after the restarts")
        for name in ("w1", "w2"):
            assert service.processes[name].poll() is None, f"{name} died"
            assert "Unrecoverable error" not in service.log(name)
        wait_until(
            lambda: not any(redis.get(running_key(s)) for s in SOURCES), 120, service, "quiet"
        )
        assert_never_overlapping(runs(factory))
        assert_exactly_once(factory, sandbox, service)
    finally:
        engine.dispose()


# logged after a send (Celery's "Sending due task" comes before it, so a beat killed in between
# logs a send it never made)
SENT = re.compile(r"sent (?P<name>sync [\w-]+) \(due (?P<minute>\d{4}-\d\d-\d\dT\d\d:\d\d)")


def test_a_standby_beat_takes_over_without_sending_the_minute_again(
    service: Service, sandbox: RunningSandbox, state_url: str, redis: Redis
) -> None:
    service.worker("w1")
    service.beat("beat1")
    wait_until(lambda: "it schedules" in service.log("beat1"), 120, service, "beat1, active")
    service.beat("beat2")
    wait_until(lambda: "is standby" in service.log("beat2"), 120, service, "beat2, standing by")
    wait_until(lambda: SENT.search(service.log("beat1")) is not None, 120, service, "a send")
    service.processes["beat1"].send_signal(signal.SIGKILL)  # dies holding the beat lock
    service.processes["beat1"].wait(30)
    wait_until(lambda: "it schedules" in service.log("beat2"), 120, service, "beat2 takes over")
    # one more minute boundary, sent by the new beat
    first = {m["minute"] for m in SENT.finditer(service.log("beat1"))}
    wait_until(
        lambda: any(m["minute"] not in first for m in SENT.finditer(service.log("beat2"))),
        150,
        service,
        "the next minute, sent by beat2",
    )
    sends = Counter(
        (m["name"], m["minute"])
        for name in ("beat1", "beat2")
        for m in SENT.finditer(service.log(name))
    )
    assert sends, "nothing was scheduled"
    doubled = {key: count for key, count in sends.items() if count > 1}
    assert not doubled, f"a minute sent twice across the failover: {doubled}"
