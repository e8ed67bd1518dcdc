"""How the app tells of a stall of the event loop: one log line, and a banner for a while.

The `Watchdog` notices the stall and what held the loop; this says it, once per stall.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Final

from antflow_tui.formatting import format_duration
from antflow_tui.safe_text import clean

if TYPE_CHECKING:
    from antflow_tui.hosting.watchdog import LoopStall

SHOW_SECONDS: Final = 10.0
"""How long the banner stays up after the loop runs again."""


def stall_message(stall: LoopStall) -> str:
    """'The event loop was blocked for 2.9s by worker Parse-W1 on item 5, at x.py:10 in
    parse: ...'."""
    text = f"The event loop was blocked for {format_duration(stall.seconds)}"
    if stall.blame is not None and stall.blame.describe():
        text += f" by {clean(stall.blame.describe(), 160)}"
    return text + " (code that does not await stops everything, this app included)"


class StallNotice:
    """The latest stall, for the banner while it is recent."""

    def __init__(self) -> None:
        self.last: LoopStall | None = None
        self._at = 0.0
        self.reported = 0
        """Stalls reported so far."""

    def report(self, stall: LoopStall, now: float) -> str:
        """Record a stall seen at `now` (monotonic); returns the line to log."""
        self.last, self._at = stall, now
        self.reported += 1
        return stall_message(stall)

    def banner(self, now: float) -> str:
        """The banner to show now ('' once it has been up long enough)."""
        if self.last is None or now - self._at > SHOW_SECONDS:
            return ""
        return stall_message(self.last)
