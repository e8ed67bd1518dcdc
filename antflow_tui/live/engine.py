"""EngineStream: live pipelines as run records, for the live source.

A stand-in with the API of `antflow.runstream.RunStream` (attach, snapshot, events,
take_errors, failures, item, worker_stack), until the engine's own lands: the live source
then swaps it for `RunStream` and this module goes. Everything it returns is a record of
`antflow.runstream.records`; it is where live `Pipeline`, `StatusTracker` and exception
objects become text.

Known gap of the stand-in: error records come from the events it drains (bounded) and the
failed items, so under a flood of events the error of a retried attempt may be missed
(the engine's recorder is lossless).
"""

from __future__ import annotations

import traceback
from collections import OrderedDict
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

import msgspec

from antflow import StatusTracker
from antflow.runstream.records import (
    AwaitStack,
    ErrorRecord,
    Event,
    ItemDetail,
    ItemKey,
    ItemLocationRecord,
    PipelineStarted,
    ReprKey,
    Snapshot,
    StageConfig,
    StageRow,
    WorkerRow,
    item_key,
)
from antflow.types import StatusEvent, TaskEvent
from antflow_tui.live.stacks import await_stack
from antflow_tui.safe_text import value_repr

if TYPE_CHECKING:
    from collections.abc import Iterable

    from antflow import Pipeline
    from antflow.tail import EventTail
    from antflow.types import DashboardSnapshot, FailedItem

NUMBERS_KEPT: Final = 50_000
"""Exceptions whose error record numbers are remembered (so two events carrying one
exception name one record)."""


@dataclass(slots=True)
class Followed:
    """One pipeline the stream follows."""

    pipeline: Pipeline
    tracker: StatusTracker
    tail: EventTail
    started: PipelineStarted
    shared_tail: bool = False
    """Its tracker (and so its tail) also serves another pipeline of the run."""
    failures: tuple[int, list[ErrorRecord]] = (-1, [])
    """(the tracker's failure_changes when read, the failures then)."""

    @property
    def number(self) -> int:
        return self.started.pipeline


def error_type_name(error: BaseException) -> str:
    """The exception's class as a script names it: ``scrape.ParseError``, ``ValueError``."""
    kind = type(error)
    module = kind.__module__
    return kind.__qualname__ if module == "builtins" else f"{module}.{kind.__qualname__}"


class EngineStream:
    """Turns the pipelines of one run into records (see the module docstring).

    Args:
        history: Completed items whose histories a tracker this stream creates keeps.
        event_capacity: Most events `events()` returns per call (newest kept).
        values: Include reprs of item values in item details.
    """

    def __init__(
        self, *, history: int | None = 10_000, event_capacity: int = 1_000, values: bool = True
    ) -> None:
        self.history = history
        self.event_capacity = event_capacity
        self.values = values
        self.followed: list[Followed] = []
        self._numbers: OrderedDict[int, tuple[BaseException, int]] = OrderedDict()
        self._new_errors: list[ErrorRecord] = []
        self._last_error: OrderedDict[tuple[int, Any], int] = OrderedDict()
        self._received = 0
        self._forgotten = 0
        """Numbered exceptions no longer remembered (numbers stay unique)."""

    # ---------------------------------------------------------------- attaching

    def attach(self, pipeline: Pipeline) -> PipelineStarted:
        """Follow `pipeline` (idempotent: a restart returns its existing record)."""
        for followed in self.followed:
            if followed.pipeline is pipeline:
                return followed.started
        tracker = pipeline.status_tracker
        if tracker is None:
            tracker = StatusTracker(max_history_items=self.history)
            pipeline.status_tracker = tracker
        shared = next((f for f in self.followed if f.tracker is tracker), None)
        tail = shared.tail if shared is not None else tracker.open_tail(self.event_capacity)
        snapshot = pipeline.get_dashboard_snapshot()
        started = PipelineStarted(
            pipeline=len(self.followed) + 1,
            at=snapshot.timestamp,
            stages=tuple(
                StageConfig(
                    name=info.name,
                    workers=tuple(info.worker_names),
                    tasks=tuple(info.task_names),
                    retry=info.retry,
                    task_attempts=info.task_attempts,
                    task_wait_seconds=info.task_wait_seconds,
                    stage_attempts=info.stage_attempts,
                    queue_capacity=info.queue_capacity,
                    concurrency_limits=dict(info.task_concurrency_limits),
                    has_skip_if=info.has_skip_if,
                )
                for info in snapshot.stages
            ),
            total_items=snapshot.total_items,
        )
        followed = Followed(pipeline, tracker, tail, started)
        if shared is not None:
            shared.shared_tail = followed.shared_tail = True
        self.followed.append(followed)
        return started

    def pipelines(self) -> list[PipelineStarted]:
        return [followed.started for followed in self.followed]

    def get(self, number: int) -> Followed | None:
        return self.followed[number - 1] if 0 < number <= len(self.followed) else None

    # ---------------------------------------------------------------- records

    def snapshot(self, number: int) -> Snapshot:
        followed = self.followed[number - 1]
        return snapshot_record(number, followed.pipeline.get_dashboard_snapshot())

    def events(self) -> tuple[list[Event], int]:
        """New events of every pipeline, oldest first, at most `event_capacity` per tail;
        and how many were dropped."""
        events: list[Event] = []
        dropped = 0
        seen: set[int] = set()
        for followed in self.followed:
            if id(followed.tail) in seen:
                continue
            seen.add(id(followed.tail))
            batch = followed.tail.drain()
            number = 0 if followed.shared_tail else followed.number
            events.extend(self._event(event, number, followed) for event in batch.events)
            dropped += batch.dropped
            self._received += len(batch.events) + batch.dropped
        if len(seen) > 1:
            events.sort(key=lambda event: event.at)
        return events, dropped

    @property
    def received(self) -> int:
        """Events recorded since the stream began, in all (drained or dropped)."""
        return self._received

    def take_errors(self) -> list[ErrorRecord]:
        """The error records met since the last call."""
        errors, self._new_errors = self._new_errors, []
        return errors

    def failures(self, number: int) -> list[ErrorRecord]:
        """The final error of each item failed now in that pipeline, oldest first: the
        same list object until the failures change."""
        followed = self.followed[number - 1]
        version = followed.tracker.failure_changes
        if followed.failures[0] == version and not followed.shared_tail:
            return followed.failures[1]
        failed_here = set(followed.pipeline.failed_item_ids())
        records = [
            self._failure_record(failure, followed)
            for failure in followed.tracker.get_failed_items()
            if failure.item_id in failed_here
        ]
        if records != followed.failures[1]:
            followed.failures = (version, records)
        else:
            followed.failures = (version, followed.failures[1])
        return followed.failures[1]

    def item(self, number: int, key: ItemKey) -> ItemDetail:
        """One item's story in that pipeline (`number` 0: the newest pipeline knowing it)."""
        if number == 0:
            knowing = self.knowing(key)
            number = knowing[-1] if knowing else len(self.followed)
        followed = self.get(number)
        if followed is None:
            return ItemDetail(pipeline=number, item=key, known=False)
        item_id = self.resolve(followed, key)
        tracker = followed.tracker
        known = tracker.has_history(item_id)
        status = tracker.get_status(item_id)
        timeline = tracker.get_timeline(item_id)
        location = followed.pipeline.locate(item_id)
        events = [self._event(event, number, followed) for event in timeline]
        errors = [
            self._error_record(
                error.exception,
                number,
                key,
                getattr(raiser, "stage", "") or "",
                getattr(raiser, "task_name", None),
                getattr(raiser, "attempt", 1),
                getattr(raiser, "timestamp", 0.0),
                error.traceback,
                fresh=False,
            )
            for error, raiser in _errors_with_raisers(tracker, item_id, timeline)
        ]
        evicted: bool | None = False
        if not known and tracker.evicted_items:
            fed = followed.pipeline.get_stats().items_fed
            # Items without an "id" key are numbered in feed order, so those are certain.
            sequential = isinstance(item_id, int) and not isinstance(item_id, bool)
            evicted = True if sequential and 0 <= item_id < fed else None
        return ItemDetail(
            pipeline=number,
            item=key,
            known=known,
            status=None if status is None else status.status,
            stage=None if status is None else status.stage,
            events=tuple(events),
            errors=tuple(errors),
            location=None
            if location is None
            else ItemLocationRecord(
                stage=location.stage,
                state=location.state,
                worker=location.worker,
                value=value_repr(location.value, long=True) if self.values else None,
            ),
            evicted=evicted,
            retryable=location is not None and location.state == "failed",
            also_in=tuple(n for n in self.knowing(key) if n != number),
        )

    def knowing(self, key: ItemKey) -> list[int]:
        """The numbers of the pipelines that know an item with this id."""
        numbers = []
        for followed in self.followed:
            item_id = self.resolve(followed, key)
            if followed.tracker.has_history(item_id) or followed.pipeline.locate(item_id):
                numbers.append(followed.number)
        return numbers

    def worker_stack(self, number: int, worker: str) -> AwaitStack | None:
        followed = self.get(number)
        if followed is None:
            return None
        task = followed.pipeline.get_worker_tasks().get(worker)
        return None if task is None else await_stack(task)

    def resolve(self, followed: Followed, key: ItemKey) -> Any:
        """The live id an item key stands for (a repr stands for an id that is no JSON
        scalar: found among the items the pipeline holds or failed)."""
        if not isinstance(key, ReprKey):
            return key
        pipeline = followed.pipeline
        candidates: Iterable[Any] = (
            *pipeline.failed_item_ids(),
            *pipeline.get_unfinished_items(),
            *(
                event.item_id
                for status in _STATUSES
                for event in followed.tracker.get_by_status(status)
            ),
        )
        for item_id in candidates:
            if item_key(item_id) == key:
                return item_id
        return key

    # ---------------------------------------------------------------- conversions

    def _event(self, event: StatusEvent | TaskEvent, number: int, followed: Followed) -> Event:
        key = item_key(event.item_id)
        if isinstance(event, TaskEvent):
            error = None
            if event.error is not None:
                error = self._error_record(
                    event.error,
                    number,
                    key,
                    event.stage,
                    event.task_name,
                    event.attempt,
                    event.timestamp,
                    None,
                    tracker=followed.tracker,
                    item_id=event.item_id,
                ).number
                self._last_error[(number, key)] = error
                while len(self._last_error) > NUMBERS_KEPT:
                    self._last_error.popitem(last=False)
            return Event(
                pipeline=number,
                at=event.timestamp,
                item=key,
                kind=event.event_type,
                stage=event.stage,
                worker=event.worker or None,
                task=event.task_name,
                attempt=event.attempt,
                duration=event.duration,
                error=error,
            )
        metadata = event.metadata
        attempt = metadata.get("attempt", metadata.get("attempts", 1))
        error_number = None
        if event.status in ("failed", "retrying"):
            # The status event after a task's failure carries that task's exception.
            error_number = self._last_error.get((number, key))
        return Event(
            pipeline=number,
            at=event.timestamp,
            item=key,
            kind=event.status,
            stage=event.stage or "",
            worker=event.worker,
            attempt=attempt if isinstance(attempt, int) else 1,
            error=error_number,
        )

    def _failure_record(self, failure: FailedItem, followed: Followed) -> ErrorRecord:
        error = failure.exception
        if error is None:
            return ErrorRecord(
                number=0,
                pipeline=followed.number,
                at=failure.timestamp,
                item=item_key(failure.item_id),
                stage=failure.stage,
                task=None,
                attempt=failure.attempts,
                type=failure.error_type,
                message=failure.error,
                traceback=failure.traceback,
            )
        record = self._error_record(
            error,
            followed.number,
            item_key(failure.item_id),
            failure.stage,
            None,
            failure.attempts,
            failure.timestamp,
            failure.traceback,
        )
        # The final error: the failure's own attempt count and time, whatever raised it.
        if record.attempt != failure.attempts:
            record = msgspec.structs.replace(record, attempt=failure.attempts)
        return record

    def _error_record(
        self,
        error: BaseException,
        number: int,
        key: ItemKey,
        stage: str,
        task: str | None,
        attempt: int,
        at: float,
        text: str | None,
        *,
        tracker: StatusTracker | None = None,
        item_id: Any = None,
        fresh: bool = True,
    ) -> ErrorRecord:
        known = self._numbers.get(id(error))
        is_new = known is None or known[0] is not error
        if is_new:
            error_number = len(self._numbers) + 1 + self._forgotten
            self._numbers[id(error)] = (error, error_number)
            while len(self._numbers) > NUMBERS_KEPT:
                self._numbers.popitem(last=False)
                self._forgotten += 1
        else:
            assert known is not None
            error_number = known[1]
        if text is None:
            text = _traceback_text(error, tracker, item_id)
        record = ErrorRecord(
            number=error_number,
            pipeline=number,
            at=at,
            item=key,
            stage=stage,
            task=task,
            attempt=attempt,
            type=error_type_name(error),
            message=str(error),
            traceback=text,
        )
        if is_new and fresh:
            self._new_errors.append(record)
        return record


_STATUSES: Final = ("failed", "unfinished", "queued", "in_progress", "retrying")


def _traceback_text(error: BaseException, tracker: StatusTracker | None, item_id: Any) -> str:
    if tracker is not None:
        for kept in tracker.get_errors(item_id):
            if kept.exception is error:
                return kept.traceback
    return "".join(traceback.format_exception(error))


def _errors_with_raisers(
    tracker: StatusTracker, item_id: Any, timeline: list[StatusEvent | TaskEvent]
) -> list[tuple[Any, TaskEvent | StatusEvent | None]]:
    """Each failed attempt's kept error, with the task event that raised it (or, for a
    `skip_if` error, the status event that failed the item)."""
    raised_by: dict[int, TaskEvent | StatusEvent] = {}
    for event in timeline:
        if isinstance(event, TaskEvent) and event.error is not None:
            raised_by.setdefault(id(event.error), event)
    failed = next(
        (e for e in timeline if isinstance(e, StatusEvent) and e.status == "failed"), None
    )
    return [(error, raised_by.get(id(error), failed)) for error in tracker.get_errors(item_id)]


def snapshot_record(number: int, snapshot: DashboardSnapshot) -> Snapshot:
    """A live `DashboardSnapshot` as a `Snapshot` record."""
    stats = snapshot.pipeline_stats
    stages: list[StageRow] = []
    workers: list[tuple[WorkerRow, ...]] = []
    for info in snapshot.stages:
        counts = stats.stage_stats.get(info.name)
        if counts is None:
            continue
        stages.append(
            StageRow(
                queued=counts.pending_items,
                running=counts.in_progress_items,
                done=counts.completed_items,
                failed=counts.failed_items,
                skipped=counts.skipped_items,
                retrying=counts.retrying_items,
                task_retries=counts.task_retries,
                task_seconds=counts.task_seconds,
                paused=counts.paused,
                next_items=tuple(item_key(i) for i in snapshot.queued_ids.get(info.name, ())),
            )
        )
        rows = []
        for name in info.worker_names:
            state = snapshot.worker_states.get(name)
            metrics = snapshot.worker_metrics.get(name)
            if state is None:
                continue
            rows.append(
                WorkerRow(
                    status=state.status,
                    holding=state.current_item_id is not None,
                    item=item_key(state.current_item_id),
                    since=state.processing_since,
                    task_status=state.current_task,
                    waiting_for=state.waiting_for,
                    paused=state.paused,
                    processed=0 if metrics is None else metrics.items_processed,
                    failed=0 if metrics is None else metrics.items_failed,
                    busy_seconds=0.0 if metrics is None else metrics.total_processing_time,
                    last_active=None if metrics is None else metrics.last_active,
                    recent=()
                    if metrics is None
                    else tuple(item_key(i) for i in metrics.recent_items),
                )
            )
        workers.append(tuple(rows))
    return Snapshot(
        pipeline=number,
        at=snapshot.timestamp,
        running=snapshot.running,
        paused=snapshot.paused,
        stopping=snapshot.stopping,
        fed=stats.items_fed,
        processed=stats.items_processed,
        failed=stats.items_failed,
        in_flight=stats.items_in_flight,
        unfinished=stats.items_unfinished,
        skipped=stats.items_skipped,
        total_items=snapshot.total_items,
        stages=tuple(stages),
        workers=tuple(workers),
    )
