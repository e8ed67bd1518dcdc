"""Palette: the colours data is shown in (statuses, worker looks, stage names), by role.

Presenters never name a colour: they ask a `Palette` for a role's style. The app's
palettes come from the theme, through component classes every screen declares
(`COMPONENT_CLASSES`, styled in ``styles/app.tcss`` with theme variables), so switching
the theme (``ctrl+p`` → theme) recolours the data as well as the borders. `DEFAULT`
holds fixed styles for unit tests and for output outside the app.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Final

from rich.style import Style

if TYPE_CHECKING:
    from collections.abc import Mapping

    from textual.widget import Widget

ROLES: Final[Mapping[str, str]] = {
    # Item statuses and task events (records.EventKind).
    "status-queued": "dim",
    "status-in_progress": "cyan",
    "status-completed": "green",
    "status-failed": "bold red",
    "status-retrying": "yellow",
    "status-skipped": "blue",
    "status-unfinished": "magenta",
    "status-done_earlier": "dim green",
    "status-start": "dim cyan",
    "status-complete": "dim green",
    "status-retry": "yellow",
    "status-fail": "red",
    # Worker looks (present.WorkerLook).
    "look-idle": "dim",
    "look-blocked": "magenta",
    "look-busy": "green",
    "look-waiting": "cyan",
    "look-pausing": "yellow",
    "look-paused": "yellow",
    "look-stuck": "bold red",
    # The run's state word in the header (header.RunState).
    "state-starting": "bold",
    "state-running": "bold green",
    "state-pausing": "bold yellow",
    "state-paused": "bold yellow",
    "state-stopping": "bold magenta",
    "state-stopped": "bold magenta",
    "state-finished": "bold green",
    "state-failed": "bold red",
    "state-cut-off": "bold yellow",
    # A kept run whose process is gone without an end (antflow-tui runs).
    "state-crashed": "bold yellow",
    # Names and marks.
    "stage": "magenta",
    "pipeline": "magenta",
    "error-type": "red",
    "bottleneck": "bold red",
    "held": "yellow",
    "abandoned": "yellow",
    "progress": "green",
    "replay": "bold reverse yellow",
    # Trends in the stage table, and log lines by level.
    "trend-rate": "green",
    "trend-queue": "yellow",
    # Rate-limit gauges (antflow_tui.gauges): used of a cap, and a cap nearly reached.
    "gauge": "green",
    "gauge-full": "yellow",
    "log-error": "red",
    "log-warning": "yellow",
    "log-debug": "dim",
    # Tracebacks: the user's own frames, library frames and their folds.
    "frame-own": "bold",
    "frame-own-source": "",
    "frame-library": "dim",
    "frame-fold": "dim italic",
}
"""Every role, with its style outside a theme (`DEFAULT`)."""

COMPONENT_PREFIX: Final = "data--"
COMPONENT_CLASSES: Final = frozenset(f"{COMPONENT_PREFIX}{role}" for role in ROLES)
"""The component classes a screen declares so the theme can style each role."""


class Palette:
    """Role → Rich style. Unknown roles get no style (plain text)."""

    __slots__ = ("_styles",)

    def __init__(self, styles: Mapping[str, Style]) -> None:
        self._styles = dict(styles)

    def __call__(self, role: str) -> Style:
        return self._styles.get(role, _PLAIN)

    def status(self, kind: str) -> Style:
        """The style of an item status or task event kind."""
        return self(f"status-{kind}")

    def look(self, look: str) -> Style:
        """The style of a worker look."""
        return self(f"look-{look}")

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Palette) and self._styles == other._styles

    def __hash__(self) -> int:
        return hash(tuple(sorted((role, str(style)) for role, style in self._styles.items())))


_PLAIN: Final = Style()

DEFAULT: Final = Palette({role: Style.parse(style) for role, style in ROLES.items()})
"""Fixed colours: for unit tests, and wherever there is no theme."""


def palette_of(node: Widget) -> Palette:
    """The palette `node`'s component classes give (see `COMPONENT_CLASSES`).

    A role the stylesheet does not style keeps its `DEFAULT` style.
    """
    styles = {}
    for role in ROLES:
        styles[role] = node.get_component_rich_style(
            f"{COMPONENT_PREFIX}{role}", partial=True, default=DEFAULT(role)
        )
    return Palette(styles)


def screen_palette(widget: Widget) -> Palette:
    """The palette of the screen `widget` is on (`DEFAULT` before it is mounted)."""
    try:
        screen = widget.screen
    except Exception:  # not mounted yet: no screen to ask
        return DEFAULT
    palette = getattr(screen, "palette", None)
    return palette if isinstance(palette, Palette) else DEFAULT
