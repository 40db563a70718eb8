"""Debian's Chromium, headless, driven by Playwright (never Playwright's own download)."""

from __future__ import annotations

from pathlib import Path

CHROMIUM = Path("/usr/bin/chromium")
INSTALL_HINT = "Chromium is missing: `make test` installs it (scripts/system-deps.sh)"
# Root needs --no-sandbox; the rest keeps Chromium off a network it does not have.
ARGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
]
SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"
