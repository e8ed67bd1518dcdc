"""RunStream: the live producer of a run's records, and the carrier of its commands.

A monitor (antflow-tui's live source, the recorder, the socket server) creates one
RunStream per run and attaches it to every pipeline that starts (``antflow.observe``).
It is the only code on the monitor's side that touches `Pipeline`, `StatusTracker` or an
exception; everything it returns is a record from `antflow.runstream.records`.

Cost model: `snapshot()` is O(stages + workers); `events()` rebuilds at most
`event_capacity` of the newest events from a bounded tail of raw records (the rest are
counted as dropped, never built); errors come through a lossless sink, but are rare.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import os
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final

import antflow
from antflow.exceptions import PipelineError, PipelineStopped
from antflow.runstream import convert
from antflow.runstream.lookup import MISSING, ReprIndex
from antflow.runstream.records import (
    FORMAT,
    LOG_LINE_LIMIT,
    TRACEBACK_LIMIT,
    VERSION,
    AwaitStack,
    Command,
    Control,
    ErrorRecord,
    Event,
    Header,
    ItemDetail,
    ItemKey,
    LogLine,
    Pause,
    PipelineStarted,
    ReprKey,
    Resume,
    Retry,
    Snapshot,
    Stop,
    clip,
    item_key,
)
from antflow.runstream.stacks import await_stack
from antflow.tracker import StatusTracker

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from antflow import _history as h
    from antflow.pipeline import Pipeline
    from antflow.tail import EventTail
    from antflow.tracker import ErrorNote

logger = logging.getLogger(__name__)

FLOOD_PAUSE: Final = 0.8
"""Under a flood, the part of the time between two `events()` calls the tails skip."""
STOP_GRACE: Final = 3.0
"""Seconds a graceful `Stop` lets running items finish before cancelling them."""
MONITOR: Final = "a monitor"
"""Who a `Stop` comes from when the caller does not say."""
_NUMBERED_ERRORS: Final = 4_096
"""Exceptions whose numbers are remembered, so events decoded later can refer to them."""


@dataclass(slots=True)
class _Followed:
    """One pipeline the stream follows."""

    pipeline: Pipeline
    number: int
    tracker: StatusTracker
    started: PipelineStarted
    stopped_by_command: bool = False
    unfinished_before_stop: int = 0
    """Items the script's own shutdowns had left unfinished when a `Stop` came."""
    ids_by_repr: ReprIndex = field(default_factory=ReprIndex)
    """Its live ids that are not JSON scalars, by repr (for item requests)."""


@dataclass(slots=True)
class _Tracked:
    """One tracker the stream reads (pipelines may share one)."""

    tracker: StatusTracker
    errors: list[ErrorNote]
    tail: EventTail | None = None
    """The newest raw records, for `events()` (None when the stream does not follow
    events: a recorder alone needs none, and a tail costs each event a little)."""
    numbers: list[int] = field(default_factory=list)
    """The pipeline numbers using it."""


class RunStream:
    """Turns the pipelines of one run into records, and carries out commands.

    Args:
        values: Include reprs of item values in error records and item details.
        history: Completed items whose histories a tracker this stream creates keeps
            (a pipeline without a tracker gets a bounded one); None keeps all.
        event_capacity: Most events `events()` returns per call (newest kept).
        follow_events: Keep the newest events for `events()` (a recorder alone needs not).
        follow_errors: Number the errors for `take_errors()` (a recorder alone, which
            keeps its own, needs not: nobody would take them).
        stop_grace: Seconds a graceful `Stop` lets running items finish.
        argv: For the header.
        script: For the header.
        clock: Unix time, for records the engine does not stamp (logs, controls).
    """

    def __init__(
        self,
        *,
        values: bool = False,
        history: int | None = 10_000,
        event_capacity: int = 1_000,
        follow_events: bool = True,
        follow_errors: bool = True,
        stop_grace: float = STOP_GRACE,
        argv: Sequence[str] = (),
        script: str | None = None,
        clock: Callable[[], float] | None = None,
    ) -> None:
        self.values = values
        self.history = history
        self.event_capacity = event_capacity
        self.follow_events = follow_events
        self.follow_errors = follow_errors
        self.stop_grace = stop_grace
        self.clock = clock or time.time
        self.header = Header(
            format=FORMAT,
            version=VERSION,
            antflow=antflow.__version__,
            started_at=self.clock(),
            argv=tuple(argv),
            pid=os.getpid(),
            script=script,
            values=values,
        )
        self._followed: list[_Followed] = []
        self._trackers: list[_Tracked] = []
        self._new_pipelines: list[PipelineStarted] = []
        self._errors: list[ErrorRecord] = []
        self._error_count = 0
        self._numbers: dict[tuple[int, Any], tuple[BaseException, int]] = {}
        """id(exception) -> (exception, number); the exception is kept so its id is not
        reused while the number is remembered."""
        self._failure_numbers: dict[int, dict[int, tuple[object, int]]] = {}
        """Per pipeline, the number each failed item's record was given (see `failures`)."""
        self._logs: deque[LogLine] = deque()
        self._log_lock = threading.Lock()
        self._rejoins: set[asyncio.Task[None]] = set()
        self._drained_at = time.monotonic()
        self.on_start: list[Callable[[Pipeline], None]] = []
        """Called first at every start of a followed pipeline (restarts on a new event
        loop included)."""
        self.on_attach: list[Callable[[Pipeline, PipelineStarted], None]] = []
        """Called after each new pipeline is attached (a recorder opens its sinks there)."""
        self.on_record: list[Callable[[LogLine | Control], None]] = []
        """Called with each log line (from any thread) and each command's control record
        (a recorder writes them down)."""

    # ---------------------------------------------------------------- following pipelines

    def attach(self, pipeline: Pipeline) -> PipelineStarted:
        """Follow `pipeline` (idempotent: a restart returns its existing record).

        Pass it as ``antflow.observe(stream.attach)``, or call it for a pipeline the
        monitor built itself before starting it. A pipeline without a tracker gets a
        bounded one; a script's own tracker keeps at most `history` completed histories.
        """
        for on_start in list(self.on_start):
            on_start(pipeline)
        for followed in self._followed:
            if followed.pipeline is pipeline:
                return followed.started
        tracker = pipeline.status_tracker
        if tracker is None:
            tracker = StatusTracker(max_history_items=self.history)
            pipeline.status_tracker = tracker
        elif self.history is not None and (
            tracker.max_history_items is None or tracker.max_history_items > self.history
        ):
            tracker.max_history_items = self.history
        pipeline.measure_latency()
        number = len(self._followed) + 1
        started = convert.pipeline_started(pipeline, number, pipeline._now())
        self._followed.append(_Followed(pipeline, number, tracker, started))
        tracked = next((t for t in self._trackers if t.tracker is tracker), None)
        if tracked is None:
            errors = tracker._open_error_sink() if self.follow_errors else []
            tracked = _Tracked(tracker, errors)
            if self.follow_events:
                tracked.tail = tracker.open_tail(self.event_capacity)
            self._trackers.append(tracked)
        tracked.numbers.append(number)
        self._new_pipelines.append(started)
        for callback in list(self.on_attach):
            callback(pipeline, started)
        return started

    def follow(self, events: bool) -> None:
        """Start (or stop) keeping the newest events for `events()`: a server follows
        events only while a viewer is connected."""
        self.follow_events = events
        for tracked in self._trackers:
            if events and tracked.tail is None:
                tracked.tail = tracked.tracker.open_tail(self.event_capacity)
            elif not events and tracked.tail is not None:
                tracked.tail.close()
                tracked.tail = None

    def close(self) -> None:
        """Stop following every pipeline (tails and sinks are released)."""
        for tracked in self._trackers:
            if tracked.tail is not None:
                tracked.tail.close()
            if self.follow_errors:
                tracked.tracker._close_error_sink(tracked.errors)
        self._trackers.clear()

    def pipelines(self) -> list[PipelineStarted]:
        """Every pipeline attached so far, in order."""
        return [followed.started for followed in self._followed]

    def take_pipelines(self) -> list[PipelineStarted]:
        """Pipelines attached since the last call."""
        taken, self._new_pipelines = self._new_pipelines, []
        return taken

    def live_pipelines(self) -> list[tuple[int, Pipeline]]:
        """(number, pipeline) of every pipeline followed: for the one monitor module that
        needs live objects beyond records (antflow-tui's live source, for exports)."""
        return [(f.number, f.pipeline) for f in self._followed]

    @property
    def running(self) -> bool:
        """True while any followed pipeline runs."""
        return any(f.pipeline.is_running for f in self._followed)

    def is_running(self, pipeline: int) -> bool:
        """True while that pipeline runs (cheaper than its snapshot)."""
        return self._get(pipeline).pipeline.is_running

    # ---------------------------------------------------------------- records out

    def snapshot(self, pipeline: int) -> Snapshot:
        """Pipeline number `pipeline`'s state now."""
        return self._snapshot(self._get(pipeline))

    def snapshots(self) -> list[Snapshot]:
        """Every followed pipeline's state now."""
        return [self._snapshot(followed) for followed in self._followed]

    def _snapshot(self, followed: _Followed) -> Snapshot:
        return convert.snapshot(
            followed.pipeline,
            followed.number,
            self._abandoned(followed),
            stopped=followed.stopped_by_command,
        )

    def events(self) -> tuple[list[Event], int]:
        """Events since the last call, every pipeline's, oldest first: at most
        `event_capacity` of the newest per tracker, and how many were dropped.

        Under a flood (events were dropped), the tails keep records only over the last
        part of the time until the next call, which is all the newest events need: an
        event is then only counted, a third of what keeping it costs the run.
        """
        self._number_errors()
        events: list[Event] = []
        dropped = 0
        now = time.monotonic()
        period, self._drained_at = now - self._drained_at, now
        for tracked in self._trackers:
            if tracked.tail is None:
                continue
            raw, skipped = _drain_raw(tracked.tail)
            dropped += skipped
            events.extend(self._decoder(tracked).events(raw))
            if skipped and 0 < period < 2.0:
                self._pause_tail(tracked, FLOOD_PAUSE * period)
        if len(self._trackers) > 1:
            events.sort(key=lambda event: event.at)
        return events, dropped

    def _pause_tail(self, tracked: _Tracked, seconds: float) -> None:
        tracker = tracked.tracker
        tracker._pause_tails(True)
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            tracker._pause_tails(False)
            return
        loop.call_later(seconds, tracker._pause_tails, False)

    def decode(self, tracker: StatusTracker, raw: list[h.RawRecord]) -> list[Event]:
        """Events from raw records of one followed tracker (for the recorder)."""
        tracked = next(t for t in self._trackers if t.tracker is tracker)
        return self._decoder(tracked).events(raw)

    def take_errors(self) -> list[ErrorRecord]:
        """Every error record since the last call (lossless), oldest first."""
        self._number_errors()
        taken, self._errors = self._errors, []
        return taken

    def error_number(self, error: BaseException, item_id: Any = None) -> int | None:
        """The `ErrorRecord.number` given to an item's exception, if it was numbered."""
        known = self._numbers.get((id(error), convert._number_key(item_id)))
        return known[1] if known is not None and known[0] is error else None

    def failure_version(self, pipeline: int) -> int:
        """Changes whenever that pipeline's failed items change (for caching `failures`)."""
        return self._get(pipeline).tracker.failure_changes

    def failures(self, pipeline: int, *, tracebacks: bool = True) -> list[ErrorRecord]:
        """The final error of each item currently failed in that pipeline, oldest first
        (`tracebacks`: with the traceback text, which costs a lookup each)."""
        self._number_errors()
        followed = self._get(pipeline)
        found = []
        # Each failed item keeps its number while it stays failed, even once the error
        # has left the bounded table of numbers (a run with more errors than it keeps).
        known = self._failure_numbers.get(pipeline, {})
        kept: dict[int, tuple[object, int]] = {}
        for failure in followed.pipeline._failures.values():
            error = failure.error
            held = known.get(id(failure))
            if held is not None and held[0] is failure:
                number = held[1]
            else:
                found_number = self.error_number(error, failure.entry.item_id)
                if found_number is None:
                    self._error_count += 1
                    found_number = self._error_count
                number = found_number
            kept[id(failure)] = (failure, number)
            value = convert.value_repr(failure.entry.value) if self.values else None
            found.append(
                ErrorRecord(
                    number=number,
                    pipeline=pipeline,
                    at=failure.timestamp,
                    item=item_key(failure.entry.item_id),
                    stage=failure.stage.name,
                    task=None,
                    attempt=failure.attempts,
                    type=convert.error_type(error),
                    message=convert.error_message(error),
                    traceback=(
                        clip(
                            self._traceback(followed.tracker, failure.entry.item_id, error),
                            TRACEBACK_LIMIT,
                            keep_end=True,
                        )
                        if tracebacks
                        else ""
                    ),
                    value=value,
                )
            )
        self._failure_numbers[pipeline] = kept
        return found

    def item(self, pipeline: int, item: ItemKey) -> ItemDetail:
        """One item's story in that pipeline (an unknown pipeline: an empty story)."""
        self._number_errors()
        followed = self._find(pipeline)
        if followed is None:
            return ItemDetail(pipeline, item, known=False)
        known = {key: number for key, (_, number) in self._numbers.items()}
        return convert.item_detail(
            followed.pipeline, pipeline, self._live_id(followed, item), known, values=self.values
        )

    def worker_stack(self, pipeline: int, worker: str) -> AwaitStack | None:
        """Where that worker's task is suspended now (None when it has no task)."""
        followed = self._find(pipeline)
        if followed is None:
            return None
        task = followed.pipeline.get_worker_tasks().get(worker)
        return None if task is None else await_stack(task)

    # ---------------------------------------------------------------- logs

    def log(self, text: str, stream: str = "out") -> LogLine:
        """Record a line the script printed or logged (from any thread)."""
        line = LogLine(at=self.clock(), text=clip(text, LOG_LINE_LIMIT), stream=stream)
        with self._log_lock:
            self._logs.append(line)
        for callback in list(self.on_record):
            callback(line)
        return line

    def take_logs(self) -> list[LogLine]:
        """Every log line since the last call."""
        with self._log_lock:
            taken = list(self._logs)
            self._logs.clear()
        return taken

    # ---------------------------------------------------------------- commands in

    async def execute(self, command: Command, *, by: str = MONITOR) -> str:
        """Carry out a command on the live pipelines; returns the notice to show.

        Args:
            command: What to do.
            by: Who asks (``"a viewer (antflow-tui attach, pid 4242)"``): a `Stop` reaches
                the script as `antflow.PipelineStopped` naming it.
        """
        if isinstance(command, Pause | Resume):
            result = self._pause(command)
        elif isinstance(command, Retry):
            result = await self._retry(command)
        elif isinstance(command, Stop):
            result = await self._stop(command.force, by)
        else:
            raise TypeError(f"unknown command {command!r}")
        control = Control(at=self.clock(), command=command, result=result)
        for callback in list(self.on_record):
            callback(control)
        return result

    def _pause(self, command: Pause | Resume) -> str:
        pausing = isinstance(command, Pause)
        verb = "Paused" if pausing else "Resumed"
        targets = [
            f for f in self._followed if command.pipeline is None or f.number == command.pipeline
        ]
        if command.stage is None and command.worker is None:
            for followed in targets:
                (followed.pipeline.pause if pausing else followed.pipeline.resume)()
            return (
                f"{verb} the run"
                if command.pipeline is None
                else f"{verb} pipeline {command.pipeline}"
            )
        for followed in reversed(targets):
            names = followed.pipeline.get_worker_names()
            has = (
                (command.stage in names)
                if command.stage is not None
                else any(command.worker in workers for workers in names.values())
            )
            if has:
                change = followed.pipeline.pause if pausing else followed.pipeline.resume
                change(stage=command.stage, worker=command.worker)
                what = f"stage {command.stage}" if command.stage else f"worker {command.worker}"
                return f"{verb} {what}"
        return f"No stage or worker named {command.stage or command.worker}"

    async def _retry(self, command: Retry) -> str:
        followed = self._find(command.pipeline)
        if followed is None:
            return f"No pipeline {command.pipeline}"
        pipeline = followed.pipeline
        failed = {item_key(i): i for i in pipeline.failed_item_ids()}
        # Each failed item once, however often the command names it.
        wanted = list(dict.fromkeys(failed[key] for key in command.items if key in failed))
        if not wanted:
            if len(command.items) == 1:
                return "Nothing to retry: that item has not failed"
            return "Nothing to retry: those items have not failed"
        restart = not pipeline.is_running
        if restart:
            await pipeline.start()
        count = 0
        for item_id in wanted:
            with contextlib.suppress(PipelineError):  # retried meanwhile, or just finished
                pipeline.retry(item_id)
                count += 1
        if restart:
            rejoin = asyncio.get_running_loop().create_task(self._rejoin(pipeline))
            self._rejoins.add(rejoin)
            rejoin.add_done_callback(self._rejoins.discard)
        noun = "item" if count == 1 else "items"
        return f"Retrying {count} {noun}"

    async def _rejoin(self, pipeline: Pipeline) -> None:
        with contextlib.suppress(PipelineError, PipelineStopped):
            await pipeline.join()

    @staticmethod
    def stop_notice(force: bool) -> str:
        """What a `Stop` says once done."""
        return "Stopped the run at once" if force else "Stopped the run"

    async def _stop(self, force: bool, by: str) -> str:
        running = [f for f in self._followed if f.pipeline.is_running]
        for followed in running:
            if not followed.stopped_by_command:
                followed.stopped_by_command = True
                followed.unfinished_before_stop = len(followed.pipeline._unfinished)
        await asyncio.gather(
            *(
                f.pipeline.shutdown(graceful=not force, grace=self.stop_grace, by=by)
                for f in running
            ),
            return_exceptions=True,
        )
        return self.stop_notice(force)

    # ---------------------------------------------------------------- internals

    def _get(self, number: int) -> _Followed:
        followed = self._find(number)
        if followed is None:
            raise KeyError(f"no pipeline numbered {number}")
        return followed

    def _find(self, number: int) -> _Followed | None:
        return self._followed[number - 1] if 0 < number <= len(self._followed) else None

    def abandoned(self, pipeline: int) -> int:
        """Of that pipeline's unfinished items, those the script's own shutdown left."""
        return self._abandoned(self._get(pipeline))

    @staticmethod
    def _abandoned(followed: _Followed) -> int:
        unfinished = len(followed.pipeline._unfinished)
        if not followed.stopped_by_command:
            return unfinished
        return min(followed.unfinished_before_stop, unfinished)

    def _decoder(self, tracked: _Tracked) -> convert.RawDecoder:
        owners: dict[str, int] = {}
        for number in tracked.numbers:
            for stage in self._followed[number - 1].started.stages:
                owners[stage.name] = 0 if stage.name in owners else number
        return convert.RawDecoder.for_tracker(
            tracked.tracker, lambda stage: owners.get(stage or "", 0), self.error_number
        )

    def _number_errors(self) -> None:
        """Number every new error of every tracker, in the order they happened."""
        for tracked in self._trackers:
            if not tracked.errors:
                continue
            notes, tracked.errors[:] = list(tracked.errors), []
            owners = self._decoder_owner(tracked)
            for note in notes:
                self._error_count += 1
                number = self._error_count
                key = (id(note.exception), convert._number_key(note.item_id))
                self._numbers[key] = (note.exception, number)
                stage_pipeline = owners(note)
                value = None
                if self.values:
                    followed = self._find(stage_pipeline)
                    if followed is not None:
                        location = followed.pipeline.locate(note.item_id)
                        value = None if location is None else convert.value_repr(location.value)
                self._errors.append(
                    convert.error_record(note, number, tracked.tracker, stage_pipeline, value)
                )
        while len(self._numbers) > _NUMBERED_ERRORS:
            del self._numbers[next(iter(self._numbers))]

    def _decoder_owner(self, tracked: _Tracked) -> Callable[[ErrorNote], int]:
        decoder = self._decoder(tracked)

        def owner(note: ErrorNote) -> int:
            events = decoder.events([(note.item_id, note.code, note.timestamp, None, None)])
            return events[0].pipeline if events else 0

        return owner

    def _traceback(self, tracker: StatusTracker, item_id: Any, error: BaseException) -> str:
        for attempt_error in reversed(tracker._errors.get(item_id, ())):
            if attempt_error.exception is error:
                return attempt_error.traceback
        return ""

    @staticmethod
    def _live_id(followed: _Followed, item: ItemKey) -> Any:
        """The live id an item key stands for (a repr key: the id whose repr it is)."""
        if not isinstance(item, ReprKey):
            return item
        failures = followed.pipeline._failures
        tracker = followed.tracker
        logs = tracker._logs
        found = followed.ids_by_repr.find(
            item.repr,
            lambda: itertools.chain(failures, logs),
            version=(tracker.failure_changes, len(logs), tracker.evicted_items),
            is_live=lambda candidate: candidate in failures or candidate in logs,
        )
        return item if found is MISSING else found


def _drain_raw(tail: EventTail) -> tuple[list[h.RawRecord], int]:
    """The raw records a tail holds since its last drain, and how many it skipped."""
    return tail.drain_raw()
