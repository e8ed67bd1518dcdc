"""Plain-string helpers shared by every display: safe user text, durations, rates.

No Rich here: the progress bar uses these too and must not load Rich.
"""

from __future__ import annotations

import re
from typing import Final

from antflow._safe import safe_str

ELLIPSIS: Final = "…"
DEFAULT_LIMIT: Final = 40
"""Characters of one user value (item id, error, status text) a display shows."""

# CSI (``\x1b[2J``), OSC (``\x1b]0;title\x07``), 8-bit CSI, and two-character escapes.
_ESCAPE_SEQUENCE: Final = re.compile(
    r"\x1b\[[0-?]*[ -/]*[@-~]"
    r"|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)?"
    r"|\x9b[0-?]*[ -/]*[@-~]"
    r"|\x1b[@-_]"
)
# C0/C1 controls, DEL, and the bidi overrides that can make a line read backwards.
_CONTROL: Final = re.compile(r"[\x00-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")
_WHITESPACE_CONTROLS: Final = frozenset("\t\n\r\v\f")
# Bounds the regex work on a huge value (a whole document used as an id) to a few frames' worth.
_SCAN_FACTOR: Final = 4


def _replace_control(match: re.Match[str]) -> str:
    return " " if match.group() in _WHITESPACE_CONTROLS else "?"


def safe_text(value: object, limit: int = DEFAULT_LIMIT) -> str:
    """`value` as one printable line: escapes removed, controls replaced, at most `limit` chars.

    The result is still plain text: callers put it in a `rich.text.Text` (never into markup),
    so ``[red]`` in user data shows literally.

    Args:
        value: Any user value; ``str()`` of it is shown.
        limit: The most characters returned, counting the trailing ellipsis.

    Returns:
        The cleaned, possibly truncated text.
    """
    # A user __str__ that raises must not take the whole frame down.
    text = value if isinstance(value, str) else safe_str(value)
    scan = max(limit, 1) * _SCAN_FACTOR
    cut = len(text) > scan
    text = _CONTROL.sub(_replace_control, _ESCAPE_SEQUENCE.sub("", text[:scan]))
    if cut or len(text) > limit:
        text = text[: max(limit - 1, 0)] + ELLIPSIS
    return text


def format_duration(seconds: float) -> str:
    """``4.2s``, ``3m07s`` or ``2h05m``."""
    seconds = max(seconds, 0.0)
    if seconds < 60:
        return f"{seconds:.1f}s"
    whole = int(seconds)
    if whole < 3600:
        return f"{whole // 60}m{whole % 60:02d}s"
    return f"{whole // 3600}h{whole % 3600 // 60:02d}m"


def format_rate(rate: float | None) -> str:
    """``12.3 items/s``, or ``- items/s`` before there is a rate to show."""
    return "- items/s" if rate is None else f"{rate:.1f} items/s"
