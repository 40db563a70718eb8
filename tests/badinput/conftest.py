"""Fixtures of the bad-input corpus: a real billsync wired to the three sandboxes."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from sandbox.jira.dataset import generate
from tests.badinput.harness import World, sandbox_config
from tests.support.github import RunningGitHub
from tests.support.jira import JIRA_NOW, RunningJira, running_jira
from tests.support.kukkingu import RunningKukkingu
from worker.store import upgrade


@pytest.fixture(scope="session")
def migrated(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An empty, migrated SQLite store to copy (migrating once per test costs more)."""
    path = tmp_path_factory.mktemp("template") / "state.db"
    upgrade(f"sqlite:///{path}")
    return path


@pytest.fixture
def world(
    tmp_path: Path,
    migrated: Path,
    kukkingu: RunningKukkingu,
    jira: RunningJira,
    github: RunningGitHub,
) -> World:
    """billsync on SQLite against freshly reset sandboxes, its store migrated."""
    shutil.copy(migrated, tmp_path / "state.db")
    url = f"sqlite:///{tmp_path / 'state.db'}"
    config = sandbox_config(tmp_path, kukkingu, jira, github, state_url=url)
    return World(config, kukkingu, jira, github, url)


@pytest.fixture(scope="module")
def jira_module() -> Iterator[RunningJira]:
    """A small Jira site (40 worklogs on 12 issues of ACME, GLX, INT): the corpus needs a
    good sync before each bad one, not the demo's 250 worklogs."""
    with running_jira(now=JIRA_NOW, seed=generate(11, issues=12, worklogs=40)) as running:
        yield running
