"""Names and links instead of ids (issue 14 item 4): pure parts."""

from __future__ import annotations

import pytest

from worker.config import ConfigError, parse_config
from worker.dashboard.names import (
    NAMES_TTL,
    RETRY_AFTER,
    ContractName,
    ContractNames,
    entry_link,
    github_web,
    invoice_link,
    issue_link,
    line_link,
)


def test_issue_links_for_jira_and_github() -> None:
    assert issue_link("jira", "https://acme.atlassian.net/", "ACME-1") == (
        "https://acme.atlassian.net/browse/ACME-1"
    )
    assert issue_link("github", None, "acme/api#3") == "https://github.com/acme/api/issues/3"
    assert issue_link("github", "https://api.github.com", "acme/api#3") == (
        "https://github.com/acme/api/issues/3"
    )
    assert issue_link("github", "https://ghe.example/api/v3", "acme/api#3") == (
        "https://ghe.example/acme/api/issues/3"
    )
    assert issue_link("github", None, "not a reference") is None
    assert issue_link("jira", None, "ACME-1") is None
    assert github_web("https://ghe.example/api/v3/") == "https://ghe.example"


def test_entry_links_point_at_the_worklog_and_the_comment() -> None:
    worklog = entry_link(
        "jira", "http://127.0.0.1:8731", "ACME-1", "jira:127.0.0.1:8731:worklog:10000"
    )
    assert worklog == (
        "http://127.0.0.1:8731/browse/ACME-1?focusedWorklogId=10000"
        "&page=com.atlassian.jira.plugin.system.issuetabpanels%3Aworklog-tabpanel#worklog-10000"
    )
    comment = entry_link("github", None, "acme/api#1", "github:github.com:comment:2500000022:1")
    assert comment == "https://github.com/acme/api/issues/1#issuecomment-2500000022"
    assert entry_link("github", None, None, "github:github.com:comment:1:1") is None


def test_invoice_links_fill_the_template() -> None:
    template = "https://app.kukkingu.example/invoices/{invoice_id}?n={invoice_number}"
    assert invoice_link(template, "inv_1", "ACME 2026/11") == (
        "https://app.kukkingu.example/invoices/inv_1?n=ACME%202026/11"
    )
    assert invoice_link(template, None, "x") is None  # not created in Kukkingu yet
    assert invoice_link(None, "inv_1", "x") is None


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ("ftp://x/{invoice_id}", "is not an http(s) URL"),
        ("https://x/invoices", "must contain {invoice_id} or {invoice_number}"),
        ("https://x/{invoice_id}/{tenant}", "and no other {field}"),
    ],
)
def test_config_check_refuses_a_wrong_invoice_url(value: str, reason: str) -> None:
    data = {
        "kukkingu": {"base_url": "http://k", "tenant_id": "tnt_" + "a" * 24, "token_env": "K"},
        "dashboard": {"invoice_url": value},
    }
    with pytest.raises(ConfigError) as raised:
        parse_config(data, environ={"K": "x"})
    assert "dashboard.invoice_url" in str(raised.value)
    assert reason in str(raised.value)


def test_names_are_kept_and_a_silent_kukkingu_is_asked_again_later() -> None:
    now = [0.0]
    calls: list[float] = []
    answers: list[dict[str, ContractName] | Exception] = [
        {"ctr_1": ContractName("Retainer", "Acme")},
        RuntimeError("down"),
        {"ctr_1": ContractName("Retainer 2027", "Acme")},
    ]

    def fetch() -> dict[str, ContractName]:
        calls.append(now[0])
        answer = answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer

    names = ContractNames(fetch, clock=lambda: now[0])
    assert names.get()["ctr_1"].contract == "Retainer"
    now[0] = NAMES_TTL - 1
    assert names.get()["ctr_1"].contract == "Retainer"  # kept
    now[0] = NAMES_TTL
    assert names.get()["ctr_1"].contract == "Retainer"  # Kukkingu down: the last names
    now[0] = NAMES_TTL + RETRY_AFTER - 1
    names.get()
    assert len(calls) == 2  # not asked again before RETRY_AFTER
    now[0] = NAMES_TTL + RETRY_AFTER
    assert names.get()["ctr_1"].contract == "Retainer 2027"
    assert calls == [0.0, NAMES_TTL, NAMES_TTL + RETRY_AFTER]


def test_a_line_per_entry_links_to_its_worklog_or_comment() -> None:
    assert line_link("jira", "https://j.example", "GLX-1") == "https://j.example/browse/GLX-1"
    assert line_link("jira", "https://j.example", "GLX-1:10143") == (
        "https://j.example/browse/GLX-1?focusedWorklogId=10143"
        "&page=com.atlassian.jira.plugin.system.issuetabpanels%3Aworklog-tabpanel#worklog-10143"
    )
    assert line_link("github", None, "globex/platform#2:2500000131:1") == (
        "https://github.com/globex/platform/issues/2#issuecomment-2500000131"
    )
    assert line_link("github", None, "acme/api#1") == "https://github.com/acme/api/issues/1"
