"""A `RunSummary` as bytes and back: how a child process that read one run of a
comparison hands it over (`antflow.runstream.summarychild`).

The item columns travel as their arrays' raw bytes and everything else as the records
the recording held, in MessagePack: nothing is pickled, and what the bytes decode to is
checked against these types (a child's output is no more trusted than a file).
"""

from __future__ import annotations

import sys
from array import array
from typing import TYPE_CHECKING, Any

import msgspec

# msgspec reads the structs' annotations at run time: these are needed then.
from antflow.runstream.filelines import WireKey  # noqa: TC001
from antflow.runstream.itemcolumns import ItemColumns, hashable_id
from antflow.runstream.records import End, Header, PipelineStarted, Snapshot  # noqa: TC001
from antflow.runstream.runsummary import ErrorGroups, RunSummary

if TYPE_CHECKING:
    from antflow.runstream.grouping import GroupKey


class _Columns(msgspec.Struct, array_like=True):
    pipeline: int
    size: int
    ids: list[WireKey] | None
    """Item ids (None: ids are their own slots)."""
    slots: bytes
    """Each id's slot (int64s)."""
    status: bytes
    seconds: bytes
    errors: bytes
    stages: bytes


class _Errors(msgspec.Struct, array_like=True):
    keys: list[tuple[str, str]]
    examples: list[str]
    by_number: bytes
    far: dict[int, int]


class _Summary(msgspec.Struct, array_like=True):
    path: str
    header: Header
    pipelines: list[PipelineStarted]
    end: End | None
    snapshots: list[Snapshot]
    items: list[_Columns]
    stage_names: list[str]
    errors: _Errors
    first_event_at: float | None
    last_event_at: float | None
    complete: bool
    damaged: bool
    torn: bool


_encode = msgspec.msgpack.Encoder().encode
_decode = msgspec.msgpack.Decoder(_Summary).decode


class SummaryWireError(ValueError):
    """Bytes that are not a summary `encode_summary` wrote."""


def encode_summary(summary: RunSummary) -> bytes:
    """A summary as bytes (`decode_summary` reads them back).

    Raises:
        OverflowError: an id or a header field is an int MessagePack has no room for.
        TypeError: a value MessagePack cannot hold.
    """
    return _encode(
        _Summary(
            path=summary.path,
            header=summary.header,
            pipelines=list(summary.pipelines.values()),
            end=summary.end,
            snapshots=list(summary.snapshots.values()),
            items=[_columns(number, table) for number, table in summary.items.items()],
            stage_names=summary.stage_names,
            errors=_Errors(
                keys=summary.errors.keys,
                examples=summary.errors.examples,
                by_number=_raw(summary.errors.numbered[0]),
                far=summary.errors.numbered[1],
            ),
            first_event_at=summary.first_event_at,
            last_event_at=summary.last_event_at,
            complete=summary.complete,
            damaged=summary.damaged,
            torn=summary.torn,
        )
    )


def decode_summary(data: bytes) -> RunSummary:
    """The summary `encode_summary` gave these bytes for.

    Raises:
        SummaryWireError: they are not such bytes (cut short, of another shape).
    """
    try:
        wire = _decode(data)
        summary = RunSummary(
            path=wire.path,
            header=wire.header,
            pipelines={started.pipeline: started for started in wire.pipelines},
            end=wire.end,
            snapshots={snapshot.pipeline: snapshot for snapshot in wire.snapshots},
            items={columns.pipeline: _table(columns) for columns in wire.items},
            stage_names=wire.stage_names,
            errors=_error_groups(wire.errors),
            first_event_at=wire.first_event_at,
            last_event_at=wire.last_event_at,
            complete=wire.complete,
            damaged=wire.damaged,
            torn=wire.torn,
        )
    except (msgspec.DecodeError, ValueError, TypeError) as error:
        raise SummaryWireError(f"not a run summary: {error}") from None
    return summary


def _columns(pipeline: int, table: ItemColumns) -> _Columns:
    size = table.size
    keys = table.id_slots
    return _Columns(
        pipeline=pipeline,
        size=size,
        ids=None if keys is None else list(keys),
        slots=b"" if keys is None else _raw(array("q", keys.values())),
        status=_raw(table.status[:size]),
        seconds=_raw(table.seconds[:size]),
        errors=_raw(table.errors[:size]),
        stages=_raw(table.stages[:size]),
    )


def _table(wire: _Columns) -> ItemColumns:
    columns = (
        _filled("b", wire.status),
        _filled("d", wire.seconds),
        _filled("q", wire.errors),
        _filled("H", wire.stages),
    )
    keys = None
    if wire.ids is not None:
        keys = dict(zip(map(hashable_id, wire.ids), _filled("q", wire.slots), strict=True))
    return ItemColumns.restored(wire.size, columns, keys)


def _error_groups(wire: _Errors) -> ErrorGroups:
    keys: list[GroupKey] = list(wire.keys)
    return ErrorGroups.restored(keys, wire.examples, _filled("i", wire.by_number), wire.far)


def _raw(column: array[Any]) -> bytes:
    """An array's bytes, little-endian (as every reader of ours writes numbers)."""
    if sys.byteorder != "little":
        column = array(column.typecode, column)
        column.byteswap()
    return column.tobytes()


def _filled(typecode: str, data: bytes) -> array[Any]:
    column = array(typecode)
    if len(data) % column.itemsize:
        raise ValueError("a column cut short")
    column.frombytes(data)
    if sys.byteorder != "little":
        column.byteswap()
    return column
