"""``--keymap ID=KEY,...``: read it, and refuse keys it would take from another binding
(``pause=q`` would leave quit without its key).

Two bindings clash when they would have one key where both are active at once: on one
screen, counting the app's keys (on every screen but a dialog), the screen's own, and
those of the panels that take focus there (a focused panel's key wins over the screen's,
so ``pause=j`` would never pause: j moves the cursor). Bindings the run cannot use are
left out: a replay has no pause, a live run no scrubber, so ``pause=space`` is fine.
Only keys the keymap gives are checked; the defaults' own overlaps are by design.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

from textual.binding import Binding, BindingsMap
from textual.containers import VerticalScroll
from textual.dom import DOMNode

from antflow_tui.keys import KEYS, SCREENS, SCROLL, Key, default_keys

if TYPE_CHECKING:
    from collections.abc import Collection, Iterator, Mapping

    from antflow_tui.source.base import Can

PALETTE: Final = Binding("ctrl+p", "command_palette", "Command palette")
"""Textual adds this one to the app itself (`App.COMMAND_PALETTE_BINDING`)."""


class KeymapError(ValueError):
    """A --keymap value cannot be used; the message says why."""


def parse_keymap(text: str, can: Collection[Can]) -> dict[str, str]:
    """``"pause=space,retry=t"`` -> {"pause": "space", "retry": "t"}.

    Commas separate pairs, so several keys for one id are joined with ``|``:
    ``pause=space|p``.

    Args:
        can: What the run's source can do at most (its type's `RunSource.CAN`): only keys
            that can work are checked against each other.

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
    clashes = conflicts(chosen, frozenset(can))
    if clashes:
        raise KeymapError("; ".join(clashes))
    return chosen


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


def conflicts(keymap: Mapping[str, str], can: frozenset[Can]) -> list[str]:
    """What `keymap` (binding id -> keys, comma-separated) would take from other bindings,
    one sentence each (none: it can be used), on a run whose source can do `can`."""
    found: dict[tuple[str, frozenset[str | None]], str] = {}
    for where, bindings in _scopes(can):
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


def _scopes(can: frozenset[Can]) -> Iterator[tuple[str, list[Bound]]]:
    """(where, every binding active there at once), screen by screen."""
    app_keys = [*_bound(KEYS["app"], can), _of_binding(PALETTE)]
    for screen in SCREENS:
        own = [bound for group in screen.groups for bound in _bound(KEYS[group], can)]
        # A dialog (a modal screen) takes no key of the app's, nor another app's screen.
        shared = [] if screen.modal or screen.own_app else app_keys
        for panel in screen.panels or (None,):
            focused = [] if panel is None else _panel(panel, can)
            yield screen.words, [*focused, *own, *shared]


def _bound(keys: tuple[Key, ...], can: frozenset[Can]) -> list[Bound]:
    """The keys `can` allows, each binding once with all its keys."""
    return [
        Bound(key.id, key.action, key.description, _split(key.keys))
        for key in keys
        if key.needs is None or key.needs in can
    ]


def _panel(panel: str, can: frozenset[Can]) -> list[Bound]:
    if panel != SCROLL:
        return _bound(KEYS[panel], can)
    return _textual_bindings(VerticalScroll)


def _textual_bindings(node: type[DOMNode]) -> list[Bound]:
    """A Textual class's own bindings, as Textual merges them (a class's binding replaces
    its bases' for the same key)."""
    keys: dict[str, list[Binding]] = {}
    for base in reversed(node.__mro__):
        if issubclass(base, DOMNode):
            keys.update(BindingsMap(base.__dict__.get("BINDINGS", [])).key_to_bindings)
    merged: dict[tuple[str | None, str, str], list[str]] = {}
    for key, bindings in keys.items():
        for binding in bindings:
            merged.setdefault((binding.id, binding.action, binding.description), []).append(key)
    return [
        Bound(binding_id, action, description, tuple(found))
        for (binding_id, action, description), found in merged.items()
    ]


def _of_binding(binding: Binding) -> Bound:
    return Bound(binding.id, binding.action, binding.description, _split(binding.key))


def _split(keys: str) -> tuple[str, ...]:
    return tuple(key.strip() for key in keys.split(","))
