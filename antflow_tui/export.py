"""The app's export: the header from the app's counts; the format and its one writer
are the engine's (`antflow.export`, docs/export.md).

Live runs write every item (`antflow_tui.live.export`); a replay or a viewer writes what
its records hold (`recorded_failed_line`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import msgspec

from antflow.export import (
    EXPORT_VERSION,
    ExportHeader,
    ExportItem,
    ExportRecord,
    recorded_failed_item,
    write_export,
)

if TYPE_CHECKING:
    from collections.abc import Sequence

    from antflow.runstream.records import ErrorRecord, Usage
    from antflow_tui.accounting import RunCounts

__all__ = [
    "ExportRecord",
    "NotFed",
    "header_line",
    "recorded_failed_line",
    "write_export",
]


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


def header_line(
    counts: RunCounts,
    *,
    script: str,
    pipelines: Sequence[str],
    usage: Usage | None = None,
) -> ExportHeader:
    """The first record: what the file is, the run's counts (the summary's numbers) and
    what its tasks reported they used (`usage`: tokens and cost, issue 22)."""
    return ExportHeader(
        antflow_export=EXPORT_VERSION,
        script=script,
        pipelines=tuple(pipelines),
        items=counts.items,
        completed=counts.completed,
        failed=counts.failed,
        skipped=counts.skipped,
        in_flight=counts.in_flight,
        unfinished=counts.unfinished,
        abandoned=counts.abandoned,
        not_fed=counts.not_fed,
        done_earlier=counts.done_earlier,
        usage=msgspec.UNSET if usage is None else usage,
    )


def recorded_failed_line(pipeline: str, failure: ErrorRecord) -> ExportItem:
    """A failed item from a recording or a served run (see
    `antflow.export.recorded_failed_item`)."""
    return recorded_failed_item(pipeline, failure)
