"""Pilot tests of the error panel: groups, retrying a group, sorting, the filter and the
footer (issue 14), on a gated run (no wall-clock waiting)."""

from __future__ import annotations

from typing import Any

from rich.text import Text
from textual.widgets import Input, Static

from antflow.runstream.records import Retry
from antflow_tui.demo import GatedRun
from antflow_tui.messages import RetryRequested
from antflow_tui.screens.confirm import ConfirmScreen
from antflow_tui.screens.item import ItemScreen
from antflow_tui.widgets.error_panel import ErrorPanel
from tests.tui.apps import ITEMS, finish, gated_app, text_of, until
from tests.tui.recorded import RecordedSource, recorded_app

SIZE = (120, 40)


def _plain(title: object) -> str:
    """A border title as the screen shows it (it is kept as markup)."""
    return Text.from_markup(str(title)).plain


def _failing_run() -> tuple[GatedRun, dict[str, Any]]:
    """Three items fail in Fetch with one bug (the URL differs), one in Parse with another."""
    run = GatedRun(list(ITEMS))
    for value in (1, 3, 6):
        run.fail("Fetch", value, f"HTTP 500 from https://example.test/page-{value}")
    return run, {"Parse": 4}


async def test_c_groups_failures_enter_lists_a_group_and_escape_goes_back() -> None:
    run, failing = _failing_run()
    app = gated_app(run)
    async with app.run_test(size=SIZE) as pilot:
        await finish(app, run, failing=failing)
        panel = app.screen.query_one(ErrorPanel)
        assert panel.row_count == 4
        await pilot.press("3", "c")
        assert panel.view == "groups"
        # Fetch tries twice: each of its failures had an attempt tried again (listed after
        # the failures, marked retried).
        assert [(g.pattern, g.count, g.retried) for g in panel.groups] == [
            ("HTTP <n> from <url>", 3, False),
            ("Parse refused item <n>", 1, False),
            ("HTTP <n> from <url>", 3, True),
        ]
        assert "Error groups (3) of 4 failed · 3 retried attempts" in str(panel.border_title)
        first = panel.render_line(1).text
        assert "3" in first
        assert "HTTP <n> from <url>" in first
        assert "Count" in panel.render_line(0).text
        await pilot.press("enter")
        assert panel.view == "items"
        assert panel.group == ("antflow_tui.demo.DemoError", "HTTP <n> from <url>")
        assert sorted(f.item for f in panel.shown_failures) == ["page-1", "page-3", "page-6"]
        assert "Errors (3 of 4)" in str(panel.border_title)
        assert "group DemoError: HTTP <n> from <url>" in str(panel.border_title)
        # Enter on an item of the group opens it.
        await pilot.press("enter")
        await until(lambda: isinstance(app.screen, ItemScreen))
        await pilot.press("escape")
        await pilot.press("escape")
        assert panel.view == "groups"
        assert panel.group is None
        await pilot.press("c")
        assert panel.view == "items"
        assert panel.row_count == 4


async def test_capital_r_on_a_group_retries_that_group_after_confirming() -> None:
    run, failing = _failing_run()
    app = gated_app(run)
    seen: list[Any] = []
    async with app.run_test(size=SIZE, message_hook=seen.append) as pilot:
        await finish(app, run, failing=failing)
        pipeline = app.source.current.pipeline  # type: ignore[union-attr]
        await pilot.press("3", "c")
        await pilot.press("R")
        await until(lambda: isinstance(app.screen, ConfirmScreen))
        assert "the 3 failed items of DemoError: HTTP <n> from <url>" in text_of(
            app.screen.query_one(Static)
        )
        run.failures.clear()
        await pilot.press("y")
        await until(lambda: pipeline.failed_item_ids() == ["page-4"] and not pipeline.is_running)
        retried = {tuple(sorted(m.items)) for m in seen if isinstance(m, RetryRequested)}
        assert retried == {((1, "page-1"), (1, "page-3"), (1, "page-6"))}


async def test_a_group_retries_from_a_recording_shown_live() -> None:
    """The same through a recorded run: the command sent names the group's items."""
    app = recorded_app("failures")
    async with app.run_test(size=SIZE) as pilot:
        await until(lambda: app.state.status is not None)
        app.redraw()
        await pilot.press("3", "c", "down", "R")
        await until(lambda: isinstance(app.screen, ConfirmScreen))
        await pilot.press("y")
        source = app.source
        assert isinstance(source, RecordedSource)
        await until(lambda: bool(source.sent))
        (command,) = source.sent
        assert isinstance(command, Retry)
        assert len(command.items) == 1


async def test_o_sorts_the_error_list_and_marks_the_column() -> None:
    run, failing = _failing_run()
    app = gated_app(run)
    async with app.run_test(size=SIZE) as pilot:
        await finish(app, run, failing=failing)
        panel = app.screen.query_one(ErrorPanel)
        newest_first = [panel.failure_at(i).item for i in range(4)]  # type: ignore[union-attr]
        assert newest_first[0] == "page-4"  # Parse failed it last
        await pilot.press("3", "o")  # by item
        assert panel.item_order.column == "item"
        assert "Item▲" in panel.render_line(0).text
        by_item = [panel.failure_at(i).item for i in range(4)]  # type: ignore[union-attr]
        assert by_item == ["page-1", "page-3", "page-4", "page-6"]
        await pilot.press("O")
        assert "Item▼" in panel.render_line(0).text
        assert [panel.failure_at(i).item for i in range(4)] == by_item[::-1]  # type: ignore[union-attr]
        await pilot.press("o")  # by stage: Fetch before Parse
        assert "Stage▲" in panel.render_line(0).text
        assert panel.failure_at(3).stage == "Parse"  # type: ignore[union-attr]
        # Groups sort on their own columns.
        await pilot.press("c", "o")
        assert panel.group_order.column == "count"
        assert "Count▼" in panel.render_line(0).text
        await pilot.press("O")
        assert [g.count for g in panel.groups] == [1, 3, 3], "the retried attempts' after"


async def test_the_footer_follows_the_filter_and_slash_opens_holding_it() -> None:
    run, failing = _failing_run()
    app = gated_app(run)
    async with app.run_test(size=SIZE) as pilot:
        await finish(app, run, failing=failing)
        panel = app.screen.query_one(ErrorPanel)
        assert _plain(panel.border_subtitle) == "DemoError 4"
        await pilot.press("3", "slash")
        bar = app.screen.query_one("#filter-bar", Input)
        bar.value = "stage:Parse"
        await pilot.press("enter")
        assert panel.row_count == 1
        app.redraw()
        assert _plain(panel.border_subtitle) == "DemoError 1"
        assert "Errors (1 of 4)" in str(panel.border_title)
        await pilot.press("slash")
        assert bar.value == "stage:Parse"
        assert bar.cursor_position == len("stage:Parse"), "typing goes on at the end"
        await pilot.press(*" item:page-4")
        await pilot.press("enter")
        assert panel.filter is not None
        assert panel.filter.source == "stage:Parse item:page-4"
        assert panel.row_count == 1
