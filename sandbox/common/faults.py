"""Fault injection and request counting: the outermost layer around every sandbox's API routes.

Shared by the Kukkingu and Jira sandboxes. Tests and benchmarks queue faults through
``POST /_sandbox/faults`` (see ``admin.py``) and read request counts from
``GET /_sandbox/requests``. Both are keyed by the route *template*
(``GET /api/v1/invoices/{invoiceId}``), so a test can say "the client listed billables once"
without knowing ids. A request that matches no route is keyed by its concrete path.

How an injected 500 or 429 *looks* (body, extra headers) is the sandbox's business: each
passes an :data:`Answer` that renders it in its API's own error shape.

Fault kinds:

``error500``, ``rate_limit``
    answer 500 / 429 (with ``Retry-After``) *before* the request reaches the API: nothing is
    stored.
``drop_after_commit``
    the request is fully processed (and stored); then the response is swallowed and the TCP
    connection is aborted, so the client gets no byte back. This is the "did my write land?"
    case billsync must reconcile.
``latency``
    every matching request first sleeps ``ms`` milliseconds, until the fault is cleared (or
    for ``count`` requests when a count is given).
``hold``
    every matching request (or ``count`` of them) is read whole and then held, unanswered and
    unprocessed, until the fault is released (``DELETE /_sandbox/faults``). A held request
    whose client goes away (killed) is dropped, never processed: the server had not started
    on it. ``held`` in the fault's listing says how many requests wait on it now, so a test
    can wait for "a sync is in the middle of its writes" as an event, not a guess in time.
``refuse`` (Kukkingu)
    a write whose JSON body carries ``reference_id`` (a billable's ``referenceId``, in a
    batch or alone) is refused with ``status`` (default 422) before it is processed:
    ``{"error": "UnprocessableEntity", "message": "billables[3].description: ..."}``. With
    ``name_item: false`` the message does not say which item (the client must bisect).
    Until cleared, unless a ``count`` is given.
``respond``
    answer ``status`` (default 200) with ``body`` (default empty) as ``content_type``
    (default ``text/html; charset=utf-8``) *before* the request reaches the API: nothing is
    stored. A broken proxy's HTML error page, an empty 200, truncated JSON.
``mangle``
    the request is fully processed (and stored); then its JSON answer is altered before it
    is sent: ``drop`` removes the dotted paths listed, ``replace`` sets dotted paths to new
    values (a ``*`` segment means every item of a list: ``data.*.status``), ``substitute``
    replaces each given text in the encoded body with the bytes given in hex (bytes no JSON
    value can carry: invalid UTF-8, a lone-surrogate escape), and ``truncate`` keeps only the
    first N bytes of the result. Status and headers are kept. Schema drift, broken text.

A request consumes at most one error500 / rate_limit / drop_after_commit / respond / mangle
fault: the oldest pending one that matches it (FIFO). Latency and hold faults are not consumed
by that rule; every matching latency adds its delay, and the oldest matching hold holds.
"""

from __future__ import annotations

import asyncio
import json
import re
import threading
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, model_validator
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

FaultKind = Literal[
    "error500", "rate_limit", "drop_after_commit", "latency", "hold", "refuse", "respond", "mangle"
]
UNCONSUMED = ("latency", "hold", "refuse")  # kinds that apply until cleared unless counted


class FaultMatch(BaseModel):
    """Which requests a fault may hit; an absent key matches anything."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    method: str | None = None
    route: str | None = None

    def hits(self, method: str, route: str) -> bool:
        return (self.method is None or self.method.upper() == method.upper()) and (
            self.route is None or self.route == route
        )


class FaultSpec(BaseModel):
    """The JSON body of ``POST /_sandbox/faults``."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    kind: FaultKind
    count: int | None = Field(default=None, ge=1)
    retry_after: int | None = Field(default=None, ge=0)
    ms: int | None = Field(default=None, ge=0)
    # respond
    status: int | None = Field(default=None, ge=100, le=599)
    body: str | None = None
    content_type: str | None = None
    # mangle
    drop: list[str] | None = None
    replace: dict[str, Any] | None = None
    substitute: dict[str, str] | None = None  # text in the body -> hex of its replacement
    truncate: int | None = Field(default=None, ge=0)
    # refuse
    reference_id: str | None = None
    name_item: bool | None = None
    match: FaultMatch = FaultMatch()

    @model_validator(mode="after")
    def _fields_fit_kind(self) -> Self:
        if (self.ms is not None) != (self.kind == "latency"):
            raise ValueError("ms is required for latency faults and only allowed there")
        if self.retry_after is not None and self.kind != "rate_limit":
            raise ValueError("retry_after is only allowed for rate_limit faults")
        if (self.reference_id is not None) != (self.kind == "refuse"):
            raise ValueError("reference_id is required for refuse faults and only allowed there")
        if self.name_item is not None and self.kind != "refuse":
            raise ValueError("name_item is only allowed for refuse faults")
        if self.kind == "refuse" and self.status is not None and self.status not in (400, 422):
            raise ValueError("a refuse fault answers 400 or 422")
        responding = (self.body, self.content_type)
        if self.kind != "respond" and any(x is not None for x in responding):
            raise ValueError("body and content_type are only allowed for respond faults")
        if self.status is not None and self.kind not in ("respond", "refuse"):
            raise ValueError("status is only allowed for respond and refuse faults")
        mangling = (self.drop, self.replace, self.substitute, self.truncate)
        if self.kind != "mangle" and any(x is not None for x in mangling):
            raise ValueError(
                "drop, replace, substitute and truncate are only allowed for mangle faults"
            )
        if self.kind == "mangle" and all(x is None for x in mangling):
            raise ValueError("a mangle fault needs drop, replace, substitute or truncate")
        for text, replacement in (self.substitute or {}).items():
            if not text:
                raise ValueError("substitute: the text to replace must not be empty")
            try:
                bytes.fromhex(replacement)
            except ValueError:
                raise ValueError(f"substitute: {replacement!r} is not hex") from None
        return self


@dataclass
class Fault:
    """A pending fault; ``remaining`` None means "until cleared" (latency or hold without
    count). A hold fault also counts the requests it ``held`` now, and is ``released`` when
    cleared (the requests it holds then go on)."""

    id: int
    spec: FaultSpec
    remaining: int | None
    held: int = 0
    released: bool = False

    def to_json(self) -> dict[str, Any]:
        shown: dict[str, Any] = {
            "id": self.id,
            **self.spec.model_dump(exclude_none=True),
            "remaining": self.remaining,
        }
        if self.spec.kind == "hold":
            shown["held"] = self.held
        return shown


class FaultPlan:
    """The queue of pending faults, shared between the server thread and the tests."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._faults: list[Fault] = []
        self._next_id = 1

    def add(self, spec: FaultSpec) -> Fault:
        remaining = spec.count if spec.count is not None or spec.kind in UNCONSUMED else 1
        with self._lock:
            fault = Fault(id=self._next_id, spec=spec, remaining=remaining)
            self._next_id += 1
            self._faults.append(fault)
            return fault

    def clear(self) -> None:
        """Forget every pending fault; the requests a hold fault holds go on."""
        with self._lock:
            for fault in self._faults:
                fault.released = True
            self._faults.clear()

    def held(self) -> int:
        """How many requests hold faults hold right now."""
        with self._lock:
            return sum(fault.held for fault in self._faults)

    def hold(self, fault: Fault, change: int) -> None:
        with self._lock:
            fault.held += change

    def pending(self) -> list[dict[str, Any]]:
        with self._lock:
            return [fault.to_json() for fault in self._faults]

    def refusing(self, method: str, route: str) -> list[FaultSpec]:
        """The refuse faults a write with a body may meet (they look at the body)."""
        with self._lock:
            return [
                fault.spec
                for fault in self._faults
                if fault.spec.kind == "refuse"
                and fault.remaining != 0
                and method.upper() in ("POST", "PUT", "PATCH")
                and fault.spec.match.hits(method, route)
            ]

    def refused(self, spec: FaultSpec) -> None:
        """A refuse fault refused a request: count it down."""
        with self._lock:
            for fault in self._faults:
                if fault.spec is spec and fault.remaining is not None:
                    fault.remaining = max(0, fault.remaining - 1)

    def take(self, method: str, route: str) -> tuple[FaultSpec | None, float, Fault | None]:
        """Consume the faults this request meets: (the answering fault, seconds of delay,
        the hold fault that holds it)."""
        with self._lock:
            delay = 0.0
            answer: FaultSpec | None = None
            holding: Fault | None = None
            for fault in list(self._faults):
                if not fault.spec.match.hits(method, route) or fault.spec.kind == "refuse":
                    continue
                if fault.spec.kind == "latency":
                    delay += (fault.spec.ms or 0) / 1000
                elif fault.spec.kind == "hold":
                    if holding is not None or fault.remaining == 0:
                        continue
                    holding = fault
                elif answer is None:
                    answer = fault.spec
                else:
                    continue
                if fault.remaining is not None:
                    fault.remaining -= 1
                    if fault.remaining == 0 and fault.spec.kind != "hold":
                        self._faults.remove(fault)
            return answer, delay, holding


class RequestCounter:
    """Requests seen per ``"METHOD /route/template"``."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts: Counter[str] = Counter()

    def record(self, key: str) -> None:
        with self._lock:
            self._counts[key] += 1

    def snapshot(self) -> dict[str, int]:
        with self._lock:
            return dict(sorted(self._counts.items()))

    def reset(self) -> None:
        with self._lock:
            self._counts.clear()


RouteResolver = Callable[[Scope], str | None]
Answer = Callable[[FaultSpec], Response]
"""Renders the response of an ``error500`` or ``rate_limit`` fault."""


def default_retry_after(spec: FaultSpec) -> int:
    """The ``Retry-After`` seconds of a rate_limit fault (1 unless the spec says otherwise)."""
    return 1 if spec.retry_after is None else spec.retry_after


def respond_answer(spec: FaultSpec) -> Response:
    """The fixed answer of a ``respond`` fault."""
    return Response(
        (spec.body or "").encode("utf-8", "surrogatepass"),
        status_code=200 if spec.status is None else spec.status,
        media_type=spec.content_type or "text/html; charset=utf-8",
    )


def _walk(node: Any, path: list[str], leaf: Callable[[Any, str], None]) -> None:
    """Apply ``leaf(container, last segment)`` at every place ``path`` reaches in ``node``."""
    head, rest = path[0], path[1:]
    if head == "*" and isinstance(node, list):
        children: list[Any] = list(node)
    elif isinstance(node, dict) and head in node and rest:
        children = [node[head]]
    elif isinstance(node, list) and head.isdigit() and int(head) < len(node) and rest:
        children = [node[int(head)]]
    else:
        children = []
    if not rest:
        if head == "*" and isinstance(node, list):
            for index in range(len(node)):
                leaf(node, str(index))
        else:
            leaf(node, head)
        return
    for child in children:
        _walk(child, rest, leaf)


def mangle_body(spec: FaultSpec, body: bytes) -> bytes:
    """A JSON answer altered as a ``mangle`` fault says (a body that is not JSON is only
    substituted and truncated)."""
    try:
        document = json.loads(body)
    except ValueError:
        document = None
    else:

        def drop(container: Any, last: str) -> None:
            if isinstance(container, dict):
                container.pop(last, None)

        for path in spec.drop or []:
            _walk(document, path.split("."), drop)
        for path, value in (spec.replace or {}).items():

            def put(container: Any, last: str, value: Any = value) -> None:
                if isinstance(container, dict):
                    container[last] = value
                elif isinstance(container, list) and last.isdigit() and int(last) < len(container):
                    container[int(last)] = value

            _walk(document, path.split("."), put)
        body = json.dumps(document, separators=(",", ":")).encode()
    for text, replacement in (spec.substitute or {}).items():
        body = body.replace(text.encode(), bytes.fromhex(replacement))
    return body if spec.truncate is None else body[: spec.truncate]


class FaultInjector:
    """ASGI wrapper: counts each request, applies latency, then answers, drops or passes on."""

    def __init__(
        self,
        app: ASGIApp,
        plan: FaultPlan,
        counter: RequestCounter,
        resolve: RouteResolver,
        answer: Answer,
    ) -> None:
        self.app = app
        self.plan = plan
        self.counter = counter
        self.resolve = resolve
        self.answer = answer

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        method: str = scope["method"]
        route = self.resolve(scope) or scope["path"]
        self.counter.record(f"{method} {route}")
        fault, delay, holding = self.plan.take(method, route)
        if delay:
            await asyncio.sleep(delay)
        if holding is not None:
            replayed = await self._hold(holding, receive)
            if replayed is None:
                return  # the client went away while held: the request is never processed
            receive = replayed
        refusing = self.plan.refusing(method, route)
        if refusing:
            replayed, refusal = await self._refuse(refusing, receive)
            if refusal is not None:
                await refusal(scope, replayed, send)
                return
            receive = replayed
        if fault is None:
            await self.app(scope, receive, send)
        elif fault.kind in ("error500", "rate_limit"):
            await self.answer(fault)(scope, receive, send)
        elif fault.kind == "respond":
            await respond_answer(fault)(scope, receive, send)
        elif fault.kind == "mangle":
            await self._mangle(fault, scope, receive, send)
        else:
            await self._drop_after_commit(scope, receive, send)

    async def _hold(self, fault: Fault, receive: Receive) -> Receive | None:
        """Read the request whole, then wait until ``fault`` is released. Returns a
        ``receive`` that replays the body, or None if the client disconnected meanwhile."""
        chunks: list[bytes] = []
        more = True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                return None
            chunks.append(message.get("body", b""))
            more = bool(message.get("more_body", False))
        # with the body read, the server's next message is the client's disconnect
        gone = asyncio.ensure_future(receive())
        self.plan.hold(fault, +1)
        try:
            while not fault.released:
                done, _ = await asyncio.wait({gone}, timeout=0.05)
                if done:
                    return None
        finally:
            self.plan.hold(fault, -1)
        gone.cancel()
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": b"".join(chunks), "more_body": False}
            return await receive()

        return replay

    async def _refuse(
        self, faults: list[FaultSpec], receive: Receive
    ) -> tuple[Receive, Response | None]:
        """Read the body; the refusal of the first fault whose reference it carries, if any,
        and a ``receive`` that replays the body."""
        chunks: list[bytes] = []
        more = True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                break
            chunks.append(message.get("body", b""))
            more = bool(message.get("more_body", False))
        body = b"".join(chunks)
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        try:
            document = json.loads(body) if body else None
        except ValueError:
            return replay, None
        items = document.get("billables") if isinstance(document, dict) else None
        for spec in faults:
            where: str | None = None
            if isinstance(items, list):
                for index, item in enumerate(items):
                    if isinstance(item, dict) and item.get("referenceId") == spec.reference_id:
                        where = f"billables[{index}]"
                        break
            elif isinstance(document, dict) and document.get("referenceId") == spec.reference_id:
                where = "body"
            if where is None:
                continue
            self.plan.refused(spec)
            status = spec.status or 422
            text = f"referenceId {spec.reference_id}: refused by the sandbox (injected fault)"
            if spec.name_item is not False:
                text = f"{where}.{text}"
            code = "UnprocessableEntity" if status == 422 else "BadRequest"
            return replay, JSONResponse({"error": code, "message": text}, status_code=status)
        return replay, None

    async def _mangle(self, fault: FaultSpec, scope: Scope, receive: Receive, send: Send) -> None:
        start: Message | None = None
        chunks: list[bytes] = []

        async def collect(message: Message) -> None:
            nonlocal start
            if message["type"] == "http.response.start":
                start = message
            elif message["type"] == "http.response.body":
                chunks.append(message.get("body", b""))

        await self.app(scope, receive, collect)
        if start is None:
            raise RuntimeError("the app sent no response to mangle")
        body = mangle_body(fault, b"".join(chunks))
        headers = [(k, v) for k, v in start.get("headers", []) if k.lower() != b"content-length"]
        headers.append((b"content-length", str(len(body)).encode()))
        await send({**start, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    async def _drop_after_commit(self, scope: Scope, receive: Receive, send: Send) -> None:
        # uvicorn's ``send`` is a bound method of its per-request cycle, which owns the
        # transport; that is the only handle on the socket an ASGI app can reach.
        cycle = getattr(send, "__self__", None)
        transport = getattr(cycle, "transport", None)
        if transport is None:
            raise RuntimeError("drop_after_commit needs the app to be served by uvicorn")

        async def swallow(message: Message) -> None:
            return None

        await self.app(scope, receive, swallow)
        transport.abort()
        # Let the loop run connection_lost(), so uvicorn marks the cycle disconnected and
        # does not try to answer "returned without starting response" with a 500.
        for _ in range(100):
            if getattr(cycle, "disconnected", True):
                break
            await asyncio.sleep(0)


def route_template(routes: Sequence[BaseRoute], scope: Scope) -> str | None:
    """The template of the route a request hits, converters dropped (``{id:int}`` ->
    ``{id}``): the first full match, else the first path match with another method."""
    partial: str | None = None
    for route in routes:
        match, _ = route.matches(scope)
        path = getattr(route, "path", None)
        if path is None:
            continue
        template = re.sub(r"\{(\w+):\w+\}", r"{\1}", str(path))
        if match is Match.FULL:
            return template
        if match is Match.PARTIAL and partial is None:
            partial = template
    return partial
