"""ReplaySource: a recorded run, played back through the same panels as a live one.

The replay has a position on the recording's clock (`RunStatus.now`) that moves while it
plays (at `speed` recorded seconds per second) and jumps when the scrubber seeks. Each
frame applies the records between the last position and the new one; a jump backwards,
or far forwards, starts over from the recording's nearest seek point instead
(`Recording.seek`), so memory stays that of one moment of the run, not of the file.

Nothing here can change the run: there is no pause, retry or stop; item stories come
from the file, as of the position.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Final, Protocol

import msgspec

from antflow.runstream.records import (
    Control,
    End,
    ErrorRecord,
    Event,
    Gap,
    ItemDetail,
    ItemLocationRecord,
    LogLine,
    PipelineStarted,
    Snapshot,
)
from antflow_tui.accounting import run_counts
from antflow_tui.export import (
    ExportRecord,
    header_line,
    recorded_failed_line,
    write_export,
)
from antflow_tui.source.base import SEEK, VALUES, Frame, ReplayPosition, RunStatus, failure_of
from antflow_tui.trends import HISTORY_SECONDS

if TYPE_CHECKING:
    from collections.abc import Iterator

    from antflow.runstream.fileformat import SeekPoint
    from antflow.runstream.records import (
        AwaitStack,
        Command,
        Header,
        ItemKey,
        Record,
    )

FRAME_EVENTS: Final = 120
"""Most events a frame carries; past this the log says how many it skipped."""
FAR_SECONDS: Final = 30.0
"""A jump forward at least this far seeks instead of reading every record on the way."""
ERROR_MEMORY: Final = 10_000
"""Recent error records kept to name the error of a failure met later."""
TREND_STEP_SECONDS: Final = 1.0
"""After a jump, the trends are rebuilt from a snapshot a second at most."""
LOOKBACK_EVENTS: Final = 2_000
"""Events read before a jump's own for the starts of the attempts that end in it."""
_ENDS: Final = frozenset({"complete", "retry", "fail"})


@dataclass(slots=True)
class _Taken:
    """What one window of a recording brought."""

    events: list[Event] = field(default_factory=list)
    errors: list[ErrorRecord] = field(default_factory=list)
    logs: list[LogLine] = field(default_factory=list)
    snapshots: dict[int, Snapshot] = field(default_factory=dict)
    every_snapshot: list[Snapshot] = field(default_factory=list)
    """All of them, in order (the trends want each step, not only the last)."""
    dropped: int = 0
    failures_changed: set[int] = field(default_factory=set)


class RecordingLike(Protocol):
    """What a replay reads of a recording (`antflow.runstream.fileformat.Recording`)."""

    header: Header
    complete: bool
    damaged: bool
    """Lines were passed over as damaged (so far: it is found out as lines are read)."""
    end: End | None
    """The end record of a clean close."""
    started_at: float
    ended_at: float

    def pipelines(self) -> list[PipelineStarted]: ...

    def window(self, start: float, stop: float, newest: int) -> tuple[list[Record], int]: ...

    def newest_before(self, at: float, newest: int) -> tuple[list[Record], int]: ...

    def idle_since(self, at: float) -> float | None: ...

    def seek(self, at: float) -> SeekPoint: ...

    def snapshots(self, start: float, stop: float, every: float = 0.0) -> list[Snapshot]: ...

    def item(self, pipeline: int, item: ItemKey) -> ItemDetail: ...


class ReplaySource:
    """Plays `recording` back as frames.

    Args:
        recording: The opened recording.
        name: What the header calls it (the file's name).
        at: Where to start (default: the recording's start).
        playing: Start playing at once.
        speed: Recorded seconds per second of play.
    """

    def __init__(
        self,
        recording: RecordingLike,
        *,
        name: str = "",
        at: float | None = None,
        playing: bool = False,
        speed: float = 1.0,
    ) -> None:
        self.recording = recording
        self.name = name
        header = recording.header
        self.capabilities: frozenset[str] = frozenset({SEEK, VALUES} if header.values else {SEEK})
        self.start = recording.started_at
        self.end = max(recording.ended_at, self.start)
        self.position = self.start
        self.playing = playing
        self.speed = speed
        self._wanted: float | None = self.start if at is None else at
        self._first = True
        self._last_now: float | None = None
        self._pipelines: dict[int, PipelineStarted] = {
            started.pipeline: started for started in recording.pipelines()
        }
        self._snapshots: dict[int, Snapshot] = {}
        self._failures: dict[int, OrderedDict[ItemKey, ErrorRecord]] = {}
        self._errors: OrderedDict[int, ErrorRecord] = OrderedDict()
        self._end: End | None = None
        self._dirty = True
        self._stories: OrderedDict[tuple[int, ItemKey], ItemDetail] = OrderedDict()
        self._starts: OrderedDict[tuple[int, ItemKey, str, str | None, int], float] = OrderedDict()
        """When each task attempt seen starting began (for its duration at its end)."""

    # ---------------------------------------------------------------- scrubber

    def play(self, playing: bool) -> None:
        self.playing = playing
        self._dirty = True

    def seek(self, at: float) -> None:
        self._wanted = min(max(at, self.start), self.end)
        self._dirty = True

    def set_speed(self, speed: float) -> None:
        self.speed = speed
        self._dirty = True

    # ---------------------------------------------------------------- frames

    def next_frame(self, now: float) -> Frame | None:
        elapsed = 0.0 if self._last_now is None else max(now - self._last_now, 0.0)
        self._last_now = now
        wanted = self._wanted
        self._wanted = None
        if wanted is None and self.playing:
            wanted = min(self.position + elapsed * self.speed, self.end)
            if wanted >= self.end:
                self.playing = False  # the end: hold there
        if wanted is not None and (
            self._first or wanted < self.position or wanted - self.position >= FAR_SECONDS
        ):
            self._first = False
            return self._jump(wanted)
        if wanted is None or wanted == self.position:
            if not self._dirty:
                return None
            wanted = self.position
        return self._advance(wanted)

    def _jump(self, at: float) -> Frame:
        """Start over from the recording's state at `at` (a reset frame)."""
        point = self.recording.seek(at)
        self.position = at
        self._snapshots = dict(point.snapshots)
        self._failures = {
            number: OrderedDict((failure.item, failure) for failure in failures)
            for number, failures in point.failures.items()
        }
        self._errors.clear()
        self._starts.clear()
        self._end = None
        self._dirty = False
        # The newest events at or before the position, however long before it they were
        # (the log after a jump is the same whichever way the position was reached).
        taken = self._apply(*self.recording.newest_before(at, FRAME_EVENTS), failures=False)
        if at >= self.end and self._end is None:
            self._end = self.recording.end
        # The trends (sparklines) reach back a few minutes: their snapshots, read through
        # the recording's index, one a second at most.
        history = self.recording.snapshots(at - HISTORY_SECONDS, at, every=TREND_STEP_SECONDS)
        self._durations_from_before(taken.events, history)
        return Frame(
            status=self._status(),
            pipelines=self._started(),
            snapshots=dict(self._snapshots),
            history=tuple(history),
            events=tuple(taken.events),
            dropped=taken.dropped,
            errors=tuple(taken.errors),
            failures={n: tuple(f.values()) for n, f in self._failures.items()},
            logs=tuple(taken.logs),
            reset=True,
        )

    def _advance(self, to: float) -> Frame:
        """Apply the records after the position, up to `to`."""
        start, self.position = self.position, to
        self._dirty = False
        taken = self._take(start, to, failures=True) if to > start else _Taken()
        if taken.dropped:
            # Events were counted, not built: the failures come from the seek points.
            point = self.recording.seek(to)
            self._failures = {
                number: OrderedDict((failure.item, failure) for failure in failures)
                for number, failures in point.failures.items()
            }
            taken.failures_changed.update(self._failures)
        return Frame(
            status=self._status(),
            pipelines=self._started(),
            snapshots=taken.snapshots,
            history=tuple(taken.every_snapshot),
            events=tuple(taken.events),
            dropped=taken.dropped,
            errors=tuple(taken.errors),
            failures={n: tuple(self._failures.get(n, {}).values()) for n in taken.failures_changed}
            or None,
            logs=tuple(taken.logs),
        )

    def _take(self, start: float, stop: float, *, failures: bool) -> _Taken:
        """The records with start < at <= stop, at most a frame's worth of events (the
        recording builds no more), applied to what the replay keeps."""
        return self._apply(*self.recording.window(start, stop, FRAME_EVENTS), failures=failures)

    def _apply(self, records: list[Record], dropped: int, *, failures: bool) -> _Taken:
        """Apply records read from the recording to what the replay keeps."""
        taken = _Taken(dropped=dropped)
        for record in records:
            if isinstance(record, Event):
                taken.events.append(self._with_duration(record))
                if failures and self._track_failure(record):
                    taken.failures_changed.add(record.pipeline)
            elif isinstance(record, Snapshot):
                taken.snapshots[record.pipeline] = record
                taken.every_snapshot.append(record)
                self._snapshots[record.pipeline] = record
            elif isinstance(record, ErrorRecord):
                self._remember(record)
                taken.errors.append(record)
            elif isinstance(record, LogLine):
                taken.logs.append(record)
            elif isinstance(record, Control):
                taken.logs.append(_control_line(record))
            elif isinstance(record, Gap):
                taken.dropped += record.dropped
            elif isinstance(record, PipelineStarted):
                self._pipelines[record.pipeline] = record
            elif isinstance(record, End):
                self._end = record
        return taken

    def _with_duration(self, event: Event) -> Event:
        """The event, with how long its task attempt ran (a recording keeps when each
        attempt started and ended, not the difference)."""
        key = (event.pipeline, event.item, event.stage, event.task, event.attempt)
        if event.kind == "start":
            self._starts[key] = event.at
            while len(self._starts) > ERROR_MEMORY:
                self._starts.popitem(last=False)
        elif event.kind in ("complete", "retry", "fail") and event.duration is None:
            began = self._starts.pop(key, None)
            if began is not None:
                return msgspec.structs.replace(event, duration=event.at - began)
        return event

    def _durations_from_before(self, events: list[Event], history: list[Snapshot]) -> None:
        """Durations for the attempts ending in a jump's events that began before them
        (the live log showed them: a replay opened on a run's end must too). Their
        starts are among the events just before, or, for long attempts, in the workers
        of the snapshots read for the trends."""
        missing = [n for n, e in enumerate(events) if e.kind in _ENDS and e.duration is None]
        if not missing:
            return
        earlier, _ = self.recording.newest_before(events[0].at, LOOKBACK_EVENTS)
        began = {_attempt(r): r.at for r in earlier if isinstance(r, Event) and r.kind == "start"}
        for index in missing:
            event = events[index]
            start = began.get(_attempt(event))
            if start is None:
                start = self._held_since(event, history)
            if start is not None and start <= event.at:
                events[index] = msgspec.structs.replace(event, duration=event.at - start)

    def _held_since(self, event: Event, history: list[Snapshot]) -> float | None:
        """When the event's worker began the attempt, as the last snapshot before its end
        showing the worker on the item says."""
        started = self._pipelines.get(event.pipeline)
        if started is None:
            return None
        found = next(
            (
                (stage, config.workers.index(event.worker))
                for stage, config in enumerate(started.stages)
                if config.name == event.stage and event.worker in config.workers
            ),
            None,
        )
        if found is None:
            return None
        stage, position = found
        for snapshot in reversed(history):
            if snapshot.pipeline != event.pipeline or snapshot.at > event.at:
                continue
            rows = snapshot.workers[stage] if stage < len(snapshot.workers) else ()
            row = rows[position] if position < len(rows) else None
            if row is not None and row.holding and row.item == event.item:
                return row.since
            return None  # the worker held something else then: the attempt began after
        return None

    def _started(self) -> tuple[PipelineStarted, ...]:
        """The pipelines started by the position (a recording knows them all up front)."""
        return tuple(
            self._pipelines[n]
            for n in sorted(self._pipelines)
            if self._pipelines[n].at <= self.position
        )

    def _track_failure(self, event: Event) -> bool:
        """Keep the failed items as of the position; True when they changed."""
        failed = self._failures.setdefault(event.pipeline, OrderedDict())
        if event.kind == "failed":
            error = self._errors.get(event.error) if event.error is not None else None
            failed[event.item] = failure_of(event, error)
            if error is not None and error.attempt != event.attempt:
                failed[event.item] = msgspec.structs.replace(error, attempt=event.attempt)
            return True
        if event.kind in ("queued", "in_progress") and event.item in failed:
            del failed[event.item]  # retried
            return True
        return False

    def _remember(self, error: ErrorRecord) -> None:
        self._errors[error.number] = error
        while len(self._errors) > ERROR_MEMORY:
            self._errors.popitem(last=False)

    def _status(self) -> RunStatus:
        header = self.recording.header
        ended_at = self._ended_at()
        moving = [s for s in self._snapshots.values() if s.running]
        end = self.recording.end
        reason = "" if end is None or ended_at is None else end.reason
        return RunStatus(
            title=header.script or self.name,
            now=self.position,
            started_at=header.started_at or self.start,
            ended_at=ended_at,
            ends=1 if ended_at is not None else 0,
            active=False,
            paused=bool(moving) and all(s.paused for s in moving),
            stop_requested=reason in ("stopped", "interrupted"),
            stopping=any(s.stopping for s in moving),
            crashed=reason == "error",
            replay=ReplayPosition(
                start=self.start,
                end=self.end,
                playing=self.playing,
                speed=self.speed,
                complete=self.recording.complete,
                damaged=self.recording.damaged,
            ),
        )

    def _ended_at(self) -> float | None:
        """When the run ended, as of the position (None: it runs on). A file goes on
        after its run while the app stays open (the user looking at the result): the run
        ended when its pipelines last stopped running, as a live run ends when its script
        does, so elapsed time and rates are the run's own, not the file's."""
        end = self._end if self._end is not None and self.position >= self._end.at else None
        if self.recording.end is None:
            return None  # a killed run's file never says its script ended
        if any(started.at > self.position for started in self._pipelines.values()):
            return None  # a pipeline is still to start: the script runs on
        idle = self.recording.idle_since(self.position)
        if idle is not None:
            return idle
        return None if end is None else end.at

    # ---------------------------------------------------------------- pulls

    async def item(self, pipeline: int, item: ItemKey) -> ItemDetail:
        """The item's recorded story up to the position (read from the file once)."""
        numbers = sorted(self._pipelines)
        if pipeline == 0:
            knowing = [n for n in numbers if self._story(n, item).known]
            pipeline = knowing[-1] if knowing else (numbers[-1] if numbers else 1)
        story = self._story(pipeline, item)
        at = self.position
        events = tuple(event for event in story.events if event.at <= at)
        errors = tuple(error for error in story.errors if error.at <= at)
        statuses = [event for event in events if event.kind in _STATUS_KINDS]
        last = statuses[-1] if statuses else None
        location = _location(last, errors)
        also_in = tuple(
            n for n in numbers if n != pipeline and len(numbers) > 1 and self._story(n, item).known
        )
        return ItemDetail(
            pipeline=pipeline,
            item=item,
            known=bool(events),
            status=None if last is None else last.kind,
            stage=None if last is None else last.stage,
            events=events,
            errors=errors,
            location=location,
            also_in=also_in,
        )

    def _story(self, pipeline: int, item: ItemKey) -> ItemDetail:
        key = (pipeline, item)
        story = self._stories.get(key)
        if story is None:
            story = self._stories[key] = self.recording.item(pipeline, item)
            while len(self._stories) > 64:
                self._stories.popitem(last=False)
        return story

    async def worker_stack(self, pipeline: int, worker: str) -> AwaitStack | None:
        return None

    async def send(self, command: Command) -> str:
        return "A recording cannot be controlled."

    def export(self, path: Path, *, in_flight_unfinished: bool = False) -> int:
        """The failed items as of the position, with their errors (and their values as
        reprs, when the recording kept them)."""
        counts = run_counts(self._snapshots.values(), known_total=None)
        started = self._started()
        names = [
            one.name or ("pipeline" if len(started) == 1 else f"pipeline-{one.pipeline}")
            for one in started
        ]

        def lines() -> Iterator[ExportRecord]:
            yield header_line(
                counts, script=self.recording.header.script or self.name, pipelines=names
            )
            for one, name in zip(started, names, strict=True):
                for failure in self._failures.get(one.pipeline, {}).values():
                    yield recorded_failed_line(name, failure)

        return write_export(Path(path), lines())


_STATUS_KINDS: Final = frozenset(
    {"queued", "in_progress", "completed", "failed", "retrying", "skipped", "unfinished"}
)


_LOCATED: Final = {
    "queued": "queued",
    "in_progress": "running",
    "retrying": "waiting for a retry",
    "failed": "failed",
}
"""Where an item whose last status is this stands (the others have left the pipeline)."""


def _location(last: Event | None, errors: tuple[ErrorRecord, ...]) -> ItemLocationRecord | None:
    """Where the item stood at the position, from its last status event; the value it
    held is known when the recording kept values (its error records carry it)."""
    if last is None or last.kind not in _LOCATED:
        return None
    value = next((error.value for error in reversed(errors) if error.value is not None), None)
    worker = last.worker if last.kind == "in_progress" else None
    return ItemLocationRecord(
        stage=last.stage, state=_LOCATED[last.kind], worker=worker, value=value
    )


def _attempt(event: Event) -> tuple[int, ItemKey, str, str | None, int]:
    """Which task attempt an event is of (its start and its end share it)."""
    return (event.pipeline, event.item, event.stage, event.task, event.attempt)


def _control_line(control: Control) -> LogLine:
    """A control given to the recorded run, as a log line."""
    return LogLine(at=control.at, text=f"(control) {control.result}", stream="control")
