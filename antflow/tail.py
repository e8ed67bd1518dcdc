"""EventTail: the newest events of a tracker, for a monitor that reads them once per frame.

A listener would build event objects for every event; a tail keeps the raw records in a
bounded buffer and builds events only for what the monitor drains, so watching a run
costs the run almost nothing. When events arrive faster than they are drained, the oldest
are dropped and counted, never held.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import TYPE_CHECKING

from antflow import _history as h

if TYPE_CHECKING:
    from antflow.tracker import StatusTracker
    from antflow.types import StatusEvent, TaskEvent


@dataclass(frozen=True, slots=True)
class TailBatch:
    """What one `EventTail.drain()` returns."""

    events: list[StatusEvent | TaskEvent]
    """The newest events since the last drain, oldest first."""
    dropped: int
    """Events that arrived since the last drain but did not fit in the buffer."""
    received: int
    """Events received since the tail was opened, in all."""


class EventTail:
    """A bounded buffer of a tracker's newest events. Open one with `StatusTracker.open_tail`."""

    def __init__(self, tracker: StatusTracker, capacity: int) -> None:
        if capacity < 1:
            raise ValueError(f"an EventTail needs a capacity >= 1, got {capacity!r}")
        self._tracker = tracker
        self._records: deque[h.RawRecord] = deque(maxlen=capacity)
        self._received = 0
        self._drained = 0

    def push(self, record: h.RawRecord) -> None:
        """Called by the tracker for every record."""
        self._records.append(record)
        self._received += h.EVENTS_IN_RECORD[record[1] & 0xF]

    def drain(self) -> TailBatch:
        """Take the buffered events (building them now) and count what was dropped."""
        records = list(self._records)
        self._records.clear()
        events = self._tracker._decode_raw(records)
        dropped = self._received - self._drained - len(events)
        self._drained = self._received
        return TailBatch(events=events, dropped=max(dropped, 0), received=self._received)

    def close(self) -> None:
        """Stop receiving events."""
        self._tracker._close_tail(self)
        self._records.clear()
