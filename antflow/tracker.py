"""StatusTracker: every item's status and history, error summaries, and event callbacks.

The pipeline records each event here synchronously and cheaply (a few int64 words per
event, see `antflow._history`). Event objects are only built when someone listens, and
user callbacks run in event order on one dispatcher task, so a slow callback delays
other callbacks, never the workers (until a backlog builds up: then workers wait for it).
"""

from __future__ import annotations

import asyncio
import logging
import traceback
from collections import Counter, deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Final

from antflow import _history as h
from antflow.types import (
    STATUSES,
    ErrorSummary,
    FailedItem,
    StatusEvent,
    StatusType,
    TaskEvent,
)

logger = logging.getLogger(__name__)

StatusCallback = Callable[[StatusEvent], Awaitable[None] | None]
TaskCallback = Callable[[TaskEvent], Awaitable[None] | None]
Listener = Callable[[StatusEvent | TaskEvent], None]

# Past this many undelivered callback events, workers wait for the dispatcher to catch up,
# so a slow callback costs speed, never unbounded memory.
BACKLOG_LIMIT: Final = 10_000
_LOGGED_FAILURES_PER_CALLBACK: Final = 5


@dataclass(frozen=True, slots=True)
class EmitterBinding:
    """What one worker passes with every event: its names and precomputed code bits."""

    stage: str
    worker: str | None
    base: int
    task_ids: tuple[int, ...]


class StatusTracker:
    """Tracks the status and history of every item that flows through a pipeline.

    Pass it as ``Pipeline(..., status_tracker=tracker)``. Query it during or after a run;
    give it callbacks (sync or async; they can also be assigned after construction) to
    react to events as they happen.

    Args:
        on_status_change: Called with each `StatusEvent`.
        on_task_start: Called with each `TaskEvent` of type ``start``.
        on_task_complete: ... ``complete``.
        on_task_retry: ... ``retry`` (the attempt failed; another follows).
        on_task_fail: ... ``fail`` (the last attempt failed).
        max_history_items: Keep the histories of at most this many finished items (oldest
            evicted first). Counts stay exact and the histories of failed items and of items
            still in flight are never evicted. None keeps every history.
    """

    def __init__(
        self,
        on_status_change: StatusCallback | None = None,
        on_task_start: TaskCallback | None = None,
        on_task_complete: TaskCallback | None = None,
        on_task_retry: TaskCallback | None = None,
        on_task_fail: TaskCallback | None = None,
        *,
        max_history_items: int | None = None,
    ) -> None:
        if max_history_items is not None and (
            isinstance(max_history_items, bool)
            or not isinstance(max_history_items, int)
            or max_history_items < 0
        ):
            raise ValueError(
                f"max_history_items must be None or an int >= 0, got {max_history_items!r}"
            )
        self.on_status_change = on_status_change
        self.on_task_start = on_task_start
        self.on_task_complete = on_task_complete
        self.on_task_retry = on_task_retry
        self.on_task_fail = on_task_fail
        self.max_history_items = max_history_items

        self._logs: dict[Any, Any] = {}
        self._errors: dict[Any, list[h.AttemptError]] = {}
        self._counts = [0] * len(STATUSES)
        self._failed: dict[Any, FailedItem] = {}
        self._failed_by_type: Counter[str] = Counter()
        self._failed_by_stage: Counter[str] = Counter()
        self._finished_order: deque[Any] = deque()
        self._evicted = 0
        self._events_recorded = 0

        self._stages = h.NameTable()
        self._workers = h.NameTable()
        self._tasks = h.NameTable()

        self._listeners: list[Listener] = []
        self._pending: deque[tuple[Callable[[Any], Any], StatusEvent | TaskEvent]] = deque()
        self._dispatcher: asyncio.Task[None] | None = None
        self._idle_waiters: list[asyncio.Future[None]] = []
        self._callback_failures: Counter[str] = Counter()

    # ------------------------------------------------------------------ queries

    def get_status(self, item_id: Any) -> StatusEvent | None:
        """The item's most recent status event, or None if the tracker has not seen it."""
        log = self._logs.get(item_id)
        if log is None:
            return None
        position = h.last_status_position(log)
        if not position:
            return None
        return self._status_event_at(item_id, log, position)

    def get_by_status(self, status: StatusType) -> list[StatusEvent]:
        """The latest status event of every item whose current status is `status`."""
        kind = h.KIND_OF.get(status)
        if kind is None:
            raise ValueError(f"unknown status {status!r}; expected one of {', '.join(STATUSES)}")
        found = []
        for item_id, log in self._logs.items():
            if log[0] == kind:
                found.append(self._status_event_at(item_id, log, h.last_status_position(log)))
        return found

    def get_stats(self) -> dict[str, int]:
        """How many items are in each status right now (every status, zeros included)."""
        return dict(zip(STATUSES, self._counts, strict=True))

    def get_history(self, item_id: Any) -> list[StatusEvent]:
        """Every status event of the item, oldest first ([] if unknown or evicted)."""
        return [e for e in self.get_timeline(item_id) if isinstance(e, StatusEvent)]

    def get_task_events(self, item_id: Any) -> list[TaskEvent]:
        """Every task event of the item (start/complete/retry/fail), oldest first."""
        return [e for e in self.get_timeline(item_id) if isinstance(e, TaskEvent)]

    def get_timeline(self, item_id: Any) -> list[StatusEvent | TaskEvent]:
        """The item's whole story: status and task events merged, oldest first."""
        log = self._logs.get(item_id)
        if log is None:
            return []
        return h.decode(
            item_id, log, self._errors.get(item_id), self._stages, self._workers, self._tasks
        )

    def get_errors(self, item_id: Any) -> list[h.AttemptError]:
        """The error (with its formatted traceback) of each failed attempt of the item."""
        return list(self._errors.get(item_id, ()))

    def has_history(self, item_id: Any) -> bool:
        """True if the tracker holds the item's history (it was seen and not evicted)."""
        return item_id in self._logs

    @property
    def evicted_items(self) -> int:
        """How many finished items' histories bounded mode has dropped."""
        return self._evicted

    @property
    def events_recorded(self) -> int:
        """How many events (status and task) the tracker has recorded in all."""
        return self._events_recorded

    @property
    def items_in_history(self) -> int:
        """How many items' histories are held right now."""
        return len(self._logs)

    def get_failed_items(self) -> list[FailedItem]:
        """Items whose current status is ``failed``, in the order they failed."""
        return list(self._failed.values())

    def get_error_summary(self) -> ErrorSummary:
        """Current failures grouped by exception type and by stage."""
        return ErrorSummary(
            total_failed=len(self._failed),
            errors_by_type=dict(self._failed_by_type),
            errors_by_stage=dict(self._failed_by_stage),
            failed_items=list(self._failed.values()),
        )

    # ------------------------------------------------------------------ listeners

    def add_listener(self, listener: Listener) -> Callable[[], None]:
        """Call `listener(event)` synchronously for every event, beside the callbacks.

        For monitors that chain onto a user's tracker without replacing its callbacks. A
        listener must record and return; one that raises is logged and detached.

        Returns:
            A function that detaches the listener.
        """
        self._listeners.append(listener)

        def remove() -> None:
            if listener in self._listeners:
                self._listeners.remove(listener)

        return remove

    # ------------------------------------------------------------------ recording (engine side)

    def _bind(self, stage: str, worker: str | None, task_names: tuple[str, ...]) -> EmitterBinding:
        return EmitterBinding(
            stage=stage,
            worker=worker,
            base=h.base_code(self._stages.id_of(stage), self._workers.id_of(worker)),
            task_ids=tuple(self._tasks.id_of(name) for name in task_names),
        )

    def _record_status(
        self,
        item_id: Any,
        kind: int,
        binding: EmitterBinding,
        attempt: int,
        timestamp: float,
        error: BaseException | None = None,
    ) -> None:
        logs = self._logs
        log = logs.get(item_id)
        if log is None:
            log = logs[item_id] = h.new_log()
        counts = self._counts
        previous = log[0]
        if previous >= 0:
            counts[previous] -= 1
        counts[kind] += 1
        log[0] = kind
        position = len(log)
        log.append(kind | binding.base | h.attempt_bits(attempt))
        log.append(int(timestamp * h.MICROS))
        self._events_recorded += 1
        if error is not None:
            self._keep_error(item_id, position, error)
        if previous == h.FAILED and kind != h.FAILED:
            self._forget_failure(item_id)
        if kind == h.FAILED:
            self._note_failure(item_id, binding.stage, attempt, timestamp, error)
        callback = self.on_status_change
        if callback is not None or self._listeners:
            self._emit(
                callback,
                StatusEvent(
                    item_id,
                    binding.stage,
                    STATUSES[kind],
                    binding.worker,
                    timestamp,
                    h.status_metadata(kind, attempt, error),
                ),
            )

    def _record_task(
        self,
        item_id: Any,
        kind: int,
        binding: EmitterBinding,
        task_index: int,
        task_name: str,
        attempt: int,
        timestamp: float,
        duration: float | None = None,
        error: BaseException | None = None,
    ) -> None:
        log = self._logs.get(item_id)
        if log is None:
            log = self._logs[item_id] = h.new_log()
        position = len(log)
        log.append(
            kind
            | binding.base
            | h.task_bits(binding.task_ids[task_index])
            | h.attempt_bits(attempt)
        )
        log.append(int(timestamp * h.MICROS))
        self._events_recorded += 1
        if error is not None:
            self._keep_error(item_id, position, error)
        if kind == h.TASK_START:
            callback = self.on_task_start
        elif kind == h.TASK_COMPLETE:
            callback = self.on_task_complete
        elif kind == h.TASK_RETRY:
            callback = self.on_task_retry
        else:
            callback = self.on_task_fail
        if callback is not None or self._listeners:
            self._emit(
                callback,
                TaskEvent(
                    item_id,
                    binding.stage,
                    task_name,
                    binding.worker or "",
                    h.KIND_NAMES[kind],  # type: ignore[arg-type]
                    attempt,
                    timestamp,
                    error,
                    duration,
                ),
            )

    def _item_finished(self, item_id: Any) -> None:
        """The item left the pipeline successfully: its history may be evicted now."""
        limit = self.max_history_items
        if limit is None:
            return
        order = self._finished_order
        order.append(item_id)
        while len(order) > limit:
            oldest = order.popleft()
            log = self._logs.get(oldest)
            # Only evict what is still finished: a failed or re-fed item stays.
            if log is not None and log[0] in (h.COMPLETED, h.SKIPPED):
                del self._logs[oldest]
                self._errors.pop(oldest, None)
                self._evicted += 1

    def _keep_error(self, item_id: Any, position: int, error: BaseException) -> None:
        text = "".join(traceback.format_exception(error))
        if error.__traceback__ is not None:
            # Release the failed attempt's locals (often the item's value); the
            # formatted text above keeps what a person needs.
            traceback.clear_frames(error.__traceback__)
        self._errors.setdefault(item_id, []).append(h.AttemptError(position, error, text))

    def _note_failure(
        self,
        item_id: Any,
        stage: str,
        attempts: int,
        timestamp: float,
        error: BaseException | None,
    ) -> None:
        errors = self._errors.get(item_id)
        text = errors[-1].traceback if errors else ""
        error_type = type(error).__name__ if error is not None else "Unknown"
        self._failed[item_id] = FailedItem(
            item_id=item_id,
            error="" if error is None else str(error),
            error_type=error_type,
            stage=stage,
            attempts=attempts,
            timestamp=timestamp,
            exception=error,
            traceback=text,
        )
        self._failed_by_type[error_type] += 1
        self._failed_by_stage[stage] += 1

    def _forget_failure(self, item_id: Any) -> None:
        failed = self._failed.pop(item_id, None)
        if failed is None:
            return
        for counter, key in (
            (self._failed_by_type, failed.error_type),
            (self._failed_by_stage, failed.stage),
        ):
            counter[key] -= 1
            if counter[key] <= 0:
                del counter[key]

    def _status_event_at(self, item_id: Any, log: Any, position: int) -> StatusEvent:
        errors = self._errors.get(item_id)
        error = None
        if errors:
            for record in reversed(errors):
                if record.position == position:
                    error = record
                    break
        chunk = h.new_log()
        chunk.append(log[position])
        chunk.append(log[position + 1])
        rebuilt = h.decode(
            item_id,
            chunk,
            [h.AttemptError(1, error.exception, error.traceback)] if error else None,
            self._stages,
            self._workers,
            self._tasks,
        )
        event = rebuilt[0]
        assert isinstance(event, StatusEvent)
        return event

    # ------------------------------------------------------------------ delivery

    def _emit(self, callback: Callable[[Any], Any] | None, event: StatusEvent | TaskEvent) -> None:
        if self._listeners:
            for listener in tuple(self._listeners):
                try:
                    listener(event)
                except Exception:
                    logger.exception("StatusTracker listener %r raised; detaching it", listener)
                    if listener in self._listeners:
                        self._listeners.remove(listener)
        if callback is not None:
            self._pending.append((callback, event))
            if self._dispatcher is None:
                self._dispatcher = asyncio.get_running_loop().create_task(
                    self._dispatch(), name="antflow-tracker-callbacks"
                )

    @property
    def _backlog(self) -> int:
        return len(self._pending)

    async def _dispatch(self) -> None:
        pending = self._pending
        try:
            while pending:
                callback, event = pending.popleft()
                try:
                    result = callback(event)
                    if result is not None:
                        await result
                except Exception:
                    self._report_callback_failure(callback)
                if not pending:
                    # Let a burst of events arrive before this task exits.
                    await asyncio.sleep(0)
        finally:
            self._dispatcher = None
            waiters, self._idle_waiters = self._idle_waiters, []
            for waiter in waiters:
                if not waiter.done():
                    waiter.set_result(None)

    def _report_callback_failure(self, callback: Callable[[Any], Any]) -> None:
        name = getattr(callback, "__qualname__", repr(callback))
        self._callback_failures[name] += 1
        count = self._callback_failures[name]
        if count <= _LOGGED_FAILURES_PER_CALLBACK:
            logger.exception("StatusTracker callback %s raised; the pipeline carries on", name)
        if count == _LOGGED_FAILURES_PER_CALLBACK:
            logger.error("StatusTracker callback %s keeps raising; not logging it again", name)

    async def _drain(self) -> None:
        """Wait until every queued callback has run."""
        while self._dispatcher is not None:
            waiter = asyncio.get_running_loop().create_future()
            self._idle_waiters.append(waiter)
            await waiter


__all__ = ["StatusTracker"]
