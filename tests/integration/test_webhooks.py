"""Webhooks end to end (SPEC §12), as processes: the sandboxes send signed webhooks of their
admin edits to a `billsync dashboard` process, which asks a `billsync worker` process (real
Redis, PostgreSQL state store) for a sync. No beat runs: what reaches Kukkingu got there
through a webhook alone."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Any

import httpx
import pytest
from redis import Redis
from sqlalchemy import create_engine, select
from sqlalchemy.orm import Session, sessionmaker

from connectors.kukkingu import KukkinguClient
from sandbox.common.webhooks import WebhookSender
from sandbox.main import RunningSandbox
from tests.support.billing import check_invariants, client_for, snapshot
from tests.support.postgres import free_port
from tests.support.service import Service, wait_until
from worker.store import Cursor, Run, Source, WebhookReport

SECRET = "webhook-sandbox-secret-0001"  # examples/sandbox.env
DEADLINE = 120.0  # seconds for an edit to reach Kukkingu on a loaded machine


@contextmanager
def webhooks_to_the_dashboard(service: Service, sandbox: RunningSandbox) -> Iterator[Service]:
    """The first sync done inline; then a worker and the dashboard (no beat), and the Jira
    and GitHub sandboxes sending their webhooks to the dashboard."""
    port = free_port()
    text = service.config.read_text().replace("port = 8780", f"port = {port}")
    service.config.write_text(text)
    first = service.sync()
    assert first.returncode == 0, first.stderr
    service.worker("w1")
    service.start("dashboard", "-v", "dashboard")  # -v: each webhook taken is logged
    url = f"http://127.0.0.1:{port}"

    def answering() -> bool:
        try:
            return httpx.get(f"{url}/healthz", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    wait_until(answering, DEADLINE, service, "the dashboard")
    jira_hooks = WebhookSender("jira", f"{url}/hooks/jira", SECRET)
    github_hooks = WebhookSender("github", f"{url}/hooks/github", SECRET)
    sandbox.jira_app.webhooks, sandbox.github_app.webhooks = jira_hooks, github_hooks
    try:
        yield service
    finally:
        jira_hooks.close()
        github_hooks.close()


@pytest.fixture
def hooked(service: Service, sandbox: RunningSandbox) -> Iterator[Service]:
    with webhooks_to_the_dashboard(service, sandbox) as running:
        yield running


@pytest.fixture
def kukkingu(sandbox: RunningSandbox) -> Iterator[KukkinguClient]:
    with client_for(sandbox.kukkingu.url) as client:
        yield client


@pytest.fixture
def factory(state_url: str) -> Iterator[sessionmaker[Session]]:
    engine = create_engine(state_url)
    yield sessionmaker(engine)
    engine.dispose()


def lines(kukkingu: KukkinguClient) -> dict[str, dict[str, Any]]:
    """Every line by reference (polled mid-sync too: an invoice's total may lag its lines
    until the sync's last step, so the invariants are checked once a test's sync ended)."""
    shot = snapshot(kukkingu)
    return {b["referenceId"]: b for items in shot.billables.values() for b in items}


def webhook_runs(factory: sessionmaker[Session], source: str) -> list[tuple[str, str]]:
    with factory() as session:
        rows = session.execute(
            select(Run.status, Run.error)
            .join(Source, Source.id == Run.source_id)
            .where(Source.name == source, Run.trigger == "webhook")
            .order_by(Run.id)
        )
        return [(str(status.value), error or "") for status, error in rows]


def test_a_worklog_edit_reaches_kukkingu_through_its_webhook_alone(
    hooked: Service,
    sandbox: RunningSandbox,
    kukkingu: KukkinguClient,
    factory: sessionmaker[Session],
) -> None:
    before = lines(kukkingu)
    # GLX bills one line per worklog: pick one and give it an hour more
    reference, line = next((r, b) for r, b in sorted(before.items()) if r.startswith("GLX-"))
    worklog_id = reference.split(":", 1)[1].split("@")[0]
    edited = httpx.put(
        f"{sandbox.jira.url}/_sandbox/worklogs/{worklog_id}",
        json={"timeSpentSeconds": line["metadata"]["rawSeconds"] + 3600},
        timeout=10,
    )
    assert edited.status_code == 200, edited.text

    def billed() -> bool:
        now = lines(kukkingu).get(reference)
        return now is not None and now["metadata"]["rawSeconds"] == (
            line["metadata"]["rawSeconds"] + 3600
        )

    # the worklog feed leaves out the last minute: only the webhook's report is this fast
    wait_until(billed, DEADLINE, hooked, "the edited worklog on its draft")
    # the line is written before the run's end is recorded: wait for the record
    wait_until(
        lambda: webhook_runs(factory, "jira-demo")[-1][0] != "running",
        DEADLINE,
        hooked,
        "the webhook run to end",
    )
    assert webhook_runs(factory, "jira-demo")[-1] == ("succeeded", "")
    assert {a.status for a in sandbox.jira_app.webhooks.log} == {202}  # type: ignore[union-attr]
    with factory() as session:  # the report was read, and removed with what it read
        assert session.scalars(select(WebhookReport)).all() == []
    assert check_invariants(snapshot(kukkingu)) == []
    for name in ("dashboard", "w1"):  # no secret in either process's log
        assert SECRET not in hooked.log(name)
    assert "jira webhook worklog_updated for jira-demo: sync requested" in hooked.log("dashboard")


def test_a_deleted_comment_is_applied_without_listing_its_issue_again(
    hooked: Service,
    sandbox: RunningSandbox,
    kukkingu: KukkinguClient,
    factory: sessionmaker[Session],
) -> None:
    state = sandbox.github_app.state
    number = next(i.number for i in state.repo_issues(state.repo("acme/website").id))
    key = f"acme/website#{number}"

    def seconds() -> int:  # on every invoice (one line a month)
        shot = snapshot(kukkingu)
        found = [b for items in shot.billables.values() for b in items]
        return sum(b["metadata"]["rawSeconds"] for b in found if b["referenceId"] == key)

    def spend(body: str, **more: str) -> int:
        posted = httpx.post(
            f"{sandbox.github.url}/_sandbox/comments",
            json={"repo": "acme/website", "issue": number, "body": body, **more},
            timeout=10,
        )
        assert posted.status_code == 200, posted.text
        comment_id: int = posted.json()["data"]["id"]
        return comment_id

    # first a line on an open draft for the issue (this month's), so that the next
    # comment's sync lists the issue's comments and records their exact count
    base = seconds()
    # written an hour ago: out of the overlap a sync re-reads behind its newest comment (a
    # comment written within it has the issue listed again anyway: it may hide a deletion)
    earlier = (state.clock.now() - timedelta(hours=1)).isoformat()
    spend("Kick-off.\n/spend 1h", created_at=earlier)
    wait_until(lambda: seconds() == base + 3600, DEADLINE, hooked, "the first comment's 1 h")
    added = spend("Pairing.\n/spend 3h")
    wait_until(lambda: seconds() == base + 4 * 3600, DEADLINE, hooked, "the comment's 3 h")
    runs_before = len(webhook_runs(factory, "github-demo"))
    assert runs_before >= 1
    issue_id = str(state.find_issue(state.repo("acme/website").id, number).id)  # type: ignore[union-attr]
    # the addition's sync listed the issue's comments: their ETag is recorded
    etag = cursor(factory, f"etag:{issue_id}")
    assert etag is not None
    count = cursor(factory, f"count:{issue_id}")
    gone = httpx.delete(f"{sandbox.github.url}/_sandbox/comments/{added}", timeout=10)
    assert gone.status_code == 204
    wait_until(lambda: seconds() == base + 3600, DEADLINE, hooked, "the 3 h taken off")
    assert len(webhook_runs(factory, "github-demo")) > runs_before
    # not listed again: a listing would have recorded the new ETag of the issue's comments;
    # the count the event gave is recorded instead
    assert cursor(factory, f"etag:{issue_id}") == etag
    assert cursor(factory, f"count:{issue_id}") == str(int(count or "0") - 1)
    with factory() as session:
        assert session.scalars(select(WebhookReport)).all() == []
    assert check_invariants(snapshot(kukkingu)) == []


def cursor(factory: sessionmaker[Session], stream: str) -> str | None:
    with factory() as session:
        value: str | None = session.scalar(
            select(Cursor.value)
            .join(Source, Source.id == Cursor.source_id)
            .where(Source.name == "github-demo", Cursor.stream == stream)
        )
        return value


def test_a_burst_of_fifty_comments_is_one_or_two_syncs(
    service: Service,
    sandbox: RunningSandbox,
    kukkingu: KukkinguClient,
    factory: sessionmaker[Session],
    redis: Redis,
) -> None:
    # a debounce long enough that the burst fits in it on a loaded machine
    text = service.config.read_text()
    service.config.write_text(text.replace("[webhooks]\n", "[webhooks]\ndebounce_seconds = 5\n"))
    with webhooks_to_the_dashboard(service, sandbox) as hooked:
        state = sandbox.github_app.state
        issues = state.repo_issues(state.repo("acme/api").id)
        numbers = [i.number for i in issues if "internal" not in i.labels][:5]  # billable
        assert len(numbers) == 5
        before = _api_seconds(kukkingu)
        for n in range(50):
            posted = httpx.post(
                f"{sandbox.github.url}/_sandbox/comments",
                json={"repo": "acme/api", "issue": numbers[n % 5], "body": "/spend 15m"},
                timeout=10,
            )
            assert posted.status_code == 200
        total = before + 50 * 900
        wait_until(lambda: _api_seconds(kukkingu) == total, DEADLINE, hooked, "the burst billed")

        def settled() -> bool:  # no message outstanding or waiting, no sync running
            with factory() as session:
                running = session.scalars(select(Run).where(Run.status == "running")).all()
            keys = ("webhook", "pending", "running")
            return not running and not any(
                redis.exists(f"billsync:{key}:github-demo") for key in keys
            )

        wait_until(settled, DEADLINE, hooked, "the worker to settle")
        runs = webhook_runs(factory, "github-demo")
        assert 1 <= len(runs) <= 2, runs
        assert all(status == "succeeded" for status, _ in runs), runs
        assert len(sandbox.github_app.webhooks.log) >= 50  # type: ignore[union-attr]
        assert check_invariants(snapshot(kukkingu)) == []


def _api_seconds(kukkingu: KukkinguClient) -> int:
    """The raw seconds on every acme/api line, on every invoice (one line a month)."""
    shot = snapshot(kukkingu)
    found = [b for items in shot.billables.values() for b in items]
    return sum(
        b["metadata"]["rawSeconds"] for b in found if b["referenceId"].startswith("acme/api#")
    )
