"""LineScreen: one line whole (a log line, a failure's message), wrapped and scrollable."""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

from rich.text import Text
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Footer, Static

from antflow_tui.keys import bindings, key_for
from antflow_tui.palette import COMPONENT_CLASSES

if TYPE_CHECKING:
    from textual.app import ComposeResult
    from textual.binding import BindingType

    from antflow_tui.whole_line import WholeLine


class LineScreen(ModalScreen[None]):
    """A line the panels cut to one row, shown whole (`antflow_tui.whole_line`).

    The mouse selects its text too (the terminal's own selection: shift and drag in most).
    """

    COMPONENT_CLASSES: ClassVar[set[str]] = set(COMPONENT_CLASSES)

    BINDINGS: ClassVar[list[BindingType]] = bindings("line")

    DEFAULT_CSS = """
    LineScreen {
        align: center middle;
    }
    LineScreen > VerticalScroll {
        width: 100;
        max-width: 95%;
        height: auto;
        max-height: 85%;
        border: thick $accent;
        background: $surface;
        padding: 0 1;
    }
    """

    def __init__(self, line: WholeLine) -> None:
        super().__init__()
        self.line = line

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="line-body"):
            yield Static(self.line.body, id="line-text", markup=False)
        yield Footer()

    def on_mount(self) -> None:
        body = self.query_one(VerticalScroll)
        # A Text: the title holds user data (an item id), which a str would read as markup.
        body.border_title = Text(self.line.title)
        close, copy = key_for(self.app, "line.close").split()[0], key_for(self.app, "line.copy")
        body.border_subtitle = Text(f"{close} closes · {copy} copies")
        body.focus()

    def action_copy(self) -> None:
        self.app.copy_to_clipboard(self.line.copy)
        self.notify("Copied to the clipboard.", timeout=2, markup=False)

    def action_scroll(self, lines: int) -> None:
        self.query_one(VerticalScroll).scroll_relative(y=lines, animate=False)
