"""Progress of long work (a big first sync, a backfill), reported as plain callbacks.

The sync calls ``progress(stage, done, total)``: ``stage`` is ``"pages"`` (batches read from
the source and recorded; total unknown), ``"read"`` (entries read), ``"plan"`` (parts of
the plan made, of how many: a first sync plans in parts of about 10,000 entries),
``"planned"`` (lines to create or change), ``"create"`` (lines created) or ``"update"``
(lines updated).
The command line draws them with rich when stderr is a terminal; elsewhere (logs, CI,
Celery) nothing is drawn.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn

ProgressFn = Callable[[str, int, int | None], None]

LABELS = {
    "pages": "pages read",
    "read": "entries read",
    "plan": "planning (parts)",
    "planned": "lines to write",
    "create": "creating lines",
    "update": "updating lines",
}


def no_progress(stage: str, done: int, total: int | None) -> None:
    """The default: report nothing."""


@contextmanager
def terminal_progress(source: str) -> Iterator[ProgressFn]:
    """Progress bars on stderr when it is a terminal; otherwise :func:`no_progress`."""
    if not sys.stderr.isatty():
        yield no_progress
        return
    bars = Progress(
        TextColumn(f"[bold]{source}[/] {{task.description}}"),
        BarColumn(),
        MofNCompleteColumn(),
        console=Console(stderr=True),  # stdout keeps only the sync's summary
        transient=True,
    )
    tasks: dict[str, TaskID] = {}

    def report(stage: str, done: int, total: int | None) -> None:
        if stage not in tasks:
            tasks[stage] = bars.add_task(LABELS.get(stage, stage), total=total)
        bars.update(tasks[stage], completed=done, total=total)

    with bars:
        yield report
