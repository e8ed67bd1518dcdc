"""StageScreen: one stage's configuration, live numbers, limits (concurrency, rate limit,
429s, timeouts, tokens, with their history), task times, workers and failures."""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar, Final

from rich.table import Table
from rich.text import Text
from textual import on
from textual.containers import Horizontal, VerticalScroll
from textual.widgets import Footer, Static

from antflow_tui.cost import per_item_words
from antflow_tui.formatting import (
    fit_count,
    format_count,
    format_duration,
    format_rate,
    plural,
)
from antflow_tui.gauges import (
    concurrency_words,
    cooldown_left,
    finite,
    limit_line,
    seconds_left,
    usage_words,
    waiting_words,
)
from antflow_tui.keys import bindings, key_for, needs
from antflow_tui.latency import histogram_chart, histogram_rows, latency_summary
from antflow_tui.messages import (
    ConcurrencyRequested,
    ItemRequested,
    PauseRequested,
    RetryRequested,
)
from antflow_tui.palette import DEFAULT, Palette
from antflow_tui.present import (
    StageView,
    error_type_counts,
    progress_text,
    stage_average,
    stage_views,
)
from antflow_tui.safe_text import clean, item_label
from antflow_tui.screens.detail import DetailScreen
from antflow_tui.source.base import Can
from antflow_tui.source.state import short_type
from antflow_tui.trends import sparkline
from antflow_tui.widgets.error_panel import ErrorPanel
from antflow_tui.widgets.row_list import RowList
from antflow_tui.widgets.slowest_list import SlowestList

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    from textual.app import ComposeResult
    from textual.binding import BindingType

    from antflow.runstream.records import ErrorRecord, LimitRow, StageConfig
    from antflow_tui.source.base import RunSource
    from antflow_tui.source.state import RunState
    from antflow_tui.trends import LimitTrend, StageTrend

SPARK_WIDTH: Final = 24
"""Cells of the stage screen's sparklines."""
CHART_ROWS: Final = 8
"""Most rows of the task-time chart."""
CHART_WIDTH: Final = 48


class StageScreen(DetailScreen):
    """A stage in detail; its failures list works like the main error panel, and enter
    on one of the slowest items opens it.

    Args:
        pipeline: The number of the stage's pipeline.
        stage: The stage's name.
    """

    BINDINGS: ClassVar[list[BindingType]] = bindings("stage")
    NEEDS: ClassVar[Mapping[str, Can]] = {**DetailScreen.NEEDS, **needs("stage")}

    def __init__(self, source: RunSource, state: RunState, pipeline: int, stage: str) -> None:
        super().__init__(source, state)
        self.pipeline = pipeline
        self.stage = stage
        self._failures_from: Sequence[ErrorRecord] | None = None
        self._failures: Sequence[ErrorRecord] = ()

    def compose(self) -> ComposeResult:
        yield Static(id="stage-title", classes="detail-title", markup=False)
        with VerticalScroll(id="stage-body", classes="detail-body"):
            with Horizontal(id="stage-top"):
                yield Static(id="stage-config", classes="detail-section")
                yield Static(id="stage-now", classes="detail-section")
            yield Static(id="stage-limits", classes="detail-section")
            with Horizontal(id="stage-times"):
                yield Static(id="stage-latency", classes="detail-section")
                yield SlowestList(id="stage-slowest")
            yield Static(id="stage-workers", classes="detail-section")
        yield ErrorPanel(id="stage-failures")
        yield Footer()

    def on_mount(self) -> None:
        panel = self.query_one(ErrorPanel)
        if self.source.can(Can.RETRY):
            retry = key_for(self.app, "stage.retry")
            # A Text: a key name is no markup.
            panel.border_title = Text(f"Failures in this stage (enter opens, {retry} retries)")
        else:
            panel.border_title = Text("Failures in this stage (enter opens)")
        self.query_one(SlowestList).border_title = "Slowest items (enter opens)"
        self.refresh_view()
        if panel.row_count:
            panel.focus()
        else:
            self.query_one(SlowestList).focus()

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
        self.show_section("#stage-config", config, lambda: config_table(config))
        trend = self.state.history.trend(self.pipeline, self.stage)
        status = self.state.status
        ended = status is not None and status.ended
        rate = None if trend is None else trend.rate
        if ended and status is not None and view is not None:
            elapsed = (status.ended_at or status.now) - status.started_at
            counts = view.counts
            finished = counts.done + counts.failed + counts.skipped
            rate = finished / elapsed if elapsed > 0 else None
        spans = None if trend is None else (trend.finished.values[-1:], trend.queue.values[-1:])
        self.show_section(
            "#stage-now",
            (key, rate, spans),
            lambda: now_table(view, rate, trend, self.palette),
        )
        self._show_limits(view, trend)
        latency = None if view is None else view.counts
        self.show_section("#stage-latency", latency, lambda: latency_section(view, self.palette))
        self.query_one(SlowestList).show(() if view is None else view.counts.slowest)
        started_at = self._pipeline_started()
        # Busy shares are of the run's time: a run over stops the clock (a replay's file
        # goes on after it, as a live app left open does).
        until = 0.0 if status is None else status.ended_at or status.now
        self.show_section(
            "#stage-workers",
            (key, int(until)),
            lambda: workers_table(view, until - started_at, self.palette, now=until),
        )
        failures = self.state.failures_of(self.pipeline)
        if failures is not self._failures_from:
            self._failures_from = failures
            # This stage's own, by name: a `stage:` filter matches parts of names too.
            self._failures = [failure for failure in failures if failure.stage == self.stage]
        panel = self.query_one(ErrorPanel)
        panel.show(self._failures)
        panel.set_class(not panel.row_count, "-empty")

    def _show_limits(self, view: StageView | None, trend: StageTrend | None) -> None:
        """The stage's concurrency, rate limit, 429s, timeouts and tokens, with their
        history (only for a stage that has any of them)."""
        limits = None if view is None else view.counts.limits
        usage = None if view is None else view.counts.usage
        section = self.query_one("#stage-limits", Static)
        section.display = limits is not None or usage is not None
        if not section.display or view is None:
            return
        snapshot = self.state.snapshots.get(self.pipeline)
        row = None
        if snapshot is not None and limits is not None and limits.limit is not None:
            row = next((one for one in snapshot.limits if one.name == limits.limit), None)
        limit_trend = None if row is None else self.state.history.limit(self.pipeline, row.name)
        status = self.state.status
        now = 0.0 if status is None else status.now
        keys = ""
        if self.source.can(Can.CONCURRENCY):
            down = key_for(self.app, "stage.concurrency-down")
            up = key_for(self.app, "stage.concurrency-up")
            keys = f"{down} / {up} change it"
        spans = (
            None if trend is None or trend.concurrency is None else trend.concurrency.values[-1:],
            None if limit_trend is None else limit_trend.tokens.values[-1:],
        )
        self.show_section(
            "#stage-limits",
            (view.counts.limits, view.counts.usage, row, spans, round(now, 1), keys),
            lambda: limits_section(view, row, trend, limit_trend, now, keys, self.palette),
        )

    def _pipeline_started(self) -> float:
        started = self.state.pipelines.get(self.pipeline)
        if started is not None:
            return started.at
        status = self.state.status
        return 0.0 if status is None else status.started_at

    def _title(self, view: StageView | None) -> Text:
        title = Text("Stage ")
        title.append(clean(self.stage, 40), style="bold")
        if len(self.state.pipelines) > 1:
            title.append(f"  of {clean(self.state.pipeline_name(self.pipeline), 30)}", "dim")
        if view is not None and view.counts.paused:
            title.append("  paused", style=self.palette("held"))
        return title

    def action_toggle_pause(self) -> None:
        self.post_message(PauseRequested(self.pipeline, stage=self.stage))

    def action_concurrency(self, change: int) -> None:
        """One call fewer (-1) or more (1) at once in this stage."""
        self.post_message(ConcurrencyRequested(self.pipeline, self.stage, change))

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
            self.post_message(ItemRequested(failure.pipeline, failure.item))

    @on(RowList.Chosen, "#stage-slowest")
    def _open_slow(self, event: RowList.Chosen) -> None:
        entry = self.query_one(SlowestList).entry_at(event.index)
        if entry is not None:
            self.post_message(ItemRequested(self.pipeline, entry[0]))


# ---------------------------------------------------------------------- sections


def config_table(config: StageConfig | None) -> Table | Text:
    """How the stage is set up, 'Give up on' (its ``no_retry_on``) included."""
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
    give_up = ", ".join(clean(short_type(name), 40) for name in config.no_retry_on)
    table.add_row("Give up on", Text(give_up or "–"))
    limits = ", ".join(
        f"{clean(name, 30)} ≤ {limit}" for name, limit in config.concurrency_limits.items()
    )
    table.add_row("Task limits", Text(limits or "–"))
    table.add_row("Queue capacity", Text(format_count(config.queue_capacity)))
    table.add_row("skip_if", Text("yes" if config.has_skip_if else "–"))
    return table


def now_table(
    view: StageView | None,
    rate: float | None,
    trend: StageTrend | None,
    palette: Palette = DEFAULT,
) -> Table | Text:
    """The stage now: its rate and queue with their recent history, what it holds."""
    if view is None:
        return Text()
    counts = view.counts
    table = Table.grid(padding=(0, 2))
    table.add_column(style="dim")
    table.add_column()
    throughput = [] if trend is None else trend.finished.samples()
    queue = [] if trend is None else trend.queue.samples()
    span = 0.0 if trend is None else trend.finished.span
    line = Text(format_rate(rate), style="bold")
    line.append(f"  {sparkline(throughput, SPARK_WIDTH)}", style=palette("trend-rate"))
    table.add_row("Rate", line)
    busy = f"{view.busy}/{len(view.workers)} workers busy"
    table.add_row("In flight", Text(f"{format_count(counts.running)} ({busy})"))
    line = Text(format_count(counts.queued), style="bold")
    line.append(f"  {sparkline(queue, SPARK_WIDTH, peak=True)}", style=palette("trend-queue"))
    table.add_row("Queued", line)
    if span:
        table.add_row("", Text(f"sparklines: the last {format_duration(span)}", style="dim"))
    done = Text(format_count(counts.done), style=palette.status("completed"))
    done.append(" done · ", style="dim")
    done.append(format_count(counts.failed), style=palette.status("failed"))
    done.append(" failed · ", style="dim")
    done.append(format_count(counts.skipped), style=palette.status("skipped"))
    done.append(" skipped", style="dim")
    table.add_row("Finished", done)
    retries = Text(f"{plural(counts.task_retries, 'attempt')} tried again")
    if counts.retried:
        # What the retried attempts raised: transient errors (429s, resets) are seen here
        # though no item failed for them.
        retries.append(": ", style="dim")
        retries.append_text(error_type_counts(dict(counts.retried), palette))
    table.add_row("Retries", retries)
    waiting = f"{format_count(counts.retrying)} waiting" if counts.retrying else "–"
    table.add_row("Stage retry", Text(waiting))
    queued = ", ".join(item_label(item, 20) for item in counts.next_items)
    table.add_row("Next", Text(queued or "queue empty"))
    return table


def limits_section(
    view: StageView,
    row: LimitRow | None,
    trend: StageTrend | None,
    limit_trend: LimitTrend | None,
    now: float,
    keys: str = "",
    palette: Palette = DEFAULT,
) -> Table:
    """The stage's limits: its concurrency (and how it moved), its rate limit's gauges and
    history, its 429s and timeouts, the tokens its tasks reported.

    Args:
        row: The stage's RateLimit at the snapshot, if it has one.
        keys: What changes the concurrency ('- / + change it'; '' when nothing can).
    """
    limits = view.counts.limits
    table = Table.grid(padding=(0, 2))
    table.add_column(style="dim", no_wrap=True)
    table.add_column()
    table.add_row(Text("Limits", style="bold"), "")
    if limits is not None:
        line = Text(concurrency_words(limits, len(view.workers)), style="bold")
        history = [] if trend is None or trend.concurrency is None else trend.concurrency.samples()
        if history:
            top = max(limits.max_concurrency, 1)
            line.append(f"  {sparkline(history, SPARK_WIDTH, top=top)}", style=palette("gauge"))
        line.append(f"  {format_count(max(limits.in_flight, 0))} in flight", style="dim")
        if keys:
            line.append(f" · {keys}", style="dim")
        table.add_row("Concurrency", line)
    if row is not None:
        table.add_row("Rate limit", limit_line(row, now, 200, palette))
        if limit_trend is not None:
            token_cap = finite(row.tokens_per_minute)
            # (label, series, the value of a full block (None: the highest shown), style)
            for label, series, cap, style in (
                ("  tokens/min", limit_trend.tokens if token_cap else None, token_cap, "gauge"),
                ("  calls/s", limit_trend.calls, finite(row.per_second), "gauge"),
                ("  429s/min", limit_trend.refused, None, "status-retry"),
            ):
                if series is None:
                    continue
                samples = series.samples()
                spark = Text(sparkline(samples, SPARK_WIDTH, top=cap), style=palette(style))
                if samples:
                    spark.append(f"  now {fit_count(round(samples[-1]), 5)}", style="dim")
                table.add_row(label, spark)
        others = [name for name in row.stages if name != view.name]
        if others:
            shared = ", ".join(clean(name, 30) for name in others)
            table.add_row("", Text(f"shared with {shared}", style="dim"))
    if limits is not None:
        answered = max(limits.rate_limited_retries, 0)
        retried = Text(format_count(answered), style="bold")
        calls = "call" if answered == 1 else "calls"
        retried.append(f" {calls} answered with a rate limit, tried again (no attempt used)")
        left = cooldown_left(limits.cooldown_until, now)
        if left > 0:
            retried.append(f" · cool-down {seconds_left(left)}", style=palette("held"))
        table.add_row("429s", retried)
        if limits.task_timeout is not None:
            timeouts = max(limits.timeouts, 0)
            cut = Text(format_count(timeouts), style="bold")
            attempts = "attempt" if timeouts == 1 else "attempts"
            cut.append(f" {attempts} cut at {format_duration(limits.task_timeout)} (task_timeout)")
            table.add_row("Timeouts", cut)
    if view.counts.usage is not None:
        counts = view.counts
        finished = counts.done + counts.failed
        table.add_row(
            "Usage", Text(usage_words(counts.usage) + per_item_words(counts.usage, finished))
        )
    if trend is not None and trend.concurrency is not None and trend.concurrency.span:
        span = format_duration(trend.concurrency.span)
        table.add_row("", Text(f"sparklines: the last {span}", style="dim"))
    return table


def latency_section(view: StageView | None, palette: Palette = DEFAULT) -> Text:
    """Task times: avg, p50, p95, max, and the distribution as a bar chart."""
    if view is None:
        return Text()
    counts = view.counts
    text = Text("Task time\n", style="bold")
    text.append_text(
        latency_summary(counts.p50, counts.p95, counts.max_seconds, stage_average(counts))
    )
    text.append("\n")
    if not counts.histogram:
        text.append("No finished items yet.", style="dim")
        return text
    rows = histogram_rows(counts.histogram, CHART_ROWS)
    text.append_text(
        histogram_chart(rows, CHART_WIDTH, p50=counts.p50, p95=counts.p95, palette=palette)
    )
    return text


def workers_table(
    view: StageView | None, elapsed: float, palette: Palette = DEFAULT, *, now: float = 0.0
) -> Table:
    """Each worker: what it does now (what it waits for, when it waits its turn), its
    share of the stage's items, how busy it was."""
    table = Table(box=None, pad_edge=False, show_header=True, header_style="bold dim")
    for column, justify in (
        ("Worker", "left"),
        ("State", "left"),
        ("Item", "left"),
        ("Done", "right"),
        ("Share", "right"),
        ("Fail", "right"),
        ("Busy", "right"),
        ("Doing", "left"),
    ):
        table.add_column(column, justify=justify, no_wrap=True)  # type: ignore[arg-type]
    if view is None:
        return table
    total = sum(worker.processed for worker in view.workers)
    for name, worker in zip(view.config.workers, view.workers, strict=False):
        look = "pausing" if worker.status == "busy" and worker.paused else worker.status
        share = f"{worker.processed / total:.0%}" if total else "–"
        busy = f"{min(worker.busy_seconds / elapsed, 1.0):.0%}" if elapsed > 0 else "–"
        doing = Text()
        if worker.progress is not None:
            doing.append(progress_text(worker.progress), style=palette("progress"))
            doing.append(" ")
        if look == "busy" and worker.waiting_for is not None:
            look = "waiting"
            words = waiting_words(worker.waiting_for, view.config, view.counts.limits, now)
            doing.append(words, style="italic")
        elif worker.task_status:
            doing.append(clean(worker.task_status, 40), style="italic")
        table.add_row(
            Text(clean(name, 24)),
            Text(look, style=palette.look(look)),
            Text(item_label(worker.item, 20) if worker.holding else "", style="bold"),
            Text(format_count(worker.processed)),
            Text(share),
            Text(format_count(worker.failed)),
            Text(busy),
            doing,
        )
    return table
