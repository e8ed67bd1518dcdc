"""RunOutcome: how a run ended, for the summary printed after the app closes and the exit code.

Exit status (also in `antflow-tui --help` and docs/app/ending.md):

- 0: every item fed completed or was skipped, nothing was left unfinished or not fed, and
  the script ended normally (returned, or called ``sys.exit(0)``). Items the script
  abandoned itself (breaking out of ``stream()`` early) do not count against it.
- 1: an item failed, was left unfinished or was never fed; or the script called
  ``sys.exit()`` with another code; or the run was ended by a signal, by a second
  ctrl+c while the script blocked the event loop, or by a bug in antflow-tui.
- 2: the script could not be run, or raised an exception, or the run it was asked to
  resume cannot be (and usage errors).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from antflow_tui.formatting import format_count, format_duration, format_rate
from antflow_tui.safe_text import clean

if TYPE_CHECKING:
    from antflow_tui.accounting import RunCounts

EXIT_OK = 0
EXIT_INCOMPLETE = 1
EXIT_SCRIPT_ERROR = 2


@dataclass(frozen=True, slots=True)
class RunOutcome:
    """Every item the script gave, accounted for, and how the script itself ended."""

    counts: RunCounts
    elapsed: float
    crash: str | None = None
    """The script's own traceback, if its code raised."""
    app_error: str | None = None
    """What went wrong inside antflow-tui itself, if anything did."""
    script_exit: int | str | None = None
    """The code the script passed to ``sys.exit()``, if it called it."""
    stopped_by: str | None = None
    """What ended the run from outside, if anything did ('SIGTERM', 'SIGHUP', ...)."""
    resumed: str | None = None
    """What the run resumed: 'resumed from 2026-12-05 06:41 · 2,000 done earlier'."""
    refused: str | None = None
    """Why the resume asked for was refused at a pipeline's start (nothing ran)."""
    history_warning: str | None = None
    """What the run history could not do (the run went on without it)."""
    spend: str = ""
    """What its tasks reported they used: '$0.742 (102k tokens)' ('' when nothing)."""
    budget_pause: str | None = None
    """Why the run was paused by its budget when it was stopped (None: it was not)."""

    @property
    def items(self) -> int:
        return self.counts.items

    @property
    def completed(self) -> int:
        return self.counts.completed

    @property
    def failed(self) -> int:
        return self.counts.failed

    @property
    def skipped(self) -> int:
        return self.counts.skipped

    @property
    def unfinished(self) -> int:
        """Left unfinished by a stop (in flight, once the run is over, is the same)."""
        return self.counts.unfinished + self.counts.in_flight

    @property
    def abandoned(self) -> int:
        return self.counts.abandoned

    @property
    def not_fed(self) -> int:
        return self.counts.not_fed

    @property
    def exit_code(self) -> int:
        counts = self.counts
        if self.crash is not None or self.refused is not None:
            return EXIT_SCRIPT_ERROR
        left_over = counts.failed or counts.unfinished or counts.not_fed or counts.in_flight
        if left_over or self.app_error is not None or self.stopped_by is not None:
            return EXIT_INCOMPLETE
        if self.script_exit not in (None, 0):
            return EXIT_INCOMPLETE
        return EXIT_OK

    def summary(self) -> str:
        """The one-line summary printed to stdout after the app closes."""
        counts = self.counts
        finished = counts.completed + counts.skipped + counts.failed
        rate = finished / self.elapsed if self.elapsed else None
        parts = [
            f"items {format_count(counts.items)}",
            f"completed {format_count(counts.completed)}",
            f"failed {format_count(counts.failed)}",
            f"skipped {format_count(counts.skipped)}",
            f"unfinished {format_count(self.unfinished)}",
        ]
        if counts.done_earlier:
            parts.append(f"done earlier {format_count(counts.done_earlier)}")
        if counts.abandoned:
            parts.append(f"abandoned by the script {format_count(counts.abandoned)}")
        if counts.not_fed:
            parts.append(f"not fed {format_count(counts.not_fed)}")
        parts.append(f"elapsed {format_duration(self.elapsed)}")
        parts.append(f"items/s {format_rate(rate).removesuffix('/s')}")
        if self.spend:
            parts.append(f"cost {self.spend}")
        if self.budget_pause is not None:
            parts.append(f"stopped while paused by its budget ({clean(self.budget_pause, 200)})")
        if isinstance(self.script_exit, str):
            parts.append(f"script exit {clean(self.script_exit, 80)!r}")
        elif self.script_exit is not None:
            parts.append(f"script exit code {self.script_exit}")
        if self.stopped_by is not None:
            parts.append(f"stopped by {self.stopped_by}")
        if self.resumed is not None:
            # What it resumed; its "done earlier" count is said above.
            parts.append(self.resumed.split(" · ", 1)[0])
        return "  ".join(parts)


def viewer_exit_code(return_code: int | None) -> int:
    """The exit status of an app that only shows a run (a replay, a viewer attached to a
    job): 0, or 1 when the app itself failed (Textual has printed its traceback)."""
    return EXIT_OK if return_code in (0, None) else EXIT_INCOMPLETE


VIEWER_FAILED = "antflow-tui itself failed (its traceback is above)"
"""What a replay or a viewer says when its app failed."""
