"""One line of Rich text as a Textual Strip, exactly `width` cells wide."""

from __future__ import annotations

from typing import TYPE_CHECKING

from rich.segment import Segment
from textual.strip import Strip

if TYPE_CHECKING:
    from rich.console import Console
    from rich.style import Style
    from rich.text import Text


def text_strip(text: Text, width: int, style: Style, console: Console) -> Strip:
    """`text` cut or padded to `width`, over the widget's base `style`."""
    line = text.copy()
    line.truncate(width, overflow="ellipsis", pad=True)
    segments = Segment.apply_style(list(line.render(console)), style)
    return Strip(segments, width).crop_extend(0, width, style)
