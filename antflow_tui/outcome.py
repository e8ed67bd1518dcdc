"""RunOutcome: how a run ended, for the summary printed after the app closes and the exit code."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from antflow_tui.formatting import format_count, format_duration, format_rate

if TYPE_CHECKING:
    from collections.abc import Iterable

    from antflow.types import PipelineStats

EXIT_OK = 0
EXIT_INCOMPLETE = 1
EXIT_SCRIPT_ERROR = 2


@dataclass(frozen=True, slots=True)
class RunOutcome:
    """Every item the script gave, accounted for."""

    items: int
    completed: int
    failed: int
    skipped: int
    unfinished: int
    """Fed but not finished, or never fed because the run stopped first."""
    elapsed: float
    crash: str | None = None
    """The script's own traceback, if its code raised."""
    app_error: str | None = None
    """What went wrong inside antflow-tui itself, if anything did."""

    @property
    def exit_code(self) -> int:
        if self.crash is not None:
            return EXIT_SCRIPT_ERROR
        if self.failed or self.unfinished or self.app_error is not None:
            return EXIT_INCOMPLETE
        return EXIT_OK

    def summary(self) -> str:
        """The plain summary printed to stdout after the app closes."""
        rate = (
            (self.completed + self.skipped + self.failed) / self.elapsed if self.elapsed else None
        )
        return (
            f"items {format_count(self.items)}  completed {format_count(self.completed)}  "
            f"failed {format_count(self.failed)}  skipped {format_count(self.skipped)}  "
            f"unfinished {format_count(self.unfinished)}  elapsed {format_duration(self.elapsed)}  "
            f"items/s {format_rate(rate).removesuffix('/s')}"
        )


def tally(
    stats: Iterable[PipelineStats], *, expected: int | None
) -> tuple[int, int, int, int, int]:
    """(items, completed, failed, skipped, unfinished) summed over the run's pipelines.

    Items a run expected but never fed (it stopped first) count as unfinished.
    """
    fed = completed = failed = skipped = unfinished = 0
    for one in stats:
        fed += one.items_fed
        skipped += one.items_skipped
        completed += one.items_processed - one.items_skipped
        failed += one.items_failed
        unfinished += one.items_unfinished + one.items_in_flight
    items = max(fed, expected or 0)
    unfinished += items - fed
    return items, completed, failed, skipped, unfinished


def run_outcome(
    stats: Iterable[PipelineStats],
    *,
    expected: int | None,
    elapsed: float,
    crash: str | None = None,
    app_error: str | None = None,
) -> RunOutcome:
    """The outcome of a run from its pipelines' final counts."""
    items, completed, failed, skipped, unfinished = tally(stats, expected=expected)
    return RunOutcome(
        items=items,
        completed=completed,
        failed=failed,
        skipped=skipped,
        unfinished=unfinished,
        elapsed=elapsed,
        crash=crash,
        app_error=app_error,
    )
