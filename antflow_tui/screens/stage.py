"""StageScreen: one stage's configuration, workers, queue and failures."""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

from rich.table import Table
from rich.text import Text
from textual import on
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.widgets import Footer, Static

from antflow_tui.filters import Filter
from antflow_tui.formatting import format_count, format_duration
from antflow_tui.keys import key_for
from antflow_tui.present import stage_average
from antflow_tui.safe_text import clean, item_label
from antflow_tui.screens.detail import DetailScreen
from antflow_tui.widgets.error_panel import ErrorPanel
from antflow_tui.widgets.row_list import RowList

if TYPE_CHECKING:
    from collections.abc import Sequence

    from textual.app import ComposeResult

    from antflow.types import DashboardSnapshot
    from antflow_tui.records import RunFailure


class StageScreen(DetailScreen):
    """A stage in detail; its failures list works like the main error panel."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("p", "toggle_pause", "Pause stage", id="stage.pause"),
        Binding("r", "retry", "Retry", id="stage.retry"),
    ]

    def __init__(self, stage: str) -> None:
        super().__init__()
        self.stage = stage
        self._failures_from: Sequence[RunFailure] | None = None
        self._failures: Sequence[RunFailure] = ()

    def compose(self) -> ComposeResult:
        yield Static(id="stage-title", classes="detail-title", markup=False)
        with Horizontal(id="stage-top"):
            yield Static(id="stage-config", classes="detail-section")
            with Vertical():
                yield Static(id="stage-counts", classes="detail-section")
                yield Static(id="stage-queue", classes="detail-section")
        yield ErrorPanel(id="stage-failures")
        yield Footer()

    def on_mount(self) -> None:
        panel = self.query_one(ErrorPanel)
        retry = key_for(self.app, "stage.retry")
        # A Text: a key name is no markup.
        panel.border_title = Text(f"Failures in this stage (enter opens, {retry} retries)")
        panel.set_filter(Filter(source=f"stage:{self.stage}", fields=(("stage", self.stage),)))
        self.refresh_view()
        panel.focus()

    def refresh_view(self, *, force: bool = False) -> None:
        bridge = self.antflow.bridge
        snapshot = bridge.snapshot()
        stats = None if snapshot is None else snapshot.pipeline_stats.stage_stats.get(self.stage)
        workers = (
            ()
            if snapshot is None
            else tuple(s for s in snapshot.worker_states.values() if s.stage == self.stage)
        )
        queued = () if snapshot is None else snapshot.queued_ids.get(self.stage, ())
        info = None if snapshot is None else snapshot.stages
        self.show_section("#stage-title", stats, lambda: self._title(snapshot))
        self.show_section("#stage-config", info, lambda: self._config(snapshot))
        self.show_section("#stage-counts", (stats, workers), lambda: self._counts(snapshot))
        self.show_section("#stage-queue", queued, lambda: self._queue(snapshot))
        failures = bridge.failures()
        if failures is not self._failures_from:
            # The stage table shows the current pipeline: its stage's failures only.
            current = bridge.current
            number = 1 if current is None else current.number
            self._failures_from = failures
            self._failures = [f for f in failures if f.pipeline == number]
        self.query_one(ErrorPanel).show(self._failures)

    def _title(self, snapshot: DashboardSnapshot | None) -> Text:
        title = Text("Stage ")
        title.append(clean(self.stage, 40), style="bold")
        stats = None if snapshot is None else snapshot.pipeline_stats.stage_stats.get(self.stage)
        if stats is not None and stats.paused:
            title.append("  paused", style="yellow")
        return title

    def _config(self, snapshot: DashboardSnapshot | None) -> Table | Text:
        info = (
            next((s for s in snapshot.stages if s.name == self.stage), None) if snapshot else None
        )
        if info is None:
            return Text("This stage is not part of the current run.", style="yellow")
        table = Table.grid(padding=(0, 2))
        table.add_column(style="dim")
        table.add_column()
        table.add_row("Workers", Text(str(info.workers)))
        table.add_row("Tasks", Text(", ".join(clean(name, 40) for name in info.task_names)))
        table.add_row("Retry", Text(info.retry))
        if info.retry == "per_task":
            wait = format_duration(info.task_wait_seconds)
            table.add_row("Attempts", Text(f"{info.task_attempts} per task, {wait} apart"))
        else:
            table.add_row("Attempts", Text(f"{info.stage_attempts} of the whole stage"))
        limits = ", ".join(
            f"{clean(name, 30)} ≤ {limit}" for name, limit in info.task_concurrency_limits.items()
        )
        table.add_row("Limits", Text(limits or "–"))
        table.add_row("Queue capacity", Text(format_count(info.queue_capacity)))
        table.add_row("skip_if", Text("yes" if info.has_skip_if else "–"))
        return table

    def _counts(self, snapshot: DashboardSnapshot | None) -> Table | Text:
        stats = None if snapshot is None else snapshot.pipeline_stats.stage_stats.get(self.stage)
        if stats is None or snapshot is None:
            return Text()
        table = Table.grid(padding=(0, 2))
        table.add_column(style="dim")
        table.add_column()
        table.add_row("Busy", Text(f"{stats.busy_workers}/{stats.workers}"))
        for label, value in (
            ("Queued", stats.pending_items),
            ("Done", stats.completed_items),
            ("Failed", stats.failed_items),
            ("Skipped", stats.skipped_items),
            ("Retrying", stats.retrying_items),
            ("Task retries", stats.task_retries),
        ):
            table.add_row(label, Text(format_count(value)))
        table.add_row("Average time", Text(format_duration(stage_average(stats))))
        for name, state in snapshot.worker_states.items():
            if state.stage != self.stage:
                continue
            look = "pausing" if state.status == "busy" and state.paused else state.status
            line = Text(look, style={"busy": "green", "idle": "dim"}.get(look, "yellow"))
            if state.current_item_id is not None:
                line.append(f"  {item_label(state.current_item_id, 24)}", style="bold")
            if state.current_task:
                line.append(f"  {clean(state.current_task, 40)}", style="italic")
            table.add_row(Text(clean(name, 24)), line)
        return table

    def _queue(self, snapshot: DashboardSnapshot | None) -> Text:
        queued = () if snapshot is None else snapshot.queued_ids.get(self.stage, ())
        text = Text("Next in queue: ", style="dim")
        text.append(", ".join(item_label(item_id, 20) for item_id in queued) or "empty")
        return text

    def action_toggle_pause(self) -> None:
        self.antflow.toggle_pause(stage=self.stage)
        self.refresh_view()

    async def action_retry(self) -> None:
        panel = self.query_one(ErrorPanel)
        failure = panel.failure_at(panel.cursor)
        if failure is None:
            self.notify("No failed item selected.", timeout=2, markup=False)
            return
        await self.antflow.retry_items([(failure.item_id, failure.pipeline)])

    @on(RowList.Chosen, "#stage-failures")
    def _open_failure(self, event: RowList.Chosen) -> None:
        failure = self.query_one(ErrorPanel).failure_at(event.index)
        if failure is not None:
            self.antflow.open_item(failure.item_id, failure.pipeline)
