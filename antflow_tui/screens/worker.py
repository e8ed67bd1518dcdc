"""WorkerScreen: one worker, its metrics, recent items, and its live await stack."""

from __future__ import annotations

import os
import sysconfig
from typing import TYPE_CHECKING, ClassVar

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text
from textual.binding import Binding, BindingType
from textual.containers import VerticalScroll
from textual.widgets import Footer, Static

from antflow_tui.formatting import format_count, format_duration, short_path
from antflow_tui.safe_text import clean, item_label
from antflow_tui.screens.detail import DetailScreen

if TYPE_CHECKING:
    from textual.app import ComposeResult

    from antflow.types import DashboardSnapshot
    from antflow_tui.stacks import AwaitStack


class WorkerScreen(DetailScreen):
    """What one worker is doing, down to the line it is waiting on; refreshed every frame."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("p", "toggle_pause", "Pause worker", id="worker.pause"),
        Binding("enter", "open_item", "Open item", id="worker.open-item"),
    ]

    def __init__(self, worker: str) -> None:
        super().__init__()
        self.worker = worker

    def compose(self) -> ComposeResult:
        yield Static(id="worker-title", classes="detail-title", markup=False)
        with VerticalScroll(id="worker-body", classes="detail-body"):
            yield Static(id="worker-facts", classes="detail-section")
            yield Static("Await stack (live)", classes="detail-heading")
            yield Static(id="worker-stack", classes="detail-section")
        yield Footer()

    def on_mount(self) -> None:
        self.refresh_view()
        self.query_one("#worker-body").focus()

    def refresh_view(self, *, force: bool = False) -> None:
        bridge = self.antflow.bridge
        snapshot = bridge.snapshot()
        now = self.antflow.clock()
        state = None if snapshot is None else snapshot.worker_states.get(self.worker)
        metrics = None if snapshot is None else snapshot.worker_metrics.get(self.worker)
        since = None if state is None else state.processing_since
        # Times shown to a tenth of a second: the key moves when the text would.
        shown_now = round(now, 1) if since is not None or metrics is not None else None
        self.show_section("#worker-title", state, lambda: _title(self.worker, snapshot))
        self.show_section(
            "#worker-facts", (state, metrics, shown_now), lambda: _facts(self.worker, snapshot, now)
        )
        stack = bridge.worker_stack(self.worker)
        self.show_section("#worker-stack", stack, lambda: _stack(stack))

    def action_toggle_pause(self) -> None:
        self.antflow.toggle_pause(worker=self.worker)
        self.refresh_view()

    def action_open_item(self) -> None:
        snapshot = self.antflow.bridge.snapshot()
        state = None if snapshot is None else snapshot.worker_states.get(self.worker)
        if state is None or state.current_item_id is None:
            self.notify("This worker holds no item right now.", timeout=2, markup=False)
            return
        self.antflow.open_item(state.current_item_id)


def _title(worker: str, snapshot: DashboardSnapshot | None) -> Text:
    title = Text("Worker ")
    title.append(clean(worker, 40), style="bold")
    state = None if snapshot is None else snapshot.worker_states.get(worker)
    if state is not None:
        title.append(f"  of stage {clean(state.stage, 30)}  ")
        look = "pausing" if state.status == "busy" and state.paused else state.status
        if look == "busy" and state.waiting_for is not None:
            look = f"waiting for a {clean(state.waiting_for, 40)} slot"
        title.append(look, style={"busy": "green", "idle": "dim"}.get(look, "yellow"))
    return title


def _facts(worker: str, snapshot: DashboardSnapshot | None, now: float) -> RenderableType:
    if snapshot is None or worker not in snapshot.worker_states:
        return Text("This worker is not part of the current run.", style="yellow")
    state = snapshot.worker_states[worker]
    metrics = snapshot.worker_metrics[worker]
    table = Table.grid(padding=(0, 2))
    table.add_column(style="dim")
    table.add_column()
    if state.current_item_id is not None:
        item = Text(item_label(state.current_item_id, 60), style="bold")
        item.append("  (enter opens it)", style="dim italic")
    else:
        item = Text("none", style="dim")
    table.add_row("Current item", item)
    table.add_row("Task status", Text(clean(state.current_task or "", 200) or "–"))
    since = state.processing_since
    table.add_row("Time on item", Text(format_duration(None if since is None else now - since)))
    table.add_row("Processed", Text(format_count(metrics.items_processed)))
    table.add_row("Failed", Text(format_count(metrics.items_failed)))
    table.add_row("Average time", Text(format_duration(metrics.avg_processing_time or None)))
    last = metrics.last_active
    table.add_row(
        "Last active", Text("–" if last is None else f"{format_duration(now - last)} ago")
    )
    recent = Text(", ".join(item_label(i, 24) for i in reversed(metrics.recent_items)) or "–")
    table.add_row("Last items", recent)
    return table


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
        lines.append(Text(f"  awaiting {stack.awaiting}", style="yellow"))
    return Group(*lines)
