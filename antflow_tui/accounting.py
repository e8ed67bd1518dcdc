"""RunCounts: every item of a run in exactly one place.

The header, the quit dialog, the summary printed at exit and the export all read one
`RunCounts`, so they can never disagree about what "unfinished" or "not fed" means.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Iterable

    from antflow.types import PipelineStats


@dataclass(frozen=True, slots=True)
class PipelineTally:
    """One pipeline's counts, and which of its unfinished items the script left."""

    stats: PipelineStats
    abandoned: int = 0
    """Of `stats.items_unfinished`, those a shutdown the script made itself left behind
    (breaking out of `stream()` early, calling `shutdown()`): not the app's doing."""
    total: int | None = None
    """Items this pipeline's run expects (`run()` and `stream()` know), if known."""
    running: bool = True
    """The pipeline is still running (what it has not been fed may still come)."""
    stopped_by_app: bool = False
    """The app stopped it (quit, ctrl+c, a signal): what it was not fed is not fed.
    Otherwise the script ended it early (left `stream()`): that is abandoned too."""


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
        )

    @property
    def done(self) -> int:
        """Items that reached an end state (completed, failed or skipped)."""
        return self.completed + self.failed + self.skipped

    @property
    def fraction(self) -> float | None:
        if not self.total:
            return None
        return min(self.done / self.total, 1.0)


def run_counts(
    tallies: Iterable[PipelineTally],
    *,
    known_total: int | None,
    in_flight_unfinished: bool = False,
) -> RunCounts:
    """Sum the run's pipelines.

    Args:
        tallies: Every pipeline of the run.
        known_total: Items the app itself will feed (a script's `items` with a length);
            None lets the pipelines' own totals count, when every one knows its total.
        in_flight_unfinished: The run is over without its pipelines being shut down (an
            emergency exit): what is in flight counts as unfinished.
    """
    completed = failed = skipped = in_flight = unfinished = abandoned = fed = 0
    tallies = list(tallies)
    totals: list[int | None] = []
    for tally in tallies:
        stats = tally.stats
        fed += stats.items_fed
        skipped += stats.items_skipped
        completed += stats.items_processed - stats.items_skipped
        failed += stats.items_failed
        in_flight += stats.items_in_flight
        left = min(tally.abandoned, stats.items_unfinished)
        abandoned += left
        unfinished += stats.items_unfinished - left
        totals.append(tally.total)
    if in_flight_unfinished:
        unfinished += in_flight
        in_flight = 0
    total = known_total
    not_fed = max(total - fed, 0) if total is not None else 0
    if total is None and totals and all(t is not None for t in totals):
        total = sum(t for t in totals if t is not None)
        for tally in tallies:
            left = max((tally.total or 0) - tally.stats.items_fed, 0)
            if tally.running or tally.stopped_by_app:
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
    )
