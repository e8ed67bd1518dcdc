"""Keys a --keymap would take from another binding: ``pause=q`` leaves quit without its key.

Two bindings clash when they would have one key where both are active at once: on one
screen, counting the app's keys (on every screen but a dialog), the screen's own, and
those of the panels that take focus there (a focused panel's key wins over the screen's,
so ``pause=j`` would never pause: j moves the cursor). Bindings the run cannot use are
left out: a replay has no pause, a live run no scrubber, so ``pause=space`` is fine.
Only keys the keymap gives are checked; the defaults' own overlaps are by design.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final, Literal

from textual.binding import Binding, BindingsMap
from textual.dom import DOMNode
from textual.screen import ModalScreen

from antflow_tui.source.base import PAUSE, RETRY, SEEK, STACKS, STOP, VALUES

if TYPE_CHECKING:
    from collections.abc import Iterator, Mapping

Mode = Literal["live", "replay", "attach"]
"""What the app watches: the command it runs under."""

CAN: Final[Mapping[Mode, frozenset[str]]] = {
    "live": frozenset({PAUSE, RETRY, STOP, STACKS, VALUES}),
    "attach": frozenset({PAUSE, RETRY, STOP, STACKS, VALUES}),
    "replay": frozenset({SEEK, VALUES}),
}
"""The most each kind of run can do (see `antflow_tui.source.base`)."""

PALETTE: Final = Binding("ctrl+p", "command_palette", "Command palette")
"""Textual adds this one to the app itself (`App.COMMAND_PALETTE_BINDING`)."""


@dataclass(frozen=True, slots=True)
class Bound:
    """A binding as a keymap leaves it."""

    binding_id: str | None
    action: str
    description: str
    keys: tuple[str, ...]

    def named(self) -> str:
        """How a message names it: its id, else what it does (it cannot be remapped)."""
        if self.binding_id:
            return repr(self.binding_id)
        return f"{self.description or self.action!r} (it cannot be remapped)"


def conflicts(keymap: Mapping[str, str], mode: Mode = "live") -> list[str]:
    """What `keymap` (binding id -> keys, comma-separated) would take from other bindings,
    one sentence each (none: it can be used)."""
    found: dict[tuple[str, frozenset[str | None]], str] = {}
    for where, bindings in _scopes(mode):
        shown = [_remapped(binding, keymap) for binding in bindings]
        for moved in shown:
            if moved.binding_id not in keymap:
                continue
            for key in moved.keys:
                for other in shown:
                    if other is moved or key not in other.keys or other.action == moved.action:
                        continue
                    pair = (key, frozenset({moved.binding_id, other.binding_id}))
                    if pair not in found:
                        found[pair] = _sentence(moved, other, key, where, keymap)
    return list(found.values())


def _sentence(moved: Bound, other: Bound, key: str, where: str, keymap: Mapping[str, str]) -> str:
    both = f"{moved.named()} and {other.named()} would both be {key!r} on the {where}"
    if other.binding_id is None:
        return f"{both}: choose another key for {moved.binding_id!r}"
    if other.binding_id in keymap:
        return f"{both}: give one of them another key"
    return (
        f"{both}: give {other.binding_id!r} another key in the same --keymap "
        f"({moved.binding_id}={key},{other.binding_id}=…), or {moved.binding_id!r} another one"
    )


def _remapped(binding: Bound, keymap: Mapping[str, str]) -> Bound:
    chosen = keymap.get(binding.binding_id or "")
    if chosen is None:
        return binding
    keys = tuple(key.strip() for key in chosen.split(",") if key.strip())
    return Bound(binding.binding_id, binding.action, binding.description, keys)


def _scopes(mode: Mode) -> Iterator[tuple[str, list[Bound]]]:
    """(where, every binding active there at once), screen by screen."""
    from textual.containers import VerticalScroll

    from antflow_tui.app import AntflowApp
    from antflow_tui.attach.app import AttachApp
    from antflow_tui.screens.confirm import ConfirmScreen
    from antflow_tui.screens.export import ExportScreen
    from antflow_tui.screens.goto import GotoScreen
    from antflow_tui.screens.help import HelpScreen
    from antflow_tui.screens.item import ItemScreen
    from antflow_tui.screens.line import LineScreen
    from antflow_tui.screens.main import MainScreen
    from antflow_tui.screens.seek import SeekScreen
    from antflow_tui.screens.stage import StageScreen
    from antflow_tui.screens.worker import WorkerScreen
    from antflow_tui.widgets.row_list import RowList
    from antflow_tui.widgets.stage_table import StageTable
    from antflow_tui.widgets.worker_grid import WorkerGrid

    can = CAN[mode]
    app = AttachApp if mode == "attach" else AntflowApp
    app_keys = [*_bindings(app, can), _bound(PALETTE)]
    # Each screen, with the panels that take focus on it.
    screens: tuple[tuple[type[DOMNode], tuple[type[DOMNode], ...]], ...] = (
        (MainScreen, (StageTable, WorkerGrid, RowList)),
        (ItemScreen, (VerticalScroll,)),
        (WorkerScreen, (VerticalScroll,)),
        (StageScreen, (VerticalScroll, RowList)),
        (ConfirmScreen, ()),
        (HelpScreen, (VerticalScroll,)),
        (ExportScreen, ()),
        (GotoScreen, ()),
        (SeekScreen, ()),
        (LineScreen, (VerticalScroll,)),
    )
    for screen, panels in screens:
        own = _bindings(screen, can)
        # A dialog (a modal screen) takes no key of the app's.
        shared = [] if issubclass(screen, ModalScreen) else app_keys
        for panel in panels or (None,):
            focused = [] if panel is None else _bindings(panel, can)
            yield _words(screen.__name__), [*focused, *own, *shared]


def _bindings(node: type[DOMNode], can: frozenset[str]) -> list[Bound]:
    """The bindings of `node`'s class and its bases, as Textual merges them (a class's
    binding replaces its bases' for the same key), less those `can` does not allow."""
    keys: dict[str, list[Binding]] = {}
    for base in reversed(node.__mro__):
        if issubclass(base, DOMNode):
            keys.update(BindingsMap(base.__dict__.get("BINDINGS", [])).key_to_bindings)
    needs: Mapping[str, str] = getattr(node, "NEEDS", {})
    merged: dict[tuple[str | None, str, str], list[str]] = {}
    for key, bindings in keys.items():
        for binding in bindings:
            need = needs.get(_action_name(binding.action))
            if need is None or need in can:
                merged.setdefault((binding.id, binding.action, binding.description), []).append(key)
    return [
        Bound(binding_id, action, description, tuple(found))
        for (binding_id, action, description), found in merged.items()
    ]


def _bound(binding: Binding) -> Bound:
    keys = tuple(key.strip() for key in binding.key.split(","))
    return Bound(binding.id, binding.action, binding.description, keys)


def _action_name(action: str) -> str:
    """'app.step(-1)' -> 'step'."""
    return action.partition("(")[0].rpartition(".")[2]


def _words(class_name: str) -> str:
    """'MainScreen' -> 'main screen'."""
    return re.sub(r"(?<!^)(?=[A-Z])", " ", class_name).lower()
