"""RunCounts: every item of a run in exactly one place.

The header, the quit dialog, the summary printed at exit and the export all read one
`RunCounts`, so they can never disagree about what "unfinished" or "not fed" means.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Iterable

    from antflow.runstream.records import Snapshot


@dataclass(frozen=True, slots=True)
class RunCounts:
    """Where every item of the run stands; each item is in exactly one count."""

    completed: int
    failed: int
    skipped: int
    in_flight: int
    """Fed, not finished yet (queued, running, waiting for a retry)."""
    unfinished: int
    """Fed, and not finished when the run was stopped (quit, ctrl+c, a signal)."""
    abandoned: int
    """Fed, and left by the script's own shutdown (it stopped waiting for them)."""
    not_fed: int
    """Known to the run but never fed: still to come while it runs, left over once it
    has been stopped."""
    total: int | None
    """Items the run expects in all, when known."""
    running: int = 0
    """Of `in_flight`, those a worker holds now (the rest wait in stages' queues)."""
    done_earlier: int = 0
    """Fed by the script, but completed by the run this one resumed: not run again
    (counted neither in `completed` nor in the rate)."""

    @property
    def items(self) -> int:
        """Every item the run knows of, each counted once."""
        return (
            self.completed
            + self.failed
            + self.skipped
            + self.in_flight
            + self.unfinished
            + self.abandoned
            + self.not_fed
            + self.done_earlier
        )

    @property
    def queued(self) -> int:
        """Of `in_flight`, those waiting in a stage's queue (for a worker, or to be tried
        again)."""
        return self.in_flight - self.running

    @property
    def done(self) -> int:
        """Items that reached an end state (completed, failed or skipped)."""
        return self.completed + self.failed + self.skipped

    @property
    def done_overall(self) -> int:
        """Items at an end state, those done earlier included: what the progress bar
        and the ETA count (the rate counts this run's own, `done`)."""
        return self.done + self.done_earlier

    @property
    def fraction(self) -> float | None:
        if not self.total:
            return None
        return min(self.done_overall / self.total, 1.0)


def run_counts(
    snapshots: Iterable[Snapshot],
    *,
    known_total: int | None,
    in_flight_unfinished: bool = False,
) -> RunCounts:
    """Sum the run's pipelines, from each one's latest snapshot.

    Args:
        snapshots: Every pipeline of the run.
        known_total: Items the run itself will feed (a script's `items` with a length);
            None lets the pipelines' own totals count, when every one knows its total.
        in_flight_unfinished: The run is over without its pipelines being shut down (an
            emergency exit): what is in flight counts as unfinished.
    """
    completed = failed = skipped = in_flight = running = unfinished = abandoned = fed = 0
    earlier = 0
    snapshots = list(snapshots)
    for snapshot in snapshots:
        fed += snapshot.fed
        earlier += snapshot.done_earlier
        skipped += snapshot.skipped
        completed += snapshot.processed - snapshot.skipped
        failed += snapshot.failed
        in_flight += snapshot.in_flight
        held = sum(stage.running for stage in snapshot.stages)
        running += min(held, snapshot.in_flight)
        left = min(snapshot.abandoned, snapshot.unfinished)
        abandoned += left
        unfinished += snapshot.unfinished - left
    if in_flight_unfinished:
        unfinished += in_flight
        in_flight = running = 0
    total = known_total
    # Issue 20: items done earlier are in a resumed run's total, never in `fed`.
    not_fed = max(total - fed - earlier, 0) if total is not None else 0
    totals = [snapshot.total_items for snapshot in snapshots]
    if total is None and totals and all(t is not None for t in totals):
        total = sum(t for t in totals if t is not None)
        for snapshot in snapshots:
            left = max((snapshot.total_items or 0) - snapshot.fed - snapshot.done_earlier, 0)
            if snapshot.running or snapshot.stopped:
                not_fed += left
            else:
                # The script stopped feeding it itself (it left stream() early).
                abandoned += left
    return RunCounts(
        completed=completed,
        failed=failed,
        skipped=skipped,
        in_flight=in_flight,
        unfinished=unfinished,
        abandoned=abandoned,
        not_fed=not_fed,
        total=total,
        running=running,
        done_earlier=earlier,
    )
