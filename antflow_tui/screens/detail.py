"""DetailScreen: what the item, worker and stage screens share: going back, scrolling,
and the source and state they read from."""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

from textual.containers import VerticalScroll
from textual.widgets import Static

from antflow_tui.keys import bindings
from antflow_tui.screens.base import RunScreen

if TYPE_CHECKING:
    from collections.abc import Callable

    from rich.console import RenderableType
    from textual.binding import BindingType

    from antflow_tui.source.base import RunSource
    from antflow_tui.source.state import RunState


class DetailScreen(RunScreen):
    """A drill-down screen: escape goes back; j/k, g/G scroll its body (if it has one).

    Subclasses implement `refresh_view`, which the app calls every frame.
    """

    BINDINGS: ClassVar[list[BindingType]] = bindings("detail")

    def __init__(self, source: RunSource, state: RunState) -> None:
        super().__init__(source, state, classes="detail")
        self._shown: dict[str, object] = {}

    def show_section(self, selector: str, key: object, build: Callable[[], RenderableType]) -> None:
        """Update a section only when `key` (what it is built from) changed: each
        `Static.update` lays the screen out again."""
        if self._shown.get(selector, self) == (key, self.palette):
            return
        self._shown[selector] = (key, self.palette)
        self.query_one(selector, Static).update(build())

    def _body(self) -> VerticalScroll | None:
        found = self.query(".detail-body")
        return found.first(VerticalScroll) if found else None

    def action_scroll(self, lines: int) -> None:
        body = self._body()
        if body is not None:
            body.scroll_relative(y=lines, animate=False)

    def action_scroll_home(self) -> None:
        body = self._body()
        if body is not None:
            body.scroll_home(animate=False)

    def action_scroll_end(self) -> None:
        body = self._body()
        if body is not None:
            body.scroll_end(animate=False)
