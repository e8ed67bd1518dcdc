"""The items a change broke, as an export `--retry-from` reads (``compare --write-failed``).

A comparison's newly failed items (failed in run B, not in run A) are written in the
export format (`antflow.export`: its typed records and its one writer), each with what
run B's recording holds of it: its id, the stage it failed in, its last error (type,
message, traceback, attempts), and a value when there is one to feed:

- a recording keeps no item values of its own, so an item can be fed again only from a
  **durable** stage's output (`Stage(durable=True)`, a kept run): the output of the
  latest durable stage before the one it failed in is the value entering the stage
  after that one, and the line says to feed it there;
- a run recorded with ``--record-values`` keeps the value that entered the failing
  stage as a repr only: written (``value_is_repr``) to be read, not fed;
- otherwise the line has no value.

The file is then read back with `antflow.refeed.read_export`, so the report says exactly
what `--retry-from` will feed and what it will list as not fed, with its reasons.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import msgspec

from antflow.export import (
    EXPORT_VERSION,
    ExportHeader,
    ExportItem,
    recorded_failed_item,
    write_export,
)
from antflow.refeed import SkippedLine, read_export
from antflow.runstream.itemcolumns import hashable_id
from antflow.runstream.records import ErrorRecord, ReprKey

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

    from antflow.runstream.compare import Comparison
    from antflow.runstream.fileformat import Recording
    from antflow.runstream.runsummary import RunSummary


@dataclass(frozen=True, slots=True)
class RetryFile:
    """What `write_newly_failed` wrote, as `--retry-from` will read it."""

    path: str
    written: int
    """Items written (every newly failed item)."""
    fed: int
    """Items `--retry-from` feeds again (a value from a durable stage)."""
    skipped: tuple[SkippedLine, ...]
    """Items it does not feed, each with its reason (as `--retry-from` lists them)."""
    pipelines: tuple[str, ...]
    """The pipeline names the lines carry (`--retry-from` feeds a file of one)."""


@dataclass(slots=True)
class _Wanted:
    pipeline: int
    item: Any
    stage: str
    number: int
    error: ErrorRecord | None = None
    feed_at: str | None = None
    value: Any = None


def write_newly_failed(path: str | Path, comparison: Comparison, b: Recording) -> RetryFile:
    """Write `comparison`'s newly failed items to `path` (replacing it), from run B's
    recording `b` (read again: errors with their tracebacks, durable outputs).

    Raises:
        OSError: the file cannot be written.
    """
    summary = comparison.b
    wanted = list(_newly_failed(comparison))
    by_number = {entry.number: entry for entry in wanted if entry.number}
    for record in b.scan(("error",)):
        if isinstance(record, ErrorRecord):
            entry = by_number.get(record.number)
            if entry is not None:
                entry.error = record
    _durable_values(b, summary, wanted)
    names = _pipeline_names(summary)
    lines: list[ExportHeader | ExportItem] = [
        ExportHeader(
            antflow_export=EXPORT_VERSION,
            script=summary.header.script or "",
            pipelines=tuple(sorted({names[entry.pipeline] for entry in wanted})),
            items=len(wanted),
            completed=0,
            failed=len(wanted),
            skipped=0,
            in_flight=0,
            unfinished=0,
            abandoned=0,
            not_fed=0,
        )
    ]
    lines.extend(_line(names[entry.pipeline], entry) for entry in wanted)
    written = write_export(path, lines)
    plan = read_export(path)
    return RetryFile(
        path=str(path),
        written=written,
        fed=len(plan.items),
        skipped=plan.skipped,
        pipelines=plan.pipelines,
    )


def _newly_failed(comparison: Comparison) -> Iterator[_Wanted]:
    summary = comparison.b
    keys: dict[int, Any] = {}
    for pipeline, _slot_a, slot_b in comparison.items.slots("newly_failed"):
        table = summary.items[pipeline]
        if pipeline not in keys:
            keys[pipeline] = table.key_list()
        yield _Wanted(
            pipeline=pipeline,
            item=keys[pipeline][slot_b],
            stage=summary.stage_names[table.stages[slot_b]],
            number=table.errors[slot_b],
        )


def _durable_values(b: Recording, summary: RunSummary, wanted: list[_Wanted]) -> None:
    """Give each item the output of the latest durable stage before its failing one,
    where run B stored it (and say to feed it into the stage after that one)."""
    sources: dict[tuple[int, str], dict[Any, _Wanted]] = {}
    for entry in wanted:
        started = summary.pipelines.get(entry.pipeline)
        names = [config.name for config in started.stages] if started is not None else []
        if entry.stage not in names:
            continue
        before = started.stages[: names.index(entry.stage)] if started is not None else ()
        durable = [index for index, config in enumerate(before) if config.durable]
        if not durable:
            continue
        source = names[durable[-1]]
        entry.feed_at = names[durable[-1] + 1]
        sources.setdefault((entry.pipeline, source), {})[hashable_id(entry.item)] = entry
    if not sources:
        return
    for line in b.outcomes():
        waiting = sources.get((line.pipeline, line.stage or ""))
        if not waiting:
            continue
        unstored = set(line.unstored)
        for index, item in enumerate(line.ids):
            found = waiting.get(hashable_id(item))
            if found is None or index in unstored:
                continue
            try:
                found.value = (msgspec.json.decode(line.values[index]),)
            except msgspec.DecodeError:
                continue


def _pipeline_names(summary: RunSummary) -> dict[int, str]:
    """As the app's exports name them: a pipeline's own name, else ``pipeline`` (one) or
    ``pipeline-N``."""
    numbers = sorted(set(summary.pipelines) | set(summary.items))
    alone = len(numbers) == 1
    names = {}
    for number in numbers:
        started = summary.pipelines.get(number)
        own = started.name if started is not None else ""
        names[number] = own or ("pipeline" if alone else f"pipeline-{number}")
    return names


def _line(pipeline: str, entry: _Wanted) -> ExportItem:
    if entry.error is not None:
        item = recorded_failed_item(pipeline, entry.error)
    else:
        repr_id = isinstance(entry.item, ReprKey)
        item = ExportItem(
            pipeline=pipeline,
            status="failed",
            id=entry.item.repr if repr_id else entry.item,
            id_is_repr=repr_id,
            stage=entry.stage,
        )
    if isinstance(entry.item, tuple) and not item.id_is_repr:
        item = msgspec.structs.replace(item, id=list(entry.item), id_is_tuple=True)
    if entry.feed_at is not None and isinstance(entry.value, tuple):
        # The durable output: JSON as stored, so --retry-from feeds it as it is.
        item = msgspec.structs.replace(
            item, stage=entry.feed_at, value=entry.value[0], value_is_repr=False
        )
    return item
