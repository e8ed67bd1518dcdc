"""Write a run's outcome as JSON Lines: one object per item, completed, failed or unfinished.

Values that JSON cannot hold are written as their (short) repr, so an export never fails
on a user's data.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from antflow_tui.safe_text import value_repr

if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator, Sequence
    from pathlib import Path

    from antflow.types import FailedItem, PipelineResult


def _jsonable(value: Any) -> Any:
    try:
        json.dumps(value, allow_nan=False)
    except (TypeError, ValueError, OverflowError):
        # NaN and infinities included: bare NaN is not JSON.
        return value_repr(value, long=True)
    return value


def export_lines(
    results: Iterable[PipelineResult],
    failures: Iterable[FailedItem],
    unfinished: Iterable[Any],
    *,
    pipeline: str = "",
) -> Iterator[str]:
    """The JSON lines for one pipeline's results, failures and unfinished items."""
    for result in results:
        yield json.dumps(
            {
                "pipeline": pipeline,
                "id": _jsonable(result.id),
                "status": "completed",
                "value": _jsonable(result.value),
            },
            ensure_ascii=False,
            allow_nan=False,
        )
    for failure in failures:
        yield json.dumps(
            {
                "pipeline": pipeline,
                "id": _jsonable(failure.item_id),
                "status": "failed",
                "stage": failure.stage,
                "error_type": failure.error_type,
                "error": failure.error,
                "attempts": failure.attempts,
                "traceback": failure.traceback,
            },
            ensure_ascii=False,
            allow_nan=False,
        )
    for item_id in unfinished:
        yield json.dumps(
            {"pipeline": pipeline, "id": _jsonable(item_id), "status": "unfinished"},
            ensure_ascii=False,
            allow_nan=False,
        )


def write_export(path: Path, lines: Iterable[str]) -> int:
    """Write the lines to `path` (replacing it); returns how many were written."""
    count = 0
    with path.open("w", encoding="utf-8") as out:
        for line in lines:
            out.write(line + "\n")
            count += 1
    return count


def export_run(attached: Sequence[Any], path: Path) -> int:
    """Export every pipeline the app watched (`EngineBridge.attached`) to `path`."""
    lines: list[str] = []
    for number, one in enumerate(attached, start=1):
        pipeline = one.pipeline
        name = f"pipeline-{number}" if len(attached) > 1 else "pipeline"
        lines.extend(
            export_lines(
                pipeline.results,
                one.tracker.get_failed_items(),
                pipeline.get_unfinished_items(),
                pipeline=name,
            )
        )
    return write_export(path, lines)
