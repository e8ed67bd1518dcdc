"""Feed the failed and unfinished items of an antflow-tui export back into a pipeline.

An export (``antflow-tui SCRIPT --export run.jsonl``) is JSON Lines: a header line, then
one object per item. A failed or unfinished item carries the stage it was in and the value
it entered that stage with; `feed_export` feeds each one back into that stage under its
own id, through the public `Pipeline.feed`, and nothing else. A line that cannot be fed
again (its value was written as a repr, not JSON; its stage is not in this pipeline) is
listed in the plan with the reason, never dropped silently::

    pipeline = build_pipeline()
    await pipeline.start()
    plan = await feed_export(pipeline, "run.jsonl")
    for line in plan.skipped:
        print(f"line {line.line}: {line.reason}")
    await pipeline.join()

The format is `antflow.export`'s (typed records, one writer; docs/export.md): a header,
then one item per line. ``value`` is what entered ``stage``; ``input`` is the item as it
was first fed; either is missing when it was not kept, and flagged ``*_is_repr`` when it
was written as a repr. An array id without ``id_is_tuple``, from an older export, is read
as a tuple too, since a list cannot be an id.

Every line is read as hostile: one that cannot be fed (not JSON, an id that cannot be an
id or repeats an earlier line's, a stage that is not a name, a status that is not a
string) is listed in `RefeedPlan.skipped` with the reason, and the rest is fed; nothing is
fed twice. Only a file that cannot be read, or whose first line is not an export header
of a version this module knows, raises (`ExportFileError`).
"""

from __future__ import annotations

import json
import reprlib
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from antflow.exceptions import FeedStoppedError, PipelineError
from antflow.export import DONE_STATUSES, EXPORT_VERSION, REFEED_STATUSES

if TYPE_CHECKING:
    from antflow.pipeline import Pipeline


ID_DEPTH: Final = 32
"""Deepest nesting of arrays in an id read back as a tuple; deeper ids are not fed."""

_REASON: Final = 300
"""Longest reason kept as it is; a longer one (a huge id in the pipeline's message) is cut."""

_shown = reprlib.Repr()
_shown.maxstring = _shown.maxother = 60
_shown.maxlevel = 3


class ExportFileError(ValueError):
    """The file is not an antflow-tui export that can be read; the message says why."""


@dataclass(frozen=True, slots=True)
class RefeedItem:
    """An item to feed again."""

    line: int
    """Its line in the export (1 is the header)."""
    item_id: Any
    stage: str | None
    """The stage to feed it into (None: the first)."""
    value: Any
    status: str
    """What the export said: ``failed``, ``unfinished`` or ``not_fed``."""
    restart: bool = False
    """Its value in its stage was not kept as JSON: it starts over from the first stage
    with its original input."""


@dataclass(frozen=True, slots=True)
class SkippedLine:
    """A line of the export that is not fed again, and why."""

    line: int
    item_id: Any
    """The item's id as the export wrote it (None when the line has none)."""
    status: str
    reason: str


@dataclass(frozen=True, slots=True)
class RefeedPlan:
    """What an export holds to feed again."""

    source: str
    """The export's path."""
    items: tuple[RefeedItem, ...]
    """Items to feed (after `feed_export`: those it fed)."""
    skipped: tuple[SkippedLine, ...]
    """Lines of items that are not fed again, with the reason."""
    done: int
    """Items the export lists as completed or skipped: nothing to do."""
    pipelines: tuple[str, ...] = ()
    """The pipeline names the export's lines carry, in order of appearance."""
    not_fed: tuple[RefeedItem, ...] = ()
    """After `feed_export`: items it did not get to feed because the pipeline was shut
    down first (the rest of the plan, in order)."""

    def counts(self) -> dict[str, int]:
        """Items to feed by the status the export gave them."""
        counts: dict[str, int] = {}
        for item in self.items:
            counts[item.status] = counts.get(item.status, 0) + 1
        return counts


def read_export(path: str | Path, *, pipeline: str | None = None) -> RefeedPlan:
    """Read an export and sort its items into those to feed again and those not.

    Args:
        path: The JSON Lines file antflow-tui wrote.
        pipeline: Only lines of this pipeline (as named in the export: ``pipeline``,
            ``pipeline-2``...); None takes every line.

    Raises:
        ExportFileError: the file cannot be read, is empty, or does not start with an
            antflow-tui export header of a version this module knows.
    """
    source = Path(path)
    try:
        text = source.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        reason = getattr(error, "strerror", None) or str(error)
        raise ExportFileError(f"cannot read {path}: {reason}") from None
    lines = text.splitlines()
    if not lines:
        raise ExportFileError(f"{path} is empty, not an antflow-tui export")
    _check_header(lines[0], path)
    items: list[RefeedItem] = []
    skipped: list[SkippedLine] = []
    done = 0
    pipelines: dict[str, None] = {}
    first_line: dict[Any, int] = {}
    for number, raw in enumerate(lines[1:], start=2):
        if not raw.strip():
            continue
        record = _parse(raw)
        if isinstance(record, str):
            # An export cut short (a full disk) keeps every line before the cut.
            skipped.append(SkippedLine(number, None, "?", record))
            continue
        if not isinstance(record, dict) or "status" not in record or "id" not in record:
            skipped.append(SkippedLine(number, None, "?", "not an item line (no id or status)"))
            continue
        name = record.get("pipeline", "")
        if not isinstance(name, str):
            skipped.append(
                SkippedLine(number, None, "?", f"its pipeline {_shown.repr(name)} is not a name")
            )
            continue
        pipelines.setdefault(name, None)
        if pipeline is not None and name != pipeline:
            continue
        status = record["status"]
        if not isinstance(status, str):
            skipped.append(
                SkippedLine(number, None, "?", f"its status {_shown.repr(status)} is not a word")
            )
            continue
        if status in DONE_STATUSES:
            done += 1
            continue
        planned = _plan_line(number, record, status)
        if isinstance(planned, RefeedItem):
            # Hashable by now (`_plan_line` checked): the key a pipeline would refuse twice.
            earlier = first_line.setdefault(planned.item_id, number)
            if earlier != number:
                planned = SkippedLine(
                    number,
                    planned.item_id,
                    status,
                    f"its id is line {earlier}'s too, and an id is fed once",
                )
        if isinstance(planned, SkippedLine):
            skipped.append(planned)
        else:
            items.append(planned)
    return RefeedPlan(str(path), tuple(items), tuple(skipped), done, tuple(pipelines))


def check_stages(plan: RefeedPlan, pipeline: Pipeline) -> RefeedPlan:
    """The plan with items whose stage `pipeline` does not have moved to `skipped`."""
    names = {stage.name for stage in pipeline.stages}
    keep: list[RefeedItem] = []
    skipped = list(plan.skipped)
    for item in plan.items:
        if item.stage is None or item.stage in names:
            keep.append(item)
        else:
            known = ", ".join(repr(name) for name in names)
            skipped.append(
                SkippedLine(
                    item.line,
                    item.item_id,
                    item.status,
                    f"stage {item.stage!r} is not in this pipeline (its stages: {known})",
                )
            )
    skipped.sort(key=lambda line: line.line)
    return replace(plan, items=tuple(keep), skipped=tuple(skipped))


async def feed_export(
    pipeline: Pipeline, source: str | Path | RefeedPlan, *, priority: int = 100
) -> RefeedPlan:
    """Feed the failed, unfinished and never-fed items of an export into `pipeline`, each
    into the stage it was in, under its own id (the pipeline must be started).

    Each item is fed on its own: one the pipeline refuses (its id is live there: in
    flight, or failed and retryable) is listed in `skipped` with the pipeline's reason,
    and the rest are still fed. A shutdown that meets the feeding ends it, as it ends
    `Pipeline.run`'s: what was left is in `not_fed`.

    Returns:
        The plan: `items` as fed, `skipped` with every line that was not and why,
        `not_fed` with what a shutdown left.

    Raises:
        ExportFileError: `source` is a path that cannot be read as an export.
        ValueError: `priority` is not an int.
    """
    if isinstance(priority, bool) or not isinstance(priority, int):
        raise ValueError(f"priority must be an int (lower runs first), got {priority!r}")
    plan = source if isinstance(source, RefeedPlan) else read_export(source)
    plan = check_stages(plan, pipeline)
    fed: list[RefeedItem] = []
    refused: list[SkippedLine] = []
    for position, item in enumerate(plan.items):
        try:
            await pipeline.feed(
                [{"id": item.item_id, "value": item.value}],
                target_stage=item.stage,
                priority=priority,
            )
        except FeedStoppedError:
            return _fed_plan(plan, fed, refused, plan.items[position:])
        except PipelineError as error:
            reason = str(error)
            if len(reason) > _REASON:
                reason = reason[: _REASON - 1] + "…"
            refused.append(SkippedLine(item.line, item.item_id, item.status, reason))
        else:
            fed.append(item)
    return _fed_plan(plan, fed, refused, ())


def _fed_plan(
    plan: RefeedPlan,
    fed: list[RefeedItem],
    refused: list[SkippedLine],
    left: tuple[RefeedItem, ...],
) -> RefeedPlan:
    skipped = sorted([*plan.skipped, *refused], key=lambda line: line.line)
    return replace(plan, items=tuple(fed), skipped=tuple(skipped), not_fed=left)


def _parse(raw: str) -> Any:
    """The line's JSON value, or (a str) why it is not JSON this module reads."""
    try:
        return json.loads(raw, parse_constant=_refuse_constant)
    except RecursionError:
        return "not JSON this reads (nested too deep)"
    except ValueError as error:
        return f"not JSON ({error})"


def _refuse_constant(name: str) -> Any:
    # NaN is not equal to itself: as an id it could be fed any number of times.
    raise ValueError(f"{name} is not JSON")


def _check_header(first: str, path: str | Path) -> None:
    header = _parse(first)
    if not isinstance(header, dict) or "antflow_export" not in header:
        raise ExportFileError(
            f"{path} is not an antflow-tui export: its first line is not the export header "
            '({"antflow_export": 1, ...}); write one with antflow-tui SCRIPT --export PATH'
        )
    version = header["antflow_export"]
    # `true` and `1.0` equal 1 in Python, and neither is a version antflow-tui writes.
    if type(version) is not int:
        raise ExportFileError(
            f"{path} is not an antflow-tui export: its header's antflow_export is "
            f"{_shown.repr(version)}, not a version number (antflow-tui writes "
            f'{{"antflow_export": {EXPORT_VERSION}, ...}}); write one with antflow-tui '
            f"SCRIPT --export PATH"
        )
    if version != EXPORT_VERSION:
        raise ExportFileError(
            f"{path} is an antflow-tui export of version {version}; this antflow reads "
            f"version {EXPORT_VERSION}" + (": upgrade antflow" if version > EXPORT_VERSION else "")
        )


def _plan_line(number: int, record: dict[str, Any], status: str) -> RefeedItem | SkippedLine:
    item_id = record["id"]
    if isinstance(item_id, list):
        item_id = _as_tuple(item_id, ID_DEPTH)
        if item_id is None:
            return SkippedLine(number, None, status, f"its id is nested more than {ID_DEPTH} deep")
    elif record.get("id_is_tuple") is True:
        return SkippedLine(
            number, item_id, status, "its id is flagged id_is_tuple but is not an array"
        )
    if status == "abandoned":
        return SkippedLine(
            number, item_id, status, "abandoned by the script (it stopped waiting for it)"
        )
    if status not in REFEED_STATUSES:
        return SkippedLine(number, item_id, status, f"status {status!r} is not fed again")
    if record.get("id_is_repr"):
        return SkippedLine(
            number,
            item_id,
            status,
            "its id was written as a repr (not JSON), so it cannot be fed again under the same id",
        )
    if isinstance(item_id, dict) or _unhashable(item_id):
        what = "an object" if isinstance(item_id, dict) else "an array holding an object"
        return SkippedLine(
            number,
            record["id"],
            status,
            f"its id is {what}, and an id must be a str, a number or a tuple",
        )
    stage = record.get("stage")
    if stage is not None and not isinstance(stage, str):
        return SkippedLine(
            number, item_id, status, f"its stage {_shown.repr(stage)} is not a stage name"
        )
    if "value" in record and not record.get("value_is_repr"):
        return RefeedItem(number, item_id, stage, record["value"], status)
    if "input" in record and not record.get("input_is_repr"):
        # The value it held in its stage is gone; its first input starts it over.
        return RefeedItem(number, item_id, None, _value_of(record["input"]), status, restart=True)
    why = "written as a repr (not JSON)" if record.get("value_is_repr") else "not kept"
    return SkippedLine(number, item_id, status, f"its value was {why}, so it cannot be fed again")


def _as_tuple(value: list[Any], depth: int) -> tuple[Any, ...] | None:
    """`value` with every array in it made a tuple (None past `depth` levels)."""
    if depth <= 0:
        return None
    items: list[Any] = []
    for part in value:
        if isinstance(part, list):
            part = _as_tuple(part, depth - 1)
            if part is None:
                return None
        items.append(part)
    return tuple(items)


def _unhashable(item_id: Any) -> bool:
    try:
        hash(item_id)
    except TypeError:
        return True
    return False


def _value_of(fed: Any) -> Any:
    """The value a fed item passes to the tasks (a dict with an "id" passes its "value")."""
    if isinstance(fed, dict) and "id" in fed:
        return fed.get("value", fed)
    return fed


__all__ = [
    "DONE_STATUSES",
    "EXPORT_VERSION",
    "REFEED_STATUSES",
    "ExportFileError",
    "RefeedItem",
    "RefeedPlan",
    "SkippedLine",
    "check_stages",
    "feed_export",
    "read_export",
]
