"""A deterministic generated dataset of any size, for benchmarks and scale tests.

    data = generate(7, issues=2_000, worklogs=50_000, anchor=now)
    app = create_app(JiraState(now=now), seed=data)    # a Dataset is a seeder

``generate`` only records the parameters; :meth:`Dataset.load` streams issues and worklogs
straight into the state from ``random.Random(seed)``, so nothing but the store holds them
(50,000 worklogs load in well under a few seconds). The same seed, sizes and anchor give the
same data, ids included. The demo users and credentials of ``seed.py`` are always added.
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sandbox.jira.seed import (
    DEMO_ACCOUNT_ID,
    DEMO_API_TOKEN,
    DEMO_EMAIL,
    DEMO_PAT,
    DEMO_TIME_ZONE,
    PROJECTS,
    USERS,
    WORKER_IDS,
    JiraSeedInfo,
    add_demo_users,
    work_slot,
)
from sandbox.jira.state import JiraState

VERBS = ("Fix", "Add", "Refactor", "Document", "Investigate", "Speed up", "Test", "Remove")
NOUNS = (
    "login flow", "invoice export", "search index", "payment webhook", "user settings page",
    "API rate limiter", "mobile layout", "audit log", "onboarding email", "report builder",
)  # fmt: skip
LABELS = ("internal", "bug-bash", "devops", "security", "performance")


@dataclass(frozen=True)
class Dataset:
    """The recipe of a generated dataset; call it (or :meth:`load`) with a state to fill it."""

    seed: int
    projects: Mapping[str, str]
    issues: int
    worklogs: int
    anchor: datetime | None
    weeks: int = 8
    labelled_share: float = 0.1
    extra: dict[str, object] = field(default_factory=dict)

    def load(self, state: JiraState) -> JiraSeedInfo:
        anchor = self.anchor or state.clock.now()
        rng = random.Random(self.seed)
        add_demo_users(state)
        keys = list(self.projects)
        for key in keys:
            state.add_project(key, self.projects[key])
        earliest = anchor - timedelta(weeks=self.weeks + 2)
        spacing = timedelta(weeks=2) / max(self.issues, 1)
        first_issue_id: int | None = None
        for index in range(self.issues):
            labels: tuple[str, ...] = ()
            if rng.random() < self.labelled_share:
                labels = (rng.choice(LABELS),)
            issue = state.add_issue(
                project=keys[index % len(keys)],
                summary=f"{rng.choice(VERBS)} {rng.choice(NOUNS)} ({index + 1})",
                labels=labels,
                issuetype=rng.choice(("Task", "Task", "Story", "Bug")),
                reporter=DEMO_ACCOUNT_ID,
                created=earliest + spacing * index,
            )
            if first_issue_id is None:
                first_issue_id = issue.id
        zones = {user[0]: user[3] for user in USERS}
        if self.issues and first_issue_id is not None:
            for _ in range(self.worklogs):
                author = rng.choice(WORKER_IDS)
                started, seconds, created, updated = work_slot(
                    rng, anchor, self.weeks * 7, zones[author]
                )
                state.add_worklog(
                    first_issue_id + rng.randrange(self.issues),
                    author=author,
                    started=started,
                    seconds=seconds,
                    created=created,
                    updated=updated,
                )
        return JiraSeedInfo(
            email=DEMO_EMAIL,
            api_token=DEMO_API_TOKEN,
            pat=DEMO_PAT,
            account_id=DEMO_ACCOUNT_ID,
            time_zone=DEMO_TIME_ZONE,
            projects=dict(self.projects),
            users={user[0]: user[1] for user in USERS},
            issues=self.issues,
            worklogs=self.worklogs if self.issues else 0,
            anchor=anchor,
            extra={"generated": {"seed": self.seed, **self.extra}},
        )

    __call__ = load


def generate(
    seed: int,
    *,
    projects: Mapping[str, str] | None = None,
    issues: int,
    worklogs: int,
    anchor: datetime | None = None,
    weeks: int = 8,
) -> Dataset:
    """A dataset of ``issues`` issues (round-robin over ``projects``, default ACME/GLX/INT)
    and ``worklogs`` worklogs over the ``weeks`` before ``anchor`` (default: the sandbox
    clock's now when loaded)."""
    if issues < 0 or worklogs < 0:
        raise ValueError("issues and worklogs must be >= 0")
    return Dataset(
        seed=seed,
        projects=dict(projects or PROJECTS),
        issues=issues,
        worklogs=worklogs,
        anchor=anchor,
        weeks=weeks,
    )
