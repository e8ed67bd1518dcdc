"""The export format: a run's items as typed records, one JSON object per line.

An export (``antflow-tui SCRIPT --export run.jsonl``, or a replay's or a viewer's export)
is JSON Lines: an `ExportHeader`, then one `ExportItem` per item. `write_export` is the
one writer of the format; `antflow.refeed` reads it back (every line as hostile input);
docs/export.md describes it.

Values JSON cannot hold as they are (`export_value`) are written as their (short) repr
with a flag saying so, so an export never fails on a user's data; tuples are written as
lists, and a tuple id is flagged ``id_is_tuple`` so it is read back as the same tuple.
"""

from __future__ import annotations

import json
import reprlib
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, Literal

import msgspec

from antflow._safe import safe_repr
from antflow.runstream.jsonlines import encode_line
from antflow.runstream.records import ReprKey, Usage

if TYPE_CHECKING:
    from collections.abc import Iterable

    from antflow.probe import PendingItem
    from antflow.runstream.records import ErrorRecord
    from antflow.types import FailedItem, PipelineResult

EXPORT_VERSION: Final = 1
"""The version written (`ExportHeader.antflow_export`); `antflow.refeed` reads it."""

ItemStatus = Literal["completed", "skipped", "failed", "unfinished", "abandoned", "not_fed"]
REFEED_STATUSES: Final = ("failed", "unfinished", "not_fed")
"""Statuses whose items `antflow.refeed` feeds again."""
DONE_STATUSES: Final = ("completed", "skipped")
"""Statuses of items that need nothing more."""

UNSET: Final = msgspec.UNSET
"""A field that is not written (the line has no such key)."""

_values = reprlib.Repr()
_values.maxstring = 4000
_values.maxother = 4000
_values.maxlong = 400
_values.maxlist = _values.maxtuple = _values.maxset = 200
_values.maxdict = 100
_values.maxlevel = 6


class ExportHeader(msgspec.Struct, frozen=True):
    """The first line: what the file is, and the run's counts (the summary's numbers;
    every count written, 0 too). Absent fields (`UNSET`) are not written."""

    antflow_export: int
    """The format's version (`EXPORT_VERSION`)."""
    script: str
    pipelines: tuple[str, ...]
    """The pipeline names the item lines use, in order."""
    items: int
    """Every item the run knew of, each counted once (the sum of the counts below)."""
    completed: int
    failed: int
    skipped: int
    in_flight: int
    unfinished: int
    abandoned: int
    not_fed: int
    done_earlier: int = 0
    """Items a resumed run did not run again: the run it resumed completed them (issue 20)."""
    usage: Usage | msgspec.UnsetType = UNSET
    """What the run's tasks reported with `set_task_usage`, added up: tokens, and US
    dollars when they were priced (issue 22); not written when nothing was reported."""


class ExportItem(msgspec.Struct, frozen=True, omit_defaults=True):
    """One item. Absent fields (`UNSET`) and false flags are not written."""

    pipeline: str
    status: ItemStatus
    id: Any
    """The item's id (a tuple as an array, flagged `id_is_tuple`)."""
    id_is_repr: bool = False
    """`id` is the repr of an id JSON cannot hold: it cannot be fed again."""
    id_is_tuple: bool = False
    stage: str | msgspec.UnsetType = UNSET
    """The stage it failed or waited in (where feeding it again puts it)."""
    state: str | msgspec.UnsetType = UNSET
    """Where it was when the run stopped (``queued``, ``running``...), for unfinished items."""
    value: Any = UNSET
    """The value that entered `stage` (a completed item: its result)."""
    value_is_repr: bool = False
    input: Any = UNSET
    """The item as it was first fed."""
    input_is_repr: bool = False
    error_type: str | msgspec.UnsetType = UNSET
    """The exception's class as the script names it (``scrape.ParseError``)."""
    error: str | msgspec.UnsetType = UNSET
    attempts: int | msgspec.UnsetType = UNSET
    traceback: str | msgspec.UnsetType = UNSET
    usage: Usage | msgspec.UnsetType = UNSET
    """What its tasks reported with `set_task_usage`, added up: tokens, and US dollars
    when priced (issue 22). Written for items that reported usage and whose history the
    tracker still holds (failed and unfinished items always)."""


ExportRecord = ExportHeader | ExportItem


def write_export(path: str | Path, records: Iterable[ExportRecord]) -> int:
    """Write the records to `path` (replacing it), one line each; returns how many items
    were written (the header is not counted)."""
    items = 0
    with Path(path).open("wb") as out:
        for record in records:
            out.write(encode_line(record))
            items += isinstance(record, ExportItem)
    return items


# ---------------------------------------------------------------------- values


def export_value(value: Any) -> tuple[Any, bool]:
    """(value, False) when JSON holds it as it is (tuples as lists), else (repr, True)."""
    try:
        text = json.dumps(value, allow_nan=False, ensure_ascii=False)
        # Non-string dict keys would come back as strings: not the same value.
        same = json.loads(text) == _tuples_as_lists(value)
    except Exception:  # not JSON, or a user type's own methods raising while we compare
        same = False
    if same:
        return value, False
    # NaN and infinities included: bare NaN is not JSON.
    return value_repr(value), True


def value_repr(value: Any) -> str:
    """A repr of a user value an export keeps (bounded, never raising)."""
    try:
        return _values.repr(value)
    except Exception:  # a user's __repr__ may raise; say so instead
        return safe_repr(value)


def _tuples_as_lists(value: Any) -> Any:
    if isinstance(value, tuple | list):
        return [_tuples_as_lists(v) for v in value]
    if isinstance(value, dict):
        return {k: _tuples_as_lists(v) for k, v in value.items()}
    return value


def _id_fields(item_id: Any) -> dict[str, Any]:
    shown, is_repr = export_value(item_id)
    tuple_id = isinstance(item_id, tuple) and not is_repr
    return {"id": shown, "id_is_repr": is_repr, "id_is_tuple": tuple_id}


def _value_fields(key: str, known: tuple[bool, Any]) -> dict[str, Any]:
    if not known[0]:
        return {}
    shown, is_repr = export_value(known[1])
    return {key: shown, f"{key}_is_repr": is_repr}


# ---------------------------------------------------------------------- items


def error_type_name(failure: FailedItem) -> str:
    """The exception's class as a script names it: ``scrape.ParseError``, ``ValueError``."""
    error = failure.exception
    if error is None:
        return failure.error_type
    kind = type(error)
    module = kind.__module__
    return kind.__qualname__ if module == "builtins" else f"{module}.{kind.__qualname__}"


def completed_item(pipeline: str, result: PipelineResult) -> ExportItem:
    """An item that went through every stage, with its result."""
    return ExportItem(
        pipeline=pipeline,
        status="completed",
        **_id_fields(result.id),
        **_value_fields("value", (True, result.value)),
    )


def failed_item(
    pipeline: str,
    failure: FailedItem,
    *,
    value: tuple[bool, Any] = (False, None),
    fed: tuple[bool, Any] = (False, None),
) -> ExportItem:
    """A failed item; `value` is what entered its stage and `fed` the item as fed, each
    as (known, value)."""
    return ExportItem(
        pipeline=pipeline,
        status="failed",
        **_id_fields(failure.item_id),
        stage=failure.stage,
        **_value_fields("value", value),
        **_value_fields("input", fed),
        error_type=error_type_name(failure),
        error=failure.error,
        attempts=failure.attempts,
        traceback=failure.traceback,
    )


def left_item(
    pipeline: str,
    status: Literal["unfinished", "abandoned"],
    item_id: Any,
    *,
    pending: PendingItem | None = None,
    fed: tuple[bool, Any] = (False, None),
) -> ExportItem:
    """An item the run left: ``unfinished`` (stopped) or ``abandoned`` (by the script);
    `pending` says where it was, when known."""
    where: dict[str, Any] = {}
    if pending is not None:
        where = {
            "stage": pending.stage,
            "state": pending.state,
            **_value_fields("value", (True, pending.value)),
        }
    return ExportItem(
        pipeline=pipeline,
        status=status,
        **_id_fields(item_id),
        **where,
        **_value_fields("input", fed),
    )


def not_fed_item(
    pipeline: str, item_id: Any, *, stage: str | None, value: Any, fed: Any
) -> ExportItem:
    """An item the run knew of but never fed (it was stopped first)."""
    return ExportItem(
        pipeline=pipeline,
        status="not_fed",
        **_id_fields(item_id),
        stage=UNSET if stage is None else stage,
        **_value_fields("value", (True, value)),
        **_value_fields("input", (True, fed)),
    )


def recorded_failed_item(pipeline: str, failure: ErrorRecord) -> ExportItem:
    """A failed item from a recording or a served run: its error as recorded, and the
    value it held when values were kept (as a repr, so `--retry-from` does not feed it)."""
    repr_id = isinstance(failure.item, ReprKey)
    return ExportItem(
        pipeline=pipeline,
        status="failed",
        id=failure.item.repr if isinstance(failure.item, ReprKey) else failure.item,
        id_is_repr=repr_id,
        stage=failure.stage,
        value=UNSET if failure.value is None else failure.value,
        value_is_repr=failure.value is not None,
        error_type=failure.type,
        error=failure.message,
        attempts=failure.attempt,
        traceback=failure.traceback,
    )
