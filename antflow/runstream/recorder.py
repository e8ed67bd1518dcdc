"""Recorder: a lossless tee of a run stream into a recording file.

The recorder opens a journal on each tracker: every raw record and every new attempt
error, none dropped (a monitor's tail drops under a flood; a recording must not). Every
half second it writes what arrived: error records first (event batches refer to them),
then one event batch per tracker, log lines and controls, and a snapshot of every
pipeline at least every second (the seek points). The journal is a flat list (three appends
a record) and a batch is written in columns, codes and times as base64 of float arrays:
per-record tuples encoded as JSON cost the run 28 % of its throughput (benchmarks/record.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sys
from array import array
from collections import deque
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final

import msgspec

from antflow.runstream import convert
from antflow.runstream.compaction import compact_later
from antflow.runstream.filelines import BATCH_TAG, FailureCheckpoint, Names, encode_packed
from antflow.runstream.jsonlines import encode_line
from antflow.runstream.outcomes import OutcomeKeeper
from antflow.runstream.recordingfile import RecordingFile, totals
from antflow.runstream.records import (
    Control,
    ItemUsage,
    LogLine,
    PipelineStarted,
    item_key,
)

if TYPE_CHECKING:
    import threading
    from pathlib import Path

    from antflow._history import ErrorNote
    from antflow.pipeline import Pipeline
    from antflow.probe import Journal, TrackerProbe, UsageSink
    from antflow.runstream.stream import RunStream

logger = logging.getLogger(__name__)

FLUSH_EVERY: Final = 0.5
"""Seconds between writes: a killed run loses at most this much."""
SNAPSHOT_EVERY: Final = 1.0
"""Seconds between snapshots (seek points)."""
CHECKPOINT_BYTES: Final = 4 << 20
"""A failure checkpoint at least every this many bytes (or 4x the last one's size), so a
seek never reads the whole file to find the failures of a run whose failures stopped
changing."""
_PLAIN_ID_TYPES: Final = frozenset({int, str, bool, type(None)})
"""Ids written as they are, without a look at each (a float may be a NaN)."""
BATCH_RECORDS: Final = 16_384
"""Most records on one batch line, so a reader decodes little more than it needs."""


@dataclass(slots=True)
class _Scope:
    """One tracker the recording follows."""

    number: int
    tracker: TrackerProbe
    journal: Journal
    """This recorder's cursor into the tracker's journal, and its error sink."""
    usage: UsageSink
    """The items that reported usage (`set_task_usage`) since the last flush."""
    pipelines: list[int] = field(default_factory=list)
    names_written: tuple[int, int, int, int] = (0, 0, 0, 0)
    failure_changes: int = -1
    checkpoint_at: float = float("-inf")
    checkpoint_offset: int = 0
    """Where the last failure checkpoint ended: a seek reads on from there."""
    checkpoint_size: int = 0


class Recorder:
    """Writes a run stream to `path` (created or truncated) until `close()`.

    Args:
        path: The recording file.
        stream: The run stream whose pipelines (present and future) are recorded.
        flush_every: Seconds between writes (a task on the running loop does them).
        snapshot_every: Seconds between snapshots.
        outcomes: Also store each completed item's result and each durable stage's
            outputs, for a resume (`antflow.runstream.outcomes`).
        history: What the run history keeps in the header (``Header.history``).
        compact: Compact the file once it is closed with its end record (on a thread:
            `antflow.runstream.compaction`), as the run history keeps its runs.
    """

    def __init__(
        self,
        path: str | Path,
        stream: RunStream,
        *,
        flush_every: float = FLUSH_EVERY,
        snapshot_every: float = SNAPSHOT_EVERY,
        outcomes: bool = False,
        history: dict[str, Any] | None = None,
        compact: bool = False,
    ) -> None:
        self.path = path
        self.compact = compact
        self.compaction: threading.Thread | None = None
        """The thread compacting the file after `close` (with ``compact``)."""
        self.stream = stream
        self.flush_every = flush_every
        self.snapshot_every = snapshot_every
        self.file: RecordingFile | None = None
        """The file being written (from `open`)."""
        self._scopes: list[_Scope] = []
        self._pipelines: dict[int, tuple[Pipeline, _Scope]] = {}
        # Log lines come from any thread: a deque's append and popleft are atomic.
        self._pending: deque[bytes] = deque()
        self._snapshot_at = float("-inf")
        self._task: asyncio.Task[None] | None = None
        self._encode = msgspec.json.Encoder(enc_hook=self._encode_other).encode
        self.closed = False
        self._checkpoint_now = False
        self._given_up = False
        self._outcomes = OutcomeKeeper() if outcomes else None
        self._history = history

    @property
    def broken(self) -> bool:
        """True once the file could not be written (a full disk, the file deleted): the
        recording stops there, with one warning, and lets go of what it held."""
        return self.file is not None and self.file.broken

    # ---------------------------------------------------------------- lifecycle

    def open(self) -> None:
        """Create the file, write the header, and follow the stream's pipelines."""
        header = msgspec.structs.replace(
            self.stream.header, pipelines=tuple(self.stream.pipelines()), history=self._history
        )
        self.file = RecordingFile(self.path, header, threaded=True)
        for number, pipeline in self.stream.live_pipelines():
            self._follow(pipeline, self.stream.pipelines()[number - 1], write=False)
        self.stream.on_attach.append(self._on_attach)
        self.stream.on_start.append(self._on_start)
        self.stream.on_record.append(self._on_record)
        self._start_flushing()

    def close(self, reason: str = "finished") -> None:
        """Write what is left, a last snapshot, and the end record; close the file."""
        file = self.file
        if self.closed or file is None:
            return
        self.closed = True
        if self._task is not None:
            self._task.cancel()
            self._task = None
        self._detach()
        self._checkpoint_now = True
        self.flush(snapshot=True)
        if self._given_up:
            return
        last = [self.stream.snapshot(number) for number in sorted(self._pipelines)]
        self._release_journals()
        file.close(
            at=self.stream.clock(),
            reason=reason,
            totals=totals(last),
            pipelines=tuple(self.stream.pipelines()),
        )
        if self.broken:
            self._give_up()
        elif self.compact:
            self.compaction = compact_later(self.path)

    def _detach(self) -> None:
        for callbacks, callback in (
            (self.stream.on_attach, self._on_attach),
            (self.stream.on_start, self._on_start),
            (self.stream.on_record, self._on_record),
        ):
            with contextlib.suppress(ValueError):
                callbacks.remove(callback)  # type: ignore[arg-type]

    def _release_journals(self) -> None:
        if self._outcomes is not None:
            self._outcomes.close()
        for scope in self._scopes:
            scope.journal.close()
            scope.usage.close()
        self._scopes = []
        self._pipelines = {}

    def _give_up(self) -> None:
        """The file cannot be written: say so once, and let go of everything recording
        holds (the trackers' journals grow with every event while a recorder reads them),
        so the run goes on as if it were never recorded."""
        if self._given_up:
            return
        self._given_up = True
        file = self.file
        logger.warning(
            "recording %s stopped: %s. The run goes on unrecorded.",
            self.path,
            (file and file.failure) or "the file could not be written",
        )
        self._detach()
        self._release_journals()
        self._pending.clear()
        if file is not None:
            file.abandon()

    def _start_flushing(self) -> None:
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return  # no loop yet: the first pipeline attached inside one starts it
        if self._task is None or self._task.get_loop() is not loop or self._task.done():
            self._task = loop.create_task(self._flush_forever(), name="antflow recorder")

    async def _flush_forever(self) -> None:
        try:
            while not self._given_up:
                await asyncio.sleep(self.flush_every)
                try:
                    self.flush()
                except Exception:  # one bad flush must not end the recording
                    logger.exception("recording %s: a write failed; going on", self.path)
        except asyncio.CancelledError:
            # The loop is ending (or close() came): what arrived meanwhile is written.
            if not self.closed:
                self.flush()
            raise

    # ---------------------------------------------------------------- following

    def _on_attach(self, pipeline: Pipeline, started: PipelineStarted) -> None:
        self._follow(pipeline, started, write=True)
        self._start_flushing()

    def _on_start(self, pipeline: Pipeline) -> None:
        # Every start, a restart on a new event loop too: the writes follow the loop.
        self._start_flushing()

    def _follow(self, pipeline: Pipeline, started: PipelineStarted, *, write: bool) -> None:
        tracker = pipeline.probe.tracker
        assert tracker is not None  # the stream gives every pipeline a tracker
        scope = next((s for s in self._scopes if s.tracker.tracker is tracker.tracker), None)
        if scope is None:
            scope = _Scope(
                len(self._scopes) + 1, tracker, tracker.open_journal(), tracker.open_usage_sink()
            )
            self._scopes.append(scope)
        scope.pipelines.append(started.pipeline)
        scope.names_written = (0, 0, 0, 0)
        self._pipelines[started.pipeline] = (pipeline, scope)
        if self._outcomes is not None:
            self._outcomes.follow(pipeline, started)
        if write:
            self._pending.append(encode_line(started))
        # A first snapshot, so a replay has the pipeline's state from its start.
        self._snapshot_at = float("-inf")

    def _on_record(self, record: LogLine | Control) -> None:
        self._pending.append(encode_line(record))

    # ---------------------------------------------------------------- writing

    def flush(self, *, snapshot: bool = False) -> None:
        """Write everything that arrived since the last flush (synchronous)."""
        out = self.file
        if out is None or self._given_up or (self.closed and out.closed):
            return
        if out.broken:
            self._give_up()
            return
        pending = []
        while self._pending:
            pending.append(self._pending.popleft())
        # Pipeline records before the events that need their stage names.
        for line in pending:
            if b'"record":"pipeline"' in line:
                out.add(line)
        if self._outcomes is not None:
            # Before the event batches: an item whose completion a batch shows is in an
            # outcomes line too, wherever a kill cuts the file.
            for line in self._outcomes.lines():
                out.add(line)
        for scope in self._scopes:
            for line in self._error_lines(scope):
                out.add(line)
            for line in self._names_lines(scope):
                out.add_names(line)
            journal, errors = scope.journal.take()
            for batch in self._batches(scope.number, journal, errors, scope.journal.plain_ids):
                out.add(batch)
            for line in self._usage_lines(scope):
                out.add(line)
        for line in pending:
            if b'"record":"pipeline"' not in line:
                out.add(line)
        now = self.stream.clock()
        if snapshot or now - self._snapshot_at >= self.snapshot_every:
            self._snapshot_at = now
            # Through the stream: a monitor's stream may add what only it knows.
            snaps = [self.stream.snapshot(number) for number in sorted(self._pipelines)]
            # Seek points are in the engine's clock, as every record's time is.
            snapshot_at = min((snap.at for snap in snaps), default=now)
            for scope, pipeline_number, at, line in self._checkpoint_lines(snapshot_at, out):
                offset = out.add_checkpoint(at, pipeline_number, line)
                scope.checkpoint_offset = offset + len(line)
            if snaps:
                out.add_snapshots(snapshot_at, [encode_line(snap) for snap in snaps])
        out.commit()
        # Only now: the batches above referred to these numbers.
        self.stream.numbers.trim()

    def _batches(
        self,
        scope: int,
        journal: list[Any],
        errors: dict[int, BaseException],
        plain_ids: bool,
    ) -> list[bytes]:
        """Packed event batch lines for a journal take, at most `BATCH_RECORDS` records
        each: the journal's words as they are, in one MessagePack pass (columns took twice
        as long: every record's objects read again for each column, the float times
        converted one by one)."""
        lines = []
        numbers = self.stream.numbers
        records = len(journal) // 3
        for first in range(0, records, BATCH_RECORDS):
            last = min(first + BATCH_RECORDS, records)
            words = journal if last - first == records else journal[3 * first : 3 * last]
            numbered = [
                (index - first, numbers.number_of(error, words[3 * (index - first)]) or 0)
                for index, error in errors.items()
                if first <= index < last
            ]
            if not plain_ids:
                # Ids a recording writes as their repr (tuples, objects, NaN) or as they
                # are: one pass, only while such an id was ever fed.
                if words is journal:
                    words = journal[:]
                words[0::3] = [
                    i if type(i) in _PLAIN_ID_TYPES else item_key(i) for i in words[0::3]
                ]
            try:
                lines.append(encode_packed(scope, words, numbered))
            except (OverflowError, TypeError):
                # An int id past MessagePack's 64 bits: this batch in columns (JSON holds it).
                lines.append(self._column_batch(scope, words, numbered))
        return lines

    def _column_batch(self, scope: int, words: list[Any], numbered: list[tuple[int, int]]) -> bytes:
        times = array("d", words[2::3])
        if sys.byteorder != "little":
            times.byteswap()
        ids = [i if type(i) in _PLAIN_ID_TYPES else item_key(i) for i in words[0::3]]
        columns = [BATCH_TAG, scope, ids, words[1::3], times.tobytes(), numbered]
        try:
            return encode_line(columns, self._encode)
        except (ValueError, TypeError, OverflowError, RecursionError):
            # An id JSON cannot hold though its type can (an int of thousands of digits).
            columns[2] = [item_key(i) for i in ids]
            return encode_line(columns, self._encode)

    def _error_lines(self, scope: _Scope) -> list[bytes]:
        notes = scope.journal.take_errors()
        if not notes:
            return []
        lines = []
        for note in notes:
            number = self.stream.numbers.number(note.exception, note.item_id)
            pipeline_number = self._owner(scope, note)
            value = None
            if self.stream.values and pipeline_number in self._pipelines:
                location = self._pipelines[pipeline_number][0].locate(note.item_id)
                value = None if location is None else convert.value_repr(location.value)
            record = convert.error_record(note, number, scope.tracker, pipeline_number, value)
            lines.append(encode_line(record))
        return lines

    def _usage_lines(self, scope: _Scope) -> list[bytes]:
        """What each item that reported usage since the last flush has reported so far
        (after the batch holding the attempt that reported it: a replay's item screen
        shows it from then on)."""
        reported = scope.usage.take()
        if not reported:
            return []
        pipeline = scope.pipelines[0] if len(scope.pipelines) == 1 else 0
        now = self._pipelines[scope.pipelines[-1]][0].probe.now()
        return [
            encode_line(
                ItemUsage(
                    pipeline=pipeline,
                    at=now,
                    item=item_key(item_id),
                    usage=convert.usage_of(usage),
                )
            )
            for item_id, usage in reported
        ]

    def _owner(self, scope: _Scope, note: ErrorNote) -> int:
        if len(scope.pipelines) == 1:
            return scope.pipelines[0]
        stage = convert.note_stage(note, scope.tracker)
        owners = [
            number
            for number in scope.pipelines
            if any(info.name == stage for info in self._pipelines[number][0].probe.stage_infos)
        ]
        return owners[0] if len(owners) == 1 else 0

    def _names_lines(self, scope: _Scope) -> list[bytes]:
        stages, workers, tasks = scope.tracker.names()
        sizes = (len(stages), len(workers), len(tasks), len(scope.pipelines))
        if sizes == scope.names_written:
            return []
        scope.names_written = sizes
        names = Names(
            scope=scope.number,
            stages=tuple(stages),
            workers=tuple(workers),
            tasks=tuple(tasks),
            next_stage=scope.tracker.successors(),
            pipelines=tuple(scope.pipelines),
        )
        return [encode_line(names)]

    def _checkpoint_lines(
        self, now: float, out: RecordingFile
    ) -> list[tuple[_Scope, int, float, bytes]]:
        """Every failed item, for each pipeline whose failures changed since the last
        checkpoint (at most once a second, less often the more failures there are), or
        whose last checkpoint is so far back that a seek would read too much to reach it."""
        lines = []
        closing = self._checkpoint_now
        numbers = self.stream.numbers
        for scope in self._scopes:
            changes = scope.tracker.tracker.failure_changes
            since = out.offset - scope.checkpoint_offset
            far = since > max(CHECKPOINT_BYTES, 4 * scope.checkpoint_size)
            if changes == scope.failure_changes and not far:
                continue
            failed = sum(self._pipelines[n][0].probe.counters().failed for n in scope.pipelines)
            soon = now - scope.checkpoint_at < max(self.snapshot_every, failed / 10_000)
            if soon and not (closing or far):
                continue
            scope.failure_changes = changes
            scope.checkpoint_at = now
            size = 0
            for number in scope.pipelines:
                failures = tuple(
                    convert.failure_record(
                        failure, numbers.number_of(failure.error, failure.item_id) or 0, number
                    )
                    for failure in self._pipelines[number][0].probe.failures()
                )
                checkpoint = FailureCheckpoint(pipeline=number, at=now, failures=failures)
                line = encode_line(checkpoint)
                size += len(line)
                lines.append((scope, number, now, line))
            scope.checkpoint_size = size
        return lines

    def _encode_other(self, obj: Any) -> Any:
        """msgspec's hook for what JSON has no type for: ids become their repr."""
        return item_key(obj)
