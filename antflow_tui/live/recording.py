"""FileRecorder: `--record FILE` for a live run, until the engine's recorder lands.

A tee of the run stream into a JSON Lines file `antflow_tui.source.records_file` reads
back: the header, each pipeline as it starts, then every few tenths of a second the new
events, error records, log lines and a snapshot of each pipeline; controls as they are
given; an end record when the app closes. It follows the pipelines through an engine
stream of its own (its own tails, large enough to keep up with a busy run; a `Gap`
record says how many events a flood made it skip). Whole lines are written and flushed
every `FLUSH_SECONDS`, so a killed run leaves a readable file.
"""

from __future__ import annotations

import asyncio
import sys
from typing import TYPE_CHECKING, Final

import msgspec

from antflow.runstream.records import Control, End, Gap, PipelineTotals
from antflow.runstream.stream import RunStream

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

    from antflow import Pipeline
    from antflow.runstream.records import Command, LogLine, Record, Snapshot

FLUSH_SECONDS: Final = 0.25
"""How often the file gets what happened (the issue asks for at least every 0.5 s)."""
EVENTS_PER_FLUSH: Final = 200_000
"""Events one flush takes from each tracker; past this a flood is recorded as a gap."""


class FileRecorder:
    """Records one live run to `path` (see the module docstring).

    Args:
        path: The file (replaced).
        values: Record reprs of item values.
        script: The script's name, for the header.
        clock: The run's clock.
        auto_flush: Flush every `FLUSH_SECONDS` once started (off: only when told, as
            tests that record a run at chosen moments want).
    """

    def __init__(
        self,
        path: Path,
        *,
        values: bool = False,
        script: str | None = None,
        clock: Callable[[], float],
        auto_flush: bool = True,
    ) -> None:
        self.path = path
        self.auto_flush = auto_flush
        self.clock = clock
        # history=None: the live source's stream bounds the trackers; this one only reads.
        self.stream = RunStream(
            values=values,
            history=None,
            event_capacity=EVENTS_PER_FLUSH,
            argv=sys.argv,
            script=script,
            clock=clock,
        )
        self._encoder = msgspec.json.Encoder()
        self._file = path.open("wb")
        self._logs: list[LogLine] = []
        self._task: asyncio.Task[None] | None = None
        self._closed = False
        self.snapshots: Callable[[], list[Snapshot]] | None = None
        """Where snapshots come from (the live source's, with what only the app knows:
        abandoned items, a stop, the total it feeds); None: the recorder's own stream."""
        self._write(self.stream.header)
        self._file.flush()

    def start(self) -> None:
        """Flush every `FLUSH_SECONDS` on the running loop."""
        if self.auto_flush:
            self._task = asyncio.get_running_loop().create_task(self._every_flush())

    async def _every_flush(self) -> None:
        while not self._closed:
            await asyncio.sleep(FLUSH_SECONDS)
            self.flush()

    def attach(self, pipeline: Pipeline) -> None:
        self.stream.attach(pipeline)
        for started in self.stream.take_pipelines():
            self._write(started)
        self._file.flush()

    def log(self, line: LogLine) -> None:
        """A line the script printed (from any thread: written at the next flush)."""
        self._logs.append(line)

    def control(self, command: Command, result: str) -> None:
        self._write(Control(at=self.clock(), command=command, result=result))

    def flush(self) -> None:
        """Write what happened since the last flush, then a snapshot of each pipeline."""
        if self._closed:
            return
        events, dropped = self.stream.events()
        errors = self.stream.take_errors()
        logs, self._logs = self._logs, []
        timed: list[tuple[float, Record]] = [(error.at, error) for error in errors]
        timed += [(event.at, event) for event in events]
        timed += [(line.at, line) for line in logs]
        # Errors first at equal times: an event refers to its error by number.
        timed.sort(key=lambda pair: pair[0])
        if dropped:
            self._write(Gap(at=timed[0][0] if timed else self.clock(), dropped=dropped))
        for _, record in timed:
            self._write(record)
        for snapshot in self._snapshots():
            self._write(snapshot)
        self._file.flush()

    def _snapshots(self) -> list[Snapshot]:
        if self.snapshots is not None:
            return self.snapshots()
        return self.stream.snapshots()

    def close(self, reason: str) -> None:
        """The last flush, the end record, and the file closed."""
        if self._closed:
            return
        self.flush()
        self._closed = True
        if self._task is not None:
            self._task.cancel()
        totals = [
            PipelineTotals(
                pipeline=snapshot.pipeline,
                fed=snapshot.fed,
                processed=snapshot.processed,
                failed=snapshot.failed,
                unfinished=snapshot.unfinished,
                skipped=snapshot.skipped,
            )
            for snapshot in self._snapshots()
        ]
        self._write(End(at=self.clock(), reason=reason, totals=tuple(totals)))
        self._file.close()
        self.stream.close()

    def _write(self, record: Record) -> None:
        self._file.write(self._encoder.encode(record) + b"\n")
