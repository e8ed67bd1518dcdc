"""LoopWatch: notice that the event loop was blocked, and say so once it runs again.

A task that computes without awaiting freezes everything on the loop, the app included:
nothing can be drawn while it runs. What the app can do is notice, on the first frame
after, that the frame came late, and show it ("event loop blocked 2.3 s"), naming the task
that most likely did it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

from antflow_tui.formatting import format_duration
from antflow_tui.safe_text import clean, item_label

if TYPE_CHECKING:
    from collections.abc import Sequence

    from antflow.types import StatusEvent, TaskEvent

LATE_SECONDS: Final = 0.5
"""A frame this much later than its interval means the loop was blocked."""
ARMED_AFTER: Final = 3
"""Frames to wait before judging: laying out the first screen is slow by itself."""
SHOW_SECONDS: Final = 10.0
"""How long the warning stays up after the loop runs again."""


@dataclass(frozen=True, slots=True)
class Stall:
    """One stretch of time the loop did not run."""

    seconds: float
    ended_at: float
    suspect: str
    """The task that most likely blocked, as a sentence part ('' when unknown)."""

    def message(self) -> str:
        text = f"The event loop was blocked for {format_duration(self.seconds)}"
        if self.suspect:
            text += f", likely by {self.suspect}"
        return text + " (a task that does not await stops everything)"


class LoopWatch:
    """Times the app's frames; a late one is a stall."""

    def __init__(self, interval: float) -> None:
        self.interval = interval
        self._last: float | None = None
        self._beats = 0
        self.last_stall: Stall | None = None

    @property
    def beats(self) -> int:
        """Frames seen so far."""
        return self._beats

    def rest(self) -> None:
        """Frames stop on purpose (display frozen, run over): the next one is not late."""
        self._last = None

    def beat(self, now: float, events: Sequence[StatusEvent | TaskEvent]) -> Stall | None:
        """Record a frame at `now` (monotonic); returns the stall it reveals, if any."""
        last, self._last = self._last, now
        self._beats += 1
        # The app's first frames are slow to build on their own: judge from the fourth on.
        if last is None or self._beats <= ARMED_AFTER:
            return None
        blocked = now - last - self.interval
        if blocked < LATE_SECONDS:
            return None
        self.last_stall = Stall(blocked, now, suspect_task(events, blocked))
        return self.last_stall

    def warning(self, now: float) -> str:
        """The warning to show now ('' once it has been up long enough)."""
        stall = self.last_stall
        if stall is None or now - stall.ended_at > SHOW_SECONDS:
            return ""
        return stall.message()


def suspect_task(events: Sequence[StatusEvent | TaskEvent], blocked: float) -> str:
    """The task attempt that ended during the stall and ran about as long as it lasted."""
    from antflow.types import TaskEvent

    best: TaskEvent | None = None
    for event in events:
        if (
            isinstance(event, TaskEvent)
            and event.duration is not None
            and event.duration >= blocked * 0.8
            and (best is None or (best.duration or 0) < event.duration)
        ):
            best = event
    if best is None:
        return ""
    task, item = clean(best.task_name, 40), item_label(best.item_id, 30)
    return f"task {task} on item {item} ({clean(best.worker, 30)})"
