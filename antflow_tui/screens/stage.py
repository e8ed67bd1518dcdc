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
from antflow_tui.messages import PauseRequested, RetryRequested
from antflow_tui.present import StageView, stage_average, stage_views
from antflow_tui.safe_text import clean, item_label
from antflow_tui.screens.detail import DetailScreen
from antflow_tui.source.base import PAUSE, RETRY
from antflow_tui.widgets.error_panel import ErrorPanel
from antflow_tui.widgets.row_list import RowList

if TYPE_CHECKING:
    from collections.abc import Sequence

    from textual.app import ComposeResult

    from antflow.runstream.records import ErrorRecord, StageConfig
    from antflow_tui.source.base import RunSource
    from antflow_tui.state import RunState


class StageScreen(DetailScreen):
    """A stage in detail; its failures list works like the main error panel.

    Args:
        pipeline: The number of the stage's pipeline.
        stage: The stage's name.
    """

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("p", "toggle_pause", "Pause stage", id="stage.pause"),
        Binding("r", "retry", "Retry", id="stage.retry"),
    ]
    NEEDS: ClassVar[dict[str, str]] = {"toggle_pause": PAUSE, "retry": RETRY}

    def __init__(self, source: RunSource, state: RunState, pipeline: int, stage: str) -> None:
        super().__init__(source, state)
        self.pipeline = pipeline
        self.stage = stage
        self._failures_from: Sequence[ErrorRecord] | None = None
        self._failures: Sequence[ErrorRecord] = ()

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
        if self.can(RETRY):
            retry = key_for(self.app, "stage.retry")
            # A Text: a key name is no markup.
            panel.border_title = Text(f"Failures in this stage (enter opens, {retry} retries)")
        else:
            panel.border_title = Text("Failures in this stage (enter opens)")
        panel.set_filter(Filter(source=f"stage:{self.stage}", fields=(("stage", self.stage),)))
        self.refresh_view()
        panel.focus()

    def _view(self) -> StageView | None:
        started = self.state.pipelines.get(self.pipeline)
        snapshot = self.state.snapshots.get(self.pipeline)
        if started is None or snapshot is None:
            return None
        return next((v for v in stage_views(started, snapshot) if v.name == self.stage), None)

    def _config(self) -> StageConfig | None:
        configs = self.state.stage_configs(self.pipeline)
        return next((config for config in configs if config.name == self.stage), None)

    def refresh_view(self, *, force: bool = False) -> None:
        view = self._view()
        key = None if view is None else (view.counts, view.workers)
        several = len(self.state.pipelines) > 1
        self.show_section("#stage-title", (key, several), lambda: self._title(view))
        config = self._config()
        self.show_section("#stage-config", config, lambda: self._config_table(config))
        self.show_section("#stage-counts", key, lambda: self._counts(view))
        self.show_section(
            "#stage-queue", None if view is None else view.counts.next_items, lambda: _queue(view)
        )
        failures = self.state.failures_of(self.pipeline)
        if failures is not self._failures_from:
            self._failures_from = failures
            self._failures = list(failures)
        self.query_one(ErrorPanel).show(self._failures)

    def _title(self, view: StageView | None) -> Text:
        title = Text("Stage ")
        title.append(clean(self.stage, 40), style="bold")
        if len(self.state.pipelines) > 1:
            title.append(f"  of {clean(self.state.pipeline_name(self.pipeline), 30)}", "dim")
        if view is not None and view.counts.paused:
            title.append("  paused", style=self.palette("held"))
        return title

    def _config_table(self, config: StageConfig | None) -> Table | Text:
        if config is None:
            return Text("This stage is not part of the current run.", style="yellow")
        table = Table.grid(padding=(0, 2))
        table.add_column(style="dim")
        table.add_column()
        table.add_row("Workers", Text(str(len(config.workers))))
        table.add_row("Tasks", Text(", ".join(clean(name, 40) for name in config.tasks)))
        table.add_row("Retry", Text(config.retry))
        if config.retry == "per_task":
            wait = format_duration(config.task_wait_seconds)
            table.add_row("Attempts", Text(f"{config.task_attempts} per task, {wait} apart"))
        else:
            table.add_row("Attempts", Text(f"{config.stage_attempts} of the whole stage"))
        limits = ", ".join(
            f"{clean(name, 30)} ≤ {limit}" for name, limit in config.concurrency_limits.items()
        )
        table.add_row("Limits", Text(limits or "–"))
        table.add_row("Queue capacity", Text(format_count(config.queue_capacity)))
        table.add_row("skip_if", Text("yes" if config.has_skip_if else "–"))
        return table

    def _counts(self, view: StageView | None) -> Table | Text:
        if view is None:
            return Text()
        counts = view.counts
        palette = self.palette
        table = Table.grid(padding=(0, 2))
        table.add_column(style="dim")
        table.add_column()
        table.add_row("Busy", Text(f"{view.busy}/{len(view.workers)}"))
        for label, value in (
            ("Queued", counts.queued),
            ("Done", counts.done),
            ("Failed", counts.failed),
            ("Skipped", counts.skipped),
            ("Retrying", counts.retrying),
            ("Task retries", counts.task_retries),
        ):
            table.add_row(label, Text(format_count(value)))
        table.add_row("Average time", Text(format_duration(stage_average(counts))))
        for name, worker in zip(view.config.workers, view.workers, strict=False):
            look = "pausing" if worker.status == "busy" and worker.paused else worker.status
            line = Text()
            line.append(look, style=palette.look(look))
            if worker.holding:
                line.append(f"  {item_label(worker.item, 24)}", style="bold")
            if worker.task_status:
                line.append(f"  {clean(worker.task_status, 40)}", style="italic")
            table.add_row(Text(clean(name, 24)), line)
        return table

    def action_toggle_pause(self) -> None:
        self.post_message(PauseRequested(self.pipeline, stage=self.stage))

    def action_retry(self) -> None:
        panel = self.query_one(ErrorPanel)
        failure = panel.failure_at(panel.cursor)
        if failure is None:
            self.notify("No failed item selected.", timeout=2, markup=False)
            return
        self.post_message(RetryRequested(((failure.pipeline, failure.item),)))

    @on(RowList.Chosen, "#stage-failures")
    def _open_failure(self, event: RowList.Chosen) -> None:
        failure = self.query_one(ErrorPanel).failure_at(event.index)
        if failure is not None:
            from antflow_tui.screens.item import ItemScreen

            self.app.push_screen(
                ItemScreen(self.source, self.state, failure.pipeline, failure.item)
            )


def _queue(view: StageView | None) -> Text:
    queued = () if view is None else view.counts.next_items
    text = Text("Next in queue: ", style="dim")
    text.append(", ".join(item_label(item, 20) for item in queued) or "empty")
    return text
