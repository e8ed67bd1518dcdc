"""EventLog: the run's events, newest last, bounded, following the tail unless scrolled up.

What matters is kept apart from the routine: the script's warnings and errors and the
items that failed are held in their own bounded lists too, so a flood of routine lines
(100,000 DEBUG lines, a million events) never pushes them out. Once they have fallen off
the routine window they stay at the top, above a line saying how much was dropped.
"""

from __future__ import annotations

import heapq
import time
from collections import deque
from typing import TYPE_CHECKING, Final

from rich.text import Text

from antflow_tui.filters import Facts
from antflow_tui.formatting import format_count
from antflow_tui.levels import ERROR, KEPT
from antflow_tui.palette import screen_palette
from antflow_tui.present import dropped_line, event_facts, event_line, line_facts, note_line
from antflow_tui.source.state import LogEntry
from antflow_tui.widgets.row_list import RowList

if TYPE_CHECKING:
    from antflow_tui.filters import Filter

BUSY_LINES: Final = 50
"""A batch this big means events are flooding in."""
BUSY_REDRAW_SECONDS: Final = 0.3
"""How often a flooded log redraws."""
KEPT_LINES: Final = 1_000
"""The script's warnings and errors kept apart from the routine lines (the newest)."""
KEPT_FAILURES: Final = 1_000
"""Failed items' events kept apart likewise (the error panel holds every failure)."""


def entry_facts(entry: LogEntry) -> Facts:
    """What a log line offers to a filter."""
    if entry.event is not None:
        return event_facts(entry.event, entry.error)
    if entry.line is not None:
        return line_facts(entry.line)
    return Facts()


def _kept_list(entry: LogEntry) -> int:
    """Which list keeps `entry` apart: 1 lines, 2 failures, 0 none (routine)."""
    if entry.line is not None:
        return 1 if entry.level >= KEPT else 0
    if entry.event is not None and entry.level >= ERROR:
        return 2
    return 0


class EventLog(RowList):
    """A capped log of events; drains in batches, never one widget call per event."""

    sticky_tail = True

    def __init__(
        self,
        capacity: int,
        *,
        kept_lines: int = KEPT_LINES,
        kept_failures: int = KEPT_FAILURES,
        id: str | None = None,
    ) -> None:
        super().__init__(id=id)
        self.capacity = capacity
        self.entries: deque[LogEntry] = deque(maxlen=capacity)
        """The routine window: every line, the newest `capacity` of them."""
        self.kept_lines: deque[LogEntry] = deque(maxlen=kept_lines)
        """The script's warnings and errors (also in `entries` while they are there)."""
        self.kept_failures: deque[LogEntry] = deque(maxlen=kept_failures)
        """Failed items' events (likewise)."""
        self.appended = 0
        """Lines taken in since the log was last cleared."""
        self.started = 0.0
        """Unix time the run started: lines show time into the run."""
        self.pipelines = 1
        """Pipelines in the run: with several, each event line names its pipeline."""
        self.follow = True
        self.filter: Filter | None = None
        self._visible: deque[LogEntry] | None = None
        self._pinned: list[LogEntry] = []
        self._pinned_for: tuple[object, ...] | None = None
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
        self.appended += len(entries)
        for entry in entries:
            kept = _kept_list(entry)
            if kept == 1:
                self.kept_lines.append(entry)
            elif kept == 2:
                self.kept_failures.append(entry)
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
        self._pinned_for = None
        if log_filter is None:
            self._visible = None
        else:
            self._visible = deque(e for e in self.entries if log_filter.matches(entry_facts(e)))
        self.set_count(self._shown_count())

    # ---------------------------------------------------------------- rows

    def _pinned_rows(self) -> list[LogEntry]:
        """The kept lines that fell off the routine window (filtered), oldest first, and
        the divider under them when there are any."""
        oldest = self.entries[0].seq if self.entries else None
        newest_kept = tuple(
            kept[-1].seq if kept else None for kept in (self.kept_lines, self.kept_failures)
        )
        key = (oldest, newest_kept, self.filter, self.appended - len(self.entries))
        if key == self._pinned_for:
            return self._pinned
        self._pinned_for = key
        gone = [
            entry
            for entry in heapq.merge(self.kept_lines, self.kept_failures, key=_sequence)
            if oldest is None or entry.seq < oldest
        ]
        chosen = self.filter
        if chosen is not None:
            gone = [entry for entry in gone if chosen.matches(entry_facts(entry))]
        dropped = self.appended - len(self.entries)
        if gone and dropped > 0:
            gone.append(LogEntry(gap=dropped))
        self._pinned = gone
        return gone

    def entry_at(self, index: int) -> LogEntry | None:
        pinned = self._pinned_rows()
        if index < len(pinned):
            return pinned[index] if index >= 0 else None
        index -= len(pinned)
        rows = self._visible if self._visible is not None else self.entries
        return rows[index] if 0 <= index < len(rows) else None

    def _shown_count(self) -> int:
        routine = len(self._visible) if self._visible is not None else len(self.entries)
        return len(self._pinned_rows()) + routine

    def row_key(self, index: int) -> object:
        entry = self.entry_at(index)
        if entry is None:
            return None
        return (entry.seq, entry.gap)

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
        if entry.gap:
            return _gap_line(entry.gap)
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
        self.kept_lines.clear()
        self.kept_failures.clear()
        self.appended = 0
        self._pinned_for = None
        if self._visible is not None:
            self._visible.clear()
        self.set_count(0)

    def toggle_follow(self) -> bool:
        self.follow = not self.follow
        if self.follow:
            self.action_last()
        return self.follow


def _sequence(entry: LogEntry) -> int:
    return entry.seq


def _gap_line(dropped: int) -> Text:
    return Text(
        f"··· {format_count(dropped)} earlier lines not kept; "
        "the warnings, errors and failures above are",
        style="dim italic",
    )
