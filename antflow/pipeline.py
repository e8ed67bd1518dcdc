"""Pipeline: stages of worker pools, fed with items; lifecycle, control and accounting.

Every item fed ends in exactly one of: completed (left the last stage, possibly skipped
through it), failed (in some stage), or unfinished (a shutdown came first; listed by
`get_unfinished_items`). Until then it is in flight.

Item ids: a dict item with an ``"id"`` key keeps that id; any other item is numbered. An
id is *live* while its item is in flight or failed (and so retryable); feeding a live id
again is refused, so no two items ever share a history, a failure or a result slot.
Automatic numbers skip every live id, so they never collide with explicit ones.
"""

from __future__ import annotations

import asyncio
import bisect
import logging
import os
import time
from collections import Counter
from collections.abc import AsyncIterable, AsyncIterator, Awaitable, Callable, Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, Literal

import antflow._throttle as throttles
import antflow.lifecycle as lc
from antflow import _history as h
from antflow._budgeting import StageBudget
from antflow._guard import must_propagate
from antflow._inspect import PipelineViews, _Failure
from antflow._latency import LatencyTracker
from antflow._monitor import Monitor
from antflow._runtime import Entry, StageRuntime, WorkerRecord
from antflow._safe import safe_repr
from antflow._worker import run_worker
from antflow.budget import BUDGET, Budget
from antflow.context import _current_worker
from antflow.exceptions import FeedStoppedError, PipelineError, PipelineStopped
from antflow.observe import displays_suppressed, notify_started
from antflow.prices import prices_from_environment
from antflow.probe import Probe, call_listeners
from antflow.stage import Stage, TaskFunc, task_name
from antflow.types import (
    DashboardProtocol,
    PipelineResult,
)

if TYPE_CHECKING:
    from antflow._queue import StageQueue
    from antflow.builder import PipelineBuilder
    from antflow.lifecycle import PipelineState
    from antflow.resume import PipelinePlan
    from antflow.tracker import EmitterBinding, StatusTracker

logger = logging.getLogger(__name__)

DashboardKind = Literal["compact", "detailed", "full"]
Clock = Callable[[], float]

_STREAM_BUFFER = 1024
"""Results a stream holds for its reader before it stops feeding more items."""
_STREAM_CHUNK = 64

_RUNNING: Final = lc.RUNNING
_JOINABLE: Final = frozenset({lc.RUNNING, lc.CLOSING})
"""Workers run and no shutdown is under way."""

_DONE_EARLIER_STREAK: Final = 1024
"""Items counted done earlier back to back before the feeding yields to the loop."""

CANCEL_GRACE: Final = 1.0
"""Seconds a forced shutdown waits for cancelled workers before giving up on them."""


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
        cancel_grace: Seconds a forced shutdown waits for cancelled workers; a worker
            whose task ignores cancellation is then given up on (its item counted
            unfinished, a warning naming the task).
        version: Your pipeline's version (a str or an int), part of its fingerprint
            with its stage and task names: raise it when a change makes what earlier
            runs stored unfit to resume from (a stage's output means something else).
        budget: A cap on what the run spends (see `Budget`): past it, the run pauses
            until the budget is raised.

    Raises:
        PipelineError: no stages, a non-Stage, two stages with the same name, a
            version that is not a str or an int, or a budget that is not a `Budget`.
        StageValidationError: a stage's configuration is invalid.
        PriceFileError: ``ANTFLOW_PRICES`` names a price file that cannot be used.
    """

    def __init__(
        self,
        stages: Sequence[Stage],
        collect_results: bool = True,
        status_tracker: StatusTracker | None = None,
        *,
        clock: Clock | None = None,
        sleep: Callable[[float], Awaitable[Any]] | None = None,
        cancel_grace: float = CANCEL_GRACE,
        version: str | int | None = None,
        budget: Budget | None = None,
    ) -> None:
        stages = list(stages) if stages is not None else []
        if not stages:
            raise PipelineError("Pipeline must have at least one stage")
        for position, stage in enumerate(stages):
            if not isinstance(stage, Stage):
                raise PipelineError(f"stage #{position + 1} is {stage!r}, not a Stage")
            stage.validate()
        names = [stage.name for stage in stages]
        duplicates = sorted({name for name in names if names.count(name) > 1})
        if duplicates:
            raise PipelineError(f"stage names must be unique; repeated: {', '.join(duplicates)}")
        if isinstance(version, bool) or not isinstance(version, str | int | None):
            raise PipelineError(f"version must be a str or an int (or None), got {version!r}")

        self.stages = stages
        self.collect_results = collect_results
        self._tracker = status_tracker
        # Readings of a C clock cost ~40 ns where a Python wrapper costs ~300; the worker
        # adds the Unix-time offset itself, and only where a timestamp is shown.
        self._clock: Clock = clock or time.perf_counter
        self._epoch = 0.0 if clock else time.time() - time.perf_counter()
        self._sleep = sleep or asyncio.sleep
        self.cancel_grace = cancel_grace
        self.version = version
        """Part of the pipeline's fingerprint (see `antflow.resume`)."""

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
        # Ordered like a list, but a resumed id leaves it in O(1).
        self._unfinished: dict[Any, None] = {}
        self._live: set[Any] | None = None
        """Live ids, kept only once an explicit id has been fed: until then every id is
        an automatic number, unique by construction, and the hot path pays nothing."""
        self._next_auto = 0
        self._reserved: dict[Any, int] = {}
        """Explicit ids of list batches being fed, not all fed yet (how many batches hold
        each): automatic numbers skip them, so a list that passed its check feeds whole."""
        self._results: dict[int, PipelineResult] = {}
        self._sorted_results: list[PipelineResult] | None = None
        self._sink: asyncio.Queue[PipelineResult] | None = None
        self._monitors: list[Monitor] = []
        self._total_items: int | None = None

        self._state = lc.IDLE
        """The lifecycle (see `antflow.lifecycle`): changed by `_move` only."""
        self._stop_task: asyncio.Task[None] | None = None
        self._stopped_by: tuple[str, int] | None = None
        """Who stopped the last run from outside the script (`shutdown`'s `by`), and how
        many items were unfinished before: run(), join() and stream() raise then."""
        self._bound_tracker: StatusTracker | None = None
        self._paused = False
        self._idle_waiters: list[asyncio.Future[None]] = []
        self._settle_waiters: list[asyncio.Future[None]] = []
        self._force_stop: asyncio.Future[None] | None = None
        self._stop_done: asyncio.Future[None] | None = None
        self._fed_listeners: list[Callable[[Any, Any], None]] | None = None
        """`Probe.on_fed` listeners; None while there are none (one test per item)."""
        self._completed_listeners: list[Callable[[Any, Any], None]] | None = None
        """`Probe.on_completed` listeners; None while there are none (one test per item)."""
        self._resume: PipelinePlan | None = None
        """What a resumed run does with each item fed (`resume_from`); None: nothing, and
        feeding takes its usual path."""
        self._done_earlier = 0
        """Items fed that a resumed run had completed (not run, not counted in `_fed`)."""
        self._earlier_ids: list[Any] = []
        """Items counted done earlier that the tracker has not been told of yet."""
        self._earlier_results: list[Any] = []
        """Their stored results not made yet, flat: item id, sequence number, JSON."""
        self._read_result: Callable[[Any], tuple[bool, Any]] = _no_result
        """Reads a stored result (the last plan's `PipelinePlan.result`)."""
        self._ended_listeners: list[Callable[[], None]] = []
        """`Probe.on_ended` listeners."""
        self.probe = Probe(self)
        """What monitors read of this pipeline (see `antflow.probe`)."""
        self._budget: Budget | None = None
        if budget is not None:
            self.set_budget(budget)
        # Told now, before anything runs, rather than at the first usage report.
        prices_from_environment()

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
        if self._state in lc.WORKING:
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
        self._refuse_if_running()
        notify_started(self)
        loop = asyncio.get_running_loop()
        tracker = self._tracker
        if tracker is not None:
            tracker._delivery.rebind(loop)
        for runtime in self._runtimes:
            runtime.queue.reopen()
            runtime.new_semaphores()
        self._bind_tracker()
        self._move(lc.RUNNING)
        self._stopped_by = None
        self._force_stop = None
        self._stop_done = None
        self._update_holds()
        for worker in self._workers.values():
            task = loop.create_task(run_worker(self, worker), name=f"antflow {worker.name}")
            task.add_done_callback(_worker_ended)
            worker.task = task
        total = self._total_items if self._total_items is not None else 0
        try:
            for monitor in list(self._monitors):
                await monitor.start(self, total)
        except BaseException:
            # Never leave workers running behind an error the caller sees.
            await self.shutdown(graceful=False)
            raise

    async def feed(
        self, items: Iterable[Any], target_stage: str | None = None, priority: int = 100
    ) -> None:
        """Put items into a stage's queue (the first stage by default), waiting for room.

        A dict item with an ``"id"`` key keeps that id (and, with a ``"value"`` key, passes
        that value to the tasks); any other item's id is its sequence number (or, if an
        explicit id holds that number, or an explicit id later in the same list, the
        next number neither holds). An id that is live (its item in flight, or failed and
        so retryable) is refused; a batch given as a list or tuple is checked whole
        before any of it is fed. Feeding the
        id of an unfinished item again resumes it: it leaves `get_unfinished_items()`.

        Args:
            items: The items.
            target_stage: The stage to feed; None for the first.
            priority: Lower runs first; equal priorities keep feed order.

        Raises:
            ValueError: `target_stage` names no stage, or `priority` is not an int.
            PipelineError: the queue is full and the pipeline is not running, so feeding
                would wait forever; the pipeline is finishing, shutting down or was shut
                down (the items from the one refused on were not fed); or an item's id is
                unhashable or live. A list batch is checked whole first (ids, and room in
                a queue nothing takes from yet): when it is refused, none of it is fed.
        """
        runtime = self._target(target_stage)
        self._check_priority(priority)
        if isinstance(items, AsyncIterable) and not isinstance(items, Iterable):
            raise TypeError("feed() got an async iterable; use feed_async() for those")
        self._check_feedable()
        queue = runtime.queue
        reserved = None
        if isinstance(items, list | tuple):
            reserved = self._check_ids(items)
            if self._state not in lc.WORKING and len(items) > queue.capacity - queue._size:
                # Checked here, not at the item that no longer fits: all or nothing.
                raise PipelineError(_wait_forever_message(runtime.name, queue.capacity))
        if reserved:
            self._reserve(reserved)
        try:
            if self._resume is not None and runtime.index == 0:
                await self._feed_planned(runtime, items, priority)
                return
            for item in items:
                if queue._size < queue.capacity and self._state is _RUNNING:
                    self._enqueue(runtime, item, priority)
                elif not await self._feed_one(runtime, item, priority):
                    return
        finally:
            if reserved:
                self._release(reserved)

    async def feed_async(
        self, items: AsyncIterable[Any], target_stage: str | None = None, priority: int = 100
    ) -> None:
        """Like `feed`, for an async iterable."""
        runtime = self._target(target_stage)
        self._check_priority(priority)
        self._check_feedable()
        async for item in items:
            if self._resume is not None and runtime.index == 0:
                queue = self._feed_one_planned(runtime, item, priority)
                self._tell_done_earlier()
                if queue is not None:
                    await self._wait_planned(queue)
            elif not await self._feed_one(runtime, item, priority):
                return

    def _refuse_if_running(self) -> None:
        if self._state in lc.ACTIVE:
            raise PipelineError("the pipeline is already running; join() or shutdown() it first")

    async def _feed_until_stopped(self, items: Iterable[Any]) -> None:
        """Feed for run() and stream(): a shutdown (from outside, or from inside the
        pipeline, even from a dashboard's on_start) ends the feeding, not the call."""
        if self._state in lc.SHUTTING_DOWN or self._state in lc.OVER:
            return
        try:
            await self.feed(items)
        except FeedStoppedError:
            return

    async def join(self) -> None:
        """Wait until every fed item has finished, then stop the workers.

        Returns early (with nothing left in flight) if `shutdown()` stops the run; called
        from inside the pipeline (a task or hook) it would wait for itself, so it refuses.

        Raises:
            PipelineError: called from one of this pipeline's own workers.
            PipelineStopped: the run was stopped from outside the script (a viewer, a
                monitor: `shutdown`'s `by`), once the stop is done.
        """
        if self._state not in lc.WORKING:
            self._raise_if_stopped_from_outside()
            return
        if self._called_from_inside():
            raise PipelineError(
                "join() was called from inside the pipeline (a task, hook or callback), "
                "where it would wait for itself; call shutdown() to stop the run instead"
            )
        while self._outstanding > 0 and self._state not in lc.SHUTTING_DOWN:
            await self._wait(self._idle_waiters)
        if self._state not in _JOINABLE:
            await self._await_stop()
            self._raise_if_stopped_from_outside()
            return
        if self._state is _RUNNING:  # not when another join() got here first
            self._move(lc.CLOSING)
        for runtime in self._runtimes:
            runtime.queue.close()
        for worker in self._workers.values():
            _wake(worker.wake)
        tasks = [w.task for w in self._workers.values() if w.task is not None]
        if tasks:
            # wait(), not gather(): a shutdown landing now cancels the workers, and that
            # must not come out of join() as if the caller had been cancelled.
            await asyncio.wait(tasks)
        if self._state is not lc.CLOSING:  # a shutdown came, or another join() ended it
            await self._await_stop()
            self._raise_if_stopped_from_outside()
            return
        self._move(lc.FINISHED)
        await self._stop_monitors()
        if self._tracker is not None:
            await self._tracker._drain()
        call_listeners(self._ended_listeners, "on_ended")
        for task in tasks:
            if not task.cancelled() and task.exception() is not None:
                raise task.exception()  # type: ignore[misc]

    def _raise_if_stopped_from_outside(self) -> None:
        if self._stopped_by is not None and self._state not in lc.SHUTTING_DOWN:
            by, unfinished_before = self._stopped_by
            raise PipelineStopped(by, max(0, len(self._unfinished) - unfinished_before))

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
            Results of this run's items that went through every stage, in input order
            (not those of earlier runs of the same pipeline).

        Raises:
            ValueError: both `progress` and `dashboard`, or an unknown dashboard.
            PipelineError: an item's id is unhashable, repeated or live (nothing starts).
            PipelineStopped: the run was stopped from outside the script (a viewer, a
                monitor) before it finished, once the stop is done.
        """
        self._refuse_if_running()
        items = list(items) if not isinstance(items, Sequence) else items
        if isinstance(items, list | tuple):
            self._check_ids(items)
        display = self._make_display(progress, dashboard, custom_dashboard)
        monitor = Monitor(display, dashboard_update_interval) if display is not None else None
        if monitor is not None:
            self._monitors.append(monitor)
        self._total_items = self._fed + self._done_earlier + len(items)
        first_seq = self._seq
        started = False
        try:
            await self.start()
            started = True
            await self._feed_until_stopped(items)
            await self.join()
        except BaseException:
            # Only this run's own start is undone: a refused call leaves a running one be.
            if started and self._state in lc.ACTIVE:
                await asyncio.shield(self.shutdown(graceful=False))
            raise
        finally:
            if monitor is not None and monitor in self._monitors:
                self._monitors.remove(monitor)
        if not self.collect_results:
            return []
        results = self.results
        # Results are in sequence order, and this run's items were numbered from first_seq.
        keys = [result.sequence_id for result in results]
        return results[bisect.bisect_left(keys, first_seq) :]

    async def stream(
        self, items: Iterable[Any], progress: bool = False
    ) -> AsyncIterator[PipelineResult]:
        """Yield each item's result as it finishes (completion order), failures included.

        A failed item's result has `error` set. Results are not kept in `results`. Leaving
        the loop early shuts the pipeline down once the generator is closed; wrap it in
        ``contextlib.aclosing(...)`` to have that happen at once.

        Raises:
            PipelineStopped: the run was stopped from outside the script (a viewer, a
                monitor) before it finished, once the stop is done.
        """
        self._refuse_if_running()
        items = list(items) if not isinstance(items, Sequence) else items
        # Held for the whole stream, fed a chunk at a time: automatic numbers of an early
        # chunk must skip the explicit ids of a later one.
        reserved = self._check_ids(items) if isinstance(items, list | tuple) else None
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
        self._total_items = self._fed + self._done_earlier + len(items)

        async def drive() -> None:
            try:
                for start in range(0, len(items), _STREAM_CHUNK):
                    while sink.qsize() >= _STREAM_BUFFER and self._state not in lc.SHUTTING_DOWN:
                        taken.clear()
                        await taken.wait()
                    if self._state in lc.SHUTTING_DOWN or self._state in lc.OVER:
                        break
                    await self._feed_until_stopped(items[start : start + _STREAM_CHUNK])
                await self.join()
            finally:
                sink.put_nowait(done)  # type: ignore[arg-type]

        runner: asyncio.Task[None] | None = None
        if reserved:
            self._reserve(reserved)
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
            if reserved:
                self._release(reserved)
            self._sink = None
            self.collect_results = collect
            if runner is not None and not runner.done():
                await asyncio.shield(self.shutdown(graceful=False))
                runner.cancel()
                await asyncio.gather(runner, return_exceptions=True)
            elif runner is not None and self._state in lc.ACTIVE:
                # The feeding raised (an id made live meanwhile by another feeder): the
                # error goes to the caller, and no worker may outlive it.
                await asyncio.shield(self.shutdown(graceful=False))
            if monitor is not None and monitor in self._monitors:
                self._monitors.remove(monitor)

    async def shutdown(
        self, graceful: bool = True, grace: float | None = None, *, by: str | None = None
    ) -> None:
        """Stop the run; whatever has not finished is listed by `get_unfinished_items()`.

        Safe to call from inside the pipeline (a task, a hook, a tracker callback, a
        dashboard): there it starts the stop and returns at once, since waiting would
        mean waiting for itself; `run()` and `join()` return when the stop is done.

        A forced stop cancels the running tasks and waits `cancel_grace` seconds for
        them; a task that ignores cancellation is then given up on: its item is counted
        unfinished, a warning names it, and whatever it does later is ignored.

        Args:
            graceful: Let items a worker is running finish first (no new item starts).
                False cancels them at once.
            grace: With `graceful`, at most this many seconds to wait before cancelling
                what is still running (None: wait as long as it takes).
            by: Who stops the run, when it is not the script itself: a monitor passes
                who asked (``"a viewer (antflow-tui attach, pid 4242)"``). Then the
                script's run(), join() and stream() raise `PipelineStopped` naming it once
                the stop is done, as ctrl+c would reach the script; the script's own
                shutdown passes nothing, and they just return.
        """
        inside = self._called_from_inside()
        if self._state in lc.SHUTTING_DOWN:
            if not graceful:
                _wake(self._force_stop)
            if not inside:
                await self._await_stop()
            return
        if self._state not in lc.WORKING:
            self._abandon_queued()
            if self._state is lc.IDLE:
                self._move(lc.STOPPED)
            return
        loop = asyncio.get_running_loop()
        if by is not None:
            self._stopped_by = (by, len(self._unfinished))
        self._move(lc.STOPPING)
        self._stop_done = loop.create_future()
        self._force_stop = loop.create_future()
        self._update_holds()
        # Feeders waiting for room must give up now, even if a pause already held
        # every worker (then no hold changed and nobody was woken).
        for runtime in self._runtimes:
            runtime.queue.wake_putters()
        # Its own task, so a caller that is cancelled (or is a worker) cannot cut it short.
        stop = self._stop(graceful, grace)
        try:
            self._stop_task = loop.create_task(stop, name="antflow shutdown")
        except BaseException:
            stop.close()  # never scheduled (a closing loop): not "never awaited" at exit
            raise
        if not inside:
            await self._await_stop()

    async def _stop(self, graceful: bool, grace: float | None) -> None:
        loop = asyncio.get_running_loop()
        assert self._force_stop is not None
        try:
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
            if tasks:
                _, stuck = await asyncio.wait(tasks, timeout=self.cancel_grace)
                self._give_up(stuck)
            self._abandon_queued()
            self._move(lc.ENDING)
            self._wake_all(self._idle_waiters)
            await self._stop_monitors()
            if graceful and self._tracker is not None:
                await self._tracker._drain()
        finally:
            self._move(lc.STOPPED)
            self._update_holds()
            _wake(self._stop_done)
            call_listeners(self._ended_listeners, "on_ended")

    async def _await_stop(self) -> None:
        if self._stop_done is not None:
            await asyncio.shield(self._stop_done)
        task = self._stop_task
        if task is not None and task.done() and not task.cancelled():
            self._stop_task = None
            error = task.exception()
            if error is not None:
                raise error

    def _give_up(self, stuck: set[asyncio.Task[Any]]) -> None:
        """Leave workers whose tasks ignored cancellation: their items become unfinished
        (by `_abandon_queued`) and the worker loop drops whatever they finish later."""
        for worker in self._workers.values():
            if worker.task in stuck:
                logger.warning(
                    "worker %s ignored cancellation for %.1f s (task %s, item %s); its item "
                    "is counted unfinished and the worker is left behind",
                    worker.name,
                    self.cancel_grace,
                    _running_task_name(worker.task, worker.stage.task_names),
                    None if worker.entry is None else safe_repr(worker.entry.item_id),
                )
                worker.task = None
                worker.in_hook = False

    def _called_from_inside(self) -> bool:
        """True when the caller runs in a task this pipeline's stop would wait for: a
        worker (its tasks and hooks), the tracker's callback dispatcher, a dashboard."""
        current = asyncio.current_task()
        if current is None:
            return False
        if current is self._stop_task:
            return True
        # A worker's tasks, hooks and the tasks they start (which inherit its context).
        holder = _current_worker.get()
        if holder is not None and self._workers.get(getattr(holder, "name", "")) is holder:
            return True
        if any(worker.task is current for worker in self._workers.values()):
            return True
        tracker = self._tracker
        if tracker is not None and tracker._delivery.is_dispatcher(current):
            return True
        return any(monitor.runs_in(current) for monitor in self._monitors)

    async def __aenter__(self) -> Pipeline:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        if self._state in lc.WORKING:
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
            raise PipelineError(
                f"item {safe_repr(item_id)} has not failed, so there is nothing to retry"
            )
        if self._state is not _RUNNING:
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

    def set_concurrency(self, stage: str, concurrency: int) -> None:
        """Let at most `concurrency` calls of `stage` run at once, from now on.

        Takes effect at once, running or not: calls over the new limit finish, and no
        new one starts until the stage is under it. On an adaptive stage the limit
        also becomes the highest the adaptation goes. Read it back with
        `get_limit_snapshot`.

        Raises:
            ValueError: an unknown stage, or `concurrency` not an int between 1 and the
                stage's workers.
        """
        runtime = self._target(stage)
        workers = len(runtime.workers)
        if (
            isinstance(concurrency, bool)
            or not isinstance(concurrency, int)
            or not 1 <= concurrency <= workers
        ):
            raise ValueError(
                f"stage {runtime.name!r} has {workers} workers: its concurrency must be an "
                f"int from 1 to {workers}, got {concurrency!r}"
            )
        throttles.attach_throttle(runtime).set_concurrency(concurrency)

    @property
    def budget(self) -> Budget | None:
        """The cap on what the run spends, if any: ``pipeline.budget.raise_to(usd=20)``
        lets a run paused by it go on (see `Budget`)."""
        return self._budget

    def set_budget(self, budget: Budget | None) -> None:
        """Cap what the run spends with `budget` from now on (None: no cap), running or
        not; calls waiting for the budget it replaces go on.

        Raises:
            PipelineError: `budget` is not a `Budget` (or None).
        """
        if budget is not None and not isinstance(budget, Budget):
            raise PipelineError(
                f"budget must be an antflow.Budget (Budget(usd=5.0)) or None, got {budget!r}"
            )
        old = self._budget
        self._budget = budget
        for runtime in self._runtimes:
            throttle = runtime.throttle
            if throttle is not None and throttle.budget is not None:
                throttle.budget.detached = True
            if budget is not None:
                throttles.attach_throttle(runtime).budget = StageBudget(
                    budget, runtime, self._worker_settled, self._shutting_down
                )
            elif throttle is not None:
                throttle.budget = None
        if old is not None:
            old.wake()

    def measure_latency(self) -> None:
        """Keep each stage's task times from now on (p50, p95, max and the slowest items,
        in `antflow.runstream` snapshots); monitors call it, at a small per-item cost."""
        for runtime in self._runtimes:
            if runtime.latency is None:
                runtime.latency = LatencyTracker()

    def failed_item_ids(self) -> list[Any]:
        """Ids of the items whose latest outcome is a failure, oldest first."""
        return list(self._failures)

    # ------------------------------------------------------------------ internals

    def _fed_listener_failed(
        self, listener: Callable[[Any, Any], None], error: BaseException
    ) -> None:
        # A new list: `_enqueue` may be iterating the old one.
        if must_propagate(error):
            raise error
        logger.error("an on_fed listener raised; it is detached", exc_info=error)
        remaining = [one for one in self._fed_listeners or () if one is not listener]
        self._fed_listeners = remaining or None

    def _move(self, to: PipelineState) -> None:
        """The one place the lifecycle changes (see `antflow.lifecycle`)."""
        self._state = lc.move(self._state, to)

    def _now(self) -> float:
        """The current time as Unix time (or as the injected clock reads it)."""
        return self._clock() + self._epoch

    def _target(self, stage: str | None) -> StageRuntime:
        if stage is None:
            return self._runtimes[0]
        runtime = self._by_name.get(stage)
        if runtime is None:
            known = ", ".join(repr(name) for name in self._by_name)
            raise ValueError(f"Stage {stage!r} not found; the stages are {known}")
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
        stopping = self._state in lc.SHUTTING_DOWN
        for runtime in self._runtimes:
            for worker in runtime.workers:
                paused = self._paused or runtime.paused or worker.paused_self
                worker.paused = paused
                held = stopping or paused
                if held and not worker.held:
                    newly_held = True
                worker.held = held
                if not held:
                    _wake(worker.wake)
        if newly_held:
            # Workers waiting for room downstream re-check: a held one hands its item on.
            for runtime in self._runtimes:
                runtime.queue.wake_putters()

    def _check_feedable(self) -> None:
        state = self._state
        if state is lc.FINISHED:
            raise PipelineError(
                "the pipeline has finished (join() returned); start() it again before feeding"
            )
        if state is lc.CLOSING:
            raise PipelineError("the pipeline is finishing (join() was called); cannot feed it")
        if state is lc.STOPPED:
            raise PipelineError(
                "the pipeline was shut down; start() it again before feeding more items"
            )

    def _check_ids(self, items: Sequence[Any]) -> set[Any] | None:
        """Refuse a batch whose explicit ids are unhashable, repeated or live, before any
        of it is fed; returns its explicit ids (None when it has none)."""
        # Set operations rather than a loop of checks: a batch of a million ids costs
        # about one list and one set to build.
        ids = [item["id"] for item in items if isinstance(item, dict) and "id" in item]
        if not ids:
            return None
        try:
            unique = set(ids)
        except TypeError:
            raise PipelineError(_unhashable_message(next(filter(_unhashable, ids)))) from None
        if len(unique) != len(ids):
            seen: set[Any] = set()
            repeated = next(i for i in ids if i in seen or seen.add(i))  # type: ignore[func-returns-value]
            raise PipelineError(
                f"item id {safe_repr(repeated)} appears twice in the items fed; ids must be "
                f"unique while their items are in flight or failed"
            )
        if self._live is None:
            self._live = self._ids_in_pipeline()
        live = self._live
        if live and not live.isdisjoint(unique):
            self._refuse_live(next(i for i in ids if i in live))
        return unique

    def _reserve(self, ids: set[Any]) -> None:
        reserved = self._reserved
        for item_id in ids:
            reserved[item_id] = reserved.get(item_id, 0) + 1

    def _release(self, ids: set[Any]) -> None:
        reserved = self._reserved
        for item_id in ids:
            held = reserved.pop(item_id, 1) - 1
            if held > 0:
                reserved[item_id] = held

    def _refuse_live(self, item_id: Any) -> None:
        where = (
            "has failed (retry it with retry())"
            if item_id in self._failures
            else "is still in flight"
        )
        raise PipelineError(
            f"item id {safe_repr(item_id)} is already in the pipeline: an item with that id "
            f"{where}; give each item a unique id"
        )

    def _claim(self, item_id: Any) -> bool:
        """Make an explicit id live, or raise; True if it resumes an unfinished item."""
        live = self._live
        if live is None:
            live = self._live = self._ids_in_pipeline()
        try:
            if item_id in live:
                self._refuse_live(item_id)
        except TypeError:
            raise PipelineError(_unhashable_message(item_id)) from None
        live.add(item_id)
        unfinished = self._unfinished
        if unfinished and item_id in unfinished:
            del unfinished[item_id]
            return True
        return False

    def _ids_in_pipeline(self) -> set[Any]:
        """Every live id, gathered once, when the first explicit id arrives."""
        live: set[Any] = set(self._failures)
        for runtime in self._runtimes:
            live.update(entry.item_id for entry in runtime.queue)
            live.update(w.entry.item_id for w in runtime.workers if w.entry is not None)
        return live

    def _auto_id(self, seq: int) -> int:
        """The sequence number, or the next number that no live item (and no history in
        the tracker) holds: automatic ids never collide with explicit ones."""
        candidate = max(seq, self._next_auto)
        live = self._live
        reserved = self._reserved
        tracker = self._tracker
        assert live is not None
        while (
            candidate in live
            or candidate in reserved
            or (tracker is not None and tracker.has_history(candidate))
        ):
            candidate += 1
        self._next_auto = candidate + 1
        live.add(candidate)
        return candidate

    async def _feed_one(self, runtime: StageRuntime, item: Any, priority: int) -> bool:
        state = self._state
        if state is lc.STOPPING or state is lc.ENDING:
            raise FeedStoppedError(
                "the pipeline is shutting down: this item and the rest were not fed"
            )
        self._check_feedable()
        queue = runtime.queue
        while queue.full():
            if self._state not in lc.WORKING:
                raise PipelineError(_wait_forever_message(runtime.name, queue.capacity))
            await queue.wait_for_room()
            if self._state not in _JOINABLE:
                raise FeedStoppedError(
                    "the pipeline was shut down while feed() waited for room: this item and "
                    "the rest were not fed"
                )
        self._enqueue(runtime, item, priority)
        return True

    def _bind_tracker(self) -> None:
        """Give every stage and worker its binding to the tracker (or none)."""
        tracker = self._tracker
        self._bound_tracker = tracker
        # From the last stage back, so each worker binding knows the next queue.
        next_queued = None
        for runtime in reversed(self._runtimes):
            runtime.tracker = tracker
            if tracker is None:
                # Nothing is recorded without a tracker (see WorkerRecord.binding).
                runtime.queued_binding = None  # type: ignore[assignment]
                for worker in runtime.workers:
                    worker.binding = None  # type: ignore[assignment]
                continue
            runtime.queued_binding = tracker._bind(runtime.name, None, runtime.task_names)
            for worker in runtime.workers:
                worker.binding = tracker._bind(
                    runtime.name, worker.name, runtime.task_names, next_queued, runtime.per_stage
                )
            next_queued = runtime.queued_binding
            # Items fed before this tracker was bound (fed before start(), with the tracker
            # given at start by an observer, or set since) get their history now.
            now = None
            for entry in runtime.queue:
                if entry.log is None or tracker._logs.get(entry.item_id) is not entry.log:
                    now = self._now() if now is None else now
                    entry.log = tracker._open(entry.item_id, runtime.queued_binding, now)

    def _enqueue(self, runtime: StageRuntime, item: Any, priority: int) -> None:
        tracker = self._tracker
        if tracker is not None and self._bound_tracker is not tracker:
            self._bind_tracker()  # fed before start(), or the tracker changed since
        seq = self._seq
        resumed = False
        if isinstance(item, dict) and "id" in item:
            item_id = item["id"]
            value = item.get("value", item)
            resumed = self._claim(item_id)
        else:
            item_id = seq if self._live is None else self._auto_id(seq)
            value = item
        self._seq = seq + 1
        entry = Entry(item_id, seq, value, priority)
        if not resumed:
            self._fed += 1
        self._outstanding += 1
        if tracker is not None:
            entry.log = tracker._open(item_id, runtime.queued_binding, self._now())
        runtime.queue.put_nowait(entry, priority)
        listeners = self._fed_listeners
        if listeners is not None:
            for listener in listeners:
                try:
                    listener(item_id, item)
                except BaseException as error:
                    self._fed_listener_failed(listener, error)

    # ------------------------------------------------------------------ resuming

    def resume_from(self, plan: PipelinePlan | None) -> None:
        """Feed items as a resumed run does, from the next item fed into the first stage.

        An item whose id `plan` says completed earlier is not run: it is counted done
        earlier (``get_stats().items_done_earlier``, a ``done_earlier`` status in the
        tracker), and `run()`/`stream()` return its stored result, if one was stored (its
        JSON form: a tuple comes back as a list). An item that passed a durable stage
        enters the stage after it, with that stage's stored output. Every other item is
        fed as usual. Items fed into a later stage (``feed(..., target_stage=...)``)
        are fed as usual too.

        `antflow.keep_history` gives each pipeline its plan as it starts; a script calls
        this itself only to apply a plan of its own making (`antflow.resume`).

        Args:
            plan: What a resume does with each item id; None: feed as usual again.

        Raises:
            PipelineError: `plan` was made for a pipeline of other stages.
        """
        if plan is not None:
            plan.check_stages([stage.name for stage in self.stages])
            self._read_result = plan.result
        self._resume = plan

    async def _feed_planned(self, first: StageRuntime, items: Iterable[Any], priority: int) -> None:
        """Feed items into the first stage as the resume plan says (see `resume_from`).

        An item's id decides where it goes, and giving it one takes its number, so an
        item goes into its queue at once (over capacity by one at most), and the feeding
        waits for room there afterwards. Items done earlier need no room: the loop
        yields to others now and then, as a resume may count a million of them.
        """
        counted = 0
        try:
            for item in items:
                if self._state is not _RUNNING:
                    self._check_planned_feed(first)
                runtime = self._enqueue_planned(first, item, priority)
                if runtime is not None:
                    if runtime.queue._size > runtime.queue.capacity:
                        await self._wait_planned(runtime.queue)
                    continue
                counted += 1
                if counted >= _DONE_EARLIER_STREAK:
                    counted = 0
                    self._tell_done_earlier()
                    await asyncio.sleep(0)
        finally:
            self._tell_done_earlier()

    def _feed_one_planned(
        self, first: StageRuntime, item: Any, priority: int
    ) -> StageQueue[Entry] | None:
        """Feed one item as the plan says; returns the queue it went into if that is now
        over capacity (None: it has room, or the item was done earlier)."""
        if self._state is not _RUNNING:
            self._check_planned_feed(first)
        runtime = self._enqueue_planned(first, item, priority)
        if runtime is None or runtime.queue._size <= runtime.queue.capacity:
            return None
        return runtime.queue

    def _check_planned_feed(self, first: StageRuntime) -> None:
        """Refuse a planned feed as `_feed_one` refuses one (the pipeline not running)."""
        state = self._state
        if state is lc.STOPPING or state is lc.ENDING:
            raise FeedStoppedError(
                "the pipeline is shutting down: this item and the rest were not fed"
            )
        self._check_feedable()
        if state not in lc.WORKING and first.queue.full():
            raise PipelineError(_wait_forever_message(first.name, first.queue.capacity))

    async def _wait_planned(self, queue: StageQueue[Entry]) -> None:
        """Wait until `queue`, over capacity by the item just fed, has room again."""
        while queue._size > queue.capacity and self._state in lc.WORKING:
            await queue.wait_for_room()
            if self._state not in _JOINABLE:
                raise FeedStoppedError(
                    "the pipeline was shut down while feed() waited for room: the items "
                    "after this one were not fed"
                )

    def _enqueue_planned(
        self, first: StageRuntime, item: Any, priority: int
    ) -> StageRuntime | None:
        """`_enqueue` under a resume plan: the item is counted done earlier (None), or
        queued where the plan says (its stage's runtime). Kept apart from `_enqueue`, the
        hot path of a run without a plan, which pays nothing for plans."""
        plan = self._resume
        assert plan is not None
        tracker = self._tracker
        if tracker is not None and self._bound_tracker is not tracker:
            self._bind_tracker()
        seq = self._seq
        explicit = isinstance(item, dict) and "id" in item
        if explicit:
            item_id = item["id"]
            value = item.get("value", item)
        else:
            item_id = seq if self._live is None else self._auto_id(seq)
            value = item
        route = plan.route(item_id, automatic=not explicit)
        if route is not None and route.stage is None:
            # Inline: a resume may count a million items so before it feeds one.
            self._seq = seq + 1
            if not explicit and self._live is not None:
                self._live.discard(item_id)
            self._done_earlier += 1
            if tracker is not None:
                self._earlier_ids.append(item_id)
            if route.stored:
                self._keep_earlier_result(item_id, seq, route.value)
            return None
        resumed = self._claim(item_id) if explicit else False
        self._seq = seq + 1
        if self._earlier_ids:
            self._tell_done_earlier()  # their events come before this item's
        runtime = first
        if route is not None:
            runtime = self._runtimes[route.stage]  # type: ignore[index]
            value = route.value
        entry = Entry(item_id, seq, value, priority)
        if not resumed:
            self._fed += 1
        self._outstanding += 1
        if tracker is not None:
            entry.log = tracker._open(item_id, runtime.queued_binding, self._now())
        runtime.queue.put_nowait(entry, priority, force=True)
        listeners = self._fed_listeners
        if listeners is not None:
            for listener in listeners:
                try:
                    listener(item_id, item)
                except BaseException as error:
                    self._fed_listener_failed(listener, error)
        return runtime

    def _keep_earlier_result(self, item_id: Any, seq: int, stored: Any) -> None:
        """Return the stored result of an item done earlier, as any result (in feed order
        from `run()`, as it comes from `stream()`)."""
        if self._sink is not None:
            read, value = self._read_result(stored)
            if read:
                self._sink.put_nowait(PipelineResult(item_id, value, seq, {"done_earlier": True}))
        elif self.collect_results:
            # Made when `results` is read: a resume may count a million items before it
            # feeds its first one.
            earlier = self._earlier_results
            earlier.append(item_id)
            earlier.append(seq)
            earlier.append(stored)
            self._sorted_results = None

    def _tell_done_earlier(self) -> None:
        """Tell the tracker of the items counted done earlier since the last time (in
        bulk, at one time: a streak of them takes a millisecond)."""
        item_ids = self._earlier_ids
        if not item_ids:
            return
        self._earlier_ids = []
        tracker = self._tracker
        if tracker is not None:
            tracker._record_done_earlier(item_ids, self._runtimes[-1].queued_binding, self._now())

    def _take_earlier_results(self) -> None:
        """Make the results of the items counted done earlier (see `_count_done_earlier`)."""
        earlier, self._earlier_results = self._earlier_results, []
        result = self._read_result
        results = self._results
        for index in range(0, len(earlier), 3):
            read, value = result(earlier[index + 2])
            if read:
                item_id, seq = earlier[index], earlier[index + 1]
                results[seq] = PipelineResult(item_id, value, seq, {"done_earlier": True})

    def _completed_listener_failed(
        self, listener: Callable[[Any, Any], None], error: BaseException
    ) -> None:
        # A new list: `_complete` may be iterating the old one.
        if must_propagate(error):
            raise error
        logger.error("an on_completed listener raised; it is detached", exc_info=error)
        remaining = [one for one in self._completed_listeners or () if one is not listener]
        self._completed_listeners = remaining or None

    @staticmethod
    def _tell_output(runtime: StageRuntime, item_id: Any, value: Any) -> None:
        """A stage gave an item's output: tell `Probe.on_stage_output`'s listeners."""
        for listener in runtime.output_listeners or ():
            try:
                listener(item_id, value)
            except BaseException as error:
                if must_propagate(error):
                    raise
                logger.error(
                    "an on_stage_output listener of stage %r raised; it is detached",
                    runtime.name,
                    exc_info=error,
                )
                remaining = [one for one in runtime.output_listeners or () if one is not listener]
                runtime.output_listeners = remaining or None

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
        if self._live is not None:
            self._live.discard(entry.item_id)
        tracker = self._tracker
        if tracker is not None and tracker.max_history_items is not None:
            tracker._item_finished(entry.item_id)
        listeners = self._completed_listeners
        if listeners is not None:
            for listener in listeners:
                try:
                    listener(entry.item_id, value)
                except BaseException as error:
                    self._completed_listener_failed(listener, error)
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

    def _shutting_down(self) -> bool:
        return self._state in lc.SHUTTING_DOWN

    def _worker_settled(self) -> None:
        self._wake_all(self._settle_waiters)

    async def _settled(self) -> None:
        # A call the budget holds has not begun: the stop does not wait for the budget.
        while any(
            (w.entry is not None and w.waiting_for != BUDGET) or w.in_hook
            for w in self._workers.values()
        ):
            await self._wait(self._settle_waiters)

    def _abandon_queued(self) -> None:
        """Account for every item still queued or held: it is now unfinished."""
        tracker = self._tracker
        now = self._now()
        live = self._live
        abandoned: list[tuple[Entry, EmitterBinding | None]] = []
        for runtime in self._runtimes:
            abandoned.extend((entry, runtime.queued_binding) for entry in runtime.queue.drain())
            runtime.retrying = 0
            for worker in runtime.workers:
                if worker.entry is not None:
                    abandoned.append((worker.entry, worker.binding))
                    worker.entry = None
                worker.since = worker.current_task = worker.waiting_for = worker.progress = None
        abandoned.sort(key=lambda pair: pair[0].seq)
        for entry, binding in abandoned:
            self._unfinished[entry.item_id] = None
            if live is not None:
                live.discard(entry.item_id)
            if tracker is not None and entry.log is not None and binding is not None:
                # A terminal status, so the tracker's counts match the pipeline's.
                tracker._record_status(
                    entry.log, entry.item_id, h.UNFINISHED, binding, entry.attempt, now
                )
        self._outstanding -= len(abandoned)

    async def _call_hook(
        self, hook: Callable[..., Any], label: str, stage: str, *args: Any
    ) -> None:
        try:
            result = hook(*args)
            if result is not None and hasattr(result, "__await__"):
                await result
        except BaseException as error:
            # Observer code never kills a worker: only a real cancel or an interrupt stops it.
            if must_propagate(error):
                raise
            logger.exception("%s of stage %r raised; the item is not affected", label, stage)

    def _make_display(
        self,
        progress: bool,
        dashboard: DashboardKind | None,
        custom: DashboardProtocol | None,
    ) -> DashboardProtocol | None:
        if progress and dashboard:
            raise ValueError("Cannot use both progress=True and dashboard=...; choose one of them")
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


def _no_result(raw: Any) -> tuple[bool, Any]:
    return False, None


def _worker_ended(task: asyncio.Task[None]) -> None:
    """Take a worker task's exception, so Python never reports it "never retrieved".

    A `KeyboardInterrupt` or `SystemExit` from a task has already gone up to the program
    (the event loop re-raises them); anything else is a bug of ours, logged here and
    raised by `join()` too.
    """
    if task.cancelled():
        return
    error = task.exception()
    if error is not None and not isinstance(error, KeyboardInterrupt | SystemExit):
        logger.error("worker task %s ended with an error", task.get_name(), exc_info=error)


def _wake(waiter: asyncio.Future[None] | None) -> None:
    if waiter is not None and not waiter.done():
        waiter.set_result(None)


def _unhashable(item_id: Any) -> bool:
    try:
        hash(item_id)
    except TypeError:
        return True
    return False


def _unhashable_message(item_id: Any) -> str:
    return (
        f"item id {safe_repr(item_id)} is a {type(item_id).__name__}, which cannot be an id "
        f"(ids must be hashable); use a str, an int or a tuple"
    )


def _wait_forever_message(stage: str, capacity: int) -> str:
    return (
        f"feed() would wait forever: stage {stage!r}'s queue is full ({capacity} items) and "
        f"the pipeline is not running; call start() first, or raise the stage's queue_capacity"
    )


def _running_task_name(task: asyncio.Task[Any] | None, task_names: tuple[str, ...]) -> str:
    """The user function a stuck worker is in: the innermost frame outside antflow."""
    if task is not None:
        for frame in reversed(task.get_stack()):
            if not frame.f_code.co_filename.startswith(_ENGINE_DIR):
                return frame.f_code.co_qualname
    return " / ".join(task_names)


_ENGINE_DIR = str(Path(__file__).resolve().parent) + os.sep
