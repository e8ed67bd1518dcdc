"""Recordings: the run stream as a JSON Lines file, and reading one back with seeking.

The format (version 2, which reads version 1 files as well; docs/recording.md has the
full description):

- Every line is one JSON value; lines are appended whole and flushed at least every half
  second, so a killed run leaves a readable file whose torn last line is ignored.
- Line 1 is the `Header`. Most lines are records of `antflow.runstream.records`, as JSON
  objects tagged ``"record"`` (pipeline, error, snapshot, log, control, gap, end), plus two
  kinds that exist only in files: `Names` (a tracker's interned stage, worker and task
  names) and `FailureCheckpoint` (every item failed at that moment: a seek point).
- Events come in batches, one line per tracker per flush, as arrays in columns:
  ``["E", scope, [item, ...], [code, ...], "<times>", [[index, error number], ...]]``,
  one record per item id, in the order they were recorded; the base64 string holds
  the records' Unix times as little-endian float64; ``code``
  packs the event kind and the stage, worker and task name ids of scope's `Names` (see
  `antflow._history`); the last list says which records carry which `ErrorRecord`. One
  record may stand for several events (in_progress + task start; task complete +
  completed + queued next). Task durations are not stored: a reader pairs starts with
  their ends.
- A kept run adds `Outcomes` lines (results, and durable stages' outputs, for a resume),
  read by `Recording.outcomes` alone: every other read passes them over unread.
- The `End` record of a clean close holds totals and a seek index.

Reading never loads the whole file: `Recording` keeps an index of seek points (from the
end record, or from one scan when it is missing) and reads what a request needs.

Every file read back may be damaged: lines are read bounded and decoded through
`antflow.runstream.filelines`, a damaged line is passed over (`Recording.damaged`), and
the end record's index is checked against the file before it is trusted (a line
dropped, repeated or swapped moves every offset after it): when it does not match, the
index is rebuilt by a scan, as for a file without an end record.
"""

from __future__ import annotations

import bisect
import mmap
import os
import re
import reprlib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

import msgspec

from antflow import _history as h
from antflow.runstream.compactfile import FramedFile, PlainFile, RecordingBytes, open_bytes
from antflow.runstream.convert import RawDecoder, with_durations
from antflow.runstream.filelines import (
    LINE_LIMIT,
    OUTCOMES_PREFIX,
    Batch,
    FailureCheckpoint,
    FileRecord,
    Lines,
    Names,
    Outcomes,
    batch_from_columns,
    batch_of,
    packed_mention,
    record_of,
)
from antflow.runstream.records import (
    FORMAT,
    VERSION,
    End,
    ErrorRecord,
    Event,
    Header,
    ItemDetail,
    ItemKey,
    ItemUsage,
    PipelineStarted,
    Record,
    ReprKey,
    Snapshot,
    Usage,
)

if TYPE_CHECKING:
    from collections.abc import Callable, Collection, Iterator
    from pathlib import Path


HEADER_LIMIT: Final = 1 << 20
"""Longest first line read (bytes): a header is a few hundred."""
BACKFILL_BYTES: Final = 16 << 20
"""Most bytes `Recording.newest_before` reads walking back for events (a file's idle
tail is a snapshot group a second: this reaches back most of an hour of it)."""


class RecordingError(Exception):
    """The file is not a recording this antflow can read; the message says why.

    The only error reading a recording raises: `Recording.open` refuses a file that is
    not one; once open, a damaged line is passed over (`Recording.damaged`), never
    raised.
    """


@dataclass(frozen=True, slots=True)
class SeekPoint:
    """The state of a recorded run at one moment."""

    at: float
    snapshots: dict[int, Snapshot]
    """Per pipeline number, its latest snapshot at or before `at`."""
    failures: dict[int, list[ErrorRecord]]
    """Per pipeline number, the error of each item failed at `at`, oldest first
    (tracebacks may be empty: `Recording.item` has them)."""


@dataclass(frozen=True, slots=True)
class _Mark:
    at: float
    offset: int
    kind: str
    """``snapshot`` or ``failures``."""
    pipeline: int = 0
    """For ``failures``: whose."""


_MARK_LINE: Final = re.compile(
    rb'\n\{"record":"(snapshot|failures)","pipeline":(\d+),"at":([-+.\deE]+)[,}]'
)
"""The start of a seek point's line, with the newline before it (so it is a line's start)."""
_MARK_PROBE: Final = 128
"""Bytes read to check a seek point: its line's start."""


class Recording:
    """A recording opened for reading. Use `Recording.open(path)`.

    Memory holds the header, the pipelines, the name tables and the seek index (a few
    numbers per second of run), never the events, and at most `LINE_LIMIT` bytes of a
    line.
    """

    def __init__(self, path: str | Path, handle: RecordingBytes) -> None:
        self.path = os.fspath(path)
        self._file = handle
        self.header: Header
        self.complete = False
        """False when the run did not close cleanly (no end record)."""
        self.damaged = False
        """A damaged line was met and passed over (or the end record's index did not
        match the file, and a scan rebuilt it)."""
        self.index_rebuilt = False
        """The end record's index did not match the file: a scan rebuilt it."""
        self.torn = False
        """True when the last line was cut short (a killed run)."""
        self.end: End | None = None
        self.started_at = 0.0
        self.ended_at = 0.0
        """Time of the last record."""
        self._pipelines: dict[int, PipelineStarted] = {}
        self._names: dict[int, Names] = {}
        self._marks: list[_Mark] = []
        self._data_start = 0
        """Where the line after the header starts."""
        self._idle_from: dict[int, int] = {}
        self._snapshot_points: tuple[list[_Mark], list[float]] | None = None
        """Snapshot mark index -> the first mark of the stretch without a running pipeline
        it ends (`idle_since`)."""

    # ---------------------------------------------------------------- opening

    @classmethod
    def open(cls, path: str | Path) -> Recording:
        """Open and index a recording.

        Raises:
            RecordingError: not a recording (or not one yet: an empty or torn header), or
                one of a newer major version.
        """
        try:
            handle = open_bytes(path, HEADER_LIMIT)
        except OSError as error:
            raise RecordingError(f"cannot open {os.fspath(path)}: {error.strerror}") from None
        recording = cls(path, handle)
        try:
            recording._index()
            recording.damaged = recording.damaged or handle.damaged
        except OSError as error:
            handle.close()
            raise RecordingError(f"cannot read {recording.path}: {error.strerror}") from None
        except BaseException:
            handle.close()
            raise
        return recording

    def _index(self) -> None:
        first = self._file.readline(HEADER_LIMIT + 1)
        if not first.endswith(b"\n"):
            if len(first) > HEADER_LIMIT:
                raise RecordingError(
                    f"{self.path} is not an antflow recording (its first line is longer "
                    f"than {HEADER_LIMIT:,} bytes)"
                )
            raise RecordingError(f"{self.path} is empty or was cut short before its header")
        self._data_start = len(first)
        header = _header(first, self.path)
        self.header = header
        self.started_at = self.ended_at = header.started_at
        for started in header.pipelines:
            self._pipelines[started.pipeline] = started
        found = self._read_end()
        if found is None:
            self._scan()
            return
        # A clean close says where everything is: no scan, whatever the file's size,
        # once its index is seen to match the file.
        end, end_offset = found
        self.end = end
        self.complete = True
        self.ended_at = end.at
        for started in end.pipelines:
            self._pipelines[started.pipeline] = started
        if not self._take_index(end, end_offset):
            self.index_rebuilt = self.damaged = True
            self._names.clear()
            self._scan()
            self.ended_at = max(self.ended_at, end.at)

    def _take_index(self, end: End, end_offset: int) -> bool:
        """Use the end record's index if it matches the file: offsets in order, inside
        the file, each at the start of a line of the kind (and time) it says."""
        marks = [_Mark(at, offset, "snapshot") for at, offset in end.index]
        checkpoints = [_Mark(at, offset, "failures", n) for at, offset, n in end.checkpoints]
        if not (
            _in_order(marks, self._data_start, end_offset)
            and _in_order(checkpoints, self._data_start, end_offset)
            and all(self._marks_line(mark) for mark in (*marks, *checkpoints))
        ):
            return False
        names: dict[int, Names] = {}
        previous = self._data_start - 1
        for offset in end.names:
            if not previous < offset < end_offset or not self._starts_line(offset):
                return False
            previous = offset
            record = next((record_of(line) for line in self._lines(offset)), None)
            if not isinstance(record, Names):
                return False
            names[record.scope] = record
        self._names = names
        marks.extend(checkpoints)
        marks.sort(key=lambda mark: (mark.at, mark.offset))
        self._marks = marks
        return True

    def _starts_line(self, offset: int) -> bool:
        return self._file.pread(1, offset - 1) == b"\n"

    def _marks_line(self, mark: _Mark) -> bool:
        """Whether a line of the mark's kind starts at its offset: a failure checkpoint
        of its pipeline at its time, or the first of a snapshot group (whose time is the
        group's earliest)."""
        probe = self._file.pread(_MARK_PROBE, mark.offset - 1)
        found = _MARK_LINE.match(probe)
        if found is None or found.group(1).decode() != mark.kind:
            return False
        try:
            at = float(found.group(3))
        except ValueError:
            return False
        if mark.kind == "snapshot":
            return at >= mark.at
        return at == mark.at and int(found.group(2)) == mark.pipeline

    def _scan(self) -> None:
        """Index the file by reading the lines that are not event batches (pipelines,
        names, seek points); without an end record, or with one that does not match."""
        marks: list[_Mark] = []
        in_group = False
        lines = self._lines(self._data_start)
        for line in lines:
            group_started = not in_group
            in_group = line.startswith(b'{"record":"snapshot"')
            if line.startswith(OUTCOMES_PREFIX):
                continue  # read by `outcomes` alone
            if line.startswith(b"["):
                batch = batch_of(line)
                if batch is None:
                    self.damaged = True
                elif batch.times:
                    self.ended_at = max(self.ended_at, batch.times[-1])
                continue
            record = record_of(line)
            if record is None:
                self.damaged = True
                in_group = False
                continue
            if isinstance(record, PipelineStarted):
                self._pipelines[record.pipeline] = record
            elif isinstance(record, Names):
                self._names[record.scope] = record
            elif isinstance(record, FailureCheckpoint):
                marks.append(_Mark(record.at, lines.offset, "failures", record.pipeline))
            elif isinstance(record, Snapshot) and group_started:
                # A group of snapshots (one per pipeline) is one seek point.
                marks.append(_Mark(record.at, lines.offset, "snapshot"))
            at = getattr(record, "at", None)
            if at is not None:
                self.ended_at = max(self.ended_at, at)
        self.torn = lines.torn
        marks.sort(key=lambda mark: (mark.at, mark.offset))
        self._marks = marks

    def _read_end(self) -> tuple[End, int] | None:
        """The end record and its offset, if the last line is one (read from the file's
        tail, at most `LINE_LIMIT` bytes of it)."""
        handle = self._file
        handle.seek(0, os.SEEK_END)
        size = handle.tell()
        chunk = 1 << 16
        while True:
            start = max(size - chunk, self._data_start)
            handle.seek(start)
            tail = handle.read(size - start)
            if not tail.endswith(b"\n"):
                return None
            cut = tail.rfind(b"\n", 0, len(tail) - 1)
            if cut >= 0 or start == self._data_start:
                last = tail[cut + 1 :]
                break
            if chunk >= LINE_LIMIT:
                return None
            chunk *= 4
        if b'"record":"end"' not in last:
            return None
        record = record_of(last)
        return (record, size - len(last)) if isinstance(record, End) else None

    # ---------------------------------------------------------------- reading

    def pipelines(self) -> list[PipelineStarted]:
        """Every pipeline of the run, in order."""
        return [self._pipelines[n] for n in sorted(self._pipelines)]

    def records(self, start: float = float("-inf"), stop: float = float("inf")) -> Iterator[Record]:
        """Every record with start < at <= stop, in file order (events decoded one by one
        from their batches; file-only kinds are left out)."""
        offset = self._offset_before(start)
        yield from self._records_from(offset, start, stop)

    def scan(self, kinds: Collection[str]) -> Iterator[Batch | FileRecord]:
        """One pass over the whole file in order, for tools that read a run whole (a
        comparison of two runs): event batches as their columns (``"batch"`` in `kinds`;
        no `Event` is built: `event_stages` says what their codes' stage ids name) and the
        records of the kinds named by their ``record`` tag (``"error"``, ``"snapshot"``,
        ``"usage"``...). Lines of other kinds are passed over undecoded; a damaged line
        is passed over (`damaged`)."""
        wanted = tuple(f'{{"record":"{kind}"'.encode() for kind in kinds if kind != "batch")
        batches = "batch" in kinds
        lines: Iterator[tuple[bytes, bytes | None]]
        if isinstance(self._file, FramedFile):
            lines = self._framed_lines()
        else:
            lines = ((line, None) for line in self._lines(self._data_start))
        for line, column in lines:
            if line.startswith(b"["):
                if not batches:
                    continue
                batch = batch_of(line) if column is None else batch_from_columns(line, column)
                if batch is None:
                    self.damaged = True
                    continue
                yield batch
                continue
            if not line.startswith(wanted):
                if not line.startswith(b'{"record":"'):
                    self.damaged = True
                continue
            record = record_of(line)
            if record is None:
                self.damaged = True
                continue
            yield record

    def _framed_lines(self) -> Iterator[tuple[bytes, bytes | None]]:
        """A compacted file's lines after its header, each with its packed batch's columns
        when it is one whose words the file stores in columns (its line is then without
        them: `batch_from_columns`). As `_lines` reads them: an unreadable frame, and a
        line longer than `LINE_LIMIT`, are passed over (`damaged`); a torn line ends."""
        assert isinstance(self._file, FramedFile)
        for frame in self._file.split_frames():
            if frame is None:
                self.damaged = True
                continue
            skeleton, columns = frame
            at = entry = 0
            while at < len(skeleton):
                end = skeleton.find(b"\n", at)
                if end < 0:
                    break  # a killed writer's torn line (an unfinished run compacted)
                length = end + 1 - at
                column = None
                if entry < len(columns) and columns[entry][0] <= end:
                    _, words, column = columns[entry]
                    entry += 1
                    length += words
                    if entry < len(columns) and columns[entry][0] <= end:
                        # Two batches' words in one line: no compaction writes that.
                        while entry < len(columns) and columns[entry][0] <= end:
                            entry += 1
                        length = LINE_LIMIT + 1
                if length > LINE_LIMIT:
                    self.damaged = True
                else:
                    yield skeleton[at : end + 1], column
                at = end + 1

    def event_stages(self, scope: int) -> tuple[tuple[str | None, int], ...]:
        """What the stage ids of one scope's event codes name (see `scan`): per id, the
        stage's name (None for id 0) and its pipeline's number (0 when not known, or
        when pipelines sharing the scope have a stage of that name each)."""
        names = self._names.get(scope)
        if names is None:
            return ()
        owners = self._stage_owners(scope)
        return tuple((name, owners.get(index, 0)) for index, name in enumerate(names.stages))

    def snapshots(self, start: float, stop: float, every: float = 0.0) -> list[Snapshot]:
        """The snapshots with start < at <= stop, oldest first, read through the seek
        index (no event is read): for trends over a stretch of the run.

        Args:
            every: Skip a group of snapshots less than this many seconds after the last
                one taken (a long stretch then costs as many reads as it has steps).
        """
        found: list[Snapshot] = []
        taken = float("-inf")
        for mark in self._marks:
            if mark.kind != "snapshot" or not start < mark.at <= stop:
                continue
            if mark.at - taken < every:
                continue
            taken = mark.at
            found.extend(record for record in self._group(mark) if start < record.at <= stop)
        return found

    def idle_since(self, at: float) -> float | None:
        """When every pipeline last stopped running, as of `at`: the time of the first of
        the latest snapshot groups up to `at` in which none runs (None: one runs at `at`,
        or there is no snapshot yet).

        Walks back one seek point at a time, reading only snapshot lines. The stretch
        found is remembered, so playing on through it costs one read a step, not a walk
        back to its start each time.
        """
        marks, times = self._snapshot_index()
        newest = bisect.bisect_right(times, at) - 1
        first: int | None = None
        members: set[int] | None = None
        for index in range(newest, -1, -1):
            known = self._idle_from.get(index)
            if known is not None:
                first = known
                break
            group = self._group(marks[index])
            if not group or any(snapshot.running for snapshot in group):
                break
            # A pipeline may start and end between two groups, never seen running: the
            # stretch ends where the set of pipelines changes, not at an older idle one.
            pipelines = {snapshot.pipeline for snapshot in group}
            if members is not None and pipelines != members:
                break
            members = pipelines
            first = index
        if first is None:
            return None
        self._idle_from[newest] = first
        started = [p.at for p in self._pipelines.values() if p.at <= at]
        return max(marks[first].at, max(started, default=marks[first].at))

    def _snapshot_index(self) -> tuple[list[_Mark], list[float]]:
        """The seek points of snapshot groups and their times (made once: a recording
        opened for reading does not grow)."""
        if self._snapshot_points is None:
            marks = [mark for mark in self._marks if mark.kind == "snapshot"]
            self._snapshot_points = (marks, [mark.at for mark in marks])
        return self._snapshot_points

    def _group(self, mark: _Mark) -> list[Snapshot]:
        """The group of snapshots (one per pipeline) written at a seek point."""
        group: list[Snapshot] = []
        seen: set[int] = set()
        for line in self._lines(mark.offset):
            if not line.startswith(b'{"record":"snapshot"'):
                break
            record = record_of(line)
            if not isinstance(record, Snapshot) or record.pipeline in seen:
                break  # the next group (written straight after this one), or damage
            seen.add(record.pipeline)
            group.append(record)
        return group

    def seek(self, at: float) -> SeekPoint:
        """The state at `at`: the nearest snapshot before it plus what followed.

        Failures come from each pipeline's latest failure checkpoint and the records
        after it, read raw (no event objects are built), so a seek costs about one
        second of the run's records.
        """
        snapshot_mark = self._mark_before(at, "snapshot")
        checkpoints: dict[int, _Mark] = {}
        for mark in self._marks:
            if mark.kind == "failures" and mark.at <= at:
                checkpoints[mark.pipeline] = mark
        offsets = [m.offset for m in (snapshot_mark, *checkpoints.values()) if m is not None]
        start = min(offsets) if offsets else self._data_start
        never = float("-inf")
        since = {n: mark.at for n, mark in checkpoints.items()}
        snapshots: dict[int, Snapshot] = {}
        failures: dict[int, dict[Any, ErrorRecord]] = {}
        errors: dict[int, ErrorRecord] = {}
        for line in self._lines(start):
            if line.startswith(OUTCOMES_PREFIX):
                continue
            if line.startswith(b"["):
                # Not the end even when this batch is past `at`: the same flush holds
                # other trackers' batches; a snapshot or checkpoint past it ends the read.
                batch = batch_of(line)
                if batch is None:
                    self.damaged = True
                else:
                    self._apply_failures(batch, at, since, errors, failures)
                continue
            record = record_of(line)
            if record is None:
                self.damaged = True
                continue
            record_at = getattr(record, "at", never)
            if record_at > at:
                if isinstance(record, Snapshot | FailureCheckpoint):
                    break
                continue
            if isinstance(record, Snapshot):
                snapshots[record.pipeline] = record
            elif isinstance(record, FailureCheckpoint):
                if since.get(record.pipeline) == record.at:
                    failures[record.pipeline] = {_key(e.item): e for e in record.failures}
            elif isinstance(record, ErrorRecord):
                errors[record.number] = record
        return SeekPoint(
            at=at,
            snapshots=snapshots,
            failures={n: list(held.values()) for n, held in failures.items() if held},
        )

    def _apply_failures(
        self,
        batch: Batch,
        at: float,
        since: dict[int, float],
        errors: dict[int, ErrorRecord],
        failures: dict[int, dict[Any, ErrorRecord]],
    ) -> None:
        """Apply one batch's failures and retries (records up to `at`)."""
        owners = self._stage_owners(batch.scope)
        carried = batch.errors
        never = float("-inf")
        for index, (item, code, record_at) in enumerate(
            zip(batch.ids, batch.codes, batch.times, strict=True)
        ):
            if record_at > at:
                return
            kind = code & 0xF
            if kind not in _FAILURE_KINDS:
                continue
            pipeline = owners.get((code >> h.STAGE_SHIFT) & h.STAGE_MASK, 0)
            if record_at <= since.get(pipeline, never):
                continue
            held = failures.setdefault(pipeline, {})
            key = _key(item)
            if kind == h.FAILED:
                error = errors.get(carried.get(index, 0))
                if error is not None:
                    held.pop(key, None)
                    held[key] = error
            else:
                held.pop(key, None)  # queued or begun again: retried

    def _stage_owners(self, scope: int) -> dict[int, int]:
        """Stage id -> pipeline number for a scope's records (0 when ambiguous)."""
        names = self._names.get(scope)
        if names is None:
            return {}
        by_name: dict[str, int] = {}
        for number in names.pipelines:
            started = self._pipelines.get(number)
            for stage in started.stages if started is not None else ():
                by_name[stage.name] = 0 if stage.name in by_name else number
        return {
            stage_id: by_name.get(name, 0)
            for stage_id, name in enumerate(names.stages)
            if name is not None
        }

    def window(self, start: float, stop: float, newest: int) -> tuple[list[Record], int]:
        """Records with start < at <= stop, but of events only the `newest` (the rest
        counted, never built): what a replay shows for one step of time.

        Returns:
            The records in file order, and how many events were left out.
        """
        raw_events: list[tuple[int, Any]] = []
        others: list[tuple[int, Record]] = []
        position = 0
        dropped = 0
        for line in self._lines(self._offset_before(start)):
            if line.startswith(OUTCOMES_PREFIX):
                continue
            if line.startswith(b"["):
                batch = batch_of(line)
                if batch is None:
                    self.damaged = True
                    continue
                for raw_record in _raw_records(batch):
                    if start < raw_record[2] <= stop:
                        raw_events.append((position, (batch.scope, raw_record)))
                        position += 1
                if len(raw_events) > max(newest, 0):
                    # A record stands for up to three events: keep enough of them.
                    for _, (_, skipped) in raw_events[:-newest]:
                        dropped += _EVENTS_IN.get(skipped[1] & 0xF, 1)
                    raw_events = raw_events[-newest:] if newest > 0 else []
                continue
            decoded = record_of(line)
            if decoded is None:
                self.damaged = True
                continue
            record_at = getattr(decoded, "at", None)
            if record_at is None or isinstance(decoded, Names | FailureCheckpoint | Outcomes):
                continue
            if record_at > stop:
                if isinstance(decoded, Snapshot):
                    break
                continue
            if record_at > start:
                others.append((position, decoded))
                position += 1
        merged: list[tuple[int, Record]] = list(others)
        decoders = {scope: self._decoder(scope) for _, (scope, _) in raw_events}
        for at_position, (scope, raw_record) in raw_events:
            shown = self._events(decoders[scope], [raw_record])
            merged.extend((at_position, event) for event in shown)
        merged.sort(key=lambda pair: pair[0])
        kept = [record for _, record in merged]
        surplus = sum(isinstance(r, Event) for r in kept) - newest
        if surplus > 0:
            dropped += surplus
            trimmed = []
            for record in kept:
                if surplus and isinstance(record, Event):
                    surplus -= 1
                    continue
                trimmed.append(record)
            kept = trimmed
        return kept, dropped

    def newest_before(self, at: float, newest: int) -> tuple[list[Record], int]:
        """The records up to `at` from where its `newest` events begin, however long
        before `at` that is (a run that ended long before its file did): what a replay's
        log shows after a jump. As `window`, which reads them.
        """
        return self.window(self._events_start(at, newest), at, newest)

    def _events_start(self, at: float, newest: int) -> float:
        """A time after which `newest` event records lie up to `at`: walks back one seek
        point at a time, reading only event batches' times, and as far as
        `BACKFILL_BYTES` reach (-inf: from the file's start)."""
        marks, times = self._snapshot_index()
        after = bisect.bisect_right(times, at)
        stop = marks[after].offset if after < len(marks) else self._file_size()
        found = read = 0
        for mark in reversed(marks[:after]):
            found += self._events_between(mark.offset, stop, mark.at, at)
            read += stop - mark.offset
            if found >= newest or read >= BACKFILL_BYTES:
                return mark.at
            stop = mark.offset
        return float("-inf")

    def _events_between(self, begin: int, end: int, start: float, stop: float) -> int:
        """How many event records the lines in [begin, end) hold with start < at <= stop
        (damaged lines are passed over: `window` deals with them)."""
        found = 0
        lines = self._lines(begin)
        for line in lines:
            if lines.offset >= end:
                break
            batch = batch_of(line)
            if batch is not None:
                found += sum(1 for record_at in batch.times if start < record_at <= stop)
        return found

    def _file_size(self) -> int:
        return self._file.size

    def item(self, pipeline: int, item: ItemKey) -> ItemDetail:
        """One item's whole recorded story (a scan of the file, decoding only the lines
        that mention it)."""
        mentions = _mentions(item)
        events: list[Event] = []
        errors: dict[int, ErrorRecord] = {}
        usage: Usage | None = None
        key = _key(item)
        for line in self._lines(self._data_start):
            if not mentions(line) or line.startswith(OUTCOMES_PREFIX):
                continue
            if line.startswith(b"["):
                batch = batch_of(line)
                if batch is None:
                    self.damaged = True
                    continue
                events.extend(
                    event
                    for event in self._batch_events(batch)
                    if event.pipeline in (pipeline, 0) and _key(event.item) == key
                )
                continue
            record = record_of(line)
            if (
                isinstance(record, ErrorRecord)
                and record.pipeline in (pipeline, 0)
                and _key(record.item) == key
            ):
                errors[record.number] = record
            elif (
                isinstance(record, ItemUsage)
                and record.pipeline in (pipeline, 0)
                and _key(record.item) == key
            ):
                usage = record.usage  # the latest holds: each adds up all before it
        events = with_durations(events)
        last = next((e for e in reversed(events) if e.kind in _STATUS_KINDS), None)
        return ItemDetail(
            pipeline=pipeline,
            item=item,
            known=bool(events),
            status=None if last is None else last.kind,
            stage=None if last is None else last.stage,
            events=tuple(events),
            errors=tuple(errors.values()),
            retryable=False,
            usage=usage,
        )

    def outcomes(self) -> Iterator[Outcomes]:
        """The file's outcomes lines (results and durable stages' outputs, see
        `Outcomes`), in file order. Found by a search of the mapped file for their first
        bytes at a line's start, so no other line is read or copied (a run of a million
        items is a quarter of a gigabyte). A damaged line is passed over (`damaged`):
        its items count as not stored; a torn last line ends them."""
        size = self._file_size()
        if size <= self._data_start:
            return
        for line in self._outcome_lines(size):
            if line is None:
                self.damaged = True
                continue
            record = record_of(line)
            if not isinstance(record, Outcomes) or not _sound(record):
                self.damaged = True
                continue
            yield record

    def _outcome_lines(self, size: int) -> Iterator[bytes | None]:
        """Each whole outcomes line after the header (None for one longer than
        `LINE_LIMIT`); a torn last line is not given.

        A plain file is mapped and searched in place; a compacted one searches only the
        frames whose head says they hold an outcomes line, without rebuilding their event
        batches (reading a 1M-item run whole took 8 s)."""
        if isinstance(self._file, FramedFile):
            for line in self._file.outcome_lines():
                yield None if len(line) > LINE_LIMIT else line
            # A frame that did not decompress held outcomes: their items are not stored.
            self.damaged = self.damaged or self._file.damaged
            return
        assert isinstance(self._file, PlainFile)  # what open_bytes gives besides
        needle = b"\n" + OUTCOMES_PREFIX
        with mmap.mmap(self._file.fileno(), size, access=mmap.ACCESS_READ) as view:
            at = self._data_start - 1  # the header's newline
            while (found := view.find(needle, at)) >= 0:
                end = view.find(b"\n", found + 1)
                if end < 0:
                    return
                at = end
                yield None if end - found > LINE_LIMIT else view[found + 1 : end + 1]

    def close(self) -> None:
        self._file.close()

    def __enter__(self) -> Recording:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # ---------------------------------------------------------------- internals

    def _lines(self, offset: int) -> Lines:
        return Lines(self._file, offset, on_too_long=self._passed_over)

    def _passed_over(self) -> None:
        self.damaged = True

    def _mark_before(self, at: float, kind: str) -> _Mark | None:
        marks = [m for m in self._marks if m.kind == kind]
        position = bisect.bisect_right([m.at for m in marks], at)
        return marks[position - 1] if position else None

    def _offset_before(self, at: float) -> int:
        mark = self._mark_before(at, "snapshot")
        return mark.offset if mark is not None else self._data_start

    def _records_from(
        self, offset: int, start: float, stop: float, *, file_records: bool = False
    ) -> Iterator[Any]:
        for line in self._lines(offset):
            if line.startswith(OUTCOMES_PREFIX):
                continue
            if line.startswith(b"["):
                batch = batch_of(line)
                if batch is None:
                    self.damaged = True
                    continue
                for event in self._batch_events(batch):
                    if start < event.at <= stop:
                        yield event
                continue
            record = record_of(line)
            if record is None:
                self.damaged = True
                continue
            at = getattr(record, "at", None)
            if at is None:
                continue
            if at > stop:
                if isinstance(record, Snapshot | FailureCheckpoint):
                    return
                continue
            if at <= start:
                continue
            if isinstance(record, Names | FailureCheckpoint) and not file_records:
                continue
            yield record

    def _batch_events(self, batch: Batch) -> list[Event]:
        return self._events(self._decoder(batch.scope), _raw_records(batch))

    def _events(self, decoder: RawDecoder, raw: list[Any]) -> list[Event]:
        """The events of raw records; a record whose ids or codes name nothing (damage)
        is left out, the others kept."""
        try:
            return decoder.events(raw)
        except _UNDECODABLE:
            pass
        self.damaged = True
        kept: list[Event] = []
        for one in raw:
            try:
                kept.extend(decoder.events([one]))
            except _UNDECODABLE:
                continue
        return kept

    def _decoder(self, scope: int) -> RawDecoder:
        names = self._names.get(scope)
        if names is None:
            return RawDecoder(((None,), (None,), (None,)), lambda _: 0, lambda _: 0, _number)
        owners = self._stage_owners(scope)
        by_name = {names.stages[stage_id]: n for stage_id, n in owners.items()}
        return RawDecoder(
            (names.stages, names.workers, names.tasks),
            lambda stage_id: names.next_stage.get(stage_id, 0),
            lambda stage: by_name.get(stage, 0),
            _number,
        )


_UNDECODABLE: Final = (IndexError, KeyError, ValueError, TypeError)
"""What building events from a damaged batch's records raises (codes naming no stage,
worker, task or kind)."""
_EVENTS_IN: Final = {h.BEGIN_PER_TASK: 2, h.BEGIN_PER_STAGE: 2, h.FINISH: 2, h.FINISH_HANDOFF: 3}
"""Events a merged record stands for (others stand for one)."""
_FAILURE_KINDS: Final = frozenset({h.FAILED, h.QUEUED, h.BEGIN_PER_TASK, h.BEGIN_PER_STAGE})
"""Record kinds that change which items are failed."""
_STATUS_KINDS: Final = frozenset(
    {
        "queued",
        "in_progress",
        "completed",
        "failed",
        "retrying",
        "skipped",
        "unfinished",
        "done_earlier",
    }
)


def _in_order(marks: list[_Mark], first: int, end: int) -> bool:
    """Offsets rising inside [first, end), times never going back: as written."""
    offset, at = first - 1, float("-inf")
    for mark in marks:
        if not offset < mark.offset < end or mark.at < at:
            return False
        offset, at = mark.offset, mark.at
    return True


def _header(line: bytes, path: str) -> Header:
    try:
        raw = msgspec.json.decode(line)
    except (msgspec.DecodeError, RecursionError):
        raise RecordingError(
            f"{path} is not an antflow recording (its first line is not JSON)"
        ) from None
    if not isinstance(raw, dict) or raw.get("format") != FORMAT:
        raise RecordingError(
            f"{path} is not an antflow recording (no '{FORMAT}' header on its first line)"
        )
    version = raw.get("version")
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        shown = reprlib.repr(version)
        kind = "" if type(version) is int else f" (a {type(version).__name__})"
        raise RecordingError(
            f"{path} has a damaged header: its format version is {shown}{kind}, not a "
            f"format version (a whole number from 1 up); the file was damaged, or not "
            f"written by antflow"
        )
    if version > VERSION:
        raise RecordingError(
            f"{path} is a recording of format version {_shown(version)} (written by antflow "
            f"{_shown(raw.get('antflow', '?'))}); this antflow reads version {VERSION} and "
            f"older: upgrade antflow to replay it"
        )
    try:
        return msgspec.convert(raw, Header)
    except (msgspec.ValidationError, RecursionError) as error:
        raise RecordingError(f"{path} has a damaged header: {error}") from None


def _shown(value: Any) -> str:
    """A header's value in a message: short, whatever it is."""
    text = value if isinstance(value, str) else msgspec.json.encode(value).decode()
    return text if len(text) <= 40 else text[:39] + "…"


def _raw_records(batch: Batch) -> list[tuple[Any, int, float, None, int | None]]:
    """A batch's records as (item, code, time, duration, error number)."""
    errors = batch.errors
    return [
        (item, code, at, None, errors.get(index))
        for index, (item, code, at) in enumerate(
            zip(batch.ids, batch.codes, batch.times, strict=True)
        )
    ]


def _sound(line: Outcomes) -> bool:
    """Whether an outcomes line's columns agree, and its ids are hashable (a tuple id
    read back as an array of scalars)."""
    count = len(line.ids)
    if len(line.values) != count or not all(0 <= i < count for i in line.unstored):
        return False
    if list not in set(map(type, line.ids)):
        return True
    try:
        for item in line.ids:
            if type(item) is list:
                hash(tuple(item))
    except TypeError:
        return False
    return True


def _key(item: Any) -> Any:
    """A hashable key for an item as read back (arrays were tuples)."""
    return tuple(item) if isinstance(item, list) else item


def _number(number: Any, item: Any) -> Any:
    """In a recording, a record's error is already its number."""
    return number


def _mentions(item: ItemKey) -> Callable[[bytes], bool]:
    """A fast test of whether a line may mention `item`, before decoding it. A number
    must stand alone between separators (codes are far larger numbers, and times are
    base64); a repr key may have been written as an array, so it matches every line."""
    if isinstance(item, ReprKey):
        return lambda line: True
    in_packed = packed_mention(item)
    text = msgspec.json.encode(item)
    patterns = (
        (text,)
        if isinstance(item, str)
        else tuple(
            left + text + right for left in (b"[", b",", b":") for right in (b",", b"]", b"}")
        )
    )

    def mentions(line: bytes) -> bool:
        if line.startswith(b'["R"'):
            return in_packed(line)
        return any(pattern in line for pattern in patterns)

    return mentions
