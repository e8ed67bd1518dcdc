"""ExportScreen (`e`): where to write the export; shows the path and lets the user change
it (`ask_and_export`)."""

from __future__ import annotations

import tempfile
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar

from textual import on
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Input, Static

from antflow_tui.formatting import plural
from antflow_tui.keys import bindings

if TYPE_CHECKING:
    from textual.app import ComposeResult
    from textual.binding import BindingType

    from antflow_tui.app import AntflowApp


class ExportScreen(ModalScreen[Path | None]):
    """Ask for the export's path; dismisses with it (None when cancelled).

    Args:
        proposed: The path shown first (the last one used, --export, or a new file).
        error: Why the last attempt failed, shown above the path.
    """

    BINDINGS: ClassVar[list[BindingType]] = bindings("export")

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


def ask_and_export(app: AntflowApp) -> None:
    """`e`: ask where to write the export (proposing the last path used, --export, or a
    new file in the current folder), then write it there; in a browser, download it."""
    if app.is_web:
        _deliver(app)
        return
    proposed = app.export_path or app.options.export
    if proposed is None:
        proposed = Path.cwd() / _new_name()

    def chosen(path: Path | None) -> None:
        if path is None:
            return
        try:
            count = app.write_export(path)
        except OSError as error:
            reason = error.strerror or str(error)
            again = ExportScreen(path, error=f"Could not write {path}: {reason}")
            app.push_screen(again, chosen)
            return
        app.export_path = path
        app.notify(f"Exported {plural(count or 0, 'item')} to {path}", timeout=5, markup=False)

    app.push_screen(ExportScreen(proposed.resolve()), chosen)


def _deliver(app: AntflowApp) -> None:
    """In a browser (``antflow-tui web``): the export downloads through the page; the
    server's disk and stdout (the page's channel) are left alone."""
    name = _new_name()
    with tempfile.TemporaryDirectory(prefix="antflow-export-") as folder:
        path = Path(folder) / name
        count = app.source.export(path, app.state)
        # Opened here, read by the driver's thread: the file may go at once.
        app.deliver_binary(path, save_filename=name, mime_type="application/x-ndjson")
    app.notify(f"Exported {plural(count, 'item')}: {name}", timeout=5, markup=False)


def _new_name() -> str:
    return f"antflow-export-{datetime.now():%Y%m%d-%H%M%S}.jsonl"
