"""The compare screen driven by keys: enter opens an item's story in both runs, f shows
one kind of change, w writes the newly failed items for --retry-from.

Issue 22 ("Compare two runs item by item").
"""

from __future__ import annotations

import asyncio
import threading
from typing import TYPE_CHECKING

from textual.widgets import Input, Static
from textual.widgets._footer import FooterKey

from antflow.refeed import read_export
from antflow.runstream.compare import compare
from antflow.runstream.fileformat import Recording
from antflow.runstream.runsummary import summarise
from antflow_tui.compare.app import CompareApp
from antflow_tui.compare.item_screen import CompareItemScreen
from antflow_tui.compare.screen import (
    WRITE_GROUP,
    ComparedItems,
    CompareScreen,
    WriteFailedScreen,
)
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


# Issue 22.4: the footer names enter ("Both stories") while the item list has the focus
# (the list's own enter, hidden, used to hide the screen's).
async def test_the_footer_shows_enter_opens_both_stories(tmp_path: Path) -> None:
    app, a, b = app_of(tmp_path)
    with a, b:
        async with app.run_test(size=(160, 48)) as pilot:
            await pilot.pause()
            assert isinstance(app.focused, ComparedItems)
            enter = app.screen.active_bindings["enter"].binding
            assert (enter.description, enter.show) == ("Both stories", True)
            shown = {key.key: key.description for key in app.screen.query(FooterKey)}
            assert shown["enter"] == "Both stories"


# Issue 22: w never writes over a file without asking: the path is shown again naming the
# file; enter again writes over it, another name is written instead.
async def test_w_asks_before_writing_over_an_existing_file(tmp_path: Path) -> None:
    app, a, b = app_of(tmp_path)
    target = tmp_path / "kept.jsonl"
    target.write_text("mine\n", encoding="utf-8")
    other = tmp_path / "other.jsonl"
    with a, b:
        async with app.run_test(size=(120, 40)) as pilot:
            await pilot.pause()
            for _ in range(2):  # asked each time w is pressed
                await pilot.press("w")
                await pilot.pause()
                app.screen.query_one(Input).value = str(target)
                await pilot.press("enter")
                await pilot.pause()
                screen = app.screen
                assert isinstance(screen, WriteFailedScreen)
                error = text_of(screen.query_one("#write-error", Static))
                assert f"{target} exists" in error
                assert target.read_text(encoding="utf-8") == "mine\n"
                # Another name instead: written, the existing file left alone.
                screen.query_one(Input).value = str(other)
                await pilot.press("enter")
                await pilot.pause()
                assert isinstance(app.screen, CompareScreen)
                assert [line.item_id for line in read_export(other).skipped] == [2, 8]
                other.unlink()
            # Asked, then enter again on the same name: written over.
            await pilot.press("w")
            await pilot.pause()
            app.screen.query_one(Input).value = str(target)
            await pilot.press("enter")
            await pilot.pause()
            assert isinstance(app.screen, WriteFailedScreen)
            await pilot.press("enter")
            await pilot.pause()
            assert isinstance(app.screen, CompareScreen)
    assert [line.item_id for line in read_export(target).skipped] == [2, 8]


# Issue 22: a large B is written by a thread (reading it again took ~1.4 s at 1M items,
# the screen frozen): the screen answers keys meanwhile, q waits for the file to be whole.
async def test_w_writes_off_the_ui_thread_and_quit_waits_for_it(tmp_path: Path) -> None:
    path_a, path_b = before_and_after(tmp_path)
    target = tmp_path / "again.jsonl"
    gate, started = threading.Event(), threading.Event()
    with Recording.open(path_a) as a, Recording.open(path_b) as b:
        app = CompareApp(compare(summarise(a), summarise(b)), a, b, write_inline_below=0)
        write = app.write_failed

        def gated(path: Path) -> list[str]:
            started.set()
            assert gate.wait(timeout=30)
            return write(path)

        app.write_failed = gated  # type: ignore[method-assign]
        async with app.run_test(size=(120, 40)) as pilot:
            await pilot.pause()
            await pilot.press("w")
            await pilot.pause()
            app.screen.query_one(Input).value = str(target)
            await pilot.press("enter")
            await pilot.pause()
            assert await asyncio.to_thread(started.wait, 30)
            writer = next(w for w in app.workers if w.group == WRITE_GROUP)
            assert writer.is_running
            # The screen still answers while the file is written.
            items = app.screen.query_one(ComparedItems)
            await pilot.press("f")
            assert items.kinds == ("fixed",)
            quitting = asyncio.ensure_future(app.action_quit())
            await pilot.pause()
            assert not quitting.done()
            assert app.return_code is None
            gate.set()
            await quitting
            assert writer.is_finished
            assert [line.item_id for line in read_export(target).skipped] == [2, 8]
