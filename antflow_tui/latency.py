"""A stage's task times as the stage screen shows them: the distribution as a bar chart,
and the slowest items.

Pure functions over `StageRow`'s latency fields (`antflow.runstream.records`): a sampled
histogram of log-spaced buckets, each given as (upper bound in seconds, count).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Final

from rich.text import Text

from antflow_tui.formatting import format_duration
from antflow_tui.palette import DEFAULT, Palette
from antflow_tui.safe_text import ELLIPSIS, item_label

if TYPE_CHECKING:
    from collections.abc import Sequence

    from antflow.runstream.records import ItemKey

_PER_OCTAVE: Final = (4.0, 2.0, 1.0, 0.5, 0.25, 0.125, 0.0625)
"""Rows per doubling of time the chart tries, finest first, until its rows fit."""
_EIGHTHS: Final = " ▏▎▍▌▋▊▉█"
LABEL_WIDTH: Final = 8
SHARE_WIDTH: Final = 5


def histogram_rows(
    histogram: Sequence[tuple[float, int]], max_rows: int
) -> list[tuple[float, int]]:
    """The histogram in at most `max_rows` rows of equal width on a log scale, from the
    fastest bucket to the slowest (empty rows between them kept): (upper bound, count).

    Each bucket goes to the row whose upper bound is the first at or above its own, so a
    row's label is a true "at most".
    """
    pairs = [(upper, count) for upper, count in histogram if count > 0 and upper > 0]
    if not pairs or max_rows <= 0:
        return []
    logs = [math.log2(upper) for upper, _ in pairs]
    per_octave = _PER_OCTAVE[-1]
    for per_octave in _PER_OCTAVE:
        keys = [math.ceil(value * per_octave - 1e-9) for value in logs]
        if max(keys) - min(keys) + 1 <= max_rows:
            break
    keys = [math.ceil(value * per_octave - 1e-9) for value in logs]
    low, high = min(keys), max(keys)
    counts = [0] * (high - low + 1)
    for key, (_, count) in zip(keys, pairs, strict=True):
        counts[key - low] += count
    rows = [(2.0 ** ((low + index) / per_octave), count) for index, count in enumerate(counts)]
    if len(rows) > max_rows:
        # Times spread wider than the coarsest scale: rows taken together, slowest last.
        per = math.ceil(len(rows) / max_rows)
        rows = [
            (rows[min(start + per, len(rows)) - 1][0], sum(c for _, c in rows[start : start + per]))
            for start in range(0, len(rows), per)
        ]
    return rows


def histogram_chart(
    rows: Sequence[tuple[float, int]],
    width: int,
    *,
    p50: float | None = None,
    p95: float | None = None,
    palette: Palette = DEFAULT,
) -> Text:
    """The rows as horizontal bars, one line each: '≤ 1.2s ██████▌   34%  p50'.

    Bars are scaled to the fullest row; shares are of all the rows' counts (the counts
    are sampled, so shares say more than they do).
    """
    total = sum(count for _, count in rows)
    chart = Text(no_wrap=True, overflow="ellipsis")
    if not total:
        chart.append("No finished items yet.", style="dim")
        return chart
    fullest = max(count for _, count in rows)
    marks: dict[int, list[str]] = {}
    for label, seconds in (("p50", p50), ("p95", p95)):
        row = _row_of(rows, seconds)
        if row is not None:
            marks.setdefault(row, []).append(label)
    bar_width = max(width - LABEL_WIDTH - SHARE_WIDTH - 10, 4)
    for index, (upper, count) in enumerate(rows):
        if index:
            chart.append("\n")
        chart.append(f"≤{format_duration(upper):>{LABEL_WIDTH - 1}} ", style="dim")
        chart.append(_bar(count / fullest, bar_width), style=palette("progress"))
        share = count / total
        chart.append(f" {share:>{SHARE_WIDTH - 1}.0%}" if share >= 0.005 else " " * SHARE_WIDTH)
        if index in marks:
            chart.append(f"  {' '.join(marks[index])}", style="bold")
    return chart


def _row_of(rows: Sequence[tuple[float, int]], seconds: float | None) -> int | None:
    if seconds is None:
        return None
    for index, (upper, _) in enumerate(rows):
        if seconds <= upper * (1 + 1e-9):
            return index
    return len(rows) - 1


def _bar(fraction: float, width: int) -> str:
    """`fraction` of `width` cells, in eighths of a cell."""
    eighths = round(max(min(fraction, 1.0), 0.0) * width * 8)
    if fraction > 0 and not eighths:
        eighths = 1
    full, rest = divmod(eighths, 8)
    bar = "█" * full + (_EIGHTHS[rest] if rest else "")
    return bar.ljust(width)


def slowest_line(item: ItemKey, seconds: float, width: int) -> Text:
    """One row of the slowest items: the item's id and its time."""
    time = format_duration(seconds)
    room = max(width - len(time) - 1, 4)
    # Cut by cells, not characters: a wide (CJK, emoji) id takes two cells a character.
    label = Text(item_label(item, room), style="bold")
    if label.cell_len > room:
        label.truncate(room - 1)
        label.append(ELLIPSIS)
    line = Text(no_wrap=True, overflow="ellipsis")
    line.append_text(label)
    line.append(" " * max(width - label.cell_len - len(time), 1))
    line.append(time)
    return line


def latency_summary(
    p50: float | None, p95: float | None, maximum: float | None, average: float | None
) -> Text:
    """'avg 1.2s  p50 0.9s  p95 3.4s  max 8.1s' ('–' where unknown)."""
    text = Text()
    for index, (label, value) in enumerate(
        (("avg", average), ("p50", p50), ("p95", p95), ("max", maximum))
    ):
        if index:
            text.append("  ")
        text.append(f"{label} ", style="dim")
        text.append(format_duration(value), style="bold")
    return text
