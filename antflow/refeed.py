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

The export format (one JSON object per line):

- the header: ``{"antflow_export": 1, "items": ..., "completed": ..., "failed": ...,
  "unfinished": ..., "abandoned": ..., "not_fed": ...}``;
- ``{"status": "completed", "id": ..., "value": ...}`` (and ``"skipped"``);
- ``{"status": "failed", "id": ..., "stage": ..., "value": ..., "input": ...,
  "error_type": ..., "error": ..., "traceback": ..., "attempts": ...}``;
- ``{"status": "unfinished", "id": ..., "stage": ..., "value": ..., "input": ...}``;
- ``{"status": "abandoned", "id": ...}`` (the script stopped waiting for it; not fed
  again) and ``{"status": "not_fed", "id": ..., "value": ..., "input": ...}``.

``value`` is what entered ``stage``; ``input`` is the item as it was first fed. Either is
missing when it was not kept. A value JSON cannot hold is written as its repr, with
``"value_is_repr": true`` (``input_is_repr``, ``id_is_repr`` likewise).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

if TYPE_CHECKING:
    from antflow.pipeline import Pipeline

EXPORT_VERSION: Final = 1
"""The export format this module reads and antflow-tui writes."""
REFEED_STATUSES: Final = ("failed", "unfinished", "not_fed")
"""Statuses whose items are fed again."""
DONE_STATUSES: Final = ("completed", "skipped")


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
    for number, raw in enumerate(lines[1:], start=2):
        if not raw.strip():
            continue
        try:
            record = json.loads(raw)
        except ValueError as error:
            # An export cut short (a full disk) keeps every line before the cut.
            skipped.append(SkippedLine(number, None, "?", f"not JSON ({error})"))
            continue
        if not isinstance(record, dict) or "status" not in record or "id" not in record:
            skipped.append(SkippedLine(number, None, "?", "not an item line (no id or status)"))
            continue
        name = str(record.get("pipeline", ""))
        pipelines.setdefault(name, None)
        if pipeline is not None and name != pipeline:
            continue
        status = str(record["status"])
        if status in DONE_STATUSES:
            done += 1
            continue
        planned = _plan_line(number, record, status)
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

    Returns:
        The plan: `items` as fed, `skipped` with every line that was not, and why.

    Raises:
        ExportFileError: `source` is a path that cannot be read as an export.
    """
    plan = source if isinstance(source, RefeedPlan) else read_export(source)
    plan = check_stages(plan, pipeline)
    for item in plan.items:
        await pipeline.feed(
            [{"id": item.item_id, "value": item.value}],
            target_stage=item.stage,
            priority=priority,
        )
    return plan


def _check_header(first: str, path: str | Path) -> None:
    try:
        header = json.loads(first)
    except ValueError:
        header = None
    if not isinstance(header, dict) or "antflow_export" not in header:
        raise ExportFileError(
            f"{path} is not an antflow-tui export: its first line is not the export header "
            '({"antflow_export": 1, ...}); write one with antflow-tui SCRIPT --export PATH'
        )
    version = header["antflow_export"]
    if version != EXPORT_VERSION:
        raise ExportFileError(
            f"{path} is an antflow-tui export of version {version!r}; this antflow reads "
            f"version {EXPORT_VERSION}"
        )


def _plan_line(number: int, record: dict[str, Any], status: str) -> RefeedItem | SkippedLine:
    item_id = record["id"]
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
    stage = record.get("stage")
    if "value" in record and not record.get("value_is_repr"):
        return RefeedItem(number, item_id, stage, record["value"], status)
    if "input" in record and not record.get("input_is_repr"):
        # The value it held in its stage is gone; its first input starts it over.
        return RefeedItem(number, item_id, None, _value_of(record["input"]), status, restart=True)
    why = "written as a repr (not JSON)" if record.get("value_is_repr") else "not kept"
    return SkippedLine(number, item_id, status, f"its value was {why}, so it cannot be fed again")


def _value_of(fed: Any) -> Any:
    """The value a fed item passes to the tasks (a dict with an "id" passes its "value")."""
    if isinstance(fed, dict) and "id" in fed:
        return fed.get("value", fed)
    return fed


__all__ = [
    "EXPORT_VERSION",
    "ExportFileError",
    "RefeedItem",
    "RefeedPlan",
    "SkippedLine",
    "check_stages",
    "feed_export",
    "read_export",
]
