"""MainView: what the main screen shows in one frame, built from the run's state.

`ViewBuilder` keeps the little a frame needs from the previous ones (rate meters, queue
lengths a moment ago) and calls the pure functions of `present` and `header` once per
frame, for the pipeline chosen in the switcher (or all of them).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

from antflow_tui import cost, gauges, present
from antflow_tui import header as head
from antflow_tui.pace import Pace, PaceMeter
from antflow_tui.palette import DEFAULT, Palette
from antflow_tui.rates import RateMeter
from antflow_tui.safe_text import clean
from antflow_tui.trends import queue_trend, trend_words

if TYPE_CHECKING:
    from collections.abc import Sequence

    from rich.text import Text

    from antflow.runstream.records import ErrorRecord
    from antflow_tui.accounting import RunCounts
    from antflow_tui.source.base import ReplayPosition
    from antflow_tui.source.state import RunState

QUEUE_TREND_SECONDS: Final = 2.0
"""How far back a queue counts as "growing" against (for the bottleneck)."""

ALL: Final = 0
"""The switcher's choice that shows every pipeline at once."""


@dataclass(frozen=True, slots=True)
class MainView:
    """One frame of the main screen."""

    header: tuple[Text, ...]
    """Two lines; then what a resumed run resumed; then the pipeline switcher, when the
    run has several pipelines."""
    state: head.RunState
    counts: RunCounts
    stage_rows: list[present.StageRow]
    worker_cells: list[present.WorkerCell]
    stage_summaries: dict[str, str]
    failures: Sequence[ErrorRecord]
    error_counts: Text
    retried: Sequence[ErrorRecord] = ()
    """The errors of attempts tried again that the state remembers (for the groups)."""
    retried_total: int = 0
    """Attempts tried again, every stage's (from the snapshots: none missed)."""
    pipelines: int = 1
    shown: int = 1
    """The pipeline the stage table and the worker grid show (`ALL`: every one)."""
    held: str = ""
    """What a pause holds, for the banner ('' when nothing is paused)."""
    settling: bool = False
    """A paused worker still finishes its item."""
    replay: ReplayPosition | None = None
    """Where a replay stands (None: a live run)."""
    now: float = 0.0
    """The source's clock at this frame."""
    started: float = 0.0
    """When the run started (Unix time)."""
    bottleneck_hint: str = ""
    """What holds the run back, and how its queue moved ('Transcode: queue growing 40/s
    for 2m00s'); '' when nothing does."""
    limit_lines: tuple[Text, ...] = ()
    """A gauge line per rate limit of the run (none without)."""
    spend: cost.RunCost | None = None
    """What the run has spent, and its budgets (None: no usage reported, no budget)."""


ASIDE_WIDTH: Final = 16
"""Cells of the spend on a narrow screen's first line ('$0.193 of $0.20')."""


class ViewBuilder:
    """Turns the run's state into a `MainView`, smoothing rates across frames."""

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        """Forget the past frames (a replay jumped: rates and trends start again)."""
        self._overall = RateMeter()
        self._pipeline_meters: dict[int, RateMeter] = {}
        self._pace = PaceMeter()

    def build(
        self,
        state: RunState,
        shown: int,
        width: int,
        *,
        palette: Palette = DEFAULT,
        switch_key: str = "s",
    ) -> MainView:
        """The main screen's frame.

        Args:
            shown: The pipeline the switcher chose (`ALL`: every one).
        """
        status = state.status
        assert status is not None, "a view is built once a frame has arrived"
        counts = state.counts()
        now = status.now
        ended = status.ended_at is not None
        clock_now = status.ended_at if ended and status.ended_at else now
        elapsed = clock_now - status.started_at
        if self._overall.rate is None and state.history_rate is not None:
            self._overall.rate = state.history_rate  # attached late, or a replay's jump
        rate = self._overall.update(counts.done, now)
        eta = None
        pace = self.pace(state)
        if pace is not None:
            rate = pace.rate if pace.rate is not None else rate
            eta = pace.eta
        if ended:
            # A finished run's rate is its average; the smoothed one decays to nothing.
            rate = counts.done / elapsed if elapsed > 0 else None
        run_state = head.run_state(status, state.snapshots.values())
        spend = cost.run_cost(list(state.snapshots.values()), counts, over=ended)
        budget_paused = spend is not None and any(b.paused for b in spend.budgets)
        if budget_paused and run_state == "running":
            run_state = "paused"  # by its budget: the banner says so
        pipelines = len(state.pipelines)

        hint = ""
        if shown == ALL:
            stage_rows, cells, summaries = self._all_pipelines(state, now, ended, elapsed, palette)
        else:
            stage_rows, cells, summaries, hint = self._one_pipeline(
                state, shown, now, ended, elapsed, palette
            )
        held = self._held(state, shown)
        stuck = sum(1 for cell in cells if cell.look == "stuck")

        def header_lines(aside: Text | None = None) -> tuple[Text, ...]:
            return head.header_lines(
                title=status.title,
                state=run_state,
                elapsed=elapsed,
                counts=counts,
                rate=rate,
                eta=eta,
                width=width,
                pipeline=shown,
                pipelines=pipelines,
                held=bool(held) or budget_paused,
                stuck=stuck,
                replay=status.replay,
                palette=palette,
                aside=aside,
            )

        header = header_lines()
        if spend is not None:
            with_cost = _with_cost(header, spend, width, palette)
            if with_cost is None:
                # No room left on the counts line (a narrow screen): the spend alone ends
                # the first line, in the bar's room.
                header = header_lines(cost.cost_line(spend, ASIDE_WIDTH, palette))
            else:
                header = with_cost
        if status.resumed:
            header = (*header, head.resumed_line(status.resumed, palette))
        if pipelines > 1:
            entries = [
                (
                    number,
                    state.pipeline_name(number),
                    head.pipeline_mark(state.snapshots.get(number)),
                    state.counts([number]),
                )
                for number in sorted(state.pipelines)
            ]
            header = (
                *header,
                head.switcher_line(entries, shown, key=switch_key, palette=palette),
            )
        return MainView(
            header=header,
            state=run_state,
            counts=counts,
            stage_rows=stage_rows,
            worker_cells=cells,
            stage_summaries=summaries,
            failures=state.failures,
            error_counts=present.error_type_counts(state.failure_counts, palette),
            retried=state.retried,
            retried_total=sum(
                stage.task_retries
                for snapshot in state.snapshots.values()
                for stage in snapshot.stages
            ),
            pipelines=pipelines,
            shown=shown,
            held=held,
            settling=present.pause_settling(state.snapshots.values()),
            replay=status.replay,
            now=now,
            started=status.started_at,
            bottleneck_hint=hint,
            # The bar's lines start one cell in, as the header's do.
            limit_lines=tuple(
                gauges.limit_lines(state.snapshots.values(), now, width - 1, palette)
            ),
            spend=spend,
        )

    def pace(self, state: RunState) -> Pace | None:
        """The run's pace now: its running pipelines', each from its bottleneck (None:
        nothing runs)."""
        status = state.status
        now = 0.0 if status is None else status.now

        def bottleneck(number: int, views: Sequence[present.StageView]) -> str | None:
            return present.bottleneck_stage(views, self._before(state, number, views))

        return self._pace.pace(state.pipelines, state.snapshots, now, bottleneck)

    @staticmethod
    def _before(
        state: RunState, number: int, views: Sequence[present.StageView]
    ) -> dict[str, float | None]:
        """Each stage's queue a moment ago (for "growing")."""
        before: dict[str, float | None] = {}
        for view in views:
            trend = state.history.trend(number, view.name)
            before[view.name] = (
                None if trend is None else trend.queue.level_ago(QUEUE_TREND_SECONDS)
            )
        return before

    def _one_pipeline(
        self,
        state: RunState,
        number: int,
        now: float,
        ended: bool,
        elapsed: float,
        palette: Palette,
    ) -> tuple[list[present.StageRow], list[present.WorkerCell], dict[str, str], str]:
        started = state.pipelines.get(number)
        snapshot = state.snapshots.get(number)
        if started is None or snapshot is None:
            return [], [], {}, ""
        views = present.stage_views(started, snapshot)
        averages = {view.name: present.stage_average(view.counts) for view in views}
        cells = present.worker_cells(views, now, averages)
        rates: dict[str, float | None] = {}
        sparks: dict[str, present.StageSparks] = {}
        before: dict[str, float | None] = {}
        for view in views:
            trend = state.history.trend(number, view.name)
            if trend is None:
                rates[view.name] = None
                continue
            rates[view.name] = trend.rate
            if ended:
                counts = view.counts
                finished = counts.done + counts.failed + counts.skipped
                rates[view.name] = finished / elapsed if elapsed > 0 else None
            sparks[view.name] = present.StageSparks(trend.finished.samples(), trend.queue.samples())
            before[view.name] = trend.queue.level_ago(QUEUE_TREND_SECONDS)
        bottleneck = present.bottleneck_stage(views, before) if not ended else None
        hint = ""
        if bottleneck is not None:
            hint = self._hint(state, number, next(v for v in views if v.name == bottleneck))
        summaries = {
            view.name: f"{view.busy}/{len(view.workers)} busy"
            + (" · paused" if view.counts.paused else "")
            for view in views
        }
        rows = present.stage_rows(views, rates, bottleneck, palette, sparks)
        return rows, cells, summaries, hint

    @staticmethod
    def _hint(state: RunState, number: int, view: present.StageView) -> str:
        """'Transcode: queue growing 40/s for 2m00s' (or full, or just its name)."""
        name = clean(view.name, 40)
        trend = state.history.trend(number, view.name)
        capacity = view.config.queue_capacity
        moved = None
        if trend is not None:
            moved = queue_trend(trend.queue.samples(), trend.queue.period, capacity)
        if moved is None:
            return f"{name}: every worker busy, {view.counts.queued:,} queued"
        return f"{name}: {trend_words(moved, capacity)}"

    def _all_pipelines(
        self,
        state: RunState,
        now: float,
        ended: bool,
        elapsed: float,
        palette: Palette,
    ) -> tuple[list[present.StageRow], list[present.WorkerCell], dict[str, str]]:
        shown = []
        cells: list[present.WorkerCell] = []
        summaries: dict[str, str] = {}
        rates: dict[int, float | None] = {}
        for number in sorted(state.pipelines):
            started = state.pipelines[number]
            snapshot = state.snapshots.get(number)
            if snapshot is None:
                continue
            label = state.pipeline_name(number)
            shown.append((label, started, snapshot))
            views = present.stage_views(started, snapshot)
            averages = {view.name: present.stage_average(view.counts) for view in views}
            prefix = f"{number} · "
            cells.extend(present.worker_cells(views, now, averages, group=prefix))
            for view in views:
                summaries[f"{prefix}{view.name}"] = f"{view.busy}/{len(view.workers)} busy" + (
                    " · paused" if view.counts.paused else ""
                )
            finished = snapshot.processed + snapshot.failed
            meter = self._pipeline_meters.setdefault(number, RateMeter())
            rates[number] = meter.update(finished, now)
            if ended or not snapshot.running:
                rates[number] = finished / elapsed if elapsed > 0 else None
        return present.pipeline_rows(shown, rates, palette), cells, summaries

    @staticmethod
    def _held(state: RunState, shown: int) -> str:
        status = state.status
        if status is not None and status.paused:
            return "the whole run"
        numbers = sorted(state.pipelines) if shown == ALL else [shown]
        several = len(numbers) > 1
        parts = []
        for number in numbers:
            held = present.paused_what(state.pipelines.get(number), state.snapshots.get(number))
            if held and several:
                held = f"{state.pipeline_name(number)}: {held}"
            if held:
                parts.append(held)
        return "; ".join(parts)


def _with_cost(
    header: tuple[Text, ...], spend: cost.RunCost, width: int, palette: Palette
) -> tuple[Text, ...] | None:
    """The header with the run's cost at the end of its counts line, as much as fits
    (None: not even the spend fits there)."""
    counts_line = header[1].copy()
    if not counts_line.plain.endswith(" "):
        counts_line.append("   ")  # after the rate and ETA, moved down on a narrow screen
    room = width - counts_line.cell_len
    part = cost.cost_line(spend, room, palette)
    if not part.cell_len:
        return None
    counts_line.append_text(part)
    return (header[0], counts_line, *header[2:])
