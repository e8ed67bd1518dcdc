"""SummaryBar: the header: run state, elapsed, progress, rate, ETA, and the counts."""

from __future__ import annotations

from typing import TYPE_CHECKING

from rich.console import Group
from textual.widgets import Static

if TYPE_CHECKING:
    from rich.text import Text


class SummaryBar(Static):
    """Two lines built by `present.header_lines`; redrawn only when they change."""

    DEFAULT_CSS = """
    SummaryBar {
        height: 2;
    }
    """

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self._lines: tuple[Text, ...] = ()

    def show(self, lines: tuple[Text, ...]) -> None:
        if lines != self._lines:
            self._lines = lines
            self.update(Group(*lines))
