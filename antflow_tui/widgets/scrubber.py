"""Scrubber: a replay's position on the recording, whether it plays, how fast, and its keys.

One line, shown only in a replay (the main screen hides it otherwise):
``▶ 2x  0:01:23 ━━━━━━━━●────────── 0:05:00  incomplete   space pause  ←→ 1s  [ ] 10s ...``
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Final

from rich.text import Text
from textual.widget import Widget

from antflow_tui.formatting import format_clock
from antflow_tui.palette import DEFAULT, Palette, screen_palette

if TYPE_CHECKING:
    from collections.abc import Mapping

    from rich.console import RenderableType

    from antflow_tui.source.base import ReplayPosition

MIN_TRACK: Final = 10
STEP_SECONDS: Final = 1.0
"""How far the replay's left and right keys move."""
JUMP_SECONDS: Final = 10.0
"""How far the replay's [ and ] keys move."""
SPEEDS: Final = (0.25, 0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0)
"""The replay speeds < and > step through."""


def next_speed(speed: float, direction: int) -> float:
    """The speed after `speed` in `SPEEDS`: faster (`direction` 1) or slower (-1)."""
    if direction > 0:
        return next((s for s in SPEEDS if s > speed), SPEEDS[-1])
    return next((s for s in reversed(SPEEDS) if s < speed), SPEEDS[0])


def scrubber_line(
    replay: ReplayPosition,
    now: float,
    width: int,
    *,
    keys: Mapping[str, str] | None = None,
    palette: Palette = DEFAULT,
) -> Text:
    """The scrubber's line, at most `width` cells: the keys go first when it is narrow.

    Args:
        keys: Binding id -> the key as bound (`replay.play`, `replay.seek`...).
    """
    keys = keys or {}
    length = max(replay.end - replay.start, 0.0)
    at = min(max(now - replay.start, 0.0), length)
    line = Text(" ")
    if replay.playing:
        line.append("▶ playing", style=palette("state-running"))
    else:
        line.append("‖ held", style=palette("state-paused"))
    line.append(f" {replay.speed:g}x  ", style="bold")
    line.append(format_clock(at))
    end = Text(f" {format_clock(length)}")
    if not replay.complete:
        end.append("  incomplete", style=palette("held"))
    if replay.damaged:
        end.append("  damaged", style=palette("held"))
    hints = Text()
    for binding, what in (
        ("replay.play", "pause" if replay.playing else "play"),
        ("replay.back", "1s"),
        ("replay.jump-back", "10s"),
        ("replay.slower", "speed"),
        ("replay.seek", "seek"),
    ):
        key = keys.get(binding)
        if key is None:
            continue
        if binding == "replay.back":
            key = f"{key}/{keys.get('replay.forward', '')}"
        elif binding == "replay.jump-back":
            key = f"{key} {keys.get('replay.jump-forward', '')}"
        elif binding == "replay.slower":
            key = f"{key} {keys.get('replay.faster', '')}"
        hints.append(f"  {key}", style="bold")
        hints.append(f" {what}", style="dim")
    track = width - line.cell_len - end.cell_len - hints.cell_len - 2
    if track < MIN_TRACK:
        hints = Text()
        track = width - line.cell_len - end.cell_len - 2
    if track >= MIN_TRACK:
        line.append(" ")
        filled = round(track * (at / length)) if length else track
        filled = min(max(filled, 0), track - 1)
        line.append("━" * filled, style=palette("progress"))
        line.append("●", style="bold")
        line.append("─" * (track - filled - 1), style="dim")
    line.append_text(end)
    line.append_text(hints)
    line.truncate(width, overflow="ellipsis")
    return line


class Scrubber(Widget):
    """The replay's scrubber line (attributes down: `show` it each frame)."""

    DEFAULT_CSS = """
    Scrubber {
        height: 1;
    }
    """

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self._shown: tuple[object, ...] | None = None
        self._replay: ReplayPosition | None = None
        self._now = 0.0
        self._keys: Mapping[str, str] = {}

    def show(self, replay: ReplayPosition | None, now: float, keys: Mapping[str, str]) -> None:
        key = (replay, round(now, 1), tuple(keys.items()))
        if key == self._shown:
            return
        self._shown = key
        self._replay, self._now, self._keys = replay, now, keys
        self.display = replay is not None
        self.refresh()

    @property
    def text(self) -> str:
        """What the scrubber shows, as plain text."""
        return self._line(self.size.width or 120).plain

    def _line(self, width: int) -> Text:
        if self._replay is None:
            return Text()
        return scrubber_line(
            self._replay, self._now, width, keys=self._keys, palette=screen_palette(self)
        )

    def render(self) -> RenderableType:
        return self._line(self.size.width)
