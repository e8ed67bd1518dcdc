"""StageTable: one row per stage (or, for all pipelines, per pipeline), updated cell by cell."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, ClassVar, Final

from rich.text import Text
from textual.binding import Binding, BindingType
from textual.message import Message
from textual.widgets import DataTable

from antflow_tui.present import STAGE_COLUMNS, STAGE_WIDTHS, StageRow, stage_facts

BUSY_REDRAW_SECONDS: Final = 0.25
"""How often the table's numbers move while a run is busy."""

if TYPE_CHECKING:
    from collections.abc import Sequence

    from antflow_tui.filters import Filter


class StageTable(DataTable[Text]):
    """The stage table. Rows are keyed by stage name; only changed cells are updated."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("j", "cursor_down", "Down", show=False),
        Binding("k", "cursor_up", "Up", show=False),
        Binding("g", "scroll_top", "First", show=False),
        Binding("G", "scroll_bottom", "Last", show=False),
    ]

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

    def set_filter(self, table_filter: Filter | None) -> None:
        self.filter = None if table_filter is None or table_filter.empty else table_filter
        self.show(self._rows, force=True)

    def _add_columns(self, rows: Sequence[StageRow]) -> None:
        # Fixed widths (see present.STAGE_WIDTHS); the stage column fits the longest name.
        names = max((row.cells[0].cell_len for row in rows), default=5)
        for key, label in STAGE_COLUMNS:
            if key == "stage":
                label = self._heading
            width = STAGE_WIDTHS.get(key, min(max(names, len(label)), 28))
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
        if heading != self._heading or (
            self._rows_of is not None and self._rows_of != {row.pipeline for row in self._rows}
        ):
            # Another pipeline (or all of them): other names, another first column.
            self._heading = heading
            self.clear(columns=True)
            self._shown = {}
        self._rows_of = {row.pipeline for row in self._rows}
        if not self.columns:
            self._add_columns(self._rows)
        if [row.key for row in rows] != list(self._shown):
            # Stages came or went (a filter changed): rebuild in pipeline order. Rare;
            # every other frame only touches the cells that changed.
            self.clear()
            self._shown = {}
        for row in rows:
            before = self._shown.get(row.key)
            if before is None:
                self.add_row(*row.cells, key=row.key)
            else:
                for (column, _), old, new in zip(STAGE_COLUMNS, before, row.cells, strict=True):
                    # Text equality ignores the base style: a theme's new colour is one.
                    if old != new or old.style != new.style:
                        self.update_cell(row.key, column, new)
            self._shown[row.key] = row.cells
            self._pipelines[row.key] = row.pipeline

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
