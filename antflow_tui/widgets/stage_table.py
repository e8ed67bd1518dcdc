"""StageTable: one row per stage, updated cell by cell."""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

from rich.text import Text
from textual.binding import Binding, BindingType
from textual.message import Message
from textual.widgets import DataTable

from antflow_tui.present import STAGE_COLUMNS, StageRow, stage_facts

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
        """Enter was pressed on a stage."""

        def __init__(self, stage: str) -> None:
            super().__init__()
            self.stage = stage

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id, cursor_type="row", zebra_stripes=False)
        self._shown: dict[str, tuple[Text, ...]] = {}
        self._rows: Sequence[StageRow] = ()
        self.filter: Filter | None = None

    def set_filter(self, table_filter: Filter | None) -> None:
        self.filter = None if table_filter is None or table_filter.empty else table_filter
        self.show(self._rows)

    def on_mount(self) -> None:
        for key, label in STAGE_COLUMNS:
            self.add_column(label, key=key)

    def show(self, rows: Sequence[StageRow]) -> None:
        """Bring the table to `rows`: add new stages, update changed cells, drop gone ones."""
        self._rows = rows
        if self.filter is not None:
            chosen = self.filter
            rows = [row for row in rows if chosen.matches(stage_facts(row))]
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
                    if old != new:
                        self.update_cell(row.key, column, new, update_width=True)
            self._shown[row.key] = row.cells

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
            self.post_message(self.StageChosen(str(event.row_key.value)))
