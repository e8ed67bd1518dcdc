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

from abc import ABC, abstractmethod
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING, ClassVar, Final

if TYPE_CHECKING:
    from collections.abc import Mapping
    from pathlib import Path

    from antflow.runstream.records import (
        AwaitStack,
        Command,
        ErrorRecord,
        Event,
        ItemDetail,
        ItemKey,
        LogLine,
        PipelineStarted,
        Snapshot,
    )
    from antflow_tui.source.state import RunState

ANY_ITEM: Final = 0
"""The pipeline number that asks `RunSource.item` for the newest pipeline knowing the item."""
FRAME_EVENTS: Final = 120
"""Most events one frame carries into the log. A person reads far fewer; past this the
log shows how many it skipped, and building events for all of them would cost the run."""
ERROR_MEMORY: Final = 10_000
"""Recent error records a reducer keeps to name the error of an event or a failure met
later (`RunState`, `RecordFrames`)."""


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
    notice: str = ""
    """What the screen says about the source itself ('' when nothing): an attached job's
    connection that has dropped."""
    resumed: str = ""
    """What the run resumed (issue 20): 'resumed from 2026-12-05 06:41 · 2,000 done
    earlier' ('' for a fresh run)."""

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


class Can(StrEnum):
    """What a source can do beyond reading a run (`RunSource.can`)."""

    PAUSE = "pause"
    """Pause and resume the run, a stage or a worker (`send` a `Pause`, a `Resume`)."""
    RETRY = "retry"
    """Feed failed items again (`send` a `Retry`)."""
    CONCURRENCY = "concurrency"
    """Change how many calls a stage makes at once (`send` a `SetConcurrency`)."""
    BUDGET = "budget"
    """Raise the run's budget (`send` a `RaiseBudget`)."""
    STOP = "stop"
    """Stop the run from here: it is this process's own (quit and ctrl+c stop it)."""
    STOP_JOB = "stop-job"
    """Stop another process's job from here (`send` a `Stop`, after asking)."""
    DETACH = "detach"
    """The run is another process's job: quitting only detaches, and the job goes on."""
    STACKS = "stacks"
    """Say where a worker's task waits (`worker_stack`)."""
    VALUES = "values"
    """Item details carry the item's value (as a repr)."""
    SEEK = "seek"
    """Play a recording, hold it and move through it (`play`, `seek`, `set_speed`)."""


class RunSource(ABC):
    """What the UI reads a run from, and sends controls to.

    What a source can do is said by its type (`CAN`) and asked with `can`; the methods
    behind each capability raise `NotImplementedError` on a source that cannot.
    """

    CAN: ClassVar[frozenset[Can]] = frozenset()
    """What a source of this type can do; the most it can, for a source whose answer
    changes as it goes (see `capabilities`)."""

    def capabilities(self) -> frozenset[Can]:
        """What it can do now: what its type says, unless the source's answer changes while
        it runs (an attached job's: what its token grants, while connected)."""
        return self.CAN

    def can(self, what: Can) -> bool:
        return what in self.capabilities()

    @abstractmethod
    def next_frame(self, now: float) -> Frame | None:
        """The frame for this moment, or None when nothing changed since the last one.

        Args:
            now: The app's monotonic time (a replay plays on by the time passed).
        """

    @abstractmethod
    async def item(self, pipeline: int, item: ItemKey) -> ItemDetail:
        """One item's story in that pipeline (`ANY_ITEM`: the newest pipeline knowing it)."""

    async def worker_stack(self, pipeline: int, worker: str) -> AwaitStack | None:
        """Where that worker's task waits now (None: it has no task); `Can.STACKS`."""
        raise NotImplementedError

    async def send(self, command: Command) -> str:
        """Carry out a control; returns the notice to show (`Can.PAUSE`, `RETRY`,
        `CONCURRENCY`, `BUDGET`, `STOP`, `STOP_JOB`, by the command)."""
        raise NotImplementedError

    def play(self, playing: bool) -> None:
        """Play on from the position, or hold it (`Can.SEEK`)."""
        raise NotImplementedError

    def seek(self, at: float) -> None:
        """Jump to `at` (Unix time, clamped to the recording); the next frame resets."""
        raise NotImplementedError

    def set_speed(self, speed: float) -> None:
        """Recorded seconds per second of play."""
        raise NotImplementedError

    @abstractmethod
    def export(self, path: Path, seen: RunState, *, in_flight_unfinished: bool = False) -> int:
        """Write the run as an antflow-tui export (JSON Lines) to `path`; returns the number
        of items written.

        Args:
            seen: What the app has seen of the run: all a source fed by records (a
                recording, an attached job) has to write (`antflow_tui.source.seen`).
            in_flight_unfinished: The run ends without being stopped (an emergency exit):
                write what is in flight as unfinished.
        """
