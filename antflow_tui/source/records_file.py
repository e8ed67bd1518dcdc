"""RecordsFile: a small recording read whole into memory, one record per line.

A stand-in with the reading API of `antflow.runstream.fileformat.Recording` (open,
pipelines, records, seek, item), for the replay until the engine's reader lands: each line
is one record of `antflow.runstream.records` as msgspec JSON, the header first. It holds
the whole file, so it suits test recordings, not a night's run.
"""

from __future__ import annotations

from collections import OrderedDict
from pathlib import Path
from typing import TYPE_CHECKING

import msgspec

from antflow.runstream.fileformat import RecordingError, SeekPoint
from antflow.runstream.records import (
    FORMAT,
    VERSION,
    End,
    ErrorRecord,
    Event,
    Header,
    ItemDetail,
    PipelineStarted,
    Record,
    Snapshot,
)

if TYPE_CHECKING:
    from collections.abc import Iterator

    from antflow.runstream.records import ItemKey

_decoder: msgspec.json.Decoder[Record] = msgspec.json.Decoder(Record)
_encoder = msgspec.json.Encoder()


def record_time(record: Record) -> float:
    """When a record happened (a header: when the run started)."""
    if isinstance(record, Header):
        return record.started_at
    return record.at


class RecordsFile:
    """A recording held in memory (see the module docstring)."""

    def __init__(self, header: Header, records: list[Record], *, complete: bool) -> None:
        self.header = header
        self._records = records
        self.complete = complete
        self.started_at = header.started_at
        self.ended_at = max((record_time(r) for r in records), default=header.started_at)

    @classmethod
    def open(cls, path: str | Path) -> RecordsFile:
        """Read a recording.

        Raises:
            RecordingError: not a recording, or one of a newer major version.
        """
        path = Path(path)
        try:
            lines = path.read_bytes().splitlines()
        except OSError as error:
            raise RecordingError(f"cannot read {path}: {error.strerror or error}") from None
        records: list[Record] = []
        torn = False
        for number, line in enumerate(lines):
            if not line.strip():
                continue
            try:
                if number == 0:
                    records.append(_header(line, path))
                else:
                    records.append(_decoder.decode(line))
            except msgspec.DecodeError:
                if number == 0:
                    raise RecordingError(f"{path} is not an antflow recording") from None
                # A killed run leaves its last line torn: what came before still reads.
                torn = number == len(lines) - 1
                if not torn:
                    raise RecordingError(f"{path}: line {number + 1} is not a record") from None
        if not records:
            raise RecordingError(f"{path} is empty, not an antflow recording")
        header, *rest = records
        assert isinstance(header, Header)
        complete = bool(rest) and isinstance(rest[-1], End) and not torn
        return cls(header, rest, complete=complete)

    def close(self) -> None:
        self._records = []

    def pipelines(self) -> list[PipelineStarted]:
        seen: dict[int, PipelineStarted] = {}
        for record in self._records:
            if isinstance(record, PipelineStarted):
                seen.setdefault(record.pipeline, record)
        return [seen[number] for number in sorted(seen)]

    def records(self, start: float, stop: float) -> Iterator[Record]:
        """Every record with start < time <= stop, in file order."""
        for record in self._records:
            when = record_time(record)
            if start < when <= stop:
                yield record

    def seek(self, at: float) -> SeekPoint:
        snapshots: dict[int, Snapshot] = {}
        failed: dict[int, OrderedDict[ItemKey, ErrorRecord]] = {}
        errors: dict[int, ErrorRecord] = {}
        for record in self._records:
            if record_time(record) > at:
                break
            if isinstance(record, Snapshot):
                snapshots[record.pipeline] = record
            elif isinstance(record, ErrorRecord):
                errors[record.number] = record
            elif isinstance(record, Event):
                book = failed.setdefault(record.pipeline, OrderedDict())
                if record.kind == "failed" and record.error in errors:
                    error = errors[record.error]
                    book[record.item] = msgspec.structs.replace(error, attempt=record.attempt)
                elif record.kind in ("queued", "in_progress"):
                    book.pop(record.item, None)
        return SeekPoint(
            at=at,
            snapshots=snapshots,
            failures={number: list(book.values()) for number, book in failed.items()},
        )

    def item(self, pipeline: int, item: ItemKey) -> ItemDetail:
        events = tuple(
            r
            for r in self._records
            if isinstance(r, Event) and r.pipeline == pipeline and r.item == item
        )
        errors = tuple(
            r
            for r in self._records
            if isinstance(r, ErrorRecord) and r.pipeline == pipeline and r.item == item
        )
        statuses = [e for e in events if e.task is None]
        last = statuses[-1] if statuses else None
        return ItemDetail(
            pipeline=pipeline,
            item=item,
            known=bool(events),
            status=None if last is None else last.kind,
            stage=None if last is None else last.stage,
            events=events,
            errors=errors,
        )


def _header(line: bytes, path: Path) -> Header:
    try:
        raw = msgspec.json.decode(line)
    except msgspec.DecodeError:
        raise RecordingError(f"{path} is not an antflow recording") from None
    if not isinstance(raw, dict) or raw.get("format") != FORMAT:
        raise RecordingError(f"{path} is not an antflow recording (no {FORMAT} header)")
    version = raw.get("version")
    if not isinstance(version, int) or version > VERSION:
        raise RecordingError(
            f"{path} is a recording of format version {version} (written by antflow "
            f"{raw.get('antflow', '?')}); this antflow reads version {VERSION} and older: "
            "replay it with a newer antflow-tui"
        )
    return _decoder.decode(line)  # type: ignore[return-value]


def write_records(path: Path, header: Header, records: list[Record]) -> None:
    """Write a recording this module reads (tests build theirs with it)."""
    with path.open("wb") as out:
        out.write(_encoder.encode(header) + b"\n")
        for record in records:
            out.write(_encoder.encode(record) + b"\n")
