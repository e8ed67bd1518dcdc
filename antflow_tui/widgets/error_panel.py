"""ErrorPanel: failed items, newest first, with counts by error type in its title."""

from __future__ import annotations

from typing import TYPE_CHECKING

from rich.text import Text

from antflow_tui.palette import screen_palette
from antflow_tui.present import ERROR_COLUMNS, PIPELINE_COLUMN, error_rows, failure_facts
from antflow_tui.widgets.row_list import RowList

if TYPE_CHECKING:
    from collections.abc import Sequence

    from antflow.runstream.records import ErrorRecord
    from antflow_tui.filters import Filter


class ErrorPanel(RowList):
    """Every failure the run has kept, newest first; rows render only when visible.

    With several pipelines, a first column names the pipeline each item failed in.
    """

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self._all: Sequence[ErrorRecord] = ()
        self._failures: Sequence[ErrorRecord] = ()
        self.filter: Filter | None = None
        self.pipelines = 1
        """How many pipelines the run has (more than one adds the pipeline column)."""

    def show(self, failures: Sequence[ErrorRecord], *, pipelines: int = 1) -> None:
        """Show these failures (oldest first, as the engine lists them)."""
        if failures is self._all and pipelines == self.pipelines:
            return  # the same list: nothing failed or was retried since
        if pipelines != self.pipelines:
            self.pipelines = pipelines
            self._line_cache.clear()
        self._all = failures
        self._apply()

    def set_filter(self, panel_filter: Filter | None) -> None:
        self.filter = None if panel_filter is None or panel_filter.empty else panel_filter
        self._apply()

    def _apply(self) -> None:
        chosen = self.filter
        if chosen is None:
            self._failures = self._all
        else:
            self._failures = [f for f in self._all if chosen.matches(failure_facts(f))]
        self.set_count(len(self._failures))

    @property
    def shown_failures(self) -> Sequence[ErrorRecord]:
        """The failures the panel shows (after its filter), oldest first."""
        return self._failures

    def failure_at(self, index: int) -> ErrorRecord | None:
        """The failure on row `index` (row 0 is the newest)."""
        position = len(self._failures) - 1 - index
        return self._failures[position] if 0 <= position < len(self._failures) else None

    def row_key(self, index: int) -> object:
        failure = self.failure_at(index)
        # An error record's number is unique in the run: a retried item's new failure
        # has a new one.
        if failure is None:
            return None
        return (failure.pipeline, failure.number)

    def header(self, width: int) -> Text | None:
        titles = ERROR_COLUMNS if self.pipelines == 1 else (PIPELINE_COLUMN, *ERROR_COLUMNS)
        return _join([Text(title) for title in titles], width)

    def render_row(self, index: int, width: int) -> Text:
        failure = self.failure_at(index)
        if failure is None:
            return Text()
        (row,) = error_rows([failure], pipelines=self.pipelines, palette=screen_palette(self))
        return _join(list(row.cells), width)


def _column_widths(width: int, *, pipeline: bool = False) -> tuple[int, ...]:
    """Widths of (Pipe,) Item, Stage, Error, Message, Tries; the message gets what is
    left, and the tries column goes first when the panel is narrow."""
    pipe = 4 if pipeline else 0
    width -= pipe + 1 if pipeline else 0
    # The item id matters most: it is what a person looks for and opens.
    item = max(8, min(18, width * 20 // 100))
    stage = max(6, min(14, width * 14 // 100))
    error = max(10, min(24, width * 22 // 100))
    tries = 5
    message = width - item - stage - error - tries - 4
    if message < 10:
        tries = 0
        message = width - item - stage - error - 3
    widths = (item, stage, error, max(message, 0), tries)
    return (pipe, *widths) if pipeline else widths


def _join(cells: list[Text], width: int) -> Text:
    """Lay cells out in the panel's columns."""
    line = Text(no_wrap=True, overflow="ellipsis")
    widths = _column_widths(width, pipeline=len(cells) > len(ERROR_COLUMNS))
    for index, (cell, cell_width) in enumerate(zip(cells, widths, strict=True)):
        if not cell_width:
            continue
        if index:
            line.append(" ")
        piece = cell.copy()
        if piece.justify == "right":
            piece.pad_left(max(cell_width - piece.cell_len, 0))
        piece.truncate(cell_width, overflow="ellipsis", pad=True)
        line.append_text(piece)
    return line
