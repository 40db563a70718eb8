"""``POST /hooks/github`` and ``POST /hooks/jira`` over real HTTP, with a real Redis: every
answer (SPEC §12), signatures (missing, bad, over-long bodies, replays), the debounce, and
what is recorded for the next sync. The sync requests go to a recorder here; the tests in
tests/integration/test_webhooks.py run a real worker."""

from __future__ import annotations

import json
import logging
import socket
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from redis import Redis
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from sandbox.server import ServerThread
from tests.support.billing import store
from tests.support.redis import RedisServer
from worker import coordination
from worker.config import Settings, parse_config
from worker.dashboard import create_app
from worker.store import Source, SourceKind, WebhookReport, transaction
from worker.webhooks import sign

SECRET = "hook-secret-Xq93-rnd-0001"
DASH = "dash-token-Hh71-secret"
ENV = {
    "KK": "kk-token-1",
    "GH": "gh-token-1",
    "JT": "jira-token-1",
    "JE": "me@example.com",
    "HOOK": SECRET,
    "DASH": DASH,
}


def settings_for(state_url: str, broker_url: str, **webhooks: Any) -> Settings:
    data: dict[str, Any] = {
        "state": {"url": state_url},
        "broker": {"url": broker_url},
        "kukkingu": {
            "base_url": "http://127.0.0.1:9",
            "tenant_id": "tnt_" + "a" * 24,
            "token_env": "KK",
        },
        "sources": [
            {
                "name": "jira-main",
                "kind": "jira",
                "url": "https://acme.atlassian.net",
                "email_env": "JE",
                "token_env": "JT",
            },
            {"name": "gh", "kind": "github", "token_env": "GH"},
        ],
        "rules": [
            {
                "source": "jira-main",
                "projects": ["ACME"],
                "contract_id": "ctr_" + "b" * 24,
                "currency": "EUR",
                "hourly_rate_minor": 100,
            },
            {
                "source": "gh",
                "repos": ["acme/app"],
                "contract_id": "ctr_" + "b" * 24,
                "currency": "EUR",
                "hourly_rate_minor": 100,
            },
        ],
        "webhooks": {"github_secret_env": "HOOK", "jira_secret_env": "HOOK", **webhooks},
        "dashboard": {"token_env": "DASH"},
    }
    return parse_config(data, environ=ENV)


class Recorder:
    def __init__(self) -> None:
        self.calls: list[tuple[str, str]] = []

    def __call__(self, source: str, trigger: str) -> str:
        self.calls.append((source, trigger))
        return f"task-{len(self.calls)}"


@pytest.fixture
def factory(tmp_path: Path) -> Iterator[sessionmaker[Session]]:
    with store(f"sqlite:///{tmp_path / 'state.db'}") as made:
        with transaction(made) as session:  # both sources have synced before
            session.add_all(
                [Source(name="jira-main", kind=SourceKind.JIRA), Source(name="gh", kind="github")]
            )
        yield made


Serve = Callable[..., httpx.Client]


@pytest.fixture
def serve(
    factory: sessionmaker[Session], tmp_path: Path, redis: Redis, redis_server: RedisServer
) -> Iterator[Serve]:
    started: list[tuple[ServerThread, httpx.Client]] = []

    def start(
        recorder: Recorder, *, redis_client: Redis | None = None, **webhooks: Any
    ) -> httpx.Client:
        settings = settings_for(f"sqlite:///{tmp_path / 'state.db'}", redis_server.url, **webhooks)
        app = create_app(settings, factory=factory, redis=redis_client or redis, enqueue=recorder)
        server = ServerThread(app).start()
        client = httpx.Client(base_url=server.url, timeout=30)
        started.append((server, client))
        return client

    yield start
    for server, client in started:
        client.close()
        server.stop()


def github(
    client: httpx.Client,
    payload: dict[str, Any] | bytes,
    *,
    event: str = "issue_comment",
    delivery: str = "d-1",
    secret: str | None = SECRET,
    signature: str | None = None,
    content_type: str = "application/json",
) -> httpx.Response:
    body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    headers = {"X-GitHub-Event": event, "X-GitHub-Delivery": delivery, "Content-Type": content_type}
    if signature is not None:
        headers["X-Hub-Signature-256"] = signature
    elif secret is not None:
        headers["X-Hub-Signature-256"] = sign(secret, body)
    return client.post("/hooks/github", content=body, headers=headers)


def jira(
    client: httpx.Client, payload: dict[str, Any], *, delivery: str = "1", secret: str = SECRET
) -> httpx.Response:
    body = json.dumps(payload).encode()
    headers = {
        "X-Atlassian-Webhook-Identifier": delivery,
        "X-Hub-Signature": sign(secret, body),
        "Content-Type": "application/json; charset=UTF-8",
    }
    return client.post("/hooks/jira", content=body, headers=headers)


def comment(
    action: str = "created", repo: str = "acme/app", comment_id: int = 77
) -> dict[str, Any]:
    return {
        "action": action,
        "issue": {"id": 5001, "number": 3, "comments": 4},
        "comment": {"id": comment_id, "body": "/spend 1h"},
        "repository": {"full_name": repo, "url": f"https://api.github.com/repos/{repo}"},
        "sender": {"login": "octocat"},
    }


def worklog(event: str = "worklog_updated", worklog_id: str = "10250") -> dict[str, Any]:
    return {
        "timestamp": 1_764_000_000_000,
        "webhookEvent": event,
        "worklog": {
            "self": f"https://acme.atlassian.net/rest/api/2/issue/10012/worklog/{worklog_id}",
            "id": worklog_id,
            "issueId": "10012",
            "timeSpentSeconds": 3600,
        },
    }


def reports(factory: sessionmaker[Session]) -> list[tuple[str, str, str | None, int | None]]:
    with factory() as session:
        rows = session.scalars(select(WebhookReport).order_by(WebhookReport.id))
        return [(r.kind, r.item_id, r.issue_id, r.comments) for r in rows]


def test_a_signed_event_asks_for_one_sync_and_a_replay_does_nothing(serve: Serve) -> None:
    recorder = Recorder()
    client = serve(recorder)
    first = github(client, comment(), delivery="a1")
    assert (first.status_code, first.json()) == (202, {"source": "gh", "sent": True})
    again = github(client, comment(), delivery="a1")  # the same delivery, e.g. redelivered
    assert (again.status_code, again.json()) == (200, {"duplicate": True})
    assert recorder.calls == [("gh", "webhook")]


def test_a_burst_sends_one_message_until_its_sync_begins(serve: Serve, redis: Redis) -> None:
    recorder = Recorder()
    client = serve(recorder)
    answers = [github(client, comment(), delivery=f"b{n}").json() for n in range(50)]
    assert answers[0] == {"source": "gh", "sent": True}
    assert all(a == {"source": "gh", "sent": False} for a in answers[1:])
    assert recorder.calls == [("gh", "webhook")]
    # the sync begins: it covers every event so far; the next event asks again
    coordination.begin(redis, "gh", "webhook", "host:1:task-1", marker_ttl=60)
    assert github(client, comment(), delivery="b50").json() == {"source": "gh", "sent": True}
    assert recorder.calls == [("gh", "webhook")] * 2


@pytest.mark.parametrize(
    ("signature", "why"),
    [
        (None, "missing"),
        ("sha256=" + "0" * 64, "wrong"),
        ("sha1=" + "0" * 40, "another algorithm"),
        (sign("another-secret-entirely", b"x"), "another secret and body"),
    ],
)
def test_a_missing_or_wrong_signature_is_401(serve: Serve, signature: str | None, why: str) -> None:
    recorder = Recorder()
    client = serve(recorder)
    response = github(client, comment(), secret=None, signature=signature)
    assert response.status_code == 401, why
    assert response.json() == {"detail": "missing or wrong signature (x-hub-signature-256)"}
    body = json.dumps(worklog()).encode()
    answer = client.post(
        "/hooks/jira",
        content=body,
        headers={"X-Hub-Signature": sign("not-the-secret-at-all", body)},
    )
    assert answer.status_code == 401
    assert recorder.calls == []


def test_a_signature_of_another_body_is_401(serve: Serve) -> None:
    recorder = Recorder()
    client = serve(recorder)
    signed = json.dumps(comment(comment_id=1)).encode()
    sent = json.dumps(comment(comment_id=2)).encode()
    response = github(client, sent, signature=sign(SECRET, signed))
    assert response.status_code == 401
    assert recorder.calls == []


def test_an_over_long_body_is_413_before_its_signature_is_checked(serve: Serve) -> None:
    recorder = Recorder()
    client = serve(recorder, max_body_bytes=2048)
    big = comment()
    big["comment"]["body"] = "x" * 4096
    assert github(client, big).status_code == 413  # Content-Length says so
    body = json.dumps(big).encode()

    def chunks() -> Iterator[bytes]:  # no Content-Length: the stream is cut off
        yield from (body[i : i + 512] for i in range(0, len(body), 512))

    streamed = client.post(
        "/hooks/github",
        content=chunks(),
        headers={"X-GitHub-Event": "issue_comment", "X-Hub-Signature-256": sign(SECRET, body)},
    )
    assert streamed.status_code == 413
    assert streamed.json() == {"detail": "the body is over 2048 bytes"}
    assert recorder.calls == []


def test_ping_unused_events_and_other_repositories(serve: Serve) -> None:
    recorder = Recorder()
    client = serve(recorder)
    ping = github(client, {"zen": "Keep it logically awesome.", "hook_id": 1}, event="ping")
    assert (ping.status_code, ping.json()) == (200, {"pong": True})
    assert github(client, {"ref": "main"}, event="push").status_code == 204
    assert github(client, comment(action="pinned")).status_code == 204
    assert github(client, comment(repo="acme/other")).status_code == 204  # no rule names it
    assert jira(client, worklog("jira:issue_created")).status_code == 204
    assert jira(client, {"webhookEvent": "sprint_started"}).status_code == 204
    assert recorder.calls == []


def test_each_used_event_asks_for_a_sync(serve: Serve, redis: Redis) -> None:
    recorder = Recorder()
    client = serve(recorder)
    used = [("issue_comment", action) for action in ("created", "edited", "deleted")] + [
        ("issues", a) for a in ("edited", "labeled", "unlabeled", "transferred", "deleted")
    ]
    for n, (event, action) in enumerate(used):
        redis.delete("billsync:webhook:gh")  # as if each one's sync had begun
        assert github(client, comment(action=action), event=event, delivery=f"u{n}").json() == {
            "source": "gh",
            "sent": True,
        }
    jira_events = ("worklog_created", "worklog_updated", "worklog_deleted")
    for n, event in enumerate((*jira_events, "jira:issue_updated", "jira:issue_deleted")):
        redis.delete("billsync:webhook:jira-main")
        answer = jira(client, worklog(event), delivery=f"j{n}")
        assert answer.json() == {"source": "jira-main", "sent": True}, event
    assert len(recorder.calls) == len(used) + 5
    assert {trigger for _, trigger in recorder.calls} == {"webhook"}


def test_github_form_encoded_deliveries_are_read(serve: Serve) -> None:
    recorder = Recorder()
    client = serve(recorder)
    body = httpx.QueryParams({"payload": json.dumps(comment())}).__str__().encode()
    answer = github(client, body, content_type="application/x-www-form-urlencoded")
    assert answer.status_code == 202
    assert github(client, b"{not json", delivery="d-2").status_code == 400


def test_changes_are_recorded_for_the_next_sync(
    serve: Serve, factory: sessionmaker[Session]
) -> None:
    client = serve(Recorder())
    github(client, comment(action="deleted", comment_id=91), delivery="r1")
    github(client, comment(action="deleted", comment_id=91), delivery="r2")  # once a comment
    github(client, comment(action="created", comment_id=92), delivery="r3")  # read as usual
    jira(client, worklog("worklog_updated", "10250"), delivery="r4")
    jira(client, worklog("worklog_deleted", "10251"), delivery="r5")
    assert reports(factory) == [
        ("comment_deleted", "91", "5001", 4),
        ("worklog", "10250", "10012", None),
        ("worklog_deleted", "10251", "10012", None),
    ]


def test_an_unconfigured_service_is_404(
    factory: sessionmaker[Session], tmp_path: Path, redis: Redis, redis_server: RedisServer
) -> None:
    settings = settings_for(f"sqlite:///{tmp_path / 'state.db'}", redis_server.url)
    quiet = parse_config({**_raw(settings), "webhooks": {"github_secret_env": "HOOK"}}, environ=ENV)
    app = create_app(quiet, factory=factory, redis=redis, enqueue=Recorder())
    with ServerThread(app) as server:
        answer = httpx.post(f"{server.url}/hooks/jira", content=b"{}", timeout=30)
    assert answer.status_code == 404
    assert answer.json() == {
        "detail": "Jira webhooks are not configured: set [webhooks] jira_secret_env"
    }


def _raw(settings: Settings) -> dict[str, Any]:
    return settings.file.model_dump(exclude_none=True)


def _dead_redis() -> Redis:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return Redis(host="127.0.0.1", port=port, socket_connect_timeout=2, socket_timeout=2)


def test_with_redis_unreachable_the_event_is_not_taken(serve: Serve) -> None:
    recorder = Recorder()
    client = serve(recorder, redis_client=_dead_redis())
    answer = github(client, comment())
    assert answer.status_code == 503
    assert answer.headers["retry-after"] == "30"
    assert answer.json()["detail"].startswith("the event was not taken: Redis did not answer")
    assert recorder.calls == []


def test_when_asking_fails_a_redelivery_is_not_taken_for_a_replay(serve: Serve) -> None:
    def broken(source: str, trigger: str) -> str:
        raise ConnectionError("the broker is down")

    client = serve(broken)
    assert github(client, comment(), delivery="f1").status_code == 503
    assert github(client, comment(), delivery="f1").status_code == 503  # not a "duplicate"


def test_an_ambiguous_source_is_400_and_source_picks_one(
    factory: sessionmaker[Session], tmp_path: Path, redis: Redis, redis_server: RedisServer
) -> None:
    raw = _raw(settings_for(f"sqlite:///{tmp_path / 'state.db'}", redis_server.url))
    raw["sources"].append({"name": "gh2", "kind": "github", "token_env": "GH"})
    raw["rules"].append({**raw["rules"][1], "source": "gh2"})
    recorder = Recorder()
    app = create_app(parse_config(raw, environ=ENV), factory=factory, redis=redis, enqueue=recorder)
    with ServerThread(app) as server, httpx.Client(base_url=server.url, timeout=30) as client:
        answer = github(client, comment())
        assert answer.status_code == 400
        assert "add ?source=NAME to the webhook's URL" in answer.json()["detail"]
        body = json.dumps(comment()).encode()
        chosen = client.post(
            "/hooks/github?source=gh2",
            content=body,
            headers={"X-GitHub-Event": "issue_comment", "X-Hub-Signature-256": sign(SECRET, body)},
        )
        assert chosen.json() == {"source": "gh2", "sent": True}
        unknown = client.post(
            "/hooks/github?source=nope", content=body, headers=chosen.request.headers
        )
        assert unknown.status_code == 400
    assert recorder.calls == [("gh2", "webhook")]


def test_no_secret_reaches_the_logs(serve: Serve, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    client = serve(Recorder())
    github(client, comment(), delivery="s1")
    github(client, comment(), secret="a-wrong-secret-of-some-length")
    signature = sign(SECRET, json.dumps(comment()).encode())
    text = caplog.text
    assert "webhook" in text
    assert SECRET not in text
    assert signature.split("=", 1)[1] not in text
