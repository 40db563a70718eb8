"""The fixed demo data every fresh (or reset) Jira sandbox starts with.

Credentials are constants because ``examples/sandbox.toml``, the docs and the tests hardcode
them. Demo user ``demo@billsync.test``: API token ``jira-sandbox-token`` (HTTP Basic, as on
Cloud) and personal access token ``jira-sandbox-pat`` (``Authorization: Bearer``, Data Center
style). Three more users log work; none of them can sign in.

Projects ACME ("Acme website"), GLX ("Globex platform") and INT ("Internal") hold 30 issues;
four ACME issues carry the label ``internal``. 250 worklogs, in 15-minute steps on weekdays,
are spread over the 8 weeks before the sandbox clock's "now" (the anchor); every one of them
was created and last updated more than a minute before the anchor, so the whole history is
visible in ``/worklog/updated`` at once. The same anchor gives the same data.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sandbox.jira.state import JiraState

# Public, documented demo credentials of a loopback-only fake, not secrets.
DEMO_EMAIL = "demo@billsync.test"
DEMO_API_TOKEN = "jira-sandbox-token"  # noqa: S105
DEMO_PAT = "jira-sandbox-pat"
DEMO_ACCOUNT_ID = "712020:5f0c1b7e-0d1a-4c2b-9e3f-0000000000d0"
DEMO_TIME_ZONE = "Europe/Berlin"

# (accountId, displayName, email, time zone)
USERS: tuple[tuple[str, str, str, str], ...] = (
    (DEMO_ACCOUNT_ID, "Demo User", DEMO_EMAIL, DEMO_TIME_ZONE),
    (
        "712020:a11ce000-0000-4000-8000-00000000a11c",
        "Alice Andersen",
        "alice@billsync.test",
        "Europe/Berlin",
    ),
    (
        "712020:b0b00000-0000-4000-8000-00000000b0b0",
        "Bob Brown",
        "bob@billsync.test",
        "Europe/London",
    ),
    (
        "712020:ca201000-0000-4000-8000-00000000ca20",
        "Carol Castillo",
        "carol@billsync.test",
        "America/New_York",
    ),
)
WORKER_IDS = tuple(user[0] for user in USERS)

PROJECTS: dict[str, str] = {"ACME": "Acme website", "GLX": "Globex platform", "INT": "Internal"}

DEMO_SEED = 7
DEMO_WORKLOGS = 250
DEMO_WEEKS = 8

# (project, summary, labels, issuetype)
DEMO_ISSUES: tuple[tuple[str, str, tuple[str, ...], str], ...] = (
    ("ACME", "Redesign the landing page hero section", (), "Story"),
    ("ACME", "Fix broken password reset link", ("bug-bash",), "Bug"),
    ("ACME", "Add cookie consent banner", ("legal",), "Task"),
    ("ACME", "Migrate contact form to the new mail API", (), "Task"),
    ("ACME", "Team offsite planning", ("internal",), "Task"),
    ("ACME", "Improve Lighthouse performance score", ("performance",), "Story"),
    ("ACME", "Product catalogue: filter by category", (), "Story"),
    ("ACME", "Internal retro and estimation session", ("internal",), "Task"),
    ("ACME", "Checkout shows wrong VAT for Austria", ("bug-bash",), "Bug"),
    ("ACME", "Onboard new frontend developer", ("internal",), "Task"),
    ("ACME", "Newsletter signup double opt-in", (), "Task"),
    ("ACME", "Sales demo preparation", ("internal", "presales"), "Task"),
    ("GLX", "Set up CI pipeline for the billing service", ("devops",), "Task"),
    ("GLX", "Rate limiter for the public API", (), "Story"),
    ("GLX", "Investigate memory leak in worker pods", ("incident",), "Bug"),
    ("GLX", "Kubernetes upgrade to 1.34", ("devops",), "Task"),
    ("GLX", "Export invoices as CSV", (), "Story"),
    ("GLX", "Single sign-on with Okta", ("security",), "Story"),
    ("GLX", "Database failover drill", ("devops",), "Task"),
    ("GLX", "Search returns stale results after reindex", (), "Bug"),
    ("GLX", "Audit log for admin actions", ("security",), "Story"),
    ("GLX", "Platform roadmap workshop", (), "Epic"),
    ("INT", "Weekly team meeting", (), "Task"),
    ("INT", "Hiring: interviews", (), "Task"),
    ("INT", "Laptop setup and IT support", (), "Task"),
    ("INT", "Conference talk preparation", (), "Task"),
    ("INT", "Update the engineering handbook", (), "Task"),
    ("INT", "Security awareness training", (), "Task"),
    ("INT", "Quarterly planning", (), "Task"),
    ("INT", "Open-source maintenance", (), "Task"),
)

COMMENTS = (
    "Looks good to me.",
    "Deployed to staging, please have a look.",
    "Blocked by the customer's feedback.\nWill pick it up next week.",
    "Estimated at two days.",
)


@dataclass(frozen=True)
class JiraSeedInfo:
    """What a seeder created; ``GET /_sandbox/info`` serves it as JSON."""

    email: str
    api_token: str
    pat: str
    account_id: str
    time_zone: str
    projects: dict[str, str]
    users: dict[str, str]
    issues: int
    worklogs: int
    anchor: datetime
    extra: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "email": self.email,
            "apiToken": self.api_token,
            "pat": self.pat,
            "accountId": self.account_id,
            "timeZone": self.time_zone,
            "projects": dict(self.projects),
            "users": dict(self.users),
            "issues": self.issues,
            "worklogs": self.worklogs,
            "anchor": self.anchor.isoformat(),
            **self.extra,
        }


def add_demo_users(state: JiraState) -> None:
    """The four users; only the demo user has credentials."""
    for account_id, name, email, zone in USERS:
        is_demo = account_id == DEMO_ACCOUNT_ID
        state.add_user(
            account_id,
            name,
            email,
            time_zone=zone,
            api_token=DEMO_API_TOKEN if is_demo else None,
            pat=DEMO_PAT if is_demo else None,
        )


def work_slot(
    rng: random.Random, anchor: datetime, days: int, zone: str
) -> tuple[datetime, int, datetime, datetime]:
    """A plausible worklog within ``days`` before ``anchor``: (started, seconds, created,
    updated). Starts on a weekday between 08:00 and 17:45 local time in 15-minute steps;
    15 min to 4 h long; logged up to 3 h after it ended (and at least 2 minutes before the
    anchor); one in ten edited later."""
    local_anchor = anchor.astimezone(ZoneInfo(zone))
    while True:
        day = local_anchor.date() - timedelta(days=rng.randrange(1, days + 1))
        if day.weekday() < 5:
            break
    minute = rng.randrange(8 * 4, 18 * 4) * 15
    started = datetime.combine(day, time(minute // 60, minute % 60), ZoneInfo(zone))
    seconds = rng.choice((1, 1, 2, 2, 3, 4, 4, 6, 8, 10, 12, 16)) * 15 * 60
    latest = anchor - timedelta(minutes=2)
    created = started + timedelta(seconds=seconds + rng.randrange(0, 3 * 3600))
    created = min(created, latest - timedelta(milliseconds=rng.randrange(0, 3_600_000)))
    created = created.replace(microsecond=rng.randrange(0, 1000) * 1000)
    updated = created
    if rng.random() < 0.1:
        updated = min(created + timedelta(hours=rng.randrange(1, 72)), latest)
        updated = max(updated, created)
    return started, seconds, created, updated


def seed_demo(state: JiraState) -> JiraSeedInfo:
    """Fill an empty ``state`` with the demo data, anchored at the sandbox clock's now."""
    anchor = state.clock.now()
    rng = random.Random(DEMO_SEED)
    add_demo_users(state)
    for key, name in PROJECTS.items():
        state.add_project(key, name)
    earliest = anchor - timedelta(weeks=DEMO_WEEKS + 2)
    issue_ids: list[int] = []
    for index, (project, summary, labels, issuetype) in enumerate(DEMO_ISSUES):
        created = earliest + timedelta(hours=7 * index, minutes=rng.randrange(0, 60))
        issue = state.add_issue(
            project=project,
            summary=summary,
            labels=labels,
            issuetype=issuetype,
            reporter=DEMO_ACCOUNT_ID,
            created=created,
        )
        issue_ids.append(issue.id)
    zones = {user[0]: user[3] for user in USERS}
    for _ in range(DEMO_WORKLOGS):
        author = rng.choice(WORKER_IDS)
        started, seconds, created, updated = work_slot(rng, anchor, DEMO_WEEKS * 7, zones[author])
        comment = rng.choice(("", "", "Implementation", "Code review", "Call with the client"))
        state.add_worklog(
            rng.choice(issue_ids),
            author=author,
            started=started,
            seconds=seconds,
            comment=comment,
            created=created,
            updated=updated,
        )
    for index, issue_id in enumerate(issue_ids[::3]):
        state.add_comment(
            issue_id,
            author=rng.choice(WORKER_IDS),
            body=COMMENTS[index % len(COMMENTS)],
            created=anchor - timedelta(days=rng.randrange(1, 40), minutes=rng.randrange(0, 600)),
        )
    return JiraSeedInfo(
        email=DEMO_EMAIL,
        api_token=DEMO_API_TOKEN,
        pat=DEMO_PAT,
        account_id=DEMO_ACCOUNT_ID,
        time_zone=DEMO_TIME_ZONE,
        projects=dict(PROJECTS),
        users={user[0]: user[1] for user in USERS},
        issues=len(DEMO_ISSUES),
        worklogs=DEMO_WORKLOGS,
        anchor=anchor,
    )
