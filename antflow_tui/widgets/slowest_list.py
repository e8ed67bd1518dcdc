"""SlowestList: a stage's slowest finished items, slowest first; enter opens one."""

from __future__ import annotations

from typing import TYPE_CHECKING

from rich.text import Text

from antflow_tui.latency import slowest_line
from antflow_tui.widgets.row_list import RowList

if TYPE_CHECKING:
    from collections.abc import Sequence

    from antflow.runstream.records import ItemKey


class SlowestList(RowList):
    """(item, seconds) rows, as the stage's latest snapshot lists them."""

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.items: Sequence[tuple[ItemKey, float]] = ()

    def show(self, items: Sequence[tuple[ItemKey, float]]) -> None:
        if tuple(items) == tuple(self.items):
            return
        self.items = tuple(items)
        self._line_cache.clear()
        # As tall as its rows (and its border): no blank box under a short list.
        self.styles.height = max(len(self.items), 1) + 2
        self.set_count(len(self.items))

    def entry_at(self, index: int) -> tuple[ItemKey, float] | None:
        """(item, seconds) on row `index`."""
        return self.items[index] if 0 <= index < len(self.items) else None

    def render_row(self, index: int, width: int) -> Text:
        if not 0 <= index < len(self.items):
            return Text()
        item, seconds = self.items[index]
        return slowest_line(item, seconds, width)
