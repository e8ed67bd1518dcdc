"""GotoScreen (`:`): type an item id, open its item screen."""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

from textual import on
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Input, Static

from antflow_tui.keys import bindings

if TYPE_CHECKING:
    from textual.app import ComposeResult
    from textual.binding import BindingType


class GotoScreen(ModalScreen[str | None]):
    """Ask for an item id; dismisses with the text typed (None when cancelled)."""

    BINDINGS: ClassVar[list[BindingType]] = bindings("goto")

    DEFAULT_CSS = """
    GotoScreen {
        align: center middle;
    }
    GotoScreen > Vertical {
        width: 60;
        max-width: 90%;
        height: auto;
        border: thick $accent;
        background: $surface;
        padding: 0 1;
    }
    """

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Static("Go to item (its id, as the log shows it):", markup=False)
            yield Input(id="goto-input", placeholder="42  or  page-17")

    def on_mount(self) -> None:
        self.query_one(Input).focus()

    @on(Input.Submitted)
    def _submitted(self, event: Input.Submitted) -> None:
        self.dismiss(event.value.strip() or None)
