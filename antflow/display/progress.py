"""ProgressDisplay: the plain-text bar behind ``run(progress=True)``; no Rich involved."""

from __future__ import annotations

import math
import shutil
import sys
import time
from typing import TYPE_CHECKING, Final, TextIO

from antflow.display._tally import Clock, Meter, Tally, finished_before
from antflow.display._text import format_duration, format_rate
from antflow.display.base import BaseDashboard

if TYPE_CHECKING:
    from antflow.pipeline import Pipeline
    from antflow.types import DashboardSnapshot, ErrorSummary, PipelineResult

# Lines a non-terminal gets for a known total: one per tenth of progress, then the final one.
_STEPS: Final = 10


def _is_terminal(stream: TextIO) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):
        # No isatty, or a closed stream: treat it as a file and write sparingly.
        return False


def progress_line(tally: Tally, bar_width: int = 30) -> str:
    """One line: bar, done/total, percent, rate and failures (no bar for an unknown total).

    ASCII only, since stderr's encoding is not always UTF-8.
    """
    rate = format_rate(tally.rate)
    fraction = tally.fraction
    earlier = f"  {tally.done_earlier} done earlier" if tally.done_earlier else ""
    if fraction is None:
        return f"{tally.done} done  {rate}  {tally.failed} failed{earlier}"
    filled = math.floor(fraction * bar_width)
    bar = "#" * filled + "-" * (bar_width - filled)
    return (
        f"[{bar}] {tally.done}/{tally.total} {fraction * 100:5.1f}%  {rate}  {tally.failed} "
        f"failed{earlier}"
    )


class ProgressDisplay(BaseDashboard):
    """A one-line progress bar, redrawn in place on a terminal.

    On a terminal the line is redrawn with ``\\r`` on every update. Elsewhere (a pipe, a
    file, CI logs) it prints a line each tenth of the way, or every `quiet_interval`
    seconds when the total is unknown, and a final line at the end.

    Args:
        total: Items expected, until `on_start` says otherwise (0: unknown).
        width: Characters in the bar.
        file: Where to write; None for whatever `sys.stderr` is at the time.
        quiet_interval: Seconds between lines off a terminal when the total is unknown.
        clock: Monotonic seconds, for the elapsed time and rate.
    """

    def __init__(
        self,
        total: int = 0,
        width: int = 30,
        *,
        file: TextIO | None = None,
        quiet_interval: float = 10.0,
        clock: Clock = time.monotonic,
    ) -> None:
        self._file = file
        self.total = total
        """Items expected (as upstream AntFlow names it); 0 when unknown."""
        self.width = width
        """Characters in the bar."""
        self.start_time: float | None = None
        """Unix time of `on_start`, None before it."""
        self.quiet_interval = quiet_interval
        self._meter = Meter(clock)
        self._terminal: bool | None = None
        self._drawn = 0
        self._step = 0
        self._printed_at = 0.0

    @property
    def stream(self) -> TextIO:
        """The stream written to."""
        return self._file if self._file is not None else sys.stderr

    def on_start(self, pipeline: Pipeline, total_items: int) -> None:
        """Remember the total and start a fresh line (a display may serve several runs)."""
        self.total_items = total_items or self.total or None
        self.total = self.total_items or 0
        self.start_time = time.time()
        self._meter.start(finished_before(pipeline))
        self._terminal = None
        self._drawn = 0
        self._step = 0
        self._printed_at = 0.0

    def render(self, snapshot: DashboardSnapshot) -> None:
        """Redraw the line (terminal) or print one if progress moved far enough (elsewhere)."""
        tally = self._meter.read(snapshot, self.total_items)
        if self._is_terminal():
            self._redraw(progress_line(tally, self.width))
        elif self._due(tally):
            self._write(progress_line(tally, self.width) + "\n")

    def on_finish(self, results: list[PipelineResult], summary: ErrorSummary) -> None:
        """Write the final line: the last counts and the elapsed time."""
        tally = self._meter.last
        if tally is None:
            # No update came (the monitor's own first update failed); counts from the end.
            tally = Tally(
                processed=len(results),
                failed=summary.total_failed,
                in_flight=0,
                total=self.total_items or None,
                elapsed=0.0,
                rate=None,
            )
        line = f"{progress_line(tally, self.width)}  in {format_duration(tally.elapsed)}"
        if self._is_terminal():
            self._redraw(line)
            self._write("\n")
        else:
            self._write(line + "\n")
        self._drawn = 0

    def _is_terminal(self) -> bool:
        if self._terminal is None:
            self._terminal = _is_terminal(self.stream)
        return self._terminal

    def _due(self, tally: Tally) -> bool:
        fraction = tally.fraction
        if fraction is not None:
            step = math.floor(fraction * _STEPS)
            # The last tenth is left to on_finish's line, so a finished run prints it once.
            if step > self._step and tally.done < (tally.total or 0):
                self._step = step
                return True
            return False
        if tally.elapsed - self._printed_at >= self.quiet_interval:
            self._printed_at = tally.elapsed
            return True
        return False

    def _redraw(self, line: str) -> None:
        # A line longer than the terminal wraps, and \r then only returns to the last row.
        width = shutil.get_terminal_size().columns - 1
        line = line[:width]
        self._write("\r" + line.ljust(self._drawn))
        self._drawn = len(line)

    def _write(self, text: str) -> None:
        stream = self.stream
        stream.write(text)
        stream.flush()
