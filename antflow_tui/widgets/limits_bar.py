"""LimitsBar: a line per rate limit under the header, shown only when the run has any."""

from __future__ import annotations

from typing import TYPE_CHECKING

from rich.console import Group
from textual.widget import Widget

if TYPE_CHECKING:
    from rich.console import RenderableType
    from rich.text import Text


class LimitsBar(Widget):
    """The lines of `antflow_tui.gauges.limit_lines`, hidden while there are none.

    A plain widget whose height follows its lines, as `SummaryBar`: a `Static` would lay
    the whole screen out again at every update (a gauge moves every frame).
    """

    DEFAULT_CSS = """
    LimitsBar {
        height: 1;
        display: none;
    }
    """

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self._lines: tuple[Text, ...] = ()

    def show(self, lines: tuple[Text, ...]) -> None:
        if lines == self._lines:
            return
        if len(lines) != len(self._lines):
            # A limit came or went (rare, so a layout is fine).
            self.styles.height = max(len(lines), 1)
            self.display = bool(lines)
        self._lines = lines
        self.refresh()

    @property
    def text(self) -> str:
        """What the bar shows, as plain text."""
        return "\n".join(line.plain for line in self._lines)

    def render(self) -> RenderableType:
        return Group(*self._lines)
