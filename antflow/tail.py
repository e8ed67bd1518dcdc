"""EventTail: the newest events of a tracker, for a monitor that reads them once per frame.

A listener would build event objects for every event; a tail reads the raw records the
tracker keeps in one bounded buffer and builds events only for what it drains, so
watching a run costs the run almost nothing. When events arrive faster than they are
drained, the oldest are skipped and counted, never held.
"""

from __future__ import annotations

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
    """Events that arrived since the last drain but were not kept."""
    received: int
    """Events recorded since the tail was opened, in all."""


class EventTail:
    """A cursor into a tracker's buffer of newest records. Open with `StatusTracker.open_tail`."""

    def __init__(self, tracker: StatusTracker, capacity: int) -> None:
        if capacity < 1:
            raise ValueError(f"an EventTail needs a capacity >= 1, got {capacity!r}")
        self._tracker = tracker
        self.capacity = capacity
        self._seen_events = tracker._recent_events
        self._opened_at = tracker._recent_events
        self._last_record: h.RawRecord | None = None

    def drain(self) -> TailBatch:
        """The events recorded since the last drain (at most `capacity` of the newest)."""
        records, dropped = self.drain_raw()
        events = self._tracker._decode_raw(records) if records else []
        # A record may stand for several events: what was not built counts as dropped.
        return TailBatch(
            events=events,
            dropped=max(dropped, 0),
            received=self._tracker._recent_events - self._opened_at,
        )

    def drain_raw(self) -> tuple[list[h.RawRecord], int]:
        """The raw records since the last drain (at most `capacity` of the newest), and how
        many events arrived meanwhile that they do not stand for."""
        tracker = self._tracker
        buffer = tracker._tail_buffer
        total = tracker._recent_events
        new_events = total - self._seen_events
        self._seen_events = total
        if buffer is None or not new_events:
            return [], 0
        # Records newer than the last one this tail took, newest `capacity` of them.
        records = list(buffer)
        if self._last_record is not None:
            for index in range(len(records) - 1, -1, -1):
                if records[index] is self._last_record:
                    records = records[index + 1 :]
                    break
        records = records[-self.capacity :]
        if records:
            self._last_record = records[-1]
        return records, max(new_events - _events_in(records), 0)

    def close(self) -> None:
        """Stop following the tracker."""
        self._tracker._close_tail(self)


def _events_in(records: list[h.RawRecord]) -> int:
    """How many events these raw records stand for (merged records stand for several)."""
    count = 0
    for record in records:
        kind = int(record[1]) & 0xF
        if kind == h.FINISH_HANDOFF:
            count += 3
        elif kind in (h.BEGIN_PER_TASK, h.BEGIN_PER_STAGE, h.FINISH):
            count += 2
        else:
            count += 1
    return count
