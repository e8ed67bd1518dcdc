"""MainView: what the main screen shows in one frame, built from plain run data.

`ViewBuilder` keeps the little state a frame needs from the previous ones (rate meters,
queue lengths a moment ago) and calls the pure functions of `present` and `header` once
per frame.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

from rich.text import Text

from antflow_tui import header as head
from antflow_tui import present
from antflow_tui.rates import RateMeter

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    from antflow.types import DashboardSnapshot
    from antflow_tui.accounting import RunCounts
    from antflow_tui.records import RunFailure

_QUEUE_TREND_FRAMES: Final = 8
"""How many frames back a queue counts as "growing" against."""


@dataclass(frozen=True, slots=True)
class RunFacts:
    """Plain facts about the run the header needs besides the snapshot."""

    title: str
    now: float
    started_at: float
    ended_at: float | None
    crashed: bool
    stopping: bool
    pipelines: int
    stopped: bool = False
    """A stop was asked for (quit, ctrl+c)."""
    pipeline: int = 1
    """The number of the pipeline the panels show."""
    held: bool = False
    """Something is paused: the run, a stage or a worker."""


@dataclass(frozen=True, slots=True)
class MainView:
    """One frame of the main screen."""

    header: tuple[Text, Text]
    state: head.RunState
    counts: RunCounts
    stage_rows: list[present.StageRow]
    worker_cells: list[present.WorkerCell]
    stage_summaries: dict[str, str]
    failures: Sequence[RunFailure]
    error_counts: Text
    pipelines: int = 1


class ViewBuilder:
    """Turns the latest snapshot into a `MainView`, smoothing rates across frames."""

    def __init__(self) -> None:
        self._overall = RateMeter()
        self._stage_meters: dict[str, RateMeter] = {}
        self._pending: deque[dict[str, int]] = deque(maxlen=_QUEUE_TREND_FRAMES)

    def build(
        self,
        snapshot: DashboardSnapshot | None,
        facts: RunFacts,
        counts: RunCounts,
        failures: Sequence[RunFailure],
        width: int,
        errors_by_type: Mapping[str, int] | None = None,
    ) -> MainView:
        ended = facts.ended_at is not None
        clock_now = facts.ended_at if ended and facts.ended_at else facts.now
        rate = self._overall.update(counts.done, facts.now)
        if ended:
            # A finished run's rate is its average; the smoothed one decays to nothing.
            elapsed = clock_now - facts.started_at
            rate = counts.done / elapsed if elapsed > 0 else None
        state = head.run_state(
            snapshot,
            ended=ended,
            crashed=facts.crashed,
            stopping=facts.stopping,
            stopped=facts.stopped,
        )
        averages: dict[str, float | None] = {}
        stages = [] if snapshot is None else list(snapshot.pipeline_stats.stage_stats.values())
        for stats in stages:
            averages[stats.stage_name] = present.stage_average(stats)
        cells = [] if snapshot is None else present.worker_cells(snapshot, facts.now, averages)
        header = head.header_lines(
            title=facts.title,
            state=state,
            elapsed=clock_now - facts.started_at,
            counts=counts,
            rate=rate,
            width=width,
            pipeline=facts.pipeline,
            pipelines=facts.pipelines,
            held=facts.held,
            stuck=sum(1 for cell in cells if cell.look == "stuck"),
        )
        if snapshot is None:
            return MainView(header, state, counts, [], [], {}, failures, Text(), facts.pipelines)

        rates = {}
        for stats in stages:
            meter = self._stage_meters.setdefault(stats.stage_name, RateMeter())
            finished = stats.completed_items + stats.failed_items + stats.skipped_items
            rates[stats.stage_name] = meter.update(finished, facts.now)
            if ended:
                elapsed = clock_now - facts.started_at
                rates[stats.stage_name] = finished / elapsed if elapsed > 0 else None
        previous = self._pending[0] if self._pending else None
        self._pending.append({s.stage_name: s.pending_items for s in stages})
        bottleneck = present.bottleneck_stage(stages, previous) if not ended else None
        summaries = {
            stats.stage_name: f"{stats.busy_workers}/{stats.workers} busy"
            + (" · paused" if stats.paused else "")
            for stats in stages
        }
        return MainView(
            header=header,
            state=state,
            counts=counts,
            stage_rows=present.stage_rows(snapshot, rates, bottleneck),
            worker_cells=cells,
            stage_summaries=summaries,
            failures=failures,
            error_counts=present.error_type_counts(
                snapshot.errors_by_type if errors_by_type is None else errors_by_type
            ),
            pipelines=facts.pipelines,
        )
