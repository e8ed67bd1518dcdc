"""The stage table sorts by a column and shows the columns its width holds (issue 14)."""

from __future__ import annotations

from antflow_tui.widgets.stage_table import StageTable
from tests.tui.apps import until
from tests.tui.recorded import recorded_app, replay_app


def _headings(table: StageTable) -> list[str]:
    return [str(column.label) for column in table.columns.values()]


def _order(table: StageTable) -> list[str]:
    return [str(row.key.value) for row in table.ordered_rows]


async def test_o_sorts_by_the_next_column_and_capital_o_reverses() -> None:
    app = recorded_app("mid_run")
    async with app.run_test(size=(160, 40)) as pilot:
        await until(lambda: app.state.status is not None)
        app.redraw()
        table = app.screen.query_one(StageTable)
        assert _order(table) == ["Fetch", "Parse", "Save"]
        await pilot.press("1", "o")  # by name, A to Z
        assert table.order.column == "stage"
        assert _headings(table)[0] == "Stage▲"
        assert _order(table) == ["Fetch", "Parse", "Save"]
        await pilot.press("O")
        assert _headings(table)[0] == "Stage▼"
        assert _order(table) == ["Save", "Parse", "Fetch"]
        for _ in range(4):  # busy, queued, queue depth is a sparkline (skipped), run, done
            await pilot.press("o")
        assert table.order.column == "done"
        assert "Done▼" in _headings(table)
        # Fetch 3 done, Parse 2, Save 1.
        assert _order(table) == ["Fetch", "Parse", "Save"]
        await pilot.press("O")
        assert _order(table) == ["Save", "Parse", "Fetch"]
        assert "Done▲" in _headings(table)
        # Clicking a heading sorts by it.
        table.sort_by("failed")
        assert _order(table)[0] == "Fetch"
        assert "Fail▼" in _headings(table)


async def test_o_steps_back_to_pipeline_order_after_the_last_column() -> None:
    app = recorded_app("mid_run")
    async with app.run_test(size=(160, 40)) as pilot:
        await until(lambda: app.state.status is not None)
        app.redraw()
        table = app.screen.query_one(StageTable)
        await pilot.press("1")
        for _ in range(13):  # every sortable column
            await pilot.press("o")
        assert table.order.column == "max"
        await pilot.press("o")
        assert table.order.column is None
        assert not any(heading.endswith(("▲", "▼")) for heading in _headings(table))


async def test_a_narrow_terminal_keeps_the_columns_that_matter() -> None:
    app = replay_app("failures")
    async with app.run_test(size=(80, 24)) as pilot:
        await until(lambda: app.state.status is not None)
        app.redraw()
        await pilot.pause()
        table = app.screen.query_one(StageTable)
        assert _headings(table) == [
            "Stage",
            "Busy",
            "Queued",
            "Done",
            "Fail",
            "Retry",
            "Rate",
            "Throughput",
            "p95",
        ]
        await pilot.resize_terminal(160, 40)
        await pilot.pause()
        app.redraw()
        await pilot.pause()
        assert len(_headings(table)) == 15
        assert {"Avg", "p50", "p95", "Max", "Queue depth", "Throughput"} <= set(_headings(table))
