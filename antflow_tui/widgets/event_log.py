"""EventLog: the run's events, newest last, bounded, following the tail unless scrolled up."""

from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass, field
from itertools import count
from typing import TYPE_CHECKING, Any, Final

from rich.text import Text

from antflow_tui.filters import Facts, Filter
from antflow_tui.present import dropped_line, event_facts, event_line
from antflow_tui.widgets.row_list import RowList

if TYPE_CHECKING:
    from antflow.types import StatusEvent, TaskEvent

_sequence = count()

BUSY_LINES: Final = 50
"""A batch this big means events are flooding in."""
BUSY_REDRAW_SECONDS: Final = 0.3
"""How often a flooded log redraws."""


@dataclass(frozen=True, slots=True)
class LogEntry:
    """One log line: an engine event, a gap marker, or a line the script printed."""

    event: StatusEvent | TaskEvent | None = None
    note: Text | None = None
    pipeline: int | None = None
    """The number of the event's pipeline (None: not known, its tracker serves several)."""
    seq: int = field(default_factory=lambda: next(_sequence))

    @property
    def item_id(self) -> Any:
        return None if self.event is None else self.event.item_id

    def facts(self) -> Facts:
        if self.event is not None:
            return event_facts(self.event)
        return Facts(text="" if self.note is None else self.note.plain)


class EventLog(RowList):
    """A capped log of events; drains in batches, never one widget call per event."""

    sticky_tail = True

    def __init__(self, capacity: int, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.capacity = capacity
        self.entries: deque[LogEntry] = deque(maxlen=capacity)
        self.started = 0.0
        """Unix time the run started: lines show time into the run."""
        self.follow = True
        self.filter: Filter | None = None
        self._visible: deque[LogEntry] | None = None
        self._drawn_at = 0.0
        self._dirty = False

    def add(self, entries: list[LogEntry], *, force: bool = False) -> None:
        """Append a batch of entries (the oldest fall off past `capacity`).

        Under a flood the view redraws at most every `BUSY_REDRAW_SECONDS` (nobody reads a
        log that scrolls a screenful per frame, and redrawing it is a frame's largest
        cost); a trickle shows at once.
        """
        if entries:
            self._apply(entries)
            self._dirty = True
        if not self._dirty:
            return
        now = time.monotonic()
        busy = len(entries) >= BUSY_LINES and now - self._drawn_at < BUSY_REDRAW_SECONDS
        if busy and not force:
            return  # drawn by a quieter frame, or once the interval has passed
        self._dirty = False
        self._drawn_at = now
        self.set_count(self._shown_count())

    def _apply(self, entries: list[LogEntry]) -> None:
        self.entries.extend(entries)
        visible = self._visible
        if visible is not None and self.filter is not None:
            # Only the new entries need matching; drop those that fell off the log.
            visible.extend(e for e in entries[-self.capacity :] if self.filter.matches(e.facts()))
            oldest = self.entries[0].seq
            while visible and visible[0].seq < oldest:
                visible.popleft()

    def set_filter(self, log_filter: Filter | None) -> None:
        """Show only entries matching `log_filter` (None or empty: all)."""
        if log_filter is not None and log_filter.empty:
            log_filter = None
        self.filter = log_filter
        if log_filter is None:
            self._visible = None
        else:
            self._visible = deque(e for e in self.entries if log_filter.matches(e.facts()))
        self.set_count(self._shown_count())

    def entry_at(self, index: int) -> LogEntry | None:
        rows = self._visible if self._visible is not None else self.entries
        return rows[index] if 0 <= index < len(rows) else None

    def _shown_count(self) -> int:
        return len(self._visible) if self._visible is not None else len(self.entries)

    def row_key(self, index: int) -> object:
        entry = self.entry_at(index)
        return None if entry is None else entry.seq

    def render_row(self, index: int, width: int) -> Text:
        entry = self.entry_at(index)
        if entry is None:
            return Text()
        if entry.event is not None:
            return event_line(entry.event, self.started)
        return entry.note or Text()

    def toggle_follow(self) -> bool:
        self.follow = not self.follow
        if self.follow:
            self.action_last()
        return self.follow


def gap_entry(dropped: int, rate: float | None) -> LogEntry:
    return LogEntry(note=dropped_line(dropped, rate))
