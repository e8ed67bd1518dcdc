"""StatusTracker: every item's status and history, error summaries, and event callbacks.

The pipeline records each event here synchronously and cheaply: a couple of float64
words per event in the item's log (see `antflow._history`), whose array the pipeline
keeps on the item so no lookup is needed. Event objects are built only when someone
listens; user callbacks then run in event order on one dispatcher task.
"""

from __future__ import annotations

import os
import traceback
from collections import Counter, deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from itertools import chain, repeat
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from antflow import _history as h
from antflow._delivery import Delivery, Listener
from antflow._history import ErrorNote
from antflow._safe import safe_str
from antflow.tail import EventTail
from antflow.types import (
    STATUSES,
    ErrorSummary,
    FailedItem,
    StatusEvent,
    StatusType,
    TaskEvent,
)

if TYPE_CHECKING:
    from array import array

    from antflow.types import TaskUsage

StatusCallback = Callable[[StatusEvent], Awaitable[None] | None]
TaskCallback = Callable[[TaskEvent], Awaitable[None] | None]


class _Callback:
    """A callback attribute; assigning it refreshes the tracker's "anyone listening" flag,
    so the per-event path tests one boolean instead of five attributes."""

    def __set_name__(self, owner: type, name: str) -> None:
        self.slot = f"_{name}"

    def __get__(self, tracker: StatusTracker | None, owner: type | None = None) -> Any:
        return self if tracker is None else getattr(tracker, self.slot)

    def __set__(self, tracker: StatusTracker, callback: Callable[[Any], Any] | None) -> None:
        if callback is not None and not callable(callback):
            raise TypeError(f"{self.slot[1:]} must be callable or None, got {callback!r}")
        setattr(tracker, self.slot, callback)
        tracker._refresh_live()


@dataclass(frozen=True, slots=True)
class EmitterBinding:
    """What one worker (or one stage's queue) passes with every event it records."""

    stage: str
    worker: str | None
    base: int
    """Code bits of the stage and worker."""
    task_codes: tuple[int, ...]
    """`base` plus each task's id bits."""
    task_names: tuple[str, ...]
    next_queued: EmitterBinding | None = None
    """The next stage's queue binding, for hand-offs."""
    merge_handoff: bool = False
    """Whether a hand-off can share the finish record (the successor is registered)."""
    begin_code: int = 0
    """The begin record's code for a first attempt (precomputed: the common case)."""
    finish_code: int = 0
    """The finish record's code for a first attempt of the last task."""
    handoff_code: int = 0
    """As `finish_code`, for a finish merged with the hand-off."""
    last_task: int = 0


class StatusTracker:
    """Tracks the status and history of every item that flows through a pipeline.

    Pass it as ``Pipeline(..., status_tracker=tracker)``. Query it during or after a run;
    give it callbacks (sync or async; they can also be assigned after construction) to
    react to events as they happen. Callbacks run in event order, off the workers' path.

    Args:
        on_status_change: Called with each `StatusEvent`.
        on_task_start: Called with each `TaskEvent` of type ``start``.
        on_task_complete: ... ``complete``.
        on_task_retry: ... ``retry`` (the attempt failed; another follows).
        on_task_fail: ... ``fail`` (the last attempt failed).
        max_history_items: Keep the histories of at most this many finished items (oldest
            evicted first). Counts stay exact, and the histories of failed items and of
            items still in flight are never evicted. None keeps every history.
    """

    on_status_change = _Callback()
    on_task_start = _Callback()
    on_task_complete = _Callback()
    on_task_retry = _Callback()
    on_task_fail = _Callback()
    # The callbacks' own storage, written through the descriptors above.
    _on_status_change: StatusCallback | None
    _on_task_start: TaskCallback | None
    _on_task_complete: TaskCallback | None
    _on_task_retry: TaskCallback | None
    _on_task_fail: TaskCallback | None

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
        self._delivery = Delivery()
        self._live = False
        # None while nobody watches (one test per event); else the tails' buffer, or the
        # journal when only a recorder follows.
        self._recent: Any = None
        self._tail_buffer: deque[h.RawRecord] | None = None
        """The newest raw records, shared by every open tail (each keeps its own cursor)."""
        self._journal: Any = None
        """A list while a recorder follows (typed Any: the per-event identity test with it
        must not narrow its operand): every record since its last take, flat (item id,
        code, time, item id, ...), beside `_journal_errors` (record index -> the
        exception it carried). Three list appends a record: a tuple per record cost the
        run 28 % of its throughput (allocation, then the garbage collector scanning
        them), float arrays twice what lists do, reading records back from the items'
        logs at each take more still (benchmarks/record.py)."""
        self._journal_errors: dict[int, BaseException] = {}
        """The exception each record that carried one had, by the record's number."""
        self._journal_plain_ids = True
        """Every item id the journal has seen is an int, str, bool or None, which a recorder
        writes as it is (looked at once per item as it is fed: a look at every record's
        id at each take, 20 ns a record, cost a recording about 1.5 % of the no-op
        benchmark's throughput)."""
        self._journal_base = 0
        """The number of the journal's first record (records taken by every reader go)."""
        self._journal_readers: dict[int, int] = {}
        """Each recorder's next record number."""
        self._journal_readers_made = 0
        self._tail_paused = False
        self._error_sinks: list[list[ErrorNote]] = []
        """Lossless buffers of new attempt errors, one per recorder or run stream."""
        self._recent_events = 0
        """Events recorded since the first tail opened (a record may stand for several)."""
        self._tails: list[EventTail] = []
        self.on_status_change = on_status_change
        self.on_task_start = on_task_start
        self.on_task_complete = on_task_complete
        self.on_task_retry = on_task_retry
        self.on_task_fail = on_task_fail
        self.max_history_items = max_history_items

        self._logs: dict[Any, array[float]] = {}
        self._errors: dict[Any, list[h.AttemptError]] = {}
        self._usage: dict[Any, TaskUsage] = {}
        """Per item, what its tasks reported with `set_task_usage` (only items that did)."""
        self._usage_sinks: list[list[Any]] = []
        """Ids of items that reported usage since each reader last took them (recorders)."""
        # Items per status kind; the last slot (index -1) collects "not seen yet", so a
        # new log's first move needs no special case.
        self._counts = [0] * (h.DONE_EARLIER + 2)
        self._failed: dict[Any, FailedItem] = {}
        self._failed_by_type: Counter[str] = Counter()
        self._failed_by_stage: Counter[str] = Counter()
        self._finished_order: deque[Any] = deque()
        self._evicted = 0
        self._failure_changes = 0
        self._stages = h.NameTable("stage", h.STAGE_MASK)
        self._workers = h.NameTable("worker", h.WORKER_MASK)
        self._tasks = h.NameTable("task", h.TASK_MASK)
        self._successors = h.Successors()

    # ------------------------------------------------------------------ queries

    def get_status(self, item_id: Any) -> StatusEvent | None:
        """The item's most recent status event, or None if the tracker has not seen it."""
        log = self._logs.get(item_id)
        if log is None or log[0] < 0:
            return None
        return self._latest_status(item_id, log)

    def get_by_status(self, status: StatusType) -> list[StatusEvent]:
        """The latest status event of every item whose current status is `status`."""
        kind = h.KIND_OF.get(status)
        if kind is None:
            raise ValueError(f"unknown status {status!r}; expected one of {', '.join(STATUSES)}")
        return [
            self._latest_status(item_id, log)
            for item_id, log in self._logs.items()
            if log[0] == kind
        ]

    def get_stats(self) -> dict[str, int]:
        """How many items are in each status right now (every status, zeros included)."""
        counts = self._counts
        return {status: counts[kind] for status, kind in h.KIND_OF.items()}

    def get_history(self, item_id: Any) -> list[StatusEvent]:
        """Every status event of the item, oldest first ([] if unknown or evicted)."""
        return [e for e in self.get_timeline(item_id) if isinstance(e, StatusEvent)]

    def get_task_events(self, item_id: Any) -> list[TaskEvent]:
        """Every task event of the item (start/complete/retry/fail), oldest first."""
        return [e for e in self.get_timeline(item_id) if isinstance(e, TaskEvent)]

    def get_timeline(self, item_id: Any) -> list[StatusEvent | TaskEvent]:
        """The item's whole story: status and task events merged, oldest first.

        Task events of failed attempts carry the exception; `get_errors` has the
        formatted tracebacks.
        """
        log = self._logs.get(item_id)
        return [] if log is None else self._decode(item_id, log)

    def get_errors(self, item_id: Any) -> list[h.AttemptError]:
        """The error (with its formatted traceback) of each failed attempt of the item.

        A failed attempt's error appears once, although both its task event and the
        status event after it carry the same exception.
        """
        unique: dict[int, h.AttemptError] = {}
        for error in self._errors.get(item_id, ()):
            unique.setdefault(id(error.exception), error)
        return list(unique.values())

    def get_usage(self, item_id: Any) -> TaskUsage | None:
        """What the item's tasks reported with `set_task_usage`, added up over all its
        stages and attempts, or None if they reported nothing (or its history was
        evicted)."""
        return self._usage.get(item_id)

    def has_history(self, item_id: Any) -> bool:
        """True if the tracker holds the item's history (seen, and not evicted)."""
        return item_id in self._logs

    @property
    def evicted_items(self) -> int:
        """How many finished items' histories bounded mode has dropped so far."""
        return self._evicted

    @property
    def items_in_history(self) -> int:
        """How many items' histories are held right now."""
        return len(self._logs)

    @property
    def failure_changes(self) -> int:
        """Counts every change to the failed items, so a monitor re-reads them only then."""
        return self._failure_changes

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
        self._delivery.listeners.append(listener)
        self._refresh_live()

        def remove() -> None:
            if listener in self._delivery.listeners:
                self._delivery.listeners.remove(listener)
            self._refresh_live()

        return remove

    def open_tail(self, capacity: int = 1_000) -> EventTail:
        """The newest events, for a monitor to drain once per frame.

        Cheaper than a listener: events are built only when drained, and at most
        `capacity` of them per drain (the rest are counted as dropped). The user's
        callbacks are untouched.
        """
        buffer = self._tail_buffer
        if buffer is None or (buffer.maxlen or 0) < capacity:
            self._tail_buffer = deque(buffer or (), maxlen=capacity)
            self._retap()
        tail = EventTail(self, capacity)
        self._tails.append(tail)
        return tail

    def _close_tail(self, tail: EventTail) -> None:
        if tail in self._tails:
            self._tails.remove(tail)
        if not self._tails:
            self._tail_buffer = None
            self._retap()

    def _open_journal(self) -> int:
        """Start keeping every record for a reader (a recorder, through
        `antflow.probe.Journal`): returns its reader number for `_take_journal`. Several
        readers share one journal, each with its own cursor."""
        if self._journal is None:
            self._journal = []
            self._journal_base = 0
            self._journal_errors = {}
            # Items fed before: their ids were never looked at.
            self._journal_plain_ids = set(map(type, self._logs)) <= _PLAIN_IDS
            self._retap()
        self._journal_readers_made += 1
        reader = self._journal_readers_made
        self._journal_readers[reader] = self._journal_base + len(self._journal) // 3
        return reader

    def _close_journal(self, reader: int) -> None:
        self._journal_readers.pop(reader, None)
        if not self._journal_readers:
            self._journal = None
            self._retap()
        else:
            self._trim_journal()

    def _take_journal(self, reader: int) -> tuple[list[Any], dict[int, BaseException]]:
        """The records this reader has not taken yet, flat (item id, code, time, ...), and
        the exception of each record (by its index among them) that carried one."""
        journal = self._journal
        position = self._journal_readers.get(reader)
        if journal is None or position is None:
            return [], {}
        base = self._journal_base
        end = base + len(journal) // 3
        if position >= end:
            return [], {}
        errors = {
            index - position: error
            for index, error in self._journal_errors.items()
            if index >= position
        }
        self._journal_readers[reader] = end
        if len(self._journal_readers) == 1:
            # The only reader takes it all: the list changes hands, nothing is copied.
            fresh: list[Any] = []
            self._journal = fresh
            if self._recent is journal:
                self._recent = fresh
            self._journal_base = end
            self._journal_errors = {}
            return journal, errors
        taken = journal[3 * (position - base) :]
        self._trim_journal()
        return taken, errors

    def _journal_note(self, item_id: Any, error: BaseException | None) -> None:
        """What a journaled record carries beside its three words (rare): its error, or
        an id of a type a recorder must convert (`_journal_plain_ids`)."""
        journal = self._journal
        if journal is None:
            return
        if error is not None:
            self._journal_errors[self._journal_base + len(journal) // 3] = error
        if type(item_id) not in _PLAIN_IDS:
            self._journal_plain_ids = False

    def _trim_journal(self) -> None:
        """Forget what every reader has taken."""
        journal = self._journal
        if journal is None or not self._journal_readers:
            return
        oldest = min(self._journal_readers.values())
        drop = oldest - self._journal_base
        if drop <= 0:
            return
        # The same list object: `_recent` may be it.
        del journal[: 3 * drop]
        self._journal_base = oldest
        if self._journal_errors:
            self._journal_errors = {i: e for i, e in self._journal_errors.items() if i >= oldest}

    def _open_error_sink(self) -> list[ErrorNote]:
        """A lossless buffer of every new attempt error (errors are rare: no cost per event)."""
        errors: list[ErrorNote] = []
        self._error_sinks.append(errors)
        return errors

    def _close_error_sink(self, errors: list[ErrorNote]) -> None:
        self._error_sinks = [s for s in self._error_sinks if s is not errors]

    def _retap(self) -> None:
        # With no tail, `_recent` is the journal itself: the per-event code tells the two
        # cases apart with one identity test.
        if self._tail_buffer is not None:
            self._recent = _PAUSED if self._tail_paused else self._tail_buffer
        else:
            self._recent = self._journal

    def _pause_tails(self, paused: bool) -> None:
        """Stop (or resume) keeping records for tails, still counting the events: under a
        flood a monitor shows the newest events only, and need not pay for every one."""
        self._tail_paused = paused
        self._retap()

    def _decode_raw(self, records: list[h.RawRecord]) -> list[StatusEvent | TaskEvent]:
        return h.decode_raw(records, (self._stages, self._workers, self._tasks), self._successors)

    def _refresh_live(self) -> None:
        slots = (
            "_on_status_change",
            "_on_task_start",
            "_on_task_complete",
            "_on_task_retry",
            "_on_task_fail",
        )
        self._live = bool(self._delivery.listeners) or any(
            getattr(self, slot, None) is not None for slot in slots
        )

    async def _drain(self) -> None:
        await self._delivery.drain()

    # ------------------------------------------------------------------ recording
    #
    # The engine calls these once per event. Each inlines its log update: a shared
    # helper cost a third of the tracker's time per event (measured with cProfile).

    def _bind(
        self,
        stage: str,
        worker: str | None,
        task_names: tuple[str, ...],
        next_queued: EmitterBinding | None = None,
        per_stage: bool = False,
    ) -> EmitterBinding:
        stage_id = self._stages.id_of(stage)
        base = h.base_code(stage_id, self._workers.id_of(worker))
        merge = next_queued is not None and self._successors.register(
            stage_id, self._stages.id_of(next_queued.stage)
        )
        task_codes = tuple(base | self._tasks.id_of(name) << h.TASK_SHIFT for name in task_names)
        return EmitterBinding(
            stage=stage,
            worker=worker,
            base=base,
            task_codes=task_codes,
            task_names=task_names,
            next_queued=next_queued,
            merge_handoff=merge,
            begin_code=(h.BEGIN_PER_STAGE if per_stage else h.BEGIN_PER_TASK)
            | task_codes[0]
            | h.ATTEMPT_ONE,
            finish_code=h.FINISH | task_codes[-1] | h.ATTEMPT_ONE,
            handoff_code=h.FINISH_HANDOFF | task_codes[-1] | h.ATTEMPT_ONE,
            last_task=len(task_codes) - 1,
        )

    def _open(self, item_id: Any, binding: EmitterBinding, timestamp: float) -> array[float]:
        """Record that the item is queued at the binding's stage; return its log."""
        log = self._logs.get(item_id)
        if log is None:
            log = self._logs[item_id] = h.new_log()
        self._record_status(log, item_id, h.QUEUED, binding, 1, timestamp)
        return log

    def _record_done_earlier(
        self, item_ids: list[Any], binding: EmitterBinding, timestamp: float
    ) -> None:
        """Record that a resumed run counted these items done earlier (`binding`: the
        last stage's queue), all at `timestamp`. They are finished at once: a bounded
        tracker counts them and tells its tails, journal and callbacks, but keeps no
        history of them. In bulk: a resume may count a million items before it feeds
        its first."""
        logs = self._logs
        bounded = self.max_history_items is not None
        if not bounded or not logs.keys().isdisjoint(item_ids):
            for item_id in item_ids:
                log = logs.get(item_id)
                if log is None:
                    log = logs[item_id] = h.new_log()
                self._record_status(log, item_id, h.DONE_EARLIER, binding, 1, timestamp)
                if bounded:
                    self._item_finished(item_id)
            return
        count = len(item_ids)
        counts = self._counts
        counts[-1] -= count  # from "not seen", as a new log's first move
        counts[h.DONE_EARLIER] += count
        self._evicted += count
        code = h.DONE_EARLIER | binding.base | h.ATTEMPT_ONE
        recent = self._recent
        if recent is not None:
            journal = self._journal
            if journal is not None:
                journal.extend(chain.from_iterable(zip(item_ids, repeat(code), repeat(timestamp))))
            if recent is not journal:
                if recent is not _PAUSED:
                    recent.extend((item_id, code, timestamp, None, None) for item_id in item_ids)
                self._recent_events += count
        if self._live:
            for item_id in item_ids:
                self._delivery.send(
                    self._on_status_change,
                    _status_event(item_id, h.DONE_EARLIER, binding, 1, timestamp, None),
                )

    def _record_status(
        self,
        log: array[float],
        item_id: Any,
        kind: int,
        binding: EmitterBinding,
        attempt: int,
        timestamp: float,
        error: BaseException | None = None,
    ) -> None:
        """Record a queued, failed, retrying or skipped event."""
        previous = int(log[0])
        counts = self._counts
        counts[previous] -= 1
        counts[kind] += 1
        log[0] = kind
        if previous == h.FAILED and kind != h.FAILED:
            self._forget_failure(item_id)
        position = len(log)
        code = kind | binding.base | (h.ATTEMPT_ONE if attempt == 1 else h.attempt_bits(attempt))
        log.append(code)
        log.append(timestamp)
        recent = self._recent
        if recent is not None:
            if self._journal is recent:
                # Only a recorder follows: three appends, no tuple (see _journal).
                if error is not None or type(item_id) not in _PLAIN_IDS:
                    self._journal_note(item_id, error)
                recent.append(item_id)
                recent.append(code)
                recent.append(timestamp)
            else:
                journal = self._journal
                if journal is not None:
                    if error is not None or type(item_id) not in _PLAIN_IDS:
                        self._journal_note(item_id, error)
                    journal.append(item_id)
                    journal.append(code)
                    journal.append(timestamp)
                if recent is not _PAUSED:
                    recent.append((item_id, code, timestamp, None, error))
                self._recent_events += 1
        if error is not None:
            self._keep_error(item_id, position, error, code, timestamp)
        if kind == h.FAILED:
            self._note_failure(item_id, binding.stage, attempt, timestamp, error)
        if self._live:
            self._delivery.send(
                self._on_status_change,
                _status_event(item_id, kind, binding, attempt, timestamp, error),
            )

    def _record_begin(
        self,
        log: array[float],
        item_id: Any,
        binding: EmitterBinding,
        attempt: int,
        per_stage: bool,
        timestamp: float,
    ) -> None:
        """Record in_progress and the start of the stage's first task."""
        counts = self._counts
        counts[int(log[0])] -= 1
        counts[h.IN_PROGRESS] += 1
        log[0] = h.IN_PROGRESS
        code = (
            binding.begin_code
            if attempt == 1
            else (h.BEGIN_PER_STAGE | binding.task_codes[0] | h.attempt_bits(attempt))
        )
        log.append(code)
        log.append(timestamp)
        recent = self._recent
        if recent is not None:
            if self._journal is recent:
                # Only a recorder follows: three appends, no tuple (see _journal).
                recent.append(item_id)
                recent.append(code)
                recent.append(timestamp)
            else:
                journal = self._journal
                if journal is not None:
                    journal.append(item_id)
                    journal.append(code)
                    journal.append(timestamp)
                if recent is not _PAUSED:
                    recent.append((item_id, code, timestamp, None, None))
                self._recent_events += 2
        if self._live:
            delivery = self._delivery
            delivery.send(
                self._on_status_change,
                _status_event(item_id, h.IN_PROGRESS, binding, attempt, timestamp, None),
            )
            first_attempt = attempt if per_stage else 1
            delivery.send(
                self._on_task_start,
                _task_event(item_id, h.TASK_START, binding, 0, first_attempt, timestamp),
            )

    def _record_finish(
        self,
        log: array[float],
        item_id: Any,
        binding: EmitterBinding,
        task_index: int,
        attempt: int,
        timestamp: float,
        duration: float,
        handoff: bool,
    ) -> None:
        """Record the last task's completion and the stage's, and with `handoff`, the
        item's arrival in the next stage's queue at the same moment."""
        counts = self._counts
        counts[int(log[0])] -= 1
        merged = handoff and binding.merge_handoff
        if merged:
            counts[h.QUEUED] += 1
            log[0] = h.QUEUED
        else:
            counts[h.COMPLETED] += 1
            log[0] = h.COMPLETED
        if attempt == 1 and task_index == binding.last_task:
            code = binding.handoff_code if merged else binding.finish_code
        else:
            code = (
                (h.FINISH_HANDOFF if merged else h.FINISH)
                | binding.task_codes[task_index]
                | h.attempt_bits(attempt)
            )
        log.append(code)
        log.append(timestamp)
        recent = self._recent
        if recent is not None:
            if self._journal is recent:
                # Only a recorder follows: three appends, no tuple (see _journal).
                recent.append(item_id)
                recent.append(code)
                recent.append(timestamp)
            else:
                journal = self._journal
                if journal is not None:
                    journal.append(item_id)
                    journal.append(code)
                    journal.append(timestamp)
                if recent is not _PAUSED:
                    recent.append((item_id, code, timestamp, duration, None))
                self._recent_events += 3 if merged else 2
        if self._live:
            delivery = self._delivery
            delivery.send(
                self._on_task_complete,
                _task_event(
                    item_id, h.TASK_COMPLETE, binding, task_index, attempt, timestamp, duration
                ),
            )
            delivery.send(
                self._on_status_change,
                _status_event(item_id, h.COMPLETED, binding, attempt, timestamp, None),
            )
            if merged:
                delivery.send(
                    self._on_status_change,
                    _status_event(item_id, h.QUEUED, binding.next_queued, 1, timestamp, None),  # type: ignore[arg-type]
                )
        if handoff and not merged:
            self._record_status(log, item_id, h.QUEUED, binding.next_queued, 1, timestamp)  # type: ignore[arg-type]

    def _record_task(
        self,
        log: array[float],
        item_id: Any,
        kind: int,
        binding: EmitterBinding,
        task_index: int,
        attempt: int,
        timestamp: float,
        duration: float | None = None,
        error: BaseException | None = None,
    ) -> None:
        """Record a task event that no status change accompanies."""
        position = len(log)
        code = kind | binding.task_codes[task_index] | h.attempt_bits(attempt)
        log.append(code)
        log.append(timestamp)
        recent = self._recent
        if recent is not None:
            if self._journal is recent:
                # Only a recorder follows: three appends, no tuple (see _journal).
                if error is not None:
                    self._journal_note(item_id, error)
                recent.append(item_id)
                recent.append(code)
                recent.append(timestamp)
            else:
                journal = self._journal
                if journal is not None:
                    if error is not None:
                        self._journal_note(item_id, error)
                    journal.append(item_id)
                    journal.append(code)
                    journal.append(timestamp)
                if recent is not _PAUSED:
                    recent.append((item_id, code, timestamp, duration, error))
                self._recent_events += 1
        if error is not None:
            self._keep_error(item_id, position, error, code, timestamp)
        if self._live:
            callbacks = (
                self._on_task_start,
                self._on_task_complete,
                self._on_task_retry,
                self._on_task_fail,
            )
            self._delivery.send(
                callbacks[kind - h.TASK_START],
                _task_event(
                    item_id, kind, binding, task_index, attempt, timestamp, duration, error
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
            if log is not None and log[0] in _DONE:
                del self._logs[oldest]
                self._errors.pop(oldest, None)
                self._usage.pop(oldest, None)
                self._evicted += 1

    def _add_usage(self, item_id: Any, usage: TaskUsage) -> None:
        known = self._usage.get(item_id)
        self._usage[item_id] = usage if known is None else known.plus(usage)
        for sink in self._usage_sinks:
            sink.append(item_id)

    def _open_usage_sink(self) -> list[Any]:
        """A lossless list of the ids of items that report usage, as they report (one
        append per `set_task_usage` call, none when nothing listens)."""
        ids: list[Any] = []
        self._usage_sinks = [*self._usage_sinks, ids]
        return ids

    def _close_usage_sink(self, ids: list[Any]) -> None:
        self._usage_sinks = [sink for sink in self._usage_sinks if sink is not ids]

    def _keep_error(
        self, item_id: Any, position: int, error: BaseException, code: int, timestamp: float
    ) -> None:
        errors = self._errors.setdefault(item_id, [])
        if errors and errors[-1].exception is error:
            # The status event after a task's last failure carries the same exception.
            text = errors[-1].traceback
        else:
            text = _format_error(error)
            if error.__traceback__ is not None:
                # Release the failed attempt's locals (often the item's value); the
                # formatted text keeps what a person needs.
                traceback.clear_frames(error.__traceback__)
            if self._error_sinks:
                note = ErrorNote(item_id, error, text, code, timestamp)
                for sink in self._error_sinks:
                    sink.append(note)
        errors.append(h.AttemptError(position, error, text))

    def _note_failure(
        self,
        item_id: Any,
        stage: str,
        attempts: int,
        timestamp: float,
        error: BaseException | None,
    ) -> None:
        errors = self._errors.get(item_id)
        error_type = type(error).__name__ if error is not None else "Unknown"
        self._failed[item_id] = FailedItem(
            item_id=item_id,
            error="" if error is None else safe_str(error),
            error_type=error_type,
            stage=stage,
            attempts=attempts,
            timestamp=timestamp,
            exception=error,
            traceback=errors[-1].traceback if errors else "",
        )
        self._failed_by_type[error_type] += 1
        self._failed_by_stage[stage] += 1
        self._failure_changes += 1

    def _forget_failure(self, item_id: Any) -> None:
        failed = self._failed.pop(item_id, None)
        if failed is None:
            return
        self._failure_changes += 1
        for counter, key in (
            (self._failed_by_type, failed.error_type),
            (self._failed_by_stage, failed.stage),
        ):
            counter[key] -= 1
            if counter[key] <= 0:
                del counter[key]

    def _latest_status(self, item_id: Any, log: array[float]) -> StatusEvent:
        statuses = [e for e in self._decode(item_id, log) if isinstance(e, StatusEvent)]
        return statuses[-1]

    def _decode(self, item_id: Any, log: array[float]) -> list[StatusEvent | TaskEvent]:
        names = (self._stages, self._workers, self._tasks)
        return h.decode(item_id, log, self._errors.get(item_id), names, self._successors)


_DONE: Final = (h.COMPLETED, h.SKIPPED, h.DONE_EARLIER)
"""Statuses of items that left the pipeline for good (their histories may be evicted)."""
_PLAIN_IDS: Final = frozenset({int, str, bool, type(None)})
"""Item id types a recording writes as they are (a float may be a NaN)."""
_PAUSED: Final = object()
"""`StatusTracker._recent` while tails are paused: events are counted, not kept."""


_ENGINE_DIR = str(Path(__file__).resolve().parent) + os.sep


def _format_error(error: BaseException) -> str:
    """The error's traceback without the engine's own frames (the worker that caught it):
    a user reads where their task failed, not where antflow noticed."""
    try:
        return _engine_frames_left_out(error)
    except Exception as failure:  # a user exception's own attributes (__notes__...) raising
        return (
            f"{type(error).__name__}: {safe_str(error)}\n"
            f"(its traceback could not be formatted: {type(failure).__name__})\n"
        )


def _engine_frames_left_out(error: BaseException) -> str:
    summary = traceback.TracebackException.from_exception(error)
    seen: set[int] = set()
    current: traceback.TracebackException | None = summary
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        frames = [f for f in current.stack if not f.filename.startswith(_ENGINE_DIR)]
        current.stack = traceback.StackSummary.from_list(frames)
        current = current.__cause__ or current.__context__
    return "".join(summary.format())


def _status_event(
    item_id: Any,
    kind: int,
    binding: EmitterBinding,
    attempt: int,
    timestamp: float,
    error: BaseException | None,
) -> StatusEvent:
    return StatusEvent(
        item_id,
        binding.stage,
        h.STATUS_OF[kind],
        binding.worker,
        timestamp,
        h.status_metadata(kind, attempt, error),
    )


def _task_event(
    item_id: Any,
    kind: int,
    binding: EmitterBinding,
    task_index: int,
    attempt: int,
    timestamp: float,
    duration: float | None = None,
    error: BaseException | None = None,
) -> TaskEvent:
    return TaskEvent(
        item_id,
        binding.stage,
        binding.task_names[task_index],
        binding.worker or "",
        h.KIND_NAMES[kind],  # type: ignore[arg-type]
        attempt,
        timestamp,
        error,
        duration,
    )


__all__ = ["ErrorNote", "StatusTracker"]
