"""RowList: a keyboard-driven list that renders only the rows on screen.

The error panel and the event log can hold tens of thousands of rows; a DataTable would
build a row object per item. A RowList keeps no rows at all: its owner says how many
there are and renders one on request (`render_row`), so a frame costs the visible rows.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

from rich.style import Style
from rich.text import Text
from textual.cache import LRUCache
from textual.geometry import Size
from textual.message import Message
from textual.reactive import reactive
from textual.scroll_view import ScrollView
from textual.strip import Strip

from antflow_tui.keys import bindings
from antflow_tui.palette import Palette, screen_palette
from antflow_tui.widgets.strips import text_strip

if TYPE_CHECKING:
    from textual import events
    from textual.binding import BindingType


class RowList(ScrollView, can_focus=True):
    """A scrolling list of rows with a cursor; subclasses render the rows."""

    BINDINGS: ClassVar[list[BindingType]] = bindings("row-list")

    DEFAULT_CSS = """
    RowList {
        overflow-x: hidden;
        overflow-y: auto;
    }
    """

    cursor: reactive[int] = reactive(0, always_update=True, repaint=False)
    """Index of the highlighted row."""

    class Chosen(Message):
        """Enter was pressed on a row."""

        def __init__(self, row_list: RowList, index: int) -> None:
            super().__init__()
            self.row_list = row_list
            self.index = index

        @property
        def control(self) -> RowList:
            return self.row_list

    sticky_tail: ClassVar[bool] = False
    """Reaching the last row turns `follow` on (logs)."""

    def __init__(self, *, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(id=id, classes=classes)
        self._line_cache: LRUCache[tuple[object, int, int], Strip] = LRUCache(512)
        self._count = 0
        self._palette: Palette | None = None
        self.follow = False
        """Keep the cursor on the last row as rows arrive."""

    # ---------------------------------------------------------------- subclass API

    def render_row(self, index: int, width: int) -> Text:
        """The row at `index` (0 is the top), at most `width` cells wide."""
        raise NotImplementedError

    def header(self, width: int) -> Text | None:
        """An optional header line pinned above the rows."""
        return None

    def row_key(self, index: int) -> object:
        """Something that changes whenever the row at `index` would render differently;
        None (the default) turns the line cache off for that row."""
        return None

    def set_count(self, count: int) -> None:
        """Tell the list how many rows there are now; re-renders what is visible."""
        self._count = count
        self.virtual_size = Size(self.size.width, count + self._header_lines)
        if self.follow:
            self.cursor = max(count - 1, 0)
            # Forced: when the rows first overflow, the scrollbar that allows scrolling
            # only comes with the next layout, and an unforced scroll would be ignored
            # (a replay's jump showed the log's middle, not its newest rows).
            self.scroll_end(animate=False, immediate=True, force=True)
        elif self.cursor >= count:
            self.cursor = max(count - 1, 0)
        self.refresh()

    @property
    def row_count(self) -> int:
        return self._count

    # ---------------------------------------------------------------- rendering

    @property
    def _header_lines(self) -> int:
        return 1 if self.header(1) is not None else 0

    def render_line(self, y: int) -> Strip:
        palette = screen_palette(self)
        if palette is not self._palette:
            # The theme changed: every cached line has the old colours.
            self._palette = palette
            self._line_cache.clear()
        width = self.scrollable_content_region.width
        base = self.rich_style
        if self._header_lines:
            if y == 0:
                head = self.header(width)
                return self._strip(head or Text(), width, base + Style(bold=True, dim=True))
            y -= 1
        index = self.scroll_offset.y + y
        if index >= self._count:
            return Strip.blank(width, base)
        state = 2 if index == self.cursor and self.has_focus else int(index == self.cursor)
        key = self.row_key(index)
        if key is not None:
            cached = self._line_cache.get((key, width, state))
            if cached is not None:
                return cached
        text = self.render_row(index, width)
        style = base
        if state == 2:
            style = base + self.get_component_rich_style("row-list--cursor")
        elif state == 1:
            style = base + Style(underline=False, dim=False, bgcolor="grey23")
        strip = self._strip(text, width, style)
        if key is not None:
            # A log that follows its tail shifts every line each frame; the lines
            # themselves do not change, so most of a frame comes from here.
            self._line_cache[(key, width, state)] = strip
        return strip

    def _strip(self, text: Text, width: int, style: Style) -> Strip:
        return text_strip(text, width, style, self.app.console)

    COMPONENT_CLASSES: ClassVar[set[str]] = {"row-list--cursor"}

    # ---------------------------------------------------------------- cursor

    def watch_cursor(self, old: int, new: int) -> None:
        self._scroll_to_cursor()
        self.refresh()

    def _scroll_to_cursor(self) -> None:
        visible = max(self.scrollable_content_region.height - self._header_lines, 1)
        top = self.scroll_offset.y
        if self.cursor < top:
            self.scroll_to(y=self.cursor, animate=False, immediate=True, force=True)
        elif self.cursor >= top + visible:
            self.scroll_to(y=self.cursor - visible + 1, animate=False, immediate=True, force=True)

    def _move(self, index: int) -> None:
        if not self._count:
            return
        self.cursor = min(max(index, 0), self._count - 1)
        self.follow = self.sticky_tail and self.cursor == self._count - 1

    def action_cursor_up(self) -> None:
        self.follow = False
        self._move(self.cursor - 1)

    def action_cursor_down(self) -> None:
        self._move(self.cursor + 1)

    def action_page_up(self) -> None:
        self.follow = False
        self._move(self.cursor - max(self.scrollable_content_region.height - 1, 1))

    def action_page_down(self) -> None:
        self._move(self.cursor + max(self.scrollable_content_region.height - 1, 1))

    def action_first(self) -> None:
        self.follow = False
        self._move(0)

    def action_last(self) -> None:
        self._move(self._count - 1)

    def action_choose(self) -> None:
        if self._count:
            self.post_message(self.Chosen(self, self.cursor))

    def on_mouse_scroll_up(self, event: events.MouseScrollUp) -> None:
        # Scrolling back with the wheel, like the keys, stops following the tail.
        self.follow = False

    def on_focus(self) -> None:
        self.refresh()

    def on_blur(self) -> None:
        self.refresh()

    def on_resize(self) -> None:
        self.virtual_size = Size(self.size.width, self._count + self._header_lines)
        self._scroll_to_cursor()
