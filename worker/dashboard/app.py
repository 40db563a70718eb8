"""The operator dashboard: server-rendered pages, a JSON API and ``/metrics``.

``create_app`` builds the FastAPI app from the settings and its seams: the session
``factory`` (read-only use; see :func:`worker.store.make_engine` ``sqlite_immediate=False``),
an optional ``redis`` client (for "running now" / "queued"), ``enqueue`` (default:
:func:`worker.tasks.enqueue`) and ``clock``. Login and CSRF are in :mod:`.auth` and
:mod:`.csrf`; the numbers come from :mod:`.queries` and :mod:`.metrics`.

Nothing secret is rendered: templates get query results and URLs with the password hidden.
"""

from __future__ import annotations

import logging
import re
import secrets
from collections.abc import Awaitable, Callable
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from time import monotonic as time_monotonic
from typing import Any
from urllib.parse import parse_qs, quote, urlencode
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from fastapi import FastAPI, HTTPException, Request
from fastapi.responses import JSONResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates
from markupsafe import Markup, escape
from redis import Redis
from redis.exceptions import RedisError
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker
from starlette.middleware.trustedhost import TrustedHostMiddleware

from worker.config import Settings
from worker.core.pricing import BIDI_CONTROLS
from worker.dashboard import csrf, metrics, queries
from worker.dashboard.auth import (
    LOOPBACK,
    SESSION_COOKIE,
    Credentials,
    LoginThrottle,
    Revoked,
    SessionCodec,
)
from worker.dashboard.hooks import HookState, MemoryHookState, RedisHookState, add_hook_routes
from worker.dashboard.names import (
    ContractName,
    ContractNames,
    Fetch,
    entry_link,
    invoice_link,
    issue_link,
    line_link,
)
from worker.locks import pending_key, running_key

log = logging.getLogger("billsync.dashboard")

Enqueue = Callable[[str, str], Any]
Clock = Callable[[], datetime]
TEMPLATES = Path(__file__).parent / "templates"
RUN_STATUSES = ("running", "succeeded", "failed")
RUN_TRIGGERS = ("schedule", "on_demand", "cli", "webhook")
MAX_ID = 2**63 - 1  # the largest id a store can hold: a larger one names nothing (404)
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'unsafe-inline'; img-src 'self' data:; "
        "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
}


def strip_bidi(value: Any) -> Any:
    """``value`` without bidirectional control characters, if it is text (what a page shows
    comes from sources and Kukkingu too, not only from billsync's own descriptions)."""
    return value.translate(BIDI_CONTROLS) if isinstance(value, str) else value


def allowed_hosts(configured: list[str], host: str) -> list[str]:
    """The ``Host`` names the dashboard answers: the configured ones, else the loopback names
    when it listens on loopback (DNS rebinding gets a 400), else its own address, or any
    name when it listens on every interface."""
    if configured:
        return configured
    if host in LOOPBACK:
        return sorted(LOOPBACK - {"::1"})
    if host in ("0.0.0.0", "::"):  # noqa: S104 - compared, not bound
        return ["*"]
    return [host]


def safe_url(url: str) -> str:
    """A database or broker URL with its password hidden."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return url.split(":", 1)[0] + "://…"


def _default_enqueue(settings: Settings) -> Enqueue:
    configured = False

    def enqueue(source: str, trigger: str) -> str:
        nonlocal configured
        from worker import tasks

        if not configured:
            tasks.configure(settings)
            configured = True
        return tasks.enqueue(source, trigger)

    return enqueue


def humanize(seconds: float | None) -> str:
    if seconds is None:
        return "–"
    seconds = abs(seconds)
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size:
            return f"{seconds / size:.0f} {unit}" if unit != "h" else f"{seconds / size:.1f} h"
    return f"{seconds:.0f} s"


def _zone(request: Request, default: ZoneInfo) -> ZoneInfo:
    name = request.query_params.get("tz")
    if name:
        try:
            return ZoneInfo(name)
        except (ZoneInfoNotFoundError, ValueError):
            pass
    return default


COUNT_LABELS = {
    "entriesSeen": "Entries read",
    "entriesNew": "New entries",
    "entriesChanged": "Changed entries",
    "entriesDeleted": "Deleted entries",
    "badEntries": "Bad entries",
    "linesCreated": "Lines created",
    "linesAdopted": "Lines adopted (written before, answer lost)",
    "linesUpdated": "Lines updated",
    "linesRejected": "Lines Kukkingu refused",
    "draftsCreated": "Draft invoices created",
    "draftsUpdated": "Draft totals updated",
    "problems": "Open problems (unmapped work)",
    "drift": "Open drift",
}


def count_label(key: str) -> str:
    """A run's count key in words: ``badEntries`` -> "Bad entries"."""
    if key in COUNT_LABELS:
        return COUNT_LABELS[key]
    words = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", " ", key).lower()
    return words[:1].upper() + words[1:]


def create_app(
    settings: Settings,
    *,
    factory: sessionmaker[Session],
    redis: Redis | None = None,
    enqueue: Enqueue | None = None,
    clock: Clock | None = None,
    host: str | None = None,
    insecure_no_auth: bool = False,
    session_key: bytes | None = None,
    inline_syncs: bool = False,
    names: ContractNames | None = None,
) -> FastAPI:
    """The dashboard app; raises :class:`~.auth.DashboardAuthError` if it would be open.

    ``inline_syncs``: ``enqueue`` runs the sync itself, in this process (the demo, which
    has no broker and no beat): "Sync now" says so, and no broker or next run is shown."""
    credentials = Credentials.from_settings(
        settings, host=host or settings.file.dashboard.host, insecure_no_auth=insecure_no_auth
    )
    codec = SessionCodec(session_key)
    send = enqueue or _default_enqueue(settings)
    now: Clock = clock or (lambda: datetime.now(UTC))
    templates = Jinja2Templates(directory=str(TEMPLATES))
    templates.env.filters["ago"] = humanize
    templates.env.filters["count_label"] = count_label
    templates.env.finalize = strip_bidi  # every {{ value }} of every page
    contract_names = names or ContractNames(_kukkingu_names(settings), clock=time_monotonic)
    sources = {s.name: (str(s.kind), s.url) for s in settings.file.sources}

    def contract_label(contract_id: str) -> str:
        """A contract's name and its client's, from Kukkingu; the id while unknown."""
        found = contract_names.get().get(contract_id)
        if found is None:
            return contract_id
        return f"{found.contract} ({found.client})" if found.client else found.contract

    def issue_url(source: str | None, reference_id: str) -> str | None:
        kind, url = sources.get(source or "", ("", None))
        return issue_link(kind, url, reference_id)

    def line_url(source: str | None, reference_id: str) -> str | None:
        kind, url = sources.get(source or "", ("", None))
        return line_link(kind, url, reference_id)

    def entry_url(source: str | None, issue: str | None, key: str) -> str | None:
        kind, url = sources.get(source or "", ("", None))
        return entry_link(kind, url, issue, key)

    def invoice_url(kukkingu_id: str | None, number: str) -> str | None:
        return invoice_link(settings.file.dashboard.invoice_url, kukkingu_id, number)

    templates.env.globals.update(
        contract_label=contract_label,
        issue_url=issue_url,
        line_url=line_url,
        entry_url=entry_url,
        invoice_url=invoice_url,
    )
    throttle = LoginThrottle()
    revoked = Revoked(clock=lambda: now().timestamp())
    app = FastAPI(title="billsync dashboard", docs_url=None, redoc_url=None, openapi_url=None)
    configured = [(s.name, s.kind, s.schedule) for s in settings.file.sources]
    source_names = {name for name, _, _ in configured}
    footer = {"state": safe_url(settings.state_url)}
    if not inline_syncs:
        footer["broker"] = safe_url(settings.broker_url)

    hook_state: HookState | None = None
    if redis is not None:
        hook_state = RedisHookState(redis)
    elif inline_syncs:
        hook_state = MemoryHookState()
    add_hook_routes(app, settings, factory=factory, state=hook_state, send=send)

    @app.middleware("http")
    async def session_middleware(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        session = codec.loads(request.cookies.get(SESSION_COOKIE), now=now().timestamp())
        if session.get("sid") in revoked:
            session = {}  # logged out: a copy of the cookie is worth nothing either
        before = dict(session)
        request.state.session = session
        header = request.headers.get("authorization")
        header_user = None
        if header and not credentials.insecure_no_auth:
            client = client_of(request)
            if (wait := throttle.retry_after(client)) is not None:
                return too_many(wait)
            header_user = credentials.from_header(header)
            if header_user is None:
                throttle.failed(client)
                log.warning("wrong credentials in an Authorization header from %s", client)
        if credentials.insecure_no_auth:
            request.state.user = "local"
        else:
            request.state.user = header_user or session.get("user")
        response = await call_next(request)
        response.headers.update(SECURITY_HEADERS)
        if request.state.user and request.url.path != "/healthz":
            response.headers["Cache-Control"] = "no-store"  # nothing behind the login is kept
        if session != before:
            session["exp"] = now().timestamp() + codec.max_age
            response.set_cookie(
                SESSION_COOKIE,
                codec.dumps(session),
                max_age=codec.max_age,
                httponly=True,
                samesite="lax",
                secure=request.url.scheme == "https",
            )
        return response

    # --- helpers ------------------------------------------------------------------------

    def client_of(request: Request) -> str:
        return request.client.host if request.client is not None else "unknown"

    def too_many(wait: float) -> Response:
        seconds = max(1, round(wait + 0.5))
        return JSONResponse(
            {"detail": f"too many wrong credentials: try again in {seconds} s"},
            status_code=429,
            headers={"Retry-After": str(seconds), **SECURITY_HEADERS},
        )

    def existing(kind: str, value: int) -> int:
        """``value`` as an id, or 404 when no store could hold it."""
        if not 1 <= value <= MAX_ID:
            raise HTTPException(404, f"no {kind} {value}")
        return value

    def session_of(request: Request) -> dict[str, Any]:
        state: dict[str, Any] = request.state.session
        return state

    def require_api(request: Request) -> None:
        if not request.state.user:
            raise HTTPException(
                401, "login required", headers={"WWW-Authenticate": 'Bearer realm="billsync"'}
            )

    def page_login(request: Request) -> Response | None:
        if request.state.user:
            return None
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        return RedirectResponse(f"/login?next={quote(target)}", status_code=303)

    async def checked_post(request: Request) -> dict[str, list[str]]:
        """The form of an authenticated POST whose CSRF token matches, else 401/403."""
        require_api(request)
        form = parse_qs((await request.body()).decode("utf-8", "replace"))
        if csrf.bearer_request(request.headers.get("authorization")) and request.state.user:
            return form
        if not csrf.valid(session_of(request), (form.get(csrf.FIELD) or [""])[0]):
            raise HTTPException(403, "CSRF token missing or wrong: reload the page and try again")
        return form

    def render(request: Request, name: str, status_code: int = 200, **context: Any) -> Response:
        zone = _zone(request, settings.timezone)
        tz_param = request.query_params.get("tz")

        def when(value: datetime | None) -> Markup:
            if value is None:
                return Markup("–")
            utc = value.astimezone(UTC).isoformat()
            local = value.astimezone(zone).strftime("%Y-%m-%d %H:%M %Z")
            return Markup('<time datetime="{0}" title="{0}">{1}</time>').format(utc, local)

        def link(path: str, **params: Any) -> str:
            query = {k: v for k, v in params.items() if v}
            if tz_param:
                query["tz"] = tz_param
            return path + (f"?{urlencode(query)}" if query else "")

        session = session_of(request)
        return templates.TemplateResponse(
            request,
            name,
            {
                "csrf_field": Markup('<input type="hidden" name="{}" value="{}">').format(
                    csrf.FIELD, escape(csrf.ensure_token(session))
                ),
                "flash": session.pop("flash", None),
                # a page that asks (a run in progress) or just after "Sync now" / "Retry"
                "refresh": bool(context.pop("refresh", False) or session.pop("follow", False)),
                "user": request.state.user,
                "when": when,
                "link": link,
                "zone": str(zone),
                "footer": footer if request.state.user else None,  # nothing before the login
                "inline": inline_syncs,
                "path": request.url.path,
                **context,
            },
            status_code=status_code,
        )

    def live_state() -> tuple[dict[str, str], str | None]:
        if redis is None:
            return {}, None
        live: dict[str, str] = {}
        try:
            for name in source_names:
                if redis.exists(running_key(name)):
                    live[name] = "running"
                elif redis.exists(pending_key(name)):
                    live[name] = "queued"
        except RedisError as exc:
            return live, f"Redis did not answer ({type(exc).__name__}): running/queued unknown"
        return live, None

    def overview_data(request: Request) -> queries.Overview:
        live, problem = live_state()
        with factory() as session:
            data = queries.overview(
                session, configured, now=now(), zone=_zone(request, settings.timezone), live=live
            )
        if problem:
            data.attention.insert(0, queries.Attention("error", problem, "/"))
        return data

    def run_filters(request: Request) -> dict[str, str | None]:
        params = request.query_params
        return {
            "source": params.get("source") or None,
            "status": params.get("status") if params.get("status") in RUN_STATUSES else None,
            "trigger": params.get("trigger") if params.get("trigger") in RUN_TRIGGERS else None,
            "from": params.get("from") or None,
            "to": params.get("to") or None,
        }

    def run_window(
        request: Request, filters: dict[str, str | None]
    ) -> tuple[datetime | None, datetime | None, list[str]]:
        """The ``from`` and ``to`` days (inclusive, in the page's time zone) as instants,
        and what was wrong with them."""
        zone = _zone(request, settings.timezone)
        bounds: list[datetime | None] = []
        wrong = []
        for name, extra in (("from", 0), ("to", 1)):
            value = filters[name]
            try:
                day = date.fromisoformat(value) if value else None
            except ValueError:
                wrong.append(f"{name}: {value!r} is not a date (write YYYY-MM-DD); ignored")
                filters[name] = day = None
            start = None if day is None else datetime.combine(day, time(), zone)
            bounds.append(None if start is None else start + timedelta(days=extra))
        return bounds[0], bounds[1], wrong

    def runs_of(request: Request) -> tuple[list[queries.RunRow], bool, dict[str, Any]]:
        """The page of runs the query asks for, whether an older page exists, and the
        filters (with ``page`` and any error) to show."""
        filters: dict[str, Any] = run_filters(request)
        since, until, wrong = run_window(request, filters)
        limit = limit_of(request)
        try:
            page = max(1, int(request.query_params.get("page", "1")))
        except ValueError:
            page = 1
        with factory() as session:
            rows = queries.runs(
                session,
                source=filters["source"],
                status=filters["status"],
                trigger=filters["trigger"],
                since=since,
                until=until,
                limit=limit + 1,  # one more: is there an older page?
                offset=(page - 1) * limit,
            )
        given = request.query_params.get("limit")  # kept in the pager's links when given
        return (
            rows[:limit],
            len(rows) > limit,
            {**filters, "page": page, "limit": str(limit) if given else None, "errors": wrong},
        )

    def limit_of(request: Request) -> int:
        try:
            return max(1, min(1000, int(request.query_params.get("limit", queries.RUN_LIMIT))))
        except ValueError:
            return queries.RUN_LIMIT

    def queue(request: Request, source: str, what: str) -> Response:
        try:
            task_id = send(source, "on_demand")
        except Exception as exc:  # the broker is down: say so, never its URL
            log.warning("could not enqueue %s: %s", source, type(exc).__name__)
            message = f"could not queue {what}: the broker did not answer ({type(exc).__name__})"
            if csrf.bearer_request(request.headers.get("authorization")):
                return JSONResponse({"error": message}, status_code=503)
            session_of(request)["flash"] = message
        else:
            if csrf.bearer_request(request.headers.get("authorization")):
                return JSONResponse({"queued": source, "task_id": str(task_id)}, status_code=202)
            session_of(request)["flash"] = (
                f"started here, without a queue: {what}; its run shows under Runs"
                if inline_syncs
                else f"queued: {what}"
            )
            session_of(request)["follow"] = True  # the next page refreshes until it ends
        back = request.headers.get("referer") or "/"
        return RedirectResponse(back if _local_path(back, request) else "/", status_code=303)

    # --- login ---------------------------------------------------------------------------

    @app.get("/login")
    def login_form(request: Request) -> Response:
        return render(request, "login.html", next=_next(request.query_params.get("next")))

    @app.post("/login")
    async def login(request: Request) -> Response:
        form = parse_qs((await request.body()).decode("utf-8", "replace"))

        def field(name: str) -> str:
            return (form.get(name) or [""])[0]

        session = session_of(request)
        if not csrf.valid(session, field(csrf.FIELD)):
            raise HTTPException(403, "CSRF token missing or wrong: reload the page and try again")
        client = client_of(request)
        if (wait := throttle.retry_after(client)) is not None:
            log.warning("login from %s refused: too many wrong credentials", client)
            return render(
                request,
                "login.html",
                429,
                next=_next(field("next")),
                error=f"Too many wrong credentials: try again in {max(1, round(wait + 0.5))} s.",
            )
        user = None
        if field("token") and credentials.check_token(field("token")):
            user = "token"
        elif field("username") and credentials.check_password(field("username"), field("password")):
            user = field("username")
        if user is None:
            throttle.failed(client)
            log.warning("wrong credentials in the login form from %s", client)
            return render(
                request, "login.html", 401, next=_next(field("next")), error="Wrong credentials."
            )
        session.clear()
        session["user"] = user
        session["sid"] = secrets.token_urlsafe(16)  # what logging out revokes
        session["csrf"] = csrf.new_token()  # a new session, a new token
        return RedirectResponse(_next(field("next")), status_code=303)

    @app.post("/logout")
    async def logout(request: Request) -> Response:
        await checked_post(request)
        session = session_of(request)
        if isinstance(sid := session.get("sid"), str):
            revoked.revoke(sid, float(session.get("exp", now().timestamp() + codec.max_age)))
        session.clear()
        return RedirectResponse("/login", status_code=303)

    # --- health and metrics ---------------------------------------------------------------

    @app.get("/healthz")
    def healthz() -> Response:
        try:
            with factory() as session:
                session.execute(text("SELECT 1"))
        except SQLAlchemyError as exc:
            log.warning("health check: the state store did not answer: %s", type(exc).__name__)
            return JSONResponse({"status": "unavailable", "database": "down"}, status_code=503)
        return JSONResponse({"status": "ok"})

    @app.get("/metrics")
    def metrics_endpoint(request: Request) -> Response:
        require_api(request)
        return Response(metrics.render(factory, now()), media_type=metrics.CONTENT_TYPE)

    # --- pages ----------------------------------------------------------------------------

    @app.get("/")
    def overview_page(request: Request) -> Response:
        if (redirect := page_login(request)) is not None:
            return redirect
        data = overview_data(request)
        busy = any(s.status in ("running", "queued") for s in data.sources)
        return render(
            request, "overview.html", overview=data, chart=_chart(data.chart), refresh=busy
        )

    @app.get("/runs")
    def runs_page(request: Request) -> Response:
        if (redirect := page_login(request)) is not None:
            return redirect
        rows, older, filters = runs_of(request)
        return render(
            request,
            "runs.html",
            runs=rows,
            older=older,
            filters=filters,
            refresh=any(r.status == "running" for r in rows),
            sources=sorted(source_names),
            statuses=RUN_STATUSES,
            triggers=RUN_TRIGGERS,
        )

    @app.get("/runs/{run_id}")
    def run_page(request: Request, run_id: int) -> Response:
        if (redirect := page_login(request)) is not None:
            return redirect
        with factory() as session:
            row = queries.run(session, existing("run", run_id))
        if row is None:
            raise HTTPException(404, f"no run {run_id}")
        return render(request, "run.html", run=row, refresh=row.status == "running")

    @app.post("/sources/{name}/sync")
    async def sync_now(request: Request, name: str) -> Response:
        await checked_post(request)
        if name not in source_names:
            raise HTTPException(404, f"no configured source named {name!r}")
        return queue(request, name, f"a sync of {name}")

    @app.post("/runs/{run_id}/retry")
    async def retry(request: Request, run_id: int) -> Response:
        await checked_post(request)
        with factory() as session:
            row = queries.run(session, existing("run", run_id))
        if row is None:
            raise HTTPException(404, f"no run {run_id}")
        if row.status not in ("failed", "interrupted"):
            raise HTTPException(
                409,
                f"run {run_id} neither failed nor was interrupted ({row.status}): nothing to retry",
            )
        if row.source is None or row.source not in source_names:
            raise HTTPException(409, f"run {run_id}'s source is not configured any more")
        return queue(request, row.source, f"a retry of run {run_id} ({row.source})")

    @app.get("/drafts")
    def drafts_page(request: Request) -> Response:
        if (redirect := page_login(request)) is not None:
            return redirect
        with factory() as session:
            rows = queries.drafts(session)
            totals = queries.draft_totals(rows, session)
        return render(request, "drafts.html", drafts=rows, totals=totals)

    @app.get("/drafts/{draft_id}")
    def draft_page(request: Request, draft_id: int) -> Response:
        if (redirect := page_login(request)) is not None:
            return redirect
        with factory() as session:
            found = queries.draft(session, existing("draft", draft_id))
        if found is None:
            raise HTTPException(404, f"no draft {draft_id}")
        return render(request, "draft.html", draft=found[0], lines=found[1])

    @app.get("/problems")
    def problems_page(request: Request) -> Response:
        if (redirect := page_login(request)) is not None:
            return redirect
        with factory() as session:
            data = queries.problems(session)
        return render(request, "problems.html", problems=data)

    @app.get("/prices")
    def prices_page(request: Request) -> Response:
        if (redirect := page_login(request)) is not None:
            return redirect
        with factory() as session:
            data = queries.prices(session, settings)
        return render(request, "prices.html", prices=data, now=now())

    @app.get("/drift")
    def drift_page(request: Request) -> Response:
        if (redirect := page_login(request)) is not None:
            return redirect
        with factory() as session:
            rows = queries.drift(session)
        return render(request, "drift.html", drift=rows)

    @app.post("/drift/{drift_id}/acknowledge")
    async def acknowledge_drift(request: Request, drift_id: int) -> Response:
        """The operator has seen a drift row (and corrected the finalized invoice by hand):
        record who and when. Acknowledging twice keeps the first."""
        await checked_post(request)
        who = str(request.state.user)
        with factory() as session, session.begin():
            row = queries.acknowledge_drift(session, existing("drift row", drift_id), who, now())
        if row is None:
            raise HTTPException(404, f"no drift row {drift_id}")
        log.info("drift row %d acknowledged by %s", drift_id, who)
        if csrf.bearer_request(request.headers.get("authorization")):
            return JSONResponse(queries.jsonable(row))
        session_of(request)["flash"] = f"drift row {drift_id} acknowledged"
        back = request.headers.get("referer") or "/drift"
        return RedirectResponse(back if _local_path(back, request) else "/drift", status_code=303)

    # --- the JSON API ---------------------------------------------------------------------

    @app.get("/api/overview")
    def api_overview(request: Request) -> Any:
        require_api(request)
        return queries.jsonable(overview_data(request))

    @app.get("/api/runs")
    def api_runs(request: Request) -> Any:
        require_api(request)
        rows, older, filters = runs_of(request)
        if filters["errors"]:
            raise HTTPException(400, "; ".join(filters["errors"]))
        return {"runs": queries.jsonable(rows), "page": filters["page"], "older": older}

    @app.get("/api/runs/{run_id}")
    def api_run(request: Request, run_id: int) -> Any:
        require_api(request)
        with factory() as session:
            row = queries.run(session, existing("run", run_id))
        if row is None:
            raise HTTPException(404, f"no run {run_id}")
        return queries.jsonable(row)

    @app.get("/api/drafts")
    def api_drafts(request: Request) -> Any:
        require_api(request)
        with factory() as session:
            rows = queries.drafts(session)
            totals = queries.draft_totals(rows, session)
        return {"drafts": queries.jsonable(rows), "totals": totals}

    @app.get("/api/drafts/{draft_id}")
    def api_draft(request: Request, draft_id: int) -> Any:
        require_api(request)
        with factory() as session:
            found = queries.draft(session, existing("draft", draft_id))
        if found is None:
            raise HTTPException(404, f"no draft {draft_id}")
        return {"draft": queries.jsonable(found[0]), "lines": queries.jsonable(found[1])}

    @app.get("/api/problems")
    def api_problems(request: Request) -> Any:
        require_api(request)
        with factory() as session:
            return queries.jsonable(queries.problems(session))

    @app.get("/api/prices")
    def api_prices(request: Request) -> Any:
        require_api(request)
        with factory() as session:
            return queries.jsonable(queries.prices(session, settings))

    @app.get("/api/drift")
    def api_drift(request: Request) -> Any:
        require_api(request)
        with factory() as session:
            return {"drift": queries.jsonable(queries.drift(session))}

    app.add_middleware(
        TrustedHostMiddleware,
        allowed_hosts=allowed_hosts(
            settings.file.dashboard.allowed_hosts, host or settings.file.dashboard.host
        ),
    )
    return app


def _next(target: str | None) -> str:
    """Where to go after login: a local path only (never another site)."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    return target


def _local_path(url: str, request: Request) -> bool:
    base = str(request.base_url)
    return url.startswith(base) or (url.startswith("/") and not url.startswith("//"))


def _kukkingu_names(settings: Settings) -> Fetch:
    """Fetch contract and client names from Kukkingu: one try each, a short timeout (a page
    waits on it)."""

    def fetch() -> dict[str, ContractName]:
        from worker.clients import kukkingu_client

        with kukkingu_client(settings, attempts=1, timeout=5.0) as client:
            clients = {c.id: c.name for c in client.list_clients()}
            return {
                c.id: ContractName(c.name, clients.get(c.client)) for c in client.list_contracts()
            }

    return fetch


def _chart(days: list[queries.DayBar]) -> dict[str, Any]:
    """Bar geometry for the inline SVG: runs and lines per day, each scaled to its maximum."""
    height, width = 100, 24
    top_runs = max((d.runs for d in days), default=0) or 1
    top_lines = max((d.lines for d in days), default=0) or 1
    bars = []
    for index, day in enumerate(days):
        runs_h = round(height * day.runs / top_runs)
        failed_h = round(height * day.failed / top_runs)
        lines_h = round(height * day.lines / top_lines)
        bars.append(
            {
                "x": index * width,
                "day": day.day.isoformat(),
                "label": day.day.strftime("%d"),
                "runs": day.runs,
                "failed": day.failed,
                "lines": day.lines,
                "runs_h": runs_h,
                "failed_h": failed_h,
                "lines_h": lines_h,
            }
        )
    return {
        "bars": bars,
        "width": width * len(days),
        "height": height,
        "top_runs": top_runs,  # the axes' top values: runs on the left, lines on the right
        "top_lines": top_lines,
        "empty": not any(d.runs for d in days),
    }
