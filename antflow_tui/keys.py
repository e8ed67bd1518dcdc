"""Binding ids: every screen's bindings by id, and `--keymap` parsing.

Each binding has an id so a user can remap it (Textual keymaps), e.g.
``antflow-tui --keymap "pause=space,retry=t" script.py``.
"""

from __future__ import annotations

from functools import cache
from typing import TYPE_CHECKING, Any

from textual.binding import Binding

if TYPE_CHECKING:
    from textual.app import App
    from textual.dom import DOMNode

    from antflow_tui.key_conflicts import Mode


class KeymapError(ValueError):
    """A --keymap value cannot be used; the message says why."""


@cache
def default_keys() -> dict[str, str]:
    """Binding id -> its default key(s), across the app and all its screens."""
    from antflow_tui.app import AntflowApp
    from antflow_tui.attach.app import AttachApp
    from antflow_tui.screens.base import RunScreen
    from antflow_tui.screens.confirm import ConfirmScreen
    from antflow_tui.screens.detail import DetailScreen
    from antflow_tui.screens.export import ExportScreen
    from antflow_tui.screens.goto import GotoScreen
    from antflow_tui.screens.help import HelpScreen
    from antflow_tui.screens.item import ItemScreen
    from antflow_tui.screens.line import LineScreen
    from antflow_tui.screens.main import MainScreen
    from antflow_tui.screens.seek import SeekScreen
    from antflow_tui.screens.stage import StageScreen
    from antflow_tui.screens.worker import WorkerScreen

    owners: tuple[type[DOMNode], ...] = (
        AntflowApp,
        AttachApp,
        RunScreen,
        MainScreen,
        DetailScreen,
        ItemScreen,
        WorkerScreen,
        StageScreen,
        ConfirmScreen,
        HelpScreen,
        ExportScreen,
        GotoScreen,
        SeekScreen,
        LineScreen,
    )
    keys: dict[str, str] = {}
    for owner in owners:
        for binding in owner.BINDINGS:
            if isinstance(binding, Binding) and binding.id:
                keys.setdefault(binding.id, binding.key)
    return keys


def parse_keymap(text: str, mode: Mode = "live") -> dict[str, str]:
    """``"pause=space,retry=t"`` -> {"pause": "space", "retry": "t"}.

    Commas separate pairs, so several keys for one id are joined with ``|``:
    ``pause=space|p``.

    Args:
        mode: What the app will watch (its keys are checked against each other).

    Raises:
        KeymapError: a pair without ``=``, an id no binding has, or a key another
            binding has where both are active (unless that one is remapped too).
    """
    known = default_keys()
    chosen: dict[str, str] = {}
    for pair in filter(None, (part.strip() for part in text.split(","))):
        binding_id, equals, keys = pair.partition("=")
        binding_id, keys = binding_id.strip(), keys.strip()
        if not equals or not binding_id or not keys:
            raise KeymapError(f"{pair!r} is not ID=KEY (for example pause=space)")
        if binding_id not in known:
            raise KeymapError(
                f"no binding has the id {binding_id!r}; ids: {', '.join(sorted(known))}"
            )
        chosen[binding_id] = ",".join(key.strip() for key in keys.split("|"))
    from antflow_tui.key_conflicts import conflicts

    clashes = conflicts(chosen, mode)
    if clashes:
        raise KeymapError("; ".join(clashes))
    return chosen


def key_for(app: App[Any], binding_id: str) -> str:
    """The key(s) bound to `binding_id` now (a keymap's choice over the default), as the
    footer shows them: 'p', 'ctrl+c', 'space'."""
    keys = getattr(app, "keymap_overrides", {}).get(binding_id) or default_keys().get(binding_id)
    if keys is None:
        return "?"
    return " ".join(key_display(app, key.strip()) for key in keys.split(","))


def key_display(app: App[Any], key: str) -> str:
    """A key as the user reads it: 'p', 'ctrl+c', 'space', '['."""
    # Textual shows ctrl+c as "^c"; in a sentence ("press ctrl+c again") the name reads.
    return key if "+" in key else app.get_key_display(Binding(key, ""))


def keys_for(app: App[Any], binding_id: str) -> tuple[str, ...]:
    """The keys bound to `binding_id` now, as Textual names them ('ctrl+c')."""
    keys = getattr(app, "keymap_overrides", {}).get(binding_id) or default_keys().get(binding_id)
    return tuple(key.strip() for key in (keys or "").split(",") if key.strip())
