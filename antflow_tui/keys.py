"""Every key of the app, as data: the screens and panels look theirs up here.

Each binding a user may remap has an id (Textual keymaps), e.g.
``antflow-tui --keymap "pause=space,retry=t" script.py``. A key's `needs` names what the
run's source must be able to do for it to work (`antflow_tui.source.base.Can`); without
it the key is hidden. Keys are grouped by where they are bound (`KEYS`), and `SCREENS`
says which groups are active together, so a --keymap can be checked for keys it would
take from another binding (`antflow_tui.keymap`) without building a screen.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

from textual.binding import Binding

from antflow_tui.source.base import Can

if TYPE_CHECKING:
    from collections.abc import Mapping

    from textual.app import App
    from textual.binding import BindingType


@dataclass(frozen=True, slots=True)
class Key:
    """One binding, as data."""

    keys: str
    """Its default key(s), comma-separated."""
    action: str
    description: str
    """What the footer calls it."""
    id: str | None = None
    """The id a --keymap names it by (None: it cannot be remapped)."""
    show: bool = True
    """Shown in the footer."""
    tooltip: str = ""
    """The command palette's title for it (default: its description)."""
    priority: bool = False
    """Works whatever has focus (checked before the focused widget's keys)."""
    needs: Can | None = None
    """What the source must be able to do for the key to work (else it is hidden)."""

    def binding(self) -> Binding:
        return Binding(
            self.keys,
            self.action,
            self.description,
            show=self.show,
            tooltip=self.tooltip,
            priority=self.priority,
            id=self.id,
        )


_REPLAY = Can.SEEK

KEYS: Final[Mapping[str, tuple[Key, ...]]] = {
    "app": (
        Key("q", "quit", "Quit", id="quit"),
        Key("ctrl+q", "quit", "Quit", show=False, priority=True, id="quit-now"),
        Key("ctrl+c", "stop", "Stop the run", show=False, priority=True, id="stop"),
        Key("colon", "goto", "Go to", tooltip="Go to an item by id", id="goto"),
        Key("z", "toggle_freeze", "Freeze", tooltip="Freeze the display", id="freeze"),
        Key("e", "export", "Export", show=False, id="export"),
        Key("question_mark,f1", "help", "Help", id="help"),
        # Not in the footer: the footer of an attached run reads as the live one's.
        Key("X", "stop_job", "Stop the job", show=False, id="stop-job", needs=Can.STOP_JOB),
        # Not in the footer either (it is full): the banner names it when the run needs it.
        Key(
            "B",
            "raise_budget",
            "Raise budget",
            show=False,
            tooltip="Raise the run's budget (a run paused by it goes on)",
            id="raise-budget",
            needs=Can.BUDGET,
        ),
        # A replay's scrubber: from any panel (a priority binding), but not while typing.
        Key("space", "play", "Play/pause", priority=True, id="replay.play", needs=_REPLAY),
        Key(
            "left",
            "step(-1)",
            "Back 1s",
            show=False,
            priority=True,
            id="replay.back",
            needs=_REPLAY,
        ),
        Key(
            "right",
            "step(1)",
            "On 1s",
            show=False,
            priority=True,
            id="replay.forward",
            needs=_REPLAY,
        ),
        Key(
            "left_square_bracket",
            "jump(-1)",
            "Back 10s",
            show=False,
            id="replay.jump-back",
            needs=_REPLAY,
        ),
        Key(
            "right_square_bracket",
            "jump(1)",
            "On 10s",
            show=False,
            id="replay.jump-forward",
            needs=_REPLAY,
        ),
        Key("less_than_sign", "speed(-1)", "Slower", show=False, id="replay.slower", needs=_REPLAY),
        Key(
            "greater_than_sign", "speed(1)", "Faster", show=False, id="replay.faster", needs=_REPLAY
        ),
        Key("t", "seek", "Seek", tooltip="Seek to a time", id="replay.seek", needs=_REPLAY),
    ),
    # Every screen of a run (`RunScreen`).
    "run": (
        Key(
            "p",
            "pause_run",
            "Pause run",
            tooltip="Pause or resume the run",
            id="pause",
            needs=Can.PAUSE,
        ),
    ),
    "main": (
        # A tooltip is the command palette's title for a key (see antflow_tui.commands).
        Key(
            "P",
            "toggle_pause",
            "Pause selected",
            show=False,
            tooltip="Pause or resume the selected stage or worker",
            id="pause-selected",
            needs=Can.PAUSE,
        ),
        Key("s", "switch_pipeline", "Pipeline", tooltip="Switch pipeline", id="switch"),
        Key(
            "r",
            "retry",
            "Retry",
            tooltip="Retry the selected failed item",
            id="retry",
            needs=Can.RETRY,
        ),
        Key("R", "retry_all", "Retry all", show=False, id="retry-all", needs=Can.RETRY),
        # Not in the footer here (it is full): the stage screen's shows them.
        Key(
            "minus",
            "concurrency(-1)",
            "Fewer calls",
            show=False,
            tooltip="Fewer calls at once in the selected stage",
            id="concurrency-down",
            needs=Can.CONCURRENCY,
        ),
        Key(
            "plus",
            "concurrency(1)",
            "More calls",
            show=False,
            tooltip="More calls at once in the selected stage",
            id="concurrency-up",
            needs=Can.CONCURRENCY,
        ),
        Key("slash", "filter", "Filter", id="filter"),
        Key("f", "toggle_follow", "Follow new events", show=False, id="follow"),
        Key("v", "view_line", "Full line", id="view-line"),
        Key("c", "toggle_groups", "Group errors", show=False, id="group-errors"),
        Key("o,f6", "sort", "Sort", show=False, id="sort"),
        Key("O", "reverse_sort", "Reverse sort", show=False, id="reverse-sort"),
        Key("escape", "clear_filter", "Clear filter", show=False, id="clear-filter"),
        Key("1", "focus_panel('stage-table')", "Focus Stages", show=False, id="panel-1"),
        Key("2", "focus_panel('worker-grid')", "Focus Workers", show=False, id="panel-2"),
        Key("3", "focus_panel('error-panel')", "Focus Errors", show=False, id="panel-3"),
        Key("4", "focus_panel('event-log')", "Focus Events", show=False, id="panel-4"),
    ),
    # The drill-down screens' own (`DetailScreen`).
    "detail": (
        Key("escape", "app.pop_screen", "Back", id="back"),
        Key("j,down", "scroll(1)", "Down", show=False),
        Key("k,up", "scroll(-1)", "Up", show=False),
        Key("g,home", "scroll_home", "Top", show=False),
        Key("G,end", "scroll_end", "Bottom", show=False),
    ),
    "item": (
        Key("r", "retry", "Retry", id="item.retry", needs=Can.RETRY),
        Key("v", "toggle_value", "Full value", id="item.value", needs=Can.VALUES),
        Key("enter", "toggle_frames", "All frames", id="item.frames"),
        Key("c", "copy_traceback", "Copy", tooltip="Copy the traceback", id="item.copy"),
        Key("o", "open_editor", "Editor", tooltip="Open your code where it failed", id="item.edit"),
    ),
    "worker": (
        Key("P", "toggle_pause", "Pause worker", id="worker.pause", needs=Can.PAUSE),
        Key("enter", "open_item", "Open item", id="worker.open-item"),
    ),
    "stage": (
        Key("P", "toggle_pause", "Pause stage", id="stage.pause", needs=Can.PAUSE),
        Key("r", "retry", "Retry", id="stage.retry", needs=Can.RETRY),
        Key(
            "minus",
            "concurrency(-1)",
            "Fewer calls",
            tooltip="Fewer calls at once in this stage",
            id="stage.concurrency-down",
            needs=Can.CONCURRENCY,
        ),
        Key(
            "plus",
            "concurrency(1)",
            "More calls",
            tooltip="More calls at once in this stage",
            id="stage.concurrency-up",
            needs=Can.CONCURRENCY,
        ),
    ),
    "confirm": (
        Key("y", "answer(True)", "Yes", id="confirm.yes"),
        Key("n,escape", "answer(False)", "No", id="confirm.no"),
    ),
    "help": (Key("escape,q,question_mark,f1", "dismiss", "Close", id="help.close"),),
    "export": (Key("escape", "dismiss(None)", "Cancel", id="export.cancel"),),
    "goto": (Key("escape", "dismiss(None)", "Cancel", id="goto.cancel"),),
    "budget": (Key("escape", "dismiss(None)", "Cancel", id="budget.cancel"),),
    "seek": (Key("escape", "dismiss(None)", "Cancel", id="seek.cancel"),),
    "line": (
        Key("escape,q,v", "dismiss", "Close", id="line.close"),
        Key("c", "copy", "Copy", tooltip="Copy the line", id="line.copy"),
        Key("j", "scroll(1)", "Down", show=False),
        Key("k", "scroll(-1)", "Up", show=False),
    ),
    # antflow-tui runs: the run history's list (its own app, `antflow_tui.runs`).
    "runs": (
        Key("r", "resume", "Resume", tooltip="Resume the selected run", id="runs.resume"),
        Key("d,delete", "delete", "Delete", tooltip="Delete the selected run", id="runs.delete"),
        Key(
            "slash", "filter", "Filter", tooltip="Filter by script, status or id", id="runs.filter"
        ),
        Key("m", "mark", "Mark", tooltip="Mark a run to compare (two at most)", id="runs.mark"),
        Key("c", "compare", "Compare", tooltip="Compare the two marked runs", id="runs.compare"),
        Key("escape", "clear_filter", "Clear filter", show=False, id="runs.clear-filter"),
        Key("q", "quit", "Quit", id="runs.quit"),
        Key("ctrl+c", "quit", "Quit", show=False, priority=True, id="runs.quit-now"),
    ),
    # The runs list's own: enter replays (over the list's "open").
    "run-list": (
        Key("enter", "choose", "Replay", tooltip="Replay the selected run", id="runs.replay"),
    ),
    # `antflow-tui compare A B`: an app of its own (none of the run's keys).
    "compare": (
        Key("q", "app.quit", "Quit", id="compare.quit"),
        Key(
            "f", "next_kind", "Show", tooltip="Show one kind of change at a time", id="compare.show"
        ),
        Key("d", "toggle_changed", "Changes only", id="compare.changed"),
        Key(
            "w",
            "write_failed",
            "Write failed",
            tooltip="Write the newly failed items for --retry-from",
            id="compare.write",
        ),
    ),
    # The compare screen's item list (it has the focus): its enter is shown, where the
    # row list's own is not (a focused widget's binding hides the screen's same key).
    "compare-list": (
        Key(
            "enter",
            "choose",
            "Both stories",
            tooltip="Open the item's story in both runs",
            id="compare.open",
        ),
    ),
    "compare-item": (
        Key("escape", "app.pop_screen", "Back", id="compare.back"),
        Key("s", "toggle_layout", "Side by side", id="compare.layout"),
        Key("j,down", "scroll(1)", "Down", show=False),
        Key("k,up", "scroll(-1)", "Up", show=False),
    ),
    "compare-write": (Key("escape", "dismiss(None)", "Cancel", id="compare.write-cancel"),),
    # Panels: their keys move inside them, and win over the screen's while they have focus.
    "stage-table": (
        Key("j", "cursor_down", "Down", show=False),
        Key("k", "cursor_up", "Up", show=False),
        Key("g", "scroll_top", "First", show=False),
        Key("G", "scroll_bottom", "Last", show=False),
    ),
    "worker-grid": (
        Key("left,h", "move(-1, 0)", "Left", show=False),
        Key("right,l", "move(1, 0)", "Right", show=False),
        Key("up,k", "move(0, -1)", "Up", show=False),
        Key("down,j", "move(0, 1)", "Down", show=False),
        Key("pageup", "page(-1)", "Page up", show=False),
        Key("pagedown", "page(1)", "Page down", show=False),
        Key("home,g", "first", "First", show=False),
        Key("end,G", "last", "Last", show=False),
        Key("enter", "choose", "Open", show=False),
    ),
    "row-list": (
        Key("up,k", "cursor_up", "Up", show=False),
        Key("down,j", "cursor_down", "Down", show=False),
        Key("pageup", "page_up", "Page up", show=False),
        Key("pagedown", "page_down", "Page down", show=False),
        Key("home,g", "first", "First", show=False),
        Key("end,G", "last", "Last", show=False),
        Key("enter", "choose", "Open", show=False),
    ),
}
"""Where each key is bound -> its keys, in footer order."""

SCROLL: Final = "scroll"
"""A scrolling body (Textual's `VerticalScroll`): its own keys are Textual's."""


@dataclass(frozen=True, slots=True)
class ScreenKeys:
    """Which keys are active together on one screen."""

    words: str
    """What a message calls it: 'main screen'."""
    groups: tuple[str, ...]
    """Its own key groups (`KEYS`), its bases' first."""
    panels: tuple[str, ...] = ()
    """The panels that take focus there (a group of `KEYS`, or `SCROLL`)."""
    modal: bool = False
    """A dialog: it takes none of the app's keys."""
    own_app: bool = False
    """A screen of another app than the run's (``antflow-tui runs``): the run app's keys
    are not there."""


SCREENS: Final[tuple[ScreenKeys, ...]] = (
    ScreenKeys("main screen", ("run", "main"), ("stage-table", "worker-grid", "row-list")),
    ScreenKeys("item screen", ("run", "detail", "item"), (SCROLL,)),
    ScreenKeys("worker screen", ("run", "detail", "worker"), (SCROLL,)),
    ScreenKeys("stage screen", ("run", "detail", "stage"), (SCROLL, "row-list")),
    ScreenKeys("confirm screen", ("confirm",), modal=True),
    ScreenKeys("help screen", ("help",), (SCROLL,), modal=True),
    ScreenKeys("export screen", ("export",), modal=True),
    ScreenKeys("goto screen", ("goto",), modal=True),
    ScreenKeys("budget screen", ("budget",), modal=True),
    ScreenKeys("seek screen", ("seek",), modal=True),
    ScreenKeys("line screen", ("line",), (SCROLL,), modal=True),
    ScreenKeys("runs screen", ("run-list", "runs"), ("row-list",), own_app=True),
    # The compare app's screens: no key of the run app's is bound there (hence modal).
    ScreenKeys("compare screen", ("compare",), ("compare-list", "row-list", SCROLL), modal=True),
    ScreenKeys("compare item screen", ("compare-item",), (SCROLL,), modal=True),
    ScreenKeys("compare write screen", ("compare-write",), modal=True),
)
"""Every screen, for the keymap's checks (`antflow_tui.keymap`)."""


def bindings(group: str) -> list[BindingType]:
    """A class's BINDINGS: the keys of one group of `KEYS`."""
    return [key.binding() for key in KEYS[group]]


def needs(*groups: str) -> dict[str, Can]:
    """Action name -> what the source must be able to do for it, in these groups."""
    return {
        _action_name(key.action): key.needs
        for group in groups
        for key in KEYS[group]
        if key.needs is not None
    }


def needed(binding_id: str) -> Can | None:
    """What the source must be able to do for the binding with this id to work."""
    return next((key.needs for keys in KEYS.values() for key in keys if key.id == binding_id), None)


def default_keys() -> dict[str, str]:
    """Binding id -> its default key(s), across the app and all its screens."""
    found: dict[str, str] = {}
    for keys in KEYS.values():
        for key in keys:
            if key.id:
                found.setdefault(key.id, key.keys)
    return found


def key_for(app: App[Any], binding_id: str) -> str:
    """The key(s) bound to `binding_id` now (a keymap's choice over the default), as the
    footer shows them: 'p', 'ctrl+c', 'space'."""
    keys = _keys_now(app, binding_id)
    if not keys:
        return "?"
    return " ".join(key_display(app, key) for key in keys)


def key_display(app: App[Any], key: str) -> str:
    """A key as the user reads it: 'p', 'ctrl+c', 'space', '['."""
    # Textual shows ctrl+c as "^c"; in a sentence ("press ctrl+c again") the name reads.
    return key if "+" in key else app.get_key_display(Binding(key, ""))


def keys_for(app: App[Any], binding_id: str) -> tuple[str, ...]:
    """The keys bound to `binding_id` now, as Textual names them ('ctrl+c')."""
    return _keys_now(app, binding_id)


def _keys_now(app: App[Any], binding_id: str) -> tuple[str, ...]:
    overrides: Mapping[str, str] = getattr(app, "keymap_overrides", {})
    keys = overrides.get(binding_id) or default_keys().get(binding_id) or ""
    return tuple(key.strip() for key in keys.split(",") if key.strip())


def _action_name(action: str) -> str:
    """'app.step(-1)' -> 'step'."""
    return action.partition("(")[0].rpartition(".")[2]
