"""RecordingFile: the one writer of a recording file's bytes and of its seek index.

Two producers write recordings: the `Recorder` tees a live run (from the trackers'
journals), and `RecordingWriter` writes the typed records a viewer of a served run gets
(``attach --record``). Both hand their lines here, in file order; this owns the file, the
byte offset of every line, the index of snapshot groups, the failure checkpoints, the
name tables' offsets and the end record that lists them (docs/recording.md). A producer
only decides what its lines are.

Lines are gathered (`add`...) and handed over together (`commit`). With ``threaded`` a
writer thread writes them (file writes release the GIL: a flush of tens of megabytes
does not hold the event loop); otherwise `commit` writes at once. A write that fails (a
full disk) or a file deleted meanwhile stops the writing: `failure` says why, once, and
the owner decides what to tell (the file holds what was written before).
"""

from __future__ import annotations

import contextlib
import errno
import os
import queue
import threading
from typing import TYPE_CHECKING, Any

from antflow.runstream.jsonlines import encode_line
from antflow.runstream.records import End, PipelineTotals, added_usage

if TYPE_CHECKING:
    from collections.abc import Iterable
    from pathlib import Path

    from antflow.runstream.records import Header, PipelineStarted, Snapshot


class RecordingFile:
    """A recording file being written (created, or truncated), its header first.

    Args:
        path: The file.
        header: The run's header (its first line).
        threaded: Write from a thread of its own (see the module docstring).
    """

    def __init__(self, path: str | Path, header: Header, *, threaded: bool) -> None:
        self.path = os.fspath(path)
        self.offset = 0
        """Where the next line added starts."""
        self.failure: str | None = None
        """Why the file could no longer be written (None while it can)."""
        self.closed = False
        self._pending: list[bytes] = []
        self._index: list[tuple[float, int]] = []
        self._checkpoints: list[tuple[float, int, int]] = []
        self._names: list[int] = []
        self._file: Any = open(self.path, "wb")  # noqa: SIM115 - closed by close()
        self._writes: queue.SimpleQueue[list[bytes] | None] | None = None
        self._writer: threading.Thread | None = None
        if threaded:
            self._writes = queue.SimpleQueue()
            self._writer = threading.Thread(
                target=self._write_forever, name="antflow recorder writer", daemon=True
            )
            self._writer.start()
        self.add(encode_line(header))
        self.commit()

    @property
    def broken(self) -> bool:
        """True once the file could not be written."""
        return self.failure is not None

    # ---------------------------------------------------------------- lines, in file order

    def add(self, line: bytes) -> int:
        """Add one line (or several, joined); returns the offset it starts at."""
        start = self.offset
        self._pending.append(line)
        self.offset += len(line)
        return start

    def add_names(self, line: bytes) -> int:
        """Add a name tables line (its offset goes into the end record)."""
        start = self.add(line)
        self._names.append(start)
        return start

    def add_checkpoint(self, at: float, pipeline: int, line: bytes) -> int:
        """Add a pipeline's failure checkpoint line (seeking starts from one)."""
        start = self.add(line)
        self._checkpoints.append((at, start, pipeline))
        return start

    def add_snapshots(self, at: float, lines: Iterable[bytes]) -> None:
        """Add a group of snapshot lines taken at `at`: a seek point of the index."""
        self._index.append((at, self.offset))
        for line in lines:
            self.add(line)

    def commit(self) -> None:
        """Hand the lines added since the last commit to the file."""
        # The lines as they are, not joined: a join copied a flush's megabytes on the
        # event loop (a tenth of a no-op run's flush time), where a buffered file's
        # `write` hands each long line to the OS as it is.
        lines = self._pending
        self._pending = []
        if not lines or self.failure is not None:
            return
        if self._writes is not None:
            self._writes.put(lines)
            return
        try:
            _write(self._file, lines)
            self._file.flush()
        except OSError as error:
            self._failed(_why(error))

    def close(
        self,
        *,
        at: float,
        reason: str,
        totals: tuple[PipelineTotals, ...],
        pipelines: tuple[PipelineStarted, ...],
    ) -> None:
        """Write what is left and the end record (with the seek index); close the file."""
        if self.closed:
            return
        self.add(
            encode_line(
                End(
                    at=at,
                    reason=reason,
                    totals=totals,
                    index=tuple(self._index),
                    checkpoints=tuple(self._checkpoints),
                    names=tuple(self._names),
                    pipelines=pipelines,
                )
            )
        )
        self.commit()
        self.finish()

    def finish(self) -> None:
        """Write what was handed over, and close the file (without an end record)."""
        self.closed = True
        self._pending = []
        if self._writer is not None and self._writes is not None:
            self._writes.put(None)
            self._writer.join()
            return
        try:
            self._file.close()
        except OSError as error:  # what the last write could not write
            if self.failure is None:
                self._failed(_why(error))

    def abandon(self) -> None:
        """Drop whatever is waiting to be written, and close (the file is broken)."""
        self._pending = []
        if self._writes is not None:
            with contextlib.suppress(queue.Empty):
                while True:
                    self._writes.get_nowait()
        self.finish()

    # ---------------------------------------------------------------- writing

    def _write_forever(self) -> None:
        """The writer thread: whole lines, in order, flushed to the OS as they come. A
        write that fails (a full disk) or a file deleted meanwhile (writes would go on
        into a file nobody can open) stops it."""
        assert self._writes is not None
        try:
            while True:
                lines = self._writes.get()
                if lines is None:
                    return
                file = self._file
                _write(file, lines)
                file.flush()
                if os.fstat(file.fileno()).st_nlink == 0:
                    self._failed("the file was deleted while it was written")
                    return
        except OSError as error:
            self._failed(_why(error))
        finally:
            try:
                self._file.close()
            except OSError as error:  # what the last flush could not write
                if self.failure is None:
                    self._failed(_why(error))

    def _failed(self, why: str) -> None:
        self.failure = self.failure or why
        self._pending = []


def _write(file: Any, lines: list[bytes]) -> None:
    # One `write` a line (not `writelines`): whatever wraps the file sees every byte.
    write = file.write
    for line in lines:
        write(line)


def totals(snapshots: Iterable[Snapshot]) -> tuple[PipelineTotals, ...]:
    """The end record's totals, from each pipeline's last snapshot."""
    return tuple(
        PipelineTotals(
            pipeline=s.pipeline,
            fed=s.fed,
            processed=s.processed,
            failed=s.failed,
            unfinished=s.unfinished,
            skipped=s.skipped,
            done_earlier=s.done_earlier,
            usage=added_usage(stage.usage for stage in s.stages),
        )
        for s in snapshots
    )


def _why(error: OSError) -> str:
    what = "the disk is full" if error.errno == errno.ENOSPC else error.strerror or str(error)
    return f"{what} (the file holds what was written before)"
