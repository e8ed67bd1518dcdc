"""LatencyTracker: a stage's task times as a bounded histogram, its maximum and its
slowest items, kept as items finish (completed, or failed: a timeout is the slowest kind
of item), for p50 / p95 / max without a list of durations.

Updated on the per-item path, so it is cheap: the worker calls `add` for items that may
be among the slowest (above `floor`) and for one in `SAMPLE_EVERY` of the stage's items
(counted in `seen`, whichever worker finished them). The stage's first `EVERY_ITEM_UNTIL`
items are all kept (the floor stays below any time until then), so a short run's
quantiles have samples too. Past those, a sampled item stands for `SAMPLE_EVERY` items in
the histogram and an item that only beat the floor counts for none there (it is in the
maximum and the slowest), so the quantiles follow the whole run, not its start. An
estimate of p50 and p95 needs samples, not every item.
Buckets are log-spaced, eight to a doubling: a quantile is within ~5 % of the truth.
"""

from __future__ import annotations

import heapq
import math
from typing import Any, Final

SLOWEST_KEPT: Final = 10
EVERY_ITEM_UNTIL: Final = 2_048
"""Items a stage keeps every time of before it samples."""
SAMPLE_EVERY: Final = 32
"""Past those, one item in this many is sampled (a power of two: the worker tests it
with a mask)."""
_PER_OCTAVE: Final = 8
_OFFSET: Final = 40
"""Octaves below one second the histogram covers (2**-40 s: far below a task)."""
_BUCKETS: Final = (_OFFSET + 24) * _PER_OCTAVE
"""Up to 2**24 s (half a year) above one second."""


class LatencyTracker:
    """Task times of one stage's finished items."""

    __slots__ = ("buckets", "count", "floor", "left", "maximum", "slowest", "threshold")

    def __init__(self) -> None:
        self.buckets = [0] * _BUCKETS
        self.count = 0
        self.maximum = 0.0
        self.slowest: list[tuple[float, int, Any]] = []
        """A min-heap of (seconds, order, item id) of the slowest items."""
        self.threshold = -1.0
        """Below this an item can be neither the maximum nor among the slowest."""
        self.floor = -1.0
        """Items slower than this are added whatever the sampling: below any time while
        every item is kept, then `threshold`."""
        self.left = SAMPLE_EVERY
        """Items the stage finishes until the next sampled one, counted down by the worker
        (the sampling takes one in `SAMPLE_EVERY` of the stage's, whichever worker). A
        count down stays among the small ints Python never allocates: counting up, the
        stage's count cost an int object per item."""

    def finished(self, seconds: float, item_id: Any, left: int) -> None:
        """An item the worker did not pass over: `left` is the count down after it (0:
        the sampled one), or it beat `floor`."""
        if left:
            self.left = left
            self.add(seconds, item_id, False)
        else:
            self.left = SAMPLE_EVERY
            self.add(seconds, item_id, True)

    def add(
        self, seconds: float, item_id: Any, sampled: bool = True, *, every: bool = False
    ) -> None:
        """Count one item's time (`sampled`: it was picked by the sampling, not only for
        beating `floor`; `every`: every such item is added, as failed ones are, so it
        stands for itself)."""
        count = self.count = self.count + 1
        if seconds > self.threshold:
            self._note_slow(seconds, item_id, count)
        if count >= EVERY_ITEM_UNTIL:
            self.floor = self.threshold
        if count <= EVERY_ITEM_UNTIL or every:
            weight = 1
        elif sampled:
            weight = SAMPLE_EVERY
        else:
            return
        if seconds <= 0.0:
            self.buckets[0] += weight
        else:
            mantissa, exponent = math.frexp(seconds)
            index = (exponent + _OFFSET) * _PER_OCTAVE + int((mantissa - 0.5) * 2 * _PER_OCTAVE)
            self.buckets[min(max(index, 0), _BUCKETS - 1)] += weight

    def _note_slow(self, seconds: float, item_id: Any, order: int) -> None:
        self.maximum = max(self.maximum, seconds)
        slowest = self.slowest
        if len(slowest) < SLOWEST_KEPT:
            heapq.heappush(slowest, (seconds, order, item_id))
        else:
            heapq.heapreplace(slowest, (seconds, order, item_id))
        if len(slowest) == SLOWEST_KEPT:
            self.threshold = slowest[0][0]

    def quantile(self, fraction: float) -> float | None:
        """The estimated time below which `fraction` of the items finished."""
        total = sum(self.buckets)
        if not total:
            return None
        wanted = fraction * total
        seen = 0
        for index, count in enumerate(self.buckets):
            seen += count
            if seen >= wanted and count:
                return min(_middle(index), self.maximum)
        return self.maximum

    def histogram(self) -> list[tuple[float, int]]:
        """(upper bound in seconds, estimated count) of each bucket that has items."""
        return [(_upper(i), c) for i, c in enumerate(self.buckets) if c]

    def slowest_items(self) -> list[tuple[Any, float]]:
        """(item id, seconds) of the slowest items, slowest first."""
        return [(item, seconds) for seconds, _, item in sorted(self.slowest, reverse=True)]


def _lower(index: int) -> float:
    octave, step = divmod(index, _PER_OCTAVE)
    return math.ldexp(0.5 + step / (2 * _PER_OCTAVE), octave - _OFFSET)


def _upper(index: int) -> float:
    return _lower(index + 1)


def _middle(index: int) -> float:
    return math.sqrt(_lower(index) * _upper(index))
