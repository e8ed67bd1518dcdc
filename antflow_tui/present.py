"""Pure functions from plain run data (snapshots, events, failures) to what widgets show.

Nothing here touches a widget, a pipeline or the clock: every input is passed in, so each
function is unit-tested on hand-built values, and the same screens can later be fed from a
recorded run.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final, Literal

from rich.cells import cell_len
from rich.text import Text

from antflow_tui.filters import Facts
from antflow_tui.formatting import (
    fit_count,
    format_clock,
    format_count,
    format_duration,
    format_rate,
)
from antflow_tui.safe_text import ansi_text, clean, first_line, item_label, literal

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping, Sequence

    from antflow.types import DashboardSnapshot, StageStats, StatusEvent, TaskEvent
    from antflow_tui.records import RunFailure

WorkerLook = Literal["idle", "busy", "waiting", "pausing", "paused", "stuck", "blocked"]
"""How a worker cell looks; "waiting" holds an item but waits for a task's
`task_concurrency_limits` slot; "blocked" holds a finished item while the next stage's
queue is full (backpressure)."""

STUCK_FACTOR: Final = 10.0
"""A worker is stuck once on one item this many times its stage's average task time..."""
STUCK_MIN_SECONDS: Final = 10.0
"""...and at least this long (so fast stages do not flag every hiccup)."""
STUCK_WITHOUT_AVERAGE: Final = 60.0
"""Before a stage has finished anything, stuck means this long on one item."""

STATUS_STYLES: Final[Mapping[str, str]] = {
    "queued": "dim",
    "in_progress": "cyan",
    "completed": "green",
    "failed": "bold red",
    "retrying": "yellow",
    "skipped": "blue",
    "unfinished": "magenta",
    "start": "dim cyan",
    "complete": "dim green",
    "retry": "yellow",
    "fail": "red",
}


# ---------------------------------------------------------------------- stages

STAGE_COLUMNS: Final = (
    ("stage", "Stage"),
    ("workers", "Busy"),
    ("queued", "Queued"),
    ("running", "Run"),
    ("done", "Done"),
    ("failed", "Fail"),
    ("skipped", "Skip"),
    ("retrying", "Retry"),
    ("rate", "Rate"),
    ("avg", "Avg"),
)
"""Column keys and headings; short, so the table fits 80 columns."""

STAGE_WIDTHS: Final[Mapping[str, int]] = {
    "workers": 5,
    "queued": 6,
    "running": 4,
    "done": 6,
    "failed": 5,
    "skipped": 5,
    "retrying": 5,
    "rate": 7,
    "avg": 6,
}
"""Fixed widths of the number columns: widths that follow the numbers would re-measure the
table (a layout pass) as counts grow, and depend on the order values came in. Numbers too
big for their column are shortened (12.3k, 4.5M)."""


@dataclass(frozen=True, slots=True)
class StageRow:
    """One stage table row: its key and its cells in `STAGE_COLUMNS` order."""

    key: str
    cells: tuple[Text, ...]
    bottleneck: bool
    paused: bool


def stage_average(stats: StageStats) -> float | None:
    """Mean seconds per finished item in the stage, or None before the first."""
    finished = stats.completed_items + stats.failed_items
    return stats.task_seconds / finished if finished else None


def bottleneck_stage(
    stages: Sequence[StageStats], previous_pending: Mapping[str, int] | None
) -> str | None:
    """The stage holding the run back: all its workers busy and its queue full or growing.

    Among several, the one whose queue is fullest relative to its capacity.
    """
    candidates: list[tuple[float, str]] = []
    for stats in stages:
        if not stats.workers or stats.busy_workers < stats.workers or not stats.pending_items:
            continue
        before = previous_pending.get(stats.stage_name) if previous_pending else None
        full = stats.queue_capacity and stats.pending_items >= stats.queue_capacity
        growing = before is not None and stats.pending_items > before
        if full or growing:
            fill = stats.pending_items / max(stats.queue_capacity, 1)
            candidates.append((fill, stats.stage_name))
    return max(candidates)[1] if candidates else None


def stage_rows(
    snapshot: DashboardSnapshot,
    rates: Mapping[str, float | None],
    bottleneck: str | None,
) -> list[StageRow]:
    """The stage table, one row per stage in pipeline order."""
    rows = []
    for stats in snapshot.pipeline_stats.stage_stats.values():
        name = stats.stage_name
        label = Text(clean(name, 24), style="bold")
        if stats.paused:
            label.append(" ‖", style="yellow")
        if name == bottleneck:
            label.stylize("red")
            label.append(" ◀", style="bold red")
        workers = Text(f"{stats.busy_workers}/{stats.workers}")
        if stats.workers and stats.busy_workers == stats.workers:
            workers.stylize("bold")
        cells = (
            label,
            workers,
            _number(stats.pending_items, "yellow" if name == bottleneck else "", "queued"),
            _number(stats.in_progress_items, "cyan", "running"),
            _number(stats.completed_items, "green", "done"),
            _number(stats.failed_items, "bold red", "failed"),
            _number(stats.skipped_items, "blue", "skipped"),
            # Task attempts that failed and were tried again, per-task and per-stage alike.
            _number(stats.task_retries, "yellow", "retrying"),
            Text(_fit_rate(rates.get(name), STAGE_WIDTHS["rate"]), justify="right"),
            Text(format_duration(stage_average(stats)), justify="right"),
        )
        rows.append(StageRow(name, cells, name == bottleneck, stats.paused))
    return rows


def _number(value: int, style: str, column: str) -> Text:
    shown = fit_count(value, STAGE_WIDTHS[column])
    return Text(shown, style=style if value else "dim", justify="right")


def _fit_rate(per_second: float | None, width: int) -> str:
    shown = format_rate(per_second)
    if per_second is None or len(shown) <= width:
        return shown
    return f"{fit_count(round(per_second), width - 2)}/s"


# ---------------------------------------------------------------------- workers


@dataclass(frozen=True, slots=True)
class WorkerCell:
    """One worker as the grid shows it."""

    name: str
    stage: str
    look: WorkerLook
    item: str
    """The current item's id, shown literally ('' when idle)."""
    status_text: str
    """The running task's `set_task_status` text, cleaned."""
    seconds: float | None
    """Time on the current item."""


def worker_cells(
    snapshot: DashboardSnapshot, now: float, averages: Mapping[str, float | None]
) -> list[WorkerCell]:
    """Every worker, in stage order, with what it is doing and whether it looks stuck."""
    cells = []
    for name, state in snapshot.worker_states.items():
        seconds = None if state.processing_since is None else now - state.processing_since
        look: WorkerLook
        status_text = "" if not state.current_task else clean(state.current_task, 60)
        if state.status == "busy":
            look = "pausing" if state.paused else "busy"
            if state.waiting_for is not None:
                # Its task has not begun: the time is spent waiting, not stuck.
                look = "pausing" if state.paused else "waiting"
                status_text = f"waiting for a {clean(state.waiting_for, 40)} slot"
            elif seconds is not None and is_stuck(seconds, averages.get(state.stage)):
                look = "stuck"
        elif state.status == "paused" or state.paused:
            look = "paused"
        elif state.current_item_id is not None:
            look = "blocked"
        else:
            look = "idle"
        cells.append(
            WorkerCell(
                name=name,
                stage=state.stage,
                look=look,
                item="" if state.current_item_id is None else item_label(state.current_item_id),
                status_text=status_text,
                seconds=seconds,
            )
        )
    return cells


def is_stuck(seconds: float, stage_average_seconds: float | None) -> bool:
    """True when one item has held a worker far longer than its stage usually takes."""
    if stage_average_seconds is None:
        return seconds >= STUCK_WITHOUT_AVERAGE
    return seconds >= max(STUCK_FACTOR * stage_average_seconds, STUCK_MIN_SECONDS)


WORKER_STYLES: Final[Mapping[str, str]] = {
    "idle": "dim",
    "blocked": "magenta",
    "busy": "green",
    "waiting": "cyan",
    "pausing": "yellow",
    "paused": "yellow",
    "stuck": "bold red",
}
WORKER_MARKS: Final[Mapping[str, str]] = {
    "idle": "·",
    "blocked": "»",
    "busy": "▶",
    "waiting": "◌",
    "pausing": "▷",
    "paused": "‖",
    "stuck": "!",
}
WORKER_LEGEND: Final[tuple[tuple[WorkerLook, str, str], ...]] = (
    ("busy", "running", "running an item"),
    ("waiting", "waiting", "holds an item, waiting for a task_concurrency_limits slot"),
    ("stuck", "stuck", "far longer on one item than its stage usually takes"),
    ("blocked", "blocked", "done with its item; the next stage's queue is full"),
    ("pausing", "pausing", "paused; finishing its item first"),
    ("paused", "paused", "paused; takes no new item"),
    ("idle", "idle", "waiting for an item"),
)
"""Every worker-grid glyph: its look, its word, and what it means (the help screen)."""
BOTTLENECK_MARK: Final = "◀"


def worker_legend(looks: Iterable[str]) -> Text:
    """The glyphs of these looks with their words, in legend order ('▶ running · idle')."""
    present = set(looks)
    legend = Text()
    for look, word, _meaning in WORKER_LEGEND:
        if look in present:
            if legend:
                legend.append("  ")
            legend.append(f"{WORKER_MARKS[look]} {word}", style=WORKER_STYLES[look])
    return legend


def short_worker_name(name: str, stage: str) -> str:
    """``Fetch-W3`` -> ``W3`` (the grid groups workers by stage already)."""
    prefix = f"{stage}-"
    return name[len(prefix) :] if name.startswith(prefix) else name


def natural_cell_width(cell: WorkerCell) -> int:
    """How wide a cell would like to be to show everything (in terminal cells)."""
    width = 2 + cell_len(short_worker_name(cell.name, cell.stage))
    if cell.item:
        width += 1 + cell_len(cell.item)
    if cell.seconds is not None:
        width += 7
    if cell.look == "stuck":
        width += 6
    if cell.status_text:
        width += 1 + cell_len(cell.status_text)
    return width


def worker_cell_text(cell: WorkerCell, width: int, *, selected: bool = False) -> Text:
    """One grid cell, exactly `width` cells wide."""
    style = WORKER_STYLES[cell.look]
    text = Text(no_wrap=True, overflow="ellipsis")
    text.append(f"{WORKER_MARKS[cell.look]} ", style=style)
    text.append(short_worker_name(cell.name, cell.stage), style=f"bold {style}")
    if cell.item:
        text.append(" ")
        text.append(cell.item, style="bold" if cell.look != "idle" else "")
    if cell.seconds is not None:
        text.append(
            f" {format_duration(cell.seconds)}", style="dim" if cell.look == "busy" else style
        )
    if cell.look == "stuck":
        text.append(" stuck", style=style)
    if cell.status_text:
        text.append(" ")
        text.append(cell.status_text, style="italic")
    text.truncate(width, overflow="ellipsis", pad=True)
    if selected:
        text.stylize("reverse")
    return text


# ---------------------------------------------------------------------- errors


@dataclass(frozen=True, slots=True)
class ErrorRow:
    """One failed item in the error panel."""

    item_id: Any
    cells: tuple[Text, ...]


ERROR_COLUMNS: Final = ("Item", "Stage", "Error", "Message", "Tries")
PIPELINE_COLUMN: Final = "Pipe"
"""Heads the column naming each failure's pipeline, shown when a run has several."""


def error_rows(failures: Sequence[RunFailure], *, pipelines: int = 1) -> list[ErrorRow]:
    """Failed items, newest first; with several pipelines, each row starts with the number
    of the pipeline it failed in."""
    rows = []
    for failure in reversed(failures):
        cells = (
            literal(item_label(failure.item_id), "bold"),
            literal(failure.stage, "", 16),
            literal(failure.error_type, "red", 24),
            Text(error_message(failure.error, 200), no_wrap=True, overflow="ellipsis"),
            Text(str(failure.attempts), justify="right"),
        )
        if pipelines > 1:
            cells = (Text(str(failure.pipeline), style="magenta", justify="right"), *cells)
        rows.append(ErrorRow(item_id=failure.item_id, cells=cells))
    return rows


def error_type_counts(counts: Mapping[str, int]) -> Text:
    """'ValueError 12 · TimeoutError 3', most frequent first."""
    text = Text()
    for index, (name, count) in enumerate(sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))):
        if index:
            text.append(" · ", style="dim")
        text.append(clean(name, 30), style="red")
        text.append(f" {format_count(count)}")
    return text


# ---------------------------------------------------------------------- events


def event_line(event: StatusEvent | TaskEvent, started: float) -> Text:
    """One event log line: time into the run, item, stage, what happened, details."""
    from antflow.types import StatusEvent

    line = Text(no_wrap=True, overflow="ellipsis")
    line.append(f"{format_clock(event.timestamp - started)} ", style="dim")
    line.append(item_label(event.item_id, 20), style="bold")
    line.append(" ")
    line.append(clean(event.stage or "", 16), style="magenta")
    line.append(" ")
    if isinstance(event, StatusEvent):
        line.append(event.status, style=STATUS_STYLES.get(event.status, ""))
        if event.worker:
            line.append(f" {clean(event.worker, 20)}", style="dim")
        metadata = event.metadata
        if event.status == "retrying":
            line.append(f" → attempt {metadata.get('attempt', '?')}", style="yellow")
        if event.status in ("failed", "retrying") and metadata.get("error_type"):
            line.append(f" {clean(str(metadata['error_type']), 30)}: ", style="red")
            line.append(error_message(str(metadata.get("error", "")), 120))
        return line
    line.append(f"task {event.event_type}", style=STATUS_STYLES.get(event.event_type, ""))
    line.append(f" {clean(event.task_name, 24)}#{event.attempt}")
    if event.worker:
        line.append(f" {clean(event.worker, 20)}", style="dim")
    if event.duration is not None:
        line.append(f" {format_duration(event.duration)}", style="dim")
    if event.error is not None:
        line.append(f" {clean(type(event.error).__name__, 40)}: ", style="red")
        line.append(error_message(str(event.error), 120))
    return line


def error_message(message: str, limit: int) -> str:
    """The first line of an error message, or a note that it has none."""
    return first_line(message, limit) or "(no message)"


def note_line(when: float, text: str, started: float, is_error: bool) -> Text:
    """A line the script printed or logged, as the event log shows it."""
    line = Text(no_wrap=True, overflow="ellipsis")
    line.append(f"{format_clock(when - started)} ", style="dim")
    line.append("│ ", style="red" if is_error else "blue")
    # Scripts print colours (a Rich console thinks it writes to a terminal): show them.
    line.append_text(ansi_text(text, "red" if is_error else "", 400))
    return line


def dropped_line(dropped: int, rate: float | None) -> Text:
    """The line standing in for events the log could not keep up with."""
    text = Text(f"… {format_count(dropped)} events not shown", style="dim italic")
    if rate:
        text.append(f" ({format_rate(rate)})", style="dim italic")
    return text


# ---------------------------------------------------------------------- filter facts


def event_facts(event: StatusEvent | TaskEvent) -> Facts:
    """What a log line offers to a filter (built from the event, not its rendering)."""
    from antflow.types import StatusEvent

    if isinstance(event, StatusEvent):
        status = event.status
        error = f"{event.metadata.get('error_type', '')} {event.metadata.get('error', '')}"
        what = status
    else:
        status = event.event_type
        error = "" if event.error is None else f"{type(event.error).__name__} {event.error}"
        what = f"task {status} {event.task_name}"
    item = item_label(event.item_id, 10_000)
    error = error.strip()
    stage = event.stage or ""
    worker = event.worker or ""
    return Facts(
        text=f"{item} {stage} {what} {worker} {error}",
        status=status,
        stage=stage,
        item=item,
        error=error,
        worker=worker,
    )


def failure_facts(failure: RunFailure) -> Facts:
    """What an error panel row offers to a filter."""
    label = item_label(failure.item_id, 10_000)
    error = f"{failure.error_type} {failure.error}"
    return Facts(
        text=f"{label} {failure.stage} {error} pipeline-{failure.pipeline}",
        status="failed",
        stage=failure.stage,
        item=label,
        error=error,
    )


def worker_facts(cell: WorkerCell) -> Facts:
    """What a worker cell offers to a filter."""
    return Facts(
        text=f"{cell.name} {cell.look} {cell.item} {cell.status_text}",
        status=cell.look,
        stage=cell.stage,
        item=cell.item,
        worker=cell.name,
    )


def stage_facts(row: StageRow) -> Facts:
    """What a stage row offers to a filter."""
    status = " ".join(
        word for word, on in (("paused", row.paused), ("bottleneck", row.bottleneck)) if on
    )
    return Facts(text=row.key, stage=row.key, status=status)


def pause_settling(snapshot: DashboardSnapshot | None) -> bool:
    """True while a paused worker still finishes its item ("pausing…")."""
    if snapshot is None:
        return False
    return any(w.paused and w.status == "busy" for w in snapshot.worker_states.values())


def paused_what(snapshot: DashboardSnapshot | None) -> str:
    """What a pause holds, for the banner: 'the run', or 'stage Fetch, worker Parse-W0'."""
    if snapshot is None:
        return ""
    if snapshot.paused:
        return "the whole run"
    stages = [s.stage_name for s in snapshot.pipeline_stats.stage_stats.values() if s.paused]
    held_stages = set(stages)
    workers = [
        name
        for name, state in snapshot.worker_states.items()
        if state.paused and state.stage not in held_stages
    ]
    parts = [f"stage {clean(name, 30)}" for name in stages]
    parts += [f"worker {clean(name, 30)}" for name in workers]
    if len(parts) > 4:
        parts = [*parts[:4], f"and {len(parts) - 4} more"]
    return ", ".join(parts)
