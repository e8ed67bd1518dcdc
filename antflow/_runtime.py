"""The mutable state a running pipeline keeps per item, per stage and per worker.

Counters are updated as events happen, so a snapshot reads them in O(stages + workers).
"""

from __future__ import annotations

import asyncio
from collections import deque
from typing import TYPE_CHECKING, Any, Final

from antflow._queue import StageQueue
from antflow._throttle import Throttle
from antflow.exceptions import RateLimitExceededError, TaskNotAwaitableError
from antflow.types import StageInfo, StageStats, WorkerMetrics, WorkerState, WorkerStatus

if TYPE_CHECKING:
    from collections.abc import Callable

    from antflow._latency import LatencyTracker
    from antflow.stage import Stage, TaskFunc
    from antflow.tracker import EmitterBinding, StatusTracker
    from antflow.types import TaskUsage

RECENT_ITEMS: Final = 8
"""How many recently finished item ids each worker remembers."""


class Entry:
    """One fed item on its way through the stages."""

    __slots__ = ("attempt", "item_id", "log", "priority", "seq", "value")

    def __init__(self, item_id: Any, seq: int, value: Any, priority: int) -> None:
        self.item_id = item_id
        self.seq = seq
        self.value = value
        """The current stage's input; replaced by each stage's output."""
        self.priority = priority
        self.attempt = 1
        """The current stage attempt (per-stage retry), from 1."""
        self.log: Any = None
        """The item's history in the pipeline's tracker, if it has one."""


class WorkerRecord:
    """One worker: what it is doing and what it has done."""

    __slots__ = (
        "binding",
        "current_task",
        "entry",
        "failed",
        "held",
        "in_hook",
        "last_active",
        "name",
        "paused",
        "paused_self",
        "processed",
        "progress",
        "recent",
        "since",
        "stage",
        "task",
        "total_time",
        "usage",
        "waiting_for",
        "wake",
    )

    def __init__(self, name: str, stage: StageRuntime) -> None:
        self.name = name
        self.stage = stage
        self.entry: Entry | None = None
        """The item this worker holds (running it, or handing it to the next stage)."""
        self.since: float | None = None
        """When the worker began the current stage attempt; None when not running one."""
        self.current_task: str | None = None
        self.progress: tuple[float, float | None] | None = None
        """(done, total) the running task reported with `set_task_progress`."""
        self.waiting_for: str | None = None
        """The task whose `task_concurrency_limits` slot this worker is waiting for."""
        self.paused_self = False
        self.paused = False
        """True when a pause (of the pipeline, its stage or itself) applies to this worker."""
        self.held = False
        """True when any pause (pipeline, stage, worker) or a shutdown holds this worker."""
        self.wake: asyncio.Future[None] | None = None
        self.in_hook = False
        """True while an `on_failure` hook runs for an item that has already failed."""
        self.processed = 0
        self.failed = 0
        self.total_time = 0.0
        self.last_active: float | None = None
        self.recent: deque[Any] = deque(maxlen=RECENT_ITEMS)
        self.task: asyncio.Task[None] | None = None
        self.usage: TaskUsage | None = None
        """What tasks this worker ran reported with `set_task_usage`, added up."""
        # Bound by the pipeline before anything is recorded (there is only something to
        # record with a tracker): typed as bound, so the hot path checks nothing more.
        self.binding: EmitterBinding = None  # type: ignore[assignment]

    def add_usage(self, usage: TaskUsage) -> None:
        """A task of this worker reported `usage` (see `set_task_usage`)."""
        self.usage = usage if self.usage is None else self.usage.plus(usage)
        stage = self.stage
        stage.usage = usage if stage.usage is None else stage.usage.plus(usage)
        tracker = stage.tracker
        entry = self.entry
        if tracker is not None and entry is not None:
            tracker._add_usage(entry.item_id, usage)
        throttle = stage.throttle
        if throttle is not None and throttle.budget is not None:
            throttle.budget.charge(self, usage)

    @property
    def status(self) -> WorkerStatus:
        # Derived rather than stored: two fewer writes per item on the hot path.
        if self.since is not None:
            return "busy"
        # A paused worker waiting in its queue takes no item once one arrives: paused.
        # (A shutdown holds workers too, but that is not a pause.)
        return "paused" if self.paused else "idle"

    def state(self, epoch: float) -> WorkerState:
        entry = self.entry
        return WorkerState(
            worker_name=self.name,
            stage=self.stage.name,
            status=self.status,
            current_item_id=None if entry is None else entry.item_id,
            processing_since=None if self.since is None else self.since + epoch,
            current_task=self.current_task,
            paused=self.paused,
            progress=self.progress,
            waiting_for=self.waiting_for,
        )

    def metrics(self, epoch: float) -> WorkerMetrics:
        return WorkerMetrics(
            worker_name=self.name,
            stage=self.stage.name,
            items_processed=self.processed,
            items_failed=self.failed,
            total_processing_time=self.total_time,
            last_active=None if self.last_active is None else self.last_active + epoch,
            recent_items=tuple(self.recent),
        )


class StageRuntime:
    """One stage while the pipeline exists: its queue, counters and workers."""

    def __init__(self, stage: Stage, index: int) -> None:
        self.stage = stage
        self.index = index
        self.name = stage.name
        self.tasks: tuple[TaskFunc, ...] = tuple(stage.tasks)
        self.task_names = stage.task_names
        self.per_stage = stage.retry == "per_stage"
        self.skip_if = stage.skip_if
        self.on_success = stage.on_success
        self.on_failure = stage.on_failure
        self.unpack_args = stage.unpack_args
        # TaskNotAwaitableError can never heal either: retrying it only wastes the waits.
        self.no_retry: tuple[type[BaseException], ...] = (
            TaskNotAwaitableError,
            RateLimitExceededError,
            *stage.no_retry_on,
        )
        self.rate_limit_on: tuple[type[BaseException], ...] = tuple(stage.rate_limit_on)
        self.queue: StageQueue[Entry] = StageQueue(stage.capacity)
        self.next: StageRuntime | None = None
        limits = dict(stage.task_concurrency_limits)
        self.limits = limits
        self.semaphores: tuple[asyncio.Semaphore | None, ...] = ()
        self.new_semaphores()
        self.throttle: Throttle | None = Throttle(self) if Throttle.needed(self) else None
        """Timeout, rate limit, cool-down and concurrency around each call, if any."""
        self.simple = (
            len(self.tasks) == 1 and not self.unpack_args and not limits and not self.throttle
        )
        """One task, called plainly with nothing around it: the worker runs it without the
        general task loop."""
        self.workers = [WorkerRecord(f"{stage.name}-W{i}", self) for i in range(stage.workers)]
        self.latency: LatencyTracker | None = None
        """Task times of finished items, once a monitor asks for them (see
        `Pipeline.measure_latency`)."""
        self.paused = False
        self.failed = 0
        self.skipped = 0
        self.retrying = 0
        self.task_retries = 0
        self.usage: TaskUsage | None = None
        """What this stage's tasks reported with `set_task_usage`, added up."""
        self.tracker: StatusTracker | None = None
        """The pipeline's tracker, once bound (usage reports go to it)."""
        self.retried_types: dict[type[BaseException], int] = {}
        """`task_retries` by the class of the error each retried attempt raised."""
        self.output_listeners: list[Callable[[Any, Any], None]] | None = None
        """`Probe.on_stage_output` listeners; None while there are none (one test per
        item)."""
        # As `WorkerRecord.binding`: bound before anything is recorded.
        self.queued_binding: EmitterBinding = None  # type: ignore[assignment]
        self.info = StageInfo(
            name=stage.name,
            workers=stage.workers,
            task_names=self.task_names,
            retry=(self.per_stage and "per_stage") or "per_task",
            task_attempts=stage.task_attempts,
            task_wait_seconds=float(stage.task_wait_seconds),
            stage_attempts=stage.stage_attempts,
            task_concurrency_limits=limits,
            queue_capacity=stage.capacity,
            worker_names=tuple(w.name for w in self.workers),
            has_skip_if=stage.skip_if is not None,
            no_retry_on=tuple(t.__qualname__ for t in stage.no_retry_on),
            durable=stage.durable,
        )

    def new_semaphores(self) -> None:
        """Fresh concurrency-limit semaphores, made at every start: an asyncio semaphore
        binds to the first loop it waits on, and a pipeline may run on several loops
        (a second ``asyncio.run``, notebooks, tests)."""
        # Shared by every worker of the stage, so the limit holds stage-wide.
        self.semaphores = tuple(
            asyncio.Semaphore(self.limits[name]) if name in self.limits else None
            for name in self.task_names
        )

    def stats(self) -> StageStats:
        # Per-worker counters are summed here, once per snapshot, instead of keeping
        # stage-wide copies up to date on every item.
        workers = self.workers
        busy = sum(1 for w in workers if w.since is not None)
        return StageStats(
            stage_name=self.name,
            pending_items=len(self.queue),
            in_progress_items=busy,
            completed_items=sum(w.processed for w in workers),
            failed_items=self.failed,
            skipped_items=self.skipped,
            retrying_items=self.retrying,
            workers=len(self.workers),
            busy_workers=busy,
            queue_capacity=self.queue.capacity,
            paused=self.paused,
            task_seconds=sum(w.total_time for w in workers),
            task_retries=self.task_retries,
        )
