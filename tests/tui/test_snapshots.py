"""SVG snapshots of every screen, driven to fixed moments of a gated run on a fake clock.

Review a changed snapshot as a picture (rsvg-convert) before accepting it with
``pytest --snapshot-update``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from antflow_tui.demo import GatedRun
from antflow_tui.screens.item import ItemScreen
from antflow_tui.screens.worker import WorkerScreen
from tests.tui.apps import ITEMS, finish, gated_app, mid_run, until


def _run() -> GatedRun:
    return GatedRun(list(ITEMS))


def test_main_screen_mid_run_80x24(snap_compare: Any) -> None:
    """Mid-run at 80x24: busy workers, a failure, a queue; everything readable."""
    run = _run()

    async def before(pilot: Any) -> None:
        await mid_run(pilot.app, run)
        await pilot.pause()

    assert snap_compare(gated_app(run), terminal_size=(80, 24), run_before=before)


def test_main_screen_mid_run_160x48(snap_compare: Any) -> None:
    """The same moment on a big terminal: wider cells show each task's status text."""
    run = _run()

    async def before(pilot: Any) -> None:
        await mid_run(pilot.app, run)
        await pilot.pause()

    assert snap_compare(gated_app(run), terminal_size=(160, 48), run_before=before)


def test_finished_report(snap_compare: Any) -> None:
    """The run has ended: state 'finished', the average rate, every count final."""
    run = _run()

    async def before(pilot: Any) -> None:
        await finish(pilot.app, run)
        await pilot.pause()

    assert snap_compare(gated_app(run), terminal_size=(120, 36), run_before=before)


def test_run_with_failures(snap_compare: Any) -> None:
    """A finished run where items failed in two stages; the error panel has focus."""
    run = _run()

    async def before(pilot: Any) -> None:
        await finish(pilot.app, run, failing={"Fetch": 3, "Parse": 5})
        await pilot.press("3")
        await pilot.pause()

    assert snap_compare(gated_app(run), terminal_size=(120, 36), run_before=before)


def test_paused_banner(snap_compare: Any) -> None:
    """p on the events panel pauses the run: 'Pausing…' while items finish."""
    run = _run()

    async def before(pilot: Any) -> None:
        await mid_run(pilot.app, run)
        await pilot.press("4", "p")
        pilot.app.redraw()
        await pilot.pause()

    assert snap_compare(gated_app(run), terminal_size=(100, 30), run_before=before)


def test_frozen_banner(snap_compare: Any) -> None:
    """z freezes the display; a banner says the run goes on."""
    run = _run()

    async def before(pilot: Any) -> None:
        await mid_run(pilot.app, run)
        await pilot.press("z")
        await pilot.pause()

    assert snap_compare(gated_app(run), terminal_size=(100, 30), run_before=before)


def test_help_screen(snap_compare: Any) -> None:
    """? lists every key."""
    run = _run()

    async def before(pilot: Any) -> None:
        await mid_run(pilot.app, run)
        await pilot.press("question_mark")
        await pilot.pause()

    assert snap_compare(gated_app(run), terminal_size=(100, 40), run_before=before)


def test_item_screen_of_a_failed_item(snap_compare: Any) -> None:
    """A failed item: its timeline with both attempts and both tracebacks."""
    run = _run()

    async def before(pilot: Any) -> None:
        await mid_run(pilot.app, run)
        await pilot.press("3", "enter")
        await until(lambda: isinstance(pilot.app.screen, ItemScreen))
        await pilot.pause()

    assert snap_compare(gated_app(run), terminal_size=(120, 48), run_before=before)


def test_worker_screen_with_a_stack(snap_compare: Any) -> None:
    """A busy worker: its item, status text, metrics and live await stack.

    The stack shows line numbers of antflow/_worker.py and antflow_tui/demo.py: editing
    those files means reviewing and updating this snapshot.
    """
    run = _run()

    async def before(pilot: Any) -> None:
        await mid_run(pilot.app, run)
        await pilot.press("2", "enter")
        await until(lambda: isinstance(pilot.app.screen, WorkerScreen))
        await pilot.pause()

    assert snap_compare(gated_app(run), terminal_size=(110, 32), run_before=before)


def test_filtered_log(snap_compare: Any) -> None:
    """/ on the events panel with status:failed keeps only failures."""
    run = _run()

    async def before(pilot: Any) -> None:
        await mid_run(pilot.app, run)
        await pilot.press("4", "slash", *"status:fail", "enter")
        await pilot.pause()

    assert snap_compare(gated_app(run), terminal_size=(110, 30), run_before=before)


def test_stuck_workers_say_so_and_the_eta_is_marked(snap_compare: Any) -> None:
    """Two minutes on one item: the cells say "stuck", the legend explains "!", and the
    header's ETA says it cannot be trusted."""
    run = _run()

    async def before(pilot: Any) -> None:
        await mid_run(pilot.app, run)
        run.clock.advance(120.0)
        pilot.app.redraw()
        await pilot.pause()

    assert snap_compare(gated_app(run), terminal_size=(120, 30), run_before=before)


def test_export_dialog(snap_compare: Any) -> None:
    """e shows where the export will go, and lets the user change it."""
    run = _run()

    async def before(pilot: Any) -> None:
        await mid_run(pilot.app, run)
        await pilot.press("e")
        await pilot.pause()

    # Nothing is written: the dialog only shows the path.
    app = gated_app(run, export=Path("/srv/batch/runs/out.jsonl"))
    assert snap_compare(app, terminal_size=(100, 24), run_before=before)
