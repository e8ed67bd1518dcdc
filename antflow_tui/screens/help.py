"""HelpScreen (? or F1): every key, as currently bound (keymaps included)."""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

from rich.table import Table
from rich.text import Text
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static

from antflow_tui import keys
from antflow_tui.keys import bindings, key_for
from antflow_tui.palette import COMPONENT_CLASSES, palette_of
from antflow_tui.present import BOTTLENECK_MARK, WORKER_LEGEND, WORKER_MARKS
from antflow_tui.source.base import Can

if TYPE_CHECKING:
    from textual.app import ComposeResult
    from textual.binding import BindingType

# (binding id, what it does), grouped as the help shows them. Keys come from the live
# bindings, so a remapped key shows as remapped.
HELP_SECTIONS: tuple[tuple[str, tuple[tuple[str, str], ...]], ...] = (
    (
        "Replay",
        (
            ("replay.play", "play / pause the replay"),
            ("replay.back", "step back one second"),
            ("replay.forward", "step forward one second"),
            ("replay.jump-back", "jump back ten seconds"),
            ("replay.jump-forward", "jump forward ten seconds"),
            ("replay.slower", "play slower (halves the speed)"),
            ("replay.faster", "play faster (doubles the speed)"),
            ("replay.seek", "seek to a time: 1:23, 83 (seconds in), +10, -5, 50%"),
        ),
    ),
    (
        "Run",
        (
            ("pause", "pause/resume the whole run, on every screen"),
            (
                "pause-selected",
                "pause/resume the selected stage or worker (on a stage or worker screen: "
                "that one); pauses end with the run",
            ),
            ("freeze", "freeze the display (work continues)"),
            (
                "stop",
                "stop the run gracefully; press again to force (and to quit at once while "
                "the script blocks the event loop); once the run is over, quit",
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
            ("switch", "switch pipeline: 1, 2, ..., all of them (with several)"),
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
            (
                "filter",
                "filter the focused panel: text, status:, stage:, item:, error:, "
                "level:warning (that level and worse); opens holding the current filter",
            ),
            ("clear-filter", "clear the focused panel's filter (leave an opened error group)"),
            ("follow", "follow new events in the event log (on/off)"),
            (
                "view-line",
                "show the selected event log line or error row whole (wrapped; c copies it)",
            ),
            ("sort", "sort the focused table (stages, errors) by its next column"),
            ("reverse-sort", "sort the focused table the other way"),
            (
                "group-errors",
                "errors: group failures by type and message (numbers, ids, URLs masked); "
                "enter lists a group's items; attempts tried again follow, marked ↻",
            ),
            (
                "item.frames",
                "an item's tracebacks: show every frame (library frames fold into one line; "
                "your own frames are marked ›)",
            ),
            ("item.copy", "an item's screen: copy its last traceback to the clipboard"),
            (
                "item.edit",
                "an item's screen: open your code where it failed, in $VISUAL or $EDITOR (else vi)",
            ),
        ),
    ),
    (
        "Act",
        (
            ("retry", "retry the selected failed item where it failed"),
            (
                "retry-all",
                "retry every failed item in the error panel's filter, or the selected "
                "group's (asks first)",
            ),
            (
                "concurrency-down",
                "the selected stage makes fewer calls at once (one fewer than now; on its "
                "screen too)",
            ),
            (
                "concurrency-up",
                "the selected stage may make more calls at once (up to its workers; an "
                "adaptive stage adapts below it)",
            ),
            (
                "raise-budget",
                "raise the run's budget, in $ or tokens (asks how much): a run paused by it "
                "goes on, nothing lost",
            ),
            ("export", "export results, failures and unfinished items as JSON Lines (asks where)"),
            ("help", "every key and what it does (this screen)"),
            ("", "ctrl+p: every command, searchable"),
        ),
    ),
)

MEANINGS: dict[str, str] = {
    binding_id: meaning
    for _title, rows in HELP_SECTIONS
    for binding_id, meaning in rows
    if binding_id
}
"""Binding id -> what it does, in the help's words (the command palette's help lines)."""

ONLY_WITH: dict[str, Can] = {"stop": Can.STOP}
"""Keys that work on every run, told of only where they do what the help says (ctrl+c
quits a run it cannot stop)."""


def needed(binding_id: str) -> Can | None:
    """What the source must be able to do for the help to list this key."""
    return ONLY_WITH.get(binding_id) or keys.needed(binding_id)


class HelpScreen(ModalScreen[None]):
    """Every key and what it does (those the run's source can act on).

    Args:
        capabilities: What the source can do (`RunSource.capabilities`).
    """

    COMPONENT_CLASSES: ClassVar[set[str]] = set(COMPONENT_CLASSES)

    BINDINGS: ClassVar[list[BindingType]] = bindings("help")

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

    def __init__(self, capabilities: frozenset[Can] = frozenset(Can)) -> None:
        super().__init__()
        self.capabilities = capabilities

    def compose(self) -> ComposeResult:
        with VerticalScroll():
            yield Static(id="help-table")

    def on_mount(self) -> None:
        # Built once mounted: the data colours come from the theme's styles then.
        self.query_one("#help-table", Static).update(self._table())
        self.query_one(VerticalScroll).border_title = "antflow-tui keys (esc closes)"

    def _table(self) -> Table:
        table = Table(box=None, show_header=False, pad_edge=False, padding=(0, 2))
        table.add_column(style="bold cyan", no_wrap=True)
        table.add_column()
        palette = palette_of(self)
        for title, every_row in HELP_SECTIONS:
            rows = [
                (binding_id, meaning)
                for binding_id, meaning in every_row
                if needed(binding_id) in (None, *self.capabilities)
            ]
            if not rows:
                continue
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
            mark = Text(f"{WORKER_MARKS[look]} {word}", style=palette.look(look))
            table.add_row(mark, f"worker: {meaning}")
        table.add_row(
            Text(f"{BOTTLENECK_MARK} bottleneck", style=palette("bottleneck")),
            "stage: every worker busy and its queue full or growing",
        )
        table.add_row(Text("‖ paused", style=palette("held")), "stage: paused")
        return table
