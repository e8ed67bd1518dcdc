"""RunSource: the one thing the UI reads a run from, whether live, recorded or remote.

What crosses it is plain, frozen data (the records of `antflow.runstream.records`), so a
file or a socket can carry it: the UI never sees a pipeline, a tracker or an exception.

A source is polled once per frame with `next_frame(now)`. The `Frame` it returns holds the
latest state (a snapshot per pipeline, the failed items when they changed, the run's
status) and what happened since the last frame (events, bounded; error records and log
lines, lossless). Everything the UI shows about time is relative to `RunStatus.now`, the
source's own clock: the engine's clock live, the replay position in a replay.

Item stories and worker stacks are pulled (`item`, `worker_stack`): they cost a lookup,
and only an open drill-down screen wants them. Controls go back through `send`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Final, Protocol, runtime_checkable

from antflow.runstream.records import ErrorRecord

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping
    from pathlib import Path

    from antflow.runstream.records import (
        AwaitStack,
        Command,
        Event,
        ItemDetail,
        ItemKey,
        LogLine,
        PipelineStarted,
        Snapshot,
    )
    from antflow_tui.accounting import RunCounts
    from antflow_tui.outcome import RunOutcome

PAUSE: Final = "pause"
"""The source can pause and resume the run, a stage or a worker (`Pause`, `Resume`)."""
RETRY: Final = "retry"
"""The source can feed failed items again (`Retry`)."""
STOP: Final = "stop"
"""The source can stop the run (`Stop`)."""
STACKS: Final = "stacks"
"""`worker_stack` can say where a worker's task waits."""
VALUES: Final = "values"
"""Item details carry the item's value (as a repr)."""
SEEK: Final = "seek"
"""The source is a recording: it can play, pause and seek (see `Seekable`)."""

ANY_ITEM: Final = 0
"""The pipeline number that asks `RunSource.item` for the newest pipeline knowing the item."""


@dataclass(frozen=True, slots=True)
class ReplayPosition:
    """Where a replay stands, for the scrubber and the header."""

    start: float
    """Unix time the recording starts at."""
    end: float
    """Unix time of its last record."""
    playing: bool
    speed: float
    """Recorded seconds per second of play."""
    complete: bool
    """The recording ends with an end record; False: the run was killed (or still runs)."""
    damaged: bool = False
    """Lines of the recording could not be read (they were passed over)."""


@dataclass(frozen=True, slots=True)
class RunStatus:
    """The run as a whole, on the source's one clock."""

    title: str
    """What runs: the script's file name."""
    now: float
    """The source's clock (Unix seconds): the engine's now live, the position in a replay.
    Every duration the UI shows is measured against it."""
    started_at: float
    ended_at: float | None = None
    """When the run ended (None while it runs; a retry after the end clears it)."""
    ends: int = 0
    """How many times the run has ended (a retry after the end starts it again)."""
    active: bool = True
    """Something still runs: the script, or a pipeline (retried items, for one)."""
    paused: bool = False
    """The whole run is held by a pause (every pipeline, and those still to start)."""
    stop_requested: bool = False
    """A stop was asked for (quit, ctrl+c, a signal, or the script ended early)."""
    stopping: bool = False
    """A stop is under way."""
    crashed: bool = False
    """The script raised an exception."""
    known_total: int | None = None
    """Items the run will feed in all, when the source knows (a script's `items` with a
    length); otherwise the pipelines' own totals count."""
    replay: ReplayPosition | None = None
    """Set for a recording: where the replay stands."""

    @property
    def ended(self) -> bool:
        return self.ended_at is not None


@dataclass(frozen=True, slots=True)
class Frame:
    """What changed since the last frame, and the latest state.

    State fields replace what the UI holds; "new" fields add to it.
    """

    status: RunStatus
    pipelines: tuple[PipelineStarted, ...]
    """Every pipeline of the run so far, by number (1 first)."""
    snapshots: Mapping[int, Snapshot]
    """The latest snapshot of each pipeline that has one, by number."""
    history: tuple[Snapshot, ...] = ()
    """Earlier snapshots than `snapshots`, oldest first, for the trends (sparklines): a
    replay's skipped over in one step, or those leading up to where a jump landed; an
    attached job's last minutes, kept by its server. A source that has none leaves it
    empty (the trends then start from `snapshots`)."""
    events: tuple[Event, ...] = ()
    """New events, every pipeline's, oldest first: at most a frame's worth of the newest."""
    dropped: int = 0
    """New events left out of `events` (a flood: the log says how many)."""
    errors: tuple[ErrorRecord, ...] = ()
    """New error records, one per failed attempt (lossless)."""
    failures: Mapping[int, tuple[ErrorRecord, ...]] | None = None
    """Per pipeline, the final error of each item failed now, oldest first; None when no
    pipeline's failures changed since the last frame."""
    logs: tuple[LogLine, ...] = ()
    """Lines the script printed or logged since the last frame, and notes of the source."""
    reset: bool = False
    """The frame does not follow on from the last one (a seek): forget the events shown."""


@runtime_checkable
class RunSource(Protocol):
    """What the UI reads a run from, and sends controls to."""

    capabilities: frozenset[str]
    """What it can do beyond reading: `PAUSE`, `RETRY`, `STOP`, `STACKS`, `VALUES`, `SEEK`."""

    def next_frame(self, now: float) -> Frame | None:
        """The frame for this moment, or None when nothing changed since the last one.

        Args:
            now: The app's monotonic time (a replay plays on by the time passed).
        """
        ...

    async def item(self, pipeline: int, item: ItemKey) -> ItemDetail:
        """One item's story in that pipeline (`ANY_ITEM`: the newest pipeline knowing it)."""
        ...

    async def worker_stack(self, pipeline: int, worker: str) -> AwaitStack | None:
        """Where that worker's task waits now (None: it has no task, or the source cannot
        tell)."""
        ...

    async def send(self, command: Command) -> str:
        """Carry out a control; returns the notice to show."""
        ...

    def export(self, path: Path, *, in_flight_unfinished: bool = False) -> int:
        """Write the run as an antflow-tui export (JSON Lines) to `path`; returns the number
        of items written.

        Args:
            in_flight_unfinished: The run ends without being stopped (an emergency exit):
                write what is in flight as unfinished.
        """
        ...


@runtime_checkable
class Seekable(Protocol):
    """A source that plays a recording (capability `SEEK`): the scrubber's controls."""

    def play(self, playing: bool) -> None:
        """Play on from the position, or hold it."""
        ...

    def seek(self, at: float) -> None:
        """Jump to `at` (Unix time, clamped to the recording); the next frame resets."""
        ...

    def set_speed(self, speed: float) -> None:
        """Recorded seconds per second of play."""
        ...


@runtime_checkable
class ScriptRun(Protocol):
    """A source that runs a script in this process (the live source): what the app does
    with it besides reading frames (start it, lead the script's output into it, stop it,
    account for it when it is over)."""

    on_end: Callable[[], None] | None
    """Called each time the run ends (the app exports, and may close)."""
    stop_requested: bool

    @property
    def run_active(self) -> bool:
        """The script still runs, or one of its pipelines does."""
        ...

    def start(self) -> None:
        """Start the script (on the running loop)."""
        ...

    def note(self, text: str, *, error: bool = False, stream: str | None = None) -> None:
        """A line for the event log (the script's output, or ours); from any thread.

        Args:
            stream: The `LogLine.stream` it goes out as (a logging level name); default
                ``err`` for an error, else ``out``.
        """
        ...

    def describe_task(self, name: str) -> str:
        """What the run knows of an asyncio task (from the watchdog's thread)."""
        ...

    def counts(self, *, in_flight_unfinished: bool = False) -> RunCounts:
        """Where every item stands now, read fresh (from any thread)."""
        ...

    def outcome(
        self,
        app_error: str | None = None,
        *,
        in_flight_unfinished: bool = False,
        stopped_by: str | None = None,
    ) -> RunOutcome:
        """How the run ended, for the summary and the exit status."""
        ...

    async def stop(self, *, force: bool = False) -> None:
        """Stop the run and the script; returns once they have."""
        ...

    def mark_closed(self) -> None:
        """The app has closed: the run ends now, if it had not."""
        ...


def failure_of(event: Event, known: ErrorRecord | None) -> ErrorRecord:
    """The failure a `failed` event stands for: its error record when the source holds
    it, else one that names only where and when (a source that follows failed items from
    events may not have the error: it came before the viewer, or was dropped)."""
    if known is not None:
        return known
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
