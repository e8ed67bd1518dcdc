"""RecordingWriter: a recording made of typed records, as a viewer of a served run gets them.

The `Recorder` tees a live run (it reads the trackers' journals); a viewer attached to a
run in another process has only the records the wire carries: `Event`s one by one, error
records, snapshots, log lines. This writes those into the same file format, so
``antflow-tui replay`` opens a recording made while attached (``attach --record``) like
any other: events go into compact batches (one scope per pipeline, each event its own
record, no merged kinds), snapshots at most every `snapshot_every` seconds as seek points,
failure checkpoints when a pipeline's failed items changed, and an end record with the
index on a clean close.

What the viewer never received is not in the file: events a slow viewer skipped (a `Gap`
record marks them) and the run before the viewer attached (its failures are there, from
the first checkpoint).
"""

from __future__ import annotations

import logging
import os
import sys
from array import array
from typing import TYPE_CHECKING, Any, Final

import msgspec

from antflow import _history as h
from antflow.runstream.filelines import BATCH_TAG, FailureCheckpoint, Names, encode_record
from antflow.runstream.recordingfile import RecordingFile, totals
from antflow.runstream.records import (
    LOG_LINE_LIMIT,
    Control,
    ErrorRecord,
    Event,
    Gap,
    Header,
    LogLine,
    PipelineStarted,
    Snapshot,
    bounded_error,
    clip,
)

if TYPE_CHECKING:
    from collections.abc import Iterable
    from pathlib import Path

logger = logging.getLogger(__name__)

SNAPSHOT_EVERY: Final = 1.0
"""Seconds between snapshot groups (the seek points), as the recorder writes them."""
_KINDS: Final = {name: kind for kind, name in enumerate(h.KIND_NAMES)}
_UNKNOWN_SCOPE: Final = 0
"""The scope of events whose pipeline the server could not tell (pipeline 0)."""


class _Scope:
    """One scope's name tables (index 0 stands for none)."""

    def __init__(self, number: int) -> None:
        self.number = number
        self.tables: tuple[list[str | None], list[str | None], list[str | None]] = (
            [None],
            [None],
            [None],
        )
        self.ids: tuple[dict[str, int], dict[str, int], dict[str, int]] = ({}, {}, {})
        self.written = (1, 1, 1)

    def id_of(self, table: int, name: str | None) -> int:
        if name is None:
            return 0
        ids = self.ids[table]
        found = ids.get(name)
        if found is None:
            found = ids[name] = len(self.tables[table])
            self.tables[table].append(name)
        return found

    def names(self) -> Names | None:
        """The name tables, if they grew since they were last written."""
        sizes = (len(self.tables[0]), len(self.tables[1]), len(self.tables[2]))
        if sizes == self.written:
            return None
        self.written = sizes
        stages, workers, tasks = self.tables
        pipelines = () if self.number == _UNKNOWN_SCOPE else (self.number,)
        return Names(
            scope=self.number,
            stages=tuple(stages),
            workers=tuple(workers),
            tasks=tuple(tasks),
            next_stage={},
            pipelines=pipelines,
        )


class RecordingWriter:
    """Writes typed records into a recording file (created, or truncated).

    Call `write` with every record in the order received, `failures` with a pipeline's
    failed items whenever they are known afresh, `flush` now and then (each snapshot
    does), and `close` at the end.

    Args:
        path: The recording file.
        header: The run's header (its first line).
        snapshot_every: Seconds between snapshot groups.
    """

    def __init__(
        self, path: str | Path, header: Header, *, snapshot_every: float = SNAPSHOT_EVERY
    ) -> None:
        self.path = os.fspath(path)
        self.snapshot_every = snapshot_every
        self.file = RecordingFile(self.path, header, threaded=False)
        """The file, its offsets and seek index."""
        self._scopes: dict[int, _Scope] = {}
        self._events: dict[int, list[Event]] = {}
        self._lines: list[bytes] = []
        """Error records, logs, controls and gaps waiting for the next flush."""
        self._pipelines: dict[int, PipelineStarted] = {}
        self._new_pipelines: list[PipelineStarted] = []
        self._snapshots: dict[int, Snapshot] = {}
        self._snapshot_at = float("-inf")
        self._snapshots_due = False
        self._checkpoints_due: dict[int, FailureCheckpoint] = {}
        self._errors_written: set[object] = set()
        self._last_at = header.started_at
        self.closed = False
        self._warned = False
        for started in header.pipelines:
            self._pipelines[started.pipeline] = started

    @property
    def failure(self) -> str | None:
        """Why the file could no longer be written (None while it can)."""
        return self.file.failure

    # ---------------------------------------------------------------- taking records

    def write(self, record: Any) -> None:
        """Take one record (kinds a recording does not hold are ignored)."""
        if self.closed or self.file.failure is not None:
            return
        at = getattr(record, "at", None)
        if isinstance(at, float | int):
            self._last_at = max(self._last_at, float(at))
        if isinstance(record, Event):
            self._events.setdefault(record.pipeline, []).append(record)
        elif isinstance(record, ErrorRecord):
            self._error(record)
        elif isinstance(record, Snapshot):
            self._snapshots[record.pipeline] = record
            self._snapshots_due = True
            if record.at - self._snapshot_at >= self.snapshot_every:
                self.flush()
        elif isinstance(record, PipelineStarted):
            if self._pipelines.get(record.pipeline) != record:
                self._pipelines[record.pipeline] = record
                self._new_pipelines.append(record)
        elif isinstance(record, LogLine):
            if len(record.text) > LOG_LINE_LIMIT:
                record = msgspec.structs.replace(record, text=clip(record.text, LOG_LINE_LIMIT))
            self._lines.append(encode_record(record))
        elif isinstance(record, Control | Gap):
            self._lines.append(encode_record(record))

    def failures(self, pipeline: int, at: float, failures: Iterable[ErrorRecord]) -> None:
        """Every item failed in `pipeline` at `at` (a checkpoint: seeking starts there).

        Their error records are written too, once each, so a replay's item screen has
        the traceback of a failure from before the viewer attached.
        """
        if self.closed or self.file.failure is not None:
            return
        kept = tuple(failures)
        for error in kept:
            self._error(error)
        self._checkpoints_due[pipeline] = FailureCheckpoint(
            pipeline=pipeline,
            at=at,
            failures=tuple(
                msgspec.structs.replace(bounded_error(error), traceback="") for error in kept
            ),
        )

    def _error(self, error: ErrorRecord) -> None:
        # A failure the server had not numbered (0) is known by where and when it was.
        key = error.number or (error.pipeline, repr(error.item), error.at)
        if key in self._errors_written:
            return
        self._errors_written.add(key)
        self._lines.append(encode_record(bounded_error(error)))

    # ---------------------------------------------------------------- writing

    def flush(self) -> None:
        """Write what arrived: pipelines, error records, event batches, the other lines,
        then the failure checkpoints and a snapshot group when one is due."""
        if self.closed:
            return
        out = self.file
        for started in self._new_pipelines:
            out.add(encode_record(started))
        self._new_pipelines = []
        # Error records before the batches that refer to them; names before batches.
        for line in self._lines:
            if line.startswith(b'{"record":"error"'):
                out.add(line)
        for pipeline, events in sorted(self._events.items()):
            if not events:
                continue
            scope = self._scope(pipeline)
            batch = self._batch(scope, events)
            names = scope.names()
            if names is not None:
                out.add_names(encode_record(names))
            out.add(batch)
        self._events = {}
        for line in self._lines:
            if not line.startswith(b'{"record":"error"'):
                out.add(line)
        self._lines = []
        group_at = min((s.at for s in self._snapshots.values()), default=self._last_at)
        # After the events they sum up: a seek applies only later events to them.
        for checkpoint in self._checkpoints_due.values():
            out.add_checkpoint(checkpoint.at, checkpoint.pipeline, encode_record(checkpoint))
        self._checkpoints_due = {}
        if self._snapshots_due and self._snapshots:
            self._snapshots_due = False
            self._snapshot_at = max(s.at for s in self._snapshots.values())
            out.add_snapshots(
                group_at, [encode_record(self._snapshots[n]) for n in sorted(self._snapshots)]
            )
        out.commit()
        self._check()

    def _scope(self, pipeline: int) -> _Scope:
        scope = self._scopes.get(pipeline)
        if scope is None:
            scope = self._scopes[pipeline] = _Scope(pipeline)
        return scope

    def _batch(self, scope: _Scope, events: list[Event]) -> bytes:
        items: list[Any] = []
        codes: list[int] = []
        times = array("d")
        numbered: list[tuple[int, int]] = []
        for index, event in enumerate(events):
            code = (
                _KINDS[event.kind]
                | scope.id_of(0, event.stage or None) << h.STAGE_SHIFT
                | scope.id_of(1, event.worker) << h.WORKER_SHIFT
                | scope.id_of(2, event.task) << h.TASK_SHIFT
                | h.attempt_bits(event.attempt)
            )
            items.append(event.item)
            codes.append(code)
            times.append(event.at)
            if event.error is not None:
                numbered.append((index, event.error))
        if sys.byteorder != "little":
            times.byteswap()
        line = [BATCH_TAG, scope.number, items, codes, times.tobytes(), numbered]
        return msgspec.json.encode(line) + b"\n"

    def _check(self) -> None:
        """The file cannot be written (a full disk): say so once, and keep nothing more."""
        if self.file.failure is not None and not self._warned:
            self._warned = True
            logger.warning("recording %s stopped: %s", self.path, self.file.failure)
            self._events, self._lines, self._checkpoints_due = {}, [], {}

    def close(self, reason: str | None = None) -> None:
        """Write what is left and the end record (with the seek index); close the file.

        Args:
            reason: ``finished``, ``stopped``, ``interrupted``...; None: from the last
                snapshots (still running: interrupted; items left unfinished: stopped).
        """
        if self.closed:
            return
        self._snapshots_due = bool(self._snapshots)
        self.flush()
        snapshots = [self._snapshots[n] for n in sorted(self._snapshots)]
        if reason is None:
            if any(s.running for s in snapshots):
                reason = "interrupted"
            elif any(s.unfinished for s in snapshots):
                reason = "stopped"
            else:
                reason = "finished"
        self.closed = True
        self.file.close(
            at=self._last_at,
            reason=reason,
            totals=totals(snapshots),
            pipelines=tuple(self._pipelines[n] for n in sorted(self._pipelines)),
        )
        self._check()
