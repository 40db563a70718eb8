"""`make screenshots`: the README's dashboard pictures, taken from the demo as a newcomer runs it.

It copies ``examples/`` into a scratch folder, runs ``billsync -c sandbox.toml demo`` there
(the demo's default ports and its ``billsync-demo.db``, as ``make demo`` does), logs in to the
dashboard with Debian's Chromium through Playwright, and saves each page to
``docs/screenshots/`` (or ``--out``). Then it stops the demo. Nothing in the pictures comes
from a test run.
"""

from __future__ import annotations

import argparse
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
from playwright.sync_api import Page, sync_playwright

from tests.support.browser import ARGS, CHROMIUM, INSTALL_HINT

ROOT = Path(__file__).resolve().parents[1]
BILLSYNC = Path(sys.executable).parent / "billsync"
PORTS = (8730, 8731, 8732, 8733, 8780)  # examples/sandbox.toml: the sandboxes, dashboard
TOKEN = "dashboard-sandbox-token"  # noqa: S105 - examples/sandbox.env, a public demo value
DEADLINE = 180.0  # seconds for the demo to serve its dashboard, on a loaded machine
PAGES = (  # (file name, path): what the README and docs/dashboard.md show
    ("overview", "/"),
    ("drafts", "/drafts"),
    ("runs", "/runs"),
    ("problems", "/problems"),
    ("prices", "/prices"),
)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def copy_examples(work: Path, *, any_ports: bool) -> int:
    """The demo's config and secrets in ``work``; with ``any_ports``, on free ports. Returns
    the dashboard's port."""
    config = (ROOT / "examples" / "sandbox.toml").read_text()
    ports = {port: free_port() if any_ports else port for port in PORTS}
    for default, port in ports.items():
        config = config.replace(f"127.0.0.1:{default}", f"127.0.0.1:{port}")
    config = config.replace("port = 8780", f"port = {ports[8780]}")
    (work / "sandbox.toml").write_text(config)
    shutil.copyfile(ROOT / "examples" / "sandbox.env", work / "sandbox.env")
    return ports[8780]


def wait_for_dashboard(demo: subprocess.Popen[bytes], log: Path, dashboard: str) -> None:
    deadline = time.monotonic() + DEADLINE
    while time.monotonic() < deadline:
        if demo.poll() is not None:
            sys.exit(f"the demo stopped (exit {demo.returncode}):\n{log.read_text()}")
        try:
            if httpx.get(f"{dashboard}/login", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    sys.exit(f"the demo's dashboard did not answer within {DEADLINE:.0f} s:\n{log.read_text()}")


def shoot(page: Page, out: Path, name: str) -> Path:
    path = out / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


def take(out: Path, dashboard: str) -> list[Path]:
    """Log in and save each page; the first draft's page as ``draft.png``."""
    taken = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        try:
            page = browser.new_context(viewport={"width": 1280, "height": 900}).new_page()
            page.goto(f"{dashboard}/login")
            page.fill("input[name=token]", TOKEN)
            page.click("button[type=submit]")
            page.wait_for_url(f"{dashboard}/")
            for name, path in PAGES:
                page.goto(dashboard + path)
                taken.append(shoot(page, out, name))
            page.goto(f"{dashboard}/drafts")
            page.locator("a[href^='/drafts/']").first.click()
            page.wait_for_load_state()
            taken.append(shoot(page, out, "draft"))
        finally:
            browser.close()
    return taken


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "screenshots")
    parser.add_argument(
        "--any-ports", action="store_true", help="free ports instead of the demo's (for tests)"
    )
    args = parser.parse_args()
    out: Path = args.out
    if not CHROMIUM.exists():
        sys.exit(INSTALL_HINT)
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="billsync-screenshots-") as scratch:
        work = Path(scratch)
        dashboard = f"http://127.0.0.1:{copy_examples(work, any_ports=args.any_ports)}"
        log = work / "demo.log"
        with log.open("wb") as written:
            demo = subprocess.Popen(  # noqa: S603 - our own command line
                [str(BILLSYNC), "-c", "sandbox.toml", "demo"],
                cwd=work,
                stdout=written,
                stderr=subprocess.STDOUT,
            )
            try:
                wait_for_dashboard(demo, log, dashboard)
                taken = take(out, dashboard)
            finally:
                demo.send_signal(signal.SIGINT)
                try:
                    demo.wait(timeout=60)
                except subprocess.TimeoutExpired:
                    demo.kill()
                    demo.wait()
    for path in taken:
        print(f"saved {path.relative_to(ROOT) if path.is_relative_to(ROOT) else path}")


if __name__ == "__main__":
    main()
