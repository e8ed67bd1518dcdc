"""One worker's loop: take an item, run the stage's tasks with retries, record, hand on.

This is the engine's per-item path. It creates no task objects, wrappers or event
objects of its own (events only when someone listens), runs retries as a plain loop, and
keeps the whole stage attempt in one coroutine frame: each extra await level costs about
as much as a no-op task.
"""

from __future__ import annotations

import asyncio
import inspect
from typing import TYPE_CHECKING, Any, Final

import antflow._throttle as throttles
from antflow import _history as h
from antflow._delivery import BACKLOG_LIMIT
from antflow._guard import must_propagate
from antflow._queue import QueueClosed
from antflow.context import _current_worker
from antflow.exceptions import RateLimitExceededError, TaskNotAwaitableError
from antflow.lifecycle import STOPPING
from antflow.retrying import is_rate_limit_error

if TYPE_CHECKING:
    from antflow._runtime import Entry, StageRuntime, WorkerRecord
    from antflow.pipeline import Pipeline


YIELD_EVERY: Final = 32
"""Items a worker takes back to back from a non-empty queue before yielding to the loop."""
_STOPPING: Final = STOPPING


async def run_worker(pipeline: Pipeline, worker: WorkerRecord) -> None:
    """Serve the worker's stage queue until the queue is closed or the task cancelled.

    A shutdown may give up on a worker whose task ignores cancellation (see
    `Pipeline.shutdown`): it takes the worker's item away and clears `worker.task`. Once
    that task returns, this loop sees it holds nothing any more and leaves quietly.
    """
    _current_worker.set(worker)
    me = asyncio.current_task()
    stage = worker.stage
    queue = stage.queue
    streak = 0
    while True:
        if worker.held:
            if queue.closed:
                return
            await _hold(worker)
            continue
        if queue._size:
            streak += 1
            if streak >= YIELD_EVERY:
                # Tasks that finish without suspending never give the loop back; let
                # timers, dashboards and other workers run now and then. Before taking
                # the item: a cancel while yielding must not catch one in our hands.
                streak = 0
                await asyncio.sleep(0)
                continue
            entry = queue.get_nowait()
        else:
            streak = 0
            try:
                entry = await queue.get()
            except QueueClosed:
                return
            if worker.held:
                # Paused while waiting: hand the item back untouched, first in line.
                queue.put_nowait(entry, entry.priority, force=True, front=True)
                continue
        worker.entry = entry
        await _process(pipeline, worker, stage, entry)
        if worker.task is not me:
            return
        worker.entry = None
        if pipeline._state is _STOPPING:
            pipeline._worker_settled()
        tracker = pipeline._tracker
        if tracker is not None and len(tracker._delivery.pending) > BACKLOG_LIMIT:
            await tracker._drain()


async def _hold(worker: WorkerRecord) -> None:
    waiter = worker.wake = asyncio.get_running_loop().create_future()
    try:
        await waiter
    finally:
        worker.wake = None


class _GivenUp(Exception):
    """A shutdown gave up on the worker before its task began."""


class _AttemptFailed(Exception):
    def __init__(self, error: BaseException, attempts: int) -> None:
        self.error = error
        self.attempts = attempts


async def _process(
    pipeline: Pipeline, worker: WorkerRecord, stage: StageRuntime, entry: Entry
) -> None:
    """Run one stage attempt of `entry` and settle it: hand on, re-queue or fail."""
    tracker = pipeline._tracker
    clock = pipeline._clock
    epoch = pipeline._epoch
    item_id = entry.item_id
    if entry.attempt > 1:
        stage.retrying -= 1

    if stage.skip_if is not None:
        try:
            skip = stage.skip_if(entry.value)
            if inspect.isawaitable(skip):
                skip = await skip
        except BaseException as exc:
            if must_propagate(exc):
                raise
            if worker.entry is not entry:
                return
            # A raising skip_if fails the item with its error rather than losing it.
            now = clock()
            await _fail(pipeline, worker, stage, entry, exc, now, now, 1)
            return
        if worker.entry is not entry:
            return
        if skip:
            stage.skipped += 1
            if tracker is not None:
                tracker._record_status(
                    entry.log, item_id, h.SKIPPED, worker.binding, entry.attempt, clock() + epoch
                )
            if stage.output_listeners is not None:
                pipeline._tell_output(stage, item_id, entry.value)
            await _hand_on(pipeline, worker, stage, entry, entry.value, skipped=True)
            return

    started = clock()
    worker.since = started
    if tracker is not None:
        tracker._record_begin(
            entry.log, item_id, worker.binding, entry.attempt, stage.per_stage, started + epoch
        )
    try:
        if stage.simple:
            # One plain task: run it in this frame; only a failure needs the full loop.
            awaitable = None
            first_failure = None
            try:
                awaitable = stage.tasks[0](entry.value)
                result = await awaitable
                task_index, attempt, began = 0, entry.attempt, started
            except BaseException as exc:
                if must_propagate(exc):
                    raise
                first_failure = (exc, awaitable)
            if first_failure is not None:
                # Outside the except block, so the next attempt's error is not chained to
                # this one ("During handling of the above exception...").
                result, task_index, attempt, began = await _run_tasks(
                    pipeline, worker, stage, entry, started, first_failure=first_failure
                )
        else:
            result, task_index, attempt, began = await _run_tasks(
                pipeline, worker, stage, entry, started
            )
    except _AttemptFailed as failure:
        if worker.entry is not entry:
            # A shutdown gave up on this worker and counted the item unfinished.
            return
        finished = clock()
        _settle(worker, started, finished)
        latency = stage.latency
        if latency is not None:
            # Failures count in the task times too: a timeout is the slowest kind of item.
            latency.add(finished - started, item_id, every=True)
        if (
            stage.per_stage
            and entry.attempt < stage.stage.stage_attempts
            and not isinstance(failure.error, stage.no_retry)
        ):
            entry.attempt += 1
            stage.retrying += 1
            if tracker is not None:
                tracker._record_status(
                    entry.log,
                    item_id,
                    h.RETRYING,
                    worker.binding,
                    entry.attempt,
                    finished + epoch,
                    failure.error,
                )
            # Forced: the item already holds a place; it must never wait behind itself.
            stage.queue.put_nowait(entry, entry.priority, force=True)
            return
        await _fail(
            pipeline, worker, stage, entry, failure.error, started, finished, failure.attempts
        )
        return
    if worker.entry is not entry:
        return
    finished = clock()
    worker.processed += 1
    worker.recent.append(item_id)
    seconds = finished - started
    worker.total_time += seconds
    latency = stage.latency
    if latency is not None:
        # Task times for p50/p95/max: the possibly slowest items always, one in 32 of the
        # stage's others (quantiles need samples, not every item). Off: one test an item.
        left = latency.left - 1
        if left and seconds <= latency.floor:
            latency.left = left
        else:
            latency.finished(seconds, item_id, left)
    worker.last_active = finished
    worker.since = worker.current_task = worker.progress = None
    if stage.output_listeners is not None:
        pipeline._tell_output(stage, item_id, result)
    following = stage.next
    # The common case hands the item straight on, recorded with the finish in one go.
    direct = (
        following is not None
        and stage.on_success is None
        and following.queue._size < following.queue.capacity
    )
    if tracker is not None:
        tracker._record_finish(
            entry.log,
            item_id,
            worker.binding,
            task_index,
            attempt,
            finished + epoch,
            finished - began,
            direct,
        )
    if direct:
        entry.value = result
        entry.attempt = 1
        following.queue.put_nowait(entry, entry.priority, force=True)  # type: ignore[union-attr]
        return
    if following is None and stage.on_success is None:
        pipeline._complete(entry, result, False)
        return
    if stage.on_success is not None:
        await pipeline._call_hook(
            stage.on_success,
            "on_success",
            stage.name,
            item_id,
            result,
            {"stage": stage.name, "worker": worker.name, "attempt": entry.attempt},
        )
        if worker.entry is not entry:
            return
    await _hand_on(pipeline, worker, stage, entry, result, skipped=False)


async def _run_tasks(
    pipeline: Pipeline,
    worker: WorkerRecord,
    stage: StageRuntime,
    entry: Entry,
    began: float,
    first_failure: tuple[BaseException, Any] | None = None,
) -> tuple[Any, int, int, float]:
    """Run the stage's tasks in order, retrying per task when the policy says so.

    Args:
        first_failure: The error (and the object the task returned) of the first attempt
            of the first task, when the caller already ran that attempt itself.

    Returns:
        The last task's output, its index, its attempt number and when that attempt began.

    Raises:
        _AttemptFailed: a task failed for good in this stage attempt.
    """
    tracker = pipeline._tracker
    clock = pipeline._clock
    epoch = pipeline._epoch
    binding = worker.binding
    item_id = entry.item_id
    value = entry.value
    tasks = stage.tasks
    last = len(tasks) - 1
    per_stage = stage.per_stage
    max_attempts = 1 if per_stage else stage.stage.task_attempts
    index = 0
    attempt = 1
    limited = 0  # rate-limited attempts of the current task: they use up no attempt
    failure = first_failure
    while True:
        throttle = stage.throttle
        if failure is None and throttle is not None:
            try:
                output = await throttle.attempt(pipeline, worker, entry, index, value)
            except BaseException as exc:
                if must_propagate(exc):
                    raise
                failure = (exc, None)
        elif failure is None:
            awaitable: Any = None
            try:
                if stage.unpack_args:
                    awaitable = _call_unpacked(tasks[index], value)
                else:
                    awaitable = tasks[index](value)
                semaphore = stage.semaphores[index]
                if semaphore is None:
                    output = await awaitable
                else:
                    if semaphore.locked():
                        # Shown as waiting, not running: the task has not begun yet.
                        worker.waiting_for = stage.task_names[index]
                        try:
                            await semaphore.acquire()
                        finally:
                            worker.waiting_for = None
                    else:
                        await semaphore.acquire()
                    try:
                        if worker.entry is not entry:
                            # Given up on while waiting for the slot: never run it.
                            close = getattr(awaitable, "close", None)
                            if close is not None:
                                close()
                            raise _GivenUp
                        output = await awaitable
                    finally:
                        semaphore.release()
            except BaseException as exc:
                if must_propagate(exc):
                    raise
                failure = (exc, awaitable)
        if failure is not None:
            ended = clock()
            error = _explain(failure[0], failure[1], stage.task_names[index])
            failure = None
            shown_attempt = entry.attempt if per_stage else attempt
            if worker.entry is not entry:
                raise _AttemptFailed(error, shown_attempt)
            rate_limited = is_rate_limit_error(error, stage.rate_limit_on)
            if rate_limited:
                limited += 1
                if limited >= stage.stage.rate_limit_attempts:
                    cause = error
                    error = RateLimitExceededError(stage.task_names[index], limited, cause)
                    error.__cause__ = cause
                    rate_limited = False
            hopeless = not rate_limited and isinstance(error, stage.no_retry)
            more_tries = rate_limited or (attempt < max_attempts and not hopeless)
            will_retry = more_tries or (
                per_stage and entry.attempt < stage.stage.stage_attempts and not hopeless
            )
            if will_retry and not rate_limited:
                stage.task_retries += 1
                kind = type(error)
                stage.retried_types[kind] = stage.retried_types.get(kind, 0) + 1
            if tracker is not None:
                tracker._record_task(
                    entry.log,
                    item_id,
                    h.TASK_RETRY if will_retry else h.TASK_FAIL,
                    binding,
                    index,
                    shown_attempt,
                    ended + epoch,
                    ended - began,
                    error,
                )
            if not more_tries:
                raise _AttemptFailed(error, shown_attempt)
            if rate_limited:
                # No wait here: the stage's next call waits out the cool-down, and so do
                # those of every worker sharing the limit.
                throttles.attach_throttle(stage).note_rate_limited(pipeline, error, limited)
                wait = 0.0
            else:
                backoff = stage.stage.backoff
                wait = stage.stage.task_wait_seconds if backoff is None else backoff.wait(attempt)
                attempt += 1
            if wait:
                await pipeline._sleep(wait)
                if worker.entry is not entry:
                    # A shutdown gave up on this worker during the wait: no more attempts.
                    raise _AttemptFailed(error, shown_attempt)
            began = clock()
            if tracker is not None:
                tracker._record_task(
                    entry.log, item_id, h.TASK_START, binding, index, attempt, began + epoch
                )
            continue
        if index == last or worker.entry is not entry:
            return output, index, entry.attempt if per_stage else attempt, began
        ended = clock()
        if tracker is not None:
            shown_attempt = entry.attempt if per_stage else attempt
            tracker._record_task(
                entry.log,
                item_id,
                h.TASK_COMPLETE,
                binding,
                index,
                shown_attempt,
                ended + epoch,
                ended - began,
            )
            tracker._record_task(
                entry.log,
                item_id,
                h.TASK_START,
                binding,
                index + 1,
                entry.attempt if per_stage else 1,
                ended + epoch,
            )
        value = output
        index += 1
        attempt = 1
        limited = 0
        began = ended


def _call_unpacked(task: Any, value: Any) -> Any:
    if isinstance(value, dict):
        return task(**value)
    if isinstance(value, tuple | list):
        return task(*value)
    return task(value)


def _explain(error: BaseException, awaitable: Any, name: str) -> BaseException:
    """Name the task when it returned something that cannot be awaited."""
    if (
        isinstance(error, TypeError)
        and not isinstance(error, TaskNotAwaitableError)
        and awaitable is not None
        and not inspect.isawaitable(awaitable)
    ):
        return TaskNotAwaitableError(
            f"task {name!r} returned {type(awaitable).__name__}, not an awaitable; "
            f"pass an 'async def' function (or one returning an awaitable)"
        )
    return error


def _settle(worker: WorkerRecord, started: float, finished: float) -> None:
    worker.total_time += finished - started
    worker.last_active = finished
    worker.since = worker.current_task = worker.progress = None


async def _fail(
    pipeline: Pipeline,
    worker: WorkerRecord,
    stage: StageRuntime,
    entry: Entry,
    error: BaseException,
    started: float,
    finished: float,
    attempts: int,
) -> None:
    stage.failed += 1
    worker.failed += 1
    worker.recent.append(entry.item_id)
    worker.since = worker.current_task = worker.progress = None
    tracker = pipeline._tracker
    if tracker is not None:
        tracker._record_status(
            entry.log,
            entry.item_id,
            h.FAILED,
            worker.binding,
            attempts,
            finished + pipeline._epoch,
            error,
        )
    pipeline._item_failed(entry, stage, error, attempts, finished)
    # The item is settled: a shutdown during the hook must not count it again.
    worker.entry = None
    if stage.on_failure is not None:
        worker.in_hook = True
        try:
            await pipeline._call_hook(
                stage.on_failure,
                "on_failure",
                stage.name,
                entry.item_id,
                error,
                {
                    "stage": stage.name,
                    "worker": worker.name,
                    "attempts": attempts,
                    "duration": finished - started,
                },
            )
        finally:
            worker.in_hook = False


async def _hand_on(
    pipeline: Pipeline,
    worker: WorkerRecord,
    stage: StageRuntime,
    entry: Entry,
    value: Any,
    *,
    skipped: bool,
) -> None:
    following = stage.next
    if following is None:
        pipeline._complete(entry, value, skipped)
        return
    queue = following.queue
    # Backpressure: wait for room downstream, unless a pause or shutdown holds this
    # worker; then the item goes in over capacity so in-flight work can settle.
    while queue.full() and not worker.held:
        await queue.wait_for_room()
    if worker.entry is not entry:
        return  # a shutdown gave up on this worker meanwhile; the item is unfinished
    _put_downstream(pipeline, following, entry, value)


def _put_downstream(pipeline: Pipeline, following: StageRuntime, entry: Entry, value: Any) -> None:
    entry.value = value
    entry.attempt = 1
    tracker = pipeline._tracker
    if tracker is not None:
        tracker._record_status(
            entry.log,
            entry.item_id,
            h.QUEUED,
            following.queued_binding,
            1,
            pipeline._clock() + pipeline._epoch,
        )
    following.queue.put_nowait(entry, entry.priority, force=True)
