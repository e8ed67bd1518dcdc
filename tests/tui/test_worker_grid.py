"""The worker grid widget on its own: cells fit the width left beside its scrollbar."""

from __future__ import annotations

from typing import ClassVar

from textual.app import App, ComposeResult

from antflow_tui.present import WorkerCell
from antflow_tui.widgets.worker_grid import WorkerGrid


class GridApp(App[None]):
    CSS: ClassVar[str] = "WorkerGrid { height: 6; width: 40; }"

    def compose(self) -> ComposeResult:
        yield WorkerGrid(id="grid")


def cells(count: int) -> list[WorkerCell]:
    return [
        WorkerCell(f"Load-W{n}", "Load", "busy", f"o-{n:05d}", "50 rows buffered", 1.0)
        for n in range(count)
    ]


async def test_cells_are_laid_out_again_when_the_scrollbar_takes_its_columns() -> None:
    """A scrollbar appears once the cells overflow: laid out for the full width, they were
    cut with an ellipsis at their right edge."""
    app = GridApp()
    async with app.run_test(size=(60, 12)) as pilot:
        grid = app.query_one(WorkerGrid)
        many = cells(12)
        grid.show(many, {"Load": "12/12 busy"}, force=True)
        await pilot.pause()
        grid.show(many, {"Load": "12/12 busy"}, force=True)
        await pilot.pause()
        width = grid.scrollable_content_region.width
        assert width < 40, "the scrollbar takes columns"
        for y in range(1, 5):
            line = grid.render_line(y).text
            assert "…" not in line, line
            assert line.startswith("▶ W")
