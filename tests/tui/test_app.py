"""Pilot tests: the app's flows and every key, on a gated run (no wall-clock waiting)."""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from textual.command import CommandPalette
from textual.widgets import Input

from antflow_tui.demo import GatedRun
from antflow_tui.screens.confirm import ConfirmScreen
from antflow_tui.screens.export import ExportScreen
from antflow_tui.screens.goto import GotoScreen
from antflow_tui.screens.help import HelpScreen
from antflow_tui.screens.item import ItemScreen
from antflow_tui.screens.main import MainScreen
from antflow_tui.screens.stage import StageScreen
from antflow_tui.screens.worker import WorkerScreen
from antflow_tui.widgets.error_panel import ErrorPanel
from antflow_tui.widgets.event_log import EventLog
from antflow_tui.widgets.stage_table import StageTable
from antflow_tui.widgets.worker_grid import WorkerGrid
from tests.tui.apps import (
    ITEMS,
    busy,
    finish,
    gated_app,
    hosted,
    mid_run,
    stats,
    text_of,
    toasts,
    until,
)

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    from textual.pilot import Pilot

    from antflow_tui.app import AntflowApp

SIZE = (120, 40)


@pytest.fixture
def options() -> dict[str, Any]:
    """The app's options beyond `gated_app`'s (a test parametrizes it for its own)."""
    return {}


@pytest.fixture
def run() -> GatedRun:
    """The demo's gated run over `ITEMS`: nothing moves until the test releases it."""
    return GatedRun(list(ITEMS))


@pytest.fixture
def app(run: GatedRun, options: dict[str, Any]) -> AntflowApp:
    return gated_app(run, **options)


@pytest.fixture
async def pilot(app: AntflowApp) -> AsyncIterator[Pilot]:
    """The app running, at `SIZE`."""
    async with app.run_test(size=SIZE) as pilot:
        yield pilot


@pytest.fixture
async def at_mid_run(app: AntflowApp, run: GatedRun, pilot: Pilot) -> None:
    """The run driven to the moment `tests.tui.apps.mid_run` describes."""
    await mid_run(app, run)


def _terminal_states(app: AntflowApp) -> tuple[int, int, int, int]:
    stats = app.source.current.pipeline.get_stats()  # type: ignore[union-attr]
    return stats.items_processed, stats.items_failed, stats.items_unfinished, stats.items_fed


# ---------------------------------------------------------------------- start / finish / quit


async def test_start_shows_the_pipeline_and_finish_shows_the_report(
    app: AntflowApp, run: GatedRun, pilot: Pilot
) -> None:
    await until(lambda: app.source.current is not None)
    app.redraw()
    table = app.screen.query_one(StageTable)
    assert [str(key.value) for key in table.rows] == ["Fetch", "Parse", "Save"]
    await finish(app, run, failing={"Parse": 1})
    await pilot.pause()
    assert "finished" in text_of(app.screen.query_one("#summary"))
    assert isinstance(app.screen, MainScreen)
    outcome = hosted(app).outcome()
    assert (outcome.completed, outcome.failed, outcome.unfinished) == (7, 1, 0)
    assert outcome.exit_code == 1


@pytest.mark.parametrize("options", [dict(exit_when_done=True)])
async def test_exit_when_done_closes_the_app_by_itself(
    app: AntflowApp, run: GatedRun, pilot: Pilot
) -> None:
    await finish(app, run)
    await until(lambda: not app.is_running, steps=200_000)
    assert hosted(app).outcome().exit_code == 0
    assert hosted(app).outcome().completed == len(ITEMS)


@pytest.mark.usefixtures("at_mid_run")
async def test_quit_while_running_asks_then_stops_and_counts_unfinished(
    app: AntflowApp, run: GatedRun, pilot: Pilot
) -> None:
    await pilot.press("q")
    await until(lambda: isinstance(app.screen, ConfirmScreen))
    await pilot.press("n")
    await until(lambda: isinstance(app.screen, MainScreen))
    assert hosted(app).run_active, "declining must leave the run going"
    await pilot.press("q")
    await until(lambda: isinstance(app.screen, ConfirmScreen))
    # The gated tasks never finish: the grace period runs out and they are cancelled.
    await pilot.press("y")
    await until(lambda: not app.is_running, steps=200_000)
    processed, failed, unfinished, fed = _terminal_states(app)
    assert processed + failed + unfinished == fed == len(ITEMS)
    assert unfinished == 6
    assert hosted(app).outcome().exit_code == 1


async def test_quit_after_the_run_ended_does_not_ask(
    app: AntflowApp, run: GatedRun, pilot: Pilot
) -> None:
    await finish(app, run)
    await pilot.press("q")
    await until(lambda: not app.is_running)


@pytest.mark.usefixtures("at_mid_run")
async def test_ctrl_c_stops_gracefully_and_a_second_press_forces(
    app: AntflowApp, pilot: Pilot
) -> None:
    await pilot.press("ctrl+c")
    await until(lambda: app.source.stop_requested)
    await pilot.press("ctrl+c")
    await until(lambda: not app.source.running())
    assert not hosted(app).run_active
    assert isinstance(app.screen, MainScreen), "stopping keeps the report on screen"
    processed, failed, unfinished, fed = _terminal_states(app)
    assert (processed, failed, unfinished, fed) == (1, 1, 6, 8)


# ---------------------------------------------------------------------- pause and freeze


# Issue 17.6: a newcomer's first p (focus starts on the stage table) paused stage Fetch
# while the header said running. p is the whole run's, everywhere; P the selection's.
@pytest.mark.usefixtures("at_mid_run")
async def test_p_pauses_the_run_whatever_has_focus_and_capital_p_the_selection(
    app: AntflowApp, run: GatedRun, pilot: Pilot
) -> None:
    pipeline = app.source.current.pipeline  # type: ignore[union-attr]
    footer = {b.binding.key: b.binding.description for b in app.active_bindings.values()}
    assert footer["p"] == "Pause run"
    for panel in ("1", "2", "3", "4"):
        await pilot.press(panel, "p")
        assert pipeline.paused
        assert not pipeline.is_paused(stage="Fetch")
        banner = text_of(app.screen.query_one("#banner"))
        assert "Pausing the whole run" in banner
        await pilot.press("p")
        assert not pipeline.paused
    await pilot.press("1", "P")
    assert pipeline.is_paused(stage="Fetch")
    assert not pipeline.paused
    await pilot.press("P")
    assert not pipeline.is_paused(stage="Fetch")
    await pilot.press("2", "right", "P")
    assert pipeline.is_paused(worker="Fetch-W1")
    await pilot.press("P")
    assert not pipeline.is_paused(worker="Fetch-W1")
    await pilot.press("4", "P")
    assert not pipeline.paused, "P with nothing selected pauses nothing"
    await pilot.press("1", "enter")
    assert isinstance(app.screen, StageScreen)
    await pilot.press("p")
    assert pipeline.paused, "p on a stage screen is the run's too"
    await pilot.press("p", "P")
    assert pipeline.is_paused(stage="Fetch")
    await pilot.press("P")
    assert not pipeline.is_paused(stage="Fetch")


@pytest.mark.usefixtures("at_mid_run")
async def test_pause_resume_and_retry_leave_every_item_in_one_terminal_state(
    app: AntflowApp, run: GatedRun, pilot: Pilot
) -> None:
    run.fail("Save", 4, "disk full")
    await pilot.press("p")
    run.release("Fetch", *range(8))
    run.release("Parse", *range(8))
    await until(lambda: not any(busy(app, f"Fetch-W{n}") for n in range(3)))
    assert stats(app).items_in_flight > 0
    await pilot.press("p")
    run.release("Save", *range(8))
    await until(lambda: stats(app).items_in_flight == 0)
    # Two failures now (page-2 in Fetch, page-4 in Save); retry page-4 after fixing it.
    run.failures.pop(("Save", 4))
    await pilot.press("3")
    panel = app.screen.query_one(ErrorPanel)
    app.redraw()
    await until(lambda: panel.row_count == 2)
    assert panel.failure_at(panel.cursor).item == "page-4"  # type: ignore[union-attr]
    await pilot.press("r")
    await until(lambda: app.source.job_task.done() and not app.source.running())  # type: ignore[union-attr]
    processed, failed, unfinished, fed = _terminal_states(app)
    assert (processed, failed, unfinished, fed) == (7, 1, 0, 8)
    history = [e.status for e in app.source.current.tracker.get_history("page-4")]  # type: ignore[union-attr]
    assert history.count("failed") == 1
    assert history[-1] == "completed"


@pytest.mark.usefixtures("at_mid_run")
async def test_z_freezes_the_display_but_not_the_run(
    app: AntflowApp, run: GatedRun, pilot: Pilot
) -> None:
    log = app.screen.query_one(EventLog)
    await pilot.press("z")
    shown = len(log.entries)
    run.release("Fetch", 4, 5, 6, 7)
    await until(lambda: stats(app).stage_stats["Fetch"].completed_items == 7)
    app.redraw()
    assert len(log.entries) == shown, "a frozen display must not move"
    assert "frozen" in text_of(app.screen.query_one("#banner"))
    await pilot.press("z")
    app.redraw()
    assert len(log.entries) > shown


# ---------------------------------------------------------------------- moving around


@pytest.mark.usefixtures("at_mid_run")
async def test_tab_and_number_keys_move_between_panels(app: AntflowApp, pilot: Pilot) -> None:
    assert isinstance(app.focused, StageTable)
    await pilot.press("tab")
    assert isinstance(app.focused, WorkerGrid)
    await pilot.press("tab")
    assert isinstance(app.focused, ErrorPanel)
    await pilot.press("tab")
    assert isinstance(app.focused, EventLog)
    await pilot.press("shift+tab")
    assert isinstance(app.focused, ErrorPanel)
    for key, kind in (("1", StageTable), ("2", WorkerGrid), ("3", ErrorPanel), ("4", EventLog)):
        await pilot.press(key)
        assert isinstance(app.focused, kind)


@pytest.mark.usefixtures("at_mid_run")
async def test_arrows_jk_and_g_move_inside_panels(app: AntflowApp, pilot: Pilot) -> None:
    grid = app.screen.query_one(WorkerGrid)
    await pilot.press("2", "l")
    assert grid.selected.name == "Fetch-W1"  # type: ignore[union-attr]
    await pilot.press("j")
    assert grid.selected.stage == "Fetch"  # type: ignore[union-attr]
    await pilot.press("G")
    assert grid.selected.name == "Save-W0"  # type: ignore[union-attr]
    await pilot.press("g")
    assert grid.selected.name == "Fetch-W0"  # type: ignore[union-attr]
    log = app.screen.query_one(EventLog)
    await pilot.press("4")
    last = log.cursor
    await pilot.press("k", "k")
    assert log.cursor == last - 2
    assert not log.follow, "moving up stops following the tail"
    await pilot.press("G")
    assert log.cursor == log.row_count - 1
    assert log.follow
    table = app.screen.query_one(StageTable)
    await pilot.press("1", "j")
    assert table.selected_stage == "Parse"
    await pilot.press("G")
    assert table.selected_stage == "Save"


@pytest.mark.usefixtures("at_mid_run")
async def test_enter_drills_in_and_escape_goes_back(app: AntflowApp, pilot: Pilot) -> None:
    await pilot.press("1", "enter")
    assert isinstance(app.screen, StageScreen)
    assert app.screen.stage == "Fetch"
    await pilot.press("escape")
    assert isinstance(app.screen, MainScreen)
    await pilot.press("2", "enter")
    assert isinstance(app.screen, WorkerScreen)
    assert app.screen.worker == "Fetch-W0"
    await pilot.press("enter")
    assert isinstance(app.screen, ItemScreen)
    assert app.screen.item == "page-4"
    await pilot.press("escape")
    assert isinstance(app.screen, WorkerScreen)
    await pilot.press("escape", "3", "enter")
    assert isinstance(app.screen, ItemScreen)
    assert app.screen.item == "page-2"
    await pilot.press("escape", "4", "enter")
    log = app.screen.query_one(EventLog) if isinstance(app.screen, MainScreen) else None
    assert isinstance(app.screen, ItemScreen), log


@pytest.mark.usefixtures("at_mid_run")
async def test_item_screen_updates_live_and_r_retries_from_there(
    app: AntflowApp, run: GatedRun, pilot: Pilot
) -> None:
    await pilot.press("3", "enter")
    screen = app.screen
    assert isinstance(screen, ItemScreen)
    timeline = text_of(screen.query_one("#item-timeline"))
    assert "task fail" in timeline
    run.failures.clear()
    await pilot.press("r")
    await until(lambda: "queued" in text_of(screen.query_one("#item-title")))
    for stage in ("Fetch", "Parse", "Save"):
        run.release(stage, *range(len(ITEMS)))
    await until(lambda: app.source.current.tracker.get_status("page-2").status == "completed")
    app.redraw()
    # The story is pulled from the source in the background: it arrives a moment later.
    await until(lambda: "completed in Save" in text_of(screen.query_one("#item-title")))


# ---------------------------------------------------------------------- retry all, filter, follow


async def type_into(pilot: Any, text: str) -> None:
    """Type into the focused input (setting its value: a key per character is slow)."""
    pilot.app.focused.value = text
    await pilot.pause()


async def test_capital_r_retries_every_failure_in_the_filter_after_confirming(
    app: AntflowApp, run: GatedRun, pilot: Pilot
) -> None:
    for value in (1, 3):
        run.fail("Parse", value, "bad page")
    await finish(app, run, failing={"Fetch": 5})
    pipeline = app.source.current.pipeline  # type: ignore[union-attr]
    assert set(pipeline.failed_item_ids()) == {"page-1", "page-3", "page-5"}
    await pilot.press("3", "slash")
    await type_into(pilot, "stage:Parse")
    await pilot.press("enter")
    await pilot.press("R")
    await until(lambda: isinstance(app.screen, ConfirmScreen))
    run.failures.clear()
    await pilot.press("y")
    await until(lambda: pipeline.failed_item_ids() == ["page-5"] and not pipeline.is_running)
    assert pipeline.get_stats().items_processed == 7


@pytest.mark.usefixtures("at_mid_run")
async def test_slash_filters_the_focused_panel_and_escape_clears_it(
    app: AntflowApp, pilot: Pilot
) -> None:
    log = app.screen.query_one(EventLog)
    everything = log.row_count
    await pilot.press("4", "slash")
    await type_into(pilot, "item:page-2")
    await pilot.press("enter")
    assert 0 < log.row_count < everything
    assert all(log.entry_at(i).event.item == "page-2" for i in range(log.row_count))  # type: ignore[union-attr]
    assert "filter: item:page-2" in str(log.border_title)
    await pilot.press("escape")
    assert log.filter is None
    assert log.row_count >= everything
    grid = app.screen.query_one(WorkerGrid)
    await pilot.press("2", "slash")
    await type_into(pilot, "stage:Parse")
    await pilot.press("enter")
    assert grid.selected.stage == "Parse"  # type: ignore[union-attr]
    await pilot.press("slash")
    await type_into(pilot, "status:")
    await pilot.press("enter")
    assert grid.filter is not None, "a bad filter is reported, the old one stays"


@pytest.mark.usefixtures("at_mid_run")
async def test_f_toggles_following_the_log(app: AntflowApp, run: GatedRun, pilot: Pilot) -> None:
    log = app.screen.query_one(EventLog)
    assert log.follow
    await pilot.press("4", "f")
    assert not log.follow
    before = log.cursor
    run.release("Fetch", 4)
    fetch = stats(app).stage_stats["Fetch"]
    await until(lambda: fetch.completed_items < stats(app).stage_stats["Fetch"].completed_items)
    app.redraw()
    assert log.cursor == before
    await pilot.press("f")
    assert log.follow
    assert log.cursor == log.row_count - 1


# ---------------------------------------------------------------------- go to, export, help


@pytest.mark.usefixtures("at_mid_run")
async def test_colon_goes_to_an_item_by_id(app: AntflowApp, pilot: Pilot) -> None:
    await pilot.press("colon")
    assert isinstance(app.screen, GotoScreen)
    await type_into(pilot, "page-7")
    await pilot.press("enter")
    await until(lambda: isinstance(app.screen, ItemScreen))
    assert app.screen.item == "page-7"
    assert "queued" in text_of(app.screen.query_one("#item-title"))


@pytest.mark.parametrize("options", [{"export": Path("out.jsonl")}])
@pytest.mark.usefixtures("at_mid_run")
async def test_e_asks_where_showing_the_export_path_then_writes_there(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, app: AntflowApp, pilot: Pilot
) -> None:
    monkeypatch.chdir(tmp_path)  # where the relative --export path is
    target = tmp_path / "out.jsonl"
    await pilot.press("e")
    assert isinstance(app.screen, ExportScreen)
    assert app.screen.query_one(Input).value == str(target.resolve())
    await pilot.press("enter")
    await until(lambda: isinstance(app.screen, MainScreen))
    header, *lines = [json.loads(line) for line in target.read_text().splitlines()]
    assert header["in_flight"] == 6
    assert {(line["id"], line["status"]) for line in lines} == {
        ("page-0", "completed"),
        ("page-2", "failed"),
    }
    failed = next(line for line in lines if line["status"] == "failed")
    assert failed["stage"] == "Fetch"
    assert failed["value"] == 2
    assert failed["input"] == {"id": "page-2", "value": 2}
    assert failed["error_type"] == "antflow_tui.demo.DemoError"
    assert failed["attempts"] == 2
    assert "[red]boom[/red]" in failed["error"]
    assert "DemoError" in failed["traceback"]


def _real(path: Path) -> Path:
    return path.resolve()


@pytest.mark.usefixtures("at_mid_run")
async def test_e_after_a_bad_path_lets_the_user_change_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, app: AntflowApp, pilot: Pilot
) -> None:
    """Regression (issue 10): `e` wrote into the current folder without saying where, and
    after a failed --export path kept retrying the same bad path."""
    monkeypatch.chdir(tmp_path)
    await pilot.press("e")
    path_input = app.screen.query_one(Input)
    proposed = Path(path_input.value)
    assert proposed.parent == _real(tmp_path)
    assert proposed.name.startswith("antflow-export-")
    bad = tmp_path / "missing-folder" / "out.jsonl"
    path_input.value = str(bad)
    await pilot.press("enter")
    await until(
        lambda: isinstance(app.screen, ExportScreen) and bool(app.screen.query("#export-error"))
    )
    error = text_of(app.screen.query_one("#export-error"))
    assert "Could not write" in error
    assert str(bad) in error
    assert app.screen.query_one(Input).value == str(bad), "the bad path stays, to be edited"
    good = tmp_path / "good.jsonl"
    app.screen.query_one(Input).value = str(good)
    await pilot.press("enter")
    await until(lambda: isinstance(app.screen, MainScreen))
    assert good.exists()
    await pilot.press("e")
    assert app.screen.query_one(Input).value == str(good), "the last path is proposed again"
    await pilot.press("escape")
    assert isinstance(app.screen, MainScreen)


@pytest.mark.usefixtures("at_mid_run")
async def test_question_mark_and_f1_open_help_and_escape_closes_it(
    app: AntflowApp, pilot: Pilot
) -> None:
    for key in ("question_mark", "f1"):
        await pilot.press(key)
        assert isinstance(app.screen, HelpScreen)
        await pilot.press("escape")
        assert isinstance(app.screen, MainScreen)


@pytest.mark.usefixtures("at_mid_run")
async def test_ctrl_p_opens_the_command_palette_with_our_commands(
    app: AntflowApp, run: GatedRun, pilot: Pilot
) -> None:
    await pilot.press("ctrl+p")
    assert isinstance(app.screen, CommandPalette)
    titles = {command.title for command in app.commands_offered or []}
    assert {
        "Pause or resume the run",
        "Retry all",
        "Go to an item by id",
        "Stop the run",
    } <= titles


@pytest.mark.parametrize("options", [dict(keymap={"pause": "space"})])
@pytest.mark.usefixtures("at_mid_run")
async def test_a_keymap_remaps_a_binding_by_id(app: AntflowApp, pilot: Pilot) -> None:
    pipeline = app.source.current.pipeline  # type: ignore[union-attr]
    await pilot.press("4", "space")
    assert pipeline.paused


# ---------------------------------------------------------------------- script output


async def test_print_and_logging_from_tasks_go_to_the_event_log() -> None:
    import logging

    from antflow import Pipeline, Stage
    from antflow_tui.live import live_app
    from antflow_tui.live.runner import PipelineJob
    from antflow_tui.options import AppOptions

    # As `logging.basicConfig()` in a script would: a handler writing to the terminal.
    logger = logging.getLogger("script")
    handler = logging.StreamHandler(sys.__stderr__)
    logger.addHandler(handler)

    async def noisy(value: Any) -> Any:
        print(f"printed [bold]{value}[/bold]")
        logger.warning("logged %s", value)
        return value

    pipeline = Pipeline([Stage("Noisy", 1, [noisy])])
    app = live_app(PipelineJob("noisy.py", pipeline, [1, 2], 2), AppOptions(interval=0.05))
    async with app.run_test(size=SIZE) as pilot:
        await until(lambda: app.source.job_task is not None and app.source.job_task.done())
        await pilot.pause()
        app.redraw()
        log = app.screen.query_one(EventLog)
        notes = [entry.line.text for entry in log.entries if entry.line is not None]
        assert any("printed [bold]1[/bold]" in note for note in notes)
        assert any("logged 2" in note for note in notes)
        # Each line with where it came from: a print, or a record with its level.
        streams = {entry.line.text: entry.line.stream for entry in log.entries if entry.line}
        assert streams["printed [bold]1[/bold]"] == "out"
        assert streams["logged 2"] == "WARNING"
    logger.removeHandler(handler)
    assert handler.stream is sys.__stderr__, "the handler's stream is given back"


@pytest.mark.usefixtures("at_mid_run")
async def test_ctrl_q_quits_like_q(app: AntflowApp, pilot: Pilot) -> None:
    await pilot.press("ctrl+q")
    await until(lambda: isinstance(app.screen, ConfirmScreen))
    await pilot.press("y")
    await until(lambda: not app.is_running, steps=200_000)
    assert hosted(app).outcome().unfinished == 6


async def test_page_keys_move_by_a_screenful() -> None:
    run = GatedRun([{"id": f"page-{n}", "value": n} for n in range(60)], workers=(40, 2, 1))
    app = gated_app(run)
    async with app.run_test(size=(80, 24)) as pilot:
        await until(lambda: app.source.current is not None and busy(app, "Fetch-W39"))
        app.redraw()
        grid = app.screen.query_one(WorkerGrid)
        await pilot.press("2", "pagedown")
        assert grid.cursor > 2
        await pilot.press("pageup")
        assert grid.cursor == 0
        log = app.screen.query_one(EventLog)
        await pilot.press("4", "pageup")
        assert log.cursor < log.row_count - 2
        await pilot.press("pagedown", "pagedown", "pagedown", "pagedown", "pagedown")
        assert log.cursor == log.row_count - 1


async def test_a_users_own_tracker_keeps_its_callbacks_under_the_app() -> None:
    from antflow import Pipeline, Stage, StatusTracker
    from antflow_tui.live import live_app
    from antflow_tui.live.runner import PipelineJob
    from antflow_tui.options import AppOptions

    seen: list[str] = []

    async def on_status(event: Any) -> None:
        seen.append(event.status)

    async def noop(value: int) -> int:
        return value

    tracker = StatusTracker(on_status_change=on_status)
    pipeline = Pipeline([Stage("A", 1, [noop])], status_tracker=tracker)
    app = live_app(PipelineJob("own.py", pipeline, [1, 2, 3], 3), AppOptions(interval=0.05))
    async with app.run_test(size=SIZE):
        await until(lambda: app.source.ended_at is not None)
        app.redraw()
        assert app.source.current.tracker is tracker  # type: ignore[union-attr]
        log = app.screen.query_one(EventLog)
        assert sum(1 for entry in log.entries if entry.event is not None) >= 9
    assert seen.count("completed") == 3
    assert seen.count("queued") == 3


async def test_an_evicted_items_screen_says_so() -> None:
    from antflow import Pipeline, Stage
    from antflow_tui.live import live_app
    from antflow_tui.live.runner import PipelineJob
    from antflow_tui.options import AppOptions

    async def noop(value: int) -> int:
        return value

    pipeline = Pipeline([Stage("A", 2, [noop])])
    app = live_app(PipelineJob("big.py", pipeline, range(50), 50), AppOptions(history=10))
    async with app.run_test(size=SIZE) as pilot:
        await until(lambda: app.source.ended_at is not None)
        await pilot.press("colon")
        pilot.app.focused.value = "3"  # type: ignore[union-attr]
        await pilot.press("enter")
        await until(lambda: isinstance(app.screen, ItemScreen))
        assert app.screen.item == 3
        facts = text_of(app.screen.query_one("#item-facts"))
        assert "history was evicted" in facts
        await pilot.press("escape", "colon")
        pilot.app.focused.value = "49"  # type: ignore[union-attr]
        await pilot.press("enter")
        await until(lambda: isinstance(app.screen, ItemScreen) and app.screen.item == 49)
        assert "completed" in text_of(app.screen.query_one("#item-title"))


# ---------------------------------------------------------------------- review regressions


@pytest.mark.usefixtures("at_mid_run")
async def test_a_filter_with_markup_in_it_is_shown_literally(app: AntflowApp, pilot: Pilot) -> None:
    """Regression: the filter text went into a border title as markup; "[/x]" crashed."""
    await pilot.press("4", "slash")
    await type_into(pilot, "[/x] [red]y[/red]")
    await pilot.press("enter")
    log = app.screen.query_one(EventLog)
    assert "filter: [/x] [red]y[/red]" in str(log.border_title).replace("\\[", "[")
    assert log.row_count == 0


async def test_the_report_shows_the_last_counts_after_a_short_fast_run() -> None:
    """Regression: busy-run throttles skipped the last frame; the report was stale."""
    from antflow import Pipeline, Stage
    from antflow_tui.live import live_app
    from antflow_tui.live.runner import PipelineJob
    from antflow_tui.options import AppOptions

    async def noop(value: int) -> int:
        return value

    pipeline = Pipeline([Stage("A", 2, [noop]), Stage("B", 2, [noop])])
    app = live_app(PipelineJob("fast.py", pipeline, range(400), 400), AppOptions(interval=0.05))
    async with app.run_test(size=SIZE) as pilot:
        await until(lambda: app.source.ended_at is not None)
        await pilot.pause()
        await pilot.pause()
        table = app.screen.query_one(StageTable)
        done = [table.get_cell(stage, "done").plain for stage in ("A", "B")]
        assert done == ["400", "400"]
        assert "finished" in text_of(app.screen.query_one("#summary"))


async def test_pause_and_resume_after_the_end_do_not_hold_a_retry(
    app: AntflowApp, run: GatedRun, pilot: Pilot
) -> None:
    """Regression: resuming a finished pipeline was skipped, so a retry started it paused."""
    run.fail("Parse", 1, "bad")
    await finish(app, run)
    pipeline = app.source.current.pipeline  # type: ignore[union-attr]
    await pilot.press("p", "p")
    assert not pipeline.paused
    run.failures.clear()
    await pilot.press("3", "r")
    await until(lambda: pipeline.failed_item_ids() == [] and not pipeline.is_running)
    assert pipeline.get_stats().items_processed == 8


async def test_quit_asks_while_retried_items_run(
    app: AntflowApp, run: GatedRun, pilot: Pilot
) -> None:
    """Regression: after the job ended, quitting during a retry did not ask."""
    run.fail("Fetch", 3, "flaky")
    for stage in ("Fetch", "Parse", "Save"):
        run.release(stage, *(v for v in range(8) if v != 3 or stage == "Fetch"))
    await until(lambda: app.source.ended_at is not None)
    run.failures.clear()
    await pilot.press("3", "r")
    await until(lambda: app.source.running())
    await pilot.press("q")
    assert isinstance(app.screen, ConfirmScreen)


async def test_pausing_a_worker_of_an_earlier_pipeline_does_not_crash() -> None:
    """Regression: p on a worker screen paused by name on the newest pipeline, which has
    no such worker."""
    from antflow import Pipeline, Stage
    from antflow_tui.live import live_app
    from antflow_tui.live.runner import MainJob
    from antflow_tui.options import AppOptions

    gate = asyncio.Event()

    async def noop(value: int) -> int:
        return value

    async def wait(value: int) -> int:
        await gate.wait()
        return value

    async def main() -> None:
        await Pipeline([Stage("First", 1, [noop])]).run([1, 2])
        await Pipeline([Stage("Second", 1, [wait])]).run([3])

    app = live_app(MainJob("two.py", main), AppOptions(interval=0.05, stop_grace=0.0))
    async with app.run_test(size=SIZE) as pilot:
        await until(lambda: len(app.source.attached) == 2)
        app.open_worker("First-W0")
        await pilot.pause()
        await pilot.press("P")
        assert app.source.attached[0].pipeline.is_paused(worker="First-W0")
        gate.set()


# ---------------------------------------------------------------------- issue 10


@pytest.mark.parametrize("options", [dict(paused=True)])
async def test_p_resumes_a_fully_paused_run_from_any_panel(
    app: AntflowApp, run: GatedRun, pilot: Pilot
) -> None:
    """Regression (issue 10): with --paused, p on the stage table paused that stage instead
    of resuming the run, though the banner said p resumes it."""
    await until(lambda: app.source.current is not None)
    app.redraw()
    assert "(p to resume)" in text_of(app.screen.query_one("#banner"))
    pipeline = app.source.current.pipeline  # type: ignore[union-attr]
    await pilot.press("1", "p")
    assert not pipeline.paused
    assert not pipeline.is_paused(stage="Fetch")
    await pilot.press("P")
    assert pipeline.is_paused(stage="Fetch"), "P on a stage pauses it"


# A long grace: the gated tasks hold the stop in "stopping" until it is forced.
@pytest.mark.parametrize(
    "options",
    [
        {
            "paused": True,
            "keymap": {"pause": "space", "freeze": "x", "stop": "ctrl+x"},
            "stop_grace": 3_600.0,
        }
    ],
)
async def test_banners_name_the_keys_as_remapped(app: AntflowApp, pilot: Pilot) -> None:
    """Regression (issue 10): banners said "p" and "z" whatever --keymap bound."""
    await until(lambda: app.source.current is not None)
    app.redraw()
    assert "(space to resume)" in text_of(app.screen.query_one("#banner"))
    await pilot.press("x")
    assert "(x to unfreeze)" in text_of(app.screen.query_one("#banner"))
    await pilot.press("x", "space")
    await until(lambda: busy(app, "Fetch-W0"))
    await pilot.press("ctrl+x")
    await until(lambda: app.source.stopping)
    app.redraw()
    assert "(ctrl+x again to force)" in text_of(app.screen.query_one("#banner"))
    await pilot.press("ctrl+x")
    await until(lambda: not app.source.running(), steps=200_000)


@pytest.mark.usefixtures("at_mid_run")
async def test_the_worker_panel_border_says_what_its_glyphs_mean(
    app: AntflowApp, pilot: Pilot
) -> None:
    await pilot.pause()
    title = str(app.screen.query_one(WorkerGrid).border_title)
    assert "▶ running" in title
    assert "· idle" in title
    await pilot.press("question_mark")
    help_text = text_of(app.screen.query_one("#help-table"))
    for mark in ("▶ running", "◌ waiting", "! stuck", "» blocked", "‖ paused", "◀ bottleneck"):
        assert mark in help_text


@pytest.mark.usefixtures("at_mid_run")
async def test_an_item_screen_keeps_updating_after_the_run_ends(
    app: AntflowApp, run: GatedRun, pilot: Pilot
) -> None:
    """Regression (issue 10): an item screen opened before the end went stale once the run
    had ended (a retry after the end never showed)."""
    await pilot.press("3", "enter")
    screen = app.screen
    assert isinstance(screen, ItemScreen)
    assert screen.item == "page-2"
    for stage in ("Fetch", "Parse", "Save"):
        run.release(stage, *range(8))
    await until(lambda: app.source.ended_at is not None)
    run.failures.clear()
    await pilot.press("r")
    # No explicit redraw: the app's own frames must bring the screen to the end.
    await until(
        lambda: "completed in Save" in text_of(screen.query_one("#item-title")),
        steps=500_000,
    )
    assert app.source.ends == 2


async def test_retry_and_the_item_screen_act_on_the_rows_own_pipeline() -> None:
    """Regression (issue 10): with several pipelines, r on one error row retried that id in
    every pipeline ("Retrying 6 item(s)")."""
    from antflow import Pipeline, Stage
    from antflow_tui.live import live_app
    from antflow_tui.live.runner import MainJob
    from antflow_tui.options import AppOptions

    calls: list[tuple[str, int]] = []
    broken = {"first": True, "second": True}

    def task(name: str) -> Any:
        async def run(value: int) -> int:
            calls.append((name, value))
            if value == 1 and broken[name]:
                raise ValueError(f"{name} refused 1")
            return value

        run.__name__ = name
        return run

    async def main() -> None:
        await Pipeline([Stage("First", 1, [task("first")], task_attempts=1)]).run([0, 1])
        await Pipeline([Stage("Second", 1, [task("second")], task_attempts=1)]).run([0, 1])

    app = live_app(MainJob("two.py", main), AppOptions(interval=0.05))
    async with app.run_test(size=SIZE) as pilot:
        await until(lambda: app.source.ended_at is not None, steps=200_000)
        app.redraw()
        panel = app.screen.query_one(ErrorPanel)
        await pilot.press("3")
        assert panel.pipelines == 2
        assert panel.header(80).plain.startswith("Pipe")  # type: ignore[union-attr]
        assert panel.render_row(0, 80).plain.split()[:2] == ["2", "1"]
        assert panel.render_row(1, 80).plain.split()[:2] == ["1", "1"]
        await pilot.press("j", "enter")
        screen = app.screen
        assert isinstance(screen, ItemScreen)
        assert screen.pipeline == 1
        assert "(pipeline 1 of 2)" in text_of(screen.query_one("#item-title"))
        assert "also in pipeline 2" in text_of(screen.query_one("#item-facts"))
        await pilot.press("escape")
        broken["first"] = False
        calls.clear()
        await pilot.press("r")
        await until(lambda: not app.source.running() and app.source.ends == 2, steps=200_000)
        assert calls == [("first", 1)], "only the row's own pipeline retries it"
        first, second = (a.pipeline for a in app.source.attached)
        assert first.failed_item_ids() == []
        assert second.failed_item_ids() == [1]


# ---------------------------------------------------------------------- issue 17


# Issue 17.1: the run ended under a drill-down screen; back on the main screen the header
# said "running" for good (no frame comes after the end) and the panels disagreed.
@pytest.mark.usefixtures("at_mid_run")
async def test_the_main_screen_shows_the_end_that_came_under_a_drill_down(
    app: AntflowApp, run: GatedRun, pilot: Pilot
) -> None:
    assert "running" in text_of(app.screen.query_one("#summary"))
    await pilot.press("1", "enter")
    stage = app.screen
    assert isinstance(stage, StageScreen)
    for name in ("Fetch", "Parse", "Save"):
        run.release(name, *range(8))
    await until(lambda: app.source.ended_at is not None)
    # The app's own frames (no redraw from the test) bring the stage screen to the end.
    await until(lambda: "Finished" in text_of(stage.query_one("#stage-now")), steps=200_000)
    await until(lambda: not app.source.dirty)  # the last frame was taken: none comes
    await pilot.press("escape")
    await pilot.pause()
    main = app.screen
    assert isinstance(main, MainScreen)
    summary = text_of(main.query_one("#summary"))
    assert "finished" in summary
    assert "● running" not in summary
    assert "completed 7   failed 1" in summary
    panel = main.query_one(ErrorPanel)
    assert str(panel.border_title).startswith("Errors (1) · ")
    assert panel.row_count == 1


# Issue 17.3: a stage paused when its queue was empty outlived the run: the banner still
# said "Paused: stage Fetch" over the finished run, and a retry sat in the paused stage.
async def test_pauses_end_with_the_run(app: AntflowApp, run: GatedRun, pilot: Pilot) -> None:
    run.fail("Fetch", 3, "flaky")
    await until(lambda: app.source.current is not None)
    pipeline = app.source.current.pipeline  # type: ignore[union-attr]
    run.release("Fetch", *range(8))
    await until(lambda: stats(app).stage_stats["Fetch"].completed_items == 7)
    await pilot.press("1", "P", "2", "P")  # stage Fetch, and worker Fetch-W0
    assert pipeline.is_paused(stage="Fetch")
    assert pipeline.is_paused(worker="Fetch-W0")
    app.redraw()
    banner = text_of(app.screen.query_one("#banner"))
    assert "Paused: stage Fetch (P on it to resume)" in banner
    run.release("Parse", *range(8))
    run.release("Save", *range(8))
    await until(lambda: app.source.ended_at is not None)
    await until(lambda: not app.source.dirty)  # the app's own frame drew the end
    assert not pipeline.is_paused(stage="Fetch")
    assert not pipeline.is_paused(worker="Fetch-W0")
    assert text_of(app.screen.query_one("#banner")).strip() == ""
    assert "finished" in text_of(app.screen.query_one("#summary"))
    notes = [e.line.text for e in app.screen.query_one(EventLog).entries if e.line]
    assert "The run has ended: its pauses end with it (stage Fetch, worker Fetch-W0)." in notes
    # A retry after the end is not held: the item goes through.
    run.failures.clear()
    await pilot.press("3", "r")
    await until(lambda: app.source.ends == 2)
    assert stats(app).items_processed == 8
    assert not any("paused" in toast for toast in toasts(app))


# Issue 17.3: a retry into a paused stage was silent: the item just sat there.
async def test_a_retry_into_a_paused_stage_or_run_says_so(
    app: AntflowApp, run: GatedRun, pilot: Pilot
) -> None:
    run.fail("Parse", 1, "bad")
    run.fail("Parse", 2, "bad")
    await until(lambda: app.source.current is not None)
    pipeline = app.source.current.pipeline  # type: ignore[union-attr]
    run.release("Fetch", *range(8))
    run.release("Parse", *range(8))
    await until(lambda: stats(app).items_failed == 2)
    await pilot.press("1", "j", "P")  # stage Parse; Save still holds the run open
    assert pipeline.is_paused(stage="Parse")
    app.redraw()
    run.failures.clear()
    await pilot.press("3", "r")
    await until(lambda: bool(toasts(app)))
    assert toasts(app)[-1] == (
        "Retrying 1 item. Stage Parse is paused: the item waits there (P on it resumes it)."
    )
    await pilot.press("1", "P", "p")  # Parse goes on; the whole run is paused
    assert not pipeline.is_paused(stage="Parse")
    assert pipeline.paused
    app.redraw()
    await pilot.press("3", "r")
    await until(lambda: "run is paused" in toasts(app)[-1])
    assert toasts(app)[-1] == (
        "Retrying 1 item. The run is paused: the item waits until it resumes (p)."
    )
    await pilot.press("p")
    run.release("Save", *range(8))
    await until(lambda: app.source.ended_at is not None)
    assert stats(app).items_processed == 8


# Issue 17.4: ctrl+c on a finished run did nothing, not even a notice.
async def test_ctrl_c_on_a_finished_run_quits(app: AntflowApp, run: GatedRun, pilot: Pilot) -> None:
    await finish(app, run)
    await pilot.press("ctrl+c")
    await until(lambda: not app.is_running)
    assert hosted(app).outcome().exit_code == 0


@pytest.mark.usefixtures("at_mid_run")
async def test_ctrl_c_after_a_stop_quits_at_once(
    app: AntflowApp, run: GatedRun, pilot: Pilot
) -> None:
    await pilot.press("ctrl+c")
    await until(lambda: app.source.ended_at is not None, steps=200_000)
    assert app.is_running, "the first ctrl+c stops the run and keeps the report"
    await pilot.press("ctrl+c")
    await until(lambda: not app.is_running)


# Issue 17.8: 60 retried attempts (429s, resets) and an empty Errors panel: transient errors
# are counted by type in the stage screen and grouped apart ("retried") in the error groups;
# a replay of the run shows the same.
async def test_retried_attempts_are_counted_by_type_and_grouped_apart(tmp_path: Path) -> None:
    from antflow import Pipeline, Stage
    from antflow_tui.live import live_app
    from antflow_tui.live.runner import PipelineJob
    from antflow_tui.messages import RetryRequested
    from antflow_tui.options import AppOptions

    tries: dict[int, int] = {}

    async def fetch(x: int) -> int:
        tries[x] = tries.get(x, 0) + 1
        if x == 9:
            raise ValueError("page 9 is gone")
        if x < 6 and tries[x] == 1:
            raise ConnectionResetError(f"reset by peer on item {x}")
        return x

    recording = tmp_path / "run.jsonl"
    stage = Stage("Fetch", 2, [fetch], task_attempts=3, task_wait_seconds=0)
    job = PipelineJob("flaky.py", Pipeline([stage]), list(range(10)), 10)
    app = live_app(job, AppOptions(interval=0.05, record=recording))
    seen: list[Any] = []
    async with app.run_test(size=SIZE, message_hook=seen.append) as pilot:
        await until(lambda: app.source.ended_at is not None, steps=200_000)
        app.redraw()
        await pilot.pause()
        panel = app.screen.query_one(ErrorPanel)
        assert str(panel.border_title) == "Errors (1) · 8 retried attempts (c groups)"
        await pilot.press("3", "c")
        # Item 9 failed its three attempts: two were tried again, the last failed it.
        assert str(panel.border_title) == "Error groups (3) of 1 failed · 8 retried attempts"
        final, retried, again = panel.groups
        assert (final.type, final.count, final.retried) == ("ValueError", 1, False)
        assert (retried.type, retried.count, retried.retried) == ("ConnectionResetError", 6, True)
        assert (again.type, again.count, again.retried) == ("ValueError", 2, True)
        assert retried.pattern == "reset by peer on item <n>"
        assert panel.render_row(1, 100).plain.lstrip().startswith("↻6")
        await pilot.press("j", "r")
        assert "tried again already" in toasts(app)[-1]
        await pilot.press("enter")
        assert panel.group_retried
        assert str(panel.border_title).startswith("Retried attempts (6) · group")
        assert sorted(failure.item for failure in panel.shown_failures) == list(range(6))
        await pilot.press("R")
        assert not [m for m in seen if isinstance(m, RetryRequested)]
        assert not isinstance(app.screen, ConfirmScreen)
        await pilot.press("1", "enter")
        now = text_of(app.screen.query_one("#stage-now"))
        assert "8 attempts tried again: ConnectionResetError 6 · ValueError 2" in now
    await hosted(app).conclude()

    from antflow_tui.cli import replay_app

    replayed = replay_app(recording, AppOptions(interval=0.05))
    async with replayed.run_test(size=SIZE) as pilot:
        await until(lambda: replayed.state.status is not None)
        replayed.redraw()
        await pilot.pause()
        panel = replayed.screen.query_one(ErrorPanel)
        assert str(panel.border_title) == "Errors (1) · 8 retried attempts (c groups)"
        await pilot.press("3", "c")
        assert [(g.type, g.count, g.retried) for g in panel.groups] == [
            ("ValueError", 1, False),
            ("ConnectionResetError", 6, True),
            ("ValueError", 2, True),
        ]
        await pilot.press("1", "enter")
        now = text_of(replayed.screen.query_one("#stage-now"))
        assert "8 attempts tried again: ConnectionResetError 6 · ValueError 2" in now
