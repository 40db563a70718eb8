"""The dashboard over real HTTP (httpx, uvicorn on loopback), on a real migrated SQLite store."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import Browser
from redis import Redis
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from sandbox.server import ServerThread
from tests.support.redis import RedisServer
from worker.config import Settings, parse_config
from worker.dashboard import DashboardAuthError, create_app
from worker.locks import pending_key, running_key
from worker.store import (
    Cursor,
    Draft,
    DraftStatus,
    Drift,
    DriftKind,
    Entry,
    EntryState,
    Error,
    ErrorKind,
    Line,
    LineState,
    Run,
    RunStatus,
    RunTrigger,
    Source,
    SourceIssue,
    SourceKind,
    make_engine,
    session_factory,
    transaction,
    upgrade,
)

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
TENANT = "tnt_" + "a" * 24
CONTRACT = "ctr_" + "b" * 24
DASH_TOKEN = "dash-token-Zq81xv-secret"
PASSWORD = "pw-Lk2093-secret"
KK_TOKEN = "kukkingu-token-Qw77-secret"
SRC_TOKEN = "source-token-Jh55-secret"
BROKER_PASSWORD = "brokerpw-Xy31-secret"
SECRETS = (DASH_TOKEN, PASSWORD, KK_TOKEN, SRC_TOKEN, BROKER_PASSWORD)
PAGES = ("/", "/runs", "/drafts", "/problems", "/drift", "/prices", "/login")
API = ("/api/overview", "/api/runs", "/api/drafts", "/api/problems", "/api/drift", "/api/prices")


def make_settings(state_url: str, *, dashboard: dict[str, Any] | None = None) -> Settings:
    data = {
        "state": {"url": state_url},
        "broker": {"url": f"redis://:{BROKER_PASSWORD}@127.0.0.1:1/0"},
        "billing": {"timezone": "Europe/Helsinki"},
        "kukkingu": {"base_url": "http://127.0.0.1:1", "tenant_id": TENANT, "token_env": "KK"},
        "sources": [
            {
                "name": "acme-jira",
                "kind": "jira",
                "url": "http://127.0.0.1:2",
                "email_env": "EMAIL",
                "token_env": "SRC",
                "schedule": "*/15 * * * *",
            },
            {"name": "gh", "kind": "github", "token_env": "SRC", "schedule": "0 6 * * 1-5"},
        ],
        "dashboard": dashboard
        if dashboard is not None
        else {"token_env": "DASH", "username": "ops", "password_env": "PW"},
    }
    environ = {"KK": KK_TOKEN, "SRC": SRC_TOKEN, "EMAIL": "ops@example.com", "DASH": DASH_TOKEN}
    environ["PW"] = PASSWORD
    return parse_config(data, environ=environ)


@dataclass
class Store:
    url: str
    factory: sessionmaker[Session]
    ids: dict[str, int] = field(default_factory=dict)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    url = f"sqlite:///{tmp_path / 'state.db'}"
    upgrade(url)
    engine = make_engine(url, sqlite_immediate=False)
    yield Store(url, session_factory(engine))
    engine.dispose()


def populate(store: Store) -> dict[str, int]:
    """Two sources, three runs (one failed), two drafts, a bad entry, unmapped work, drift."""
    writer = make_engine(store.url)
    ids: dict[str, int] = {}
    try:
        with transaction(session_factory(writer)) as s:
            jira = Source(
                name="acme-jira", kind=SourceKind.JIRA, last_success_at=NOW - timedelta(hours=3)
            )
            gh = Source(name="gh", kind=SourceKind.GITHUB, last_success_at=NOW - timedelta(hours=1))
            s.add_all([jira, gh])
            s.flush()
            s.add(
                Cursor(
                    source=jira,
                    stream="worklogs",
                    value=(NOW - timedelta(minutes=30)).isoformat(),
                    updated_at=NOW - timedelta(minutes=5),
                )
            )
            ok = Run(
                source=jira,
                trigger=RunTrigger.SCHEDULE,
                status=RunStatus.SUCCEEDED,
                started_at=NOW - timedelta(hours=3),
                finished_at=NOW - timedelta(hours=3) + timedelta(seconds=42),
                counts={"entriesSeen": 12, "linesCreated": 3, "linesUpdated": 1},
                requests={"kukkingu": {"POST /billables": 2, "GET /invoices": 1}},
            )
            failed = Run(
                source=jira,
                trigger=RunTrigger.ON_DEMAND,
                status=RunStatus.FAILED,
                started_at=NOW - timedelta(hours=2),
                finished_at=NOW - timedelta(hours=2) + timedelta(seconds=5),
                counts={"entriesSeen": 0},
                error=(
                    "RetryableError: Kukkingu answered 503 three times;"
                    " the last body said <b>down</b>"
                ),
            )
            gh_ok = Run(
                source=gh,
                trigger=RunTrigger.CLI,
                status=RunStatus.SUCCEEDED,
                started_at=NOW - timedelta(days=1),
                finished_at=NOW - timedelta(days=1) + timedelta(seconds=9),
                counts={"entriesSeen": 4, "linesCreated": 2, "linesAdopted": 1, "linesUpdated": 5},
            )
            s.add_all([ok, failed, gh_ok])
            open_draft = Draft(
                contract_id=CONTRACT,
                currency="EUR",
                period="2026-11",
                seq=1,
                invoice_number="ACME-2026-11-1",
                kukkingu_id="inv_1",
                status=DraftStatus.DRAFT,
                exchange_rate=Decimal(1),
                amount_minor=39000,
            )
            final = Draft(
                contract_id=CONTRACT,
                currency="EUR",
                period="2026-10",
                seq=1,
                invoice_number="ACME-2026-10-1",
                kukkingu_id="inv_0",
                status=DraftStatus.FINALIZED,
                exchange_rate=Decimal(1),
                amount_minor=19500,
            )
            s.add_all([open_draft, final])
            s.flush()

            def line(draft: Draft, pos: int, ref: str, amount: int, **kw: Any) -> Line:
                return Line(
                    draft=draft,
                    contract_id=CONTRACT,
                    currency="EUR",
                    period=kw.pop("period", draft.period),
                    reference_type="jira_issue",
                    reference_id=ref,
                    position=pos,
                    quantity=Decimal("1.50"),
                    amount_minor=amount,
                    description=f"{ref} work",
                    state=kw.pop("state", LineState.SYNCED),
                    source=jira,
                    group_key=f'["{ref}"]',
                    **kw,
                )

            late = line(open_draft, 0, "ACME-1", 19500, late=True, period="2026-10")
            zero = line(open_draft, 1, "ACME-2", 0, state=LineState.ZEROED)
            old = line(final, 0, "ACME-3", 19500, state=LineState.FROZEN)
            s.add_all([late, zero, old])
            issue = SourceIssue(
                source=jira,
                external_id="20001",
                key="INT-7",
                project="INT",
                summary="Internal tooling",
            )
            s.add(issue)

            def entry(key: str, **kw: Any) -> Entry:
                return Entry(key=key, source=jira, content_hash="h" * 64, **kw)

            good = entry(
                "jira:acme:worklog:1",
                external_issue_id="10001",
                author="a",
                started_at=NOW,
                seconds=3600,
                state=EntryState.ACTIVE,
            )
            un1 = entry(
                "jira:acme:worklog:2",
                external_issue_id="20001",
                author="a",
                started_at=NOW,
                seconds=1800,
                state=EntryState.ACTIVE,
            )
            un2 = entry(
                "jira:acme:worklog:3",
                external_issue_id="20001",
                author="b",
                started_at=NOW,
                seconds=1800,
                state=EntryState.ACTIVE,
            )
            bad = entry(
                "jira:acme:worklog:4", state=EntryState.BAD, bad_reason="negative time spent"
            )
            s.add_all([good, un1, un2, bad])
            s.flush()
            s.add_all(
                [
                    Error(
                        source=jira,
                        kind=ErrorKind.UNMAPPED,
                        subject=un1.key,
                        reason="no rule for INT",
                    ),
                    Error(
                        source=jira,
                        kind=ErrorKind.UNMAPPED,
                        subject=un2.key,
                        reason="no rule for INT",
                    ),
                    Error(
                        source=jira,
                        kind=ErrorKind.BAD_ENTRY,
                        subject=bad.key,
                        reason="negative time spent",
                    ),
                    Error(
                        source=jira,
                        kind=ErrorKind.BAD_ENTRY,
                        subject="gone",
                        reason="old",
                        resolved_at=NOW,
                    ),
                    Drift(line=old, entry=good, kind=DriftKind.LESS_TIME, seconds_delta=-1800),
                ]
            )
            s.flush()
            ids.update(
                ok=ok.id, failed=failed.id, gh_ok=gh_ok.id, open_draft=open_draft.id, final=final.id
            )
    finally:
        writer.dispose()
    store.ids = ids
    return ids


class Recorder:
    def __init__(self) -> None:
        self.calls: list[tuple[str, str]] = []

    def __call__(self, source: str, trigger: str) -> str:
        self.calls.append((source, trigger))
        return f"task-{len(self.calls)}"


Serve = Callable[..., httpx.Client]


@pytest.fixture
def serve() -> Iterator[Serve]:
    """Starts the dashboard on a real uvicorn (loopback, any free port); an httpx client for it."""
    running: list[tuple[ServerThread, httpx.Client]] = []

    def start(store: Store, recorder: Recorder | None = None, **kwargs: Any) -> httpx.Client:
        settings = kwargs.pop("settings", None) or make_settings(store.url)
        factory = kwargs.pop("factory", None) or store.factory
        kwargs.setdefault("enqueue", recorder or Recorder())
        app = create_app(settings, factory=factory, clock=lambda: NOW, **kwargs)
        server = ServerThread(app).start()
        client = httpx.Client(base_url=server.url, timeout=10)
        running.append((server, client))
        return client

    yield start
    for server, client in running:
        client.close()
        server.stop()


BEARER = {"Authorization": f"Bearer {DASH_TOKEN}"}


def csrf_of(html: str) -> str:
    match = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert match, "no CSRF field in the page"
    return match.group(1)


def login(client: httpx.Client) -> str:
    """Log in through the form; returns the session's CSRF token."""
    token = csrf_of(client.get("/login").text)
    response = client.post(
        "/login", data={"csrf_token": token, "token": DASH_TOKEN, "next": "/runs"}
    )
    assert response.status_code == 303
    assert response.headers["location"] == "/runs"
    return csrf_of(client.get("/").text)


# --- login ----------------------------------------------------------------------------------


@pytest.mark.parametrize("path", [p for p in PAGES if p != "/login"])
def test_pages_redirect_to_login_without_credentials(serve: Serve, store: Store, path: str) -> None:
    response = serve(store).get(path)
    assert response.status_code == 303
    assert response.headers["location"].startswith("/login?next=")


@pytest.mark.parametrize("path", [*API, "/metrics", "/api/runs/1"])
def test_api_needs_a_token(serve: Serve, store: Store, path: str) -> None:
    client = serve(store)
    assert client.get(path).status_code == 401
    assert client.get(path, headers={"Authorization": "Bearer wrong"}).status_code == 401
    assert client.get(path, headers={"Authorization": f"Bearer {DASH_TOKEN}x"}).status_code == 401


def test_bearer_token_and_basic_auth_work(serve: Serve, store: Store) -> None:
    populate(store)
    client = serve(store)
    assert client.get("/api/overview", headers=BEARER).status_code == 200
    assert client.get("/runs", auth=("ops", PASSWORD)).status_code == 200
    assert client.get("/runs", auth=("ops", "nope")).status_code == 303
    assert client.get("/runs", auth=("root", PASSWORD)).status_code == 303


def test_login_form_sets_a_session_and_logout_ends_it(serve: Serve, store: Store) -> None:
    client = serve(store)
    token = login(client)
    assert client.get("/runs").status_code == 200
    assert client.post("/logout", data={"csrf_token": token}).status_code == 303
    assert client.get("/runs").status_code == 303


def test_login_with_username_and_password(serve: Serve, store: Store) -> None:
    client = serve(store)
    token = csrf_of(client.get("/login").text)
    response = client.post(
        "/login", data={"csrf_token": token, "username": "ops", "password": PASSWORD}
    )
    assert response.status_code == 303
    assert response.headers["location"] == "/"


@pytest.mark.parametrize("form", [{"token": "wrong"}, {"username": "ops", "password": "wrong"}, {}])
def test_wrong_credentials_are_refused(serve: Serve, store: Store, form: dict[str, str]) -> None:
    client = serve(store)
    token = csrf_of(client.get("/login").text)
    response = client.post("/login", data={"csrf_token": token, **form})
    assert response.status_code == 401
    assert "Wrong credentials" in response.text
    assert client.get("/").status_code == 303


def test_login_never_redirects_to_another_site(serve: Serve, store: Store) -> None:
    client = serve(store)
    token = csrf_of(client.get("/login").text)
    response = client.post(
        "/login", data={"csrf_token": token, "token": DASH_TOKEN, "next": "//evil.example/"}
    )
    assert response.headers["location"] == "/"


def test_a_forged_session_cookie_is_ignored(serve: Serve, store: Store) -> None:
    client = serve(store)
    client.cookies.set("billsync_session", "eyJ1c2VyIjoidG9rZW4ifQ==.00")
    assert client.get("/").status_code == 303


def test_no_login_configured_refuses_to_start(serve: Serve, store: Store) -> None:
    settings = make_settings(store.url, dashboard={})
    with pytest.raises(DashboardAuthError, match="no login"):
        create_app(settings, factory=store.factory)
    with pytest.raises(DashboardAuthError, match=r"only allowed on 127\.0\.0\.1"):
        create_app(settings, factory=store.factory, host="0.0.0.0", insecure_no_auth=True)  # noqa: S104
    client = serve(store, settings=settings, insecure_no_auth=True)
    assert client.get("/").status_code == 200
    assert client.get("/api/runs").status_code == 200


# --- CSRF and actions -----------------------------------------------------------------------


def test_sync_now_needs_the_csrf_token(serve: Serve, store: Store) -> None:
    populate(store)
    recorder = Recorder()
    client = serve(store, recorder)
    token = login(client)
    assert client.post("/sources/gh/sync").status_code == 403
    assert client.post("/sources/gh/sync", data={"csrf_token": "forged"}).status_code == 403
    assert recorder.calls == []
    response = client.post("/sources/gh/sync", data={"csrf_token": token})
    assert response.status_code == 303
    assert recorder.calls == [("gh", "on_demand")]
    assert "queued: a sync of gh" in client.get("/").text
    assert "queued: a sync of gh" not in client.get("/").text  # a flash shows once


def test_a_post_without_login_is_refused(serve: Serve, store: Store) -> None:
    recorder = Recorder()
    client = serve(store, recorder)
    token = csrf_of(client.get("/login").text)
    assert client.post("/sources/gh/sync", data={"csrf_token": token}).status_code == 401
    assert recorder.calls == []


def test_basic_auth_posts_need_csrf_too(serve: Serve, store: Store) -> None:
    recorder = Recorder()
    client = serve(store, recorder)
    assert client.post("/sources/gh/sync", auth=("ops", PASSWORD)).status_code == 403
    token = csrf_of(client.get("/", auth=("ops", PASSWORD)).text)
    response = client.post("/sources/gh/sync", data={"csrf_token": token}, auth=("ops", PASSWORD))
    assert response.status_code == 303
    assert recorder.calls == [("gh", "on_demand")]


def test_bearer_posts_are_json_and_need_no_csrf(serve: Serve, store: Store) -> None:
    recorder = Recorder()
    response = serve(store, recorder).post("/sources/acme-jira/sync", headers=BEARER)
    assert response.status_code == 202
    assert response.json() == {"queued": "acme-jira", "task_id": "task-1"}


def test_login_form_needs_csrf(serve: Serve, store: Store) -> None:
    client = serve(store)
    assert client.post("/login", data={"token": DASH_TOKEN}).status_code == 403


def test_sync_of_an_unknown_source_is_404(serve: Serve, store: Store) -> None:
    client = serve(store)
    token = login(client)
    assert client.post("/sources/nope/sync", data={"csrf_token": token}).status_code == 404


def test_retry_a_failed_run_enqueues_a_succeeded_one_is_409(serve: Serve, store: Store) -> None:
    ids = populate(store)
    recorder = Recorder()
    client = serve(store, recorder)
    token = login(client)
    page = client.get(f"/runs/{ids['failed']}").text
    assert f'action="/runs/{ids["failed"]}/retry"' in page
    assert client.post(f"/runs/{ids['failed']}/retry", data={"csrf_token": "x"}).status_code == 403
    assert (
        client.post(f"/runs/{ids['failed']}/retry", data={"csrf_token": token}).status_code == 303
    )
    assert recorder.calls == [("acme-jira", "on_demand")]
    assert client.post(f"/runs/{ids['ok']}/retry", data={"csrf_token": token}).status_code == 409
    assert client.post("/runs/999/retry", data={"csrf_token": token}).status_code == 404
    assert recorder.calls == [("acme-jira", "on_demand")]


def test_an_interrupted_run_can_be_retried_and_a_retrying_one_shows_its_next_attempt(
    serve: Serve, store: Store
) -> None:
    populate(store)
    retry_at = datetime(2026, 12, 2, 10, 30, tzinfo=UTC)
    with transaction(store.factory) as session:
        source_id = session.scalars(select(Source.id).where(Source.name == "acme-jira")).one()
        rows = {
            status: Run(
                source_id=source_id,
                trigger=RunTrigger.SCHEDULE,
                status=status,
                finished_at=datetime(2026, 12, 2, 10, 0, tzinfo=UTC),
                error="interrupted: its process (host:42) stopped without ending the run",
                retry_at=retry_at if status == RunStatus.RETRYING else None,
            )
            for status in (RunStatus.INTERRUPTED, RunStatus.RETRYING)
        }
        session.add_all(rows.values())
        session.flush()
        ids = {status: run.id for status, run in rows.items()}
    recorder = Recorder()
    client = serve(store, recorder)
    token = login(client)
    interrupted = client.get(f"/runs/{ids[RunStatus.INTERRUPTED]}").text
    assert "interrupted" in interrupted
    assert f'action="/runs/{ids[RunStatus.INTERRUPTED]}/retry"' in interrupted
    retried = client.post(f"/runs/{ids[RunStatus.INTERRUPTED]}/retry", data={"csrf_token": token})
    assert retried.status_code == 303
    assert recorder.calls == [("acme-jira", "on_demand")]
    waiting = client.get(f"/runs/{ids[RunStatus.RETRYING]}").text
    assert "Next attempt" in waiting
    assert "/retry" not in waiting  # its retry is already due
    refused = client.post(f"/runs/{ids[RunStatus.RETRYING]}/retry", data={"csrf_token": token})
    assert refused.status_code == 409


def test_a_broker_failure_is_reported_without_its_url(serve: Serve, store: Store) -> None:
    def broken(source: str, trigger: str) -> str:
        raise ConnectionError(f"redis://:{BROKER_PASSWORD}@127.0.0.1:1/0 refused")

    client = serve(store, enqueue=broken)
    token = login(client)
    client.post("/sources/gh/sync", data={"csrf_token": token})
    page = client.get("/").text
    assert "could not queue a sync of gh" in page
    assert BROKER_PASSWORD not in page


# --- pages with data and without ------------------------------------------------------------


def test_every_page_renders_with_data_and_no_secret(serve: Serve, store: Store) -> None:
    ids = populate(store)
    client = serve(store)
    login(client)
    paths = [*PAGES, f"/runs/{ids['failed']}", f"/runs/{ids['ok']}", f"/drafts/{ids['open_draft']}"]
    pages = {path: client.get(path) for path in paths}
    for path, response in pages.items():
        assert response.status_code == 200, path
        for secret in SECRETS:
            assert secret not in response.text, (path, secret)
    for path in API:
        response = client.get(path, headers=BEARER)
        assert response.status_code == 200
        for secret in SECRETS:
            assert secret not in response.text
    assert "redis://:***@127.0.0.1:1/0" in pages["/"].text
    assert "ACME-2026-11-1" in pages["/drafts"].text
    assert "2/100" in pages["/drafts"].text
    assert "390.00 EUR" in pages["/drafts"].text  # 195.00 + 0 + 195.00 across both drafts
    assert "195.00 EUR" in pages[f"/drafts/{ids['open_draft']}"].text
    assert ">late<" in pages[f"/drafts/{ids['open_draft']}"].text
    assert ">zeroed<" in pages[f"/drafts/{ids['open_draft']}"].text
    problems = pages["/problems"].text
    assert "INT-7" in problems
    assert "Internal tooling" in problems
    assert "INT: 2" in problems
    assert "negative time spent" in problems
    assert "old" not in re.findall(r"<td>([^<]*)</td>", problems)  # resolved: not shown
    assert "-0.50 h" in pages["/drift"].text
    run_page = pages[f"/runs/{ids['failed']}"].text
    assert "the last body said &lt;b&gt;down&lt;/b&gt;" in run_page  # full text, escaped
    ok_page = pages[f"/runs/{ids['ok']}"].text
    assert "kukkingu POST /billables" in ok_page
    assert "42.0 s" in ok_page
    assert "<svg" in pages["/"].text


def test_times_are_local_with_utc_in_the_markup(serve: Serve, store: Store) -> None:
    populate(store)
    client = serve(store)
    login(client)
    page = client.get("/runs").text
    # The failed run: 10:00 UTC is 12:00 in Helsinki (EET, UTC+2).
    assert (
        '<time datetime="2026-11-20T10:00:00+00:00" title="2026-11-20T10:00:00+00:00">'
        "2026-11-20 12:00 EET</time>" in page
    )
    other = client.get("/runs?tz=America/New_York").text
    assert "2026-11-20 05:00 EST" in other
    assert "tz=America%2FNew_York" in other  # links keep the zone


def test_the_overview_marks_a_failing_source_and_what_needs_a_human(
    serve: Serve, store: Store
) -> None:
    populate(store)
    client = serve(store)
    login(client)
    page = client.get("/").text
    attention = page.split("Needs attention", 1)[1].split("<h2>Sources", 1)[0]
    assert "source acme-jira: its last run failed" in attention
    assert "2 time entries match no rule" in attention
    assert "1 bad time entries" in attention
    assert "1 drift row(s)" in attention
    row = page.split('id="source-acme-jira"', 1)[1].split("</tr>", 1)[0]
    assert '<tr id="source-acme-jira" class="needs-attention">' in page
    assert 'class="badge failing"' in row
    assert "30 min ago" in row  # cursor lag from the cursor's timestamp value
    assert "2026-11-20 14:15 EET" in row  # next */15 run after 12:00 UTC
    gh = page.split('id="source-gh"', 1)[1].split("</tr>", 1)[0]
    assert 'class="badge ok"' in gh
    assert "2026-11-23 06:00 EET" in gh  # the next weekday 06:00 (20 Nov 2026 is a Friday)
    data = client.get("/api/overview", headers=BEARER).json()
    statuses = {s["name"]: s["status"] for s in data["sources"]}
    assert statuses == {"acme-jira": "failing", "gh": "ok"}


def test_every_page_renders_empty_with_a_hint(serve: Serve, store: Store) -> None:
    client = serve(store)
    login(client)
    hints = {
        "/": "never run",
        "/runs": "No runs yet: press Sync now",
        "/drafts": "No draft invoices yet",
        "/problems": "No unmapped work",
        "/drift": "No drift",
    }
    for path, hint in hints.items():
        response = client.get(path)
        assert response.status_code == 200
        assert hint in response.text, path
    assert "No runs yet: press Sync now or wait for the schedule" in client.get("/").text
    assert "No bad entries" in client.get("/problems").text
    for path in API:
        assert client.get(path, headers=BEARER).status_code == 200
    assert client.get("/runs/1").status_code == 404
    assert client.get("/api/drafts/1", headers=BEARER).status_code == 404


def test_runs_filters(serve: Serve, store: Store) -> None:
    ids = populate(store)
    client = serve(store)

    def run_ids(query: str) -> list[int]:
        response = client.get(f"/api/runs{query}", headers=BEARER)
        return [r["id"] for r in response.json()["runs"]]

    assert run_ids("") == [ids["failed"], ids["ok"], ids["gh_ok"]]
    assert run_ids("?source=gh") == [ids["gh_ok"]]
    assert run_ids("?status=failed") == [ids["failed"]]
    assert run_ids("?trigger=schedule") == [ids["ok"]]
    assert run_ids("?limit=1") == [ids["failed"]]
    login(client)
    assert "No runs match these filters" in client.get("/runs?source=gh&status=failed").text


def test_api_mirrors_the_pages(serve: Serve, store: Store) -> None:
    ids = populate(store)
    client = serve(store)
    run = client.get(f"/api/runs/{ids['ok']}", headers=BEARER).json()
    assert run["duration_seconds"] == 42.0
    assert run["requests"] == {"kukkingu": {"POST /billables": 2, "GET /invoices": 1}}
    drafts = client.get("/api/drafts", headers=BEARER).json()
    assert {d["invoice_number"]: d["lines"] for d in drafts["drafts"]} == {
        "ACME-2026-11-1": 2,
        "ACME-2026-10-1": 1,
    }
    assert drafts["totals"] == {"EUR": "390.00 EUR"}
    detail = client.get(f"/api/drafts/{ids['open_draft']}", headers=BEARER).json()
    assert [(x["reference"], x["late"], x["zeroed"]) for x in detail["lines"]] == [
        ("jira_issue:ACME-1", True, False),
        ("jira_issue:ACME-2", False, True),
    ]
    problems = client.get("/api/problems", headers=BEARER).json()
    assert problems["unmapped_by_project"] == {"INT": 2}
    assert problems["unmapped"][0]["seconds"] == 3600
    assert [b["reason"] for b in problems["bad_entries"]] == ["negative time spent"]
    drift = client.get("/api/drift", headers=BEARER).json()["drift"]
    assert [(d["kind"], d["seconds_delta"], d["entry"]) for d in drift] == [
        ("less_time", -1800, "jira:acme:worklog:1")
    ]


# --- Redis: running and queued --------------------------------------------------------------


def test_running_and_queued_come_from_redis(
    serve: Serve, store: Store, redis_server: RedisServer
) -> None:
    populate(store)
    redis = Redis.from_url(redis_server.url)
    try:
        redis.set(running_key("gh"), "host:1:task", ex=60)
        redis.set(pending_key("acme-jira"), "1", ex=60)
        client = serve(store, redis=redis)
        statuses = {
            s["name"]: s["status"]
            for s in client.get("/api/overview", headers=BEARER).json()["sources"]
        }
        assert statuses == {"acme-jira": "queued", "gh": "running"}
    finally:
        redis.delete(running_key("gh"), pending_key("acme-jira"))
        redis.close()


def test_an_unreachable_redis_is_shown_not_fatal(serve: Serve, store: Store) -> None:
    redis = Redis.from_url("redis://127.0.0.1:1/0", socket_connect_timeout=0.2)
    client = serve(store, redis=redis)
    login(client)
    page = client.get("/").text
    assert "Redis did not answer" in page


# --- health ---------------------------------------------------------------------------------


def test_healthz_needs_no_login(serve: Serve, store: Store) -> None:
    response = serve(store).get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_healthz_is_503_when_the_database_does_not_answer(
    serve: Serve, store: Store, tmp_path: Path
) -> None:
    missing = tmp_path / "no" / "such" / "dir" / "state.db"
    engine = make_engine(f"sqlite:///{missing}", sqlite_immediate=False)
    try:
        response = serve(store, factory=session_factory(engine)).get("/healthz")
        assert response.status_code == 503
        assert response.json()["status"] == "unavailable"
    finally:
        engine.dispose()


# --- attacks: logins, sessions, headers, hosts, ids, text (issue 14 items 8 and 9) -------------


def test_wrong_credentials_are_throttled_and_logged_without_them(
    serve: Serve, store: Store, caplog: pytest.LogCaptureFixture
) -> None:
    """Ten wrong tries from one address within a minute: the eleventh is refused even with
    the right token, in the form and in a header alike; the log names the address only."""
    client = serve(store)
    token = csrf_of(client.get("/login").text)
    with caplog.at_level("WARNING", logger="billsync.dashboard"):
        for n in range(10):
            wrong = {"csrf_token": token, "token": f"guess-{n}-{DASH_TOKEN}"}
            assert client.post("/login", data=wrong).status_code == 401
        right = client.post("/login", data={"csrf_token": token, "token": DASH_TOKEN})
        assert right.status_code == 429
        assert "Too many wrong credentials" in right.text
        header = client.get("/api/overview", headers=BEARER)
        assert header.status_code == 429
        assert int(header.headers["Retry-After"]) >= 1
    failures = [r.getMessage() for r in caplog.records if "wrong credentials" in r.getMessage()]
    assert len(failures) >= 10
    assert all("127.0.0.1" in message for message in failures)
    assert not any(DASH_TOKEN in record.getMessage() for record in caplog.records)


def test_logout_revokes_the_session_on_the_server(serve: Serve, store: Store) -> None:
    client = serve(store)
    token = login(client)
    copied = dict(client.cookies)
    assert client.post("/logout", data={"csrf_token": token}).status_code == 303
    thief = httpx.Client(base_url=str(client.base_url), cookies=copied, timeout=10)
    with thief:
        assert thief.get("/runs").status_code == 303  # the copy is logged out too


def test_the_login_page_shows_nothing_of_the_deployment(serve: Serve, store: Store) -> None:
    page = serve(store).get("/login").text
    assert "state.db" not in page
    assert "redis://" not in page
    assert "broker" not in page


def test_pages_send_security_headers_and_are_not_cached(serve: Serve, store: Store) -> None:
    client = serve(store)
    anonymous = client.get("/login")
    login(client)
    for response in (anonymous, client.get("/runs"), client.get("/api/runs", headers=BEARER)):
        assert "frame-ancestors 'none'" in response.headers["Content-Security-Policy"]
        assert response.headers["X-Content-Type-Options"] == "nosniff"
        assert response.headers["Referrer-Policy"] == "same-origin"
    assert client.get("/runs").headers["Cache-Control"] == "no-store"
    assert client.get("/api/runs", headers=BEARER).headers["Cache-Control"] == "no-store"


@pytest.mark.parametrize("insecure", [False, True])
def test_a_foreign_host_header_is_refused(serve: Serve, store: Store, insecure: bool) -> None:
    """DNS rebinding: a page of evil.example whose name now points at 127.0.0.1."""
    if insecure:
        settings = make_settings(store.url, dashboard={})
        client = serve(store, settings=settings, insecure_no_auth=True, host="127.0.0.1")
    else:
        client = serve(store)
    assert client.get("/api/runs", headers={"Host": "evil.example"}).status_code == 400
    assert client.get("/", headers={"Host": "evil.example:8780"}).status_code == 400
    assert client.get("/healthz").status_code == 200  # 127.0.0.1 itself


def test_an_id_no_store_can_hold_is_404(serve: Serve, store: Store) -> None:
    client = serve(store)
    login(client)
    huge = "99999999999999999999999"
    for path in (f"/runs/{huge}", f"/drafts/{huge}", "/runs/0", "/drafts/-1"):
        assert client.get(path).status_code == 404, path
    for path in (f"/api/runs/{huge}", f"/api/drafts/{huge}"):
        assert client.get(path, headers=BEARER).status_code == 404, path


def test_bidirectional_controls_are_not_shown(serve: Serve, store: Store) -> None:
    ids = populate(store)
    writer = make_engine(store.url)
    try:
        with transaction(session_factory(writer)) as s:
            line = s.scalars(select(Line).where(Line.draft_id == ids["open_draft"])).first()
            assert line is not None
            line.description = "ACME-1 pay \u202etnuocca\u202c now \u2066x\u2069"
    finally:
        writer.dispose()
    client = serve(store)
    login(client)
    page = client.get(f"/drafts/{ids['open_draft']}").text
    assert "ACME-1 pay tnuocca now x" in page
    assert not any(chr(c) in page for c in [*range(0x202A, 0x202F), *range(0x2066, 0x206A)])


# --- readable (issue 14 item 7) and the demo's inline syncs (item 6) ------------------------


def test_a_cursor_in_epoch_milliseconds_shows_as_a_date(serve: Serve, store: Store) -> None:
    populate(store)
    with transaction(store.factory) as s:
        gh = s.scalars(select(Source).where(Source.name == "gh")).one()
        # Jira's cursors are epoch milliseconds: 2026-11-20 10:00 UTC
        s.add(Cursor(source=gh, stream="issues", value="1795168800000", updated_at=NOW))
    client = serve(store)
    login(client)
    row = client.get("/").text.split('id="source-gh"', 1)[1].split("</tr>", 1)[0]
    cell = row.split('<td class="optional">', 1)[1].split("</td>", 1)[0]
    assert "1795168800000" not in cell
    assert '2026-11-20 12:00 EET</time> <span class="muted">(2.0 h ago)' in cell


def test_a_runs_counts_are_in_words(serve: Serve, store: Store) -> None:
    ids = populate(store)
    client = serve(store)
    login(client)
    page = client.get(f"/runs/{ids['ok']}").text
    assert "Entries read" in page
    assert "Lines created" in page
    assert "entriesSeen" not in page
    assert "linesCreated" not in page


def test_the_chart_has_axes_with_numbers(serve: Serve, store: Store) -> None:
    populate(store)
    client = serve(store)
    login(client)
    chart = client.get("/").text.split('<svg class="chart"', 1)[1].split("</svg>", 1)[0]
    numbers = re.findall(r"<text [^>]*>(\d+)</text>", chart)
    assert "0" in numbers  # the axes' base
    assert len(numbers) > 2  # their tops and the counts over the bars
    assert "left axis" in chart


def test_an_inline_dashboard_says_the_sync_ran_here_and_shows_no_broker(
    serve: Serve, store: Store
) -> None:
    populate(store)
    recorder = Recorder()
    client = serve(store, recorder, inline_syncs=True)
    token = login(client)
    page = client.get("/").text
    assert "redis://" not in page.split("<footer>", 1)[1]
    assert "no broker: syncs run here" in page
    assert "Next run" not in page  # the demo has no beat
    done = client.post(
        "/sources/acme-jira/sync", data={"csrf_token": token}, headers={"referer": "/"}
    )
    assert done.status_code == 303
    flash = client.get("/").text
    assert "started here, without a queue: a sync of acme-jira" in flash
    assert "queued:" not in flash
    assert recorder.calls == [("acme-jira", "on_demand")]
    # a queueing dashboard still says queued, and names its broker
    queueing = serve(store)
    login(queueing)
    assert "broker redis://" in queueing.get("/").text
    assert "Next run" in queueing.get("/").text


def test_a_long_unbroken_description_does_not_push_the_amounts_off_the_screen(
    serve: Serve, store: Store, browser: Browser
) -> None:
    ids = populate(store)
    with transaction(store.factory) as s:
        line = s.scalars(select(Line).where(Line.draft_id == ids["open_draft"])).first()
        assert line is not None
        line.description = "x" * 255  # Kukkingu's longest, without a place to break
    client = serve(store)
    page = browser.new_context(viewport={"width": 1280, "height": 900}).new_page()
    page.goto(f"{client.base_url}/login")
    page.fill("input[name=token]", DASH_TOKEN)
    page.click("button[type=submit]")
    page.goto(f"{client.base_url}/drafts/{ids['open_draft']}")
    cells = page.locator("td.num").all()
    assert cells
    for cell in cells:
        box = cell.bounding_box()
        assert box is not None
        assert box["x"] + box["width"] <= 1280, "an amount column is off the screen"
    page.context.close()


# --- problems: failed runs, drift acknowledged, metrics (issue 14 item 5) --------------------


def test_the_problems_page_lists_each_failing_sources_last_run(serve: Serve, store: Store) -> None:
    ids = populate(store)
    client = serve(store)
    login(client)
    page = client.get("/problems").text
    failed = page.split("<h2>Failed runs</h2>", 1)[1].split("</ul>", 1)[0]
    assert "acme-jira" in failed
    assert f'href="/runs/{ids["failed"]}"' in failed
    assert "Kukkingu answered 503 three times" in failed  # the message itself
    assert "<strong>gh</strong>" not in failed  # its last run succeeded
    overview = client.get("/").text
    assert '<a href="/problems">source acme-jira: its last run failed</a>' in overview


def test_a_drift_row_is_acknowledged_with_csrf_and_records_who_and_when(
    serve: Serve, store: Store
) -> None:
    populate(store)
    client = serve(store)
    token = login(client)
    drift_id = client.get("/api/drift", headers=BEARER).json()["drift"][0]["id"]
    assert (
        'billsync_open_drift{source="acme-jira"} 1.0' in client.get("/metrics", headers=BEARER).text
    )
    forged = client.post(f"/drift/{drift_id}/acknowledge", data={"csrf_token": "forged"})
    assert forged.status_code == 403
    done = client.post(f"/drift/{drift_id}/acknowledge", data={"csrf_token": token})
    assert done.status_code == 303
    page = client.get("/drift").text
    assert f"drift row {drift_id} acknowledged" in page  # the flash
    assert "by token" in page
    assert 'class="badge failing">open' not in page
    row = client.get("/api/drift", headers=BEARER).json()["drift"][0]
    assert row["acknowledged_by"] == "token"
    assert row["acknowledged_at"].startswith("2026-11-20T12:00")
    assert "drift row(s)" not in client.get("/").text  # nothing left to attend to
    metrics = client.get("/metrics", headers=BEARER).text
    assert "billsync_open_drift" in metrics
    assert 'billsync_open_drift{source="acme-jira"}' not in metrics
    assert client.post("/drift/999/acknowledge", data={"csrf_token": token}).status_code == 404


def test_metrics_count_open_problems_by_source_and_kind(serve: Serve, store: Store) -> None:
    populate(store)
    client = serve(store)
    metrics = client.get("/metrics", headers=BEARER).text
    assert 'billsync_open_problems{kind="unmapped",source="acme-jira"} 2.0' in metrics
    assert 'billsync_open_problems{kind="bad_entry",source="acme-jira"} 1.0' in metrics


# --- runs: paged, by date, refreshed while one is in progress (issue 14 item 6) -------------


def test_runs_are_paged_and_filtered_by_day(serve: Serve, store: Store) -> None:
    ids = populate(store)
    client = serve(store)

    def runs(query: str) -> tuple[list[int], bool]:
        data = client.get(f"/api/runs{query}", headers=BEARER).json()
        return [r["id"] for r in data["runs"]], data["older"]

    assert runs("?limit=1") == ([ids["failed"]], True)
    assert runs("?limit=1&page=2") == ([ids["ok"]], True)
    assert runs("?limit=1&page=3") == ([ids["gh_ok"]], False)
    # days in the dashboard's zone (Helsinki), both ends included
    assert runs("?from=2026-11-20") == ([ids["failed"], ids["ok"]], False)
    assert runs("?to=2026-11-19") == ([ids["gh_ok"]], False)
    assert runs("?from=2026-11-20&to=2026-11-20&source=acme-jira&limit=1") == (
        [ids["failed"]],
        True,
    )
    wrong = client.get("/api/runs?from=20.11.2026", headers=BEARER)
    assert wrong.status_code == 400
    assert "from: '20.11.2026' is not a date (write YYYY-MM-DD)" in wrong.json()["detail"]

    login(client)
    page = client.get("/runs?limit=1&page=2&source=acme-jira").text
    assert f'href="/runs/{ids["ok"]}"' in page
    # newer, keeping the filter and the page size
    assert 'href="/runs?page=1&amp;source=acme-jira&amp;limit=1"' in page
    assert "older &rarr;" not in page  # acme-jira has two runs
    shown = client.get("/runs?from=20.11.2026").text
    assert "is not a date (write YYYY-MM-DD); ignored" in shown
    assert f'href="/runs/{ids["gh_ok"]}"' in shown  # the filter was ignored, not guessed


def test_pages_refresh_while_a_run_is_in_progress_and_after_sync_now(
    serve: Serve, store: Store
) -> None:
    ids = populate(store)
    client = serve(store)
    token = login(client)
    refresh = '<meta http-equiv="refresh" content="5">'
    assert refresh not in client.get("/").text  # nothing in progress
    assert refresh not in client.get(f"/runs/{ids['ok']}").text
    client.post("/sources/gh/sync", data={"csrf_token": token}, headers={"referer": "/"})
    assert refresh in client.get("/").text  # just after Sync now
    with transaction(store.factory) as s:
        running = Run(
            source=s.scalars(select(Source).where(Source.name == "gh")).one(),
            trigger=RunTrigger.ON_DEMAND,
            status=RunStatus.RUNNING,
            started_at=NOW,
        )
        s.add(running)
        s.flush()
        running_id = running.id
    assert refresh in client.get("/").text  # gh's last run is in progress
    assert refresh in client.get(f"/runs/{running_id}").text
    assert refresh in client.get("/runs").text
    with transaction(store.factory) as s:
        s.get_one(Run, running_id).status = RunStatus.SUCCEEDED
    assert refresh not in client.get("/").text  # it ended: the page stays
