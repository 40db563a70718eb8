"""A deterministic generated dataset of any size, for benchmarks and scale tests.

    data = generate(7, repos=3, issues=200, comments=5_000, anchor=now)
    app = create_app(GitHubState(now=now), seed=data)    # a Dataset is a seeder

``generate`` only records the parameters; :meth:`Dataset.load` draws everything from
``random.Random(seed)`` straight into the state (5,000 comments load in well under a second).
The same seed, sizes and anchor give the same data, ids included. The demo users,
organizations and tokens of ``seed.py`` are always added. Repositories are ``acme/website``,
``acme/api``, ``globex/platform`` and then ``acme/service-04``, ``globex/service-05``, …;
every third one is private (visible to ``octo-demo``, not to ``carol-qa``).
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sandbox.github.seed import (
    DEMO_LOGIN,
    DEMO_TOKEN,
    MEMBERS,
    OTHER_LOGIN,
    OTHER_TOKEN,
    REPOS,
    USERS,
    GitHubSeedInfo,
    add_demo_accounts,
    close_issues,
    plan_comments,
    work_time,
)
from sandbox.github.state import GitHubState

VERBS = ("Fix", "Add", "Refactor", "Document", "Investigate", "Speed up", "Test", "Remove")
NOUNS = (
    "login flow", "invoice export", "search index", "payment webhook", "user settings page",
    "API rate limiter", "mobile layout", "audit log", "onboarding email", "report builder",
)  # fmt: skip
LABELS = ("internal", "bug", "enhancement", "devops", "security")


def repo_names(count: int) -> list[tuple[str, bool]]:
    """(full name, private) of the first ``count`` generated repositories."""
    names = [(name, private) for name, (private, _) in REPOS.items()][:count]
    for index in range(len(names), count):
        org = ("globex", "acme")[index % 2]
        names.append((f"{org}/service-{index + 1:02d}", index % 3 == 2))
    return names


@dataclass(frozen=True)
class Dataset:
    """The recipe of a generated dataset; call it (or :meth:`load`) with a state to fill it."""

    seed: int
    repos: int
    issues: int
    comments: int
    anchor: datetime | None
    weeks: int = 8
    pr_share: float = 0.3
    labelled_share: float = 0.2
    closed_share: float = 0.3

    def load(self, state: GitHubState) -> GitHubSeedInfo:
        anchor = (self.anchor or state.clock.now()).astimezone(UTC).replace(microsecond=0)
        rng = random.Random(self.seed)
        earliest = anchor - timedelta(weeks=self.weeks + 1)
        add_demo_accounts(state, created=earliest - timedelta(days=400))
        names = repo_names(self.repos)
        for full_name, private in names:
            owner, name = full_name.split("/")
            state.add_repo(
                owner,
                name,
                private=private,
                description=f"{name} (generated)",
                members=MEMBERS[owner],
                created=earliest - timedelta(days=200),
            )
        placed: list[tuple[str, int, datetime]] = []
        closers: list[tuple[str, int]] = []
        spacing = timedelta(weeks=self.weeks) / max(self.issues, 1)
        for index in range(self.issues if names else 0):
            full_name = names[index % len(names)][0]
            labels: tuple[str, ...] = ()
            if rng.random() < self.labelled_share:
                labels = (rng.choice(LABELS),)
            base = earliest + spacing * index
            created = work_time(rng, base, base + spacing).replace(microsecond=0)
            created = max(created, placed[-1][2] if placed else created)
            issue = state.add_issue(
                full_name,
                title=f"{rng.choice(VERBS)} {rng.choice(NOUNS)} ({index + 1})",
                user=rng.choice(MEMBERS[full_name.split("/")[0]]),
                body="Generated issue.",
                labels=labels,
                is_pr=rng.random() < self.pr_share,
                created=created,
            )
            placed.append((full_name, issue.number, created))
            if rng.random() < self.closed_share:
                closers.append((full_name, issue.number))
        if placed:
            for planned in plan_comments(rng, placed, self.comments, anchor, specials=False):
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
            repos=dict(names),
            users={login: name for login, (name, _) in USERS.items()},
            issues=len(placed),
            comments=self.comments if placed else 0,
            anchor=anchor,
            extra={"generated": {"seed": self.seed, "repos": self.repos, "weeks": self.weeks}},
        )

    __call__ = load


def generate(
    seed: int,
    *,
    repos: int = 3,
    issues: int,
    comments: int,
    anchor: datetime | None = None,
    weeks: int = 8,
) -> Dataset:
    """A dataset of ``repos`` repositories, ``issues`` issues and pull requests (round-robin
    over the repositories) and ``comments`` comments over the ``weeks`` before ``anchor``
    (default: the sandbox clock's now when loaded)."""
    if repos < 0 or issues < 0 or comments < 0:
        raise ValueError("repos, issues and comments must be >= 0")
    return Dataset(
        seed=seed, repos=repos, issues=issues, comments=comments, anchor=anchor, weeks=weeks
    )
