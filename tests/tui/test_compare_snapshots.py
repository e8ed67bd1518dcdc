"""SVG snapshots of the compare screens (issue 22), drawn from two recordings written
record by record with known differences (tests/engine/compared_runs.py): the same
picture every time.

Review a changed snapshot as a picture (rsvg-convert) before accepting it with
``pytest --snapshot-update``.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from antflow.runstream.compare import compare
from antflow.runstream.fileformat import Recording
from antflow.runstream.runsummary import summarise
from antflow_tui.compare.app import CompareApp
from antflow_tui.compare.item_screen import CompareItemScreen
from tests.engine.compared_runs import before_and_after

if TYPE_CHECKING:
    import pytest


def compare_app(folder: Path, monkeypatch: pytest.MonkeyPatch) -> CompareApp:
    # The screen names each run's file: the same short names on every machine.
    monkeypatch.chdir(folder)
    path_a, path_b = before_and_after(Path())
    a, b = Recording.open(path_a), Recording.open(path_b)
    return CompareApp(compare(summarise(a), summarise(b)), a, b)


# Issue 22.1: totals, stages, error groups, how the runs were made, and the items by id
# (fixed, newly failed, still failing, newly slow), on a big terminal and at 80x24.
def test_compare_screen_160x48(
    snap_compare: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert snap_compare(compare_app(tmp_path, monkeypatch), terminal_size=(160, 48))


def test_compare_screen_80x24(
    snap_compare: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert snap_compare(compare_app(tmp_path, monkeypatch), terminal_size=(80, 24))


# Issue 22.4: enter on a newly failed item: its story in both runs, side by side.
def test_compare_item_screen(
    snap_compare: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def open_item(pilot: Any) -> None:
        await pilot.press("down", "enter")
        await pilot.pause()
        screen = pilot.app.screen
        assert isinstance(screen, CompareItemScreen)
        await screen.workers.wait_for_complete()
        await pilot.pause()

    assert snap_compare(
        compare_app(tmp_path, monkeypatch), terminal_size=(160, 48), run_before=open_item
    )
