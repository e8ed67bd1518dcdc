"""SummaryBar: the header: run state, elapsed, progress, rate, ETA, and the counts."""

from __future__ import annotations

from typing import TYPE_CHECKING

from rich.console import Group
from textual.widget import Widget

if TYPE_CHECKING:
    from rich.console import RenderableType
    from rich.text import Text


class SummaryBar(Widget):
    """Two lines built by `present.header_lines`.

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
            self._lines = lines
            self.refresh()

    @property
    def text(self) -> str:
        """What the bar shows, as plain text."""
        return "\n".join(line.plain for line in self._lines)

    def render(self) -> RenderableType:
        return Group(*self._lines)
