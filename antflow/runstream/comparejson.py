"""A comparison of two runs as JSON, for scripts and CI (``antflow-tui compare A B --json``).

One JSON object; keys always present and always in the order docs/runs/compare.md lists them,
so a script may read it by key and a diff of two outputs lines up. Quantities are
``{"a": ..., "b": ..., "change": b - a, "ratio": b / a}`` (null where not known).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Final

import msgspec

from antflow.runstream.itemdiff import CHANGE_KINDS

if TYPE_CHECKING:
    from antflow.runstream.compare import Change, Comparison
    from antflow.runstream.itemdiff import ItemChange, ItemEnd
    from antflow.runstream.runsummary import RunSummary

COMPARE_VERSION: Final = 1
"""`"antflow_compare"`: the version of this document's form."""


def comparison_document(comparison: Comparison, *, items: int | None = 100) -> dict[str, Any]:
    """The comparison as plain JSON values (see the module docstring).

    Args:
        items: Most items listed per category (None: all); the counts are always whole.
    """
    changes = comparison.items
    return {
        "antflow_compare": COMPARE_VERSION,
        "a": _run(comparison.a),
        "b": _run(comparison.b),
        "same_run": comparison.same_run,
        "notes": list(comparison.notes),
        "totals": {change.name: _change(change) for change in comparison.totals},
        "stages": [
            {
                "pipeline": stage.pipeline,
                "stage": stage.stage,
                "present": stage.present,
                "p50_seconds": _change(stage.p50),
                "p95_seconds": _change(stage.p95),
                "max_seconds": _change(stage.max),
                "throughput_per_second": _change(stage.throughput),
                "done": _change(stage.done),
                "failed": _change(stage.failed),
            }
            for stage in comparison.stages
        ],
        "errors": [
            {
                "type": group.type,
                "message": group.message,
                "a": group.a,
                "b": group.b,
                "change": group.change,
                "trend": group.trend,
                "example": group.example,
            }
            for group in comparison.errors
        ],
        "items": {
            "counts": dict(changes.counts),
            "limit": items,
            **{kind: [_item(row) for row in changes.rows(kind, items)] for kind in CHANGE_KINDS},
        },
        "made": [
            {
                "setting": difference.setting,
                "pipeline": difference.pipeline,
                "stage": difference.stage,
                "limit": difference.limit,
                "a": difference.a,
                "b": difference.b,
            }
            for difference in comparison.made
        ],
        "usage": {
            "stages": [
                {
                    "pipeline": stage.pipeline,
                    "stage": stage.stage,
                    "input_tokens": _change(stage.input_tokens),
                    "output_tokens": _change(stage.output_tokens),
                    "cost": _change(stage.cost),
                    "model": {"a": stage.model[0], "b": stage.model[1]},
                }
                for stage in comparison.usage
            ],
            "total": {change.name: _change(change) for change in comparison.usage_total},
        },
    }


def encode_comparison(comparison: Comparison, *, items: int | None = 100) -> bytes:
    """`comparison_document` as JSON text (UTF-8), ending with a newline."""
    document = comparison_document(comparison, items=items)
    return msgspec.json.format(msgspec.json.encode(document), indent=2) + b"\n"


def _run(run: RunSummary) -> dict[str, Any]:
    return {
        "path": run.path,
        "run_id": run.run_id,
        "script": run.header.script,
        "script_sha256": run.script_sha256,
        "antflow": run.header.antflow,
        "started_at": run.header.started_at,
        "ended": None if run.end is None else run.end.reason,
        "complete": run.complete,
        "damaged": run.damaged,
    }


def _change(change: Change) -> dict[str, Any]:
    return {"a": change.a, "b": change.b, "change": change.change, "ratio": change.ratio}


def _end(end: ItemEnd) -> dict[str, Any]:
    return {
        "status": end.status,
        "stage": end.stage,
        "error": None if end.error is None else {"type": end.error[0], "message": end.error[1]},
        "seconds": end.seconds,
    }


def _item(row: ItemChange) -> dict[str, Any]:
    found: dict[str, Any] = {"pipeline": row.pipeline, "id": row.item, "a": _end(row.a)}
    found["b"] = _end(row.b)
    if row.kind == "still_failing":
        found["same_error"] = row.same_error
    if row.kind == "newly_slow":
        found["added_seconds"] = row.added_seconds
    return found
