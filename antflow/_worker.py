"""One worker's loop: take an item, run the stage's tasks with retries, record, hand on.

This is the engine's per-item path, so it avoids work per item: no task objects, no
wrappers, no event objects unless someone listens; retries are a plain loop.
"""

from __future__ import annotations

import asyncio
import inspect
from typing import TYPE_CHECKING, Any

from antflow import _history as h
from antflow._queue import QueueClosed
from antflow.context import _current_worker
from antflow.tracker import BACKLOG_LIMIT

if TYPE_CHECKING:
    from antflow._runtime import Entry, StageRuntime, WorkerRecord
    from antflow.pipeline import Pipeline


async def run_worker(pipeline: Pipeline, worker: WorkerRecord) -> None:
    """Serve the worker's stage queue until the queue is closed or the task cancelled."""
    _current_worker.set(worker)
    stage = worker.stage
    queue = stage.queue
    while True:
        if worker.held:
            await _hold(worker)
            continue
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
        worker.entry = None
        if pipeline._stopping:
            pipeline._worker_settled()
        tracker = pipeline._tracker
        if tracker is not None and tracker._backlog > BACKLOG_LIMIT:
            await tracker._drain()


async def _hold(worker: WorkerRecord) -> None:
    worker.status = "paused"
    waiter = worker.wake = asyncio.get_running_loop().create_future()
    try:
        await waiter
    finally:
        worker.wake = None
        worker.status = "idle"


async def _process(
    pipeline: Pipeline, worker: WorkerRecord, stage: StageRuntime, entry: Entry
) -> None:
    tracker = pipeline._tracker
    clock = pipeline._clock
    item_id = entry.item_id
    value = entry.value
    if entry.attempt > 1:
        stage.retrying -= 1

    skip_if = stage.stage.skip_if
    if skip_if is not None:
        try:
            skip = skip_if(value)
            if inspect.isawaitable(skip):
                skip = await skip
        except BaseException as exc:
            if isinstance(exc, asyncio.CancelledError) and _cancelled_from_outside():
                raise
            # A raising skip_if fails the item with its error rather than losing it.
            now = clock()
            await _fail(pipeline, worker, stage, entry, exc, now, now, 1)
            return
        if skip:
            stage.skipped += 1
            if tracker is not None:
                tracker._record_status(item_id, h.SKIPPED, worker.binding, entry.attempt, clock())
            await _hand_on(pipeline, worker, stage, entry, value, skipped=True)
            return

    started = clock()
    worker.status = "busy"
    worker.since = started
    stage.in_progress += 1
    if tracker is not None:
        tracker._record_status(item_id, h.IN_PROGRESS, worker.binding, entry.attempt, started)
    try:
        result = await _run_tasks(pipeline, worker, stage, entry, value)
    except _StageAttemptFailed as failure:
        finished = clock()
        stage.in_progress -= 1
        _settle(worker, stage, started, finished)
        if stage.per_stage and entry.attempt < stage.stage.stage_attempts:
            entry.attempt += 1
            stage.retrying += 1
            if tracker is not None:
                tracker._record_status(
                    item_id, h.RETRYING, worker.binding, entry.attempt, finished, failure.error
                )
            # Forced: the item already holds a place; it must never wait behind itself.
            stage.queue.put_nowait(entry, entry.priority, force=True)
            return
        await _fail(
            pipeline, worker, stage, entry, failure.error, started, finished, failure.attempts
        )
        return
    finished = clock()
    stage.in_progress -= 1
    stage.completed += 1
    worker.processed += 1
    worker.recent.append(item_id)
    _settle(worker, stage, started, finished)
    if tracker is not None:
        tracker._record_status(item_id, h.COMPLETED, worker.binding, entry.attempt, finished)
    if stage.stage.on_success is not None:
        await pipeline._call_hook(
            stage.stage.on_success,
            "on_success",
            stage.name,
            item_id,
            result,
            {"stage": stage.name, "worker": worker.name, "attempt": entry.attempt},
        )
    await _hand_on(pipeline, worker, stage, entry, result, skipped=False)


def _settle(worker: WorkerRecord, stage: StageRuntime, started: float, finished: float) -> None:
    elapsed = finished - started
    worker.total_time += elapsed
    worker.last_active = finished
    worker.status = "idle"
    worker.since = None
    worker.current_task = None
    stage.task_seconds += elapsed


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
    worker.status = "idle"
    worker.since = None
    worker.current_task = None
    tracker = pipeline._tracker
    if tracker is not None:
        tracker._record_status(entry.item_id, h.FAILED, worker.binding, attempts, finished, error)
    await pipeline._item_failed(entry, stage, error, attempts, finished)
    if stage.stage.on_failure is not None:
        await pipeline._call_hook(
            stage.stage.on_failure,
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
        await pipeline._item_done(entry, value, skipped)
        return
    entry.value = value
    entry.attempt = 1
    queue = following.queue
    # Backpressure: wait for room downstream, unless a pause or shutdown holds this
    # worker; then the item goes in over capacity so in-flight work can settle.
    while queue.full() and not worker.held:
        await queue.wait_for_room()
    tracker = pipeline._tracker
    if tracker is not None:
        tracker._record_status(
            entry.item_id, h.QUEUED, following.queued_binding, 1, pipeline._clock()
        )
    queue.put_nowait(entry, entry.priority, force=True)


class _StageAttemptFailed(Exception):
    def __init__(self, error: BaseException, attempts: int) -> None:
        self.error = error
        self.attempts = attempts


def _cancelled_from_outside() -> bool:
    """True when the CancelledError is this worker being cancelled, not a task's own."""
    task = asyncio.current_task()
    return task is None or task.cancelling() > 0


async def _run_tasks(
    pipeline: Pipeline, worker: WorkerRecord, stage: StageRuntime, entry: Entry, value: Any
) -> Any:
    tracker = pipeline._tracker
    clock = pipeline._clock
    binding = worker.binding
    item_id = entry.item_id
    config = stage.stage
    unpack = config.unpack_args
    per_stage = stage.per_stage
    max_attempts = 1 if per_stage else config.task_attempts
    names = stage.task_names
    for index, task in enumerate(stage.tasks):
        semaphore = stage.semaphores[index]
        attempt = 1
        while True:
            began = clock()
            if tracker is not None:
                tracker._record_task(
                    item_id, h.TASK_START, binding, index, names[index], attempt, began
                )
            try:
                if semaphore is None:
                    output = await _call(task, value, unpack, names[index])
                else:
                    async with semaphore:
                        output = await _call(task, value, unpack, names[index])
            except BaseException as exc:
                if isinstance(exc, asyncio.CancelledError) and _cancelled_from_outside():
                    raise
                ended = clock()
                shown_attempt = entry.attempt if per_stage else attempt
                will_retry = attempt < max_attempts or (
                    per_stage and entry.attempt < config.stage_attempts
                )
                if tracker is not None:
                    tracker._record_task(
                        item_id,
                        h.TASK_RETRY if will_retry else h.TASK_FAIL,
                        binding,
                        index,
                        names[index],
                        shown_attempt,
                        ended,
                        ended - began,
                        exc,
                    )
                if attempt < max_attempts:
                    stage.task_retries += 1
                    attempt += 1
                    if config.task_wait_seconds:
                        await pipeline._sleep(config.task_wait_seconds)
                    continue
                if per_stage and will_retry:
                    stage.task_retries += 1
                raise _StageAttemptFailed(exc, shown_attempt) from None
            if tracker is not None:
                ended = clock()
                tracker._record_task(
                    item_id,
                    h.TASK_COMPLETE,
                    binding,
                    index,
                    names[index],
                    attempt,
                    ended,
                    ended - began,
                )
            value = output
            break
    return value


async def _call(task: Any, value: Any, unpack: bool, name: str) -> Any:
    if unpack:
        if isinstance(value, dict):
            awaitable = task(**value)
        elif isinstance(value, tuple | list):
            awaitable = task(*value)
        else:
            awaitable = task(value)
    else:
        awaitable = task(value)
    try:
        return await awaitable
    except TypeError:
        if not inspect.isawaitable(awaitable):
            raise TypeError(
                f"task {name!r} returned {type(awaitable).__name__}, not an awaitable; "
                f"define it with 'async def'"
            ) from None
        raise
