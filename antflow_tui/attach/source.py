"""AttachSource: a run served by another process (``antflow.serve``), as a `RunSource`.

A `Viewer` connection brings the run's records: on joining, the header, every pipeline,
a snapshot of each and the items failed so far; then snapshots at the chosen interval,
event batches, error records, log lines and controls. This source keeps the latest state
from them, and hands the app a frame of what arrived since the last one. Item stories and
worker stacks are asked of the job; pause, resume, retry and stop are sent to it when the
token grants control.

The job never depends on the viewer: quitting detaches. When the connection drops (the
job ended, or the network did), the state stays as it was last seen, `notice` says so, and
the source looks for the job again every `retry_every` seconds: the same process again, or
a new run of the same script, which starts over as a new run (a reset frame).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import OrderedDict, deque
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

import msgspec

from antflow.runstream import wire
from antflow.runstream.client import AttachError, Viewer
from antflow.runstream.records import (
    Control,
    ErrorRecord,
    Event,
    Gap,
    Header,
    ItemDetail,
    LogLine,
    PipelineStarted,
    Snapshot,
    Stop,
)
from antflow.runstream.writer import RecordingWriter
from antflow_tui.accounting import run_counts
from antflow_tui.export import (
    ExportRecord,
    header_line,
    recorded_failed_line,
    write_export,
)
from antflow_tui.source.base import (
    ANY_ITEM,
    PAUSE,
    RETRY,
    STACKS,
    VALUES,
    Frame,
    RunStatus,
    failure_of,
)

if TYPE_CHECKING:
    from collections.abc import Iterator

    from antflow.runstream.records import AwaitStack, Command, ItemKey
    from antflow_tui.attach.target import Found, Target

FRAME_EVENTS: Final = 120
"""Most events a frame carries; past this the log says how many it skipped."""
ERROR_MEMORY: Final = 10_000
"""Recent error records kept to name the error of a failure met later."""
STORIES: Final = 64
"""Item stories kept to show after the connection dropped."""
RETRY_EVERY: Final = 1.0
"""Seconds between looks for the job while it cannot be reached."""


class AttachSource:
    """The run served at `target`, followed over a socket.

    Args:
        target: How to find the job (and find it again).
        interval: Seconds between the snapshots the job sends.
        record: Write what arrives to this recording file (``--record``); a new run of
            the script goes to ``NAME-2.jsonl``, and so on.
        retry_every: Seconds between looks for the job after the connection dropped.
        client: What this viewer is, as the job is told (a stop it gives names it).
    """

    def __init__(
        self,
        target: Target,
        *,
        interval: float = 0.25,
        record: Path | None = None,
        retry_every: float = RETRY_EVERY,
        client: str = "antflow-tui attach",
    ) -> None:
        self.target = target
        self.interval = interval
        self.client = client
        self.record = record
        self.retry_every = retry_every
        self.capabilities: frozenset[str] = frozenset()
        self.stop_allowed = False
        """The token grants control: the job may be stopped (the app asks first)."""
        self.viewer: Viewer | None = None
        self.connected = False
        self.connections = 0
        """How many times the source has attached (a re-attach counts again)."""
        self.runs = 0
        """How many runs it has shown (a new run of the script counts again)."""
        self.notice = ""
        """What the screen says about the connection ('' while attached)."""
        self.pid: int | None = None
        self.header: Header | None = None
        self.recorder: RecordingWriter | None = None
        self.recordings: list[Path] = []
        """The files `record` wrote (one per run)."""
        self.changed = asyncio.Event()
        """Set whenever something arrived (tests wait on it; the app polls frames)."""
        self._control = False
        self._task: asyncio.Task[None] | None = None
        self._closed = False
        self._last_at = 0.0
        self.ended_at: float | None = None
        self._ends = 0
        self._pipelines: dict[int, PipelineStarted] = {}
        self._snapshots: dict[int, Snapshot] = {}
        self._failures: dict[int, OrderedDict[Any, ErrorRecord]] = {}
        self._failure_parts: dict[int, OrderedDict[Any, ErrorRecord]] = {}
        self._errors: OrderedDict[int, ErrorRecord] = OrderedDict()
        self._stories: OrderedDict[tuple[int, Any], ItemDetail] = OrderedDict()
        self._checkpointed: set[int] = set()
        # What arrived since the last frame.
        self._new_snapshots: dict[int, Snapshot] = {}
        self._history: list[Snapshot] = []
        """The server's snapshots of the last minutes (for trends), until the next frame."""
        self._events: deque[Event] = deque(maxlen=FRAME_EVENTS)
        self._dropped = 0
        self._new_errors: list[ErrorRecord] = []
        self._logs: list[LogLine] = []
        self._changed_failures: set[int] = set()
        self._reset = False
        self.dirty = False

    # ---------------------------------------------------------------- connecting

    @property
    def title(self) -> str:
        header = self.header
        script = header.script if header is not None else self.target.script
        return script or self.target.description

    def _who(self) -> str:
        return self.title if self.pid is None else f"{self.title} (pid {self.pid})"

    async def connect(self) -> None:
        """Attach for the first time.

        Raises:
            AttachError: the job is not there, or refused the viewer (the message says).
        """
        found = self.target.locate()
        if found is None:
            raise AttachError(f"no job is served at {self.target.description}")
        viewer = await Viewer.connect(
            found.address, found.token, interval=self.interval, client=self.client
        )
        self._attached(viewer, found)

    def start(self) -> None:
        """Follow the job (on the running loop); `next_frame` starts it too."""
        if self._task is None and not self._closed:
            self._task = asyncio.get_running_loop().create_task(
                self._follow(), name="antflow-tui attach"
            )

    async def close(self) -> None:
        """Detach (the job goes on), and close the recording."""
        self._closed = True
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self.viewer is not None:
            await self.viewer.close()
            self.viewer = None
        self.connected = False
        if self.recorder is not None:
            self.recorder.close()
            self.recorder = None

    def _attached(self, viewer: Viewer, found: Found) -> None:
        again = self.connections > 0
        self.viewer = viewer
        self.connected = True
        self.connections += 1
        self.pid = viewer.welcome.pid
        self._control = found.control and "control" in viewer.welcome.scopes
        self.notice = ""
        if again:
            self._note(f"Attached again to {self._who()}.")
        self._mark()

    async def _follow(self) -> None:
        while not self._closed:
            viewer = self.viewer
            if viewer is None:
                viewer = await self._find_again()
            while True:
                message = await viewer.receive()
                if message is None:
                    break
                self._take(message)
            self._lost()

    async def _find_again(self) -> Viewer:
        """Look for the job until it is back (the same process, or a new run)."""
        while True:
            try:
                found = self.target.locate()
            except OSError as error:  # the runtime folder is not safe (any more)
                found, trouble = None, f" ({error})"
            else:
                trouble = ""
            if found is None and self.notice != self._lost_notice() + trouble:
                self._set_notice(self._lost_notice() + trouble)
            if found is not None:
                try:
                    viewer = await Viewer.connect(
                        found.address, found.token, interval=self.interval, client=self.client
                    )
                except AttachError as error:
                    self._set_notice(f"{self._lost_notice()} ({error})")
                else:
                    self._attached(viewer, found)
                    return viewer
            await asyncio.sleep(self.retry_every)

    def _lost(self) -> None:
        """The connection closed: keep the last state, say so."""
        self.viewer = None
        self.connected = False
        self.capabilities = frozenset()
        self.stop_allowed = False
        if not any(s.running for s in self._snapshots.values()) and self.ended_at is None:
            self.ended_at = self._last_at
            self._ends += 1
        self._set_notice(self._lost_notice())
        self._note(self.notice)
        if self.recorder is not None:
            self.recorder.flush()

    def _lost_notice(self) -> str:
        if self.ended_at is not None:
            return (
                f"Disconnected: {self._who()} has ended. Showing its last state; attaching "
                f"again when {self.title} runs again."
            )
        return (
            f"Disconnected from {self._who()} while it ran. Showing the last state; "
            f"attaching again when it is back."
        )

    def _set_notice(self, text: str) -> None:
        self.notice = text
        self._mark()

    # ---------------------------------------------------------------- records in

    def _take(self, message: Any) -> None:
        if isinstance(message, Header):
            self._header(message)
            return
        at = getattr(message, "at", None)
        if isinstance(at, float | int):
            self._last_at = max(self._last_at, float(at))
        recorder = self.recorder
        if isinstance(message, wire.Events):
            for event in message.events:
                self._event(event)
            self._dropped += message.dropped
            if recorder is not None:
                for event in message.events:
                    recorder.write(event)
        elif isinstance(message, Snapshot):
            self._snapshots[message.pipeline] = message
            self._new_snapshots[message.pipeline] = message
            self._over_or_not(message)
            if recorder is not None:
                if message.pipeline not in self._checkpointed:
                    self._checkpointed.add(message.pipeline)
                    kept = self._failures.get(message.pipeline)
                    failed = () if kept is None else tuple(kept.values())
                    recorder.failures(message.pipeline, message.at, failed)
                recorder.write(message)
        elif isinstance(message, wire.History):
            self._history.extend(message.snapshots)
        elif isinstance(message, PipelineStarted):
            self._pipelines[message.pipeline] = message
            if recorder is not None:
                recorder.write(message)
        elif isinstance(message, ErrorRecord):
            self._remember(message)
            self._new_errors.append(message)
            if recorder is not None:
                recorder.write(message)
        elif isinstance(message, wire.Failures):
            # A big set comes in parts: it replaces the old one once the last has come.
            if message.part == 0:
                self._failure_parts[message.pipeline] = OrderedDict()
            parts = self._failure_parts.setdefault(message.pipeline, OrderedDict())
            parts.update((_key(error.item), error) for error in message.failures)
            for error in message.failures:
                if error.number not in self._errors:
                    self._remember(error)  # without its traceback: the story has it
            if message.last:
                self._failures[message.pipeline] = self._failure_parts.pop(message.pipeline)
                self._changed_failures.add(message.pipeline)
                self._checkpointed.discard(message.pipeline)
        elif isinstance(message, LogLine):
            self._logs.append(message)
            if recorder is not None:
                recorder.write(message)
        elif isinstance(message, Control):
            self._logs.append(_control_line(message))
            if recorder is not None:
                recorder.write(message)
        elif isinstance(message, Gap):
            # Records were skipped; the state follows afresh (failed items included).
            self._dropped += message.dropped
            self._forget_failures()
            if recorder is not None:
                recorder.write(message)
        self._mark()

    def _over_or_not(self, snapshot: Snapshot) -> None:
        """The run is over while none of its pipelines runs (until one starts again: a
        retry, or the script's next pipeline)."""
        if snapshot.running:
            self.ended_at = None
        elif self.ended_at is None and not any(s.running for s in self._snapshots.values()):
            self.ended_at = snapshot.at
            self._ends += 1

    def _header(self, header: Header) -> None:
        """A (re)connection starts with the header, then the whole state afresh."""
        previous = self.header
        new_run = previous is None or (previous.pid, previous.started_at) != (
            header.pid,
            header.started_at,
        )
        self.header = header
        self.target.remember(header.pid or self.pid, header.script, header.argv)
        self.capabilities = self._capabilities(header)
        self.stop_allowed = self._control
        if new_run:
            if previous is not None:
                self._start_over()
            self._last_at = max(self._last_at, header.started_at)
            if previous is not None:
                self._note(f"Attached to a new run of {self._who()}.")
            self.runs += 1
            self._open_recording(header)
        elif self.recorder is not None:
            # Attached again to the same run: what happened meanwhile is not recorded.
            self.recorder.write(Gap(at=self._last_at, dropped=0))
        self.ended_at = None
        self._forget_failures()
        self._mark()

    def _capabilities(self, header: Header) -> frozenset[str]:
        found = {STACKS}
        if self._control:
            found |= {PAUSE, RETRY}
        if header.values:
            found.add(VALUES)
        return frozenset(found)

    def _start_over(self) -> None:
        self._pipelines.clear()
        self._snapshots.clear()
        self._failures.clear()
        self._errors.clear()
        self._stories.clear()
        self._new_snapshots.clear()
        self._history.clear()
        self._events.clear()
        self._dropped = 0
        self._new_errors.clear()
        self._logs.clear()
        self._last_at = 0.0
        self._ends = 0
        self._reset = True

    def _open_recording(self, header: Header) -> None:
        if self.record is None:
            return
        if self.recorder is not None:
            self.recorder.close()
        path = self.record
        if self.recordings:
            path = path.with_name(f"{path.stem}-{len(self.recordings) + 1}{path.suffix}")
        self.recorder = RecordingWriter(path, header)
        self.recordings.append(path)
        self._checkpointed.clear()

    def _forget_failures(self) -> None:
        """Before a resync: every pipeline's failures come again (or none are left)."""
        for number in set(self._failures) | set(self._pipelines):
            self._failures[number] = OrderedDict()
            self._changed_failures.add(number)
        self._checkpointed.clear()

    def _event(self, event: Event) -> None:
        if len(self._events) == self._events.maxlen:
            self._dropped += 1
        self._events.append(event)
        failed = self._failures.setdefault(event.pipeline, OrderedDict())
        key = _key(event.item)
        if event.kind == "failed":
            error = self._errors.get(event.error) if event.error is not None else None
            failed.pop(key, None)
            failed[key] = failure_of(event, error)
        elif event.kind in ("queued", "in_progress") and key in failed:
            del failed[key]  # retried
        else:
            return
        self._changed_failures.add(event.pipeline)
        self._checkpointed.discard(event.pipeline)

    def _remember(self, error: ErrorRecord) -> None:
        self._errors[error.number] = error
        while len(self._errors) > ERROR_MEMORY:
            self._errors.popitem(last=False)

    def _note(self, text: str) -> None:
        self._logs.append(LogLine(at=self._last_at, text=f"(attach) {text}", stream="err"))
        self._mark()

    def _mark(self) -> None:
        self.dirty = True
        self.changed.set()

    # ---------------------------------------------------------------- frames

    def next_frame(self, now: float) -> Frame | None:
        self.start()
        if not self.dirty or self.header is None:
            return None
        self.dirty = False
        changed = self._changed_failures
        failures = {n: tuple(self._failures.get(n, {}).values()) for n in changed}
        frame = Frame(
            status=self.status(),
            pipelines=tuple(self._pipelines[n] for n in sorted(self._pipelines)),
            snapshots=self._new_snapshots,
            history=tuple(self._history),
            events=tuple(self._events),
            dropped=self._dropped,
            errors=tuple(self._new_errors),
            failures=failures or None,
            logs=tuple(self._logs),
            reset=self._reset,
        )
        self._new_snapshots = {}
        self._history = []
        self._events.clear()
        self._dropped = 0
        self._new_errors = []
        self._logs = []
        self._changed_failures = set()
        self._reset = False
        return frame

    def status(self) -> RunStatus:
        header = self.header
        snapshots = list(self._snapshots.values())
        moving = [s for s in snapshots if s.running]
        return RunStatus(
            title=self.title,
            now=self._last_at,
            started_at=header.started_at if header is not None else self._last_at,
            ended_at=self.ended_at,
            ends=self._ends,
            active=self.connected and bool(moving),
            paused=bool(moving) and all(s.paused for s in moving),
            stop_requested=any(s.stopped for s in snapshots),
            stopping=any(s.stopping for s in moving),
        )

    # ---------------------------------------------------------------- pulls

    async def item(self, pipeline: int, item: ItemKey) -> ItemDetail:
        numbers = sorted(self._pipelines) or [1]
        viewer = self.viewer
        if viewer is None:
            return self._kept_story(pipeline, item, numbers)
        asked = numbers if pipeline == ANY_ITEM or len(numbers) > 1 else [pipeline]
        details: dict[int, ItemDetail] = {}
        try:
            for number in reversed(asked):
                detail = await viewer.item(number, item)
                if detail is not None:
                    details[number] = detail
        except AttachError:
            return self._kept_story(pipeline, item, numbers)
        knowing = [n for n in numbers if n in details and details[n].known]
        if pipeline == ANY_ITEM:
            pipeline = knowing[-1] if knowing else numbers[-1]
        detail = details.get(pipeline) or ItemDetail(pipeline, item, known=False)
        also_in = tuple(n for n in knowing if n != pipeline)
        if also_in != detail.also_in:
            detail = msgspec.structs.replace(detail, also_in=also_in)
        self._stories[(pipeline, _key(item))] = detail
        while len(self._stories) > STORIES:
            self._stories.popitem(last=False)
        return detail

    def _kept_story(self, pipeline: int, item: ItemKey, numbers: list[int]) -> ItemDetail:
        """Once detached: the story last shown, or what the failures say of the item."""
        key = _key(item)
        wanted = list(reversed(numbers)) if pipeline == ANY_ITEM else [pipeline]
        for number in wanted:
            story = self._stories.get((number, key))
            if story is not None:
                return story
            error = self._failures.get(number, {}).get(key)
            if error is not None:
                return ItemDetail(
                    pipeline=number,
                    item=item,
                    known=True,
                    status="failed",
                    stage=error.stage,
                    errors=(error,),
                )
        return ItemDetail(pipeline=wanted[0] if wanted else 1, item=item, known=False)

    async def worker_stack(self, pipeline: int, worker: str) -> AwaitStack | None:
        viewer = self.viewer
        if viewer is None:
            return None
        try:
            return await viewer.stack(pipeline, worker)
        except AttachError:
            return None

    async def send(self, command: Command) -> str:
        """Send a command to the job; returns its notice (or why it was not sent)."""
        viewer = self.viewer
        if viewer is None:
            return f"Not sent: {self.notice or 'not attached'}"
        if isinstance(command, Stop) and not self.stop_allowed:
            return "Not sent: this viewer may only watch (read-only)."
        try:
            notice = await viewer.send(command)
        except AttachError as error:
            if not viewer.closed:
                notice = f"The job did not answer: {error}."
            elif isinstance(command, Stop):
                # A job whose script ends with its run closes the connection as the stop
                # succeeds (its answer may be lost with it): the stop has done its work.
                notice = f"Stopped {self._who()}: it has ended."
            else:
                notice = "The connection closed before the job answered."
        self._mark()
        return notice

    def export(self, path: Path, *, in_flight_unfinished: bool = False) -> int:
        """The counts and the failed items as last seen, with their errors."""
        counts = run_counts(self._snapshots.values(), known_total=None)
        started = [self._pipelines[n] for n in sorted(self._pipelines)]
        names = [
            one.name or ("pipeline" if len(started) == 1 else f"pipeline-{one.pipeline}")
            for one in started
        ]

        def lines() -> Iterator[ExportRecord]:
            yield header_line(counts, script=self.title, pipelines=names)
            for one, name in zip(started, names, strict=True):
                for failure in self._failures.get(one.pipeline, {}).values():
                    yield recorded_failed_line(name, failure)

        return write_export(Path(path), lines())


def _key(item: Any) -> Any:
    return tuple(item) if isinstance(item, list) else item


def _control_line(control: Control) -> LogLine:
    """A control someone gave the job (this viewer or another), as a log line."""
    return LogLine(at=control.at, text=f"(control) {control.result}", stream="control")
