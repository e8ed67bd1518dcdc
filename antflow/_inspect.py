"""PipelineViews: what a pipeline lets you read about it, without changing anything.

The counters behind these are kept up to date as items move (see `_runtime`), so every
method here is O(stages + workers) except `locate`, which looks for one item.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from antflow._safe import safe_str
from antflow.lifecycle import WORKING
from antflow.limits import LimitSnapshot, limit_snapshot
from antflow.types import (
    DashboardSnapshot,
    ErrorSummary,
    FailedItem,
    ItemLocation,
    PipelineResult,
    PipelineStats,
    WorkerMetrics,
    WorkerState,
)

if TYPE_CHECKING:
    import asyncio
    from collections import Counter
    from collections.abc import Callable, Iterable

    from antflow._runtime import Entry, StageRuntime, WorkerRecord
    from antflow.lifecycle import PipelineState
    from antflow.probe import Counters, Probe
    from antflow.tracker import StatusTracker
    from antflow.types import StageInfo, StageStats


@dataclass(slots=True)
class _Failure:
    entry: Entry
    stage: StageRuntime
    error: BaseException
    attempts: int
    timestamp: float


def pipeline_stats(counters: Counters, stages: Iterable[StageStats]) -> PipelineStats:
    """`get_stats`'s value, from the probe's counters and stage counts."""
    by_name = {stats.stage_name: stats for stats in stages}
    return PipelineStats(
        items_processed=counters.processed,
        items_failed=counters.failed,
        items_in_flight=counters.in_flight,
        queue_sizes={name: stats.pending_items for name, stats in by_name.items()},
        stage_stats=by_name,
        items_fed=counters.fed,
        items_skipped=counters.skipped,
        items_unfinished=counters.unfinished,
        items_done_earlier=counters.done_earlier,
    )


def dashboard_snapshot(probe: Probe) -> DashboardSnapshot:
    """A dashboard's snapshot, from the probe's stage views (as the run stream's is)."""
    counters = probe.counters()
    stages = probe.stages()
    workers = [worker for stage in stages for worker in stage.workers]
    return DashboardSnapshot(
        worker_states={w.state.worker_name: w.state for w in workers},
        worker_metrics={w.metrics.worker_name: w.metrics for w in workers},
        pipeline_stats=pipeline_stats(counters, [stage.stats for stage in stages]),
        timestamp=probe.now(),
        stages=tuple(stage.info for stage in stages),
        total_items=counters.total_items,
        paused=counters.paused,
        running=counters.running,
        stopping=counters.stopping,
        queued_ids={stage.info.name: stage.next_ids for stage in stages},
        errors_by_type=probe.errors_by_type(),
    )


class PipelineViews:
    """Read-only views of a Pipeline (mixed into it)."""

    # Set by Pipeline.__init__.
    _runtimes: list[StageRuntime]
    _workers: dict[str, WorkerRecord]
    _stage_infos: tuple[StageInfo, ...]
    _tracker: StatusTracker | None
    _results: dict[int, PipelineResult]
    _sorted_results: list[PipelineResult] | None
    _earlier_results: list[Any]
    _take_earlier_results: Callable[[], None]
    _failures: dict[Any, _Failure]
    _failed_by_type: Counter[str]
    _unfinished: dict[Any, None]
    """Ids a shutdown left unfinished, in order (a dict: a resumed id leaves in O(1))."""
    _processed: int
    _skipped_out: int
    _failed_count: int
    _outstanding: int
    _fed: int
    _total_items: int | None
    _state: PipelineState
    _paused: bool
    _epoch: float
    _now: Callable[[], float]
    probe: Probe

    # ------------------------------------------------------------------ queries

    @property
    def results(self) -> list[PipelineResult]:
        """Collected results of the items that went through, in input order."""
        if self._earlier_results:
            self._take_earlier_results()
        if self._sorted_results is None:
            self._sorted_results = [self._results[seq] for seq in sorted(self._results)]
        return list(self._sorted_results)

    @property
    def state(self) -> PipelineState:
        """Where the pipeline is in its lifecycle (see `antflow.lifecycle`)."""
        return self._state

    @property
    def is_running(self) -> bool:
        """True between `start()` and the end of `join()` or `shutdown()`."""
        return self._state in WORKING

    @property
    def paused(self) -> bool:
        """True while the whole pipeline is paused."""
        return self._paused

    def get_stats(self) -> PipelineStats:
        """Current pipeline-wide and per-stage counts."""
        return pipeline_stats(self.probe.counters(), self.probe.stage_stats())

    def get_worker_names(self) -> dict[str, list[str]]:
        """Worker names by stage: ``{"Fetch": ["Fetch-W0", ...], ...}``."""
        return {runtime.name: [w.name for w in runtime.workers] for runtime in self._runtimes}

    def get_worker_states(self) -> dict[str, WorkerState]:
        """Each worker's current state, by name."""
        return {name: worker.state(self._epoch) for name, worker in self._workers.items()}

    def get_worker_metrics(self) -> dict[str, WorkerMetrics]:
        """Each worker's metrics, by name."""
        return {name: worker.metrics(self._epoch) for name, worker in self._workers.items()}

    def get_worker_tasks(self) -> dict[str, asyncio.Task[None]]:
        """Each running worker's asyncio task, by name (for live await stacks)."""
        return {name: w.task for name, w in self._workers.items() if w.task and not w.task.done()}

    def get_dashboard_snapshot(self) -> DashboardSnapshot:
        """Everything a dashboard shows, in O(stages + workers)."""
        return dashboard_snapshot(self.probe)

    def get_limit_snapshot(self) -> LimitSnapshot:
        """Every RateLimit the stages use (calls and tokens against their caps, 429s,
        cool-down) and every stage's concurrency, rate-limited retries, timeouts and
        usage, in O(limits + stages)."""
        return limit_snapshot(self._runtimes, self._now())

    def get_error_summary(self) -> ErrorSummary:
        """Failures by type and stage: the tracker's (with tracebacks) if there is one."""
        if self._tracker is not None:
            return self._tracker.get_error_summary()
        failed = [
            FailedItem(
                item_id=f.entry.item_id,
                error=safe_str(f.error),
                error_type=type(f.error).__name__,
                stage=f.stage.name,
                attempts=f.attempts,
                timestamp=f.timestamp,
                exception=f.error,
            )
            for f in self._failures.values()
        ]
        by_type: dict[str, int] = {}
        by_stage: dict[str, int] = {}
        for item in failed:
            by_type[item.error_type] = by_type.get(item.error_type, 0) + 1
            by_stage[item.stage] = by_stage.get(item.stage, 0) + 1
        return ErrorSummary(len(failed), by_type, by_stage, failed)

    def get_unfinished_items(self) -> list[Any]:
        """Ids of items a shutdown left unfinished (queued or mid-stage when it came)."""
        return list(self._unfinished)

    def get_failed_input(self, item_id: Any) -> tuple[str, Any]:
        """The stage a failed item failed in and the value it entered that stage with.

        Raises:
            KeyError: the item has not failed (or has been retried since).
        """
        failure = self._failures[item_id]
        return failure.stage.name, failure.entry.value

    def locate(self, item_id: Any) -> ItemLocation | None:
        """Where an item is right now and the value it holds there, or None if it is in
        none of the pipeline's queues, workers or failures (finished, or never fed).

        Costs O(items in flight); meant for drilling into one item, not for polling.
        """
        for worker in self._workers.values():
            entry = worker.entry
            if entry is not None and entry.item_id == item_id:
                state = "running" if worker.since is not None else "handing on"
                return ItemLocation(worker.stage.name, state, entry.value, worker.name)
        for runtime in self._runtimes:
            for entry in runtime.queue:
                if entry.item_id == item_id:
                    state = "waiting for a retry" if entry.attempt > 1 else "queued"
                    return ItemLocation(runtime.name, state, entry.value, None)
        failure = self._failures.get(item_id)
        if failure is not None:
            return ItemLocation(failure.stage.name, "failed", failure.entry.value, None)
        return None
