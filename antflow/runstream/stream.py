"""RunStream: the live producer of a run's records, and the carrier of its commands.

A monitor (antflow-tui's live source, the recorder, the socket server) creates one
RunStream per run and attaches it to every pipeline that starts (``antflow.observe``).
It reads the engine through its declared surface (`antflow.probe`) and never its private
state; everything it returns is a record from `antflow.runstream.records`. It numbers the
run's errors once (`numbers`, shared with a recorder of it), maps item keys back to live
ids (`live_id`), keeps the inputs fed when asked (`inputs=True`, `input_of`), and tells
when a pipeline's run ends (`on_ended`).

Cost model: `snapshot()` is O(stages + workers); `events()` rebuilds at most
`event_capacity` of the newest events from a bounded tail of raw records (the rest are
counted as dropped, never built); errors come through a lossless sink, but are rare.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import os
import stat
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final

import msgspec

import antflow
from antflow.exceptions import PipelineError, PipelineStopped
from antflow.probe import TrackerProbe
from antflow.runstream import convert
from antflow.runstream.budgets import raise_budgets
from antflow.runstream.inputs import InputStore
from antflow.runstream.numbering import ErrorNumbers
from antflow.runstream.records import (
    FORMAT,
    LOG_LINE_LIMIT,
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
    RaiseBudget,
    Resume,
    Retry,
    SetConcurrency,
    Snapshot,
    Stop,
    clip,
    item_key,
)
from antflow.runstream.stacks import await_stack

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Sequence

    from antflow import _history as h
    from antflow._history import ErrorNote
    from antflow.pipeline import Pipeline
    from antflow.probe import ErrorSink, Probe
    from antflow.tail import EventTail
    from antflow.tracker import StatusTracker

logger = logging.getLogger(__name__)

FLOOD_PAUSE: Final = 0.8
"""Under a flood, the part of the time between two `events()` calls the tails skip."""
STOP_GRACE: Final = 3.0
"""Seconds a graceful `Stop` lets running items finish before cancelling them."""
MONITOR: Final = "a monitor"
"""Who a `Stop` comes from when the caller does not say."""


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
    inputs: InputStore | None = None
    """What was fed into it, when the stream keeps inputs."""
    detach: list[Callable[[], None]] = field(default_factory=list)
    """Removes the stream's listeners from the pipeline."""

    @property
    def probe(self) -> Probe:
        return self.pipeline.probe


@dataclass(slots=True)
class _Tracked:
    """One tracker the stream reads (pipelines may share one)."""

    tracker: StatusTracker
    probe: TrackerProbe
    errors: ErrorSink | None
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
        inputs: Keep what was fed into each pipeline (`input_of`): the newest items,
            twice what a pipeline can hold in flight, and failed or unfinished ones for
            good. Costs each item fed a call.
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
        inputs: bool = False,
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
        self.inputs = inputs
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
        self.numbers = ErrorNumbers()
        """The run's one numbering of errors (a recorder of this stream uses it too)."""
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
        self.on_ended: list[Callable[[int], None]] = []
        """Called with a followed pipeline's number each time its run ends (`join()`
        returned, or a shutdown is done)."""

    def note_script(self, path: str | os.PathLike[str] | None) -> None:
        """Put the sha256 of the script's file (read now) in the header, unless it holds
        one already (a recorder opened after this writes it)."""
        if path is None or self.header.script_sha256 is not None:
            return
        digest = script_digest(path)
        if digest is not None:
            self.header = msgspec.structs.replace(self.header, script_sha256=digest)

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
        probe = pipeline.probe
        tracker = probe.ensure_tracker(self.history)
        pipeline.measure_latency()
        number = len(self._followed) + 1
        started = convert.pipeline_started(probe, number, probe.now())
        followed = _Followed(pipeline, number, tracker, started)
        followed.detach.append(probe.on_ended(lambda: self._ended(number)))
        if self.inputs:
            inputs = followed.inputs = InputStore(probe, pipeline.stages)
            followed.detach.append(probe.on_fed(inputs.add))
        self._followed.append(followed)
        tracked = next((t for t in self._trackers if t.tracker is tracker), None)
        if tracked is None:
            tracker_probe = TrackerProbe(tracker)
            errors = tracker_probe.open_error_sink() if self.follow_errors else None
            tracked = _Tracked(tracker, tracker_probe, errors)
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
        """Stop following every pipeline (tails, sinks and listeners are released)."""
        for tracked in self._trackers:
            if tracked.tail is not None:
                tracked.tail.close()
            if tracked.errors is not None:
                tracked.errors.close()
        self._trackers.clear()
        for followed in self._followed:
            for detach in followed.detach:
                detach()
            followed.detach.clear()

    def _ended(self, number: int) -> None:
        for callback in list(self.on_ended):
            callback(number)

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
            followed.probe,
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
        tracker = tracked.probe
        tracker.pause_tails(True)
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            tracker.pause_tails(False)
            return
        loop.call_later(seconds, tracker.pause_tails, False)

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
        return self.numbers.number_of(error, item_id)

    def failure_version(self, pipeline: int) -> int:
        """Changes whenever that pipeline's failed items change (for caching `failures`)."""
        return self._get(pipeline).tracker.failure_changes

    def failures(self, pipeline: int, *, tracebacks: bool = True) -> list[ErrorRecord]:
        """The final error of each item currently failed in that pipeline, oldest first
        (`tracebacks`: with the traceback text, which costs a lookup each)."""
        self._number_errors()
        followed = self._get(pipeline)
        tracker = TrackerProbe(followed.tracker)
        failures = followed.probe.failures()
        numbers = self.numbers.failed(pipeline, failures)
        return [
            convert.failure_record(
                failure,
                number,
                pipeline,
                traceback=(
                    tracker.traceback_of(failure.item_id, failure.error) if tracebacks else ""
                ),
                value=convert.value_repr(failure.value) if self.values else None,
            )
            for failure, number in zip(failures, numbers, strict=True)
        ]

    def item(self, pipeline: int, item: ItemKey) -> ItemDetail:
        """One item's story in that pipeline (an unknown pipeline: an empty story)."""
        self._number_errors()
        followed = self._find(pipeline)
        if followed is None:
            return ItemDetail(pipeline, item, known=False)
        return convert.item_detail(
            followed.pipeline,
            pipeline,
            followed.probe.live_id(item),
            self.numbers.number_of,
            values=self.values,
        )

    def live_id(self, pipeline: int, item: ItemKey) -> Any:
        """The live id an item key stands for in that pipeline (`antflow.probe.Probe.live_id`;
        an unknown pipeline: the key itself)."""
        followed = self._find(pipeline)
        return item if followed is None else followed.probe.live_id(item)

    def input_of(self, pipeline: int, item_id: Any) -> tuple[bool, Any]:
        """(True, the item as it was fed into that pipeline under `item_id`), or (False,
        None) when it is not kept (see `inputs`)."""
        followed = self._find(pipeline)
        if followed is None or followed.inputs is None:
            return False, None
        return followed.inputs.input_of(item_id)

    def inputs_of(self, pipeline: int, item_ids: Iterable[Any]) -> dict[Any, Any]:
        """The items as fed into that pipeline, by id, for those of `item_ids` kept."""
        followed = self._find(pipeline)
        if followed is None or followed.inputs is None:
            return {}
        return followed.inputs.inputs_of(item_ids)

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
        elif isinstance(command, SetConcurrency):
            result = self._set_concurrency(command)
        elif isinstance(command, RaiseBudget):
            result = raise_budgets(
                (
                    followed.pipeline
                    for followed in self._followed
                    if command.pipeline is None or followed.number == command.pipeline
                ),
                command,
            )
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

    def _set_concurrency(self, command: SetConcurrency) -> str:
        followed = self._find(command.pipeline)
        if followed is None:
            return f"No pipeline {command.pipeline}"
        pipeline = followed.pipeline
        workers = pipeline.get_worker_names().get(command.stage)
        if workers is None:
            return f"No stage named {command.stage}"
        try:
            pipeline.set_concurrency(command.stage, command.limit)
        except ValueError as error:
            return str(error)
        calls = "1 call" if command.limit == 1 else f"{command.limit:,} calls"
        return f"{command.stage}: at most {calls} at once (of {len(workers):,} workers)"

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
                followed.unfinished_before_stop = followed.probe.counters().unfinished
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
        unfinished = followed.probe.counters().unfinished
        if not followed.stopped_by_command:
            return unfinished
        return min(followed.unfinished_before_stop, unfinished)

    def _decoder(self, tracked: _Tracked) -> convert.RawDecoder:
        owners: dict[str, int] = {}
        for number in tracked.numbers:
            for stage in self._followed[number - 1].started.stages:
                owners[stage.name] = 0 if stage.name in owners else number
        return convert.RawDecoder.for_tracker(
            tracked.probe, lambda stage: owners.get(stage or "", 0), self.error_number
        )

    def _number_errors(self) -> None:
        """Number every new error of every tracker, in the order they happened."""
        for tracked in self._trackers:
            notes = [] if tracked.errors is None else tracked.errors.take()
            if not notes:
                continue
            owners = self._decoder_owner(tracked)
            for note in notes:
                number = self.numbers.number(note.exception, note.item_id)
                stage_pipeline = owners(note)
                value = None
                if self.values:
                    followed = self._find(stage_pipeline)
                    if followed is not None:
                        location = followed.pipeline.locate(note.item_id)
                        value = None if location is None else convert.value_repr(location.value)
                self._errors.append(
                    convert.error_record(note, number, tracked.probe, stage_pipeline, value)
                )
        self.numbers.trim()

    def _decoder_owner(self, tracked: _Tracked) -> Callable[[ErrorNote], int]:
        decoder = self._decoder(tracked)

        def owner(note: ErrorNote) -> int:
            events = decoder.events([(note.item_id, note.code, note.timestamp, None, None)])
            return events[0].pipeline if events else 0

        return owner


def _drain_raw(tail: EventTail) -> tuple[list[h.RawRecord], int]:
    """The raw records a tail holds since its last drain, and how many it skipped."""
    return tail.drain_raw()


SCRIPT_DIGEST_LIMIT: Final = 64 << 20
"""Largest script file hashed (bytes): a script is a few kilobytes."""


def script_digest(path: str | os.PathLike[str]) -> str | None:
    """The sha256 (hex) of a script's file; None when it cannot be read (or is no file,
    or larger than `SCRIPT_DIGEST_LIMIT`)."""
    digest = hashlib.sha256()
    try:
        # Not blocking: a FIFO named as the script would wait for a writer.
        descriptor = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
        with os.fdopen(descriptor, "rb") as script:
            if not stat.S_ISREG(os.fstat(descriptor).st_mode):
                return None
            read = 0
            while chunk := script.read(1 << 20):
                read += len(chunk)
                if read > SCRIPT_DIGEST_LIMIT:
                    return None
                digest.update(chunk)
    except OSError:
        return None
    return digest.hexdigest()
