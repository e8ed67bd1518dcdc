"""ConfirmScreen: a yes/no question; dismisses with True or False."""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Static

from antflow_tui.keys import bindings, key_for

if TYPE_CHECKING:
    from collections.abc import Callable

    from textual.app import ComposeResult
    from textual.binding import BindingType


class ConfirmScreen(ModalScreen[bool]):
    """Ask before doing something that cannot be undone."""

    BINDINGS: ClassVar[list[BindingType]] = bindings("confirm")

    DEFAULT_CSS = """
    ConfirmScreen {
        align: center middle;
    }
    ConfirmScreen > Vertical {
        width: 64;
        max-width: 90%;
        height: auto;
        border: thick $warning;
        background: $surface;
        padding: 1 2;
    }
    ConfirmScreen Horizontal {
        height: auto;
        align-horizontal: right;
        margin-top: 1;
    }
    ConfirmScreen Button {
        margin-left: 2;
    }
    """

    def __init__(self, question: str | Callable[[], str], *, confirm: str = "Yes") -> None:
        """`question`: the words, or a function giving them now (numbers that move while
        the dialog is open: it asks again every half second)."""
        super().__init__()
        self._question = question
        self._confirm = confirm

    def _words(self) -> str:
        return self._question if isinstance(self._question, str) else self._question()

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Static(self._words(), markup=False, id="question")
            with Horizontal():
                no, yes = key_for(self.app, "confirm.no"), key_for(self.app, "confirm.yes")
                yield Button(f"Cancel ({no.split()[0]})", id="no")
                yield Button(f"{self._confirm} ({yes})", id="yes", variant="warning")

    def on_mount(self) -> None:
        self.query_one("#no", Button).focus()
        if not isinstance(self._question, str):
            self.set_interval(0.5, self._ask_again)

    def _ask_again(self) -> None:
        words = self._words()
        shown = self.query_one("#question", Static)
        if str(shown.content) != words:
            shown.update(words)

    def on_button_pressed(self, event: Button.Pressed) -> None:
        self.dismiss(event.button.id == "yes")

    def action_answer(self, answer: bool) -> None:
        self.dismiss(answer)
