"""SeekScreen (`t` in a replay): type a time into the recording, go there."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, ClassVar

from textual import on
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Input, Static

from antflow_tui.formatting import format_clock
from antflow_tui.keys import bindings

if TYPE_CHECKING:
    from textual.app import ComposeResult
    from textual.binding import BindingType

_CLOCK = re.compile(r"^(?:(\d+):)?(\d+):(\d{1,2}(?:\.\d+)?)$")
_SECONDS = re.compile(r"^(\d+(?:\.\d+)?)s?$")


def parse_position(text: str, *, start: float, end: float, now: float) -> float:
    """The Unix time `text` means in a recording from `start` to `end`, clamped to it.

    Accepted: ``1:23`` or ``1:02:03`` (time into the run), ``83`` or ``83s`` (seconds
    into it), ``+10`` / ``-5`` (seconds from `now`), ``50%`` (of the recording).

    Raises:
        ValueError: the text is none of these (the message says what is).
    """
    text = text.strip().lower()
    at: float | None = None
    if text.endswith("%"):
        try:
            at = start + (end - start) * float(text[:-1]) / 100
        except ValueError:
            at = None
    elif text[:1] in "+-" and text[1:]:
        try:
            at = now + float(text.rstrip("s"))
        except ValueError:
            at = None
    elif match := _CLOCK.match(text):
        hours, minutes, seconds = match.groups()
        at = start + int(hours or 0) * 3600 + int(minutes) * 60 + float(seconds)
    elif match := _SECONDS.match(text):
        at = start + float(match.group(1))
    if at is None:
        raise ValueError(
            f"cannot read {text!r} as a time: give 1:23, 83 (seconds in), +10, -5 or 50%"
        )
    return min(max(at, start), end)


class SeekScreen(ModalScreen[str | None]):
    """Ask for a time; dismisses with the text typed (None when cancelled).

    Args:
        length: The recording's length in seconds (shown as a hint).
    """

    BINDINGS: ClassVar[list[BindingType]] = bindings("seek")

    DEFAULT_CSS = """
    SeekScreen {
        align: center middle;
    }
    SeekScreen > Vertical {
        width: 64;
        max-width: 90%;
        height: auto;
        border: thick $accent;
        background: $surface;
        padding: 0 1;
    }
    """

    def __init__(self, length: float) -> None:
        super().__init__()
        self._length = length

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Static(
                f"Seek to (the recording lasts {format_clock(self._length)}):", markup=False
            )
            yield Input(id="seek-input", placeholder="1:23  or  83  or  +10  or  50%")

    def on_mount(self) -> None:
        self.query_one(Input).focus()

    @on(Input.Submitted)
    def _submitted(self, event: Input.Submitted) -> None:
        self.dismiss(event.value.strip() or None)
