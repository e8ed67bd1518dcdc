"""Value types shared by the engine, its tracker and every dashboard.

Events (`StatusEvent`, `TaskEvent`) are created once per engine event, so they are plain
slotted dataclasses (a frozen one costs 3.5x as much to build); treat them as read-only.
Snapshots and summaries are frozen: a dashboard may keep, diff and pass them on.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, Protocol, runtime_checkable

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    from antflow.pipeline import Pipeline

StatusType = Literal[
    "queued",
    "in_progress",
    "completed",
    "failed",
    "retrying",
    "skipped",
    "unfinished",
    "done_earlier",
]
"""Where an item stands in a stage. ``unfinished``: a shutdown came before it finished.
``done_earlier``: a run this one resumes completed it, so it was not run again (its event
names the last stage)."""

TaskEventType = Literal["start", "complete", "retry", "fail"]
"""What happened to one task attempt."""

WorkerStatus = Literal["idle", "busy", "paused"]
"""What a worker is doing: waiting for an item, running one, or held by a pause (a worker
stopped by a shutdown is idle)."""

RetryPolicy = Literal["per_task", "per_stage"]

STATUSES: tuple[StatusType, ...] = (
    "queued",
    "in_progress",
    "completed",
    "failed",
    "retrying",
    "skipped",
    "unfinished",
    "done_earlier",
)
"""Every status. The first seven are indexed by their record kind (`antflow._history`);
``done_earlier`` is kind 15, after the task event kinds."""
TASK_EVENT_TYPES: tuple[TaskEventType, ...] = ("start", "complete", "retry", "fail")

_WORKER_INDEX = re.compile(r"-W(\d+)$")


@dataclass(slots=True)
class StatusEvent:
    """An item changed status in a stage."""

    item_id: Any
    """The item's id: its ``"id"`` key, or its sequence number."""
    stage: str | None
    """The stage the event happened in."""
    status: StatusType
    """The item's new status."""
    worker: str | None
    """The worker involved (``Fetch-W0``), or None for ``queued``."""
    timestamp: float
    """Unix time of the event."""
    metadata: dict[str, Any] = field(default_factory=dict)
    """Extra context: ``error``/``error_type`` on failures, ``attempt`` on retries."""

    @property
    def worker_id(self) -> int | None:
        """The worker's index within its stage (``0`` for ``Fetch-W0``), or None."""
        if self.worker is None:
            return None
        match = _WORKER_INDEX.search(self.worker)
        return int(match.group(1)) if match else None


@dataclass(slots=True)
class TaskEvent:
    """One task function started, completed, or failed an attempt."""

    item_id: Any
    """The item's id."""
    stage: str
    """The stage running the task."""
    task_name: str
    """The task function's ``__name__``."""
    worker: str
    """The worker running the task."""
    event_type: TaskEventType
    """``start``, ``complete``, ``retry`` (will try again) or ``fail`` (no attempts left)."""
    attempt: int
    """The attempt number, from 1."""
    timestamp: float
    """Unix time of the event."""
    error: BaseException | None = None
    """The exception, on ``retry`` and ``fail``."""
    duration: float | None = None
    """Seconds the attempt ran, on everything but ``start``."""


@dataclass(slots=True)
class PipelineResult:
    """The outcome of one item that went through the pipeline."""

    id: Any
    """The item's id."""
    value: Any
    """What the last stage returned (or the input, for an item skipped through)."""
    sequence_id: int
    """The item's position in feed order; results sort by it."""
    metadata: dict[str, Any] = field(default_factory=dict)
    """Extra context, such as the stage an item failed in."""
    error: BaseException | None = None
    """The exception that failed the item (only results from ``stream()`` carry one)."""

    @property
    def is_success(self) -> bool:
        """True when the item went through every stage."""
        return self.error is None


@dataclass(frozen=True, slots=True)
class StageStats:
    """Counts for one stage, kept incrementally by the engine."""

    stage_name: str
    """The stage."""
    pending_items: int
    """Items waiting in the stage's queue (including those waiting for a stage retry)."""
    in_progress_items: int
    """Items a worker of this stage is running right now."""
    completed_items: int
    """Items this stage finished."""
    failed_items: int
    """Items that failed for good in this stage."""
    skipped_items: int = 0
    """Items `skip_if` passed straight through this stage."""
    retrying_items: int = 0
    """Items waiting in the queue for another stage attempt (per-stage retry)."""
    workers: int = 0
    """Workers in the stage."""
    busy_workers: int = 0
    """Workers running an item right now."""
    queue_capacity: int = 0
    """How many items the stage's queue holds before `feed()` and upstream stages wait."""
    paused: bool = False
    """True while the whole stage is paused."""
    task_seconds: float = 0.0
    """Total seconds spent on finished items (completed or failed) in this stage."""
    task_retries: int = 0
    """Task attempts that failed and were tried again."""


@dataclass(frozen=True, slots=True)
class PipelineStats:
    """Counts for the whole pipeline."""

    items_processed: int
    """Items that left the last stage successfully (completed or skipped through)."""
    items_failed: int
    """Items that failed for good in some stage."""
    items_in_flight: int
    """Items fed and not finished yet: queued, running or waiting for a retry."""
    queue_sizes: Mapping[str, int]
    """Items waiting in each stage's queue."""
    stage_stats: Mapping[str, StageStats] = field(default_factory=dict)
    """Per-stage counts, in stage order."""
    items_fed: int = 0
    """Items fed so far."""
    items_skipped: int = 0
    """Of `items_processed`, those the last stage skipped."""
    items_unfinished: int = 0
    """Items left unfinished by a shutdown; `Pipeline.get_unfinished_items()` lists them."""
    items_done_earlier: int = 0
    """Items the script fed that a run this one resumes had completed: not run again,
    and not counted in `items_fed` (see `Pipeline.resume_from`)."""


@dataclass(frozen=True, slots=True)
class WorkerState:
    """What one worker is doing right now."""

    worker_name: str
    """The worker (``Fetch-W0``)."""
    stage: str
    """Its stage."""
    status: WorkerStatus
    """``idle``, ``busy`` or ``paused``."""
    current_item_id: Any = None
    """The item it is running, or None."""
    processing_since: float | None = None
    """Unix time it took the current item."""
    current_task: str | None = None
    """The text the running task passed to `set_task_status`, if any."""
    paused: bool = False
    """True when a pause (of the pipeline, its stage or itself) holds this worker; a busy
    worker with this flag finishes its item first. A shutdown holds workers too, but does
    not set this."""
    waiting_for: str | None = None
    """While busy: what the worker waits for before its task begins (the task whose
    `task_concurrency_limits` slot it needs, ``concurrency`` for the stage's
    concurrency, ``cool-down`` after a rate limit, or a `RateLimit`'s name), else None."""
    progress: tuple[float, float | None] | None = None
    """(done, total) the running task reported with `set_task_progress` (total None
    when unknown), else None."""


@dataclass(frozen=True, slots=True)
class WorkerMetrics:
    """What one worker has done so far."""

    worker_name: str
    """The worker."""
    stage: str
    """Its stage."""
    items_processed: int = 0
    """Items it completed."""
    items_failed: int = 0
    """Items that failed for good while it ran them."""
    total_processing_time: float = 0.0
    """Seconds spent on items, completed or failed."""
    last_active: float | None = None
    """Unix time it last finished an item."""
    recent_items: tuple[Any, ...] = ()
    """Ids of the last items it finished, newest last."""

    @property
    def avg_processing_time(self) -> float:
        """Mean seconds per finished item (0.0 before the first)."""
        finished = self.items_processed + self.items_failed
        return self.total_processing_time / finished if finished else 0.0


@dataclass(frozen=True, slots=True)
class StageInfo:
    """A stage's configuration, as a dashboard shows it."""

    name: str
    workers: int
    task_names: tuple[str, ...]
    retry: RetryPolicy
    task_attempts: int
    task_wait_seconds: float
    stage_attempts: int
    task_concurrency_limits: Mapping[str, int]
    queue_capacity: int
    worker_names: tuple[str, ...]
    has_skip_if: bool = False
    no_retry_on: tuple[str, ...] = ()
    """Names of the exception types that are never retried."""
    durable: bool = False
    """The stage's outputs are kept for a resume (`Stage.durable`)."""


@dataclass(frozen=True, slots=True)
class DashboardSnapshot:
    """Everything a dashboard shows, read in O(stages + workers) from live counters."""

    worker_states: Mapping[str, WorkerState]
    """Each worker's current state, by worker name."""
    worker_metrics: Mapping[str, WorkerMetrics]
    """Each worker's metrics, by worker name."""
    pipeline_stats: PipelineStats
    """Pipeline-wide and per-stage counts."""
    timestamp: float
    """Unix time the snapshot was taken."""
    stages: tuple[StageInfo, ...] = ()
    """Each stage's configuration, in order."""
    total_items: int | None = None
    """Items the run expects in all (`run()` knows it), or None when unknown."""
    paused: bool = False
    """True while the whole pipeline is paused."""
    running: bool = False
    """True while the pipeline's workers are running."""
    stopping: bool = False
    """True while a shutdown is in progress."""
    queued_ids: Mapping[str, tuple[Any, ...]] = field(default_factory=dict)
    """The first few item ids waiting in each stage's queue, next one first."""
    errors_by_type: Mapping[str, int] = field(default_factory=dict)
    """Items failed right now, by exception class name."""


@dataclass(frozen=True, slots=True)
class FailedItem:
    """An item that failed for good, with the error that failed it."""

    item_id: Any
    """The item."""
    error: str
    """The exception's message (``str(exc)``)."""
    error_type: str
    """The exception's class name."""
    stage: str
    """The stage it failed in."""
    attempts: int
    """Attempts made in that stage (task attempts for per-task retry, stage attempts for
    per-stage retry)."""
    timestamp: float
    """Unix time it failed."""
    exception: BaseException | None = field(default=None, compare=False, repr=False)
    """The exception object itself."""
    traceback: str = field(default="", compare=False, repr=False)
    """The formatted traceback of the failing attempt."""


@dataclass(frozen=True, slots=True)
class ErrorSummary:
    """Failures grouped by exception type and by stage."""

    total_failed: int
    """Items that failed for good."""
    errors_by_type: Mapping[str, int]
    """Failure counts by exception class name."""
    errors_by_stage: Mapping[str, int]
    """Failure counts by stage."""
    failed_items: Sequence[FailedItem] = ()
    """The failed items, oldest first."""

    def __str__(self) -> str:
        if not self.total_failed:
            return "No errors occurred"
        noun = "item" if self.total_failed == 1 else "items"
        lines = [f"{self.total_failed} failed {noun}"]
        if self.errors_by_type:
            lines.append("By error type:")
            lines.extend(f"  {name}: {count}" for name, count in self.errors_by_type.items())
        if self.errors_by_stage:
            lines.append("By stage:")
            lines.extend(f"  {name}: {count}" for name, count in self.errors_by_stage.items())
        return "\n".join(lines)


@dataclass(frozen=True, slots=True)
class ItemLocation:
    """Where one item is (see `Pipeline.locate`)."""

    stage: str
    """The stage it is in (or failed in)."""
    state: str
    """``queued``, ``waiting for a retry``, ``running``, ``handing on`` or ``failed``."""
    value: Any
    """The value it entered that stage with (what a retry would feed again)."""
    worker: str | None
    """The worker holding it, if one does."""


@runtime_checkable
class DashboardProtocol(Protocol):
    """What `Pipeline.run(custom_dashboard=...)` drives: start, periodic updates, finish."""

    def on_start(self, pipeline: Pipeline, total_items: int) -> None:
        """Called once before the first item is fed."""

    def on_update(self, snapshot: DashboardSnapshot) -> None:
        """Called every `dashboard_update_interval` seconds, and once more at the end."""

    def on_finish(self, results: list[PipelineResult], summary: ErrorSummary) -> None:
        """Called once, last, with the successful results and the error summary."""


@dataclass(frozen=True, slots=True)
class TaskUsage:
    """Tokens (and money) that tasks reported with `set_task_usage`, added up: per
    item in `StatusTracker.get_usage`, per worker and per stage in
    `Pipeline.get_limit_snapshot`."""

    input_tokens: int = 0
    """Tokens sent (prompt tokens)."""
    output_tokens: int = 0
    """Tokens received (completion tokens)."""
    cost: float | None = None
    """US dollars spent: as the tasks said (``cost=``), or priced by their model (see
    `antflow.prices`); None when no report had a cost."""
    model: str | None = None
    """The model named in the latest report that named one."""
    reports: int = 0
    """How many reports were added up."""
    cached_input_tokens: int = 0
    """Of `input_tokens`, those read from the provider's prompt cache (billed lower)."""
    cache_write_tokens: int = 0
    """Of `input_tokens`, those written to the provider's prompt cache."""
    unpriced: int = 0
    """Reports whose cost is unknown: no ``cost=``, and no price for their model (see
    `antflow.prices`). `cost` leaves them out."""

    @property
    def total_tokens(self) -> int:
        """Input plus output tokens."""
        return self.input_tokens + self.output_tokens

    def plus(self, other: TaskUsage) -> TaskUsage:
        """This usage and `other` added up (`other`'s model wins when it names one)."""
        if self.cost is None:
            cost = other.cost
        else:
            cost = self.cost if other.cost is None else self.cost + other.cost
        return TaskUsage(
            input_tokens=self.input_tokens + other.input_tokens,
            output_tokens=self.output_tokens + other.output_tokens,
            cost=cost,
            model=other.model if other.model is not None else self.model,
            reports=self.reports + other.reports,
            cached_input_tokens=self.cached_input_tokens + other.cached_input_tokens,
            cache_write_tokens=self.cache_write_tokens + other.cache_write_tokens,
            unpriced=self.unpriced + other.unpriced,
        )


__all__ = [
    "STATUSES",
    "TASK_EVENT_TYPES",
    "DashboardProtocol",
    "DashboardSnapshot",
    "ErrorSummary",
    "FailedItem",
    "ItemLocation",
    "PipelineResult",
    "PipelineStats",
    "RetryPolicy",
    "StageInfo",
    "StageStats",
    "StatusEvent",
    "StatusType",
    "TaskEvent",
    "TaskEventType",
    "TaskUsage",
    "WorkerMetrics",
    "WorkerState",
    "WorkerStatus",
]
