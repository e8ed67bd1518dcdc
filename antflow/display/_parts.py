"""Pure builders from a snapshot to the Rich pieces the built-in dashboards stack up.

Every user value (stage and worker names, item ids, status texts, errors) goes through
`cell`: a `Text` of `safe_text`, never markup, so ``[red]`` in data shows as typed.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Final

from rich import box
from rich.console import Group
from rich.progress_bar import ProgressBar
from rich.table import Table
from rich.text import Text

from antflow.display._text import DEFAULT_LIMIT, format_duration, format_rate, safe_text

if TYPE_CHECKING:
    from collections.abc import Mapping

    from rich.console import RenderableType

    from antflow.display._tally import Tally
    from antflow.types import DashboardSnapshot, ErrorSummary, WorkerState

MAX_WORKER_ROWS: Final = 12
"""Workers the full dashboard lists (busy ones first); Live crops what the screen can't fit."""
RECENT_FAILURES: Final = 20
"""Failed items the full dashboard lists by default, newest last (AntFlow's
``max_items_shown`` default)."""
BAR_WIDTH: Final = 40

_STAGE_COLUMNS: Final = (
    "Workers",
    "Queued",
    "In progress",
    "Completed",
    "Failed",
    "Skipped",
    "Retries",
)
_WORKER_STYLES: Final = {"busy": "green", "paused": "yellow", "idle": "dim"}


def cell(value: object, limit: int = DEFAULT_LIMIT) -> Text:
    """User data as a literal, one-line, truncated `Text`."""
    return Text(safe_text(value, limit))


def _table(title: str | None = None, caption: str | None = None) -> Table:
    # Blank column rules and no padding: eight stage columns then fit an 80-column terminal.
    return Table(
        box=box.SIMPLE_HEAD,
        show_edge=False,
        padding=(0, 0),
        expand=True,
        title=title,
        title_justify="left",
        caption=caption,
        caption_justify="left",
    )


def _count(value: int, alert: bool = False) -> Text:
    return Text(str(value), style="red" if alert and value else "")


def state_label(snapshot: DashboardSnapshot) -> str:
    """``stopping``, ``paused``, ``running`` or ``finished``."""
    if snapshot.stopping:
        return "stopping"
    if snapshot.paused:
        return "paused"
    return "running" if snapshot.running else "finished"


def overview(tally: Tally) -> RenderableType:
    """The progress bar with done/total and percent (counts only for an unknown total), then
    in flight, completed, failed, rate and elapsed."""
    line = Table.grid(padding=(0, 1))
    fraction = tally.fraction
    if tally.total and fraction is not None:
        line.add_row(
            ProgressBar(total=tally.total, completed=min(tally.done, tally.total), width=BAR_WIDTH),
            Text(f"{tally.done}/{tally.total}"),
            Text(f"{fraction * 100:5.1f}%", style="bold"),
        )
    else:
        line.add_row(Text(f"{tally.done} done", style="bold"))
    stats = Text.assemble(
        ("in flight ", "dim"),
        str(tally.in_flight),
        ("  completed ", "dim"),
        str(tally.processed),
        *((("  done earlier ", "dim"), str(tally.done_earlier)) if tally.done_earlier else ()),
        ("  failed ", "dim"),
        (str(tally.failed), "red" if tally.failed else ""),
        "  ",
        format_rate(tally.rate),
        ("  elapsed ", "dim"),
        format_duration(tally.elapsed),
    )
    return Group(line, stats)


def stage_table(snapshot: DashboardSnapshot) -> Table:
    """One row per stage: busy/total workers, then its item counts."""
    table = _table()
    table.add_column("Stage", no_wrap=True, overflow="ellipsis", min_width=8)
    for title in _STAGE_COLUMNS:
        table.add_column(title, justify="right", no_wrap=True)
    for name, stage in snapshot.pipeline_stats.stage_stats.items():
        label = cell(name)
        if stage.paused:
            label.append(" (paused)", style="yellow")
        table.add_row(
            label,
            Text(f"{stage.busy_workers}/{stage.workers}"),
            _count(stage.pending_items),
            _count(stage.in_progress_items),
            _count(stage.completed_items),
            _count(stage.failed_items, alert=True),
            _count(stage.skipped_items),
            # Attempts tried again, as the app's Retry column: items waiting for a retry
            # right now are almost always 0 between two frames.
            _count(stage.task_retries),
        )
    return table


def busy_line(snapshot: DashboardSnapshot) -> Text:
    """``busy workers 3/8``."""
    states = snapshot.worker_states.values()
    busy = sum(1 for state in states if state.status == "busy")
    return Text.assemble(("busy workers ", "dim"), f"{busy}/{len(states)}")


def _worker_status(state: WorkerState) -> Text:
    if state.status == "busy" and state.paused:
        # Held by a pause, but finishing its current item first.
        return Text("pausing", style="yellow")
    return Text(state.status, style=_WORKER_STYLES.get(state.status, ""))


def worker_table(snapshot: DashboardSnapshot, limit: int = MAX_WORKER_ROWS) -> Table:
    """Busy workers first, then the rest, at most `limit` rows: name, status, item, task
    text and time on the item."""
    states = sorted(snapshot.worker_states.values(), key=lambda state: state.status != "busy")
    hidden = len(states) - limit
    table = _table(caption=f"+{hidden} more workers" if hidden > 0 else None)
    table.add_column("Worker", no_wrap=True, overflow="ellipsis")
    table.add_column("Status", no_wrap=True)
    table.add_column("Item", no_wrap=True, overflow="ellipsis")
    table.add_column("Task", no_wrap=True, overflow="ellipsis", ratio=1)
    table.add_column("On item", justify="right", no_wrap=True)
    for state in states[:limit]:
        since = state.processing_since
        table.add_row(
            cell(state.worker_name),
            _worker_status(state),
            cell(state.current_item_id) if state.current_item_id is not None else Text(""),
            cell(state.current_task) if state.current_task else Text(""),
            Text(format_duration(snapshot.timestamp - since) if since is not None else ""),
        )
    return table


def _counts_line(label: str, counts: Mapping[str, int]) -> Text:
    line = Text.assemble((f"{label}: ", "dim"))
    for position, (name, count) in enumerate(counts.items()):
        if position:
            line.append(" · ", style="dim")
        line.append_text(cell(name))
        line.append(f" {count}", style="red")
    return line


def error_section(
    summary: ErrorSummary | None, snapshot: DashboardSnapshot, limit: int = RECENT_FAILURES
) -> RenderableType:
    """Failure counts by error type and by stage, and the last `limit` failed items.

    Without a `summary`, the per-stage counts come from the snapshot and the rest is left out.
    """
    by_stage: Mapping[str, int] = {
        name: stage.failed_items
        for name, stage in snapshot.pipeline_stats.stage_stats.items()
        if stage.failed_items
    }
    by_type: Mapping[str, int] = {}
    recent: list[Text | Table] = []
    if summary is not None and summary.total_failed:
        by_type = summary.errors_by_type
        by_stage = summary.errors_by_stage or by_stage
        shown = summary.failed_items[-limit:] if limit > 0 else []
        hidden = len(summary.failed_items) - len(shown)
        failures = _table(
            title="Last failed items", caption=f"+{hidden} more failed" if hidden > 0 else None
        )
        for title in ("Item", "Stage", "Type"):
            failures.add_column(title, no_wrap=True, overflow="ellipsis")
        failures.add_column("Error", no_wrap=True, overflow="ellipsis", ratio=1)
        for item in shown:
            failures.add_row(
                cell(item.item_id), cell(item.stage), cell(item.error_type), cell(item.error)
            )
        recent.append(failures)
    if not by_stage and not by_type:
        return Text("No errors", style="green")
    parts: list[RenderableType] = [Text("Errors", style="bold red")]
    if by_type:
        parts.append(_counts_line("by type", by_type))
    if by_stage:
        parts.append(_counts_line("by stage", by_stage))
    parts.extend(recent)
    return Group(*parts)
