"""WorkerScreen: one worker, its metrics, recent items, and its live await stack."""

from __future__ import annotations

import os
import sysconfig
import time
from typing import TYPE_CHECKING, ClassVar, Final

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text
from textual.containers import VerticalScroll
from textual.widgets import Footer, Static

from antflow_tui.cost import per_item_words
from antflow_tui.formatting import format_count, format_duration, short_path
from antflow_tui.gauges import usage_words, waiting_words
from antflow_tui.keys import bindings, needs
from antflow_tui.messages import ItemRequested, PauseRequested
from antflow_tui.palette import DEFAULT, Palette
from antflow_tui.present import stage_views
from antflow_tui.safe_text import clean, item_label
from antflow_tui.screens.detail import DetailScreen
from antflow_tui.source.base import Can

if TYPE_CHECKING:
    from collections.abc import Mapping

    from textual.app import ComposeResult
    from textual.binding import BindingType

    from antflow.runstream.records import AwaitStack, WorkerRow
    from antflow_tui.present import StageView
    from antflow_tui.source.base import RunSource
    from antflow_tui.source.state import RunState

STACK_SECONDS: Final = 0.2
"""How often the worker screen asks for the worker's await stack again."""


class WorkerScreen(DetailScreen):
    """What one worker is doing, down to the line it is waiting on; refreshed every frame.

    Args:
        pipeline: The number of the worker's pipeline.
        worker: The worker's name.
    """

    BINDINGS: ClassVar[list[BindingType]] = bindings("worker")
    NEEDS: ClassVar[Mapping[str, Can]] = {**DetailScreen.NEEDS, **needs("worker")}

    def __init__(self, source: RunSource, state: RunState, pipeline: int, worker: str) -> None:
        super().__init__(source, state)
        self.pipeline = pipeline
        self.worker = worker
        self.stack: AwaitStack | None = None
        self._stack_at = float("-inf")
        self._reading = False

    def compose(self) -> ComposeResult:
        yield Static(id="worker-title", classes="detail-title", markup=False)
        with VerticalScroll(id="worker-body", classes="detail-body"):
            yield Static(id="worker-facts", classes="detail-section")
            heading = "Await stack (live)" if self.source.can(Can.STACKS) else "Await stack"
            yield Static(heading, classes="detail-heading")
            yield Static(id="worker-stack", classes="detail-section")
        yield Footer()

    def on_mount(self) -> None:
        self.refresh_view(force=True)
        self.query_one("#worker-body").focus()

    def row(self) -> tuple[str, WorkerRow] | None:
        """The worker's stage and its row in the latest snapshot."""
        found = self._view_and_row()
        return None if found is None else (found[0].name, found[1])

    def _view_and_row(self) -> tuple[StageView, WorkerRow] | None:
        started = self.state.pipelines.get(self.pipeline)
        snapshot = self.state.snapshots.get(self.pipeline)
        if started is None or snapshot is None:
            return None
        for view in stage_views(started, snapshot):
            for name, row in zip(view.config.workers, view.workers, strict=False):
                if name == self.worker:
                    return view, row
        return None

    def refresh_view(self, *, force: bool = False) -> None:
        found = self._view_and_row()
        status = self.state.status
        now = status.now if status is not None else 0.0
        view, row = found if found is not None else (None, None)
        stage = "" if view is None else view.name
        # Times shown to a tenth of a second: the key moves when the text would.
        shown_now = round(now, 1) if row is not None else None
        palette = self.palette
        waiting = None
        if view is not None and row is not None and row.waiting_for is not None:
            waiting = waiting_words(row.waiting_for, view.config, view.counts.limits, now)
        self.show_section(
            "#worker-title",
            (stage, row, waiting),
            lambda: _title(self.worker, stage, row, palette, waiting),
        )
        self.show_section("#worker-facts", (row, shown_now), lambda: _facts(row, now, palette))
        if not self.source.can(Can.STACKS):
            self.show_section("#worker-stack", "none", _no_stacks)
            return
        moment = time.monotonic()
        if not self._reading and (force or moment - self._stack_at >= STACK_SECONDS):
            self._stack_at = moment
            self._reading = True
            self.run_worker(self._read_stack(), group="worker-stack", exit_on_error=False)

    async def _read_stack(self) -> None:
        try:
            self.stack = await self.source.worker_stack(self.pipeline, self.worker)
        finally:
            self._reading = False
        stack = self.stack
        self.show_section("#worker-stack", stack, lambda: _stack(stack))

    def action_toggle_pause(self) -> None:
        self.post_message(PauseRequested(self.pipeline, worker=self.worker))

    def action_open_item(self) -> None:
        found = self.row()
        if found is None or not found[1].holding:
            self.notify("This worker holds no item right now.", timeout=2, markup=False)
            return
        self.post_message(ItemRequested(self.pipeline, found[1].item))


def _title(
    worker: str,
    stage: str,
    row: WorkerRow | None,
    palette: Palette = DEFAULT,
    waiting: str | None = None,
) -> Text:
    """'Worker Ask-W3  of stage Ask  busy' (`waiting`: what it waits for, in words)."""
    title = Text("Worker ")
    title.append(clean(worker, 40), style="bold")
    if row is not None:
        title.append(f"  of stage {clean(stage, 30)}  ")
        look = "pausing" if row.status == "busy" and row.paused else row.status
        shown = look
        if look == "busy" and waiting is not None:
            look, shown = "waiting", waiting
        title.append(shown, style=palette.look(look))
    return title


def _facts(row: WorkerRow | None, now: float, palette: Palette = DEFAULT) -> RenderableType:
    if row is None:
        return Text("This worker is not part of the current run.", style="yellow")
    table = Table.grid(padding=(0, 2))
    table.add_column(style="dim")
    table.add_column()
    if row.holding:
        item = Text(item_label(row.item, 60), style="bold")
        item.append("  (enter opens it)", style="dim italic")
    else:
        item = Text("none", style="dim")
    table.add_row("Current item", item)
    table.add_row("Task status", Text(clean(row.task_status or "", 200) or "–"))
    since = row.since
    table.add_row("Time on item", Text(format_duration(None if since is None else now - since)))
    table.add_row("Processed", Text(format_count(row.processed)))
    table.add_row("Failed", Text(format_count(row.failed)))
    finished = row.processed + row.failed
    average = row.busy_seconds / finished if finished else None
    table.add_row("Average time", Text(format_duration(average or None)))
    last = row.last_active
    table.add_row(
        "Last active", Text("–" if last is None else f"{format_duration(now - last)} ago")
    )
    recent = Text(", ".join(item_label(i, 24) for i in reversed(row.recent)) or "–")
    table.add_row("Last items", recent)
    if row.usage is not None:
        # What its tasks reported with set_task_usage (issue 22): tokens, and their cost.
        usage = usage_words(row.usage) + per_item_words(row.usage, finished)
        table.add_row("Usage", Text(usage))
    return table


def _no_stacks() -> Text:
    return Text(
        "Await stacks are read from the live run; this source has none (a recording).",
        style="dim",
    )


def _stack(stack: AwaitStack | None) -> RenderableType:
    if stack is None:
        return Text("The worker is not running (its pipeline has finished).", style="dim")
    if not stack.frames:
        return Text("No frames: the task has finished.", style="dim")
    lines: list[RenderableType] = []
    cwd, stdlib = os.getcwd(), sysconfig.get_paths()["stdlib"]
    for frame in stack.frames:
        path = short_path(frame.filename, cwd, stdlib)
        where = Text(f"{clean(path, 200)}:{frame.lineno}", style="cyan")
        where.append(f" in {clean(frame.function, 80)}", style="bold")
        lines.append(where)
        if frame.line:
            lines.append(Text(f"    {clean(frame.line, 200)}", style="dim"))
    if stack.awaiting:
        lines.append(Text(f"  awaiting {clean(stack.awaiting, 200)}", style="yellow"))
    return Group(*lines)
