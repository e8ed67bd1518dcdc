"""A line whole (issue 17.11): the error panel's message column keeps a long message's end,
and v shows the selected error row or event log line whole, wrapped, copyable."""

from __future__ import annotations

from typing import TYPE_CHECKING

from rich.text import Text

from antflow.runstream.records import ErrorRecord
from antflow_tui.demo import GatedRun
from antflow_tui.safe_text import fit_middle
from antflow_tui.screens.line import LineScreen
from antflow_tui.screens.main import MainScreen
from antflow_tui.widgets.error_panel import ErrorPanel
from antflow_tui.widgets.event_log import EventLog
from tests.tui.apps import ITEMS, busy, gated_app, hosted, stats, text_of, until

if TYPE_CHECKING:
    from typing import Any

    from antflow_tui.app import AntflowApp

SIZE = (120, 40)
URL = "https://shop.example.test/catalog/items/page-2?session=7f3a"
LONG = f"Server error '503 Service Unavailable' after 3 redirects via {'/hop' * 40} for url '{URL}'"
"""A message much longer than the panel's column, whose end says which page failed."""


def failure(message: str) -> ErrorRecord:
    return ErrorRecord(
        number=1,
        pipeline=1,
        at=0.0,
        item="page-2",
        stage="Fetch",
        task="fetch",
        attempt=3,
        type="httpx.HTTPStatusError",
        message=message,
        traceback="",
    )


# Issue 17.11: the error message column cut the URL at the column's end.
def test_a_long_message_keeps_its_end_in_the_error_panel() -> None:
    panel = ErrorPanel()
    panel.show([failure(LONG + "\nFor more information check: https://developer.example/503")])
    row = panel.render_row(0, 100).plain
    assert row.rstrip().endswith("3")  # the tries column
    assert "…" in row
    assert "session=7f3a'" in row  # the URL's end, which tells this failure from the next
    assert row.startswith("page-2")
    assert "developer.example" not in row  # the first line only: the rest is in v


def test_fit_middle_keeps_both_ends_within_the_width() -> None:
    text = Text(LONG)
    for width in (16, 30, 61, 100):
        cut = fit_middle(text, width)
        assert cut.cell_len == width
        assert cut.plain.startswith("Server")
        assert cut.plain.endswith("7f3a'")
        assert cut.plain.count("…") == 1
    assert fit_middle(Text("short"), 30).plain == "short"
    assert fit_middle(text, 10).plain == "Server er…"  # too narrow to keep both ends


def test_fit_middle_counts_wide_characters_as_two_cells() -> None:
    cut = fit_middle(Text("数据错误" * 10 + " page/42"), 20)
    assert cut.cell_len <= 20
    assert cut.plain.endswith("page/42")


async def failed_with(app: AntflowApp, run: GatedRun, pilot: Any, message: str) -> None:
    await until(lambda: busy(app, "Fetch-W2"))
    run.fail("Fetch", 2, message)
    run.release("Fetch", 0, 1, 2)
    await until(lambda: stats(app).items_failed == 1)
    app.redraw()
    await pilot.pause()


async def test_v_shows_the_selected_failure_whole_and_c_copies_it() -> None:
    run = GatedRun(list(ITEMS))
    app = gated_app(run)
    copied: list[str] = []
    async with app.run_test(size=SIZE) as pilot:
        await failed_with(app, run, pilot, LONG + "\nsecond line [red]literal[/red]")
        app.copy_to_clipboard = copied.append  # type: ignore[method-assign]
        await pilot.press("3", "v")
        await until(lambda: isinstance(app.screen, LineScreen))
        shown = text_of(app.screen.query_one("#line-text"), width=100)
        flat = shown.replace("\n", "")
        assert URL in flat  # wrapped, but all there
        assert "second line [red]literal[/red]" in shown
        assert "page-2" in shown
        await pilot.press("c")
        await pilot.press("escape")
        await until(lambda: isinstance(app.screen, MainScreen))
    assert len(copied) == 1
    assert copied[0].endswith("second line [red]literal[/red]")
    assert URL in copied[0]


async def test_v_shows_a_long_log_line_whole() -> None:
    run = GatedRun(list(ITEMS))
    app = gated_app(run)
    line = "PipelineError: item 'page-9' is live: " + "x" * 600 + " THE END"
    async with app.run_test(size=SIZE) as pilot:
        await until(lambda: busy(app, "Fetch-W2"))
        hosted(app).note(line, error=True)
        log = app.screen.query_one(EventLog)
        await until(lambda: any(e.line and e.line.text == line for e in log.entries))
        await pilot.press("4", "end", "v")
        await until(lambda: isinstance(app.screen, LineScreen))
        shown = text_of(app.screen.query_one("#line-text"), width=100).replace("\n", "")
        assert "THE END" in shown
        assert "x" * 600 in shown


async def test_v_is_offered_where_there_is_a_line_to_show() -> None:
    run = GatedRun(list(ITEMS))
    app = gated_app(run)
    async with app.run_test(size=SIZE) as pilot:
        await until(lambda: busy(app, "Fetch-W2"))
        descriptions = {a.binding.description for a in app.screen.active_bindings.values()}
        assert "Full line" not in descriptions  # the stage table has focus
        await pilot.press("4")
        descriptions = {a.binding.description for a in app.screen.active_bindings.values()}
        assert "Full line" in descriptions
