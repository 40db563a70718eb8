"""`make screenshots` (scripts/screenshots.py) runs the demo as a newcomer would and saves
each dashboard page as a PNG: the README's pictures stay what the demo shows."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PNG = b"\x89PNG\r\n\x1a\n"


def test_the_script_saves_every_page_of_the_demo(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("BILLSYNC_")}
    result = subprocess.run(
        [sys.executable, "-m", "scripts.screenshots", "--out", str(tmp_path), "--any-ports"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    for name in ("overview", "drafts", "draft", "runs", "problems", "prices"):
        picture = tmp_path / f"{name}.png"
        assert picture.read_bytes().startswith(PNG), name
        assert picture.stat().st_size > 10_000, name  # a page, not a blank
    # the pictures the README shows exist in the repository
    readme = (ROOT / "README.md").read_text()
    for shown in ("docs/screenshots/overview.png", "docs/screenshots/draft.png"):
        assert shown in readme
        assert (ROOT / shown).is_file()
