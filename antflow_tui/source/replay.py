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

from typing import TYPE_CHECKING, ClassVar, Final, Protocol

import msgspec

from antflow.runstream.records import Event, ItemDetail, ItemLocationRecord
from antflow_tui.header import resumed_description
from antflow_tui.source.base import FRAME_EVENTS, Can, Frame, ReplayPosition, RunSource, RunStatus
from antflow_tui.source.frames import ATTEMPT_ENDS, RecordFrames, attempt_of
from antflow_tui.source.seen import export_seen
from antflow_tui.trends import HISTORY_SECONDS

if TYPE_CHECKING:
    from collections.abc import MutableSequence
    from pathlib import Path

    from antflow.runstream.fileformat import SeekPoint
    from antflow.runstream.records import (
        End,
        ErrorRecord,
        Header,
        ItemKey,
        PipelineStarted,
        Record,
        Snapshot,
    )
    from antflow_tui.source.state import RunState

FAR_SECONDS: Final = 30.0
"""A jump forward at least this far seeks instead of reading every record on the way."""
TREND_STEP_SECONDS: Final = 1.0
"""After a jump, the trends are rebuilt from a snapshot a second at most."""
LOOKBACK_EVENTS: Final = 2_000
"""Events read before a jump's own for the starts of the attempts that end in it."""


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


class ReplaySource(RunSource):
    """Plays `recording` back as frames.

    Args:
        recording: The opened recording.
        name: What the header calls it (the file's name).
        at: Where to start (default: the recording's start).
        playing: Start playing at once.
        speed: Recorded seconds per second of play.
    """

    CAN: ClassVar[frozenset[Can]] = frozenset({Can.SEEK, Can.VALUES})

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
        self.start = recording.started_at
        self.end = max(recording.ended_at, self.start)
        self.position = self.start
        self.playing = playing
        self.speed = speed
        self._wanted: float | None = self.start if at is None else at
        self._first = True
        self._last_now: float | None = None
        self._records = RecordFrames(trend_every_snapshot=True)
        # A recording knows its pipelines up front (they show as the position reaches them).
        self._records.take(recording.pipelines())
        self._dirty = True
        # A kept run that resumed another says so, as it did live (issue 20).
        self._resumed = resumed_description(recording.header.history)

    def capabilities(self) -> frozenset[Can]:
        # Values only when the run recorded them.
        return self.CAN if self.recording.header.values else self.CAN - {Can.VALUES}

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
        records = self._records
        records.seek(point.snapshots, point.failures)
        self._dirty = False
        # The newest events at or before the position, however long before it they were
        # (the log after a jump is the same whichever way the position was reached).
        newest, dropped = self.recording.newest_before(at, FRAME_EVENTS)
        records.take(newest, following=False)
        records.dropped(dropped)
        if at >= self.end and records.end is None:
            records.end = self.recording.end
        # The trends (sparklines) reach back a few minutes: their snapshots, read through
        # the recording's index, one a second at most.
        history = self.recording.snapshots(at - HISTORY_SECONDS, at, every=TREND_STEP_SECONDS)
        self._durations_from_before(records.events, history)
        records.trends(history)
        return records.frame(self._status(), pipelines=self._started(), reset=True)

    def _advance(self, to: float) -> Frame:
        """Apply the records after the position, up to `to`."""
        start, self.position = self.position, to
        self._dirty = False
        records = self._records
        if to > start:
            # At most a frame's worth of events (the recording builds no more).
            taken, dropped = self.recording.window(start, to, FRAME_EVENTS)
            records.take(taken)
            records.dropped(dropped)
            if dropped:
                # Events were counted, not built: the failures come from the seek points.
                failures = self.recording.seek(to).failures
                for number in set(records.failures) | set(failures):
                    records.set_failures(number, failures.get(number, ()))
        return records.frame(self._status(), pipelines=self._started())

    def _durations_from_before(
        self, events: MutableSequence[Event], history: list[Snapshot]
    ) -> None:
        """Durations for the attempts ending in a jump's events that began before them
        (the live log showed them: a replay opened on a run's end must too). Their
        starts are among the events just before, or, for long attempts, in the workers
        of the snapshots read for the trends."""
        missing = [n for n, e in enumerate(events) if e.kind in ATTEMPT_ENDS and e.duration is None]
        if not missing:
            return
        earlier, _ = self.recording.newest_before(events[0].at, LOOKBACK_EVENTS)
        began = {attempt_of(r): r.at for r in earlier if isinstance(r, Event) and r.kind == "start"}
        for index in missing:
            event = events[index]
            start = began.get(attempt_of(event))
            if start is None:
                start = self._held_since(event, history)
            if start is not None and start <= event.at:
                events[index] = msgspec.structs.replace(event, duration=event.at - start)

    def _held_since(self, event: Event, history: list[Snapshot]) -> float | None:
        """When the event's worker began the attempt, as the last snapshot before its end
        showing the worker on the item says."""
        started = self._records.pipelines.get(event.pipeline)
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
        known = self._records.pipelines
        return tuple(known[n] for n in sorted(known) if known[n].at <= self.position)

    def _status(self) -> RunStatus:
        header = self.recording.header
        ended_at = self._ended_at()
        moving = [s for s in self._records.snapshots.values() if s.running]
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
            resumed=self._resumed,
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
        recorded = self._records.end
        end = recorded if recorded is not None and self.position >= recorded.at else None
        if self.recording.end is None:
            return None  # a killed run's file never says its script ended
        if any(started.at > self.position for started in self._records.pipelines.values()):
            return None  # a pipeline is still to start: the script runs on
        idle = self.recording.idle_since(self.position)
        if idle is not None:
            return idle
        return None if end is None else end.at

    # ---------------------------------------------------------------- pulls

    async def item(self, pipeline: int, item: ItemKey) -> ItemDetail:
        """The item's recorded story up to the position (read from the file once)."""
        numbers = sorted(self._records.pipelines)
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
        # A recording keeps what the item had reported by its end; before the position
        # reaches its last event, what it had reported then is not known.
        reached_end = bool(events) and len(events) == len(story.events)
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
            usage=story.usage if reached_end else None,
        )

    def _story(self, pipeline: int, item: ItemKey) -> ItemDetail:
        """The item's whole recorded story (read from the file once)."""
        story = self._records.story(pipeline, item)
        if story is None:
            story = self.recording.item(pipeline, item)
            self._records.keep_story(story)
        return story

    def export(self, path: Path, seen: RunState, *, in_flight_unfinished: bool = False) -> int:
        """The failed items as of the position, with their errors (and their values as
        reprs, when the recording kept them)."""
        return export_seen(path, seen)


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
