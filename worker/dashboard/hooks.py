"""``POST /hooks/github`` and ``POST /hooks/jira`` (SPEC §12): no login, no CSRF; a delivery
is authenticated by its signature (see :mod:`worker.webhooks`).

Answers, in the order they are decided:

- 404: the service's secret is not configured (``[webhooks] github_secret_env`` /
  ``jira_secret_env``);
- 413: a body over ``[webhooks] max_body_bytes`` (read no further);
- 401: no signature, or a wrong one;
- 200 ``{"pong": true}``: GitHub's ``ping``;
- 400: a signed body that is not the service's JSON, or one no configured source can be told
  to be for;
- 204: an event billsync does not use, or one of a repository no rule names;
- 200 ``{"duplicate": true}``: a delivery id seen before (nothing is done again);
- 202 ``{"source": …, "sent": …}``: a sync of the source was asked for (``sent``: a message
  was sent; false: one is outstanding and covers this event);
- 503: Redis (or the state store, recording the change for the sync) did not answer: the
  event was not taken, and the sender may deliver it again.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Protocol

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from redis import Redis
from redis.exceptions import RedisError
from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from worker.config import Settings
from worker.store import Source, WebhookReport, transaction
from worker.webhooks import (
    DELIVERY_TTL,
    BadPayload,
    Change,
    Event,
    Service,
    UnknownSource,
    first_delivery,
    forget_delivery,
    github_event,
    jira_event,
    request_sync,
    signature_valid,
    source_for,
)

log = logging.getLogger("billsync.webhooks")

Send = Callable[[str, str], object]
SIGNATURE = {"github": "x-hub-signature-256", "jira": "x-hub-signature"}
SECRET_KEY = {"github": "github_secret_env", "jira": "jira_secret_env"}
NAME = {"github": "GitHub", "jira": "Jira"}


class HookState(Protocol):
    """Replays and outstanding sync messages: in Redis, or in this process (the demo)."""

    def first_delivery(self, event: Event) -> bool: ...

    def forget_delivery(self, event: Event) -> None: ...

    def request_sync(self, source: str, send: Send) -> bool: ...


class RedisHookState:
    def __init__(self, redis: Redis) -> None:
        self.redis = redis

    def first_delivery(self, event: Event) -> bool:
        return first_delivery(self.redis, event)

    def forget_delivery(self, event: Event) -> None:
        forget_delivery(self.redis, event)

    def request_sync(self, source: str, send: Send) -> bool:
        return request_sync(self.redis, source, send)


class MemoryHookState:
    """For the demo, which has no Redis and syncs in its own process: the delivery ids seen
    (the newest 10,000, for a week), and every event asks for a sync (the demo's inline
    syncs coalesce themselves)."""

    LIMIT = 10_000

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._seen: OrderedDict[tuple[str, str], float] = OrderedDict()
        self._lock = threading.Lock()
        self._clock = clock

    def first_delivery(self, event: Event) -> bool:
        if event.delivery is None:
            return True
        key, now = (event.service, event.delivery), self._clock()
        with self._lock:
            seen = self._seen.get(key)
            if seen is not None and now - seen < DELIVERY_TTL:
                return False
            self._seen[key] = now
            self._seen.move_to_end(key)
            while len(self._seen) > self.LIMIT:
                self._seen.popitem(last=False)
        return True

    def forget_delivery(self, event: Event) -> None:
        if event.delivery is not None:
            with self._lock:
                self._seen.pop((event.service, event.delivery), None)

    def request_sync(self, source: str, send: Send) -> bool:
        send(source, "webhook")
        return True


class _TooLarge(Exception):
    pass


async def _body(request: Request, limit: int) -> bytes:
    """The raw body, refused past ``limit`` bytes without reading the rest."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise _TooLarge
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise _TooLarge
        chunks.append(chunk)
    return b"".join(chunks)


def _record_change(factory: sessionmaker[Session], source: str, change: Change) -> None:
    """Record a reported change for the source's next sync (once per kind and item)."""
    with transaction(factory) as session:
        source_id = session.scalar(select(Source.id).where(Source.name == source))
        if source_id is None:
            return  # never synced: the first sync reads everything there is
        known = session.scalar(
            select(WebhookReport.id).where(
                WebhookReport.source_id == source_id,
                WebhookReport.kind == change.kind,
                WebhookReport.item_id == change.item_id,
            )
        )
        if known is None:
            session.add(
                WebhookReport(
                    source_id=source_id,
                    kind=change.kind,
                    item_id=change.item_id,
                    issue_id=change.issue_id,
                    repo=change.repo,
                    comments=change.comments,
                )
            )


def add_hook_routes(
    app: FastAPI,
    settings: Settings,
    *,
    factory: sessionmaker[Session],
    state: HookState | None,
    send: Send,
) -> None:
    """The two webhook routes. ``state`` None: no Redis was given, every delivery is 503."""
    config = settings.file.webhooks

    async def receive(request: Request, service: Service) -> Response:
        secret_env = getattr(config, SECRET_KEY[service])
        if secret_env is None:
            return JSONResponse(
                {
                    "detail": f"{NAME[service]} webhooks are not configured: set "
                    f"[webhooks] {SECRET_KEY[service]}"
                },
                status_code=404,
            )
        try:
            body = await _body(request, config.max_body_bytes)
        except _TooLarge:
            log.warning("%s webhook refused: body over %d bytes", service, config.max_body_bytes)
            return JSONResponse(
                {"detail": f"the body is over {config.max_body_bytes} bytes"}, status_code=413
            )
        header = SIGNATURE[service]
        secret = settings.secret(secret_env).get_secret_value()
        if not signature_valid(secret, body, request.headers.get(header)):
            log.warning("%s webhook refused: missing or wrong %s", service, header)
            return JSONResponse(
                {"detail": f"missing or wrong signature ({header})"}, status_code=401
            )
        content_type = request.headers.get("content-type", "application/json")
        try:
            parse = github_event if service == "github" else jira_event
            event = parse(request.headers, body, content_type)
        except BadPayload as exc:
            return JSONResponse({"detail": str(exc)}, status_code=400)
        if event.ping:
            log.info("GitHub webhook ping (delivery %s)", event.delivery)
            return JSONResponse({"pong": True})
        if not event.used:
            return Response(status_code=204)
        try:
            source = source_for(settings, event, request.query_params.get("source"))
        except UnknownSource as exc:
            return JSONResponse({"detail": str(exc)}, status_code=400)
        if source is None:
            return Response(status_code=204)
        if state is None:
            return _unavailable(service, "no Redis is configured for this server")
        return act(service, event, source, state)

    def act(service: Service, event: Event, source: str, state: HookState) -> Response:
        try:
            if not state.first_delivery(event):
                log.info(
                    "%s webhook %s replayed (delivery %s)", service, event.name, event.delivery
                )
                return JSONResponse({"duplicate": True})
        except RedisError as exc:
            return _unavailable(service, f"Redis did not answer ({type(exc).__name__})")
        try:
            if event.change is not None:
                _record_change(factory, source, event.change)
            sent = state.request_sync(source, send)
        except Exception as exc:  # Redis, the broker or the state store: never its URL
            # should this fail too, a redelivery is taken as a replay: the schedule covers it
            with contextlib.suppress(RedisError):
                state.forget_delivery(event)
            what = "the state store" if isinstance(exc, SQLAlchemyError) else "Redis"
            return _unavailable(service, f"{what} did not answer ({type(exc).__name__})")
        log.info(
            "%s webhook %s for %s: %s (delivery %s)",
            service,
            event.name,
            source,
            "sync requested" if sent else "a sync is already requested",
            event.delivery,
        )
        return JSONResponse({"source": source, "sent": sent}, status_code=202)

    @app.post("/hooks/github")
    async def github_hook(request: Request) -> Response:
        return await receive(request, "github")

    @app.post("/hooks/jira")
    async def jira_hook(request: Request) -> Response:
        return await receive(request, "jira")


def _unavailable(service: Service, why: str) -> Response:
    log.warning("%s webhook not taken: %s", service, why)
    return JSONResponse(
        {"detail": f"the event was not taken: {why}; deliver it again later"},
        status_code=503,
        headers={"Retry-After": "30"},
    )
