"""Write a run as JSON Lines: a header with the run's counts, then one object per item.

The format is described (and read back) by `antflow.refeed`: failed and unfinished items
carry what feeding them again takes (the stage, the value that entered it, the item as it
was first fed) and why they failed. Values JSON cannot hold are written as their (short)
repr with a flag saying so, so an export never fails on a user's data; tuples are written
as lists.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from antflow.refeed import EXPORT_VERSION
from antflow_tui.safe_text import value_repr

if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator, Sequence
    from pathlib import Path

    from antflow.pending import PendingItem
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
    except (TypeError, ValueError, OverflowError, RecursionError):
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
    _put(record, "id", result.id)
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
    _put(record, "id", failure.item_id)
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
    _put(record, "id", item_id)
    if pending is not None:
        record["stage"] = pending.stage
        record["state"] = pending.state
        _put(record, "value", pending.value)
    _put_known(record, "input", fed)
    return _dump(record)


def not_fed_line(pipeline: str, item: NotFed) -> str:
    record: dict[str, Any] = {"pipeline": pipeline, "status": "not_fed"}
    _put(record, "id", item.item_id)
    if item.stage is not None:
        record["stage"] = item.stage
    _put(record, "value", item.value)
    _put(record, "input", item.fed)
    return _dump(record)


def pipeline_lines(
    attached: Any,
    name: str,
    *,
    in_flight_unfinished: bool = False,
) -> Iterator[str]:
    """Every line of one pipeline the app watched (an `EngineBridge` attachment).

    Args:
        in_flight_unfinished: The run ends without a shutdown (an emergency exit): what
            the pipeline still holds is written as unfinished.
    """
    pipeline = attached.pipeline
    for result in pipeline.results:
        yield completed_line(name, result)
    failed = set(pipeline.failed_item_ids())
    failures = [f for f in attached.tracker.get_failed_items() if f.item_id in failed]
    left = pipeline.get_unfinished_items()
    held: list[PendingItem] = []
    if in_flight_unfinished and pipeline.is_running:
        from antflow.pending import pending_items

        held = pending_items(pipeline)
    # One search of what was fed for every item that needs its input.
    wanted = [f.item_id for f in failures] + left + [p.item_id for p in held]
    fed = attached.inputs.inputs_of(wanted)

    def fed_as(item_id: Any) -> tuple[bool, Any]:
        try:
            return (True, fed[item_id]) if item_id in fed else (False, None)
        except TypeError:  # an unhashable id
            return False, None

    for failure in failures:
        try:
            value: tuple[bool, Any] = (True, pipeline.get_failed_input(failure.item_id)[1])
        except KeyError:
            value = (False, None)
        yield failed_line(name, failure, value=value, fed=fed_as(failure.item_id))
    abandoned = attached.abandoned(len(left))
    pending = attached.pending or {}
    for position, item_id in enumerate(left):
        status = "abandoned" if position < abandoned else "unfinished"
        yield left_line(name, status, item_id, pending=pending.get(item_id), fed=fed_as(item_id))
    for one in held:
        yield left_line(name, "unfinished", one.item_id, pending=one, fed=fed_as(one.item_id))


def write_export(path: Path, lines: Iterable[str]) -> int:
    """Write the lines to `path` (replacing it); returns how many items were written (the
    header is not counted)."""
    count = -1
    with path.open("w", encoding="utf-8") as out:
        for line in lines:
            out.write(line + "\n")
            count += 1
    return max(count, 0)


def export_run(
    path: Path,
    attached: Sequence[Any],
    counts: RunCounts,
    *,
    script: str,
    not_fed: Iterable[NotFed] = (),
    in_flight_unfinished: bool = False,
) -> int:
    """Export every pipeline the app watched (`EngineBridge.attached`) to `path`, and the
    items it knew of but never fed; returns how many item lines were written."""
    names = ["pipeline"] if len(attached) <= 1 else [one.name for one in attached]

    def lines() -> Iterator[str]:
        yield header_line(counts, script=script, pipelines=names)
        for one, name in zip(attached, names, strict=False):
            yield from pipeline_lines(one, name, in_flight_unfinished=in_flight_unfinished)
        for item in not_fed:
            yield not_fed_line(names[-1], item)

    return write_export(path, lines())
