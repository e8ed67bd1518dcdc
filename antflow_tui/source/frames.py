"""RecordFrames: run records in, frames out, for the sources that get a run as records.

Live, the engine holds the run's state and the stream reads each frame from it. A
recording played back (`antflow_tui.source.replay`) or a job followed over a socket
(`antflow_tui.attach.source`) brings the same records one at a time instead: this keeps
what a frame needs from them, the latest snapshot of each pipeline, the items failed as
the events say, the error records that name them, and what arrived since the last frame,
and makes the same `Frame` the live source makes, for the app's one `RunState`. The
transports only read records and say when the run starts over (a jump, a new run).
"""

from __future__ import annotations

from collections import OrderedDict, deque
from typing import TYPE_CHECKING, Any, Final

import msgspec

from antflow.runstream.records import (
    Control,
    End,
    ErrorRecord,
    Event,
    Gap,
    ItemDetail,
    LogLine,
    PipelineStarted,
    Snapshot,
)
from antflow_tui.source.base import ANY_ITEM, ERROR_MEMORY, FRAME_EVENTS, Frame

if TYPE_CHECKING:
    from collections.abc import Hashable, Iterable, Mapping

    from antflow.runstream.records import ItemKey, Record
    from antflow_tui.source.base import RunStatus

STORIES: Final = 64
"""Item stories kept: a recording's read once, an attached job's to show once detached."""
ATTEMPT_ENDS: Final = frozenset({"complete", "retry", "fail"})
"""The event kinds that end a task attempt (they carry its duration)."""


class RecordFrames:
    """What a frame needs from the records of one run, and what arrived since the last one.

    Args:
        trend_every_snapshot: Every snapshot taken goes to the frame's `history` too (a
            recording's window may hold several, and the trends want each step).
    """

    def __init__(self, *, trend_every_snapshot: bool = False) -> None:
        self.trend_every_snapshot = trend_every_snapshot
        self.pipelines: dict[int, PipelineStarted] = {}
        self.snapshots: dict[int, Snapshot] = {}
        """The latest snapshot of each pipeline."""
        self.failures: dict[int, OrderedDict[Hashable, ErrorRecord]] = {}
        """Per pipeline, the final error of each item failed now (by its key), oldest first."""
        self.end: End | None = None
        self.last_at = 0.0
        """The latest time a record carried."""
        self.events: deque[Event] = deque(maxlen=FRAME_EVENTS)
        """The newest events since the last frame."""
        self._stories: OrderedDict[tuple[int, Hashable], ItemDetail] = OrderedDict()
        self._errors: OrderedDict[int, ErrorRecord] = OrderedDict()
        self._starts: OrderedDict[tuple[int, Hashable, str, str | None, int], float] = OrderedDict()
        """When each task attempt seen starting began (for its duration at its end)."""
        self._new_snapshots: dict[int, Snapshot] = {}
        self._history: list[Snapshot] = []
        self._dropped = 0
        self._new_errors: list[ErrorRecord] = []
        self._logs: list[LogLine] = []
        self._changed: set[int] = set()

    # ---------------------------------------------------------------- records in

    def take(self, records: Iterable[Record], *, following: bool = True) -> set[int]:
        """Apply records, oldest first; returns the pipelines whose failed items changed.

        Args:
            following: The records follow on from the state held. False: they lead up to
                it (read for the log after a replay's jump, its state from a seek point):
                they change neither the failed items nor the trends.
        """
        changed: set[int] = set()
        for record in records:
            at = getattr(record, "at", None)
            if isinstance(at, float | int) and at > self.last_at:
                self.last_at = float(at)
            if isinstance(record, Event):
                if self._event(record, following=following):
                    changed.add(record.pipeline)
            elif isinstance(record, Snapshot):
                self.snapshots[record.pipeline] = record
                self._new_snapshots[record.pipeline] = record
                if self.trend_every_snapshot and following:
                    self._history.append(record)
            elif isinstance(record, ErrorRecord):
                self._remember(record)
                self._new_errors.append(record)
            elif isinstance(record, LogLine):
                self._logs.append(record)
            elif isinstance(record, Control):
                self._logs.append(control_line(record))
            elif isinstance(record, Gap):
                self._dropped += record.dropped
            elif isinstance(record, PipelineStarted):
                self.pipelines[record.pipeline] = record
            elif isinstance(record, End):
                self.end = record
        return changed

    def dropped(self, count: int) -> None:
        """Events that were counted, not sent or built (the log says how many)."""
        self._dropped += count

    def trends(self, snapshots: Iterable[Snapshot]) -> None:
        """Earlier snapshots for the trends (an attached job's last minutes, the minutes
        before a replay's jump)."""
        self._history.extend(snapshots)

    def note(self, line: LogLine) -> None:
        """A line of the source's own for the event log."""
        self._logs.append(line)

    def set_failures(self, pipeline: int, failures: Iterable[ErrorRecord]) -> None:
        """Replace a pipeline's failed items (a seek point's, a job's resync)."""
        self.failures[pipeline] = OrderedDict((_key(error.item), error) for error in failures)
        for error in self.failures[pipeline].values():
            if error.number not in self._errors:
                self._remember(error)  # perhaps without its traceback: the story has it
        self._changed.add(pipeline)

    def forget_failures(self) -> None:
        """Before a resync: every pipeline's failures come again (or none are left)."""
        for number in set(self.failures) | set(self.pipelines):
            self.failures[number] = OrderedDict()
            self._changed.add(number)

    def seek(
        self, snapshots: Mapping[int, Snapshot], failures: Mapping[int, Iterable[ErrorRecord]]
    ) -> None:
        """The same run at another moment (a replay's jump): its state there, nothing new."""
        self.snapshots = dict(snapshots)
        self.failures = {}
        for number, failed in failures.items():
            self.set_failures(number, failed)
        self._errors.clear()
        self._starts.clear()
        self.end = None
        self._take_news()

    def start_over(self) -> None:
        """A new run: forget everything of the last one."""
        self.pipelines.clear()
        self._stories.clear()
        self.seek({}, {})
        self.last_at = 0.0

    def _event(self, event: Event, *, following: bool) -> bool:
        event = self._with_duration(event)
        if len(self.events) == self.events.maxlen:
            self._dropped += 1
        self.events.append(event)
        return following and self._follow_failure(event)

    def _follow_failure(self, event: Event) -> bool:
        """Keep the failed items as the events say: a failed item goes last, with the
        attempt the event counts (its error's is the task's own); queued or begun again,
        it was retried."""
        failed = self.failures.setdefault(event.pipeline, OrderedDict())
        key = _key(event.item)
        if event.kind == "failed":
            error = self._errors.get(event.error) if event.error is not None else None
            failed.pop(key, None)
            if error is None:
                failed[key] = failure_of(event)
            elif error.attempt != event.attempt:
                failed[key] = msgspec.structs.replace(error, attempt=event.attempt)
            else:
                failed[key] = error
        elif event.kind in ("queued", "in_progress") and key in failed:
            del failed[key]
        else:
            return False
        self._changed.add(event.pipeline)
        return True

    def _with_duration(self, event: Event) -> Event:
        """The event, with how long its task attempt ran (a recording keeps when each
        attempt started and ended, not the difference)."""
        if event.kind == "start":
            self._starts[attempt_of(event)] = event.at
            while len(self._starts) > ERROR_MEMORY:
                self._starts.popitem(last=False)
        elif event.kind in ATTEMPT_ENDS and event.duration is None:
            began = self._starts.pop(attempt_of(event), None)
            if began is not None:
                return msgspec.structs.replace(event, duration=event.at - began)
        return event

    def _remember(self, error: ErrorRecord) -> None:
        self._errors[error.number] = error
        while len(self._errors) > ERROR_MEMORY:
            self._errors.popitem(last=False)

    # ---------------------------------------------------------------- frames out

    def frame(
        self,
        status: RunStatus,
        *,
        pipelines: Iterable[PipelineStarted] | None = None,
        reset: bool = False,
    ) -> Frame:
        """What arrived since the last frame, with the latest state (`reset`: every
        pipeline's, for a frame that does not follow on from the last one).

        Args:
            pipelines: The pipelines started so far (default: every one met).
        """
        started = pipelines if pipelines is not None else self._every_pipeline()
        changed = set(self.failures) if reset else self._changed
        frame = Frame(
            status=status,
            pipelines=tuple(started),
            snapshots=dict(self.snapshots) if reset else self._new_snapshots,
            history=tuple(self._history),
            events=tuple(self.events),
            dropped=self._dropped,
            errors=tuple(self._new_errors),
            failures={n: tuple(self.failures.get(n, {}).values()) for n in changed} or None,
            logs=tuple(self._logs),
            reset=reset,
        )
        self._take_news()
        return frame

    def _every_pipeline(self) -> list[PipelineStarted]:
        return [self.pipelines[n] for n in sorted(self.pipelines)]

    def _take_news(self) -> None:
        self._new_snapshots = {}
        self._history = []
        self.events.clear()
        self._dropped = 0
        self._new_errors = []
        self._logs = []
        self._changed = set()

    # ---------------------------------------------------------------- stories

    def story(self, pipeline: int, item: ItemKey) -> ItemDetail | None:
        """The item's story as last kept (None: none is)."""
        return self._stories.get((pipeline, _key(item)))

    def keep_story(self, detail: ItemDetail) -> None:
        self._stories[(detail.pipeline, _key(detail.item))] = detail
        while len(self._stories) > STORIES:
            self._stories.popitem(last=False)

    def kept_story(self, pipeline: int, item: ItemKey) -> ItemDetail:
        """With no one left to ask (a job detached from): the story last kept, or what the
        failures say of the item (`ANY_ITEM`: the newest pipeline that knows it)."""
        numbers = sorted(self.pipelines) or [1]
        wanted = list(reversed(numbers)) if pipeline == ANY_ITEM else [pipeline]
        key = _key(item)
        for number in wanted:
            story = self._stories.get((number, key))
            if story is not None:
                return story
            error = self.failures.get(number, {}).get(key)
            if error is not None:
                return ItemDetail(
                    pipeline=number,
                    item=item,
                    known=True,
                    status="failed",
                    stage=error.stage,
                    errors=(error,),
                )
        return ItemDetail(pipeline=wanted[0], item=item, known=False)


def failure_of(event: Event) -> ErrorRecord:
    """The failure a `failed` event stands for when its error record is not held (it came
    before the viewer, or was dropped): one that names only where and when."""
    return ErrorRecord(
        number=0,
        pipeline=event.pipeline,
        at=event.at,
        item=event.item,
        stage=event.stage,
        task=None,
        attempt=event.attempt,
        type="",
        message="",
        traceback="",
    )


def attempt_of(event: Event) -> tuple[int, Hashable, str, str | None, int]:
    """Which task attempt an event is of (its start and its end share it)."""
    return (event.pipeline, _key(event.item), event.stage, event.task, event.attempt)


def control_line(control: Control) -> LogLine:
    """A control given to the run (by this app or another viewer), as a log line."""
    return LogLine(at=control.at, text=f"(control) {control.result}", stream="control")


def _key(item: Any) -> Any:
    """A hashable key for an item as read back (arrays were tuples)."""
    return tuple(item) if isinstance(item, list) else item
