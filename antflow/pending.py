"""What a pipeline holds right now: every item in flight, where, and with what value.

`Pipeline.locate` finds one item; a monitor that must record everything still in flight
before a shutdown drops it (an export of unfinished items that can be fed again) needs
them all in one pass. Read-only, O(items in flight).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from antflow.pipeline import Pipeline


@dataclass(frozen=True, slots=True)
class PendingItem:
    """One item in flight."""

    item_id: Any
    """The item's id."""
    stage: str
    """The stage it is queued in or being run by."""
    value: Any
    """The value it entered that stage with (what feeding it again there takes)."""
    state: str
    """``queued``, ``waiting for a retry``, ``running`` or ``handing on``."""


def pending_items(pipeline: Pipeline) -> list[PendingItem]:
    """Every item the pipeline holds in a queue or a worker right now, stage by stage."""
    found: list[PendingItem] = []
    for runtime in pipeline._runtimes:
        for worker in runtime.workers:
            entry = worker.entry
            if entry is not None:
                state = "running" if worker.since is not None else "handing on"
                found.append(PendingItem(entry.item_id, runtime.name, entry.value, state))
        for entry in runtime.queue:
            state = "waiting for a retry" if entry.attempt > 1 else "queued"
            found.append(PendingItem(entry.item_id, runtime.name, entry.value, state))
    return found


__all__ = ["PendingItem", "pending_items"]
