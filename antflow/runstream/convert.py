"""Live engine state to run-stream records: snapshots, events, errors, item details.

Everything here reads a pipeline (or its tracker) and returns plain records; nothing
keeps a reference to a live object. Snapshots read the counters the engine keeps as it
goes, in O(stages + workers); events are rebuilt from the tracker's raw records without
building the tracker's own event objects first.
"""

from __future__ import annotations

import reprlib
from typing import TYPE_CHECKING, Any, Final, cast

from antflow import _history as h
from antflow._history import ErrorNote
from antflow._safe import safe_repr, safe_str
from antflow.runstream.records import (
    MESSAGE_LIMIT,
    STATUS_LIMIT,
    TRACEBACK_LIMIT,
    BudgetRow,
    ErrorRecord,
    Event,
    EventKind,
    ItemDetail,
    ItemLocationRecord,
    LimitRow,
    PipelineStarted,
    ReprKey,
    Snapshot,
    StageConfig,
    StageLimits,
    StageRow,
    Usage,
    WorkerRow,
    clip,
    item_key,
)
from antflow.types import STATUSES

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Sequence

    from antflow.budget import BudgetState
    from antflow.limits import StageLimitState
    from antflow.pipeline import Pipeline
    from antflow.probe import Failure, Probe, StageView, TrackerProbe, WorkerView
    from antflow.ratelimit import RateLimitState
    from antflow.types import StageInfo, TaskUsage

_KIND_NAMES: Final = cast("tuple[EventKind, ...]", h.KIND_NAMES)

LIMIT_NAME: Final = 200
"""Characters of a RateLimit's name a snapshot keeps (a name is the user's to choose)."""

_values = reprlib.Repr()
_values.maxstring = 200
_values.maxother = 200
_values.maxlevel = 3


def value_repr(value: Any) -> str:
    """A bounded repr of a user value: enough to recognise and re-create it, never huge."""
    try:
        return _values.repr(value)
    except Exception:  # a broken __repr__ must not break the stream
        return safe_repr(value)


def error_type(error: BaseException) -> str:
    """The exception class, qualified by its module unless it is a builtin."""
    return type_name(type(error))


def type_name(cls: type[BaseException]) -> str:
    """An exception class's name as `error_type` gives it."""
    module = cls.__module__
    return (
        cls.__qualname__ if module in ("builtins", "__main__") else f"{module}.{cls.__qualname__}"
    )


def _by_type(counts: Iterable[tuple[type[BaseException], int]]) -> tuple[tuple[str, int], ...]:
    """Counts by exception class -> by type name, the most frequent first."""
    named: dict[str, int] = {}
    for cls, count in counts:
        name = type_name(cls)
        named[name] = named.get(name, 0) + count
    return tuple(sorted(named.items(), key=lambda pair: (-pair[1], pair[0])))


def error_message(error: BaseException) -> str:
    """The exception's message as records carry it (at most `MESSAGE_LIMIT` characters)."""
    return clip(safe_str(error), MESSAGE_LIMIT)


def stage_config(info: StageInfo) -> StageConfig:
    """A stage's configuration as records carry it (the engine's `StageInfo`)."""
    return StageConfig(
        name=info.name,
        workers=info.worker_names,
        tasks=info.task_names,
        retry=info.retry,
        task_attempts=info.task_attempts,
        # JSON has no infinity: a wait that never ends is written as a very long one.
        task_wait_seconds=min(info.task_wait_seconds, 1e300),
        stage_attempts=info.stage_attempts,
        queue_capacity=info.queue_capacity,
        concurrency_limits=dict(info.task_concurrency_limits),
        has_skip_if=info.has_skip_if,
        no_retry_on=info.no_retry_on,
        durable=info.durable,
    )


def pipeline_started(probe: Probe, number: int, at: float) -> PipelineStarted:
    return PipelineStarted(
        pipeline=number,
        at=at,
        stages=tuple(stage_config(info) for info in probe.stage_infos),
        total_items=probe.total_items,
        version=probe.version,
    )


def stage_row(view: StageView, now: float = 0.0) -> StageRow:
    """A stage at a snapshot taken at `now`, from the probe's view of it (the one
    projection `Pipeline.get_dashboard_snapshot` is made of too)."""
    stats = view.stats
    latency = view.latency
    limits = view.limits
    return StageRow(
        queued=stats.pending_items,
        running=stats.in_progress_items,
        done=stats.completed_items,
        failed=stats.failed_items,
        skipped=stats.skipped_items,
        retrying=stats.retrying_items,
        task_retries=stats.task_retries,
        retried=_by_type(view.retried),
        task_seconds=stats.task_seconds,
        paused=stats.paused,
        next_items=tuple(item_key(i) for i in view.next_ids),
        p50=None if latency is None else latency.p50,
        p95=None if latency is None else latency.p95,
        max_seconds=None if latency is None else latency.maximum,
        slowest=() if latency is None else tuple((item_key(i), t) for i, t in latency.slowest),
        histogram=() if latency is None else latency.histogram,
        limits=None if limits is None else stage_limits(limits, now),
        usage=usage_record(view.usage),
    )


def stage_limits(state: StageLimitState, now: float) -> StageLimits:
    """A stage's concurrency, rate-limit answers and timeouts as records carry them (a
    cool-down as the moment it ends, so a replay counts it down between snapshots)."""
    return StageLimits(
        concurrency=state.concurrency,
        max_concurrency=state.max_concurrency,
        adaptive=state.adaptive,
        in_flight=state.in_flight,
        rate_limited_retries=state.rate_limited_retries,
        timeouts=state.timeouts,
        rate_limited_last_minute=state.rate_limited_last_minute,
        cooldown_until=_until(now, state.cooldown_remaining),
        limit=None if state.limit is None else clip(state.limit, LIMIT_NAME),
        task_timeout=state.task_timeout,
    )


def limit_row(state: RateLimitState, now: float) -> LimitRow:
    """One RateLimit as records carry it."""
    return LimitRow(
        name=clip(state.name, LIMIT_NAME),
        per_second=state.per_second,
        per_minute=state.per_minute,
        tokens_per_minute=state.tokens_per_minute,
        calls_last_second=state.calls_last_second,
        calls_last_minute=state.calls_last_minute,
        tokens_last_minute=state.tokens_last_minute,
        rate_limited_last_minute=state.rate_limited_last_minute,
        cooldown_until=_until(now, state.cooldown_remaining),
        waiting=state.waiting,
        stages=state.stages,
    )


def usage_record(usage: TaskUsage | None) -> Usage | None:
    """What tasks reported with `set_task_usage`, as records carry it (None: nothing)."""
    return None if usage is None else usage_of(usage)


def usage_of(usage: TaskUsage) -> Usage:
    """A `TaskUsage` as records carry it."""
    return Usage(
        input_tokens=usage.input_tokens,
        output_tokens=usage.output_tokens,
        cost=usage.cost,
        model=usage.model,
        reports=usage.reports,
        unpriced=usage.unpriced,
        cached_input_tokens=usage.cached_input_tokens,
        cache_write_tokens=usage.cache_write_tokens,
    )


def budget_row(state: BudgetState | None) -> BudgetRow | None:
    """A pipeline's budget as records carry it (None: it has none)."""
    if state is None:
        return None
    return BudgetRow(
        budget=state.number,
        usd=state.usd,
        tokens=state.tokens,
        spent_usd=state.spent_usd,
        spent_tokens=state.spent_tokens,
        reserved_usd=state.reserved_usd,
        reserved_tokens=state.reserved_tokens,
        paused=state.paused,
        waiting=state.waiting,
        running=state.running,
        calls=state.calls,
        unpriced=state.unpriced,
        unreserved=state.unreserved,
        reason=None if state.reason is None else clip(state.reason, MESSAGE_LIMIT),
    )


def _until(now: float, remaining: float) -> float | None:
    return now + remaining if remaining > 0 else None


def worker_row(view: WorkerView) -> WorkerRow:
    """A worker at a snapshot, from the probe's view of it."""
    state, metrics = view.state, view.metrics
    return WorkerRow(
        status=state.status,
        holding=view.holding,
        item=None if not view.holding else item_key(state.current_item_id),
        since=state.processing_since,
        task_status=_status_text(state.current_task),
        waiting_for=state.waiting_for,
        progress=state.progress,
        paused=state.paused,
        processed=metrics.items_processed,
        failed=metrics.items_failed,
        busy_seconds=metrics.total_processing_time,
        last_active=metrics.last_active,
        recent=tuple(item_key(i) for i in metrics.recent_items),
        usage=usage_record(view.usage),
    )


def snapshot(probe: Probe, number: int, abandoned: int = 0, *, stopped: bool = False) -> Snapshot:
    """The pipeline's state now, from the counters it keeps (O(stages + workers));
    `stopped`: a `Stop` command stopped it."""
    counters = probe.counters()
    stages = probe.stages()
    now = probe.now()
    return Snapshot(
        pipeline=number,
        at=now,
        running=counters.running,
        paused=counters.paused,
        stopping=counters.stopping,
        fed=counters.fed,
        processed=counters.processed,
        failed=counters.failed,
        in_flight=counters.in_flight,
        unfinished=counters.unfinished,
        skipped=counters.skipped,
        total_items=counters.total_items,
        stages=tuple(stage_row(view, now) for view in stages),
        workers=tuple(tuple(worker_row(w) for w in view.workers) for view in stages),
        abandoned=abandoned,
        stopped=stopped,
        limits=tuple(limit_row(state, now) for state in probe.rate_limits()),
        done_earlier=counters.done_earlier,
        budget=budget_row(probe.budget()),
    )


def failure_record(
    failure: Failure,
    number: int,
    pipeline: int,
    *,
    traceback: str = "",
    value: str | None = None,
) -> ErrorRecord:
    """A failed item's final error (a stream's `failures`, a recording's checkpoints)."""
    return ErrorRecord(
        number=number,
        pipeline=pipeline,
        at=failure.at,
        item=item_key(failure.item_id),
        stage=failure.stage,
        task=None,
        attempt=failure.attempts,
        type=error_type(failure.error),
        message=error_message(failure.error),
        traceback=clip(traceback, TRACEBACK_LIMIT, keep_end=True) if traceback else "",
        value=value,
    )


def _status_text(text: str | None) -> str | None:
    return text if text is None or len(text) <= STATUS_LIMIT else clip(text, STATUS_LIMIT)


class RawDecoder:
    """Turns raw records (a tracker's, or a recording's event batches) into `Event`s.

    Args:
        names: The stage, worker and task name tables the codes refer to (index 0: none).
        next_stage: The id of the stage that follows a stage id (0: none).
        pipeline_of: The pipeline number of a stage name (0 when ambiguous).
        error_number: The `ErrorRecord.number` of what a record carries as its error (an
            exception live, a number in a recording), given that and the record's item.
    """

    def __init__(
        self,
        names: tuple[Sequence[str | None], Sequence[str | None], Sequence[str | None]],
        next_stage: Callable[[int], int],
        pipeline_of: Callable[[str | None], int],
        error_number: Callable[[Any, Any], int | None],
    ) -> None:
        self._stages, self._workers, self._tasks = names
        self._next_stage = next_stage
        self._pipeline_of = pipeline_of
        self._error_number = error_number

    @classmethod
    def for_tracker(
        cls,
        tracker: TrackerProbe,
        pipeline_of: Callable[[str | None], int],
        error_number: Callable[[Any, Any], int | None],
    ) -> RawDecoder:
        return cls(tracker.names(), tracker.next_stage, pipeline_of, error_number)

    def events(self, records: Iterable[h.RawRecord]) -> list[Event]:
        out: list[Event] = []
        add = out.append
        # The stage attempt an item's "completed" reports is that of its last begin.
        stage_attempts: dict[Any, int] = {}
        stages, workers, tasks = self._stages, self._workers, self._tasks
        for item_id, raw_code, at, duration, error in records:
            if type(item_id) is list:  # a tuple id, from a recording
                item_id = tuple(item_id)
            code = int(raw_code)
            kind = code & 0xF
            stage_id = (code >> h.STAGE_SHIFT) & h.STAGE_MASK
            stage = stages[stage_id] or ""
            worker = workers[(code >> h.WORKER_SHIFT) & h.WORKER_MASK]
            task = tasks[(code >> h.TASK_SHIFT) & h.TASK_MASK]
            attempt = code >> h.ATTEMPT_SHIFT
            pipeline = self._pipeline_of(stage)
            item = item_id if type(item_id) is ReprKey else item_key(item_id)
            number = None if error is None else self._error_number(error, item_id)
            if kind in (h.BEGIN_PER_TASK, h.BEGIN_PER_STAGE):
                stage_attempts[item] = attempt
                first = 1 if kind == h.BEGIN_PER_TASK else attempt
                add(Event(pipeline, at, item, "in_progress", stage, worker, None, attempt))
                add(Event(pipeline, at, item, "start", stage, worker, task, first))
            elif kind in (h.FINISH, h.FINISH_HANDOFF):
                add(Event(pipeline, at, item, "complete", stage, worker, task, attempt, duration))
                stage_attempt = stage_attempts.get(item, 1)
                add(Event(pipeline, at, item, "completed", stage, worker, None, stage_attempt))
                if kind == h.FINISH_HANDOFF:
                    following = stages[self._next_stage(stage_id)] or ""
                    add(Event(pipeline, at, item, "queued", following))
            elif kind < h.TASK_START or kind == h.DONE_EARLIER:
                add(
                    Event(
                        pipeline,
                        at,
                        item,
                        _KIND_NAMES[kind],
                        stage,
                        worker,
                        None,
                        attempt,
                        None,
                        number,
                    )
                )
            else:
                add(
                    Event(
                        pipeline,
                        at,
                        item,
                        _KIND_NAMES[kind],
                        stage,
                        worker,
                        task,
                        attempt,
                        duration,
                        number,
                    )
                )
        return out


def note_stage(note: ErrorNote, tracker: TrackerProbe) -> str:
    """The stage an attempt error happened in."""
    return tracker.names()[0][(note.code >> h.STAGE_SHIFT) & h.STAGE_MASK] or ""


def error_record(
    note: ErrorNote,
    number: int,
    tracker: TrackerProbe,
    pipeline: int,
    value: str | None = None,
) -> ErrorRecord:
    code = note.code
    stage = note_stage(note, tracker)
    kind = code & 0xF
    task = (
        tracker.names()[2][(code >> h.TASK_SHIFT) & h.TASK_MASK] if kind >= h.TASK_START else None
    )
    return ErrorRecord(
        number=number,
        pipeline=pipeline,
        at=note.timestamp,
        item=item_key(note.item_id),
        stage=stage,
        task=task,
        attempt=code >> h.ATTEMPT_SHIFT,
        type=error_type(note.exception),
        message=error_message(note.exception),
        traceback=clip(note.traceback, TRACEBACK_LIMIT, keep_end=True),
        value=value,
    )


def item_detail(
    pipeline: Pipeline,
    number: int,
    item_id: Any,
    number_of: Callable[[BaseException, Any], int | None],
    *,
    values: bool,
) -> ItemDetail:
    """One item's story in `pipeline` from its tracker and its live position.

    Args:
        number_of: The `ErrorRecord.number` the stream gave an (exception, item id), if
            it numbered it; other errors of the item are numbered -1, -2, ... here.
    """
    probe = pipeline.probe
    tracker = probe.tracker
    location = pipeline.locate(item_id)
    where = None
    if location is not None:
        where = ItemLocationRecord(
            stage=location.stage,
            state=location.state,
            worker=location.worker,
            value=value_repr(location.value) if values else None,
        )
    if tracker is None:
        return ItemDetail(number, item_key(item_id), known=False, location=where)
    log = tracker.log(item_id)
    attempt_errors = tracker.attempt_errors(item_id)
    errors: list[ErrorRecord] = []
    numbers: dict[int, int] = {}
    for attempt_error in attempt_errors:
        exception = attempt_error.exception
        if id(exception) in numbers:
            continue
        found = number_of(exception, item_id)
        assigned = found if found is not None else -(len(numbers) + 1)
        numbers[id(exception)] = assigned
        code = int(log[attempt_error.position]) if log is not None else 0
        timestamp = log[attempt_error.position + 1] if log is not None else 0.0
        note = ErrorNote(item_id, exception, attempt_error.traceback, code, timestamp)
        failed_value = None
        if values and location is not None and location.state == "failed":
            failed_value = value_repr(location.value)
        errors.append(error_record(note, assigned, tracker, number, failed_value))
    events: list[Event] = []
    if log is not None:
        # Errors sit in the tracker beside the log, matched by position.
        by_position = {e.position: e.exception for e in attempt_errors}
        raw = [
            (item_id, int(log[i]), log[i + 1], None, by_position.get(i))
            for i in range(1, len(log), 2)
        ]
        decoder = RawDecoder.for_tracker(
            tracker, lambda _stage: number, lambda e, _item: numbers.get(id(e))
        )
        events = with_durations(decoder.events(raw))
    status = None if log is None or log[0] < 0 else h.STATUS_OF[int(log[0])]
    last_status = next((e for e in reversed(events) if e.kind in STATUSES), None)
    evicted: bool | None = False
    if log is None and tracker.tracker.evicted_items:
        sequential = isinstance(item_id, int) and not isinstance(item_id, bool)
        evicted = True if sequential and 0 <= item_id < probe.sequence else None
    return ItemDetail(
        pipeline=number,
        item=item_key(item_id),
        known=log is not None,
        status=status,
        stage=None if last_status is None else last_status.stage,
        events=tuple(events),
        errors=tuple(errors),
        location=where,
        evicted=evicted,
        retryable=location is not None and location.state == "failed",
        usage=usage_record(tracker.usage(item_id)),
    )


def with_durations(events: list[Event]) -> list[Event]:
    """Fill task durations from start/end pairs (a log keeps times, not durations)."""
    started: dict[tuple[str, str | None, int], float] = {}
    out = []
    for event in events:
        key = (event.stage, event.task, event.attempt)
        if event.kind == "start":
            started[key] = event.at
        elif event.kind in ("complete", "retry", "fail") and event.duration is None:
            begun = started.pop(key, None)
            if begun is not None:
                event = Event(
                    event.pipeline,
                    event.at,
                    event.item,
                    event.kind,
                    event.stage,
                    event.worker,
                    event.task,
                    event.attempt,
                    event.at - begun,
                    event.error,
                )
        out.append(event)
    return out
