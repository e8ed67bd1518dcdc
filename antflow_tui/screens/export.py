"""ExportScreen (`e`): where to write the export; shows the path and lets the user change
it (`ask_and_export`)."""

from __future__ import annotations

import tempfile
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar

from antflow_tui.formatting import plural
from antflow_tui.keys import bindings
from antflow_tui.screens.path_prompt import PathPrompt

if TYPE_CHECKING:
    from textual.binding import BindingType

    from antflow_tui.app import AntflowApp


class ExportScreen(PathPrompt):
    """Ask for the export's path; dismisses with it (None when cancelled).

    Args:
        proposed: The path shown first (the last one used, --export, or a new file).
        error: Why the last attempt failed, shown above the path.
    """

    BINDINGS: ClassVar[list[BindingType]] = bindings("export")
    TITLE_TEXT = "Export"
    ID_PREFIX = "export"
    EMPTY = "Type a file path to export to."

    def prompt(self) -> str:
        return (
            "Export results, failures and unfinished items as JSON Lines to "
            "(enter writes, esc cancels):"
        )


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
