"""``billsync bench --plot``: peak RSS and wall time against dataset size, as an SVG.

Pure: bench results in, SVG text out. Two panels side by side, one line per phase and
source, the x axis the dataset's worklogs on a log scale (S, M, L, XL are a decade or two
apart), each y axis linear from 0 with its numbers. Written here rather than pulling a
plotting library into the service for one chart.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from xml.sax.saxutils import escape

from worker.bench import PHASES, BenchResult

WIDTH, HEIGHT = 980, 420
PANEL_W, PANEL_H = 380, 280
LEFT, TOP = 70, 50
GAP = 110
COLOURS = {"full": "#1f77b4", "no-change": "#2ca02c", "1%-changed": "#d62728"}
DASHES = {"jira-bench": "", "github-bench": "6 4"}


@dataclass(frozen=True)
class Series:
    phase: str
    source: str
    points: tuple[tuple[int, float], ...]  # (worklogs, value), by worklogs


def series(results: Sequence[BenchResult], metric: str) -> list[Series]:
    """One series per (phase, source): ``metric`` is ``peak_rss_mb`` or ``seconds``."""
    found: dict[tuple[str, str], list[tuple[int, float]]] = {}
    for result in results:
        for p in result.phases:
            value = float(getattr(p, metric))
            found.setdefault((p.phase, p.source), []).append((result.size.worklogs, value))
    order = {phase: i for i, phase in enumerate(PHASES)}
    return [
        Series(phase, source, tuple(sorted(points)))
        for (phase, source), points in sorted(found.items(), key=lambda kv: order[kv[0][0]])
    ]


def nice_ceiling(value: float) -> float:
    """The smallest round number (1, 1.5, 2, 2.5, 3, 4, 5, 6 or 8 x 10^k) at or above
    ``value``: an axis' top."""
    if value <= 0:
        return 1.0
    power = 10.0 ** math.floor(math.log10(value))
    return float(next(m * power for m in (1, 1.5, 2, 2.5, 3, 4, 5, 6, 8, 10) if m * power >= value))


def _panel(
    x0: int, title: str, unit: str, lines: list[Series], sizes: dict[int, str]
) -> Iterable[str]:
    top = nice_ceiling(max((v for s in lines for _, v in s.points), default=1.0))
    xs = sorted(sizes)
    low, high = math.log10(xs[0]), math.log10(xs[-1])
    span = (high - low) or 1.0

    def px(worklogs: int) -> float:
        if len(xs) == 1:
            return x0 + PANEL_W / 2
        return x0 + (math.log10(worklogs) - low) / span * PANEL_W

    def py(value: float) -> float:
        return TOP + PANEL_H - value / top * PANEL_H

    yield f'<text x="{x0 + PANEL_W / 2}" y="{TOP - 18}" class="title">{escape(title)}</text>'
    yield (f'<rect x="{x0}" y="{TOP}" width="{PANEL_W}" height="{PANEL_H}" class="frame"/>')
    for i in range(6):  # y grid and numbers
        value = top * i / 5
        y = py(value)
        yield f'<line x1="{x0}" y1="{y:.1f}" x2="{x0 + PANEL_W}" y2="{y:.1f}" class="grid"/>'
        yield f'<text x="{x0 - 6}" y="{y + 4:.1f}" class="ynum">{value:g}</text>'
    yield (
        f'<text x="{x0 - 52}" y="{TOP + PANEL_H / 2}" class="axis" '
        f'transform="rotate(-90 {x0 - 52} {TOP + PANEL_H / 2})">{escape(unit)}</text>'
    )
    for worklogs in xs:  # x ticks: the sizes
        x = px(worklogs)
        yield f'<line x1="{x:.1f}" y1="{TOP}" x2="{x:.1f}" y2="{TOP + PANEL_H}" class="grid"/>'
        label = f"{sizes[worklogs]} ({worklogs:,})"
        yield f'<text x="{x:.1f}" y="{TOP + PANEL_H + 18}" class="xnum">{escape(label)}</text>'
    yield (
        f'<text x="{x0 + PANEL_W / 2}" y="{TOP + PANEL_H + 40}" class="axis">'
        "dataset size (worklogs, log scale)</text>"
    )
    for s in lines:
        points = " ".join(f"{px(w):.1f},{py(v):.1f}" for w, v in s.points)
        dash = DASHES.get(s.source, "2 3")
        colour = COLOURS.get(s.phase, "#555")
        yield (
            f'<polyline points="{points}" fill="none" stroke="{colour}" stroke-width="2" '
            f'stroke-dasharray="{dash}"/>'
        )
        for w, v in s.points:
            yield f'<circle cx="{px(w):.1f}" cy="{py(v):.1f}" r="3" fill="{colour}"/>'


def svg(results: Sequence[BenchResult]) -> str:
    """The chart of ``results`` (one per dataset size) as a standalone SVG document."""
    if not results:
        raise ValueError("nothing to plot: no bench result")
    sizes = {r.size.worklogs: r.size.name for r in results}
    latency = sorted({r.latency_ms for r in results})
    commits = sorted({r.commit for r in results})
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" '
        f'viewBox="0 0 {WIDTH} {HEIGHT}" font-family="sans-serif" font-size="12">',
        "<style>.frame{fill:none;stroke:#333}.grid{stroke:#ddd}"
        ".title{text-anchor:middle;font-weight:bold;font-size:14px}"
        ".ynum{text-anchor:end}.xnum{text-anchor:middle}.axis{text-anchor:middle}</style>",
        '<rect width="100%" height="100%" fill="white"/>',
    ]
    parts += _panel(LEFT, "Peak RSS per sync", "MB", series(results, "peak_rss_mb"), sizes)
    parts += _panel(
        LEFT + PANEL_W + GAP, "Wall time per sync", "seconds", series(results, "seconds"), sizes
    )
    legend_y = HEIGHT - 22
    x = LEFT
    for s in series(results, "seconds"):
        colour, dash = COLOURS.get(s.phase, "#555"), DASHES.get(s.source, "2 3")
        parts.append(
            f'<line x1="{x}" y1="{legend_y}" x2="{x + 28}" y2="{legend_y}" stroke="{colour}" '
            f'stroke-width="2" stroke-dasharray="{dash}"/>'
        )
        parts.append(
            f'<text x="{x + 34}" y="{legend_y + 4}">{escape(f"{s.phase}, {s.source}")}</text>'
        )
        x += 150
    note = f"latency {', '.join(map(str, latency))} ms; commit {', '.join(commits)}"
    parts.append(f'<text x="{WIDTH - 10}" y="16" text-anchor="end">{escape(note)}</text>')
    parts.append("</svg>")
    return "\n".join(parts) + "\n"
