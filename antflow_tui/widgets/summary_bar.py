"""SummaryBar: the header: run state, elapsed, progress, rate, ETA, and the counts."""

from __future__ import annotations

from typing import TYPE_CHECKING

from rich.console import Group
from textual.widget import Widget

if TYPE_CHECKING:
    from rich.console import RenderableType
    from rich.text import Text


class SummaryBar(Widget):
    """The lines built by `header.header_lines` (and, with several pipelines, the
    switcher's line under them).

    A plain widget of fixed height, not a Static: `Static.update` asks for a new layout of
    the whole screen, which cost a full layout pass every frame.
    """

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
            if len(lines) != len(self._lines):
                # A pipeline switcher came: one line more (rare, so a layout is fine).
                self.styles.height = max(len(lines), 1)
            self._lines = lines
            self.refresh()

    @property
    def text(self) -> str:
        """What the bar shows, as plain text."""
        return "\n".join(line.plain for line in self._lines)

    def render(self) -> RenderableType:
        return Group(*self._lines)
