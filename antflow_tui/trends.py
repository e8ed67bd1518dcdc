"""Trends: each stage's throughput and queue depth (and, with limits, its concurrency and
each rate limit's use) over the last minutes, from successive snapshots, in bounded
memory; the sparklines and the bottleneck hint drawn from them.

A `Series` keeps values in time buckets: one second each at first, and when the buckets
would outgrow `CAPACITY`, neighbours merge two by two (the period doubles) up to
`LONGEST_PERIOD`; past that the oldest fall off. So a short run fills its sparklines and a
long one shows its last `CAPACITY * LONGEST_PERIOD` seconds (four minutes), whatever its
length. Samples are placed by the snapshot's own time, so a replay played fast (a
snapshot every few seconds) or a live run (a snapshot every frame) fill the same buckets.

`RunHistory` is fed once per frame by `RunState` (O(stages) per snapshot, never per event).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

from antflow_tui.formatting import format_duration, format_rate
from antflow_tui.rates import RateMeter

if TYPE_CHECKING:
    from collections.abc import Iterable, Sequence

    from antflow.runstream.records import LimitRow, PipelineStarted, Snapshot

CAPACITY: Final = 60
"""Buckets a series keeps."""
FIRST_PERIOD: Final = 1.0
"""Seconds a bucket covers at first."""
LONGEST_PERIOD: Final = 4.0
"""Seconds a bucket covers at most: a series spans at most four minutes."""
BLOCKS: Final = " ▁▂▃▄▅▆▇█"
"""Sparkline cells, from nothing to the highest value shown."""
HISTORY_SECONDS: Final = CAPACITY * LONGEST_PERIOD
"""How far back a series can reach (a replay backfills this much after a jump)."""


class Series:
    """One quantity over time, in buckets of `period` seconds (see the module docstring).

    Args:
        summed: True for amounts that add up (items finished: a bucket holds how many
            finished in it; `values` are per second); False for a level (a queue's
            depth: a bucket holds its last value).
    """

    __slots__ = (
        "_first_period",
        "_last",
        "base",
        "capacity",
        "longest",
        "origin",
        "period",
        "summed",
        "values",
    )

    def __init__(
        self,
        *,
        summed: bool,
        capacity: int = CAPACITY,
        period: float = FIRST_PERIOD,
        longest: float = LONGEST_PERIOD,
    ) -> None:
        self.summed = summed
        self.capacity = capacity
        self.period = period
        self._first_period = period
        self.longest = longest
        self.origin: float | None = None
        """Time of the first sample: buckets are counted from it."""
        self.base = 0
        """Index of `values[0]`, in periods since `origin`."""
        self.values: list[float] = []
        self._last: tuple[float, float] | None = None

    def add(self, at: float, value: float) -> None:
        """A sample: the running total so far (summed) or the level now, at time `at`."""
        last = self._last
        if last is None or self.origin is None or at < last[0]:
            self._restart(at, value)
            return
        then, before = last
        if at == then:
            if not self.summed:
                self._last = (at, value)
                self.values[-1] = value
            return
        self._last = (at, value)
        end = self._reach(self._index(at))
        since = self._index(then)
        span = at - then
        if not self.summed:
            # A bucket holds the last level sampled in it; buckets a gap skipped, the
            # level at their end (on the line between the samples either side).
            for index in range(max(since + 1, self.base), end):
                bucket_end = self.origin + (index + 1) * self.period
                self.values[index - self.base] = before + (value - before) * (
                    (bucket_end - then) / span
                )
            self.values[end - self.base] = value
            return
        amount = max(value - before, 0.0)
        for index in range(max(since, self.base), end + 1):
            bucket_start = self.origin + index * self.period
            overlap = min(at, bucket_start + self.period) - max(then, bucket_start)
            if overlap > 0:
                self.values[index - self.base] += amount * overlap / span

    def _restart(self, at: float, value: float) -> None:
        self.origin = at
        self.base = 0
        self.period = self._first_period
        # A summed series counts from its first sample: nothing finished in it yet.
        self.values = [0.0 if self.summed else value]
        self._last = (at, value)

    def _index(self, at: float) -> int:
        assert self.origin is not None
        return int((at - self.origin) // self.period)

    def _reach(self, index: int) -> int:
        """Make room up to bucket `index` (merging, then dropping the oldest); returns the
        index again, in the period it ends up in."""
        while index - self.base >= self.capacity and self.period * 2 <= self.longest:
            self._merge()
            index //= 2
        overflow = index - self.base - self.capacity + 1
        if overflow > 0:
            if overflow >= len(self.values):
                self.values = []
                self.base = index - self.capacity + 1
            else:
                del self.values[:overflow]
                self.base += overflow
        fill = 0.0 if self.summed else (self.values[-1] if self.values else 0.0)
        while self.base + len(self.values) <= index:
            self.values.append(fill)
        return index

    def _merge(self) -> None:
        merged: list[float] = []
        base = self.base // 2
        for offset, value in enumerate(self.values):
            slot = (self.base + offset) // 2 - base
            if slot == len(merged):
                merged.append(value)
            elif self.summed:
                merged[slot] += value
            else:
                merged[slot] = value  # the later bucket's level is the pair's
        self.values = merged
        self.base = base
        self.period *= 2

    def samples(self) -> list[float]:
        """The buckets' values, oldest first: per second for a summed series (its newest
        bucket only once it is half covered), levels otherwise."""
        if not self.summed:
            return list(self.values)
        if self._last is None or self.origin is None or not self.values:
            return []
        rates = [value / self.period for value in self.values]
        newest_start = self.origin + (self.base + len(self.values) - 1) * self.period
        covered = self._last[0] - newest_start
        if covered < self.period / 2:
            rates.pop()
        elif covered < self.period:
            rates[-1] = self.values[-1] / covered
        return rates

    @property
    def span(self) -> float:
        """Seconds the samples cover."""
        return len(self.values) * self.period

    def level_ago(self, seconds: float) -> float | None:
        """A level series' value about `seconds` ago (None: it does not reach so far)."""
        if self.summed or self._last is None:
            return None
        back = math.ceil(seconds / self.period)
        if back >= len(self.values):
            return None
        return self.values[-1 - back]


class StageTrend:
    """One stage's throughput (items finished per second) and queue depth over time, and
    its concurrency once it has limits (issue 21)."""

    __slots__ = ("concurrency", "finished", "meter", "queue")

    def __init__(self) -> None:
        self.finished = Series(summed=True)
        self.queue = Series(summed=False)
        self.meter = RateMeter()
        """The smoothed rate the stage table shows."""
        self.concurrency: Series | None = None
        """Calls it lets run at once, from its first snapshot with limits on."""

    def add(self, at: float, finished: int, queued: int, concurrency: int | None = None) -> None:
        self.finished.add(at, finished)
        self.queue.add(at, queued)
        self.meter.update(finished, at)
        if concurrency is not None:
            if self.concurrency is None:
                self.concurrency = Series(summed=False)
            self.concurrency.add(at, concurrency)

    @property
    def rate(self) -> float | None:
        return self.meter.rate


class LimitTrend:
    """One RateLimit over time: tokens and calls used of it, and its 429s (levels, as the
    snapshots give them: each over the last minute or second)."""

    __slots__ = ("calls", "refused", "tokens")

    def __init__(self) -> None:
        self.tokens = Series(summed=False)
        """Tokens over the last minute."""
        self.calls = Series(summed=False)
        """Calls over the last second."""
        self.refused = Series(summed=False)
        """Rate-limit answers over the last minute."""

    def add(self, at: float, row: LimitRow) -> None:
        self.tokens.add(at, max(row.tokens_last_minute, 0))
        self.calls.add(at, max(row.calls_last_second, 0))
        self.refused.add(at, max(row.rate_limited_last_minute, 0))


class RunHistory:
    """Every stage's trend, by (pipeline number, stage name); fed with snapshots."""

    def __init__(self) -> None:
        self._trends: dict[tuple[int, str], StageTrend] = {}
        self._limits: dict[tuple[int, str], LimitTrend] = {}
        self._seen: dict[int, float] = {}

    def reset(self) -> None:
        """Forget everything (a replay jumped)."""
        self._trends.clear()
        self._limits.clear()
        self._seen.clear()

    def observe(self, started: PipelineStarted, snapshot: Snapshot) -> None:
        """Take in one snapshot of `started`'s pipeline (an older or repeated one is
        ignored)."""
        number = snapshot.pipeline
        if self._seen.get(number, -math.inf) >= snapshot.at:
            return
        self._seen[number] = snapshot.at
        for config, counts in zip(started.stages, snapshot.stages, strict=False):
            trend = self._trends.get((number, config.name))
            if trend is None:
                trend = self._trends[(number, config.name)] = StageTrend()
            finished = counts.done + counts.failed + counts.skipped
            limits = counts.limits
            concurrency = None if limits is None else limits.concurrency
            trend.add(snapshot.at, finished, counts.queued, concurrency)
        for row in snapshot.limits:
            # By pipeline too: a limit two pipelines share comes in each one's snapshots,
            # whose times need not follow each other.
            limit = self._limits.get((number, row.name))
            if limit is None:
                limit = self._limits[(number, row.name)] = LimitTrend()
            limit.add(snapshot.at, row)

    def trend(self, pipeline: int, stage: str) -> StageTrend | None:
        return self._trends.get((pipeline, stage))

    def limit(self, pipeline: int, name: str) -> LimitTrend | None:
        """A RateLimit's trend, as that pipeline's snapshots gave it."""
        return self._limits.get((pipeline, name))


# ---------------------------------------------------------------------- drawing


def sparkline(
    values: Sequence[float], width: int, *, top: float | None = None, peak: bool = False
) -> str:
    """`values` (oldest first) as `width` cells of Unicode blocks, newest on the right.

    More values than cells are spread evenly over every cell (each cell the mean of its
    share, or its highest with `peak`), so the line fills its width and does not jump as
    values come; fewer leave blanks on the left. Zero is a blank cell, any positive value
    at least the lowest block.

    Args:
        top: The value of a full block (default: the highest value shown).
    """
    if width <= 0:
        return ""
    if not values:
        return " " * width
    count = len(values)
    if count <= width:
        cells = [float(value) for value in values]
    else:
        cells = []
        for cell in range(width):
            share = values[cell * count // width : (cell + 1) * count // width]
            cells.append(max(share) if peak else sum(share) / len(share))
    highest = max(cells) if top is None else top
    drawn = []
    for value in cells:
        if value <= 0 or highest <= 0:
            drawn.append(BLOCKS[0])
        else:
            level = min(math.ceil(value / highest * (len(BLOCKS) - 1)), len(BLOCKS) - 1)
            drawn.append(BLOCKS[max(level, 1)])
    return " " * (width - len(drawn)) + "".join(drawn)


@dataclass(frozen=True, slots=True)
class QueueTrend:
    """How a queue has moved lately."""

    growth: float
    """Items per second it grew by (0 when full)."""
    seconds: float
    """For how long it has grown (or been full)."""
    full: bool = False
    """It has been at its capacity all that time."""


MIN_GROWTH: Final = 2.0
"""A queue must have grown by at least this many items..."""
MIN_GROWTH_SHARE: Final = 0.25
"""...and by this share of its depth now, to count as growing (not noise)."""


def queue_trend(levels: Sequence[float], period: float, capacity: int = 0) -> QueueTrend | None:
    """Whether a queue has been growing, or full, up to now, and for how long.

    Walks back from the newest level while the queue was lower (a dip of a tenth, or of
    one item, is noise); the growth is from the lowest level of that stretch.

    Args:
        levels: The queue's depth in buckets of `period` seconds, oldest first.
        capacity: The queue's capacity (0: unbounded).
    """
    if len(levels) < 2:
        return None
    newest = levels[-1]
    if capacity and newest >= capacity:
        start = len(levels) - 1
        while start > 0 and levels[start - 1] >= capacity:
            start -= 1
        seconds = (len(levels) - 1 - start) * period
        return QueueTrend(0.0, seconds, full=True) if seconds >= period else None
    start = len(levels) - 1
    while start > 0 and levels[start - 1] <= levels[start] + max(1.0, 0.1 * levels[start]):
        start -= 1
    stretch = levels[start:]
    lowest = min(range(len(stretch)), key=stretch.__getitem__) + start
    growth = newest - levels[lowest]
    seconds = (len(levels) - 1 - lowest) * period
    if seconds < 2 * period or growth < max(MIN_GROWTH, MIN_GROWTH_SHARE * newest):
        return None
    return QueueTrend(growth / seconds, seconds)


def trend_words(trend: QueueTrend, capacity: int = 0) -> str:
    """'queue growing 40/s for 2m00s', 'queue full (30) for 1m20s'."""
    if trend.full:
        return f"queue full ({capacity:,}) for {format_duration(trend.seconds)}"
    return f"queue growing {_per_second(trend.growth)} for {format_duration(trend.seconds)}"


def _per_second(rate: float) -> str:
    if rate >= 10:
        return f"{rate:,.0f}/s"
    return format_rate(rate)


def spark_span(series: Iterable[Series]) -> float:
    """The longest span among these series (for a label saying how far back they go)."""
    return max((one.span for one in series), default=0.0)
