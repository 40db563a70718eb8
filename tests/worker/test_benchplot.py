"""`billsync bench --plot`: the chart is drawn from the results it is given (pure)."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest

from worker.bench import PHASES, SIZES, BenchResult, PhaseResult
from worker.benchplot import nice_ceiling, series, svg

NS = {"svg": "http://www.w3.org/2000/svg"}


def result(size: str, rss: float, seconds: float) -> BenchResult:
    phases = [
        PhaseResult(
            phase=phase,
            source=source,
            seconds=seconds * (i + 1),
            exit_code=0,
            peak_rss_mb=rss + i,
            cpu_seconds=seconds / 2,
            entries=10,
            entries_per_second=1.0,
            requests={},
            lower_bound={},
        )
        for i, phase in enumerate(PHASES)
        for source in ("jira-bench", "github-bench")
    ]
    return BenchResult(SIZES[size], 20, "abc1234", "test machine", 1.0, phases, {})


def test_one_line_per_phase_and_source_through_every_size() -> None:
    results = [result("S", 90, 2), result("M", 120, 9), result("L", 140, 60)]
    lines = series(results, "peak_rss_mb")
    assert [(s.phase, s.source) for s in lines][:2] == [
        ("full", "jira-bench"),
        ("full", "github-bench"),
    ]
    assert len(lines) == 6
    full_jira = lines[0]
    assert full_jira.points == ((5_000, 90.0), (50_000, 120.0), (500_000, 140.0))


def test_the_svg_has_both_panels_their_numbers_and_the_sizes() -> None:
    document = svg([result("M", 120, 9), result("S", 90, 2)])
    root = ET.fromstring(document)  # noqa: S314 - well-formed; the text is our own
    texts = [t.text or "" for t in root.iter(f"{{{NS['svg']}}}text")]
    assert {"Peak RSS per sync", "Wall time per sync", "MB", "seconds"} <= set(texts)
    assert {"S (5,000)", "M (50,000)"} <= set(texts)
    assert any("commit abc1234" in t for t in texts)
    assert "150" in texts  # the RSS axis' top: 122 MB rounds up to 150
    polylines = root.findall("svg:polyline", NS)
    assert len(polylines) == 12  # 6 series x 2 panels


def test_nothing_to_plot_is_an_error() -> None:
    with pytest.raises(ValueError, match="nothing to plot"):
        svg([])


@pytest.mark.parametrize(
    ("value", "top"),
    [(0, 1), (0.7, 0.8), (1, 1), (1.2, 1.5), (2.2, 2.5), (3, 3), (7, 8), (122, 150), (900, 1000)],
)
def test_axis_tops_are_round_numbers(value: float, top: float) -> None:
    assert nice_ceiling(value) == pytest.approx(top)
