"""Error groups' keys: an error's type and its message's first line with what varies
masked, so "timeout after 3.1s on https://a/1" and "timeout after 8s on https://b/2" fall
together ("300 × ParseError: unexpected tag at line <n>").

The one masking both the app's error groups (`antflow_tui.error_groups`, the ``c`` view)
and a comparison of two runs (`antflow.runstream.compare`) use, so a group is the same
group wherever it is counted.
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Final

from antflow._safe import printable

_MASKS: Final = (
    # Order matters: a URL holds numbers and hex, a UUID holds hex.
    (re.compile(r"\b[a-z][a-z0-9+.-]*://[^\s'\"<>()\[\]{},]+", re.IGNORECASE), "<url>"),
    (
        re.compile(
            r"\b[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\b", re.IGNORECASE
        ),
        "<id>",
    ),
    (re.compile(r"\b0x[0-9a-f]+\b", re.IGNORECASE), "<hex>"),
    # Long hex runs (hashes, object ids) with letters and digits: not words, not numbers.
    (
        re.compile(r"\b(?=[0-9a-f]*[a-f])(?=[0-9a-f]*[0-9])[0-9a-f]{8,}\b", re.IGNORECASE),
        "<hex>",
    ),
    (re.compile(r"\d+(?:[.,:_]\d+)*"), "<n>"),
)
MESSAGE_LENGTH: Final = 300
"""Characters of a message's first line that group it (the rest is detail)."""
_SCANNED: Final = 4_096

GroupKey = tuple[str, str]
"""(error type, normalised message)."""


def normalise_message(message: str) -> str:
    """The message's first line with numbers (``<n>``), UUIDs (``<id>``), URLs (``<url>``)
    and hex (``<hex>``) masked, runs of spaces made one, and control characters shown as
    escapes."""
    return _normalise(message[:_SCANNED])


def error_key(error_type: str, message: str) -> GroupKey:
    """The group of an error of this type with this message."""
    return (error_type, normalise_message(message))


# Messages repeat (one bug, many items): each is masked once. Keyed by the part that is
# read, so a cache of huge messages stays small.
@lru_cache(maxsize=4_096)
def _normalise(message: str) -> str:
    lines = (line.strip() for line in message.splitlines())
    text = next((line for line in lines if line), "")[:MESSAGE_LENGTH]
    for pattern, mask in _MASKS:
        text = pattern.sub(mask, text)
    # Masked before cleaning: an escape shown as \x1b is no number.
    return printable(" ".join(text.split()), MESSAGE_LENGTH)
