"""The GitHub sandbox's webhook payloads for its admin edits, shaped as GitHub sends them:
``issue_comment`` (``created``, ``edited`` with ``changes.body.from``, ``deleted``) and
``issues`` (``opened``, ``edited``, ``labeled`` / ``unlabeled`` with the ``label``,
``closed`` / ``reopened``, ``transferred`` with ``changes.new_repository`` and
``changes.new_issue``). Each carries the issue (its ``comments`` count as of now), the
repository and the sender, rendered as the REST API renders them."""

from __future__ import annotations

from typing import Any

from sandbox.github.render import Renderer
from sandbox.github.seed import DEMO_LOGIN
from sandbox.github.state import Comment, Issue, Repo


def _common(render: Renderer, repo: Repo, issue: Issue, sender: str) -> dict[str, Any]:
    count = render.state.comment_counts(repo.id).get(issue.number, 0)
    return {
        "issue": render.issue(repo, issue, count, single=True),
        "repository": render.repo(repo, DEMO_LOGIN),
        "sender": render.user(sender),
    }


def comment_event(
    render: Renderer,
    repo: Repo,
    issue: Issue,
    comment: Comment,
    action: str,
    *,
    before: str | None = None,
) -> dict[str, Any]:
    payload: dict[str, Any] = {"action": action}
    if action == "edited":
        payload["changes"] = {"body": {"from": before or ""}}
    payload.update(
        {
            **_common(render, repo, issue, comment.user),
            "comment": render.comment(repo, comment, issue.is_pr),
        }
    )
    return payload


def issue_events(
    render: Renderer,
    repo: Repo,
    issue: Issue,
    *,
    sender: str,
    before: dict[str, Any],
) -> list[dict[str, Any]]:
    """The ``issues`` events of one edit: ``edited`` for title or body, one ``labeled`` or
    ``unlabeled`` per label, ``closed`` or ``reopened``."""
    common = _common(render, repo, issue, sender)
    events: list[dict[str, Any]] = []
    changes = {
        key: {"from": before[key]}
        for key, now in (("title", issue.title), ("body", issue.body))
        if before.get(key) != now
    }
    if changes:
        events.append({"action": "edited", "changes": changes, **common})
    old, new = set(before.get("labels", ())), set(issue.labels)
    for name in sorted(new - old):
        events.append({"action": "labeled", "label": render.label(repo, name), **common})
    for name in sorted(old - new):
        events.append({"action": "unlabeled", "label": render.label(repo, name), **common})
    if before.get("state") != issue.state:
        events.append({"action": "closed" if issue.state == "closed" else "reopened", **common})
    return events


def transfer_event(
    render: Renderer, old_repo: Repo, new_repo: Repo, issue: Issue, old_number: int
) -> dict[str, Any]:
    """``issues`` ``transferred``, sent for the repository the issue left."""
    moved = _common(render, new_repo, issue, DEMO_LOGIN)
    old_issue = dict(moved["issue"], number=old_number)
    old_issue["url"] = f"{render.api}/repos/{old_repo.full_name}/issues/{old_number}"
    return {
        "action": "transferred",
        "changes": {
            "new_issue": moved["issue"],
            "new_repository": moved["repository"],
        },
        "issue": old_issue,
        "repository": render.repo(old_repo, DEMO_LOGIN),
        "sender": render.user(DEMO_LOGIN),
    }
