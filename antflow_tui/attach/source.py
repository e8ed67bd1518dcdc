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
from typing import TYPE_CHECKING, Any, ClassVar, Final

import msgspec

from antflow.runstream import wire
from antflow.runstream.client import AttachError, Viewer
from antflow.runstream.records import (
    Control,
    ErrorRecord,
    Gap,
    Header,
    ItemDetail,
    LogLine,
    PipelineStarted,
    Snapshot,
    Stop,
)
from antflow.runstream.writer import RecordingWriter
from antflow_tui.source.base import ANY_ITEM, Can, Frame, RunSource, RunStatus
from antflow_tui.source.frames import RecordFrames
from antflow_tui.source.seen import export_seen

if TYPE_CHECKING:
    from pathlib import Path

    from antflow.runstream.records import AwaitStack, Command, ItemKey
    from antflow_tui.attach.target import Found, Target
    from antflow_tui.source.state import RunState

RETRY_EVERY: Final = 1.0
"""Seconds between looks for the job while it cannot be reached."""


class AttachSource(RunSource):
    """The run served at `target`, followed over a socket.

    Args:
        target: How to find the job (and find it again).
        interval: Seconds between the snapshots the job sends.
        record: Write what arrives to this recording file (``--record``); a new run of
            the script goes to ``NAME-2.jsonl``, and so on.
        retry_every: Seconds between looks for the job after the connection dropped.
        client: What this viewer is, as the job is told (a stop it gives names it).
    """

    CAN: ClassVar[frozenset[Can]] = frozenset(
        {
            Can.PAUSE,
            Can.RETRY,
            Can.CONCURRENCY,
            Can.BUDGET,
            Can.STOP_JOB,
            Can.DETACH,
            Can.STACKS,
            Can.VALUES,
        }
    )

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
        self.ended_at: float | None = None
        self._ends = 0
        self._records = RecordFrames()
        self._scoped = False
        """The header of this connection has come: what the token grants holds."""
        self._failure_parts: dict[int, list[ErrorRecord]] = {}
        self._checkpointed: set[int] = set()
        self._reset = False
        self.dirty = False

    def capabilities(self) -> frozenset[Can]:
        """What the token grants, while attached (detached: nothing but detaching)."""
        if self.header is None or not self._scoped:
            return frozenset({Can.DETACH})
        found = {Can.DETACH, Can.STACKS}
        if self._control:
            found |= {Can.PAUSE, Can.RETRY, Can.CONCURRENCY, Can.BUDGET, Can.STOP_JOB}
        if self.header.values:
            found.add(Can.VALUES)
        return frozenset(found)

    @property
    def stop_allowed(self) -> bool:
        """The token grants control: the job may be stopped (the app asks first)."""
        return self.can(Can.STOP_JOB)

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
        self._scoped = False
        snapshots = self._records.snapshots.values()
        if not any(s.running for s in snapshots) and self.ended_at is None:
            self.ended_at = self._records.last_at
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
        records = self._records
        recorder = self.recorder
        if isinstance(message, wire.Events):
            self._checkpointed -= records.take(message.events)
            records.dropped(message.dropped)
            if recorder is not None:
                for event in message.events:
                    recorder.write(event)
        elif isinstance(message, wire.History):
            records.trends(message.snapshots)
        elif isinstance(message, wire.Failures):
            # A big set comes in parts: it replaces the old one once the last has come.
            if message.part == 0:
                self._failure_parts[message.pipeline] = []
            parts = self._failure_parts.setdefault(message.pipeline, [])
            parts.extend(message.failures)
            if message.last:
                records.set_failures(message.pipeline, self._failure_parts.pop(message.pipeline))
                self._checkpointed.discard(message.pipeline)
        elif isinstance(message, Gap):
            # Records were skipped; the state follows afresh (failed items included).
            records.take((message,))
            self._forget_failures()
            if recorder is not None:
                recorder.write(message)
        elif isinstance(message, Snapshot):
            records.take((message,))
            self._over_or_not(message)
            if recorder is not None:
                if message.pipeline not in self._checkpointed:
                    self._checkpointed.add(message.pipeline)
                    kept = records.failures.get(message.pipeline)
                    failed = () if kept is None else tuple(kept.values())
                    recorder.failures(message.pipeline, message.at, failed)
                recorder.write(message)
        elif isinstance(message, PipelineStarted | ErrorRecord | LogLine | Control):
            records.take((message,))
            if recorder is not None:
                recorder.write(message)
        self._mark()

    def _over_or_not(self, snapshot: Snapshot) -> None:
        """The run is over while none of its pipelines runs (until one starts again: a
        retry, or the script's next pipeline)."""
        if snapshot.running:
            self.ended_at = None
        elif self.ended_at is None and not any(s.running for s in self._records.snapshots.values()):
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
        self._scoped = True
        records = self._records
        if new_run:
            if previous is not None:
                records.start_over()
                self._ends = 0
                self._reset = True
            records.last_at = max(records.last_at, header.started_at)
            if previous is not None:
                self._note(f"Attached to a new run of {self._who()}.")
            self.runs += 1
            self._open_recording(header)
        elif self.recorder is not None:
            # Attached again to the same run: what happened meanwhile is not recorded.
            self.recorder.write(Gap(at=records.last_at, dropped=0))
        self.ended_at = None
        self._forget_failures()
        self._mark()

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
        self._records.forget_failures()
        self._checkpointed.clear()

    def _note(self, text: str) -> None:
        at = self._records.last_at
        self._records.note(LogLine(at=at, text=f"(attach) {text}", stream="err"))
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
        reset, self._reset = self._reset, False
        return self._records.frame(self.status(), reset=reset)

    def status(self) -> RunStatus:
        header = self.header
        last_at = self._records.last_at
        snapshots = list(self._records.snapshots.values())
        moving = [s for s in snapshots if s.running]
        return RunStatus(
            title=self.title,
            now=last_at,
            started_at=header.started_at if header is not None else last_at,
            ended_at=self.ended_at,
            ends=self._ends,
            active=self.connected and bool(moving),
            paused=bool(moving) and all(s.paused for s in moving),
            stop_requested=any(s.stopped for s in snapshots),
            stopping=any(s.stopping for s in moving),
            notice=self.notice,
        )

    # ---------------------------------------------------------------- pulls

    async def item(self, pipeline: int, item: ItemKey) -> ItemDetail:
        numbers = sorted(self._records.pipelines) or [1]
        viewer = self.viewer
        if viewer is None:
            return self._records.kept_story(pipeline, item)
        asked = numbers if pipeline == ANY_ITEM or len(numbers) > 1 else [pipeline]
        details: dict[int, ItemDetail] = {}
        try:
            for number in reversed(asked):
                detail = await viewer.item(number, item)
                if detail is not None:
                    details[number] = detail
        except AttachError:
            return self._records.kept_story(pipeline, item)
        knowing = [n for n in numbers if n in details and details[n].known]
        if pipeline == ANY_ITEM:
            pipeline = knowing[-1] if knowing else numbers[-1]
        detail = details.get(pipeline) or ItemDetail(pipeline, item, known=False)
        also_in = tuple(n for n in knowing if n != pipeline)
        if also_in != detail.also_in:
            detail = msgspec.structs.replace(detail, also_in=also_in)
        self._records.keep_story(detail)
        return detail

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

    def export(self, path: Path, seen: RunState, *, in_flight_unfinished: bool = False) -> int:
        """The counts and the failed items as last seen, with their errors."""
        return export_seen(path, seen)
