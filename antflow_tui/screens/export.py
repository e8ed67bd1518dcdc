"""ExportScreen (`e`): where to write the export; shows the path and lets the user change it."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, ClassVar

from textual import on
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Input, Static

if TYPE_CHECKING:
    from textual.app import ComposeResult


class ExportScreen(ModalScreen[Path | None]):
    """Ask for the export's path; dismisses with it (None when cancelled).

    Args:
        proposed: The path shown first (the last one used, --export, or a new file).
        error: Why the last attempt failed, shown above the path.
    """

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "dismiss(None)", "Cancel", id="export.cancel"),
    ]

    DEFAULT_CSS = """
    ExportScreen {
        align: center middle;
    }
    ExportScreen > Vertical {
        width: 90;
        max-width: 95%;
        height: auto;
        border: thick $accent;
        background: $surface;
        padding: 0 1;
    }
    ExportScreen #export-error {
        color: $error;
    }
    """

    def __init__(self, proposed: Path, *, error: str | None = None) -> None:
        super().__init__()
        self._proposed = proposed
        self._error = error

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Static(
                "Export results, failures and unfinished items as JSON Lines to "
                "(enter writes, esc cancels):",
                markup=False,
            )
            if self._error:
                yield Static(self._error, id="export-error", markup=False)
            yield Input(value=str(self._proposed), id="export-path")

    def on_mount(self) -> None:
        self.query_one(Vertical).border_title = "Export"
        self.query_one(Input).focus()

    @on(Input.Submitted)
    def _submitted(self, event: Input.Submitted) -> None:
        text = event.value.strip()
        if not text:
            self.notify("Type a file path to export to.", severity="warning", markup=False)
            return
        self.dismiss(Path(text).expanduser())
