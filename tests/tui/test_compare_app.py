"""The compare screen driven by keys: enter opens an item's story in both runs, f shows
one kind of change, w writes the newly failed items for --retry-from.

Issue 22 ("Compare two runs item by item").
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from textual.widgets import Input, Static

from antflow.refeed import read_export
from antflow.runstream.compare import compare
from antflow.runstream.fileformat import Recording
from antflow.runstream.runsummary import summarise
from antflow_tui.compare.app import CompareApp
from antflow_tui.compare.item_screen import CompareItemScreen
from antflow_tui.compare.screen import ComparedItems, CompareScreen, WriteFailedScreen
from tests.engine.compared_runs import before_and_after
from tests.tui.apps import text_of

if TYPE_CHECKING:
    from pathlib import Path


def app_of(folder: Path) -> tuple[CompareApp, Recording, Recording]:
    path_a, path_b = before_and_after(folder)
    a, b = Recording.open(path_a), Recording.open(path_b)
    return CompareApp(compare(summarise(a), summarise(b)), a, b), a, b


# Issue 22.4: enter on an item opens its story in both runs, side by side.
async def test_enter_opens_the_item_in_both_runs(tmp_path: Path) -> None:
    app, a, b = app_of(tmp_path)
    with a, b:
        async with app.run_test(size=(160, 48)) as pilot:
            await pilot.pause()
            items = app.screen.query_one(ComparedItems)
            # The list starts with the fixed item (1), then the newly failed (2, 8).
            assert [items.at(index).item for index in range(3)] == [1, 2, 8]  # type: ignore[union-attr]
            await pilot.press("down", "enter")
            await pilot.pause()
            screen = app.screen
            assert isinstance(screen, CompareItemScreen)
            await screen.workers.wait_for_complete()
            await pilot.pause()
            title = text_of(screen.query_one("#compare-item-title", Static))
            assert "2" in title
            story_a = text_of(screen.query_one("#compare-item-a-story", Static))
            story_b = text_of(screen.query_one("#compare-item-b-story", Static))
            # Each side's story as its recording tells it: A completed, B failed.
            assert "task complete  Work-W0" in story_a
            assert "Traceback" not in story_a
            assert "task fail   Work-W2" in story_b
            assert "Traceback (most recent call last)" in story_b
            await pilot.press("escape")
            await pilot.pause()
            assert isinstance(app.screen, CompareScreen)


# Issue 22.4: f steps through the kinds of change, one at a time.
async def test_f_shows_one_kind_of_change_at_a_time(tmp_path: Path) -> None:
    app, a, b = app_of(tmp_path)
    with a, b:
        async with app.run_test(size=(160, 48)) as pilot:
            await pilot.pause()
            items = app.screen.query_one(ComparedItems)
            assert items.kinds == ("fixed", "newly_failed", "still_failing", "newly_slow")
            await pilot.press("f")
            assert items.kinds == ("fixed",)
            await pilot.press("f")
            assert items.kinds == ("newly_failed",)
            assert [items.at(index).item for index in range(2)] == [2, 8]  # type: ignore[union-attr]
            assert items.at(2) is None


# Issue 22: w writes the newly failed items where the user says, as --retry-from reads.
async def test_w_writes_the_newly_failed_items(tmp_path: Path) -> None:
    app, a, b = app_of(tmp_path)
    target = tmp_path / "out" / "again.jsonl"
    target.parent.mkdir()
    with a, b:
        async with app.run_test(size=(80, 24)) as pilot:
            await pilot.pause()
            await pilot.press("w")
            await pilot.pause()
            assert isinstance(app.screen, WriteFailedScreen)
            app.screen.query_one(Input).value = str(target)
            await pilot.press("enter")
            await pilot.pause()
            assert isinstance(app.screen, CompareScreen)
    plan = read_export(target)
    assert [line.item_id for line in plan.skipped] == [2, 8]


# Issue 22: a path that cannot be written asks again, saying why; esc cancels.
async def test_w_to_a_folder_that_does_not_exist_asks_again(tmp_path: Path) -> None:
    app, a, b = app_of(tmp_path)
    with a, b:
        async with app.run_test(size=(120, 40)) as pilot:
            await pilot.pause()
            await pilot.press("w")
            await pilot.pause()
            app.screen.query_one(Input).value = str(tmp_path / "nowhere" / "x.jsonl")
            await pilot.press("enter")
            await pilot.pause()
            screen = app.screen
            assert isinstance(screen, WriteFailedScreen)
            assert "Could not write" in text_of(screen.query_one("#write-error", Static))
            await pilot.press("escape")
            await pilot.pause()
            assert isinstance(app.screen, CompareScreen)
    assert not (tmp_path / "nowhere").exists()
