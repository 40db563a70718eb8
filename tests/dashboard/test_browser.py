"""The dashboard in a real browser (Debian's Chromium through Playwright), over a real
store synced from the sandboxes, with a real Redis and a real `billsync worker` process:
login, the overview after a demo sync, a failing source, "Sync now" leading to a new run,
retry of a failed run, a forged POST refused, and no secret anywhere in the HTML.
Screenshots of every page go to test-artifacts/screenshots/."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import suppress
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect
from redis import Redis
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from sandbox.github.seed import DEMO_LOGIN
from sandbox.github.seed import DEMO_TOKEN as GITHUB_TOKEN
from sandbox.github.state import GitHubState
from sandbox.main import RunningSandbox, start_sandbox
from sandbox.server import ServerThread
from tests.support.redis import RedisServer
from worker.clients import kukkingu_client, open_source
from worker.config import Settings, load_config
from worker.dashboard import create_app
from worker.errors import BillsyncError
from worker.store import Run, RunStatus, make_engine, session_factory, upgrade
from worker.sync import sync
from worker.tasks import configure

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts" / "screenshots"
BILLSYNC = str(Path(sys.executable).parent / "billsync")
DASHBOARD_TOKEN = "dashboard-sandbox-token"  # examples/sandbox.env
INVOICE_URL = "https://kukkingu.example/invoices/{invoice_id}"
SECRETS = ("dashboard-sandbox-token", "kk-sandbox-token", "jira-sandbox-token", GITHUB_TOKEN)


class Stack:
    def __init__(self, tmp: Path, sandbox: RunningSandbox, redis_url: str) -> None:
        text = (ROOT / "examples" / "sandbox.toml").read_text()
        for old, new in (
            ("http://127.0.0.1:8730", sandbox.kukkingu.url),
            ("http://127.0.0.1:8731", sandbox.jira.url),
            ("http://127.0.0.1:8732", sandbox.github.url),
            ("http://127.0.0.1:8733", sandbox.cliniko.url),
            ('env_file = "sandbox.env"', f'env_file = "{ROOT}/examples/sandbox.env"'),
            ("sqlite:///billsync-demo.db", f"sqlite:///{tmp / 'state.db'}"),
            ('url = "redis://127.0.0.1:6379/0"', f'url = "{redis_url}"\nlock_ttl_seconds = 5'),
            ("[dashboard]\n", f'[dashboard]\ninvoice_url = "{INVOICE_URL}"\n'),
        ):
            assert old in text, old
            text = text.replace(old, new)
        self.config = tmp / "billsync.toml"
        self.config.write_text(text)
        env = {k: v for k, v in os.environ.items() if not k.startswith("BILLSYNC_")}
        self.settings: Settings = load_config(self.config, environ=env)
        self.env = env
        upgrade(self.settings.state_url)
        self.engine = make_engine(self.settings.state_url)
        self.factory: sessionmaker[Session] = session_factory(self.engine)

    def sync(self, source: str) -> None:
        source_ = open_source(self.settings, self.settings.source(source))
        # a failure is recorded as a failed run, which is what the test wants to see
        with kukkingu_client(self.settings) as client, suppress(BillsyncError):
            sync(self.settings, self.factory, client, source_)

    def runs(self) -> list[tuple[str, RunStatus]]:
        with self.factory() as session:
            return [
                (r.trigger.value, r.status) for r in session.scalars(select(Run).order_by(Run.id))
            ]


@pytest.fixture
def stack(tmp_path: Path, redis_server: RedisServer) -> Iterator[tuple[Stack, RunningSandbox, str]]:
    if redis_server.process is None:
        redis_server.start()
    redis_server.flush()
    with start_sandbox(kukkingu_port=0, jira_port=0, github_port=0, cliniko_port=0) as sandbox:
        built = Stack(tmp_path, sandbox, redis_server.url)
        configure(built.settings)  # the dashboard's enqueue goes to this Redis
        built.sync("jira-demo")
        budget = GitHubState.user_bucket(DEMO_LOGIN)
        sandbox.github_app.state.set_budget(budget, remaining=0, reset=int(time.time()) + 3600)
        built.sync("github-demo")
        redis = Redis.from_url(redis_server.url)
        app = create_app(built.settings, factory=built.factory, redis=redis)
        worker = subprocess.Popen(
            [
                BILLSYNC,
                "-c",
                str(built.config),
                "worker",
                "--concurrency",
                "1",
                "--name",
                "browser@%h",
            ],
            env=built.env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            with ServerThread(app) as server:
                yield built, sandbox, server.url
        finally:
            worker.send_signal(signal.SIGTERM)
            worker.wait(30)
            redis.close()
            built.engine.dispose()


def shot(page: Page, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def no_secrets(page: Page) -> None:
    html = page.content()
    for secret in SECRETS:
        assert secret not in html, f"{secret[:6]}... is visible on {page.url}"


def wait_for(condition: Callable[[], bool], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.3)


def test_the_operator_journey(browser: Browser, stack: tuple[Stack, RunningSandbox, str]) -> None:
    built, sandbox, url = stack
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()

    # login: the dashboard asks for it, a wrong token is refused, the right one lets in
    page.goto(url + "/")
    expect(page).to_have_url(f"{url}/login?next=/")
    shot(page, "login")
    page.fill("input[name=token]", "not-the-token")
    page.click("button[type=submit]")
    expect(page.locator("body")).to_contain_text("Wrong credentials")
    page.fill("input[name=token]", DASHBOARD_TOKEN)
    page.click("button[type=submit]")
    expect(page).to_have_url(f"{url}/")

    # the overview after the demo sync: jira ok, github failing and highlighted
    expect(page.locator("body")).to_contain_text("jira-demo")
    expect(page.locator("body")).to_contain_text("github-demo")
    expect(page.locator("body")).to_contain_text("failing", ignore_case=True)
    shot(page, "overview")
    no_secrets(page)

    for path in ("/runs", "/drafts", "/problems", "/drift"):
        page.goto(url + path)
        shot(page, path.strip("/"))
        no_secrets(page)
    page.goto(url + "/drafts")
    page.locator("a[href^='/drafts/']").first.click()
    shot(page, "draft")
    no_secrets(page)
    # names and links (issue 14 item 4): the contract and client by name, from Kukkingu;
    # the invoice in Kukkingu's app; each line's issue at its source
    page.goto(url + "/drafts")
    page.locator("a[href^='/drafts/']", has_text="ctr_demoacmeretainer00000001").first.click()
    body = page.locator("body")
    expect(body).to_contain_text("Acme retainer (Acme")
    expect(page.locator("a", has_text="open in Kukkingu")).to_have_attribute(
        "href", re.compile(re.escape(INVOICE_URL.split("{", 1)[0]) + r"inv_\w+")
    )
    jira_link = page.locator(f"a[href^='{sandbox.jira.url}/browse/ACME-']").first
    expect(jira_link).to_be_visible()

    # a forged POST (no CSRF token), sent with the logged-in cookie, is refused
    forged = context.request.post(url + "/sources/jira-demo/sync", form={"x": "1"})
    assert forged.status == 403
    before = len(built.runs())

    # "Sync now" queues a sync; the worker process runs it: a new run appears
    page.goto(url + "/")
    page.locator("form[action='/sources/jira-demo/sync'] button").click()
    expect(page.locator("body")).to_contain_text("queued", ignore_case=True)
    wait_for(
        lambda: any(t == "on_demand" and s == RunStatus.SUCCEEDED for t, s in built.runs()[before:])
    )

    # retry of the failed GitHub run, once its cause is gone
    budget = GitHubState.user_bucket(DEMO_LOGIN)
    sandbox.github_app.state.set_budget(budget, remaining=5000, reset=int(time.time()) + 3600)
    page.goto(url + "/runs?status=failed")
    page.locator("a[href^='/runs/']").first.click()
    shot(page, "run")
    no_secrets(page)
    page.locator("form[action$='/retry'] button").click()
    expect(page.locator("body")).to_contain_text("queued", ignore_case=True)
    count = len(built.runs())
    wait_for(
        lambda: (
            any(s == RunStatus.SUCCEEDED for _, s in built.runs()[count - 1 :])
            and len(built.runs()) > count - 1
        )
    )
    page.goto(url + "/")
    shot(page, "overview-after-retry")
    no_secrets(page)

    # a phone-sized screen renders the overview too
    phone = browser.new_context(
        viewport={"width": 390, "height": 844}, storage_state=context.storage_state()
    )
    small = phone.new_page()
    small.goto(url + "/")
    expect(small.locator("body")).to_contain_text("jira-demo")
    shot(small, "overview-phone")
    phone.close()
    context.close()
    if os.environ.get("BILLSYNC_UPDATE_DOCS_SCREENSHOT"):
        shutil.copy(ARTIFACTS / "overview.png", ROOT / "docs" / "screenshots" / "overview.png")
