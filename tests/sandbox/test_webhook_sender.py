"""The Jira and GitHub sandboxes' webhooks (``--webhook-url``): each admin edit is posted,
signed, with the headers and payload the real service sends, to a receiver served over
HTTP; a receiver that fails gets the same delivery again."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from sandbox.main import RunningSandbox, start_sandbox
from sandbox.server import ServerThread

SECRET = "sandbox-hook-secret-0001"


class Receiver:
    """Collects deliveries; answers ``statuses`` in turn (then 202)."""

    def __init__(self) -> None:
        self.deliveries: list[tuple[str, dict[str, str], bytes]] = []
        self.statuses: list[int] = []
        self.arrived = threading.Condition()

    async def receive(self, request: Request) -> Response:
        body = await request.body()
        with self.arrived:
            self.deliveries.append((request.url.path, dict(request.headers), body))
            self.arrived.notify_all()
        return Response(status_code=self.statuses.pop(0) if self.statuses else 202)

    def wait_for(self, count: int) -> list[tuple[str, dict[str, str], bytes]]:
        with self.arrived:
            assert self.arrived.wait_for(lambda: len(self.deliveries) >= count, timeout=60)
            return list(self.deliveries)


@pytest.fixture
def receiver() -> Iterator[tuple[Receiver, str]]:
    got = Receiver()
    app = Starlette(routes=[Route("/hooks/{service}", got.receive, methods=["POST"])])
    with ServerThread(app) as server:
        yield got, server.url


@pytest.fixture
def sandbox(receiver: tuple[Receiver, str]) -> Iterator[RunningSandbox]:
    with start_sandbox(
        kukkingu_port=0,
        jira_port=0,
        github_port=0,
        cliniko_port=0,
        webhook_url=receiver[1],
        webhook_secret=SECRET,
    ) as running:
        yield running


def signed(headers: dict[str, str], body: bytes, header: str) -> bool:
    expected = "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(headers[header], expected)


def test_jira_worklog_edits_are_signed_admin_webhooks(
    sandbox: RunningSandbox, receiver: tuple[Receiver, str]
) -> None:
    got, _ = receiver
    base = sandbox.jira.url
    created = httpx.post(
        f"{base}/_sandbox/worklogs",
        json={"issue": "GLX-1", "started": "2026-11-03T09:00:00+00:00", "timeSpentSeconds": 900},
        timeout=10,
    ).json()["data"]
    httpx.put(
        f"{base}/_sandbox/worklogs/{created['id']}", json={"timeSpentSeconds": 1800}, timeout=10
    ).raise_for_status()
    httpx.delete(f"{base}/_sandbox/worklogs/{created['id']}", timeout=10).raise_for_status()
    deliveries = got.wait_for(3)
    events = []
    for path, headers, body in deliveries:
        assert path == "/hooks/jira"
        assert signed(headers, body, "x-hub-signature")
        assert headers["x-atlassian-webhook-identifier"].isdigit()
        payload: dict[str, Any] = json.loads(body)
        events.append(payload["webhookEvent"])
        assert payload["worklog"]["id"] == created["id"]
        assert payload["worklog"]["issueId"] == created["issueId"]
        assert payload["worklog"]["self"].startswith(f"{base}/rest/api/2/issue/")
    assert events == ["worklog_created", "worklog_updated", "worklog_deleted"]
    assert json.loads(deliveries[1][2])["worklog"]["timeSpentSeconds"] == 1800


def test_github_comment_edits_are_signed_deliveries(
    sandbox: RunningSandbox, receiver: tuple[Receiver, str]
) -> None:
    got, _ = receiver
    base = sandbox.github.url
    added = httpx.post(
        f"{base}/_sandbox/comments",
        json={"repo": "acme/website", "issue": 1, "body": "/spend 1h"},
        timeout=10,
    ).json()["data"]
    httpx.patch(
        f"{base}/_sandbox/comments/{added['id']}", json={"body": "/spend 2h"}, timeout=10
    ).raise_for_status()
    httpx.delete(f"{base}/_sandbox/comments/{added['id']}", timeout=10).raise_for_status()
    deliveries = got.wait_for(3)
    actions = []
    for path, headers, body in deliveries:
        assert path == "/hooks/github"
        assert signed(headers, body, "x-hub-signature-256")
        assert headers["x-github-event"] == "issue_comment"
        assert len(headers["x-github-delivery"]) == 36  # a GUID
        payload: dict[str, Any] = json.loads(body)
        actions.append(payload["action"])
        assert payload["comment"]["id"] == added["id"]
        assert payload["repository"]["full_name"] == "acme/website"
        assert payload["issue"]["number"] == 1
    assert actions == ["created", "edited", "deleted"]
    edited = json.loads(deliveries[1][2])
    assert edited["changes"] == {"body": {"from": "/spend 1h"}}
    counts = [json.loads(body)["issue"]["comments"] for _, _, body in deliveries]
    assert counts[2] == counts[0] - 1  # the count after the deletion


def test_github_issue_edits_and_transfers(
    sandbox: RunningSandbox, receiver: tuple[Receiver, str]
) -> None:
    got, _ = receiver
    base = sandbox.github.url
    httpx.patch(
        f"{base}/_sandbox/issues/acme/website/1",
        json={"title": "Renamed", "labels": ["needs-quote"]},
        timeout=10,
    ).raise_for_status()
    sender = sandbox.github_app.webhooks
    assert sender is not None
    assert sender.wait_idle(30)
    deliveries = got.wait_for(2)  # edited (the title), labeled, unlabeled (its old labels)
    actions = [json.loads(body)["action"] for _, _, body in deliveries]
    assert actions[0] == "edited"
    assert "labeled" in actions
    assert json.loads(deliveries[0][2])["changes"]["title"]["from"] != "Renamed"
    httpx.post(
        f"{base}/_sandbox/issues/acme/website/2/transfer", json={"repo": "acme/api"}, timeout=10
    ).raise_for_status()
    transferred = json.loads(got.wait_for(len(deliveries) + 1)[-1][2])
    assert transferred["action"] == "transferred"
    assert transferred["repository"]["full_name"] == "acme/website"
    assert transferred["changes"]["new_repository"]["full_name"] == "acme/api"


def test_a_failed_delivery_is_tried_again_with_the_same_id(
    sandbox: RunningSandbox, receiver: tuple[Receiver, str]
) -> None:
    got, _ = receiver
    got.statuses = [503]
    sender = sandbox.jira_app.webhooks
    assert sender is not None
    sender._retry_wait = 0.05
    httpx.post(
        f"{sandbox.jira.url}/_sandbox/worklogs",
        json={
            "issue": "GLX-1",
            "started": datetime(2026, 11, 3, 9, tzinfo=UTC).isoformat(),
            "timeSpentSeconds": 900,
        },
        timeout=10,
    ).raise_for_status()
    first, second = got.wait_for(2)
    assert first[1]["x-atlassian-webhook-identifier"] == second[1]["x-atlassian-webhook-identifier"]
    assert first[2] == second[2]
    assert sender.wait_idle(30)
    assert [a.status for a in sender.log] == [503, 202]


def test_a_webhook_url_needs_a_secret() -> None:
    with (
        pytest.raises(ValueError, match="needs a webhook secret"),
        start_sandbox(
            kukkingu_port=0, jira_port=0, github_port=0, cliniko_port=0, webhook_url="http://x"
        ),
    ):
        pass
