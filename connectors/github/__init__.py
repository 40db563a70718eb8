"""GitHub: ``/spend`` time from issue and pull-request comments, through PyGithub."""

from connectors.github.client import (
    GitHubApi,
    GitHubBadResponse,
    GitHubConfigError,
    GitHubLostAccess,
    GitHubRateLimited,
    GitHubUnavailable,
)
from connectors.github.mapping import map_comment, map_issue
from connectors.github.source import GitHubSource

__all__ = [
    "GitHubApi",
    "GitHubBadResponse",
    "GitHubConfigError",
    "GitHubLostAccess",
    "GitHubRateLimited",
    "GitHubSource",
    "GitHubUnavailable",
    "map_comment",
    "map_issue",
]
