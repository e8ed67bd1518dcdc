"""HelpScreen (? or F1): every key, as currently bound (keymaps included)."""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

from rich.table import Table
from rich.text import Text
from textual.binding import Binding, BindingType
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static

from antflow_tui.keys import key_for
from antflow_tui.present import BOTTLENECK_MARK, WORKER_LEGEND, WORKER_MARKS, WORKER_STYLES

if TYPE_CHECKING:
    from textual.app import ComposeResult

# (binding id, what it does), grouped as the help shows them. Keys come from the live
# bindings, so a remapped key shows as remapped.
HELP_SECTIONS: tuple[tuple[str, tuple[tuple[str, str], ...]], ...] = (
    (
        "Run",
        (
            (
                "pause",
                "pause/resume what has focus: a stage, a worker, or the whole run (a "
                "paused run resumes from anywhere)",
            ),
            ("freeze", "freeze the display (work continues)"),
            (
                "stop",
                "stop the run gracefully; press again to force (and to quit at once while "
                "the script blocks the event loop)",
            ),
            ("quit", "quit (asks first while the run is active)"),
        ),
    ),
    (
        "Move",
        (
            ("panel-1", "stages panel"),
            ("panel-2", "workers panel"),
            ("panel-3", "errors panel"),
            ("panel-4", "events panel"),
            ("", "tab / shift+tab: next / previous panel"),
            ("", "↑↓ j/k g/G PgUp/PgDn: move inside a panel"),
        ),
    ),
    (
        "Look closer",
        (
            ("", "enter: open the selected stage, worker, failure or event's item"),
            ("back", "go back one level"),
            ("goto", "go to an item by id"),
            ("filter", "filter the focused panel: text, status:, stage:, item:, error:"),
            ("clear-filter", "clear the focused panel's filter"),
            ("follow", "follow new events in the event log (on/off)"),
        ),
    ),
    (
        "Act",
        (
            ("retry", "retry the selected failed item where it failed"),
            ("retry-all", "retry every failed item in the error panel's filter (asks first)"),
            ("export", "export results, failures and unfinished items as JSON Lines (asks where)"),
            ("help", "this help"),
            ("", "ctrl+p: every command, searchable"),
        ),
    ),
)


class HelpScreen(ModalScreen[None]):
    """Every key and what it does."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,q,question_mark,f1", "dismiss", "Close", id="help.close"),
    ]

    DEFAULT_CSS = """
    HelpScreen {
        align: center middle;
    }
    HelpScreen > VerticalScroll {
        width: 90;
        max-width: 95%;
        height: auto;
        max-height: 90%;
        border: thick $accent;
        background: $surface;
        padding: 0 1;
    }
    """

    def compose(self) -> ComposeResult:
        with VerticalScroll():
            yield Static(self._table(), id="help-table")

    def on_mount(self) -> None:
        self.query_one(VerticalScroll).border_title = "antflow-tui keys (esc closes)"

    def _table(self) -> Table:
        table = Table(box=None, show_header=False, pad_edge=False, padding=(0, 2))
        table.add_column(style="bold cyan", no_wrap=True)
        table.add_column()
        for title, rows in HELP_SECTIONS:
            table.add_row(Text(title, style="bold underline"), "")
            for binding_id, meaning in rows:
                if binding_id:
                    table.add_row(key_for(self.app, binding_id), meaning)
                else:
                    key, _, rest = meaning.partition(": ")
                    table.add_row(key, rest)
            table.add_row("", "")
        table.add_row(Text("Marks", style="bold underline"), "")
        for look, word, meaning in WORKER_LEGEND:
            mark = Text(f"{WORKER_MARKS[look]} {word}", style=WORKER_STYLES[look])
            table.add_row(mark, f"worker: {meaning}")
        table.add_row(
            Text(f"{BOTTLENECK_MARK} bottleneck", style="bold red"),
            "stage: every worker busy and its queue full or growing",
        )
        table.add_row(Text("‖ paused", style="yellow"), "stage: paused")
        return table
