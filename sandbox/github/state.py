"""The GitHub sandbox's store: accounts (users and organizations) and their tokens,
repositories, issues and pull requests, issue comments, the sandbox clock and the primary
rate-limit budgets. Pure Python, one lock, no HTTP (``app.py`` renders and serves it).

Instants are whole UTC epoch seconds, as GitHub's timestamps have no fractions. Ids grow with
creation, so "ascending id" is "oldest first", as on GitHub. What moves an issue's
``updated_at``: creating it, changing its title, body, labels or state, and a new comment
(at the comment's creation time). Editing or deleting a comment does not (GitHub keeps no
trace of a deletion anywhere in the REST API).
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

from sandbox.common.clock import SandboxClock

IssueState = Literal["open", "closed"]
AccountType = Literal["User", "Organization"]

USER_LIMIT = 5000  # per user and hour (all of a user's tokens share it)
ANONYMOUS_LIMIT = 60  # per client address and hour
WINDOW_SECONDS = 3600

FIRST_ACCOUNT_ID = 90001
FIRST_REPO_ID = 700_000_001
FIRST_ISSUE_ID = 3_100_000_001
FIRST_COMMENT_ID = 2_500_000_001
FIRST_LABEL_ID = 6_000_000_001


def epoch(moment: datetime) -> int:
    if moment.tzinfo is None:
        raise ValueError("naive datetime: the sandbox needs timezone-aware instants")
    return int(moment.timestamp())


@dataclass(slots=True)
class Account:
    id: int
    login: str
    name: str
    type: AccountType
    email: str | None
    created: int
    updated: int


@dataclass(slots=True)
class Repo:
    id: int
    owner: str
    name: str
    private: bool
    description: str
    members: set[str]  # logins (case-folded) who may see it and count as MEMBER
    created: int
    updated: int
    pushed: int
    labels: dict[str, int] = field(default_factory=dict)  # case-folded name -> label id
    label_names: dict[str, str] = field(default_factory=dict)  # case-folded -> as written
    next_number: int = 1

    @property
    def full_name(self) -> str:
        return f"{self.owner}/{self.name}"


@dataclass(slots=True)
class Issue:
    id: int
    repo_id: int
    number: int
    title: str
    body: str | None
    user: str
    labels: tuple[str, ...]
    state: IssueState
    is_pr: bool
    created: int
    updated: int
    closed: int | None = None
    closed_by: str | None = None
    state_reason: str | None = None


@dataclass(slots=True)
class Comment:
    id: int
    repo_id: int
    issue_number: int
    user: str
    body: str
    created: int
    updated: int


@dataclass(frozen=True, slots=True)
class Rate:
    """A budget as the headers and ``/rate_limit`` show it."""

    limit: int
    used: int
    reset: int

    @property
    def remaining(self) -> int:
        return max(0, self.limit - self.used)


@dataclass(slots=True)
class _Budget:
    limit: int
    used: int = 0
    reset: int | None = None  # None: no window open yet


class NotFound(LookupError):
    """No such account, repository, issue or comment."""


class Invalid(ValueError):
    """A change the store refuses (the admin API answers 400)."""


@dataclass
class _Store:
    accounts: dict[str, Account] = field(default_factory=dict)  # case-folded login
    tokens: dict[str, str] = field(default_factory=dict)  # token -> case-folded login
    repos: dict[int, Repo] = field(default_factory=dict)
    repo_names: dict[str, int] = field(default_factory=dict)  # case-folded full name
    issues: dict[tuple[int, int], Issue] = field(default_factory=dict)  # (repo, number)
    comments: dict[int, Comment] = field(default_factory=dict)
    # (repo, number) an issue was transferred away from -> its id (it keeps it)
    moved: dict[tuple[int, int], int] = field(default_factory=dict)
    budgets: dict[str, _Budget] = field(default_factory=dict)
    limits: dict[str, int] = field(default_factory=dict)  # bucket -> limit set by admin
    next_account_id: int = FIRST_ACCOUNT_ID
    next_repo_id: int = FIRST_REPO_ID
    next_issue_id: int = FIRST_ISSUE_ID
    next_comment_id: int = FIRST_COMMENT_ID
    next_label_id: int = FIRST_LABEL_ID


class GitHubState:
    """Everything the GitHub sandbox knows, behind one lock.

    ``now``: freeze the sandbox clock at this instant (default: the real clock). ``reset()``
    empties the store (budgets too) and puts the clock back to how it was created.
    ``limit_status`` is the status a primary rate-limit refusal (and an injected
    ``rate_limit`` fault) answers with: 403 (default) or 429, both documented by GitHub.
    """

    def __init__(self, *, now: datetime | None = None) -> None:
        self.clock = SandboxClock(now)
        self._lock = threading.RLock()
        self._s = _Store()
        self.limit_status: Literal[403, 429] = 403

    def reset(self) -> None:
        with self._lock:
            self._s = _Store()
            self.limit_status = 403
            self.clock.restore()

    def _at(self, moment: datetime | None) -> int:
        return epoch(moment) if moment is not None else self.clock.epoch()

    # -- accounts and tokens ----------------------------------------------------------------

    def add_account(
        self,
        login: str,
        *,
        name: str | None = None,
        type: AccountType = "User",
        email: str | None = None,
        tokens: Iterable[str] = (),
        created: datetime | None = None,
    ) -> Account:
        at = self._at(created)
        with self._lock:
            key = login.casefold()
            if key in self._s.accounts:
                raise Invalid(f"account {login} exists")
            account = Account(self._s.next_account_id, login, name or login, type, email, at, at)
            self._s.next_account_id += 1
            self._s.accounts[key] = account
            for token in tokens:
                self.add_token(token, login)
            return account

    def add_token(self, token: str, login: str) -> None:
        with self._lock:
            account = self.account(login)
            if account.type != "User":
                raise Invalid(f"{login} is an organization; tokens belong to users")
            if not token or token in self._s.tokens:
                raise Invalid("a token must be non-empty and unused")
            self._s.tokens[token] = account.login.casefold()

    def find_account(self, login: str) -> Account | None:
        with self._lock:
            return self._s.accounts.get(login.casefold())

    def account(self, login: str) -> Account:
        found = self.find_account(login)
        if found is None:
            raise NotFound(f"account {login} does not exist")
        return found

    def accounts(self) -> list[Account]:
        with self._lock:
            return sorted(self._s.accounts.values(), key=lambda a: a.id)

    def authenticate(self, token: str) -> Account | None:
        with self._lock:
            login = self._s.tokens.get(token)
            return self._s.accounts.get(login) if login is not None else None

    # -- repositories -----------------------------------------------------------------------

    def add_repo(
        self,
        owner: str,
        name: str,
        *,
        private: bool = False,
        description: str = "",
        members: Iterable[str] = (),
        created: datetime | None = None,
    ) -> Repo:
        at = self._at(created)
        with self._lock:
            owner_account = self.account(owner)
            full = f"{owner_account.login}/{name}"
            if not name or "/" in name:
                raise Invalid(f"repository name {name!r}")
            if full.casefold() in self._s.repo_names:
                raise Invalid(f"repository {full} exists")
            for login in members:
                self.account(login)
            repo = Repo(
                id=self._s.next_repo_id,
                owner=owner_account.login,
                name=name,
                private=private,
                description=description,
                members={login.casefold() for login in members},
                created=at,
                updated=at,
                pushed=at,
            )
            self._s.next_repo_id += 1
            self._s.repos[repo.id] = repo
            self._s.repo_names[full.casefold()] = repo.id
            return repo

    def find_repo(self, full_name: str) -> Repo | None:
        with self._lock:
            repo_id = self._s.repo_names.get(full_name.casefold())
            return self._s.repos.get(repo_id) if repo_id is not None else None

    def repo(self, full_name: str) -> Repo:
        found = self.find_repo(full_name)
        if found is None:
            raise NotFound(f"repository {full_name} does not exist")
        return found

    def repo_by_id(self, repo_id: int) -> Repo | None:
        with self._lock:
            return self._s.repos.get(repo_id)

    def repos(self) -> list[Repo]:
        with self._lock:
            return list(self._s.repos.values())

    @staticmethod
    def can_see(repo: Repo, login: str | None) -> bool:
        """Public repositories are visible to anyone, private ones to their members."""
        return not repo.private or (login is not None and login.casefold() in repo.members)

    @staticmethod
    def is_member(repo: Repo, login: str) -> bool:
        return login.casefold() in repo.members or login.casefold() == repo.owner.casefold()

    def label_id(self, repo: Repo, name: str) -> int:
        with self._lock:
            key = name.casefold()
            if key not in repo.labels:
                repo.labels[key] = self._s.next_label_id
                repo.label_names[key] = name
                self._s.next_label_id += 1
            return repo.labels[key]

    # -- issues and pull requests -----------------------------------------------------------

    def add_issue(
        self,
        repo_name: str,
        *,
        title: str,
        user: str,
        body: str | None = None,
        labels: Iterable[str] = (),
        is_pr: bool = False,
        created: datetime | None = None,
    ) -> Issue:
        """A new issue (or pull request: they share the numbers) in ``repo_name``."""
        at = self._at(created)
        with self._lock:
            repo = self.repo(repo_name)
            author = self.account(user)
            label_tuple = _dedupe(labels)
            for label in label_tuple:
                self.label_id(repo, label)
            issue = Issue(
                id=self._s.next_issue_id,
                repo_id=repo.id,
                number=repo.next_number,
                title=title,
                body=body,
                user=author.login,
                labels=label_tuple,
                state="open",
                is_pr=is_pr,
                created=at,
                updated=at,
            )
            self._s.next_issue_id += 1
            repo.next_number += 1
            self._s.issues[(repo.id, issue.number)] = issue
            return issue

    def find_issue(self, repo_id: int, number: int) -> Issue | None:
        with self._lock:
            return self._s.issues.get((repo_id, number))

    def issue(self, repo_name: str, number: int) -> Issue:
        repo = self.repo(repo_name)
        found = self.find_issue(repo.id, number)
        if found is None:
            raise NotFound(f"{repo.full_name}#{number} does not exist")
        return found

    def transfer_issue(self, repo_name: str, number: int, to_repo: str) -> Issue:
        """Move an issue (not a pull request) to another repository, as GitHub's transfer
        does: it keeps its id and its comments (and their ids), gets the next number there,
        and keeps the labels the new repository has. Its old address remembers where it went."""
        with self._lock:
            issue = self.issue(repo_name, number)
            target = self.repo(to_repo)
            if issue.is_pr:
                raise Invalid("pull requests cannot be transferred")
            if target.id == issue.repo_id:
                raise Invalid(f"{repo_name}#{number} is already in {target.full_name}")
            old = (issue.repo_id, issue.number)
            del self._s.issues[old]
            self._s.moved[old] = issue.id
            for comment in self._s.comments.values():
                if (comment.repo_id, comment.issue_number) == old:
                    comment.repo_id, comment.issue_number = target.id, target.next_number
            issue.repo_id, issue.number = target.id, target.next_number
            issue.labels = tuple(name for name in issue.labels if name.casefold() in target.labels)
            issue.updated = self.clock.epoch()
            target.next_number += 1
            self._s.issues[(target.id, issue.number)] = issue
            return issue

    def moved_issue(self, repo_id: int, number: int) -> Issue | None:
        """Where an issue transferred away from this address is now."""
        with self._lock:
            issue_id = self._s.moved.get((repo_id, number))
            if issue_id is None:
                return None
            return next((i for i in self._s.issues.values() if i.id == issue_id), None)

    def repo_issues(self, repo_id: int) -> list[Issue]:
        with self._lock:
            return [i for (rid, _), i in self._s.issues.items() if rid == repo_id]

    def update_issue(
        self,
        repo_name: str,
        number: int,
        *,
        title: str | None = None,
        body: str | None = None,
        labels: Iterable[str] | None = None,
        state: IssueState | None = None,
        by: str | None = None,
        at: datetime | None = None,
    ) -> Issue:
        """Change an issue; its ``updated_at`` becomes ``at`` (default: the sandbox clock).
        Closing sets ``closed_at``/``closed_by``; reopening clears them."""
        stamp = self._at(at)
        with self._lock:
            issue = self.issue(repo_name, number)
            repo = self._s.repos[issue.repo_id]
            if title is not None:
                issue.title = title
            if body is not None:
                issue.body = body
            if labels is not None:
                issue.labels = _dedupe(labels)
                for label in issue.labels:
                    self.label_id(repo, label)
            if state is not None and state != issue.state:
                issue.state = state
                if state == "closed":
                    issue.closed = stamp
                    issue.closed_by = self.account(by).login if by else issue.user
                    issue.state_reason = "completed"
                else:
                    issue.closed = None
                    issue.closed_by = None
                    issue.state_reason = "reopened"
            issue.updated = max(issue.updated, stamp)
            return issue

    # -- comments ---------------------------------------------------------------------------

    def add_comment(
        self,
        repo_name: str,
        number: int,
        *,
        user: str,
        body: str,
        created: datetime | None = None,
        updated: datetime | None = None,
    ) -> Comment:
        """A new comment; the issue's ``updated_at`` follows its creation time."""
        created_at = self._at(created)
        updated_at = epoch(updated) if updated is not None else created_at
        if updated_at < created_at:
            raise Invalid("a comment cannot be updated before it was created")
        with self._lock:
            issue = self.issue(repo_name, number)
            author = self.account(user)
            comment = Comment(
                self._s.next_comment_id,
                issue.repo_id,
                issue.number,
                author.login,
                body,
                created_at,
                updated_at,
            )
            self._s.next_comment_id += 1
            self._s.comments[comment.id] = comment
            issue.updated = max(issue.updated, created_at)
            return comment

    def find_comment(self, comment_id: int) -> Comment | None:
        with self._lock:
            return self._s.comments.get(comment_id)

    def comment(self, comment_id: int) -> Comment:
        found = self.find_comment(comment_id)
        if found is None:
            raise NotFound(f"comment {comment_id} does not exist")
        return found

    def edit_comment(self, comment_id: int, *, body: str, at: datetime | None = None) -> Comment:
        """New body; the comment's ``updated_at`` moves, the issue's does not."""
        stamp = self._at(at)
        with self._lock:
            comment = self.comment(comment_id)
            comment.body = body
            comment.updated = max(comment.updated, stamp)
            return comment

    def delete_comment(self, comment_id: int) -> Comment:
        """Gone from every list; nothing else changes (no tombstone, no issue update)."""
        with self._lock:
            comment = self.comment(comment_id)
            del self._s.comments[comment_id]
            return comment

    def repo_comments(self, repo_id: int) -> list[Comment]:
        """The repository's issue and pull-request comments, ascending id."""
        with self._lock:
            return sorted(
                (c for c in self._s.comments.values() if c.repo_id == repo_id),
                key=lambda c: c.id,
            )

    def issue_comments(self, repo_id: int, number: int) -> list[Comment]:
        with self._lock:
            return sorted(
                (
                    c
                    for c in self._s.comments.values()
                    if c.repo_id == repo_id and c.issue_number == number
                ),
                key=lambda c: c.id,
            )

    def comment_counts(self, repo_id: int) -> dict[int, int]:
        counts: dict[int, int] = {}
        with self._lock:
            for c in self._s.comments.values():
                if c.repo_id == repo_id:
                    counts[c.issue_number] = counts.get(c.issue_number, 0) + 1
        return counts

    def comment_total(self) -> int:
        with self._lock:
            return len(self._s.comments)

    # -- primary rate limit -----------------------------------------------------------------

    @staticmethod
    def user_bucket(login: str) -> str:
        return f"user:{login.casefold()}"

    @staticmethod
    def address_bucket(address: str) -> str:
        return f"ip:{address}"

    def _budget(self, bucket: str, now: int) -> _Budget:
        budget = self._s.budgets.get(bucket)
        if budget is None:
            default = USER_LIMIT if bucket.startswith("user:") else ANONYMOUS_LIMIT
            budget = _Budget(self._s.limits.get(bucket, default))
            self._s.budgets[bucket] = budget
        if budget.reset is None or now >= budget.reset:
            budget.used = 0
            budget.reset = now + WINDOW_SECONDS
        return budget

    def rate(self, bucket: str) -> Rate:
        """The bucket's budget now (a window that has passed its reset starts afresh)."""
        with self._lock:
            budget = self._budget(bucket, self.clock.epoch())
            assert budget.reset is not None
            return Rate(budget.limit, budget.used, budget.reset)

    def admit(self, bucket: str) -> bool:
        """False (and the refusal is counted, as GitHub counts it) when the budget is spent."""
        with self._lock:
            budget = self._budget(bucket, self.clock.epoch())
            if budget.used >= budget.limit:
                budget.used += 1
                return False
            return True

    def charge(self, bucket: str) -> None:
        with self._lock:
            self._budget(bucket, self.clock.epoch()).used += 1

    def set_budget(
        self,
        bucket: str,
        *,
        limit: int | None = None,
        remaining: int | None = None,
        used: int | None = None,
        reset: int | None = None,
    ) -> Rate:
        """Change a budget: its hourly ``limit`` (kept across windows), what is left of the
        current window (``remaining`` or ``used``), and when it resets (epoch seconds)."""
        if remaining is not None and used is not None:
            raise Invalid("give remaining or used, not both")
        with self._lock:
            budget = self._budget(bucket, self.clock.epoch())
            if limit is not None:
                if limit < 0:
                    raise Invalid("limit must be >= 0")
                budget.limit = limit
                self._s.limits[bucket] = limit
            if remaining is not None:
                if not 0 <= remaining <= budget.limit:
                    raise Invalid(f"remaining must be between 0 and the limit {budget.limit}")
                budget.used = budget.limit - remaining
            if used is not None:
                if used < 0:
                    raise Invalid("used must be >= 0")
                budget.used = used
            if reset is not None:
                budget.reset = reset
            assert budget.reset is not None
            return Rate(budget.limit, budget.used, budget.reset)

    def budgets(self) -> dict[str, Rate]:
        with self._lock:
            return {bucket: self.rate(bucket) for bucket in sorted(self._s.budgets)}


def _dedupe(labels: Iterable[str]) -> tuple[str, ...]:
    seen: set[str] = set()
    result: list[str] = []
    for label in labels:
        if label.casefold() not in seen:
            seen.add(label.casefold())
            result.append(label)
    return tuple(result)
