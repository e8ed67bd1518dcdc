"""The header's two lines: the run's state, time, progress, rate and ETA; then the counts.

Pure: built from `RunCounts` (the numbers the summary and the export also use) and plain
facts, so every case is unit-tested on hand-built values.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Final, Literal

from rich.text import Text

from antflow_tui.formatting import format_clock, format_count, format_duration, format_rate
from antflow_tui.safe_text import clean

if TYPE_CHECKING:
    from collections.abc import Mapping

    from antflow.types import DashboardSnapshot
    from antflow_tui.accounting import RunCounts

RunState = Literal[
    "starting", "running", "pausing", "paused", "stopping", "stopped", "finished", "failed"
]

STATE_STYLES: Final[Mapping[str, str]] = {
    "starting": "bold",
    "running": "bold green",
    "pausing": "bold yellow",
    "paused": "bold yellow",
    "stopping": "bold magenta",
    "stopped": "bold magenta",
    "finished": "bold green",
    "failed": "bold red",
}

MIN_BAR: Final = 10
"""The narrowest progress bar worth drawing."""


def run_state(
    snapshot: DashboardSnapshot | None,
    *,
    ended: bool,
    crashed: bool,
    stopping: bool,
    stopped: bool = False,
) -> RunState:
    """The one word the header shows for the run (`stopped`: a stop was asked for)."""
    if crashed:
        return "failed"
    if ended:
        return "stopped" if stopped else "finished"
    if stopping or (snapshot is not None and snapshot.stopping):
        return "stopping"
    if snapshot is None:
        return "starting"
    if snapshot.paused:
        busy = any(w.status == "busy" for w in snapshot.worker_states.values())
        return "pausing" if busy else "paused"
    return "running"


def eta_seconds(counts: RunCounts, rate: float | None) -> float | None:
    """Seconds left at the current rate, when both the total and a rate are known."""
    if counts.total is None or not rate or rate <= 0:
        return None
    return max(counts.total - counts.done, 0) / rate


def eta_text(counts: RunCounts, rate: float | None, *, held: bool, stuck: int) -> str:
    """'ETA 35.0s', or why there is none worth showing: a pause or a stuck item holds the
    run, so a time computed from the recent rate would be a guess."""
    if counts.total is None:
        return ""
    if held:
        return "ETA – (paused)"
    if stuck:
        return f"ETA – ({stuck} stuck)"
    eta = eta_seconds(counts, rate)
    return "" if eta is None else f"ETA {format_duration(eta)}"


def progress_bar(fraction: float | None, width: int) -> Text:
    """A text progress bar; an unknown fraction shows an empty track."""
    width = max(width, 1)
    if fraction is None:
        return Text("·" * width, style="dim")
    filled = round(fraction * width)
    bar = Text("█" * filled, style="green")
    bar.append("░" * (width - filled), style="dim")
    return bar


def header_lines(
    *,
    title: str,
    state: RunState,
    elapsed: float,
    counts: RunCounts,
    rate: float | None,
    width: int,
    pipeline: int = 1,
    pipelines: int = 1,
    held: bool = False,
    stuck: int = 0,
) -> tuple[Text, Text]:
    """The two header lines: state, time, bar and rate; then the counts.

    Args:
        pipeline: The number of the pipeline the panels show (of `pipelines`); the counts
            are the whole run's.
        held: Something is paused (the run, a stage or a worker).
        stuck: Workers that look stuck.
    """
    top = Text()
    top.append(" antflow ", style="reverse bold")
    top.append(" ")
    top.append(clean(title, 40), style="bold")
    if pipelines > 1:
        top.append(f" (pipeline {pipeline} of {pipelines})", style="dim")
    top.append("  ")
    top.append(f"● {state}", style=STATE_STYLES[state])
    top.append(f"  {format_clock(elapsed)}  ")
    if counts.total is not None:
        counter = f" {format_count(counts.done)}/{format_count(counts.total)}"
        counter += f" {(counts.fraction or 0.0) * 100:.0f}%"
    else:
        counter = f" {format_count(counts.done)} done"
    tail = f"  {format_rate(rate)}"
    if state in ("running", "pausing", "paused"):
        eta = eta_text(counts, rate, held=held or state != "running", stuck=stuck)
        if eta:
            tail += f"  {eta}"
    bar_width = width - top.cell_len - len(counter) - len(tail) - 1
    # On a narrow terminal the rate and ETA move to the second line to leave room for
    # a bar; the first line never wraps.
    tail_below = bar_width < MIN_BAR and bar_width + len(tail) >= MIN_BAR
    if tail_below:
        bar_width += len(tail)
    if bar_width >= MIN_BAR:
        top.append_text(progress_bar(counts.fraction, min(bar_width, 60)))
    top.append(counter, style="bold")
    if not tail_below:
        top.append(tail)
    return top, count_line(
        counts,
        over=state in ("stopped", "finished", "failed"),
        tail=(tail.strip() if tail_below else ""),
    )


def count_line(counts: RunCounts, *, over: bool, tail: str = "") -> Text:
    """'completed 25   failed 3   skipped 2   in flight 5', then what applies of
    'unfinished', 'abandoned' and (once the run is over) 'not fed'."""
    line = Text(" ")
    for label, value, style, always in (
        ("completed", counts.completed, "green", True),
        ("failed", counts.failed, "red", True),
        ("skipped", counts.skipped, "blue", True),
        ("in flight", counts.in_flight, "cyan", True),
        ("unfinished", counts.unfinished, "magenta", False),
        ("abandoned", counts.abandoned, "yellow", False),
        ("not fed", counts.not_fed if over else 0, "magenta", False),
    ):
        if not always and not value:
            continue
        line.append(f"{label} ", style="dim")
        line.append(format_count(value), style=style if value else "dim")
        line.append("   ")
    if tail:
        line.append(tail)
    return line
