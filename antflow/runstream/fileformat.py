"""Recordings: the run stream as a JSON Lines file, and reading one back with seeking.

The format (version 1; docs/recording.md has the full description):

- Every line is one JSON value; lines are appended whole and flushed at least every half
  second, so a killed run leaves a readable file whose torn last line is ignored.
- Line 1 is the `Header`. Most lines are records of `antflow.runstream.records`, as JSON
  objects tagged ``"record"`` (pipeline, error, snapshot, log, control, gap, end), plus two
  kinds that exist only in files: `Names` (a tracker's interned stage, worker and task
  names) and `FailureCheckpoint` (every item failed at that moment: a seek point).
- Events come in batches, one line per tracker per flush, as arrays:
  ``["E", scope, [[item, code, time, duration, error], ...]]`` where ``code`` packs the
  event kind and the stage, worker and task name ids of scope's `Names` (see
  `antflow._history`), and ``error`` is an `ErrorRecord.number`. One record may stand for
  several events (in_progress + task start; task complete + completed + queued next).
- The `End` record of a clean close holds totals and a seek index.

Reading never loads the whole file: `Recording` keeps an index of seek points (from the
end record, or from one scan when it is missing) and reads what a request needs.
"""

from __future__ import annotations

import bisect
import os
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

import msgspec

from antflow.runstream.convert import RawDecoder, with_durations
from antflow.runstream.records import (
    FORMAT,
    VERSION,
    End,
    ErrorRecord,
    Event,
    Header,
    ItemDetail,
    ItemKey,
    PipelineStarted,
    Record,
    ReprKey,
    Snapshot,
)

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

BATCH_TAG: Final = "E"


class Names(msgspec.Struct, frozen=True, tag="names", tag_field="record"):
    """One tracker's name tables (index 0 stands for none), re-written when they grow."""

    scope: int
    """Which tracker of the run: event batches of this scope use these names."""
    stages: tuple[str | None, ...]
    workers: tuple[str | None, ...]
    tasks: tuple[str | None, ...]
    next_stage: dict[int, int]
    """Stage id -> the id of the stage after it (for merged hand-off records)."""
    pipelines: tuple[int, ...]
    """The pipelines using this tracker."""


class FailureCheckpoint(msgspec.Struct, frozen=True, tag="failures", tag_field="record"):
    """Every item failed in a pipeline at `at` (tracebacks left out: see its error record)."""

    pipeline: int
    at: float
    failures: tuple[ErrorRecord, ...]


FileRecord = Record | Names | FailureCheckpoint
WireKey = int | float | str | bool | None | ReprKey | list[Any]
RawBatch = tuple[str, int, list[tuple[WireKey, int, float, float | None, int | None]]]

_decode_record = msgspec.json.Decoder(FileRecord).decode
_decode_batch = msgspec.json.Decoder(RawBatch).decode
_encode = msgspec.json.Encoder().encode


def encode_record(record: FileRecord) -> bytes:
    """One line for a typed record (with its newline)."""
    return _encode(record) + b"\n"


class RecordingError(Exception):
    """The file is not a recording this antflow can read; the message says why."""


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


class Recording:
    """A recording opened for reading. Use `Recording.open(path)`.

    Memory holds the header, the pipelines, the name tables and the seek index (a few
    numbers per second of run), never the events.
    """

    def __init__(self, path: str | Path, handle: Any) -> None:
        self.path = os.fspath(path)
        self._file = handle
        self.header: Header
        self.complete = False
        """False when the run did not close cleanly (no end record)."""
        self.torn = False
        """True when the last line was cut short (a killed run)."""
        self.end: End | None = None
        self.started_at = 0.0
        self.ended_at = 0.0
        """Time of the last record."""
        self._pipelines: dict[int, PipelineStarted] = {}
        self._names: dict[int, Names] = {}
        self._marks: list[_Mark] = []
        self._size = 0

    # ---------------------------------------------------------------- opening

    @classmethod
    def open(cls, path: str | Path) -> Recording:
        """Open and index a recording.

        Raises:
            RecordingError: not a recording (or not one yet: an empty or torn header), or
                one of a newer major version.
        """
        try:
            handle = open(path, "rb")  # noqa: SIM115 - kept open for reading on demand
        except OSError as error:
            raise RecordingError(f"cannot open {os.fspath(path)}: {error.strerror}") from None
        recording = cls(path, handle)
        try:
            recording._index()
        except BaseException:
            handle.close()
            raise
        return recording

    def _index(self) -> None:
        first = self._file.readline()
        if not first.endswith(b"\n"):
            raise RecordingError(f"{self.path} is empty or was cut short before its header")
        header = _header(first, self.path)
        self.header = header
        self.started_at = self.ended_at = header.started_at
        for started in getattr(header, "pipelines", ()):
            self._pipelines[started.pipeline] = started
        end = self._read_end()
        if end is not None:
            self.end = end
            self.complete = True
            self.ended_at = end.at
            self._marks = [_Mark(at, offset, "snapshot") for at, offset in end.index]
            # Pipelines, names and failure checkpoints are few: one scan of object lines.
        self._scan(full=end is None)

    def _scan(self, *, full: bool) -> None:
        """Read the lines that are not event batches: pipelines, names, seek points."""
        handle = self._file
        handle.seek(0)
        handle.readline()
        offset = handle.tell()
        marks: list[_Mark] = [] if full else [m for m in self._marks if m.kind == "snapshot"]
        in_group = False
        for line in handle:
            start = offset
            offset += len(line)
            if not line.endswith(b"\n"):
                self.torn = True
                break
            group_started = not in_group
            in_group = line.startswith(b'{"record":"snapshot"')
            if line.startswith(b"["):
                if full:
                    self.ended_at = max(self.ended_at, _batch_last_time(line))
                continue
            try:
                record = _decode_record(line)
            except msgspec.DecodeError:
                self.torn = True
                break
            if isinstance(record, PipelineStarted):
                self._pipelines[record.pipeline] = record
            elif isinstance(record, Names):
                self._names[record.scope] = record
            elif isinstance(record, FailureCheckpoint):
                marks.append(_Mark(record.at, start, "failures", record.pipeline))
            elif isinstance(record, Snapshot) and full and group_started:
                # A group of snapshots (one per pipeline) is one seek point.
                marks.append(_Mark(record.at, start, "snapshot"))
            at = getattr(record, "at", None)
            if full and at is not None:
                self.ended_at = max(self.ended_at, at)
        self._size = offset
        marks.sort(key=lambda mark: (mark.at, mark.offset))
        self._marks = marks

    def _read_end(self) -> End | None:
        """The end record, if the last line is one (read from the file's tail)."""
        handle = self._file
        handle.seek(0, os.SEEK_END)
        size = handle.tell()
        chunk = 1 << 16
        while True:
            start = max(size - chunk, 0)
            handle.seek(start)
            tail = handle.read(size - start)
            if not tail.endswith(b"\n"):
                return None
            cut = tail.rfind(b"\n", 0, len(tail) - 1)
            if cut >= 0 or start == 0:
                last = tail[cut + 1 :]
                break
            chunk *= 4
        if b'"record":"end"' not in last:
            return None
        try:
            record = _decode_record(last)
        except msgspec.DecodeError:
            return None
        return record if isinstance(record, End) else None

    # ---------------------------------------------------------------- reading

    def pipelines(self) -> list[PipelineStarted]:
        """Every pipeline of the run, in order."""
        return [self._pipelines[n] for n in sorted(self._pipelines)]

    def records(self, start: float = float("-inf"), stop: float = float("inf")) -> Iterator[Record]:
        """Every record with start < at <= stop, in file order (events decoded one by one
        from their batches; file-only kinds are left out)."""
        offset = self._offset_before(start)
        yield from self._records_from(offset, start, stop)

    def seek(self, at: float) -> SeekPoint:
        """The state at `at`: the nearest snapshot before it plus what followed."""
        snapshot_mark = self._mark_before(at, "snapshot")
        # Each pipeline's latest failure checkpoint; events after it update its failures.
        checkpoints: dict[int, _Mark] = {}
        for mark in self._marks:
            if mark.kind == "failures" and mark.at <= at:
                checkpoints[mark.pipeline] = mark
        offsets = [m.offset for m in (snapshot_mark, *checkpoints.values()) if m is not None]
        start = min(offsets) if offsets else self._first_offset()
        snapshots: dict[int, Snapshot] = {}
        failures: dict[int, dict[ItemKey | tuple[Any, ...], ErrorRecord]] = {}
        errors: dict[int, ErrorRecord] = {}
        never = float("-inf")
        for record in self._records_from(start, never, at, file_records=True):
            if isinstance(record, Snapshot):
                snapshots[record.pipeline] = record
            elif isinstance(record, FailureCheckpoint):
                checkpoint = checkpoints.get(record.pipeline)
                if checkpoint is not None and record.at == checkpoint.at:
                    failures[record.pipeline] = {_key(e.item): e for e in record.failures}
            elif isinstance(record, ErrorRecord):
                errors[record.number] = record
            elif isinstance(record, Event) and record.at > (
                checkpoints[record.pipeline].at if record.pipeline in checkpoints else never
            ):
                held = failures.setdefault(record.pipeline, {})
                key = _key(record.item)
                if record.kind == "failed":
                    error = errors.get(record.error or 0)
                    if error is not None:
                        held.pop(key, None)
                        held[key] = error
                elif record.kind in ("queued", "in_progress") and key in held:
                    del held[key]  # retried
        return SeekPoint(
            at=at,
            snapshots=snapshots,
            failures={n: list(held.values()) for n, held in failures.items() if held},
        )

    def item(self, pipeline: int, item: ItemKey) -> ItemDetail:
        """One item's whole recorded story (a scan of the file, decoding only the lines
        that mention it)."""
        needle = _needle(item)
        events: list[Event] = []
        errors: dict[int, ErrorRecord] = {}
        key = _key(item)
        handle = self._file
        handle.seek(self._first_offset())
        for line in handle:
            if not line.endswith(b"\n"):
                break
            if needle not in line:
                continue
            if line.startswith(b"["):
                events.extend(
                    event
                    for event in self._batch_events(line)
                    if event.pipeline in (pipeline, 0) and _key(event.item) == key
                )
                continue
            try:
                record = _decode_record(line)
            except msgspec.DecodeError:
                break
            if (
                isinstance(record, ErrorRecord)
                and record.pipeline in (pipeline, 0)
                and _key(record.item) == key
            ):
                errors[record.number] = record
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
        )

    def close(self) -> None:
        self._file.close()

    def __enter__(self) -> Recording:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # ---------------------------------------------------------------- internals

    def _first_offset(self) -> int:
        self._file.seek(0)
        return len(self._file.readline())

    def _mark_before(self, at: float, kind: str) -> _Mark | None:
        marks = [m for m in self._marks if m.kind == kind]
        position = bisect.bisect_right([m.at for m in marks], at)
        return marks[position - 1] if position else None

    def _offset_before(self, at: float) -> int:
        mark = self._mark_before(at, "snapshot")
        return mark.offset if mark is not None else self._first_offset()

    def _records_from(
        self, offset: int, start: float, stop: float, *, file_records: bool = False
    ) -> Iterator[Any]:
        handle = self._file
        handle.seek(offset)
        for line in handle:
            if not line.endswith(b"\n"):
                return
            if line.startswith(b"["):
                events = self._batch_events(line)
                if events and events[0].at > stop:
                    return
                for event in events:
                    if start < event.at <= stop:
                        yield event
                continue
            try:
                record = _decode_record(line)
            except msgspec.DecodeError:
                return
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

    def _batch_events(self, line: bytes) -> list[Event]:
        _, scope, raw = _decode_batch(line)
        names = self._names.get(scope)
        if names is None:
            return []
        owners: dict[str, int] = {}
        for number in names.pipelines:
            started = self._pipelines.get(number)
            for stage in started.stages if started is not None else ():
                owners[stage.name] = 0 if stage.name in owners else number
        decoder = RawDecoder(
            (names.stages, names.workers, names.tasks),
            lambda stage_id: names.next_stage.get(stage_id, 0),
            lambda stage: owners.get(stage or "", 0),
            lambda number: number,
        )
        return decoder.events(raw)  # type: ignore[arg-type]


_STATUS_KINDS: Final = frozenset(
    {"queued", "in_progress", "completed", "failed", "retrying", "skipped", "unfinished"}
)


def _header(line: bytes, path: str) -> Header:
    try:
        raw = msgspec.json.decode(line)
    except msgspec.DecodeError:
        raise RecordingError(
            f"{path} is not an antflow recording (its first line is not JSON)"
        ) from None
    if not isinstance(raw, dict) or raw.get("format") != FORMAT:
        raise RecordingError(
            f"{path} is not an antflow recording (no '{FORMAT}' header on its first line)"
        )
    version = raw.get("version")
    if not isinstance(version, int) or version > VERSION:
        raise RecordingError(
            f"{path} is a recording of format version {version} (written by antflow "
            f"{raw.get('antflow', '?')}); this antflow reads version {VERSION} and older: "
            f"upgrade antflow to replay it"
        )
    try:
        return msgspec.convert(raw, Header)
    except msgspec.ValidationError as error:
        raise RecordingError(f"{path} has a damaged header: {error}") from None


def _batch_last_time(line: bytes) -> float:
    try:
        _, _, raw = _decode_batch(line)
    except msgspec.DecodeError:
        return float("-inf")
    return raw[-1][2] if raw else float("-inf")


def _key(item: Any) -> Any:
    """A hashable key for an item as read back (arrays were tuples)."""
    return tuple(item) if isinstance(item, list) else item


def _needle(item: ItemKey) -> bytes:
    """Bytes every line mentioning `item` contains (a fast filter before decoding); a
    repr key may be written as an array, so it filters nothing."""
    if isinstance(item, ReprKey):
        return b""
    return msgspec.json.encode(item)
