"""The Rich dashboards behind ``run(dashboard=...)``: compact, detailed and full.

Each redraws one panel through `rich.live.Live`. On a terminal the panel is redrawn in
place; elsewhere Live writes nothing until it stops and then prints the last frame once,
which keeps CI logs short.
"""

from __future__ import annotations

import abc
import time
from typing import TYPE_CHECKING, Final

from rich.console import Console, Group
from rich.live import Live
from rich.panel import Panel
from rich.text import Text

from antflow.display import _parts
from antflow.display._tally import Clock, Meter, finished_before
from antflow.display._text import format_duration, safe_text
from antflow.display.base import BaseDashboard

if TYPE_CHECKING:
    from rich.console import RenderableType

    from antflow.display._tally import Tally
    from antflow.pipeline import Pipeline
    from antflow.types import DashboardSnapshot, ErrorSummary, PipelineResult

# Summary lines hold stage names and error types, longer than a table cell allows.
_SUMMARY_LIMIT: Final = 120


class _RichDashboard(BaseDashboard):
    """Live lifecycle and the final summary; subclasses choose the panel's sections."""

    # AntFlow's signature first: `CompactDashboard(2.0)` is a refresh rate.
    def __init__(
        self,
        refresh_rate: float = 4.0,
        *,
        console: Console | None = None,
        clock: Clock = time.monotonic,
    ) -> None:
        self.console = console if console is not None else Console()
        self.refresh_rate = refresh_rate
        """Most redraws per second (frames come from the pipeline's updates)."""
        self.total = 0
        """Items the run expects (0 before `on_start`, or when unknown)."""
        self._drawn_at: float | None = None
        self._meter = Meter(clock)
        self._live: Live | None = None
        self._snapshot: DashboardSnapshot | None = None

    def on_start(self, pipeline: Pipeline, total_items: int) -> None:
        """Remember the total and forget any previous run."""
        self.total_items = total_items
        self.total = total_items or 0
        self._drawn_at = None
        self._stop_live()
        self._meter.start(finished_before(pipeline))
        self._snapshot = None

    def render(self, snapshot: DashboardSnapshot) -> None:
        """Draw `snapshot`, starting the live display on the first one."""
        self._snapshot = snapshot
        now = self._meter.clock()
        if (
            self._drawn_at is not None
            and self.refresh_rate > 0
            and now - self._drawn_at < 1 / self.refresh_rate
        ):
            return  # on_finish redraws the last snapshot, so nothing is lost
        self._drawn_at = now
        view = self.build(snapshot)
        if self._live is None:
            # No auto-refresh thread: frames come from on_update, on the event loop.
            self._live = Live(view, console=self.console, auto_refresh=False)
            self._live.start(refresh=True)
        else:
            self._live.update(view, refresh=True)

    def build(self, snapshot: DashboardSnapshot) -> RenderableType:
        """The panel for `snapshot`, without drawing it."""
        tally = self._meter.read(snapshot, self.total_items)
        return Panel(
            Group(*self._sections(snapshot, tally)),
            title=Text(f"antflow · {_parts.state_label(snapshot)}"),
            title_align="left",
            border_style="blue",
        )

    def on_finish(self, results: list[PipelineResult], summary: ErrorSummary) -> None:
        """Stop the live display (leaving the last frame) and print a short summary."""
        if self._live is not None and self._snapshot is not None:
            # Redraw first, so a section showing the summary shows the final one.
            self._live.update(self.build(self._snapshot))
        self._stop_live()
        tally = self._meter.last
        completed = tally.processed if tally is not None else len(results)
        elapsed = format_duration(tally.elapsed if tally is not None else 0.0)
        self.console.print(
            Text.assemble(
                ("Finished: ", "bold"),
                f"{completed} completed, ",
                (f"{summary.total_failed} failed", "red" if summary.total_failed else ""),
                f" in {elapsed}",
            )
        )
        if summary.total_failed:
            for line in str(summary).splitlines():
                self.console.print(Text(safe_text(line, _SUMMARY_LIMIT)))

    @abc.abstractmethod
    def _sections(self, snapshot: DashboardSnapshot, tally: Tally) -> list[RenderableType]:
        """The panel's contents, top to bottom."""

    def _stop_live(self) -> None:
        if self._live is not None:
            self._live.stop()
            self._live = None
            if not self.console.is_terminal:
                # Off a terminal, Live's final frame ends without a newline (Rich 13-15).
                self.console.line()


class CompactDashboard(_RichDashboard):
    """One panel: overall progress, in flight, failed, rate and elapsed time.

    Args:
        refresh_rate: Most redraws per second (default 4).
        console: Where to draw; a new `Console` on stdout by default.
        clock: Monotonic seconds, for the elapsed time and rate.
    """

    def _sections(self, snapshot: DashboardSnapshot, tally: Tally) -> list[RenderableType]:
        return [_parts.overview(tally)]


class DetailedDashboard(_RichDashboard):
    """The compact panel plus a per-stage table and the busy worker count.

    Args:
        refresh_rate: Most redraws per second (default 4).
        console: Where to draw; a new `Console` on stdout by default.
        clock: Monotonic seconds, for the elapsed time and rate.
    """

    def _sections(self, snapshot: DashboardSnapshot, tally: Tally) -> list[RenderableType]:
        return [_parts.overview(tally), _parts.stage_table(snapshot), _parts.busy_line(snapshot)]


class FullDashboard(_RichDashboard):
    """The detailed panel plus a worker table and an error summary.

    Args:
        refresh_rate: Most redraws per second (default 4).
        max_items_shown: Item rows shown: the last failed items the error section lists
            (default 20, as AntFlow's); the rest are counted in a "+N more" line.
        console: Where to draw; a new `Console` on stdout by default.
        max_workers: Worker rows shown, busy workers first.
        clock: Monotonic seconds, for the elapsed time and rate.

    Raises:
        ValueError: `max_items_shown` is not a non-negative int.
    """

    def __init__(
        self,
        refresh_rate: float = 4.0,
        max_items_shown: int = _parts.RECENT_FAILURES,
        *,
        console: Console | None = None,
        max_workers: int = _parts.MAX_WORKER_ROWS,
        clock: Clock = time.monotonic,
    ) -> None:
        if isinstance(max_items_shown, bool) or not isinstance(max_items_shown, int):
            raise ValueError(f"max_items_shown must be an int, got {max_items_shown!r}")
        if max_items_shown < 0:
            raise ValueError(f"max_items_shown must be 0 or more, got {max_items_shown}")
        super().__init__(refresh_rate, console=console, clock=clock)
        self.max_workers = max_workers
        self.max_items_shown = max_items_shown
        """Failed items the error section lists, newest last (AntFlow's attribute)."""
        self._pipeline: Pipeline | None = None
        self._errors: ErrorSummary | None = None
        self._errors_at = 0

    def on_start(self, pipeline: Pipeline, total_items: int) -> None:
        """Remember the pipeline, whose error summary the error section shows."""
        super().on_start(pipeline, total_items)
        self._pipeline = pipeline
        self._errors = None
        self._errors_at = 0

    def on_finish(self, results: list[PipelineResult], summary: ErrorSummary) -> None:
        """Show the final error summary in the last frame, then stop as the others do."""
        self._pipeline = None
        self._errors = summary
        super().on_finish(results, summary)

    def _sections(self, snapshot: DashboardSnapshot, tally: Tally) -> list[RenderableType]:
        self._refresh_errors(tally)
        return [
            _parts.overview(tally),
            _parts.stage_table(snapshot),
            _parts.busy_line(snapshot),
            _parts.worker_table(snapshot, self.max_workers),
            _parts.error_section(self._errors, snapshot, self.max_items_shown),
        ]

    def _refresh_errors(self, tally: Tally) -> None:
        # Snapshots carry per-stage failure counts only; error types and messages come from
        # the pipeline's summary, which copies every failure, so it is re-read only when the
        # failure count moves.
        if self._pipeline is not None and tally.failed != self._errors_at:
            self._errors = self._pipeline.get_error_summary()
            self._errors_at = tally.failed
