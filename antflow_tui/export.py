"""Write a run as JSON Lines: a header with the run's counts, then one object per item.

Live runs write every item (`antflow_tui.live.export`); a replay writes what the recording
holds (`recorded_failed_line`). The format is described (and read back) by
`antflow.refeed`: failed and unfinished items carry what feeding them again takes (the
stage, the value that entered it, the item as it was first fed) and why they failed.
Values JSON cannot hold are written as their (short) repr with a flag saying so, so an
export never fails on a user's data; tuples are written as lists, and a tuple id is
flagged ``id_is_tuple`` so that it is read back as the same tuple.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from antflow.refeed import EXPORT_VERSION
from antflow.runstream.records import ReprKey
from antflow_tui.safe_text import value_repr

if TYPE_CHECKING:
    from collections.abc import Iterable, Sequence
    from pathlib import Path

    from antflow.pending import PendingItem
    from antflow.runstream.records import ErrorRecord
    from antflow.types import FailedItem, PipelineResult
    from antflow_tui.accounting import RunCounts


@dataclass(frozen=True, slots=True)
class NotFed:
    """An item the run knew of but never fed (it was stopped first)."""

    item_id: Any
    stage: str | None
    """Where it was to be fed (None: the first stage)."""
    value: Any
    """The value its tasks would have got."""
    fed: Any
    """The item as it would have been fed."""


def _tuples_as_lists(value: Any) -> Any:
    if isinstance(value, tuple | list):
        return [_tuples_as_lists(v) for v in value]
    if isinstance(value, dict):
        return {k: _tuples_as_lists(v) for k, v in value.items()}
    return value


def _as_json(value: Any) -> tuple[Any, bool]:
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
    return value_repr(value, long=True), True


def _put(record: dict[str, Any], key: str, value: Any) -> None:
    shown, is_repr = _as_json(value)
    record[key] = shown
    if is_repr:
        record[f"{key}_is_repr"] = True


def _put_id(record: dict[str, Any], item_id: Any) -> None:
    """The id; a tuple id as an array flagged ``id_is_tuple``, so that `--retry-from` feeds
    it under the same (tuple) id."""
    _put(record, "id", item_id)
    if isinstance(item_id, tuple) and "id_is_repr" not in record:
        record["id_is_tuple"] = True


def _put_known(record: dict[str, Any], key: str, known: tuple[bool, Any]) -> None:
    if known[0]:
        _put(record, key, known[1])


def _dump(record: dict[str, Any]) -> str:
    return json.dumps(record, ensure_ascii=False, allow_nan=False)


def error_type_name(failure: FailedItem) -> str:
    """The exception's class as a script names it: ``scrape.ParseError``, ``ValueError``."""
    error = failure.exception
    if error is None:
        return failure.error_type
    kind = type(error)
    module = kind.__module__
    return kind.__qualname__ if module == "builtins" else f"{module}.{kind.__qualname__}"


def header_line(counts: RunCounts, *, script: str, pipelines: Sequence[str]) -> str:
    """The first line: what the file is and the run's counts (the summary's numbers)."""
    return _dump(
        {
            "antflow_export": EXPORT_VERSION,
            "script": script,
            "pipelines": list(pipelines),
            "items": counts.items,
            "completed": counts.completed,
            "failed": counts.failed,
            "skipped": counts.skipped,
            "in_flight": counts.in_flight,
            "unfinished": counts.unfinished,
            "abandoned": counts.abandoned,
            "not_fed": counts.not_fed,
        }
    )


def completed_line(pipeline: str, result: PipelineResult) -> str:
    record: dict[str, Any] = {"pipeline": pipeline, "status": "completed"}
    _put_id(record, result.id)
    _put(record, "value", result.value)
    return _dump(record)


def failed_line(
    pipeline: str,
    failure: FailedItem,
    *,
    value: tuple[bool, Any] = (False, None),
    fed: tuple[bool, Any] = (False, None),
) -> str:
    """A failed item; `value` is what entered its stage and `fed` the item as fed, each
    as (known, value)."""
    record: dict[str, Any] = {"pipeline": pipeline, "status": "failed"}
    _put_id(record, failure.item_id)
    record["stage"] = failure.stage
    _put_known(record, "value", value)
    _put_known(record, "input", fed)
    record["error_type"] = error_type_name(failure)
    record["error"] = failure.error
    record["attempts"] = failure.attempts
    record["traceback"] = failure.traceback
    return _dump(record)


def left_line(
    pipeline: str,
    status: str,
    item_id: Any,
    *,
    pending: PendingItem | None = None,
    fed: tuple[bool, Any] = (False, None),
) -> str:
    """An item the run left: ``unfinished`` (stopped) or ``abandoned`` (by the script)."""
    record: dict[str, Any] = {"pipeline": pipeline, "status": status}
    _put_id(record, item_id)
    if pending is not None:
        record["stage"] = pending.stage
        record["state"] = pending.state
        _put(record, "value", pending.value)
    _put_known(record, "input", fed)
    return _dump(record)


def not_fed_line(pipeline: str, item: NotFed) -> str:
    record: dict[str, Any] = {"pipeline": pipeline, "status": "not_fed"}
    _put_id(record, item.item_id)
    if item.stage is not None:
        record["stage"] = item.stage
    _put(record, "value", item.value)
    _put(record, "input", item.fed)
    return _dump(record)


def write_export(path: Path, lines: Iterable[str]) -> int:
    """Write the lines to `path` (replacing it); returns how many items were written (the
    header is not counted)."""
    count = -1
    with path.open("w", encoding="utf-8") as out:
        for line in lines:
            out.write(line + "\n")
            count += 1
    return max(count, 0)


def recorded_failed_line(pipeline: str, failure: ErrorRecord) -> str:
    """A failed item from a recording: its error as recorded, and the value it held when
    the recording kept values (as a repr, flagged so `--retry-from` does not feed it)."""
    record: dict[str, Any] = {"pipeline": pipeline, "status": "failed"}
    if isinstance(failure.item, ReprKey):
        record["id"] = failure.item.repr
        record["id_is_repr"] = True
    else:
        record["id"] = failure.item
    record["stage"] = failure.stage
    if failure.value is not None:
        record["value"] = failure.value
        record["value_is_repr"] = True
    record["error_type"] = failure.type
    record["error"] = failure.message
    record["attempts"] = failure.attempt
    record["traceback"] = failure.traceback
    return _dump(record)
