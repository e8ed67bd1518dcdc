"""SVG snapshots of every screen, drawn from the small recordings in tests/tui/recordings/
(no engine runs: the same moment of the same run every time).

Review a changed snapshot as a picture (rsvg-convert) before accepting it with
``pytest --snapshot-update``. The recordings are made by ``tests/tui/recordings/make.py``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from antflow_tui.screens.item import ItemScreen
from antflow_tui.screens.stage import StageScreen
from antflow_tui.screens.worker import WorkerScreen
from tests.tui.apps import text_of, until
from tests.tui.recorded import recorded_app, replay_app


async def _drawn(pilot: Any) -> None:
    """The first frame is in."""
    await until(lambda: pilot.app.state.status is not None)
    pilot.app.redraw()
    await pilot.pause()


def test_main_screen_mid_run_80x24(snap_compare: Any) -> None:
    """Mid-run at 80x24: busy workers, a failure, a queue; everything readable."""
    assert snap_compare(recorded_app("mid_run"), terminal_size=(80, 24), run_before=_drawn)


def test_main_screen_mid_run_160x48(snap_compare: Any) -> None:
    """The same moment on a big terminal: wider cells show each task's status text."""
    assert snap_compare(recorded_app("mid_run"), terminal_size=(160, 48), run_before=_drawn)


def test_finished_report(snap_compare: Any) -> None:
    """The run has ended: state 'finished', the average rate, every count final."""
    assert snap_compare(recorded_app("finished"), terminal_size=(120, 36), run_before=_drawn)


def test_run_with_failures(snap_compare: Any) -> None:
    """A finished run where items failed in two stages; the error panel has focus."""

    async def before(pilot: Any) -> None:
        await _drawn(pilot)
        await pilot.press("3")
        await pilot.pause()

    assert snap_compare(recorded_app("failures"), terminal_size=(120, 36), run_before=before)


def test_paused_banner(snap_compare: Any) -> None:
    """The whole run paused while items run: 'Pausing…' while they finish."""
    assert snap_compare(recorded_app("paused"), terminal_size=(100, 30), run_before=_drawn)


def test_frozen_banner(snap_compare: Any) -> None:
    """z freezes the display; a banner says the run goes on."""

    async def before(pilot: Any) -> None:
        await _drawn(pilot)
        await pilot.press("z")
        await pilot.pause()

    assert snap_compare(recorded_app("mid_run"), terminal_size=(100, 30), run_before=before)


def test_help_screen(snap_compare: Any) -> None:
    """? lists every key."""

    async def before(pilot: Any) -> None:
        await _drawn(pilot)
        await pilot.press("question_mark")
        await pilot.pause()

    assert snap_compare(recorded_app("mid_run"), terminal_size=(100, 40), run_before=before)


def test_item_screen_of_a_failed_item(snap_compare: Any) -> None:
    """A failed item: its timeline with both attempts and both tracebacks."""

    async def before(pilot: Any) -> None:
        await _drawn(pilot)
        await pilot.press("3", "enter")
        await until(lambda: isinstance(pilot.app.screen, ItemScreen))
        screen = pilot.app.screen
        await until(lambda: "DemoError" in text_of(screen.query_one("#item-tracebacks")))
        await pilot.pause()

    assert snap_compare(recorded_app("mid_run"), terminal_size=(120, 48), run_before=before)


def test_worker_screen_with_a_stack(snap_compare: Any) -> None:
    """A busy worker: its item, status text, metrics and await stack (recorded with the
    run, so the snapshot does not move when antflow/_worker.py changes)."""

    async def before(pilot: Any) -> None:
        await _drawn(pilot)
        await pilot.press("2", "enter")
        await until(lambda: isinstance(pilot.app.screen, WorkerScreen))
        screen = pilot.app.screen
        await until(lambda: "demo.py" in text_of(screen.query_one("#worker-stack")))
        await pilot.pause()

    assert snap_compare(recorded_app("mid_run"), terminal_size=(110, 32), run_before=before)


def test_stage_screen(snap_compare: Any) -> None:
    """A stage in detail: its configuration, counts, workers, queue and failures."""

    async def before(pilot: Any) -> None:
        await _drawn(pilot)
        await pilot.press("1", "enter")
        await until(lambda: isinstance(pilot.app.screen, StageScreen))
        await pilot.pause()

    assert snap_compare(recorded_app("mid_run"), terminal_size=(110, 32), run_before=before)


def test_filtered_log(snap_compare: Any) -> None:
    """/ on the events panel with status:failed keeps only failures."""

    async def before(pilot: Any) -> None:
        await _drawn(pilot)
        await pilot.press("4", "slash", *"status:fail", "enter")
        await pilot.pause()

    assert snap_compare(recorded_app("mid_run"), terminal_size=(110, 30), run_before=before)


def test_stuck_workers_say_so_and_the_eta_is_marked(snap_compare: Any) -> None:
    """Two minutes on one item: the cells say "stuck", the legend explains "!", and the
    header's ETA says it cannot be trusted."""
    assert snap_compare(recorded_app("stuck"), terminal_size=(120, 30), run_before=_drawn)


def test_export_dialog(snap_compare: Any) -> None:
    """e shows where the export will go, and lets the user change it."""

    async def before(pilot: Any) -> None:
        await _drawn(pilot)
        await pilot.press("e")
        await pilot.pause()

    # Nothing is written: the dialog only shows the path.
    app = recorded_app("mid_run", export=Path("/srv/batch/runs/out.jsonl"))
    assert snap_compare(app, terminal_size=(100, 24), run_before=before)


def test_two_pipelines_all_view(snap_compare: Any) -> None:
    """A main() that runs a second pipeline after a first: the switcher names both with
    their counts; s goes from the newest to all of them (a row of totals each, every
    worker grouped by pipeline and stage)."""

    async def before(pilot: Any) -> None:
        await _drawn(pilot)
        await pilot.press("s")
        await pilot.pause()

    app = recorded_app("two_pipelines")
    assert snap_compare(app, terminal_size=(120, 36), run_before=before)


def test_replay_with_the_scrubber(snap_compare: Any) -> None:
    """antflow-tui replay, held 7 seconds into a recording: 'replay' and the position in
    the header, the scrubber under the panels, no live-only keys."""

    async def before(pilot: Any) -> None:
        await _drawn(pilot)
        await pilot.press("3")
        await pilot.pause()

    app = replay_app("failures", at=7.0)
    assert snap_compare(app, terminal_size=(120, 36), run_before=before)


def test_error_groups(snap_compare: Any) -> None:
    """c groups the failures by type and message, sorted by count (o: by the next column)."""

    async def before(pilot: Any) -> None:
        await _drawn(pilot)
        await pilot.press("3", "c")
        await pilot.pause()

    assert snap_compare(recorded_app("failures"), terminal_size=(120, 36), run_before=before)


def test_stage_screen_of_a_replay_with_its_history(snap_compare: Any) -> None:
    """A stage in a replay held mid-run: sparklines of the seconds before, the task times'
    chart, the slowest items, each worker's share."""

    async def before(pilot: Any) -> None:
        await _drawn(pilot)
        await pilot.press("1", "down", "enter")
        await until(lambda: isinstance(pilot.app.screen, StageScreen))
        await pilot.pause()

    app = replay_app("failures", at=7.0)
    assert snap_compare(app, terminal_size=(120, 40), run_before=before)


def test_sorted_stage_table_at_80_columns(snap_compare: Any) -> None:
    """80 columns keep the counts, the rate, the throughput sparkline and p95; o sorts."""

    async def before(pilot: Any) -> None:
        await _drawn(pilot)
        await pilot.press("1", "o", "O")
        await pilot.pause()

    assert snap_compare(replay_app("failures", at=7.0), terminal_size=(80, 24), run_before=before)


# Issue 21: a rate-limited run just after a 429: a gauge line under the header (tokens
# used of the budget, calls a second, 429s a minute, the cool-down counting down), and
# the stage table's Conc, 429s, T/out and Tokens columns for the stage with limits.
def test_main_screen_of_a_rate_limited_run(snap_compare: Any) -> None:
    assert snap_compare(recorded_app("limited"), terminal_size=(130, 36), run_before=_drawn)


# Issue 22: a run paused by its budget at 80x24: the spend of the limit ends the first
# line, the banner names B first, the stage table has its Cost column.
def test_main_screen_of_a_run_paused_by_its_budget_80x24(snap_compare: Any) -> None:
    assert snap_compare(recorded_app("budget"), terminal_size=(80, 24), run_before=_drawn)


# Issue 21: at 80x24 the gauge line keeps the budget, the 429s and the cool-down, and the
# table its stages' concurrency and 429s.
def test_main_screen_of_a_rate_limited_run_80x24(snap_compare: Any) -> None:
    assert snap_compare(recorded_app("limited"), terminal_size=(80, 24), run_before=_drawn)


# Issue 21: the stage screen of the stage with limits: its concurrency (and how the
# adaptation moved it), its rate limit's gauges and history, 429s, timeouts and tokens;
# the footer offers - and +.
def test_stage_screen_of_a_rate_limited_stage(snap_compare: Any) -> None:
    async def before(pilot: Any) -> None:
        await _drawn(pilot)
        await pilot.press("1", "down", "enter")
        await until(lambda: isinstance(pilot.app.screen, StageScreen))
        await pilot.pause()

    assert snap_compare(recorded_app("limited"), terminal_size=(130, 44), run_before=before)
