"""Jira: worklogs as time entries, through the pycontribs ``jira`` library."""

from connectors.jira.client import JiraApi, JiraBadResponse, JiraConfigError, JiraUnavailable
from connectors.jira.mapping import map_issue, map_worklog, parse_jira_datetime
from connectors.jira.source import JiraSource

__all__ = [
    "JiraApi",
    "JiraBadResponse",
    "JiraConfigError",
    "JiraSource",
    "JiraUnavailable",
    "map_issue",
    "map_worklog",
    "parse_jira_datetime",
]
