"""Finding a live item id from its repr, for requests that name an item by a `ReprKey`.

An id that is not a JSON scalar (a tuple, an object) crosses the stream as its repr; a
viewer asking for that item's story names the repr, and the monitor must find the id
again. Scanning every failed item and every kept history per request costs the job's
event loop milliseconds each (20 ms with 100,000 failures): a viewer asking often would
stall the job. `ReprIndex` keeps each id's repr once made, scans again only when the
ids changed, and spends at most a small share of the loop's time on scans.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any, Final

from antflow._safe import safe_repr

if TYPE_CHECKING:
    from collections.abc import Callable, Hashable, Iterable

MISSING: Final[Any] = object()
"""What `ReprIndex.find` returns for a repr no live id has (or not yet found)."""
SCAN_SHARE: Final = 0.05
"""At most this share of the time goes to scans: after a scan that took d seconds, the
next waits 20 d (a run with a thousand failures rescans within a millisecond)."""


class ReprIndex:
    """Live ids by their repr.

    Args:
        clock: Monotonic seconds.
    """

    def __init__(self, clock: Callable[[], float] = time.perf_counter) -> None:
        self._clock = clock
        self._by_repr: dict[str, Any] = {}
        self._repr_of: dict[Any, str] = {}
        self._version: Hashable = MISSING
        self._next_scan = float("-inf")

    def find(
        self,
        text: str,
        ids: Callable[[], Iterable[Any]],
        *,
        version: Hashable,
        is_live: Callable[[Any], bool],
    ) -> Any:
        """The live id whose repr is `text`, or `MISSING`.

        Args:
            text: The repr asked for.
            ids: Every live id (only those that are not JSON scalars are indexed).
            version: Changes whenever the live ids may have changed.
            is_live: Whether an id found in the index is still live.
        """
        found = self._by_repr.get(text, MISSING)
        if found is not MISSING and is_live(found):
            return found
        now = self._clock()
        if version == self._version or now < self._next_scan:
            return MISSING
        self._scan(ids())
        self._version = version
        ended = self._clock()
        self._next_scan = ended + (ended - now) / SCAN_SHARE
        return self._by_repr.get(text, MISSING)

    def _scan(self, ids: Iterable[Any]) -> None:
        known = self._repr_of
        repr_of: dict[Any, str] = {}
        for item_id in ids:
            if item_id is None or isinstance(item_id, int | float | str):
                continue
            text = known.get(item_id)
            if text is None:
                # The text the stream's keys use, a placeholder for an id whose repr raises.
                text = safe_repr(item_id)
            repr_of[item_id] = text
        self._repr_of = repr_of
        self._by_repr = {text: item_id for item_id, text in repr_of.items()}
