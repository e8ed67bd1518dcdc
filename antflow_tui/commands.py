"""The command palette's commands (ctrl+p): every key the current screen offers.

Made from the screen's active bindings each time the palette opens, not from a list of
our own, so a new key is a command at once and a remapped one shows its new key. Keys
that move inside a panel (no binding id) are not commands; two bindings of one action
(``q`` and ``ctrl+q``) are one command with both keys.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING, Any

from textual.command import DiscoveryHit, Hit, Hits, Provider
from textual.content import Content
from textual.markup import escape

from antflow_tui.keys import key_display

if TYPE_CHECKING:
    from collections.abc import Callable

    from textual.app import App
    from textual.screen import Screen
    from textual.style import Style

NOT_COMMANDS = frozenset({"command_palette", "app.command_palette"})
"""Actions the palette does not list (opening itself)."""


@dataclass(frozen=True, slots=True)
class KeyCommand:
    """One command of the palette: a binding's action, with its keys."""

    title: str
    """What it does, in a few words (the binding's tooltip, else its footer label)."""
    keys: str
    """Its keys as shown: 'q ctrl+q'."""
    help: str
    """A line on what it does (the help screen's words for it)."""
    run: Callable[[], object]

    def prompt(self, title: Content | None = None) -> Content:
        """Its title (highlighted as a search matched it), then its keys."""
        shown = title if title is not None else Content(self.title)
        return shown + Content.styled(f"  {self.keys}", "dim")


def key_commands(screen: Screen[object]) -> list[KeyCommand]:
    """The commands `screen`'s active bindings offer (the app's and the focused panel's
    included), in the order of their bindings."""
    from antflow_tui.screens.help import MEANINGS

    app: App[object] = screen.app
    found: dict[tuple[int, str], tuple[str, list[str], str, Callable[[], object]]] = {}
    for key, active in screen.active_bindings.items():
        binding = active.binding
        if not binding.id or not active.enabled or binding.action in NOT_COMMANDS:
            continue
        # One command per action where it runs: q and ctrl+q are both "Quit".
        where = (id(active.node), binding.action)
        if where not in found:
            title = binding.tooltip or binding.description or binding.action
            run: Callable[[], object] = partial(app.run_action, binding.action, active.node)
            found[where] = (title, [], MEANINGS.get(binding.id, ""), run)
        elif not found[where][2] and binding.id in MEANINGS:
            title, keys, _, run = found[where]
            found[where] = (title, keys, MEANINGS[binding.id], run)
        keys = found[where][1]
        shown = key_display(app, key)
        if shown not in keys:
            keys.append(shown)
    return [
        KeyCommand(title, " ".join(keys), meaning, run)
        for title, keys, meaning, run in found.values()
    ]


class KeyCommands(Provider):
    """The palette's one provider: `key_commands`, then the app's system commands (theme,
    screenshot). One provider, so they come in this order: two would race."""

    def __init__(self, screen: Screen[Any], match_style: Style | None = None) -> None:
        super().__init__(screen, match_style)
        # The app reads them before the palette opens: once the palette's input has
        # focus, the replay's keys are hidden (a space typed there must not play).
        offered: list[KeyCommand] | None = getattr(screen.app, "commands_offered", None)
        self.commands = key_commands(screen) if offered is None else offered

    async def discover(self) -> Hits:
        for command in sorted(self.commands, key=lambda found: found.title):
            yield DiscoveryHit(
                command.prompt(), command.run, text=command.title, help=escape(command.help)
            )
        for system in self.app.get_system_commands(self.screen):
            if system.discover:
                yield DiscoveryHit(system.title, system.callback, help=system.help)

    async def search(self, query: str) -> Hits:
        matcher = self.matcher(query)
        for command in self.commands:
            score = matcher.match(command.title)
            if score > 0:
                yield Hit(
                    score,
                    command.prompt(matcher.highlight(command.title)),
                    command.run,
                    text=command.title,
                    help=escape(command.help),
                )
        for system in self.app.get_system_commands(self.screen):
            score = matcher.match(system.title)
            if score > 0:
                yield Hit(score, matcher.highlight(system.title), system.callback, help=system.help)
