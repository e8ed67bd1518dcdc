"""Pipeline: stages of worker pools, fed with items; lifecycle, control and accounting.

Every item fed ends in exactly one of: completed (left the last stage, possibly skipped
through it), failed (in some stage), or unfinished (a shutdown came first; listed by
`get_unfinished_items`). Until then it is in flight.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from collections.abc import AsyncIterable, AsyncIterator, Awaitable, Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Any, Literal

from antflow._inspect import PipelineViews, _Failure
from antflow._monitor import Monitor
from antflow._runtime import Entry, StageRuntime, WorkerRecord
from antflow._worker import run_worker
from antflow.exceptions import PipelineError
from antflow.observe import displays_suppressed, notify_started
from antflow.stage import Stage, TaskFunc, task_name
from antflow.types import (
    DashboardProtocol,
    PipelineResult,
)

if TYPE_CHECKING:
    from antflow.builder import PipelineBuilder
    from antflow.tracker import StatusTracker

logger = logging.getLogger(__name__)

DashboardKind = Literal["compact", "detailed", "full"]
Clock = Callable[[], float]

_STREAM_BUFFER = 1024
"""Results a stream holds for its reader before it stops feeding more items."""
_STREAM_CHUNK = 64


class Pipeline(PipelineViews):
    """A multi-stage async pipeline with worker pools and retry strategies.

    Args:
        stages: The stages, in order; each item goes through every one.
        collect_results: Keep each finished item's result for `results` and `run()`.
        status_tracker: Records every item's status and history, and calls its callbacks.
        clock: A monotonic clock in seconds; durations are differences of it, and event
            times are its readings shifted to Unix time. Tests inject a fake one, whose
            readings are then used as they are.
        sleep: Waits between task attempts (tests inject one that returns at once).

    Raises:
        PipelineError: no stages, a non-Stage, or two stages with the same name.
        StageValidationError: a stage's configuration is invalid.
    """

    def __init__(
        self,
        stages: Sequence[Stage],
        collect_results: bool = True,
        status_tracker: StatusTracker | None = None,
        *,
        clock: Clock | None = None,
        sleep: Callable[[float], Awaitable[Any]] | None = None,
    ) -> None:
        stages = list(stages) if stages is not None else []
        if not stages:
            raise PipelineError("a Pipeline needs at least one Stage")
        for position, stage in enumerate(stages):
            if not isinstance(stage, Stage):
                raise PipelineError(f"stage #{position + 1} is {stage!r}, not a Stage")
            stage.validate()
        names = [stage.name for stage in stages]
        duplicates = sorted({name for name in names if names.count(name) > 1})
        if duplicates:
            raise PipelineError(f"stage names must be unique; repeated: {', '.join(duplicates)}")

        self.stages = stages
        self.collect_results = collect_results
        self._tracker = status_tracker
        # Readings of a C clock cost ~40 ns where a Python wrapper costs ~300; the worker
        # adds the Unix-time offset itself, and only where a timestamp is shown.
        self._clock: Clock = clock or time.perf_counter
        self._epoch = 0.0 if clock else time.time() - time.perf_counter()
        self._sleep = sleep or asyncio.sleep

        self._runtimes = [StageRuntime(stage, index) for index, stage in enumerate(stages)]
        for current, following in zip(self._runtimes, self._runtimes[1:], strict=False):
            current.next = following
        self._by_name = {runtime.name: runtime for runtime in self._runtimes}
        self._workers: dict[str, WorkerRecord] = {
            worker.name: worker for runtime in self._runtimes for worker in runtime.workers
        }
        self._stage_infos = tuple(runtime.info for runtime in self._runtimes)

        self._seq = 0
        self._fed = 0
        self._outstanding = 0
        self._processed = 0
        self._skipped_out = 0
        self._failed_count = 0
        self._failures: dict[Any, _Failure] = {}
        self._failed_by_type: Counter[str] = Counter()
        self._unfinished: list[Any] = []
        self._results: dict[int, PipelineResult] = {}
        self._sorted_results: list[PipelineResult] | None = None
        self._sink: asyncio.Queue[PipelineResult] | None = None
        self._monitors: list[Monitor] = []
        self._total_items: int | None = None

        self._running = False
        self._closing = False
        self._stopping = False
        self._paused = False
        self._idle_waiters: list[asyncio.Future[None]] = []
        self._settle_waiters: list[asyncio.Future[None]] = []
        self._force_stop: asyncio.Future[None] | None = None
        self._stop_done: asyncio.Future[None] | None = None

    # ------------------------------------------------------------------ construction helpers

    @classmethod
    def create(cls) -> PipelineBuilder:
        """A fluent builder: ``Pipeline.create().add("Fetch", fetch, workers=5).build()``."""
        from antflow.builder import PipelineBuilder

        return PipelineBuilder()

    @classmethod
    async def quick(
        cls,
        items: Sequence[Any],
        tasks: TaskFunc | list[TaskFunc],
        workers: int = 5,
        retries: int = 3,
        progress: bool = False,
        dashboard: DashboardKind | None = None,
    ) -> list[PipelineResult]:
        """Run `tasks` over `items` in one call: one stage per task, named after it.

        Args:
            items: Items to process.
            tasks: One task function, or a list of them (one stage each, in order).
            workers: Workers per stage.
            retries: Attempts per task.
            progress: Show a progress bar.
            dashboard: Show a built-in dashboard ("compact", "detailed", "full").

        Returns:
            The successful results, in input order.
        """
        task_list = list(tasks) if isinstance(tasks, list | tuple) else [tasks]
        stages: list[Stage] = []
        used: set[str] = set()
        for position, task in enumerate(task_list):
            name = task_name(task)
            if name in used or name == "<lambda>":
                name = f"{name if name != '<lambda>' else 'Stage'}{position + 1}"
            used.add(name)
            stages.append(Stage(name=name, workers=workers, tasks=[task], task_attempts=retries))
        return await cls(stages).run(items, progress=progress, dashboard=dashboard)

    # ------------------------------------------------------------------ configuration

    @property
    def status_tracker(self) -> StatusTracker | None:
        """The tracker recording this pipeline's events (settable while not running)."""
        return self._tracker

    @status_tracker.setter
    def status_tracker(self, tracker: StatusTracker | None) -> None:
        if self._running:
            raise PipelineError("cannot change the status tracker while the pipeline runs")
        self._tracker = tracker

    def add_monitor(self, display: DashboardProtocol, interval: float = 0.5) -> Callable[[], None]:
        """Drive `display` (on_start/on_update/on_finish) on every run from now on.

        For monitors such as antflow-tui that attach to pipelines they did not build.

        Returns:
            A function that detaches the display.
        """
        monitor = Monitor(display, interval)
        self._monitors.append(monitor)

        def remove() -> None:
            if monitor in self._monitors:
                self._monitors.remove(monitor)

        return remove

    # ------------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        """Start the workers; items fed from now on are processed at once.

        Raises:
            PipelineError: the pipeline is already running.
        """
        if self._running:
            raise PipelineError("the pipeline is already running; join() or shutdown() it first")
        notify_started(self)
        loop = asyncio.get_running_loop()
        tracker = self._tracker
        # Bind from the last stage back, so each worker binding knows the next queue.
        next_queued = None
        for runtime in reversed(self._runtimes):
            runtime.queue.reopen()
            if tracker is None:
                runtime.queued_binding = None
                for worker in runtime.workers:
                    worker.binding = None
                continue
            runtime.queued_binding = tracker._bind(runtime.name, None, runtime.task_names)
            for worker in runtime.workers:
                worker.binding = tracker._bind(
                    runtime.name, worker.name, runtime.task_names, next_queued, runtime.per_stage
                )
            next_queued = runtime.queued_binding
        self._running = True
        self._closing = False
        self._stopping = False
        self._force_stop = None
        self._stop_done = None
        self._update_holds()
        for worker in self._workers.values():
            worker.task = loop.create_task(run_worker(self, worker), name=f"antflow {worker.name}")
        total = self._total_items if self._total_items is not None else 0
        for monitor in list(self._monitors):
            await monitor.start(self, total)

    async def feed(
        self, items: Iterable[Any], target_stage: str | None = None, priority: int = 100
    ) -> None:
        """Put items into a stage's queue (the first stage by default), waiting for room.

        A dict item with an ``"id"`` key keeps that id (and, with a ``"value"`` key, passes
        that value to the tasks); any other item's id is its sequence number.

        Args:
            items: The items.
            target_stage: The stage to feed; None for the first.
            priority: Lower runs first; equal priorities keep feed order.

        Raises:
            ValueError: `target_stage` names no stage, or `priority` is not an int.
            PipelineError: the queue is full and the pipeline is not running, so feeding
                would wait forever; or the pipeline is finishing.
        """
        runtime = self._target(target_stage)
        self._check_priority(priority)
        if isinstance(items, AsyncIterable) and not isinstance(items, Iterable):
            raise TypeError("feed() got an async iterable; use feed_async() for those")
        queue = runtime.queue
        for item in items:
            if (
                queue._size < queue.capacity
                and self._running
                and not (self._stopping or self._closing)
            ):
                self._enqueue(runtime, item, priority)
            elif not await self._feed_one(runtime, item, priority):
                return

    async def feed_async(
        self, items: AsyncIterable[Any], target_stage: str | None = None, priority: int = 100
    ) -> None:
        """Like `feed`, for an async iterable."""
        runtime = self._target(target_stage)
        self._check_priority(priority)
        async for item in items:
            if not await self._feed_one(runtime, item, priority):
                return

    async def join(self) -> None:
        """Wait until every fed item has finished, then stop the workers.

        Returns early (with nothing left in flight) if `shutdown()` stops the run.
        """
        if not self._running:
            return
        while self._outstanding > 0 and not self._stopping:
            await self._wait(self._idle_waiters)
        if self._stopping or not self._running:
            if self._stop_done is not None:
                await asyncio.shield(self._stop_done)
            return
        self._closing = True
        for runtime in self._runtimes:
            runtime.queue.close()
        for worker in self._workers.values():
            _wake(worker.wake)
        tasks = [w.task for w in self._workers.values() if w.task is not None]
        await asyncio.gather(*tasks)
        self._running = False
        await self._stop_monitors()
        if self._tracker is not None:
            await self._tracker._drain()

    async def run(
        self,
        items: Iterable[Any],
        progress: bool = False,
        dashboard: DashboardKind | None = None,
        custom_dashboard: DashboardProtocol | None = None,
        dashboard_update_interval: float = 0.5,
    ) -> list[PipelineResult]:
        """Start, feed `items`, wait for them all, and return the successful results.

        Args:
            items: The items.
            progress: Show a minimal progress bar.
            dashboard: Show a built-in dashboard: "compact", "detailed" or "full".
            custom_dashboard: Drive your own `DashboardProtocol`.
            dashboard_update_interval: Seconds between dashboard updates.

        Returns:
            Results of the items that went through every stage, in input order.

        Raises:
            ValueError: both `progress` and `dashboard`, or an unknown dashboard.
        """
        items = list(items) if not isinstance(items, Sequence) else items
        display = self._make_display(progress, dashboard, custom_dashboard)
        monitor = Monitor(display, dashboard_update_interval) if display is not None else None
        if monitor is not None:
            self._monitors.append(monitor)
        self._total_items = self._fed + len(items)
        try:
            await self.start()
            try:
                await self.feed(items)
                await self.join()
            except BaseException:
                if self._running:
                    await self.shutdown(graceful=False)
                raise
        finally:
            if monitor is not None and monitor in self._monitors:
                self._monitors.remove(monitor)
        return self.results if self.collect_results else []

    async def stream(
        self, items: Iterable[Any], progress: bool = False
    ) -> AsyncIterator[PipelineResult]:
        """Yield each item's result as it finishes (completion order), failures included.

        A failed item's result has `error` set. Results are not kept in `results`. Leaving
        the loop early shuts the pipeline down once the generator is closed; wrap it in
        ``contextlib.aclosing(...)`` to have that happen at once.
        """
        items = list(items) if not isinstance(items, Sequence) else items
        display = self._make_display(progress, None, None)
        monitor = Monitor(display, 0.5) if display is not None else None
        if monitor is not None:
            self._monitors.append(monitor)
        # Unbounded, so a finishing item is counted and delivered in one step and never
        # waits in a worker; the feeder below keeps it from growing past the buffer.
        sink: asyncio.Queue[PipelineResult] = asyncio.Queue()
        taken = asyncio.Event()
        done = object()
        collect, self.collect_results = self.collect_results, False
        self._sink = sink
        self._total_items = self._fed + len(items)

        async def drive() -> None:
            try:
                for start in range(0, len(items), _STREAM_CHUNK):
                    while sink.qsize() >= _STREAM_BUFFER and not self._stopping:
                        taken.clear()
                        await taken.wait()
                    await self.feed(items[start : start + _STREAM_CHUNK])
                await self.join()
            finally:
                sink.put_nowait(done)  # type: ignore[arg-type]

        runner: asyncio.Task[None] | None = None
        try:
            await self.start()
            runner = asyncio.get_running_loop().create_task(drive(), name="antflow stream")
            while True:
                result = await sink.get()
                taken.set()
                if result is done:
                    break
                yield result
            await runner
        finally:
            self._sink = None
            self.collect_results = collect
            if runner is not None and not runner.done():
                await self.shutdown(graceful=False)
                runner.cancel()
                await asyncio.gather(runner, return_exceptions=True)
            if monitor is not None and monitor in self._monitors:
                self._monitors.remove(monitor)

    async def shutdown(self, graceful: bool = True, grace: float | None = None) -> None:
        """Stop the run; whatever has not finished is listed by `get_unfinished_items()`.

        Args:
            graceful: Let items a worker is running finish first (no new item starts).
                False cancels them at once.
            grace: With `graceful`, at most this many seconds to wait before cancelling
                what is still running (None: wait as long as it takes).
        """
        if self._stopping:
            if not graceful:
                _wake(self._force_stop)
            if self._stop_done is not None:
                await asyncio.shield(self._stop_done)
            return
        if not self._running:
            self._abandon_queued()
            return
        loop = asyncio.get_running_loop()
        self._stopping = True
        self._stop_done = loop.create_future()
        self._force_stop = loop.create_future()
        try:
            self._update_holds()
            # Feeders waiting for room must give up now, even if a pause already held
            # every worker (then no hold changed and nobody was woken).
            for runtime in self._runtimes:
                runtime.queue.wake_putters()
            if graceful:
                waiting = loop.create_task(self._settled())
                try:
                    await asyncio.wait(
                        [waiting, self._force_stop],
                        timeout=grace,
                        return_when=asyncio.FIRST_COMPLETED,
                    )
                finally:
                    waiting.cancel()
            tasks = [w.task for w in self._workers.values() if w.task is not None]
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            self._abandon_queued()
            self._running = False
            self._wake_all(self._idle_waiters)
            await self._stop_monitors()
            if graceful and self._tracker is not None:
                await self._tracker._drain()
        finally:
            self._stopping = False
            self._update_holds()
            _wake(self._stop_done)

    async def __aenter__(self) -> Pipeline:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        if self._running:
            await self.shutdown(graceful=exc_info[0] is None)

    # ------------------------------------------------------------------ control

    def pause(self, stage: str | None = None, worker: str | None = None) -> None:
        """Pause the pipeline, one stage, or one worker.

        A paused worker finishes the item it holds, then takes no new one until resumed.
        Nothing is lost or counted twice.

        Raises:
            ValueError: both given, or an unknown stage or worker name.
        """
        self._set_paused(stage, worker, True)

    def resume(self, stage: str | None = None, worker: str | None = None) -> None:
        """Undo `pause` at the same level (no arguments: the pipeline-wide pause)."""
        self._set_paused(stage, worker, False)

    def is_paused(self, stage: str | None = None, worker: str | None = None) -> bool:
        """Whether the pipeline (or that stage, or that worker) is paused at its own level."""
        if worker is not None:
            return self._worker_named(worker).paused_self
        if stage is not None:
            return self._target(stage).paused
        return self._paused

    def retry(self, item_id: Any) -> None:
        """Feed a failed item's input back into the stage where it failed, under its id.

        Its history continues and every count reflects the new outcome.

        Raises:
            PipelineError: the item has not failed, or the pipeline is not running.
        """
        failure = self._failures.get(item_id)
        if failure is None:
            raise PipelineError(f"item {item_id!r} has not failed, so there is nothing to retry")
        if not self._running or self._closing or self._stopping:
            raise PipelineError("the pipeline is not running; start() it before retrying items")
        del self._failures[item_id]
        error_type = type(failure.error).__name__
        self._failed_by_type[error_type] -= 1
        if self._failed_by_type[error_type] <= 0:
            del self._failed_by_type[error_type]
        runtime = failure.stage
        entry = failure.entry
        runtime.failed -= 1
        self._failed_count -= 1
        self._outstanding += 1
        entry.attempt = 1
        if self._tracker is not None:
            entry.log = self._tracker._open(item_id, runtime.queued_binding, self._now())
        runtime.queue.put_nowait(entry, entry.priority, force=True)

    def failed_item_ids(self) -> list[Any]:
        """Ids of the items whose latest outcome is a failure, oldest first."""
        return list(self._failures)

    # ------------------------------------------------------------------ internals

    def _now(self) -> float:
        """The current time as Unix time (or as the injected clock reads it)."""
        return self._clock() + self._epoch

    def _target(self, stage: str | None) -> StageRuntime:
        if stage is None:
            return self._runtimes[0]
        runtime = self._by_name.get(stage)
        if runtime is None:
            known = ", ".join(repr(name) for name in self._by_name)
            raise ValueError(f"no stage named {stage!r}; the stages are {known}")
        return runtime

    def _worker_named(self, name: str) -> WorkerRecord:
        worker = self._workers.get(name)
        if worker is None:
            raise ValueError(f"no worker named {name!r}; see get_worker_names()")
        return worker

    @staticmethod
    def _check_priority(priority: int) -> None:
        if isinstance(priority, bool) or not isinstance(priority, int):
            raise ValueError(f"priority must be an int (lower runs first), got {priority!r}")

    def _set_paused(self, stage: str | None, worker: str | None, paused: bool) -> None:
        if stage is not None and worker is not None:
            raise ValueError("pause/resume one stage or one worker, not both")
        if worker is not None:
            self._worker_named(worker).paused_self = paused
        elif stage is not None:
            self._target(stage).paused = paused
        else:
            self._paused = paused
        self._update_holds()

    def _update_holds(self) -> None:
        newly_held = False
        for runtime in self._runtimes:
            for worker in runtime.workers:
                paused = self._paused or runtime.paused or worker.paused_self
                worker.paused = paused
                held = self._stopping or paused
                if held and not worker.held:
                    newly_held = True
                worker.held = held
                if not held:
                    _wake(worker.wake)
        if newly_held:
            # Workers waiting for room downstream re-check: a held one hands its item on.
            for runtime in self._runtimes:
                runtime.queue.wake_putters()

    async def _feed_one(self, runtime: StageRuntime, item: Any, priority: int) -> bool:
        if self._stopping:
            return False
        if self._closing:
            raise PipelineError("the pipeline is finishing (join() was called); cannot feed it")
        queue = runtime.queue
        while queue.full():
            if not self._running:
                raise PipelineError(
                    f"feed() would wait forever: stage {runtime.name!r}'s queue is full "
                    f"({queue.capacity} items) and the pipeline is not running; call start() "
                    f"first, or raise the stage's queue_capacity"
                )
            await queue.wait_for_room()
            if self._stopping or not self._running:
                return False
        self._enqueue(runtime, item, priority)
        return True

    def _enqueue(self, runtime: StageRuntime, item: Any, priority: int) -> None:
        seq = self._seq
        self._seq = seq + 1
        if isinstance(item, dict) and "id" in item:
            item_id = item["id"]
            value = item.get("value", item)
        else:
            item_id = seq
            value = item
        entry = Entry(item_id, seq, value, priority)
        self._fed += 1
        self._outstanding += 1
        if self._tracker is not None:
            entry.log = self._tracker._open(item_id, runtime.queued_binding, self._now())
        runtime.queue.put_nowait(entry, priority)

    def _complete(self, entry: Entry, value: Any, skipped: bool) -> None:
        """The item left the last stage: count it, keep its result, stream it."""
        self._processed += 1
        if skipped:
            self._skipped_out += 1
        if self.collect_results:
            self._results[entry.seq] = PipelineResult(entry.item_id, value, entry.seq)
            self._sorted_results = None
        if self._sink is not None:
            self._sink.put_nowait(PipelineResult(entry.item_id, value, entry.seq))
        tracker = self._tracker
        if tracker is not None and tracker.max_history_items is not None:
            tracker._item_finished(entry.item_id)
        self._settle_one()

    def _item_failed(
        self, entry: Entry, runtime: StageRuntime, error: BaseException, attempts: int, when: float
    ) -> None:
        if self._sink is not None:
            metadata = {"stage": runtime.name}
            self._sink.put_nowait(
                PipelineResult(entry.item_id, entry.value, entry.seq, metadata, error)
            )
        self._failures.pop(entry.item_id, None)
        self._failed_by_type[type(error).__name__] += 1
        self._failures[entry.item_id] = _Failure(
            entry, runtime, error, attempts, when + self._epoch
        )
        self._failed_count += 1
        self._settle_one()

    def _settle_one(self) -> None:
        self._outstanding -= 1
        if self._outstanding <= 0:
            self._wake_all(self._idle_waiters)

    def _worker_settled(self) -> None:
        self._wake_all(self._settle_waiters)

    async def _settled(self) -> None:
        while any(w.entry is not None for w in self._workers.values()):
            await self._wait(self._settle_waiters)

    def _abandon_queued(self) -> None:
        """Account for every item still queued or held: it is now unfinished."""
        abandoned: list[Entry] = []
        for runtime in self._runtimes:
            abandoned.extend(runtime.queue.drain())
            runtime.retrying = 0
            for worker in runtime.workers:
                if worker.entry is not None:
                    abandoned.append(worker.entry)
                    worker.entry = None
                worker.since = worker.current_task = None
        self._unfinished.extend(entry.item_id for entry in abandoned)
        self._outstanding -= len(abandoned)

    async def _call_hook(
        self, hook: Callable[..., Any], label: str, stage: str, *args: Any
    ) -> None:
        try:
            result = hook(*args)
            if result is not None and hasattr(result, "__await__"):
                await result
        except Exception:
            logger.exception("%s of stage %r raised; the item is not affected", label, stage)

    def _make_display(
        self,
        progress: bool,
        dashboard: DashboardKind | None,
        custom: DashboardProtocol | None,
    ) -> DashboardProtocol | None:
        if progress and dashboard:
            raise ValueError("choose either progress=True or dashboard=..., not both")
        if dashboard is not None and dashboard not in ("compact", "detailed", "full"):
            raise ValueError(
                f"unknown dashboard {dashboard!r}; use 'compact', 'detailed' or 'full'"
            )
        if custom is not None:
            return custom
        if not (progress or dashboard) or displays_suppressed():
            return None
        from antflow.display import make_builtin_display

        return make_builtin_display("progress" if progress else dashboard)  # type: ignore[arg-type]

    async def _stop_monitors(self) -> None:
        results = self.results if self.collect_results else []
        summary = self.get_error_summary()
        for monitor in list(self._monitors):
            if monitor.started:
                monitor.started = False
                await monitor.stop(self, results, summary)

    async def _wait(self, waiters: list[asyncio.Future[None]]) -> None:
        waiter = asyncio.get_running_loop().create_future()
        waiters.append(waiter)
        try:
            await waiter
        finally:
            if waiter in waiters:
                waiters.remove(waiter)

    @staticmethod
    def _wake_all(waiters: list[asyncio.Future[None]]) -> None:
        for waiter in waiters:
            _wake(waiter)
        waiters.clear()


def _wake(waiter: asyncio.Future[None] | None) -> None:
    if waiter is not None and not waiter.done():
        waiter.set_result(None)
