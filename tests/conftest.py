"""Fixtures shared by the whole test suite.

Databases: ``db_url`` gives a fresh, empty database per test, once on SQLite (a file in the
test's tmp_path) and once on PostgreSQL (a new database on a throwaway cluster the session
starts once; those runs carry the ``postgres`` marker). Nothing is mocked and nothing is
skipped: without the PostgreSQL binaries the PostgreSQL runs fail and say how to get them.
"""

from __future__ import annotations

from collections.abc import Generator, Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, sync_playwright
from redis import Redis

from tests.support.browser import ARGS, CHROMIUM
from tests.support.browser import INSTALL_HINT as BROWSER_HINT
from tests.support.cliniko import CLINIKO_NOW, RunningCliniko, running_cliniko
from tests.support.github import GITHUB_NOW, RunningGitHub, running_github
from tests.support.jira import JIRA_NOW, RunningJira, running_jira
from tests.support.kukkingu import RunningKukkingu, running_kukkingu
from tests.support.postgres import INSTALL_HINT, Cluster, ClusterError, find_bindir
from tests.support.redis import RedisServer

TEST_DATABASE = "billsync_test"
FAILED = pytest.StashKey[bool]()


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(
    item: pytest.Item,
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    """Remember on the test item whether any phase failed (fixtures keep logs then)."""
    report: pytest.TestReport = yield
    if report.failed:
        item.stash[FAILED] = True
    return report


@pytest.fixture(scope="session")
def postgres_cluster() -> Iterator[Cluster]:
    """A throwaway PostgreSQL cluster for the session, stopped and removed at the end."""
    bindir = find_bindir()
    if bindir is None:
        pytest.fail(INSTALL_HINT, pytrace=False)
    cluster = Cluster(bindir)
    try:
        cluster.start()
        cluster.createdb(TEST_DATABASE)
    except ClusterError as error:
        cluster.stop()
        pytest.fail(str(error), pytrace=False)
    try:
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture(scope="session")
def postgres_url(postgres_cluster: Cluster) -> str:
    """SQLAlchemy URL of the session's ``billsync_test`` database on the throwaway cluster."""
    return postgres_cluster.sqlalchemy_url(TEST_DATABASE)


@pytest.fixture(
    params=[
        pytest.param("sqlite", id="sqlite"),
        pytest.param("postgresql", id="postgresql", marks=pytest.mark.postgres),
    ]
)
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh, empty database for one test, on each backend billsync supports."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'state.db'}"
        return
    cluster: Cluster = request.getfixturevalue("postgres_cluster")
    name = cluster.create_database()
    try:
        yield cluster.sqlalchemy_url(name)
    finally:
        cluster.drop_database(name)


@pytest.fixture(scope="module")
def kukkingu_module() -> Iterator[RunningKukkingu]:
    """One Kukkingu sandbox per test module (uvicorn takes a moment to start and stop)."""
    with running_kukkingu() as running:
        yield running


@pytest.fixture
def kukkingu(kukkingu_module: RunningKukkingu) -> RunningKukkingu:
    """The module's Kukkingu sandbox, reset to its freshly seeded state for this test."""
    kukkingu_module.reset()
    return kukkingu_module


@pytest.fixture(scope="module")
def jira_module() -> Iterator[RunningJira]:
    """One Jira sandbox per test module, its clock frozen at JIRA_NOW (demo data before it)."""
    with running_jira(now=JIRA_NOW) as running:
        yield running


@pytest.fixture
def jira(jira_module: RunningJira) -> RunningJira:
    """The module's Jira sandbox, reset to its freshly seeded state (clock back at JIRA_NOW)."""
    jira_module.reset()
    return jira_module


@pytest.fixture(scope="module")
def github_module() -> Iterator[RunningGitHub]:
    """One GitHub sandbox per test module, its clock frozen at GITHUB_NOW (demo data before it)."""
    with running_github(now=GITHUB_NOW) as running:
        yield running


@pytest.fixture
def github(github_module: RunningGitHub) -> RunningGitHub:
    """The module's GitHub sandbox, reset to its freshly seeded state (clock at GITHUB_NOW)."""
    github_module.reset()
    return github_module


@pytest.fixture(scope="module")
def cliniko_module() -> Iterator[RunningCliniko]:
    """One Cliniko sandbox per test module, its clock frozen at CLINIKO_NOW (demo items
    before it)."""
    with running_cliniko(now=CLINIKO_NOW) as running:
        yield running


@pytest.fixture
def cliniko(cliniko_module: RunningCliniko) -> RunningCliniko:
    """The module's Cliniko sandbox, reset to its freshly seeded state (clock at CLINIKO_NOW)."""
    cliniko_module.reset()
    return cliniko_module


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    """A throwaway redis-server (AOF on) for the session; never a shared or fake Redis."""
    server = RedisServer()
    try:
        server.start()
    except RuntimeError as error:
        server.close()
        pytest.fail(str(error), pytrace=False)
    try:
        yield server
    finally:
        server.close()


@pytest.fixture
def redis(redis_server: RedisServer) -> Iterator[Redis]:
    """A client of the session's redis-server, emptied (and started again if a test
    stopped it)."""
    if redis_server.process is None:
        redis_server.start()
    client = Redis.from_url(redis_server.url)
    client.flushall()
    yield client
    client.close()


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """Headless Debian Chromium through Playwright, for one test module. Not longer: the
    sync API keeps an event loop running in this thread, which later asyncio.run() calls
    (other modules' tests) would trip over."""
    if not CHROMIUM.exists():
        pytest.fail(BROWSER_HINT, pytrace=False)
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        try:
            yield launched
        finally:
            launched.close()
