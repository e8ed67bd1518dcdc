"""Text of user objects that never raises: ``str()`` and ``repr()`` through one door.

Exceptions, item ids, values and status texts come from user code, and so do their
``__str__`` and ``__repr__``: one that raises must cost the object its text, never the
item (a failure the tracker cannot note hangs ``join()``), the recording or the screen.
Everything on antflow's side that turns a user object into text goes through here.

This module imports nothing of antflow's, so the run-stream records (which import nothing
from the engine) can use it too.
"""

from __future__ import annotations

import re
from typing import Any, Final

# C0 and C1 controls, DEL, and the bidi overrides that can reorder what a line shows.
# Replacing ESC (and BEL) with visible text is enough to defuse any escape sequence: what
# follows it is printable.
_UNPRINTABLE: Final = re.compile(r"[\x00-\x1f\x7f-\x9f\u200e\u200f\u202a-\u202e\u2066-\u2069]")
_PRINTABLE_SCAN: Final = 4096
"""Longest piece of a string made printable when no limit is given."""


def safe_str(obj: Any) -> str:
    """``str(obj)``, or a placeholder naming what went wrong when that raises:
    ``<ValueError: str() raised RuntimeError>``."""
    try:
        text = str(obj)
    except Exception as error:
        return f"<{_type_name(obj)}: str() raised {_type_name(error)}>"
    # A str subclass could carry its own broken methods into our formatting.
    return text if type(text) is str else str.__str__(text)


def safe_repr(obj: Any) -> str:
    """``repr(obj)``, or a placeholder as the default repr would write it, so two objects
    whose ``__repr__`` raises still read differently:
    ``<Key object at 0x7f...: repr() raised RuntimeError>``."""
    try:
        text = repr(obj)
    except Exception as error:
        return f"<{_type_name(obj)} object at {id(obj):#x}: repr() raised {_type_name(error)}>"
    return text if type(text) is str else str.__str__(text)


def _type_name(obj: Any) -> str:
    name = getattr(type(obj), "__name__", None)
    return name if isinstance(name, str) else "object"


def printable(text: str, limit: int | None = None) -> str:
    """One printable line of `text`, at most `limit` characters (an ellipsis ends a cut
    one): control characters and escapes shown as visible escapes (``\\x1b``), a newline
    as ``⏎``, a tab as a space. What antflow-tui shows of user text, and what error groups
    are keyed by (`antflow.runstream.grouping`)."""
    cut = limit if limit is not None else _PRINTABLE_SCAN
    if len(text) > cut:
        text = text[: cut + 1]
    text = _UNPRINTABLE.sub(_visible, text)
    if len(text) > cut:
        text = text[: max(cut - 1, 0)] + "…"
    return text


def _visible(match: re.Match[str]) -> str:
    char = match.group(0)
    if char == "\n":
        return "⏎"
    if char == "\t":
        return " "
    return f"\\x{ord(char):02x}" if ord(char) < 0x100 else f"\\u{ord(char):04x}"
