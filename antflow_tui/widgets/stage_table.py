"""StageTable: one row per stage (or, for all pipelines, per pipeline), updated cell by cell.

It shows the columns that fit its width (`present.fit_stage_columns`), those of limits
and tokens only when some stage has them, and sorts by one of them when asked (the arrow
in that column's heading says which way).
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, ClassVar, Final

from rich.text import Text
from textual.message import Message
from textual.widgets import DataTable

from antflow_tui.keys import bindings
from antflow_tui.present import (
    SPARK_COLUMNS,
    STAGE_COLUMNS,
    STAGE_WIDTHS,
    StageRow,
    fit_stage_columns,
    sort_stage_rows,
    stage_facts,
)
from antflow_tui.sorting import SortOrder, heading_with_arrow

BUSY_REDRAW_SECONDS: Final = 0.25
"""How often the table's numbers move while a run is busy."""
BORDER: Final = 2
"""Cells the table's border takes from the screen's width."""

if TYPE_CHECKING:
    from collections.abc import Sequence

    from textual import events
    from textual.binding import BindingType

    from antflow_tui.filters import Filter

_INDEX: Final = {key: index for index, (key, _) in enumerate(STAGE_COLUMNS)}
SORTABLE: Final = tuple(key for key, _ in STAGE_COLUMNS if key not in SPARK_COLUMNS)
"""The columns the table sorts by, in the order the sort key steps through them."""
ASCENDING_FIRST: Final = frozenset({"stage"})
"""Columns first sorted A to Z (the others biggest first)."""


class StageTable(DataTable[Text]):
    """The stage table. Rows are keyed by stage name; only changed cells are updated."""

    BINDINGS: ClassVar[list[BindingType]] = bindings("stage-table")

    class StageChosen(Message):
        """Enter was pressed on a stage (or, in the all-pipelines table, a pipeline)."""

        def __init__(self, stage: str, pipeline: int) -> None:
            super().__init__()
            self.stage = stage
            self.pipeline = pipeline

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id, cursor_type="row", zebra_stripes=False)
        self._shown: dict[str, tuple[Text, ...]] = {}
        self._rows: Sequence[StageRow] = ()
        self.filter: Filter | None = None
        self._marks: list[tuple[int, str, bool, bool]] = []
        self._drawn_at = float("-inf")
        self._heading = "Stage"
        self._rows_of: set[int] | None = None
        self._pipelines: dict[str, int] = {}
        self._columns: tuple[str, ...] = ()
        self.order = SortOrder()
        """The column the rows are sorted by (None: pipeline order)."""

    def set_filter(self, table_filter: Filter | None) -> None:
        self.filter = None if table_filter is None or table_filter.empty else table_filter
        self.show(self._rows, force=True)

    # ---------------------------------------------------------------- sorting

    def next_sort(self) -> SortOrder:
        """Sort by the next visible column (after the last: pipeline order again)."""
        choices = [key for key in SORTABLE if key in self._columns]
        self.order = self.order.next(choices, ASCENDING_FIRST)
        self._rebuild()
        return self.order

    def reverse_sort(self) -> SortOrder:
        """Sort the other way (pipeline order too: last stage first)."""
        self.order = self.order.reversed()
        self._rebuild()
        return self.order

    def sort_by(self, column: str) -> None:
        """Sort by `column` (again: the other way)."""
        if column not in SORTABLE:
            return
        if self.order.column == column:
            self.order = self.order.reversed()
        else:
            self.order = SortOrder(column, column not in ASCENDING_FIRST)
        self._rebuild()

    def on_data_table_header_selected(self, event: DataTable.HeaderSelected) -> None:
        event.stop()
        if event.column_key.value is not None:
            self.sort_by(event.column_key.value)

    def _rebuild(self) -> None:
        self.clear(columns=True)
        self._shown = {}
        self.show(self._rows, force=True)

    # ---------------------------------------------------------------- drawing

    def _fitting(self, rows: Sequence[StageRow]) -> tuple[tuple[str, ...], int]:
        names = max((row.cells[0].cell_len for row in rows), default=5)
        stage_width = min(max(names, len(self._heading) + 1), 28)
        width = self.size.width or (self.app.size.width - BORDER)
        optional = frozenset().union(*(row.optional for row in rows))
        return fit_stage_columns(width, stage_width, optional), stage_width

    def _add_columns(self, columns: tuple[str, ...], stage_width: int) -> None:
        # Fixed widths (see present.STAGE_WIDTHS); the stage column fits the longest name.
        labels = dict(STAGE_COLUMNS)
        for key in columns:
            label = self._heading if key == "stage" else labels[key]
            label = heading_with_arrow(label, key, self.order)
            width = STAGE_WIDTHS.get(key, stage_width)
            self.add_column(label, key=key, width=width)

    def show(
        self, rows: Sequence[StageRow], *, force: bool = False, heading: str = "Stage"
    ) -> None:
        """Bring the table to `rows`: add new stages, update changed cells, drop gone ones.

        While counts change every frame, cells are updated at most every
        `BUSY_REDRAW_SECONDS`: a DataTable re-renders all its cells on any change, the
        largest cost of a frame, and numbers changing ten times a second cannot be read.
        """
        self._rows = rows
        moment = time.monotonic()
        marks = [(row.pipeline, row.key, row.bottleneck, row.paused) for row in rows]
        if not force and marks == self._marks and moment - self._drawn_at < BUSY_REDRAW_SECONDS:
            return
        self._marks = marks
        self._drawn_at = moment
        if self.filter is not None:
            chosen = self.filter
            rows = [row for row in rows if chosen.matches(stage_facts(row))]
        rows = sort_stage_rows(rows, self.order.column, descending=self.order.descending)
        columns, stage_width = self._fitting(self._rows)
        if (
            heading != self._heading
            or columns != self._columns
            or (self._rows_of is not None and self._rows_of != {row.pipeline for row in self._rows})
        ):
            # Another pipeline (or all of them), or another width: other columns.
            self._heading = heading
            self._columns = columns
            self.clear(columns=True)
            self._shown = {}
        self._rows_of = {row.pipeline for row in self._rows}
        if not self.columns:
            self._add_columns(columns, stage_width)
        if [row.key for row in rows] != list(self._shown):
            # Stages came or went (a filter changed), or the sort order moved: rebuild.
            # Rare; every other frame only touches the cells that changed.
            self.clear()
            self._shown = {}
        indexes = [_INDEX[key] for key in columns]
        for row in rows:
            cells = tuple(row.cells[index] for index in indexes)
            before = self._shown.get(row.key)
            if before is None:
                self.add_row(*cells, key=row.key)
            else:
                for column, old, new in zip(columns, before, cells, strict=True):
                    # Text equality ignores the base style: a theme's new colour is one.
                    if old != new or old.style != new.style:
                        self.update_cell(row.key, column, new)
            self._shown[row.key] = cells
            self._pipelines[row.key] = row.pipeline

    def on_resize(self, _event: events.Resize) -> None:
        if self._rows and self._fitting(self._rows)[0] != self._columns:
            self.show(self._rows, force=True, heading=self._heading)

    @property
    def selected_stage(self) -> str | None:
        if not self.row_count:
            return None
        row_key, _ = self.coordinate_to_cell_key(self.cursor_coordinate)
        return None if row_key.value is None else str(row_key.value)

    def action_scroll_top(self) -> None:
        self.move_cursor(row=0)

    def action_scroll_bottom(self) -> None:
        self.move_cursor(row=self.row_count - 1)

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        event.stop()
        if event.row_key.value is not None:
            key = str(event.row_key.value)
            self.post_message(self.StageChosen(key, self._pipelines.get(key, 1)))
