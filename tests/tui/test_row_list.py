"""A following list keeps its newest rows in view when it jumps from a few rows (no
scrollbar yet) to many in one frame, as a replay's log does after a jump back."""

from __future__ import annotations

from rich.text import Text
from textual.app import App, ComposeResult

from antflow_tui.widgets.row_list import RowList


class Numbers(RowList):
    def render_row(self, index: int, width: int) -> Text:
        return Text(f"row {index}")


class OneList(App[None]):
    def compose(self) -> ComposeResult:
        numbers = Numbers()
        numbers.follow = True
        numbers.styles.height = 5
        yield numbers


async def test_a_following_list_shows_its_newest_rows_after_a_jump() -> None:
    app = OneList()
    async with app.run_test(size=(40, 12)) as pilot:
        numbers = app.query_one(Numbers)
        numbers.set_count(1)
        await pilot.pause()
        # The scrollbar (which allows scrolling) comes only with the next layout.
        numbers.set_count(200)
        await pilot.pause()
        assert numbers.scroll_y == numbers.max_scroll_y > 0
        assert numbers.cursor == 199
