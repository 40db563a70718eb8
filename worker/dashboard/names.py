"""What the dashboard shows instead of ids: contract and client names, and links.

Names come from Kukkingu (``GET /contracts`` and ``GET /clients``: two requests), kept for
:data:`NAMES_TTL` seconds. A Kukkingu that does not answer costs one try, not the sync's
retries: the pages show ids meanwhile and ask again after :data:`RETRY_AFTER` seconds.

Links are built from the config: a draft's Kukkingu invoice from ``[dashboard]
invoice_url``; a Jira line's issue and a worklog from the source's ``url``; a GitHub line's
issue and a ``/spend`` comment from the source's web address (github.com for
``api.github.com``, the Enterprise host without ``/api/v3``).
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import quote

log = logging.getLogger("billsync.dashboard")

ENTRY_ID = re.compile(r":(worklog|comment):(\d+)(?::\d+)?$")  # the site may hold a port
NAMES_TTL = 600.0  # seconds a name list is kept
RETRY_AFTER = 60.0  # seconds before asking a Kukkingu that did not answer again


@dataclass(frozen=True)
class ContractName:
    contract: str
    client: str | None


Fetch = Callable[[], dict[str, ContractName]]


class ContractNames:
    """Contract id -> its name and its client's name, from ``fetch``, cached."""

    def __init__(self, fetch: Fetch, clock: Callable[[], float]) -> None:
        self._fetch = fetch
        self._clock = clock
        self._lock = threading.Lock()
        self._names: dict[str, ContractName] = {}
        self._next = 0.0  # when to fetch again

    def get(self) -> dict[str, ContractName]:
        with self._lock:
            if self._clock() >= self._next:
                try:
                    self._names = self._fetch()
                    self._next = self._clock() + NAMES_TTL
                except Exception as exc:  # ids instead of names; never the token
                    log.warning("contract names: Kukkingu did not answer (%s)", type(exc).__name__)
                    self._next = self._clock() + RETRY_AFTER
            return self._names


def github_web(api_url: str | None) -> str:
    """GitHub's web address for an API address."""
    if api_url is None or api_url.rstrip("/") in ("https://api.github.com", ""):
        return "https://github.com"
    base = api_url.rstrip("/")
    return base.removesuffix("/api/v3")


def issue_link(kind: str, source_url: str | None, reference: str) -> str | None:
    """The web page of a line's issue: ``ACME-1`` on Jira, ``owner/repo#3`` on GitHub."""
    if kind == "jira" and source_url:
        return f"{source_url.rstrip('/')}/browse/{quote(reference)}"
    if kind == "github" and "#" in reference:
        repo, _, number = reference.rpartition("#")
        if number.isdigit() and repo.count("/") == 1:
            return f"{github_web(source_url)}/{quote(repo)}/issues/{number}"
    return None


def entry_link(kind: str, source_url: str | None, issue: str | None, key: str) -> str | None:
    """The web page of an entry: a Jira worklog on its issue, a GitHub ``/spend`` comment.

    ``key`` is the entry's stable key (``jira:<site>:worklog:<id>``,
    ``github:<host>:comment:<id>:<n>``); ``issue`` the issue's key as the line shows it."""
    if issue is None:
        return None
    page = issue_link(kind, source_url, issue)
    found = ENTRY_ID.search(key)
    if page is None or found is None:
        return page
    what, number = found.groups()
    expected = {"jira": "worklog", "github": "comment"}.get(kind)
    return _at(kind, page, number) if what == expected else page


def line_link(kind: str, source_url: str | None, reference_id: str) -> str | None:
    """The web page of a line's reference: its issue (``ACME-1``, ``owner/repo#3``), or
    with one line per entry (``ACME-1:10143``, ``owner/repo#3:2500000131:1``) the entry's
    worklog or comment on it."""
    issue, _, rest = reference_id.partition(":")
    page = issue_link(kind, source_url, issue)
    number = rest.split(":", 1)[0]
    return _at(kind, page, number) if page is not None and number.isdigit() else page


def _at(kind: str, page: str, number: str) -> str:
    """``page`` (an issue's) at worklog or comment ``number``."""
    if kind == "jira":
        tab = "com.atlassian.jira.plugin.system.issuetabpanels:worklog-tabpanel"
        return f"{page}?focusedWorklogId={number}&page={quote(tab)}#worklog-{number}"
    return f"{page}#issuecomment-{number}"


def invoice_link(template: str | None, invoice_id: str | None, number: str) -> str | None:
    """``[dashboard] invoice_url`` filled in for one draft (None until it has an id)."""
    if not template or invoice_id is None:
        return None
    return template.replace("{invoice_id}", quote(invoice_id)).replace(
        "{invoice_number}", quote(number)
    )
