"""`billsync bench` end to end on the smoke size (XS): the sandboxes in the bench process,
each sync a real child process. Request counts are deterministic, so they are checked;
times and memory are reported, never asserted (they belong to docs/benchmarks.md)."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

BILLSYNC = str(Path(sys.executable).parent / "billsync")


def test_bench_reports_every_phase_within_the_request_targets(tmp_path: Path) -> None:
    out = tmp_path / "bench.json"
    result = subprocess.run(
        [
            *(BILLSYNC, "bench", "--size", "XS", "--workdir", str(tmp_path / "w")),
            *("--json", str(out), "--plot", str(tmp_path / "plot.svg")),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "| phase | source |" in result.stdout  # the Markdown table
    report = json.loads(out.read_text())
    assert report["size"]["name"] == "XS"
    phases = {(p["phase"], p["source"]): p for p in report["phases"]}
    assert set(phases) == {
        (phase, source)
        for phase in ("full", "no-change", "1%-changed")
        for source in ("jira-bench", "github-bench")
    }
    for p in phases.values():
        assert p["exit_code"] == 0
        assert p["peak_rss_mb"] > 0
        assert p["cpu_seconds"] > 0
    full = phases[("full", "jira-bench")]
    assert full["entries"] >= 400
    # Kukkingu: the drafts and one create per 100 lines a draft, within 10 %
    for source in ("jira-bench", "github-bench"):
        assert phases[("full", source)]["ratios"]["kukkingu"] <= 1.1
    # a no-change sync: no write, a handful of reads
    for source in ("jira-bench", "github-bench"):
        quiet = phases[("no-change", source)]
        assert quiet["totals"]["kukkingu"] <= 1, quiet["requests"]
    # myself, the project search, the search for what left every rule, and the three feed
    # calls (docs/benchmarks.md); no serverInfo: the config says Cloud
    assert phases[("no-change", "jira-bench")]["totals"]["jira"] <= 6
    assert phases[("no-change", "github-bench")]["totals"]["github"] <= 4 * 3  # 3 repos
    changed = phases[("1%-changed", "jira-bench")]
    assert changed["counts"]["entriesChanged"] >= 4  # 1 % of 400 worklogs
    assert changed["counts"]["linesUpdated"] >= 1
    assert report["ledger"]["lines"] > 0
    plot = (tmp_path / "plot.svg").read_text()
    assert plot.startswith("<svg")
    assert plot.count("<polyline") == 12  # 6 series, 2 panels


def test_bench_refuses_a_negative_latency(tmp_path: Path) -> None:
    result = subprocess.run(
        [BILLSYNC, "bench", "--size", "XS", "--latency-ms", "-5", "--workdir", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2
    assert "--latency-ms" in result.stderr
    assert "must be >= 0" in result.stderr


def test_a_syncs_peak_memory_is_its_own_not_the_bench_process(tmp_path: Path) -> None:
    """A child's ru_maxrss carries the high-water mark of its parent (Linux keeps it across
    exec); the probe reports the child's own peak. Here the parent holds 400 MB more."""
    from worker.bench import PEAK_PROBE

    ballast = bytearray(400 * 1024 * 1024)
    ballast[::4096] = b"\x01" * len(ballast[::4096])  # touched: resident
    out = tmp_path / "peak.kb"
    subprocess.run(
        [sys.executable, "-c", PEAK_PROBE, str(out), "platform"],
        capture_output=True,
        timeout=60,
        check=True,
    )
    assert len(ballast) > 0
    assert 0 < int(out.read_text()) / 1024 < 200  # MB: a bare Python, not 400 MB and more


def test_bench_webhooks_times_edits_through_a_worker(tmp_path: Path) -> None:
    """`--webhooks` on the smoke size: a real redis-server and worker, the edits reach
    Kukkingu through the dashboard's webhook route; the latencies are reported."""
    result = subprocess.run(
        [
            *(BILLSYNC, "bench", "--webhooks", "--size", "XS", "--edits", "3"),
            *("--workdir", str(tmp_path / "w")),
        ],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert [line for line in result.stdout.splitlines() if line.startswith("edit ")] == [
        line
        for line in result.stdout.splitlines()
        if line.startswith("edit ") and " billed after " in line
    ]
    assert result.stdout.count("\nedit ") == 3
    summary = next(line for line in result.stdout.splitlines() if line.startswith("webhook: "))
    assert summary.startswith("webhook: 3 edits, edit to billable p50 ")
    runs = re.search(r"\((\d+) webhook runs;", summary)
    assert runs is not None, summary
    assert int(runs.group(1)) >= 3  # one an edit (an edit during a run may add a follow-up)
    assert "scheduled (computed, not measured: every 15 min" in result.stdout
    worker_log = (tmp_path / "w" / "worker.log").read_text()
    assert "succeeded" in worker_log
