"""Show user data literally: item ids, values, error messages, status texts.

Everything a user's pipeline hands us ends up in `rich.text.Text` objects built from plain
strings (never markup), after `clean` has made it one printable line: terminal escape
sequences and control characters become visible escapes, so `[red]` stays `[red]` and
`\\x1b[2J` cannot clear the screen. Long values are cut before they are formatted.
"""

from __future__ import annotations

import re
import reprlib
from typing import Any, Final

from rich.cells import cell_len
from rich.text import Text

from antflow._safe import printable, safe_repr
from antflow.runstream.records import ReprKey

ELLIPSIS: Final = "…"

_MAX_SCAN: Final = 4096
"""Longest piece of a string we clean; the rest is cut first (multi-megabyte messages)."""


def clean(text: str, limit: int | None = None) -> str:
    """One printable line of `text`, at most `limit` characters (with an ellipsis)."""
    return printable(text, limit)


_short_repr = reprlib.Repr()
_short_repr.maxstring = 120
_short_repr.maxother = 120
_short_repr.maxlong = 60
_short_repr.maxlist = _short_repr.maxtuple = _short_repr.maxset = 12
_short_repr.maxdict = 8
_short_repr.maxlevel = 3

_long_repr = reprlib.Repr()
_long_repr.maxstring = 4000
_long_repr.maxother = 4000
_long_repr.maxlong = 400
_long_repr.maxlist = _long_repr.maxtuple = _long_repr.maxset = 200
_long_repr.maxdict = 100
_long_repr.maxlevel = 6


def value_repr(value: Any, *, long: bool = False) -> str:
    """A repr of `value` that stays short however big the value is (reprlib)."""
    try:
        return (_long_repr if long else _short_repr).repr(value)
    except Exception:  # a user's __repr__ may raise; show that instead
        return safe_repr(value)


def item_label(item_id: Any, limit: int = 24) -> str:
    """How an item id is shown: strings as they are, anything else as a short repr (an
    id a record carries as its repr is shown as that repr)."""
    if isinstance(item_id, str):
        return clean(item_id, limit)
    if isinstance(item_id, ReprKey):
        return clean(item_id.repr, limit)
    if isinstance(item_id, bool) or not isinstance(item_id, int):
        return clean(value_repr(item_id), limit)
    try:
        return clean(str(item_id), limit)
    except ValueError:  # past Python's int-to-str digit limit
        return f"<int of {item_id.bit_length():,} bits>"


MIDDLE_CUT_FROM: Final = 16
"""Cells below which a cut keeps the start only (a middle cut would leave too little)."""


def fit_middle(text: Text, width: int, *, head_share: float = 0.4) -> Text:
    """`text` in at most `width` cells, cut in the middle ("…") when longer: an error
    message's end (the URL, the id, the file) is what tells one failure from the next.

    Args:
        head_share: The part of the width the start keeps; the end keeps the rest.
    """
    if text.cell_len <= width:
        return text.copy()
    if width < MIDDLE_CUT_FROM:
        cut = text.copy()
        cut.truncate(width, overflow="ellipsis")
        return cut
    plain = text.plain
    keep = width - 1
    head_cells = int(keep * head_share)
    head = 0
    used = 0
    while head < len(plain) and used + cell_len(plain[head]) <= head_cells:
        used += cell_len(plain[head])
        head += 1
    tail = len(plain)
    room = keep - used
    while tail > head and cell_len(plain[tail - 1]) <= room:
        room -= cell_len(plain[tail - 1])
        tail -= 1
    shown = text[:head]
    shown.append(ELLIPSIS)
    shown.append_text(text[tail:])
    return shown


def first_line(message: str, limit: int) -> str:
    """The first non-empty line of a message, cleaned and cut."""
    head = message[:_MAX_SCAN]
    for line in head.splitlines():
        if line.strip():
            return clean(line.strip(), limit)
    return ""


# Escape sequences: CSI (colours, cursor moves), OSC (titles, links) up to BEL or ST,
# DCS/SOS/PM/APC strings, two-byte escapes, and a lone ESC.
_ESCAPES = re.compile(
    r"\x1b\[[0-?]*[ -/]*[@-~]"
    r"|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)?"
    r"|\x1b[PX^_][^\x1b]*(?:\x1b\\)?"
    r"|\x1b[ -/]*[0-~]"
    r"|\x1b"
)
_SGR = re.compile(r"\x1b\[[0-9;:]*m")


def ansi_text(line: str, style: str = "", limit: int = _MAX_SCAN) -> Text:
    """One line a script printed, as a terminal would show it: its colours (SGR escapes)
    rendered, every other escape sequence dropped, other controls made visible.

    A carriage return overwrites, so only what follows the last one is kept (progress
    bars redraw a line that way). Rich markup in the line stays literal text.
    """
    line = line.rstrip("\r")
    if "\r" in line:
        line = line.rsplit("\r", 1)[-1]
    if len(line) > limit * 4:
        line = line[: limit * 4]
    if "\x1b" not in line:
        return Text(clean(line, limit), style=style, no_wrap=True, overflow="ellipsis")
    kept: list[str] = []
    position = 0
    for match in _ESCAPES.finditer(line):
        kept.append(clean(line[position : match.start()]))
        if _SGR.fullmatch(match.group(0)):
            kept.append(match.group(0))
        position = match.end()
    kept.append(clean(line[position:]))
    text = Text.from_ansi("".join(kept), style=style, no_wrap=True, overflow="ellipsis")
    if text.cell_len > limit:
        text.truncate(max(limit - 1, 0))
        text.append(ELLIPSIS)
    return text


def literal(text: str, style: str = "", limit: int | None = None) -> Text:
    """A Text showing `text` literally (no markup), cleaned to one line."""
    return Text(clean(text, limit), style=style, no_wrap=True, overflow="ellipsis")
