"""What a pipeline holds right now: every item in flight, where, and with what value.

`Pipeline.locate` finds one item; a monitor that must record everything still in flight
before a shutdown drops it (an export of unfinished items that can be fed again) needs
them all in one pass. Read-only, O(items in flight).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from antflow.probe import PendingItem

if TYPE_CHECKING:
    from antflow.pipeline import Pipeline


def pending_items(pipeline: Pipeline) -> list[PendingItem]:
    """Every item the pipeline holds in a queue or a worker right now, stage by stage."""
    return pipeline.probe.in_flight()


__all__ = ["PendingItem", "pending_items"]
