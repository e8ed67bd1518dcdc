"""The monitor surface: everything a monitor may read of a pipeline and its tracker.

python-trio's ``@_public`` idea: the engine's state is private, and this one module is
the declared way into it for monitors — the run stream and its recorder, `pending`, the
dashboards' snapshot, `get_stats`. Nothing outside the engine core reads a
``_``-attribute of `Pipeline`, `StatusTracker` or a stage runtime (``.ci/private_reads.py``
checks it); what a monitor needs has a name and a docstring here, so a change to the
engine's insides is a change to this file, not to seven readers.

What it offers, per pipeline (`Probe`, ``pipeline.probe``):

- counters (`Counters`) and stages (`StageView`: counts, workers, latency, and its
  concurrency, rate-limit answers, timeouts and usage), the one projection both snapshots
  (`DashboardSnapshot`, the run stream's `Snapshot`) are made of; the rate limits the
  stages share (`rate_limits`);
- failures (`Failure`), unfinished ids, items in flight (`PendingItem`);
- id resolution: the live id an item key stands for (`live_id`), the one mapping back
  from the keys of `antflow.runstream.records.item_key`;
- events: `on_fed` (each item fed, with the id the engine gave it), `on_completed`
  (each item that left the last stage, with its result), `on_stage_output` (each item
  that passed a stage, with its output) and `on_ended` (a run ended: `join()` or a
  shutdown is done). Nobody listening costs one test per item each.

and per tracker (`TrackerProbe`): the name tables, a lossless journal with a cursor per
reader (`Journal`), error sinks (`ErrorSink`), item histories and usage, pausing the tails.

Cost model: counters are O(1), stages O(stages + workers), failures O(failures),
`in_flight` O(items in flight); nothing here changes the engine's state except the
listeners, the journals, the sinks and `ensure_tracker`.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

from antflow._guard import must_propagate
from antflow.lifecycle import SHUTTING_DOWN, WORKING
from antflow.limits import rate_limit_states, throttled_stage_state
from antflow.runstream.lookup import MISSING, ReprIndex
from antflow.runstream.records import ReprKey
from antflow.tracker import StatusTracker

if TYPE_CHECKING:
    from array import array
    from collections.abc import Callable, Sequence

    from antflow._history import AttemptError, ErrorNote
    from antflow._inspect import _Failure
    from antflow.budget import BudgetState
    from antflow.lifecycle import PipelineState
    from antflow.limits import StageLimitState
    from antflow.pipeline import Pipeline
    from antflow.ratelimit import RateLimitState
    from antflow.types import StageInfo, StageStats, TaskUsage, WorkerMetrics, WorkerState

logger = logging.getLogger(__name__)

NEXT_IDS: Final = 5
"""Queued item ids a stage view lists (the head of its queue)."""

# ---------------------------------------------------------------------- what a probe returns


@dataclass(frozen=True, slots=True)
class Counters:
    """A pipeline's item counts and lifecycle now."""

    state: PipelineState
    paused: bool
    """The whole pipeline is paused."""
    fed: int
    """Items fed (a resumed unfinished item counts once)."""
    processed: int
    """Items that left the last stage (skipped ones included)."""
    failed: int
    in_flight: int
    unfinished: int
    skipped: int
    total_items: int | None
    """Items the run expects in all, when known (``run(items)``)."""
    done_earlier: int = 0
    """Items fed that a run this one resumes had completed: not run, not in `fed`."""

    @property
    def running(self) -> bool:
        """Workers exist (`Pipeline.is_running`)."""
        return self.state in WORKING

    @property
    def stopping(self) -> bool:
        """A shutdown is under way."""
        return self.state in SHUTTING_DOWN


@dataclass(frozen=True, slots=True)
class WorkerView:
    """One worker now."""

    state: WorkerState
    metrics: WorkerMetrics
    holding: bool
    """It holds an item (`state.current_item_id` is then meaningful, even when None)."""
    usage: TaskUsage | None = None
    """What the tasks it ran reported with `set_task_usage`, added up (None: nothing)."""


@dataclass(frozen=True, slots=True)
class LatencyView:
    """A stage's task times of finished items (sampled; see `antflow._latency`)."""

    p50: float | None
    p95: float | None
    maximum: float
    slowest: tuple[tuple[Any, float], ...]
    """(item id, seconds), slowest first."""
    histogram: tuple[tuple[float, int], ...]
    """(upper bound in seconds, count) of each non-empty bucket."""


@dataclass(frozen=True, slots=True)
class StageView:
    """One stage now: its configuration, counts, workers, queue head and latency."""

    info: StageInfo
    stats: StageStats
    workers: tuple[WorkerView, ...]
    next_ids: tuple[Any, ...]
    """The first `NEXT_IDS` items waiting in its queue."""
    retried: tuple[tuple[type[BaseException], int], ...]
    """Retried task attempts by the class of the error they raised."""
    latency: LatencyView | None
    """None until a monitor asked for latency (`Pipeline.measure_latency`) and an item
    finished."""
    limits: StageLimitState | None = None
    """Its concurrency, rate-limit answers and timeouts; None for a stage with no
    timeout, rate limit or adaptive concurrency (see `antflow.limits`)."""
    usage: TaskUsage | None = None
    """What its tasks reported with `set_task_usage`, added up (None: nothing)."""


@dataclass(frozen=True, slots=True)
class Failure:
    """An item whose latest outcome is a failure (it stays so until retried)."""

    item_id: Any
    stage: str
    error: BaseException
    attempts: int
    at: float
    """When it failed (Unix time, or the injected clock's reading)."""
    value: Any
    """The value it entered its stage with (what a retry feeds)."""
    token: object
    """The same object while the item stays failed: a monitor keeps what it derived
    (an error number) by it."""


@dataclass(frozen=True, slots=True)
class PendingItem:
    """One item in flight."""

    item_id: Any
    """The item's id."""
    stage: str
    """The stage it is queued in or being run by."""
    value: Any
    """The value it entered that stage with (what feeding it again there takes)."""
    state: str
    """``queued``, ``waiting for a retry``, ``running`` or ``handing on``."""


# ---------------------------------------------------------------------- a pipeline


class Probe:
    """The declared read path of one pipeline (``pipeline.probe``)."""

    __slots__ = ("_ids", "_pipeline")

    def __init__(self, pipeline: Pipeline) -> None:
        self._pipeline = pipeline
        self._ids: ReprIndex | None = None

    # ---------------------------------------------------------------- time and counts

    def now(self) -> float:
        """The pipeline's clock as Unix time (or as an injected clock reads it)."""
        return self._pipeline._now()

    @property
    def epoch(self) -> float:
        """What turns a reading of the pipeline's monotonic clock into Unix time."""
        return self._pipeline._epoch

    def counters(self) -> Counters:
        """Item counts and the lifecycle, O(1)."""
        p = self._pipeline
        return Counters(
            state=p._state,
            paused=p._paused,
            fed=p._fed,
            processed=p._processed,
            failed=p._failed_count,
            in_flight=p._outstanding,
            unfinished=len(p._unfinished),
            skipped=p._skipped_out,
            total_items=p._total_items,
            done_earlier=p._done_earlier,
        )

    @property
    def total_items(self) -> int | None:
        """Items the run expects in all, when known."""
        return self._pipeline._total_items

    @property
    def sequence(self) -> int:
        """Items numbered so far (every feed takes the next number; see `Pipeline`)."""
        return self._pipeline._seq

    @property
    def version(self) -> str | int | None:
        """The pipeline's version (`Pipeline(version=...)`), part of its fingerprint."""
        return self._pipeline.version

    @property
    def resuming(self) -> bool:
        """A resume plan applies to what is fed (`Pipeline.resume_from`)."""
        return self._pipeline._resume is not None

    @property
    def stage_infos(self) -> tuple[StageInfo, ...]:
        """Each stage's configuration, in order."""
        return self._pipeline._stage_infos

    def stage_stats(self) -> tuple[StageStats, ...]:
        """Each stage's counts, in order (no worker detail), O(stages + workers)."""
        return tuple(runtime.stats() for runtime in self._pipeline._runtimes)

    def stages(self) -> tuple[StageView, ...]:
        """Each stage now, in order, O(stages + workers)."""
        epoch = self._pipeline._epoch
        views = []
        for runtime in self._pipeline._runtimes:
            latency = runtime.latency
            views.append(
                StageView(
                    info=runtime.info,
                    stats=runtime.stats(),
                    workers=tuple(
                        WorkerView(w.state(epoch), w.metrics(epoch), w.entry is not None, w.usage)
                        for w in runtime.workers
                    ),
                    next_ids=tuple(e.item_id for e in runtime.queue.head(NEXT_IDS)),
                    retried=tuple(list(runtime.retried_types.items())),
                    latency=(
                        None
                        if latency is None or not latency.count
                        else LatencyView(
                            p50=latency.quantile(0.5),
                            p95=latency.quantile(0.95),
                            maximum=latency.maximum,
                            slowest=tuple(latency.slowest_items()),
                            histogram=tuple(latency.histogram()),
                        )
                    ),
                    limits=throttled_stage_state(runtime),
                    usage=runtime.usage,
                )
            )
        return tuple(views)

    def rate_limits(self) -> tuple[RateLimitState, ...]:
        """Every `RateLimit` the stages use, in the order they first use it, O(limits +
        stages) (nothing when none has one)."""
        return rate_limit_states(self._pipeline._runtimes)

    def budget(self) -> BudgetState | None:
        """The pipeline's budget now: spent, reserved, limits, paused by it and why,
        calls without a price (None: it has no budget), O(1)."""
        budget = self._pipeline.budget
        return None if budget is None else budget.state()

    def errors_by_type(self) -> dict[str, int]:
        """Failed items by the class name of their error."""
        return dict(self._pipeline._failed_by_type)

    # ---------------------------------------------------------------- items

    def failures(self) -> list[Failure]:
        """Every item whose latest outcome is a failure, oldest first."""
        return [_failure(f) for f in self._pipeline._failures.values()]

    def failure(self, item_id: Any) -> Failure | None:
        """That item's failure, if its latest outcome is one."""
        try:
            found = self._pipeline._failures.get(item_id)
        except TypeError:  # an unhashable id has never failed
            return None
        return None if found is None else _failure(found)

    def is_failed(self, item_id: Any) -> bool:
        """Whether that item's latest outcome is a failure."""
        try:
            return item_id in self._pipeline._failures
        except TypeError:  # an unhashable id has never failed
            return False

    def unfinished(self) -> list[Any]:
        """Ids of items a shutdown left unfinished, oldest first."""
        return list(self._pipeline._unfinished)

    def in_flight(self) -> list[PendingItem]:
        """Every item held in a queue or a worker now, stage by stage (O(in flight))."""
        found: list[PendingItem] = []
        for runtime in self._pipeline._runtimes:
            for worker in runtime.workers:
                entry = worker.entry
                if entry is not None:
                    state = "running" if worker.since is not None else "handing on"
                    found.append(PendingItem(entry.item_id, runtime.name, entry.value, state))
            for entry in runtime.queue:
                state = "waiting for a retry" if entry.attempt > 1 else "queued"
                found.append(PendingItem(entry.item_id, runtime.name, entry.value, state))
        return found

    def live_id(self, key: Any) -> Any:
        """The live id an item key stands for (`antflow.runstream.records.item_key`).

        A JSON scalar is its own id. A `ReprKey` stands for an id that is no JSON scalar
        (a tuple, an object): the failed, unfinished or tracked item whose repr it is,
        found through an index rebuilt only when those ids changed. An unknown repr
        comes back as the key itself.
        """
        if not isinstance(key, ReprKey):
            return key
        p = self._pipeline
        failures, unfinished = p._failures, p._unfinished
        tracker = p._tracker
        logs: dict[Any, Any] = {} if tracker is None else tracker._logs
        if self._ids is None:
            self._ids = ReprIndex()
        found = self._ids.find(
            key.repr,
            lambda: (*failures, *unfinished, *logs),
            version=(
                p._failed_count,
                len(failures),
                len(unfinished),
                p._seq,
                None if tracker is None else (tracker.failure_changes, tracker.evicted_items),
                len(logs),
            ),
            is_live=lambda c: c in failures or c in unfinished or c in logs,
        )
        return key if found is MISSING else found

    # ---------------------------------------------------------------- trackers

    @property
    def tracker(self) -> TrackerProbe | None:
        """The probe of the pipeline's tracker, if it has one."""
        tracker = self._pipeline._tracker
        return None if tracker is None else TrackerProbe(tracker)

    def ensure_tracker(self, history: int | None) -> StatusTracker:
        """The pipeline's tracker, made (keeping `history` completed histories) when it
        has none; a tracker that keeps more is bounded to `history`."""
        pipeline = self._pipeline
        tracker = pipeline.status_tracker
        if tracker is None:
            tracker = StatusTracker(max_history_items=history)
            pipeline.status_tracker = tracker
        elif history is not None and (
            tracker.max_history_items is None or tracker.max_history_items > history
        ):
            tracker.max_history_items = history
        return tracker

    # ---------------------------------------------------------------- events

    def on_fed(self, listener: Callable[[Any, Any], None]) -> Callable[[], None]:
        """Call ``listener(item_id, item)`` for every item fed from now on, with the id
        the engine gave it and the item as it was fed (a retry is not a feed).

        A listener records and returns; one that raises is logged and detached.

        Returns:
            A function that detaches it.
        """
        pipeline = self._pipeline
        # New lists, never changed in place: the engine may be iterating the old one.
        pipeline._fed_listeners = [*(pipeline._fed_listeners or ()), listener]

        def remove() -> None:
            remaining = [one for one in pipeline._fed_listeners or () if one is not listener]
            pipeline._fed_listeners = remaining or None  # none: nothing per item

        return remove

    def on_completed(self, listener: Callable[[Any, Any], None]) -> Callable[[], None]:
        """Call ``listener(item_id, result)`` for every item that completes from now on
        (leaves the last stage, run or skipped through it), with what it returns to
        `run()`. Not for items counted done earlier (see `Pipeline.resume_from`).

        A listener records and returns; one that raises is logged and detached.

        Returns:
            A function that detaches it.
        """
        pipeline = self._pipeline
        pipeline._completed_listeners = [*(pipeline._completed_listeners or ()), listener]

        def remove() -> None:
            remaining = [one for one in pipeline._completed_listeners or () if one is not listener]
            pipeline._completed_listeners = remaining or None  # none: nothing per item

        return remove

    def on_stage_output(
        self, stage: str, listener: Callable[[Any, Any], None]
    ) -> Callable[[], None]:
        """Call ``listener(item_id, output)`` for every item that passes `stage` from now
        on (run, or skipped through: its input is then its output), before the next
        stage sees it.

        A listener records and returns; one that raises is logged and detached.

        Returns:
            A function that detaches it.

        Raises:
            ValueError: no stage has that name.
        """
        runtime = self._pipeline._target(stage)
        runtime.output_listeners = [*(runtime.output_listeners or ()), listener]

        def remove() -> None:
            remaining = [one for one in runtime.output_listeners or () if one is not listener]
            runtime.output_listeners = remaining or None  # none: nothing per item

        return remove

    def on_ended(self, listener: Callable[[], None]) -> Callable[[], None]:
        """Call ``listener()`` each time a run of the pipeline ends: `join()` returns
        or a shutdown is done (the state then is `FINISHED` or `STOPPED`).

        Returns:
            A function that detaches it.
        """
        listeners = self._pipeline._ended_listeners
        listeners.append(listener)

        def remove() -> None:
            if listener in listeners:
                listeners.remove(listener)

        return remove


def call_listeners(listeners: list[Callable[..., None]], what: str, *args: Any) -> None:
    """Call each listener; one that raises is logged and detached (observer code never
    breaks the engine)."""
    for listener in list(listeners):
        try:
            listener(*args)
        except BaseException as error:
            if must_propagate(error):
                raise
            logger.exception("an %s listener raised; it is detached", what)
            if listener in listeners:
                listeners.remove(listener)


def _failure(failure: _Failure) -> Failure:
    return Failure(
        item_id=failure.entry.item_id,
        stage=failure.stage.name,
        error=failure.error,
        attempts=failure.attempts,
        at=failure.timestamp,
        value=failure.entry.value,
        token=failure,
    )


# ---------------------------------------------------------------------- a tracker


class TrackerProbe:
    """The declared read path of one tracker (pipelines may share one)."""

    __slots__ = ("tracker",)

    def __init__(self, tracker: StatusTracker) -> None:
        self.tracker = tracker

    def names(self) -> tuple[Sequence[str | None], Sequence[str | None], Sequence[str | None]]:
        """The stage, worker and task name tables that record codes refer to (index 0:
        none). Live lists: they grow as names are met, and are never to be changed."""
        t = self.tracker
        return t._stages.names, t._workers.names, t._tasks.names

    def next_stage(self, stage_id: int) -> int:
        """The id of the stage a hand-off from stage `stage_id` goes to (0: none)."""
        return self.tracker._successors.after(stage_id)

    def successors(self) -> dict[int, int]:
        """Every known hand-off: stage id -> the next stage's id."""
        return dict(self.tracker._successors._next)

    def open_journal(self) -> Journal:
        """A lossless journal of every record from now on, with its own cursor."""
        return Journal(self.tracker)

    def open_usage_sink(self) -> UsageSink:
        """Every item that reports usage (`set_task_usage`) from now on."""
        return UsageSink(self.tracker)

    def open_error_sink(self) -> ErrorSink:
        """A lossless buffer of every new attempt error from now on."""
        return ErrorSink(self.tracker)

    def pause_tails(self, paused: bool) -> None:
        """Stop (or resume) keeping records for the tracker's tails, still counting
        events: under a flood a monitor shows the newest only."""
        self.tracker._pause_tails(paused)

    def log(self, item_id: Any) -> array[float] | None:
        """The item's raw history (status word, then code and time per record), if kept."""
        return self.tracker._logs.get(item_id)

    def attempt_errors(self, item_id: Any) -> Sequence[AttemptError]:
        """The errors of the item's failed attempts with their log positions, oldest
        first (an exception may appear twice: its task event's and its status's)."""
        return self.tracker._errors.get(item_id, ())

    def usage(self, item_id: Any) -> TaskUsage | None:
        """What the item's tasks reported with `set_task_usage`, added up (None: nothing,
        or its history was evicted)."""
        try:
            return self.tracker.get_usage(item_id)
        except TypeError:  # an unhashable id reported nothing
            return None

    def traceback_of(self, item_id: Any, error: BaseException) -> str:
        """The formatted traceback of one of the item's errors ('' when not kept)."""
        for attempt_error in reversed(self.attempt_errors(item_id)):
            if attempt_error.exception is error:
                return attempt_error.traceback
        return ""


class ErrorSink:
    """Every new attempt error of a tracker since the last `take` (errors are rare: no
    cost per event)."""

    __slots__ = ("_notes", "_tracker")

    def __init__(self, tracker: StatusTracker) -> None:
        self._tracker = tracker
        self._notes = tracker._open_error_sink()

    def take(self) -> list[ErrorNote]:
        """The errors since the last call, oldest first."""
        if not self._notes:
            return []
        taken = list(self._notes)
        self._notes.clear()
        return taken

    def close(self) -> None:
        """Stop receiving errors."""
        self._tracker._close_error_sink(self._notes)
        self._notes.clear()


class UsageSink:
    """The items that reported usage since the last `take`, with what they reported so
    far (reports are per API call: no cost per event)."""

    __slots__ = ("_ids", "_tracker")

    def __init__(self, tracker: StatusTracker) -> None:
        self._tracker = tracker
        self._ids = tracker._open_usage_sink()

    def take(self) -> list[tuple[Any, TaskUsage]]:
        """(item id, its usage added up so far) of each item that reported since the last
        call, once each, in the order they first reported (an item whose history was
        evicted meanwhile is left out)."""
        if not self._ids:
            return []
        ids = list(dict.fromkeys(self._ids))
        self._ids.clear()
        usage = self._tracker._usage
        return [(item_id, usage[item_id]) for item_id in ids if item_id in usage]

    def close(self) -> None:
        """Stop receiving reports."""
        self._tracker._close_usage_sink(self._ids)
        self._ids.clear()


class Journal:
    """Every record of a tracker since the last `take`, none dropped, and the errors they
    carried. Several journals share the tracker's one list, each with its own cursor;
    what every journal has taken is dropped."""

    __slots__ = ("_errors", "_reader", "_tracker")

    def __init__(self, tracker: StatusTracker) -> None:
        self._tracker = tracker
        self._reader = tracker._open_journal()
        self._errors = ErrorSink(tracker)

    def take(self) -> tuple[list[Any], dict[int, BaseException]]:
        """The records not taken yet, flat (item id, code, time, item id, ...), and the
        exception each record carried, by its index among them."""
        return self._tracker._take_journal(self._reader)

    @property
    def plain_ids(self) -> bool:
        """Whether every item id the journal has seen is an int, str, bool or None (a
        recorder then writes the ids as they are, without a look at each)."""
        return self._tracker._journal_plain_ids

    def take_errors(self) -> list[ErrorNote]:
        """The new attempt errors since the last call (with their tracebacks)."""
        return self._errors.take()

    def close(self) -> None:
        """Stop journaling for this reader (the last one stops it altogether)."""
        self._errors.close()
        self._tracker._close_journal(self._reader)


__all__ = [
    "Counters",
    "ErrorSink",
    "Failure",
    "Journal",
    "LatencyView",
    "PendingItem",
    "Probe",
    "StageView",
    "TrackerProbe",
    "UsageSink",
    "WorkerView",
]
