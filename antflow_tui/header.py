"""The header: the run's state, time, progress, rate and ETA; the counts; and, with several
pipelines, a line naming each one with its own counts (the pipeline switcher).

Pure: built from `RunCounts` (the numbers the summary and the export also use) and plain
facts, so every case is unit-tested on hand-built values.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Final, Literal

from rich.text import Text

from antflow_tui.formatting import format_clock, format_count, format_duration, format_rate
from antflow_tui.palette import DEFAULT, Palette
from antflow_tui.safe_text import clean

if TYPE_CHECKING:
    from collections.abc import Iterable, Sequence

    from antflow.runstream.records import Snapshot
    from antflow_tui.accounting import RunCounts
    from antflow_tui.source.base import ReplayPosition, RunStatus

RunState = Literal[
    "starting",
    "running",
    "pausing",
    "paused",
    "stopping",
    "stopped",
    "finished",
    "failed",
    "cut-off",
]
"""The header's word for the run ("cut-off": a recording that ends before its run did,
at its last moment)."""

MIN_BAR: Final = 10
"""The narrowest progress bar worth drawing."""


def run_state(status: RunStatus | None, snapshots: Iterable[Snapshot]) -> RunState:
    """The one word the header shows for the run."""
    snapshots = list(snapshots)
    if status is not None:
        if status.crashed:
            return "failed"
        if status.ended:
            return "stopped" if status.stop_requested else "finished"
        if status.stopping:
            return "stopping"
        replay = status.replay
        if replay is not None and not replay.complete and status.now >= replay.end:
            # Nothing follows in the file: how the run went on is not known.
            return "cut-off"
    if any(snapshot.stopping for snapshot in snapshots):
        return "stopping"
    if not snapshots:
        return "starting"
    # Pipelines still running decide; once every one is done, the last state stands.
    moving = [snapshot for snapshot in snapshots if snapshot.running] or snapshots[-1:]
    if all(snapshot.paused for snapshot in moving):
        busy = any(
            worker.status == "busy"
            for snapshot in moving
            for stage in snapshot.workers
            for worker in stage
        )
        return "pausing" if busy else "paused"
    return "running"


def eta_seconds(counts: RunCounts, rate: float | None) -> float | None:
    """Seconds left at the current rate, when both the total and a rate are known."""
    if counts.total is None or not rate or rate <= 0:
        return None
    return max(counts.total - counts.done_overall, 0) / rate


def eta_text(
    counts: RunCounts,
    rate: float | None,
    *,
    held: bool,
    stuck: int,
    eta: float | None = None,
) -> str:
    """'ETA 35.0s', or why there is none worth showing: a pause or a stuck item holds the
    run, so a time computed from the recent rate would be a guess.

    Args:
        eta: Seconds left as the run's pace says (`antflow_tui.pace`); None: the items
            left over `rate`.
    """
    if counts.total is None:
        return ""
    if held:
        return "ETA – (paused)"
    if stuck:
        return f"ETA – ({stuck} stuck)"
    if eta is None:
        eta = eta_seconds(counts, rate)
    return "" if eta is None else f"ETA {format_duration(eta)}"


def progress_bar(fraction: float | None, width: int, palette: Palette = DEFAULT) -> Text:
    """A text progress bar; an unknown fraction shows an empty track."""
    width = max(width, 1)
    if fraction is None:
        return Text("·" * width, style="dim")
    filled = round(fraction * width)
    bar = Text("█" * filled, style=palette("progress"))
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
    eta: float | None = None,
    pipeline: int = 1,
    pipelines: int = 1,
    held: bool = False,
    stuck: int = 0,
    replay: ReplayPosition | None = None,
    palette: Palette = DEFAULT,
    aside: Text | None = None,
) -> tuple[Text, Text]:
    """The two header lines: state, time, bar and rate; then the counts.

    Args:
        pipeline: The number of the pipeline the panels show (of `pipelines`; 0: all of
            them); the counts are the whole run's.
        rate: Items per second (the run's pace while it runs, its average once over).
        eta: Seconds left as the run's pace says (None: the items left over `rate`).
        held: Something is paused (the run, a stage or a worker).
        stuck: Workers that look stuck.
        replay: Where a replay stands: the header says "replay" and shows the position
            against the recording's length.
        aside: What ends the first line, its room taken from the bar (a narrow screen's
            spend, when the counts line has none left for it).
    """
    top = Text(no_wrap=True, overflow="ellipsis")
    top.append(" antflow ", style="reverse bold")
    if replay is not None:
        top.append(" replay ", style=palette("replay"))
    top.append(" ")
    top.append(clean(title, 40), style="bold")
    if pipelines > 1:
        shown = "all pipelines" if pipeline == 0 else f"pipeline {pipeline}"
        top.append(f" ({shown} of {pipelines})", style="dim")
    top.append("  ")
    mark = "■" if state == "cut-off" else "●"
    top.append(f"{mark} {state.replace('-', ' ')}", style=palette(f"state-{state}"))
    top.append(f"  {format_clock(elapsed)}")
    if replay is not None:
        top.append(f" of {format_clock(replay.end - replay.start)}", style="dim")
        if not replay.complete:
            top.append(" incomplete", style=palette("held"))
        if replay.damaged:
            top.append(" damaged", style=palette("held"))
    top.append("  ")
    if counts.total is not None:
        counter = f" {format_count(counts.done_overall)}/{format_count(counts.total)}"
        counter += f" {(counts.fraction or 0.0) * 100:.0f}%"
    else:
        counter = f" {format_count(counts.done_overall)} done"
    tail = f"  {format_rate(rate)}"
    if state in ("running", "pausing", "paused"):
        words = eta_text(counts, rate, held=held or state != "running", stuck=stuck, eta=eta)
        if words:
            tail += f"  {words}"
    bar_width = width - top.cell_len - len(counter) - len(tail) - 1
    if aside is not None:
        bar_width -= aside.cell_len + 2
    # On a narrow terminal the rate and ETA move to the second line to leave room for
    # a bar; the first line never wraps.
    # ...and so they do when the line has no room for them at all.
    tail_below = bar_width < MIN_BAR and (bar_width + len(tail) >= MIN_BAR or bar_width < 0)
    if tail_below:
        bar_width += len(tail)
    if bar_width >= MIN_BAR:
        top.append_text(progress_bar(counts.fraction, min(bar_width, 60), palette))
    top.append(counter, style="bold")
    if not tail_below:
        top.append(tail)
    if aside is not None:
        top.append("  ")
        top.append_text(aside)
    return top, count_line(
        counts,
        over=state in ("stopped", "finished", "failed"),
        tail=(tail.strip() if tail_below else ""),
        palette=palette,
    )


def progress_line(
    *,
    title: str,
    state: RunState,
    elapsed: float,
    counts: RunCounts,
    rate: float | None,
    eta: float | None = None,
    held: bool = False,
) -> str:
    """The header as one plain line, for a run with no screen (``--headless``, stdout not
    a terminal): 'job.py  running  0:01:05  520/1,000 52%  8.02/s  ETA 59.8s  completed
    500   failed 20   ...'."""
    if counts.total is not None:
        done = f"{format_count(counts.done_overall)}/{format_count(counts.total)}"
        done += f" {(counts.fraction or 0.0) * 100:.0f}%"
    else:
        done = f"{format_count(counts.done_overall)} done"
    parts = [clean(title, 40), state.replace("-", " "), format_clock(elapsed), done]
    parts.append(format_rate(rate))
    if state in ("running", "pausing", "paused"):
        words = eta_text(counts, rate, held=held or state != "running", stuck=0, eta=eta)
        if words:
            parts.append(words)
    over = state in ("stopped", "finished", "failed")
    parts.append(count_line(counts, over=over).plain.strip().replace("   ", "  "))
    return "  ".join(parts)


def count_line(
    counts: RunCounts, *, over: bool, tail: str = "", palette: Palette = DEFAULT
) -> Text:
    """'completed 25   failed 3   skipped 2   running 8   queued 80', then what applies
    of 'unfinished', 'abandoned', 'done earlier' (a resumed run) and (once the run is
    over) 'not fed'.

    What is in flight shows as running and queued apart: their sum stays near the queues'
    capacity plus the workers for most of a run, and says nothing.
    """
    line = Text(" ", no_wrap=True, overflow="ellipsis")
    for label, value, style, always in (
        ("completed", counts.completed, palette.status("completed"), True),
        ("failed", counts.failed, palette.status("failed"), True),
        ("skipped", counts.skipped, palette.status("skipped"), True),
        ("running", counts.running, palette.status("in_progress"), True),
        ("queued", counts.queued, palette.status("queued"), True),
        ("unfinished", counts.unfinished, palette.status("unfinished"), False),
        ("abandoned", counts.abandoned, palette("abandoned"), False),
        ("done earlier", counts.done_earlier, palette.status("done_earlier"), False),
        ("not fed", counts.not_fed if over else 0, palette.status("unfinished"), False),
    ):
        if not always and not value:
            continue
        line.append(f"{label} ", style="dim")
        line.append(format_count(value), style=style if value else "dim")
        line.append("   ")
    if tail:
        line.append(tail)
    return line


_RUN_ID: Final = re.compile(r"\A(\d{4})(\d{2})(\d{2})-(\d{2})(\d{2})\d{2}-[0-9a-f]{4}\Z")


def resumed_description(kept: Mapping[str, Any] | None) -> str:
    """'resumed from 2026-12-05 06:41 · 2,000 done earlier', from a kept run's recording
    header (its ``history`` fields: the run it resumed, the items done earlier); '' for
    a run that resumed none, or fields that do not read right (the file may be hostile).
    The same words as the live header's (`antflow.resume.ResumePlan.description`): a run
    id is its local start time."""
    if not isinstance(kept, Mapping):
        return ""
    resumed = kept.get("resumed_from")
    found = _RUN_ID.match(resumed) if isinstance(resumed, str) else None
    if found is None:
        return ""
    year, month, day, hour, minute = found.groups()
    earlier = kept.get("done_earlier")
    count = earlier if type(earlier) is int and earlier >= 0 else 0
    return f"resumed from {year}-{month}-{day} {hour}:{minute} · {count:,} done earlier"


def resumed_line(description: str, palette: Palette = DEFAULT) -> Text:
    """' ↻ resumed from 2026-12-05 06:41 · 2,000 done earlier': the header's line for a
    run that resumed another (issue 20)."""
    line = Text(" ↻ ", no_wrap=True, overflow="ellipsis", style=palette.status("done_earlier"))
    line.append(clean(description, 200))
    return line


PipelineMark = Literal["running", "paused", "stopping", "done", "starting"]
_MARKS: Final = {"running": "●", "paused": "‖", "stopping": "■", "done": "✓", "starting": "○"}


def pipeline_mark(snapshot: Snapshot | None) -> PipelineMark:
    """How one pipeline stands, for the switcher."""
    if snapshot is None:
        return "starting"
    if snapshot.stopping:
        return "stopping"
    if not snapshot.running:
        return "done"
    return "paused" if snapshot.paused else "running"


def switcher_line(
    pipelines: Sequence[tuple[int, str, PipelineMark, RunCounts]],
    selected: int,
    *,
    key: str = "s",
    palette: Palette = DEFAULT,
) -> Text:
    """' all │ 1 etl ✓ 1,978/2,000 ✗ 22 │ 2 report ● 1/3 ': every pipeline with its own
    counts, the one the panels show highlighted (0: all of them).

    Args:
        pipelines: (number, label, mark, counts) of each pipeline.
        key: The key that switches, named at the end.
    """
    line = Text(" ", no_wrap=True, overflow="ellipsis")
    choices: list[tuple[int, Text]] = [(0, Text("all"))]
    for number, label, mark, counts in pipelines:
        part = Text(f"{number} ", style=palette("pipeline"))
        part.append(clean(label, 24), style="bold")
        style = palette("state-finished" if mark == "done" else f"state-{mark}")
        part.append(f" {_MARKS[mark]} ", style=style)
        done = format_count(counts.done_overall)
        part.append(f"{done}/{format_count(counts.total)}" if counts.total else f"{done} done")
        if counts.failed:
            part.append(f" ✗ {format_count(counts.failed)}", style=palette.status("failed"))
        choices.append((number, part))
    for index, (number, part) in enumerate(choices):
        if index:
            line.append(" │ ", style="dim")
        if number == selected:
            part = part.copy()
            part.stylize("reverse")
        line.append_text(part)
    line.append(f"   ({key} switches)", style="dim")
    return line
