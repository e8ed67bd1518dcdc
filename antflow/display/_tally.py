"""Progress numbers every display shows: done, total, rate and elapsed time."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from antflow.pipeline import Pipeline
    from antflow.types import DashboardSnapshot

Clock = Callable[[], float]
"""Returns seconds from a fixed point; only differences are used."""


@dataclass(frozen=True, slots=True)
class Tally:
    """Where a run stands, as one display frame shows it."""

    processed: int
    """Items that went through every stage."""
    failed: int
    """Items that failed for good."""
    in_flight: int
    """Items fed and not finished."""
    total: int | None
    """Items the run expects, or None when unknown (or zero)."""
    elapsed: float
    """Seconds since the run started."""
    rate: float | None
    """Items this run finished per second, or None before time has passed."""
    done_earlier: int = 0
    """Items a run this one resumes had completed (not run again, not in the rate)."""

    @property
    def done(self) -> int:
        """Items finished any way: processed, failed, or done earlier."""
        return self.processed + self.failed + self.done_earlier

    @property
    def fraction(self) -> float | None:
        """`done` out of `total`, capped at 1, or None when the total is unknown."""
        if not self.total:
            return None
        return min(self.done / self.total, 1.0)


def finished_before(pipeline: Pipeline | None) -> int:
    """Items `pipeline` had finished before this run (its counters span all its runs)."""
    get_stats = getattr(pipeline, "get_stats", None)
    if get_stats is None:
        return 0
    stats = get_stats()
    return int(stats.items_processed + stats.items_failed)


class Meter:
    """Turns snapshots into `Tally` values, timing the run with its own clock.

    The run starts at `start()` (from `on_start`), or at the first snapshot if no one called
    it. The first snapshot can come late: with tasks that never wait, a worker can finish
    every item before the dashboard's first update runs.

    Args:
        clock: Monotonic seconds; tests pass a fake one.
    """

    def __init__(self, clock: Clock = time.monotonic) -> None:
        self.clock = clock
        self._started: float | None = None
        self._done_before = 0
        self.last: Tally | None = None
        """The latest tally, or None before the first snapshot."""

    def start(self, done_before: int = 0) -> None:
        """Start timing a run; `done_before` items were finished by earlier runs."""
        self._started = self.clock()
        self._done_before = done_before
        self.last = None

    def read(self, snapshot: DashboardSnapshot, total_hint: int | None = None) -> Tally:
        """The tally for `snapshot`; `total_hint` stands in when the snapshot has no total."""
        if self._started is None:
            self._started = self.clock()
        stats = snapshot.pipeline_stats
        elapsed = max(self.clock() - self._started, 0.0)
        done = stats.items_processed + stats.items_failed - self._done_before
        total = snapshot.total_items if snapshot.total_items is not None else total_hint
        self.last = Tally(
            processed=stats.items_processed,
            failed=stats.items_failed,
            in_flight=stats.items_in_flight,
            total=total or None,
            elapsed=elapsed,
            rate=max(done, 0) / elapsed if elapsed > 0 else None,
            done_earlier=stats.items_done_earlier,
        )
        return self.last
