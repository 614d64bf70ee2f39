"""Turns runner/library progress events into rich progress bars (or nothing with ``-q``)."""

from __future__ import annotations

import contextlib

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

from vision3d.runner import ProgressEvent

console = Console(stderr=True)


@contextlib.contextmanager
def stage_progress(verbosity: int = 1):
    """Yield a callback for ``ProgressEvent``s that drives one bar per stage."""
    if verbosity <= 0:
        yield lambda ev: None
        return
    bars = Progress(SpinnerColumn(), TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                    TimeElapsedColumn(), TextColumn("{task.fields[note]}"), console=console, transient=False)
    tasks: dict[str, int] = {}

    def on_event(ev: ProgressEvent) -> None:
        if ev.kind == "skip":
            bars.console.print(f"[dim]• {ev.stage}: up to date, skipped[/dim]")
            return
        if ev.kind == "log":
            if verbosity >= 2:
                bars.console.print(f"  {ev.stage}: {ev.message}")
            return
        if ev.stage not in tasks:
            tasks[ev.stage] = bars.add_task(ev.stage, total=None, note="")
        tid = tasks[ev.stage]
        if ev.kind == "done":
            t = bars.tasks[tasks[ev.stage]].total
            bars.update(tid, completed=t if t else 1, total=t if t else 1, note=ev.message)
        elif ev.kind == "progress":
            bars.update(tid, completed=ev.done, total=ev.total, note=ev.message)

    with bars:
        yield on_event
