"""EventLog: the run's events, newest last, bounded, following the tail unless scrolled up."""

from __future__ import annotations

import time
from collections import deque
from typing import TYPE_CHECKING, Final

from rich.text import Text

from antflow_tui.filters import Facts
from antflow_tui.palette import screen_palette
from antflow_tui.present import dropped_line, event_facts, event_line, note_line
from antflow_tui.widgets.row_list import RowList

if TYPE_CHECKING:
    from antflow_tui.filters import Filter
    from antflow_tui.state import LogEntry

BUSY_LINES: Final = 50
"""A batch this big means events are flooding in."""
BUSY_REDRAW_SECONDS: Final = 0.3
"""How often a flooded log redraws."""


def entry_facts(entry: LogEntry) -> Facts:
    """What a log line offers to a filter."""
    if entry.event is not None:
        return event_facts(entry.event, entry.error)
    return Facts(text="" if entry.line is None else entry.line.text)


class EventLog(RowList):
    """A capped log of events; drains in batches, never one widget call per event."""

    sticky_tail = True

    def __init__(self, capacity: int, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.capacity = capacity
        self.entries: deque[LogEntry] = deque(maxlen=capacity)
        self.started = 0.0
        """Unix time the run started: lines show time into the run."""
        self.pipelines = 1
        """Pipelines in the run: with several, each event line names its pipeline."""
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
            visible.extend(
                e for e in entries[-self.capacity :] if self.filter.matches(entry_facts(e))
            )
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
            self._visible = deque(e for e in self.entries if log_filter.matches(entry_facts(e)))
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
        palette = screen_palette(self)
        if entry.event is not None:
            return event_line(
                entry.event,
                self.started,
                entry.error,
                palette=palette,
                show_pipeline=self.pipelines > 1,
            )
        if entry.line is not None:
            return note_line(entry.line, self.started, palette)
        return dropped_line(entry.dropped, entry.rate)

    def set_context(self, started: float, pipelines: int) -> None:
        """When the run started and how many pipelines it has (lines depend on both)."""
        if (started, pipelines) != (self.started, self.pipelines):
            self.started, self.pipelines = started, pipelines
            self._line_cache.clear()
            self.refresh()

    def clear_entries(self) -> None:
        """Forget every line (a replay jumped: what was shown no longer leads here)."""
        self.entries.clear()
        if self._visible is not None:
            self._visible.clear()
        self.set_count(0)

    def toggle_follow(self) -> bool:
        self.follow = not self.follow
        if self.follow:
            self.action_last()
        return self.follow
