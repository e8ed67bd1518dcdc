"""InputStore: what was fed into a pipeline, kept for the items an export may need it for.

The engine keeps only the value an item holds in its current stage. So that an export
(and ``--retry-from``) can give each failed or unfinished item's original input, a run
stream made with ``inputs=True`` listens to `Probe.on_fed`, which hands it each item fed
with the id the engine gave it: no copy of the engine's id rule, so no way to disagree
with it.

It keeps the newest items, twice what the pipeline can hold in flight (an item fails, or
a stop catches it, long before that many are fed after it), and for good those that
failed or were left unfinished by the time they would be dropped.
"""

from __future__ import annotations

from itertools import islice
from typing import TYPE_CHECKING, Any, Final

if TYPE_CHECKING:
    from collections.abc import Iterable, Sequence

    from antflow.probe import Probe
    from antflow.stage import Stage

MIN_KEPT: Final = 10_000
"""Newest inputs kept at least, whatever the pipeline's capacity."""


class InputStore:
    """The inputs fed into one pipeline (see the module docstring).

    Args:
        probe: The pipeline's probe (which items failed or were left unfinished).
        stages: Its stages (their capacity and workers bound what is in flight).
    """

    def __init__(self, probe: Probe, stages: Sequence[Stage]) -> None:
        self._probe = probe
        capacity = sum(stage.capacity + stage.workers for stage in stages)
        self.keep = max(MIN_KEPT, 2 * capacity)
        """How many of the newest inputs are kept at least."""
        # Insertion ordered, oldest first; trimmed in batches (a plain dict costs a third
        # of an OrderedDict's move-and-pop per item, measured on no-op runs).
        self._recent: dict[Any, Any] = {}
        self._pinned: dict[Any, Any] = {}

    def add(self, item_id: Any, item: Any) -> None:
        """`Probe.on_fed`'s listener: `item` was fed under `item_id`."""
        recent = self._recent
        try:
            # Fed again under the same id (a resumed item): it is the newest now.
            recent.pop(item_id, None)
            recent[item_id] = item
        except TypeError:  # an unhashable id (the engine refuses it): never kept
            return
        if len(recent) > 2 * self.keep:
            self._trim()

    def input_of(self, item_id: Any) -> tuple[bool, Any]:
        """(True, the item as it was fed), or (False, None) when it is not kept."""
        found = self.inputs_of([item_id])
        try:
            return (True, found[item_id]) if item_id in found else (False, None)
        except TypeError:  # an unhashable id is never kept
            return False, None

    def inputs_of(self, item_ids: Iterable[Any]) -> dict[Any, Any]:
        """The items as they were fed, by id, for those of `item_ids` that are kept."""
        found: dict[Any, Any] = {}
        for item_id in item_ids:
            try:
                if item_id in self._recent:
                    found[item_id] = self._recent[item_id]
                elif item_id in self._pinned:
                    found[item_id] = self._pinned[item_id]
            except TypeError:  # an unhashable id is never kept
                continue
        return found

    def _trim(self) -> None:
        """Keep the newest `keep` inputs, and those of failed or unfinished items."""
        recent = self._recent
        dropped = len(recent) - self.keep
        probe = self._probe
        held = {*probe.unfinished()}
        pinned = {
            item_id: item
            for item_id, item in self._pinned.items()
            if item_id in held or probe.is_failed(item_id)
        }
        pinned.update(
            (item_id, item)
            for item_id, item in islice(recent.items(), dropped)
            if item_id in held or probe.is_failed(item_id)
        )
        self._pinned = pinned
        self._recent = dict(islice(recent.items(), dropped, None))
