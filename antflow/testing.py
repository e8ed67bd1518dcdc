"""Helpers for testing code that runs pipelines: a clock that moves only when told.

`Pipeline(clock=...)` (and the run stream, and antflow-tui's demo) take an injected
monotonic clock; a test passes a `FakeClock` and moves it with `advance`, so durations,
rates and timestamps are exact and nothing waits on the wall clock.
"""

from __future__ import annotations

__all__ = ["FakeClock"]


class FakeClock:
    """Seconds that move only when a test (or a fake task) says so.

    Args:
        start: The first reading.
    """

    def __init__(self, start: float = 0.0) -> None:
        self.now = start
        """The current reading; a test may also set it."""

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        """Move the clock on by `seconds`."""
        self.now += seconds
