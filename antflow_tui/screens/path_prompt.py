"""PathPrompt: a dialog asking for a file path to write to (the export's `e`, compare's
`w`); dismisses with the path, or None when cancelled."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from textual import on
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Input, Static

if TYPE_CHECKING:
    from textual.app import ComposeResult


class PathPrompt(ModalScreen[Path | None]):
    """Ask for a path; a subclass gives its words, its title and its ids' prefix.

    Args:
        proposed: The path shown first.
        error: Why the last attempt failed, shown above the path.
    """

    DEFAULT_CSS = """
    PathPrompt {
        align: center middle;
    }
    PathPrompt > Vertical {
        width: 90;
        max-width: 95%;
        height: auto;
        border: thick $accent;
        background: $surface;
        padding: 0 1;
    }
    PathPrompt .path-error {
        color: $error;
    }
    """

    TITLE_TEXT = ""
    """The dialog's border title."""
    ID_PREFIX = "path"
    """Its widgets' ids: ``<prefix>-error`` and ``<prefix>-path``."""
    EMPTY = "Type a file path to write to."
    """What an empty path is told."""

    def __init__(self, proposed: Path, *, error: str | None = None) -> None:
        super().__init__()
        self._proposed = proposed
        self._error = error

    def prompt(self) -> str:
        """The question above the path."""
        raise NotImplementedError

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Static(self.prompt(), markup=False)
            if self._error:
                yield Static(
                    self._error, id=f"{self.ID_PREFIX}-error", classes="path-error", markup=False
                )
            yield Input(value=str(self._proposed), id=f"{self.ID_PREFIX}-path")

    def on_mount(self) -> None:
        self.query_one(Vertical).border_title = self.TITLE_TEXT
        self.query_one(Input).focus()

    @on(Input.Submitted)
    def _submitted(self, event: Input.Submitted) -> None:
        text = event.value.strip()
        if not text:
            self.notify(self.EMPTY, severity="warning", markup=False)
            return
        self.dismiss(Path(text).expanduser())
