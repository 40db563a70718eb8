"""The fixed demo data every fresh (or reset) GitHub sandbox starts with.

Credentials are constants because ``examples/sandbox.toml``, the docs and the tests hardcode
them: ``ghp_sandbox_token`` is ``octo-demo`` (a member of both organizations, so it sees
every repository), ``ghp_sandbox_other_token`` is ``carol-qa`` (a member of ``acme`` only, so
the private ``globex/platform`` is a 404 for her).

Repositories ``acme/website`` and ``acme/api`` (public) and ``globex/platform`` (private)
hold 25 issues and pull requests (a few labelled ``internal``) and 150 comments by four
users, spread over the 8 weeks before the sandbox clock's "now" (the anchor). Most comments
carry ``/spend`` lines in prose; a handful are the tricky cases of SPEC §4 (a date, a
negative correction, several lines, a ``/spend`` inside a code fence, a quote or backticks,
the malformed ``1h30``, ``1.5h`` and ``1h 30m``), and a third are written with ``\\r\\n``
line ends, as the GitHub web editor sends them. Every comment was created (and last edited)
at least two minutes before the anchor. The same anchor gives the same data, ids included.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sandbox.github.state import GitHubState

# Public, documented demo credentials of a loopback-only fake, not secrets.
DEMO_TOKEN = "ghp_sandbox_token"  # noqa: S105
DEMO_LOGIN = "octo-demo"
OTHER_TOKEN = "ghp_sandbox_other_token"  # noqa: S105
OTHER_LOGIN = "carol-qa"

# login -> (name, email)
USERS: dict[str, tuple[str, str]] = {
    DEMO_LOGIN: ("Octo Demo", "octo-demo@billsync.test"),
    "alice-dev": ("Alice Andersen", "alice@billsync.test"),
    "bob-ops": ("Bob Brown", "bob@billsync.test"),
    OTHER_LOGIN: ("Carol Castillo", "carol@billsync.test"),
}
ORGS: dict[str, str] = {"acme": "Acme Corp", "globex": "Globex Corporation"}
MEMBERS: dict[str, tuple[str, ...]] = {
    "acme": (DEMO_LOGIN, "alice-dev", "bob-ops", OTHER_LOGIN),
    "globex": (DEMO_LOGIN, "alice-dev", "bob-ops"),
}
# full name -> (private, description)
REPOS: dict[str, tuple[bool, str]] = {
    "acme/website": (False, "The Acme marketing website"),
    "acme/api": (False, "Acme's public REST API"),
    "globex/platform": (True, "Globex platform services (private)"),
}

DEMO_SEED = 11
DEMO_COMMENTS = 150
DEMO_WEEKS = 8

# (repo, title, labels, is_pr, closed)
DEMO_ISSUES: tuple[tuple[str, str, tuple[str, ...], bool, bool], ...] = (
    ("acme/website", "Login redirect loops on Safari", ("bug",), False, True),
    ("acme/website", "Add a dark mode toggle to the header", ("enhancement",), False, False),
    ("acme/website", "Fix the Safari login redirect (closes #1)", ("bug",), True, True),
    ("acme/website", "Cookie banner covers the footer on mobile", ("bug",), False, False),
    ("acme/website", "Sprint planning notes", ("internal",), False, False),
    ("acme/website", "Upgrade to Next.js 15", ("dependencies",), True, False),
    ("acme/website", "Team offsite agenda", ("internal",), False, True),
    ("acme/website", "Newsletter signup with double opt-in", ("enhancement",), False, False),
    ("acme/website", "Add the newsletter double opt-in flow", (), True, False),
    ("acme/website", "Accessibility audit follow-ups", ("a11y",), False, False),
    ("acme/api", "Rate limiter answers 500 instead of 429", ("bug",), False, True),
    ("acme/api", "Paginate /v2/orders", ("enhancement",), False, False),
    ("acme/api", "Return 429 with Retry-After from the rate limiter", ("bug",), True, True),
    ("acme/api", "Document the webhook signature check", ("docs",), False, False),
    ("acme/api", "Hiring: review take-home submissions", ("internal",), False, False),
    ("acme/api", "Cursor pagination for /v2/orders", (), True, False),
    ("acme/api", "Flaky test: test_refund_partial", ("bug", "ci"), False, False),
    ("acme/api", "Remove the deprecated v1 endpoints", ("breaking",), False, False),
    ("globex/platform", "Kubernetes 1.34 upgrade", ("devops",), False, False),
    ("globex/platform", "Memory leak in the billing worker", ("bug",), False, True),
    ("globex/platform", "Bound the billing worker's result cache", ("bug",), True, True),
    ("globex/platform", "Single sign-on with Okta", ("security",), False, False),
    ("globex/platform", "Quarterly planning", ("internal",), False, False),
    ("globex/platform", "Okta SAML integration", ("security",), True, False),
    ("globex/platform", "Database failover drill", ("devops",), False, False),
)

# -- comment bodies ---------------------------------------------------------------------------

PROSE = (
    "Fixed the login redirect.",
    "Pushed a fix for the flaky test, CI is green again.",
    "Reviewed the PR and left a few notes inline.",
    "Paired on this with the team this morning.",
    "Deployed to staging, please have a look.",
    "Investigated the logs; it only happens behind the corporate proxy.",
    "Wrote the migration and a rollback script.",
    "Updated the docs and the changelog.",
    "Call with the client about the acceptance criteria.",
    "Refactored the handler so the retry logic lives in one place.",
    "Added tests for the edge cases we discussed.",
    "Rebased on main and resolved the conflicts.",
)
CHATTER = (
    "LGTM :+1:",
    "Thanks, merging once CI passes.",
    "Can we split this into two PRs?",
    "Blocked until the customer confirms the copy.",
    "Remember to /spend your time on this one, please.",
)
DURATIONS = ("15m", "30m", "45m", "1h", "1h15m", "1h30m", "2h", "2h30m", "3h", "4h", "1d", "6h")


def spend_body(rng: random.Random, created: datetime) -> str:
    """A realistic comment: prose and one or two ``/spend`` lines, sometimes dated, sometimes
    a correction; one in five has no ``/spend`` at all."""
    roll = rng.random()
    if roll < 0.2:
        return rng.choice(CHATTER)
    prose = rng.choice(PROSE)
    first = f"/spend {rng.choice(DURATIONS)}"
    if roll < 0.35:
        day = (created - timedelta(days=rng.randrange(1, 4))).date().isoformat()
        return f"{prose}\n/spend {rng.choice(DURATIONS)} {day}"
    if roll < 0.45:
        return f"{prose}\n{first}\n/spend {rng.choice(DURATIONS)}"
    if roll < 0.5:
        return f"Logged too much yesterday, correcting.\n/spend -{rng.choice(DURATIONS[:4])}"
    if roll < 0.6:
        return f"{first}\n\n{prose}"
    return f"{prose}\n{first}"


def special_bodies(created: datetime) -> list[str]:
    """The cases a ``/spend`` reader must get right (SPEC §4), one comment each."""
    day = (created - timedelta(days=1)).date().isoformat()
    return [
        "Fixed the login redirect.\n/spend 1h30m",
        f"Worked on this over the weekend.\n/spend 2h {day}",
        "Double-counted the review earlier.\n/spend -30m",
        "Long day on this one:\n/spend 3h\n/spend 1h30m\nand the review:\n/spend 45m",
        "Reproduced it with:\n```\n/spend 1h\ncurl -i https://example.test/login\n```\n/spend 20m",
        "> /spend 2h\nThat was Alice's estimate, not time I spent.",
        "Use `/spend 1h` in a comment to log time.",
        "Spent the afternoon on the cache.\n/spend 1h30",
        "Quick fix.\n/spend 1.5h",
        "Pairing session.\n/spend 1h 30m",
        "Nothing to log yet.\n/spend 0m",
    ]


def crlf(body: str) -> str:
    """As the GitHub web editor sends a comment."""
    return body.replace("\n", "\r\n")


# -- seed info --------------------------------------------------------------------------------


@dataclass(frozen=True)
class GitHubSeedInfo:
    """What a seeder created; ``GET /_sandbox/info`` serves it as JSON."""

    token: str
    login: str
    other_token: str
    other_login: str
    repos: dict[str, bool]  # full name -> private
    users: dict[str, str]  # login -> name
    issues: int
    comments: int
    anchor: datetime
    extra: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "token": self.token,
            "login": self.login,
            "otherToken": self.other_token,
            "otherLogin": self.other_login,
            "repos": dict(self.repos),
            "users": dict(self.users),
            "issues": self.issues,
            "comments": self.comments,
            "anchor": self.anchor.isoformat(),
            **self.extra,
        }


def add_demo_accounts(state: GitHubState, *, created: datetime) -> None:
    """The four users (two with tokens) and the two organizations."""
    tokens = {DEMO_LOGIN: (DEMO_TOKEN,), OTHER_LOGIN: (OTHER_TOKEN,)}
    for login, (name, email) in USERS.items():
        state.add_account(
            login, name=name, email=email, tokens=tokens.get(login, ()), created=created
        )
    for login, name in ORGS.items():
        state.add_account(login, name=name, type="Organization", created=created)


def work_time(rng: random.Random, after: datetime, before: datetime) -> datetime:
    """A weekday office-hours instant (07:00-17:00 UTC) in ``[after, before]``, whole seconds;
    ``before`` when the window holds none."""
    if before <= after:
        return before
    for _ in range(50):
        span = int((before - after).total_seconds())
        moment = after + timedelta(seconds=rng.randrange(0, max(span, 1)))
        if moment.weekday() < 5 and 7 <= moment.hour < 17:
            return moment
    return after + (before - after) / 2


@dataclass(frozen=True)
class _PlannedComment:
    repo: str
    number: int
    user: str
    body: str
    created: datetime
    updated: datetime


def plan_comments(
    rng: random.Random,
    issues: list[tuple[str, int, datetime]],
    count: int,
    anchor: datetime,
    *,
    specials: bool,
) -> list[_PlannedComment]:
    """``count`` comments on ``issues`` ((repo, number, created)), oldest first; one in ten
    edited later; with ``specials`` the SPEC §4 cases come first in the plan."""
    latest = anchor - timedelta(minutes=2)
    planned: list[_PlannedComment] = []
    special_queue: list[str] = []
    for index in range(count):
        repo, number, issue_created = rng.choice(issues)
        org = repo.split("/")[0]
        user = rng.choice(MEMBERS.get(org, tuple(USERS)))
        created = work_time(rng, issue_created + timedelta(hours=1), latest)
        created = created.replace(microsecond=0)
        if specials and index == 0:
            special_queue = special_bodies(created)
        body = special_queue.pop(0) if special_queue else spend_body(rng, created)
        if rng.random() < 1 / 3:
            body = crlf(body)
        updated = created
        if rng.random() < 0.1:
            updated = min(created + timedelta(minutes=rng.randrange(5, 72 * 60)), latest)
        planned.append(_PlannedComment(repo, number, user, body, created, updated))
    planned.sort(key=lambda c: c.created)
    return planned


def seed_demo(state: GitHubState) -> GitHubSeedInfo:
    """Fill an empty ``state`` with the demo data, anchored at the sandbox clock's now."""
    anchor = state.clock.now().astimezone(UTC).replace(microsecond=0)
    rng = random.Random(DEMO_SEED)
    earliest = anchor - timedelta(weeks=DEMO_WEEKS + 1)
    add_demo_accounts(state, created=earliest - timedelta(days=400))
    for full_name, (private, description) in REPOS.items():
        owner, name = full_name.split("/")
        state.add_repo(
            owner,
            name,
            private=private,
            description=description,
            members=MEMBERS[owner],
            created=earliest - timedelta(days=200),
        )
    # Issues are created in time order, so numbers and ids grow with time as on GitHub.
    spacing = timedelta(weeks=DEMO_WEEKS) / len(DEMO_ISSUES)
    created_at: dict[int, datetime] = {}
    for index in range(len(DEMO_ISSUES)):
        base = earliest + spacing * index
        created_at[index] = work_time(rng, base, base + spacing).replace(microsecond=0)
    placed: list[tuple[str, int, datetime]] = []
    closers: list[tuple[str, int]] = []
    for index in sorted(created_at, key=lambda i: created_at[i]):
        repo, title, labels, is_pr, closed = DEMO_ISSUES[index]
        org = repo.split("/")[0]
        issue = state.add_issue(
            repo,
            title=title,
            user=rng.choice(MEMBERS[org]),
            body=f"{title}.\n\nSee the discussion below.",
            labels=labels,
            is_pr=is_pr,
            created=created_at[index],
        )
        placed.append((repo, issue.number, created_at[index]))
        if closed:
            closers.append((repo, issue.number))
    for planned in plan_comments(rng, placed, DEMO_COMMENTS, anchor, specials=True):
        state.add_comment(
            planned.repo,
            planned.number,
            user=planned.user,
            body=planned.body,
            created=planned.created,
            updated=planned.updated,
        )
    close_issues(state, closers, anchor)
    return GitHubSeedInfo(
        token=DEMO_TOKEN,
        login=DEMO_LOGIN,
        other_token=OTHER_TOKEN,
        other_login=OTHER_LOGIN,
        repos={name: private for name, (private, _) in REPOS.items()},
        users={login: name for login, (name, _) in USERS.items()},
        issues=len(DEMO_ISSUES),
        comments=DEMO_COMMENTS,
        anchor=anchor,
    )


def close_issues(state: GitHubState, closers: list[tuple[str, int]], anchor: datetime) -> None:
    """Close each an hour after its last activity (at most two minutes before the anchor)."""
    latest = anchor - timedelta(minutes=2)
    for repo, number in closers:
        issue = state.issue(repo, number)
        last = datetime.fromtimestamp(issue.updated, UTC)
        state.update_issue(
            repo, number, state="closed", by=DEMO_LOGIN, at=min(last + timedelta(hours=1), latest)
        )


__all__ = [
    "DEMO_COMMENTS",
    "DEMO_ISSUES",
    "DEMO_LOGIN",
    "DEMO_TOKEN",
    "OTHER_LOGIN",
    "OTHER_TOKEN",
    "GitHubSeedInfo",
    "seed_demo",
]
