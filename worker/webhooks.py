"""Jira and GitHub webhooks (SPEC §12): verifying a delivery, reading what it is about, and
turning it into a sync request. The dashboard server's ``POST /hooks/github`` and
``POST /hooks/jira`` routes (:mod:`worker.dashboard.hooks`) call these in order:

1. :func:`signature_valid`: ``sha256=<hex>``, an HMAC-SHA256 of the raw body with the
   secret, compared in constant time (GitHub: ``X-Hub-Signature-256``; Jira Cloud admin
   webhooks: ``X-Hub-Signature``);
2. :func:`github_event` / :func:`jira_event`: the event's name, whether billsync uses it,
   the repository or site it came from, and for a GitHub comment deletion what was deleted;
3. :func:`source_for`: which configured source it belongs to;
4. :func:`request_sync` (Redis): a delivery id seen before is not acted on again; else one
   sync message per source is outstanding at a time. A burst of events sends one message;
   events after that message's sync began send the next one, which coalesces with the
   running sync into one follow-up (:mod:`worker.coordination`). So a burst of 50 comments
   causes one or two syncs.

The sync stays the only writer to Kukkingu: a webhook only asks for a sync (and records a
GitHub comment deletion for the sync to apply, see :mod:`connectors.github.source`).
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import parse_qs, urlsplit

from redis import Redis

from worker.config import GitHubSourceConfig, JiraSourceConfig, Settings
from worker.locks import PREFIX, webhook_key

Service = Literal["github", "jira"]

GITHUB_ACTIONS: Mapping[str, frozenset[str]] = {
    "issue_comment": frozenset({"created", "edited", "deleted"}),
    "issues": frozenset({"edited", "labeled", "unlabeled", "transferred", "deleted"}),
}
JIRA_EVENTS = frozenset(
    {
        "worklog_created",
        "worklog_updated",
        "worklog_deleted",
        "jira:issue_updated",
        "jira:issue_deleted",
    }
)
DELIVERY_TTL = 7 * 86_400  # seconds a delivery id is remembered (GitHub redelivers by hand)
OUTSTANDING_TTL = 300  # seconds one outstanding message holds off others, at most


class BadPayload(ValueError):
    """A verified body that is not the JSON the service documents."""


@dataclass(frozen=True, slots=True)
class Change:
    """What the next sync reads directly (``webhook_reports``): a GitHub comment deleted
    (``comment_deleted``), a Jira worklog written (``worklog``) or deleted
    (``worklog_deleted``)."""

    kind: str
    item_id: str
    issue_id: str | None
    repo: str | None = None
    comments: int | None = None  # GitHub: the issue's comment count after the deletion


@dataclass(frozen=True, slots=True)
class Event:
    service: Service
    name: str  # "issue_comment.deleted", "worklog_updated", "ping", ...
    delivery: str | None  # X-GitHub-Delivery / X-Atlassian-Webhook-Identifier
    used: bool  # billsync acts on it
    host: str | None = None  # the host the event's URLs name (to tell sources apart)
    repo: str | None = None  # GitHub: owner/repo
    change: Change | None = None

    @property
    def ping(self) -> bool:
        return self.name == "ping"


def signature_valid(secret: str, body: bytes, header: str | None) -> bool:
    """Whether ``header`` is ``sha256=<hex>`` of ``body`` under ``secret`` (constant time)."""
    if not header or not header.startswith("sha256="):
        return False
    expected = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected.encode(), header[len("sha256=") :].strip().encode())


def sign(secret: str, body: bytes) -> str:
    """The signature header value a sender computes: ``sha256=<hex>``."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def _json(body: bytes, content_type: str) -> dict[str, Any]:
    """The payload: JSON, or GitHub's form encoding (``payload=<json>``)."""
    try:
        if content_type.split(";")[0].strip().lower() == "application/x-www-form-urlencoded":
            fields = parse_qs(body.decode("utf-8"), strict_parsing=True)
            text = fields["payload"][0]
        else:
            text = body.decode("utf-8")
        data = json.loads(text)
    except (UnicodeDecodeError, ValueError, KeyError, IndexError):
        raise BadPayload("the body is not JSON (nor a form with a JSON `payload`)") from None
    if not isinstance(data, dict):
        raise BadPayload("the body is JSON but not an object")
    return data


def _host(url: object) -> str | None:
    if not isinstance(url, str) or not url:
        return None
    try:
        return urlsplit(url).netloc.lower() or None
    except ValueError:
        return None


def _get(data: Mapping[str, Any], *path: str) -> Any:
    value: Any = data
    for key in path:
        value = value.get(key) if isinstance(value, Mapping) else None
    return value


def github_event(headers: Mapping[str, str], body: bytes, content_type: str) -> Event:
    """A verified GitHub delivery."""
    name = headers.get("x-github-event", "")
    delivery = headers.get("x-github-delivery") or None
    if name == "ping":
        return Event("github", "ping", delivery, used=False)
    data = _json(body, content_type)
    action = str(data.get("action") or "")
    used = action in GITHUB_ACTIONS.get(name, frozenset())
    repo = _get(data, "repository", "full_name")
    event = Event(
        "github",
        f"{name}.{action}" if action else name,
        delivery,
        used=used,
        host=_host(_get(data, "repository", "url")),
        repo=repo if isinstance(repo, str) else None,
    )
    if used and name == "issue_comment" and action == "deleted":
        issue_id, comment_id = _get(data, "issue", "id"), _get(data, "comment", "id")
        comments = _get(data, "issue", "comments")
        if isinstance(issue_id, int) and isinstance(comment_id, int) and event.repo:
            change = Change(
                "comment_deleted",
                str(comment_id),
                str(issue_id),
                event.repo,
                comments if isinstance(comments, int) and comments >= 0 else None,
            )
            return Event("github", event.name, delivery, True, event.host, event.repo, change)
    return event


def jira_event(headers: Mapping[str, str], body: bytes, content_type: str) -> Event:
    """A verified Jira Cloud admin webhook delivery."""
    data = _json(body, content_type)
    name = str(data.get("webhookEvent") or "")
    url = _get(data, "worklog", "self") or _get(data, "issue", "self")
    change = None
    worklog_id, issue_id = _get(data, "worklog", "id"), _get(data, "worklog", "issueId")
    if name.startswith("worklog_") and isinstance(worklog_id, str | int):
        kind = "worklog_deleted" if name == "worklog_deleted" else "worklog"
        item = str(worklog_id)
        if item.isdigit() and len(item) <= 64:
            change = Change(kind, item, str(issue_id) if issue_id is not None else None)
    return Event(
        "jira",
        name,
        headers.get("x-atlassian-webhook-identifier") or None,
        used=name in JIRA_EVENTS,
        host=_host(url),
        change=change,
    )


class UnknownSource(LookupError):
    """No configured source is the one the delivery is for; the message says why."""


def source_for(settings: Settings, event: Event, requested: str | None) -> str | None:
    """The configured source ``event`` belongs to, or None when it is one billsync does not
    sync (another repository). ``requested``: the webhook URL's ``?source=NAME``."""
    kind = JiraSourceConfig if event.service == "jira" else GitHubSourceConfig
    candidates = [s for s in settings.file.sources if isinstance(s, kind)]
    if requested is not None:
        chosen = [s for s in candidates if s.name == requested]
        if not chosen:
            known = ", ".join(s.name for s in candidates) or "none"
            raise UnknownSource(
                f"no {event.service} source named {requested!r} (configured: {known})"
            )
    elif len(candidates) > 1:
        chosen = [s for s in candidates if _host(s.url) == event.host]
        if len(chosen) != 1:
            raise UnknownSource(
                f"{len(candidates)} {event.service} sources are configured and the event's "
                f"host ({event.host or 'none given'}) does not tell which: add "
                "?source=NAME to the webhook's URL"
            )
    else:
        chosen = candidates
    if not chosen:
        return None
    source = chosen[0]
    if event.service == "github" and event.repo is not None:
        repos = {
            r.casefold()
            for rule in settings.file.rules
            if rule.source == source.name
            for r in rule.repos
        }
        if event.repo.casefold() not in repos:
            return None  # a repository no rule of the source names
    return source.name


def delivery_key(service: Service, delivery: str) -> str:
    digest = hashlib.sha256(delivery.encode()).hexdigest()[:40]  # never the raw header
    return f"{PREFIX}:delivery:{service}:{digest}"


def first_delivery(redis: Redis, event: Event) -> bool:
    """Remember the delivery id; False when it was seen before (a replay)."""
    if event.delivery is None:
        return True  # nothing to tell replays by: act (a sync more is harmless)
    return bool(
        redis.set(delivery_key(event.service, event.delivery), "1", nx=True, ex=DELIVERY_TTL)
    )


def forget_delivery(redis: Redis, event: Event) -> None:
    """The delivery was not taken (acting failed): its redelivery must act."""
    if event.delivery is not None:
        redis.delete(delivery_key(event.service, event.delivery))


def request_sync(redis: Redis, source: str, send: Callable[[str, str], object]) -> bool:
    """Ask for a sync of ``source`` with trigger ``webhook``: send a message unless one is
    outstanding (sent, its sync not begun: that sync will read this change). True when a
    message was sent. The beginning sync clears the mark (:func:`worker.coordination.begin`)."""
    if not redis.set(webhook_key(source), "1", nx=True, ex=OUTSTANDING_TTL):
        return False
    try:
        send(source, "webhook")
    except BaseException:
        redis.delete(webhook_key(source))
        raise
    return True
