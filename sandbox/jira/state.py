"""The Jira sandbox's store: users, projects, issues, worklogs, comments, the deletion log and
the sandbox clock. Pure Python, one lock, no HTTP (``app.py`` renders and serves it).

Ids are numbers, as in Jira (rendered as strings in issue and worklog JSON, as numbers in the
``/worklog/updated`` feed). Instants are stored as epoch milliseconds; a worklog's ``started``
is an aware datetime. Every change sets the touched issue's ``updated`` (and a worklog's own
``updated``) to the sandbox clock.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sandbox.common.clock import SandboxClock

FIRST_ID = 10000


def utcnow() -> datetime:
    return datetime.now(UTC)


def to_ms(moment: datetime) -> int:
    if moment.tzinfo is None:
        raise ValueError("naive datetime: the sandbox needs timezone-aware instants")
    return int(moment.timestamp() * 1000)


def from_ms(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, UTC)


@dataclass(slots=True)
class User:
    account_id: str
    display_name: str
    email: str
    time_zone: str = "Europe/Berlin"
    active: bool = True


@dataclass(slots=True)
class Project:
    id: int
    key: str
    name: str
    next_number: int = 1
    # False: the API account lost its Browse projects permission here (or the project is
    # gone for it): searches, issue reads and worklog lists act as if it did not exist
    browsable: bool = True


@dataclass(slots=True)
class Issue:
    id: int
    key: str
    project_key: str
    summary: str
    labels: tuple[str, ...]
    issuetype: str
    reporter: str
    created_ms: int
    updated_ms: int
    old_keys: tuple[str, ...] = ()

    @property
    def number(self) -> int:
        return int(self.key.rsplit("-", 1)[1])


@dataclass(slots=True)
class Worklog:
    """A worklog; ``raw`` set means "serve this dict exactly as stored" (bad-input tests)."""

    id: int
    issue_id: int
    author: str
    update_author: str
    started: datetime
    seconds: int
    comment: str
    created_ms: int
    updated_ms: int
    raw: dict[str, Any] | None = None


@dataclass(slots=True)
class Comment:
    id: int
    issue_id: int
    author: str
    body: str
    created_ms: int
    updated_ms: int


@dataclass(frozen=True, slots=True)
class Change:
    """One entry of the ``/worklog/updated`` or ``/worklog/deleted`` feed."""

    worklog_id: int
    time_ms: int


class NotFound(LookupError):
    """No such issue / worklog / project (the app answers 404, the admin API 404)."""


class Invalid(ValueError):
    """A request the store refuses (the admin API answers 400)."""


@dataclass
class _Store:
    users: dict[str, User] = field(default_factory=dict)
    api_tokens: dict[tuple[str, str], str] = field(default_factory=dict)
    pats: dict[str, str] = field(default_factory=dict)
    projects: dict[str, Project] = field(default_factory=dict)
    issues: dict[int, Issue] = field(default_factory=dict)
    keys: dict[str, int] = field(default_factory=dict)
    worklogs: dict[int, Worklog] = field(default_factory=dict)
    by_issue: dict[int, list[int]] = field(default_factory=dict)
    comments: dict[int, list[Comment]] = field(default_factory=dict)
    deleted: list[Change] = field(default_factory=list)
    next_issue_id: int = FIRST_ID
    next_worklog_id: int = FIRST_ID
    next_comment_id: int = FIRST_ID
    next_project_id: int = FIRST_ID


class JiraState:
    """Everything the Jira sandbox knows, behind one lock.

    ``now``: freeze the sandbox clock at this instant (default: the real clock). ``reset()``
    empties the store and puts the clock back to how it was created.
    """

    def __init__(self, *, now: datetime | None = None) -> None:
        self.clock = SandboxClock(now)
        self._lock = threading.RLock()
        self._s = _Store()
        self._feed: list[Change] | None = None

    def reset(self) -> None:
        with self._lock:
            self._s = _Store()
            self._feed = None
            self.clock.restore()

    # -- users and credentials --------------------------------------------------------------

    def add_user(
        self,
        account_id: str,
        display_name: str,
        email: str,
        *,
        time_zone: str = "Europe/Berlin",
        api_token: str | None = None,
        pat: str | None = None,
    ) -> User:
        user = User(account_id, display_name, email, time_zone)
        with self._lock:
            self._s.users[account_id] = user
            if api_token is not None:
                self._s.api_tokens[(email.lower(), api_token)] = account_id
            if pat is not None:
                self._s.pats[pat] = account_id
        return user

    def user(self, account_id: str) -> User:
        with self._lock:
            found = self._s.users.get(account_id)
        return found if found is not None else User(account_id, account_id, "", active=False)

    def users(self) -> list[User]:
        with self._lock:
            return list(self._s.users.values())

    def authenticate_basic(self, email: str, token: str) -> User | None:
        with self._lock:
            account_id = self._s.api_tokens.get((email.lower(), token))
            return self._s.users.get(account_id) if account_id else None

    def authenticate_bearer(self, pat: str) -> User | None:
        with self._lock:
            account_id = self._s.pats.get(pat)
            return self._s.users.get(account_id) if account_id else None

    # -- projects and issues ----------------------------------------------------------------

    def add_project(self, key: str, name: str) -> Project:
        if not key.isalnum() or not key.isupper() or not key[0].isalpha():
            raise Invalid(f"project key {key!r}: must be upper-case letters and digits")
        with self._lock:
            if key in self._s.projects:
                raise Invalid(f"project {key} exists")
            project = Project(self._s.next_project_id, key, name)
            self._s.next_project_id += 1
            self._s.projects[key] = project
            return project

    def project(self, key_or_id: str) -> Project | None:
        with self._lock:
            found = self._s.projects.get(key_or_id.upper())
            if found is None:
                for project in self._s.projects.values():
                    if str(project.id) == key_or_id or project.name.lower() == key_or_id.lower():
                        return project
            return found

    def projects(self) -> list[Project]:
        with self._lock:
            return list(self._s.projects.values())

    def add_issue(
        self,
        *,
        project: str | None = None,
        key: str | None = None,
        summary: str,
        labels: Iterable[str] = (),
        issuetype: str = "Task",
        reporter: str = "",
        created: datetime | None = None,
    ) -> Issue:
        """A new issue in ``project`` (next number), or with exactly ``key``."""
        if key is not None:
            prefix, _, number = key.rpartition("-")
            if not prefix or not number.isdigit() or int(number) < 1:
                raise Invalid(f"issue key {key!r}: must look like PROJ-123")
            if project is not None and project != prefix:
                raise Invalid(f"issue key {key} is not in project {project}")
            project = prefix
        if project is None:
            raise Invalid("an issue needs a project or a key")
        now_ms = self.clock.now_ms()
        created_ms = to_ms(created) if created is not None else now_ms
        with self._lock:
            owner = self._s.projects.get(project)
            if owner is None:
                raise NotFound(f"project {project} does not exist")
            if key is None:
                key = f"{project}-{owner.next_number}"
            if key in self._s.keys:
                raise Invalid(f"issue key {key} is taken")
            owner.next_number = max(owner.next_number, int(key.rsplit("-", 1)[1]) + 1)
            issue = Issue(
                id=self._s.next_issue_id,
                key=key,
                project_key=project,
                summary=summary,
                labels=tuple(labels),
                issuetype=issuetype,
                reporter=reporter,
                created_ms=created_ms,
                updated_ms=max(created_ms, now_ms) if created is None else created_ms,
            )
            self._s.next_issue_id += 1
            self._s.issues[issue.id] = issue
            self._s.keys[key] = issue.id
            self._s.by_issue[issue.id] = []
            return issue

    def set_browsable(self, key: str, browsable: bool) -> Project:
        with self._lock:
            project = self._s.projects.get(key.upper())
            if project is None:
                raise NotFound(f"project {key} does not exist")
            project.browsable = browsable
            return project

    def browsable(self, issue: Issue) -> bool:
        """Whether the API account may see ``issue`` (its project's Browse permission)."""
        with self._lock:
            project = self._s.projects.get(issue.project_key)
            return project is not None and project.browsable

    def find_issue(self, id_or_key: str | int) -> Issue | None:
        """By id, current key or any key the issue had before a move (Jira redirects those)."""
        text = str(id_or_key)
        with self._lock:
            if text.isdigit():
                return self._s.issues.get(int(text))
            issue_id = self._s.keys.get(text.upper())
            return self._s.issues.get(issue_id) if issue_id is not None else None

    def issue(self, id_or_key: str | int) -> Issue:
        found = self.find_issue(id_or_key)
        if found is None:
            raise NotFound(f"issue {id_or_key} does not exist")
        return found

    def issues(self) -> list[Issue]:
        with self._lock:
            return list(self._s.issues.values())

    def key_exists(self, key: str) -> bool:
        with self._lock:
            return key.upper() in self._s.keys

    def update_issue(
        self,
        id_or_key: str | int,
        *,
        summary: str | None = None,
        labels: Iterable[str] | None = None,
        issuetype: str | None = None,
    ) -> Issue:
        with self._lock:
            issue = self.issue(id_or_key)
            if summary is not None:
                issue.summary = summary
            if labels is not None:
                issue.labels = tuple(labels)
            if issuetype is not None:
                issue.issuetype = issuetype
            issue.updated_ms = self.clock.now_ms()
            return issue

    def move_issue(self, id_or_key: str | int, project: str) -> Issue:
        """Move to ``project``: a new key there, the same id; old keys keep resolving."""
        with self._lock:
            issue = self.issue(id_or_key)
            target = self._s.projects.get(project)
            if target is None:
                raise NotFound(f"project {project} does not exist")
            if target.key == issue.project_key:
                raise Invalid(f"issue {issue.key} is already in project {project}")
            new_key = f"{target.key}-{target.next_number}"
            target.next_number += 1
            issue.old_keys = (*issue.old_keys, issue.key)
            issue.key = new_key
            issue.project_key = target.key
            issue.updated_ms = self.clock.now_ms()
            self._s.keys[new_key] = issue.id
            return issue

    # -- worklogs ---------------------------------------------------------------------------

    def add_worklog(
        self,
        issue: str | int,
        *,
        author: str,
        started: datetime,
        seconds: int,
        comment: str = "",
        created: datetime | None = None,
        updated: datetime | None = None,
    ) -> Worklog:
        """Log work; ``created``/``updated`` default to the sandbox clock (data loaders pass
        them to build a past; the issue's ``updated`` then follows the newest one)."""
        to_ms(started)
        now_ms = self.clock.now_ms()
        created_ms = to_ms(created) if created is not None else now_ms
        updated_ms = to_ms(updated) if updated is not None else created_ms
        with self._lock:
            owner = self.issue(issue)
            worklog = Worklog(
                id=self._s.next_worklog_id,
                issue_id=owner.id,
                author=author,
                update_author=author,
                started=started,
                seconds=seconds,
                comment=comment,
                created_ms=created_ms,
                updated_ms=updated_ms,
            )
            self._store_worklog(owner, worklog)
            return worklog

    def add_raw_worklog(self, issue: str | int, raw: dict[str, Any]) -> Worklog:
        """Store ``raw`` to be served exactly as given (it may be broken on purpose).

        Its id is ``raw["id"]`` when that is a number (or numeric string) not in use, else the
        next free id; it counts as updated now.
        """
        now_ms = self.clock.now_ms()
        with self._lock:
            owner = self.issue(issue)
            raw_id = raw.get("id")
            worklog_id = self._s.next_worklog_id
            if isinstance(raw_id, int | str) and str(raw_id).isdigit():
                if int(raw_id) in self._s.worklogs:
                    raise Invalid(f"worklog id {raw_id} is in use")
                worklog_id = int(raw_id)
            worklog = Worklog(
                id=worklog_id,
                issue_id=owner.id,
                author="",
                update_author="",
                started=from_ms(now_ms),
                seconds=0,
                comment="",
                created_ms=now_ms,
                updated_ms=now_ms,
                raw=dict(raw),
            )
            self._store_worklog(owner, worklog)
            return worklog

    def _store_worklog(self, owner: Issue, worklog: Worklog) -> None:
        self._s.worklogs[worklog.id] = worklog
        self._s.by_issue[owner.id].append(worklog.id)
        self._s.next_worklog_id = max(self._s.next_worklog_id, worklog.id + 1)
        owner.updated_ms = max(owner.updated_ms, worklog.updated_ms)
        self._feed = None

    def worklog(self, worklog_id: int) -> Worklog:
        with self._lock:
            found = self._s.worklogs.get(worklog_id)
        if found is None:
            raise NotFound(f"worklog {worklog_id} does not exist")
        return found

    def edit_worklog(
        self,
        worklog_id: int,
        *,
        started: datetime | None = None,
        seconds: int | None = None,
        comment: str | None = None,
        author: str | None = None,
        update_author: str | None = None,
    ) -> Worklog:
        """Change any field; ``updated`` (worklog and issue) becomes the sandbox clock."""
        now_ms = self.clock.now_ms()
        with self._lock:
            worklog = self.worklog(worklog_id)
            if worklog.raw is not None:
                raise Invalid(f"worklog {worklog_id} is raw; store a new raw one instead")
            if started is not None:
                to_ms(started)
                worklog.started = started
            if seconds is not None:
                worklog.seconds = seconds
            if comment is not None:
                worklog.comment = comment
            if author is not None:
                worklog.author = author
            worklog.update_author = update_author or author or worklog.update_author
            worklog.updated_ms = now_ms
            self._s.issues[worklog.issue_id].updated_ms = now_ms
            self._feed = None
            return worklog

    def delete_worklog(self, worklog_id: int) -> None:
        """Gone from every list; it appears in ``/worklog/deleted`` at the sandbox clock."""
        now_ms = self.clock.now_ms()
        with self._lock:
            worklog = self.worklog(worklog_id)
            del self._s.worklogs[worklog_id]
            self._s.by_issue[worklog.issue_id].remove(worklog_id)
            self._s.issues[worklog.issue_id].updated_ms = now_ms
            self._s.deleted.append(Change(worklog_id, now_ms))
            self._feed = None

    def issue_worklogs(self, issue_id: int) -> list[Worklog]:
        """The issue's worklogs in creation order (then id), as Jira lists them."""
        with self._lock:
            found = [self._s.worklogs[i] for i in self._s.by_issue.get(issue_id, ())]
        return sorted(found, key=lambda w: (w.created_ms, w.id))

    def worklogs_by_ids(self, ids: Iterable[int]) -> list[Worklog]:
        """The existing ones among ``ids``, each once, in the order asked; unknown ids skipped."""
        seen: set[int] = set()
        result: list[Worklog] = []
        with self._lock:
            for worklog_id in ids:
                found = self._s.worklogs.get(worklog_id)
                if found is not None and worklog_id not in seen:
                    seen.add(worklog_id)
                    result.append(found)
        return result

    def worklog_count(self) -> int:
        with self._lock:
            return len(self._s.worklogs)

    def iter_worklogs(self) -> Iterator[Worklog]:
        with self._lock:
            snapshot = list(self._s.worklogs.values())
        return iter(snapshot)

    def changed_since(
        self, since_ms: int, *, deleted: bool, limit: int, window_ms: int
    ) -> tuple[list[Change], bool]:
        """The feed page from ``since_ms`` (inclusive), oldest first, leaving out the changes of
        the last ``window_ms`` of the sandbox clock: (page, whether it is the last page)."""
        cutoff = self.clock.now_ms() - window_ms
        with self._lock:
            if deleted:
                feed = sorted(self._s.deleted, key=lambda c: (c.time_ms, c.worklog_id))
            else:
                if self._feed is None:
                    self._feed = sorted(
                        (Change(w.id, w.updated_ms) for w in self._s.worklogs.values()),
                        key=lambda c: (c.time_ms, c.worklog_id),
                    )
                feed = self._feed
        start = _bisect_ms(feed, since_ms)
        page: list[Change] = []
        index = start
        while index < len(feed) and len(page) < limit and feed[index].time_ms <= cutoff:
            page.append(feed[index])
            index += 1
        is_last = index >= len(feed) or feed[index].time_ms > cutoff
        return page, is_last

    # -- comments ---------------------------------------------------------------------------

    def add_comment(
        self, issue: str | int, *, author: str, body: str, created: datetime | None = None
    ) -> Comment:
        now_ms = self.clock.now_ms()
        created_ms = to_ms(created) if created is not None else now_ms
        with self._lock:
            owner = self.issue(issue)
            comment = Comment(
                self._s.next_comment_id, owner.id, author, body, created_ms, created_ms
            )
            self._s.next_comment_id += 1
            self._s.comments.setdefault(owner.id, []).append(comment)
            owner.updated_ms = max(owner.updated_ms, created_ms)
            return comment

    def issue_comments(self, issue_id: int) -> list[Comment]:
        with self._lock:
            return list(self._s.comments.get(issue_id, ()))


def _bisect_ms(feed: list[Change], since_ms: int) -> int:
    low, high = 0, len(feed)
    while low < high:
        middle = (low + high) // 2
        if feed[middle].time_ms < since_ms:
            low = middle + 1
        else:
            high = middle
    return low
