"""RunStream: the live producer of a run's records (API fixed; implementation in progress).

A monitor (antflow-tui's live source, the recorder, the socket server) creates one
RunStream per run and attaches it to every pipeline that starts (``antflow.observe``).
It is the only code on the monitor's side that touches `Pipeline`, `StatusTracker` or an
exception; everything it returns is a record from `antflow.runstream.records`.

Cost model: `snapshot()` is O(stages + workers); `events()` decodes at most `limit` of
the newest events (the rest are counted as dropped, never built); `failures()` re-reads
only when a tracker's failures changed; `take_errors()` is lossless but errors are rare.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from antflow.pipeline import Pipeline
    from antflow.runstream.records import (
        AwaitStack,
        Command,
        ErrorRecord,
        Event,
        Header,
        ItemDetail,
        ItemKey,
        LogLine,
        PipelineStarted,
        Snapshot,
    )


class Failure:
    """(Placeholder for the API description; see `records` once implemented.)"""


class RunStream:
    """Turns the pipelines of one run into records, and carries out commands.

    Args:
        values: Include reprs of item values in error records and item details.
        history: Completed items whose histories a tracker this stream creates keeps
            (a pipeline without a tracker gets a bounded one).
        event_capacity: Most events `events()` returns per call (newest kept).
        argv, script: For the header.
        clock: Unix time, for records not stamped by the engine (logs, controls).
    """

    def __init__(
        self,
        *,
        values: bool = False,
        history: int | None = 10_000,
        event_capacity: int = 1_000,
        argv: Sequence[str] = (),
        script: str | None = None,
        clock: Callable[[], float] | None = None,
    ) -> None:
        raise NotImplementedError

    header: Header
    """The run's header record."""

    def attach(self, pipeline: Pipeline) -> PipelineStarted:
        """Follow `pipeline` (idempotent: a restart returns its existing record).

        Pass it as ``antflow.observe(stream.attach)``, or call it for a pipeline the
        monitor built itself before starting it.
        """
        raise NotImplementedError

    def pipelines(self) -> list[PipelineStarted]:
        """Every pipeline attached so far, in order."""
        raise NotImplementedError

    def snapshot(self, pipeline: int) -> Snapshot:
        """Pipeline number `pipeline`'s state now."""
        raise NotImplementedError

    def events(self) -> tuple[list[Event], int]:
        """Events since the last call, every pipeline's, oldest first: at most
        `event_capacity` of the newest, and how many were dropped."""
        raise NotImplementedError

    def take_errors(self) -> list[ErrorRecord]:
        """Every error record since the last call (lossless)."""
        raise NotImplementedError

    def failures(self, pipeline: int) -> list[ErrorRecord]:
        """The final error of each item currently failed in that pipeline, oldest first."""
        raise NotImplementedError

    def item(self, pipeline: int, item: ItemKey) -> ItemDetail:
        """One item's story in that pipeline."""
        raise NotImplementedError

    def worker_stack(self, pipeline: int, worker: str) -> AwaitStack | None:
        """Where that worker's task is suspended now (None when it has no task)."""
        raise NotImplementedError

    async def execute(self, command: Command) -> str:
        """Carry out a command on the live pipelines; returns the notice to show."""
        raise NotImplementedError

    def log(self, text: str, stream: str = "out") -> LogLine:
        """Record a line the script printed or logged (thread-safe)."""
        raise NotImplementedError

    def take_logs(self) -> list[LogLine]:
        """Every log line since the last call."""
        raise NotImplementedError
