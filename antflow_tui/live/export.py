"""A live run's export: every item of every pipeline the app watched, from the engine.

The line formats are `antflow_tui.export`'s; this is where they are filled from live
pipelines (results, failed items with the value that entered their stage and the input
as fed, what a stop left unfinished).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal

import msgspec

from antflow.export import completed_item, failed_item, left_item, not_fed_item, write_export
from antflow.pending import pending_items
from antflow.runstream.convert import usage_of as as_usage
from antflow_tui.cost import run_usage
from antflow_tui.export import header_line

if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator, Sequence
    from pathlib import Path

    from antflow.export import ExportItem, ExportRecord
    from antflow.pending import PendingItem
    from antflow.runstream.stream import RunStream
    from antflow_tui.accounting import RunCounts
    from antflow_tui.export import NotFed
    from antflow_tui.live.source import Attached


def pipeline_lines(
    stream: RunStream,
    attached: Attached,
    name: str,
    abandoned: int,
    *,
    in_flight_unfinished: bool = False,
) -> Iterator[ExportItem]:
    """Every item of one pipeline the app watched.

    Args:
        abandoned: Of its unfinished items (oldest first), how many the script's own
            shutdown left (see `Snapshot.abandoned`).
        in_flight_unfinished: The run ends without a shutdown (an emergency exit): what
            the pipeline still holds is written as unfinished.
    """
    pipeline = attached.pipeline
    usage_of = attached.tracker.get_usage

    def with_usage(item: ExportItem, item_id: Any) -> ExportItem:
        """The item with what its tasks reported they used, if they did."""
        try:
            used = usage_of(item_id)
        except TypeError:  # an unhashable id reported nothing
            return item
        return item if used is None else msgspec.structs.replace(item, usage=as_usage(used))

    for result in pipeline.results:
        yield with_usage(completed_item(name, result), result.id)
    failed = set(pipeline.failed_item_ids())
    failures = [f for f in attached.tracker.get_failed_items() if f.item_id in failed]
    left = pipeline.get_unfinished_items()
    held: list[PendingItem] = []
    if in_flight_unfinished and pipeline.is_running:
        held = pending_items(pipeline)
    # One search of what was fed for every item that needs its input.
    wanted = [f.item_id for f in failures] + left + [p.item_id for p in held]
    fed = stream.inputs_of(attached.number, wanted)

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
        yield with_usage(
            failed_item(name, failure, value=value, fed=fed_as(failure.item_id)), failure.item_id
        )
    pending = attached.pending or {}
    for position, item_id in enumerate(left):
        status: Literal["abandoned", "unfinished"] = (
            "abandoned" if position < abandoned else "unfinished"
        )
        yield with_usage(
            left_item(name, status, item_id, pending=pending.get(item_id), fed=fed_as(item_id)),
            item_id,
        )
    for one in held:
        yield with_usage(
            left_item(name, "unfinished", one.item_id, pending=one, fed=fed_as(one.item_id)),
            one.item_id,
        )


def export_run(
    path: Path,
    stream: RunStream,
    attached: Sequence[Attached],
    abandoned: Sequence[int],
    counts: RunCounts,
    *,
    script: str,
    not_fed: Iterable[NotFed] = (),
    in_flight_unfinished: bool = False,
) -> int:
    """Export every pipeline the app watched to `path`, and the items it knew of but never
    fed; returns how many item lines were written."""
    names = ["pipeline"] if len(attached) <= 1 else [one.name for one in attached]

    def lines() -> Iterator[ExportRecord]:
        usage = run_usage(stream.snapshots())
        yield header_line(counts, script=script, pipelines=names, usage=usage)
        for one, name, left in zip(attached, names, abandoned, strict=False):
            yield from pipeline_lines(
                stream, one, name, left, in_flight_unfinished=in_flight_unfinished
            )
        for item in not_fed:
            yield not_fed_item(
                names[-1], item.item_id, stage=item.stage, value=item.value, fed=item.fed
            )

    return write_export(path, lines())
