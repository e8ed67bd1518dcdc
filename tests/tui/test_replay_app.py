"""Pilot tests of the app over recorded runs: the replay's scrubber keys, drill-down in a
replay, keys hidden when the source cannot act on them, controls sent as commands, the
pipeline switcher, and data colours that follow the theme."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import pytest
from textual.widgets import Input

from antflow.runstream.records import Pause, Retry
from antflow_tui.commands import key_commands
from antflow_tui.formatting import format_clock, format_rate
from antflow_tui.messages import PauseRequested, RetryRequested
from antflow_tui.screens.export import ExportScreen
from antflow_tui.screens.item import ItemScreen
from antflow_tui.screens.main import MainScreen
from antflow_tui.screens.seek import SeekScreen
from antflow_tui.screens.stage import StageScreen
from antflow_tui.view import ALL
from antflow_tui.widgets.error_panel import ErrorPanel
from antflow_tui.widgets.event_log import EventLog
from antflow_tui.widgets.scrubber import Scrubber
from antflow_tui.widgets.stage_table import StageTable
from tests.tui.apps import text_of, until
from tests.tui.recorded import RecordedSource, recorded_app, replay_app

if TYPE_CHECKING:
    from pathlib import Path

    from antflow_tui.app import AntflowApp

SIZE = (120, 36)


async def drawn(app: AntflowApp, pilot: Any) -> None:
    await until(lambda: app.state.status is not None)
    app.redraw()
    await pilot.pause()


def position(app: AntflowApp) -> float:
    status = app.state.status
    assert status is not None
    assert status.replay is not None
    return status.now - status.replay.start


def footer_keys(app: AntflowApp) -> set[str]:
    return {binding.binding.description for binding in app.active_bindings.values()}


# ---------------------------------------------------------------------- the scrubber


async def test_the_scrubber_keys_move_the_replay() -> None:
    app = replay_app("failures", at=5.0)
    async with app.run_test(size=SIZE) as pilot:
        await drawn(app, pilot)
        assert position(app) == pytest.approx(5.0)
        await pilot.press("right")
        assert position(app) == pytest.approx(6.0)
        await pilot.press("left", "left")
        assert position(app) == pytest.approx(4.0)
        await pilot.press("right_square_bracket")
        assert position(app) == pytest.approx(app.source.end - app.source.start)  # type: ignore[attr-defined]
        await pilot.press("left_square_bracket")
        assert position(app) == pytest.approx(app.source.end - app.source.start - 10.0)  # type: ignore[attr-defined]
        await pilot.press("greater_than_sign", "greater_than_sign")
        assert app.state.status.replay.speed == 4.0  # type: ignore[union-attr]
        await pilot.press("less_than_sign")
        assert app.state.status.replay.speed == 2.0  # type: ignore[union-attr]
        await pilot.press("space")
        assert app.state.status.replay.playing  # type: ignore[union-attr]
        await pilot.press("space")
        assert not app.state.status.replay.playing  # type: ignore[union-attr]
        scrubber = app.screen.query_one(Scrubber)
        assert scrubber.display
        assert "2x" in scrubber.text


async def test_t_seeks_to_a_typed_time_and_a_bad_one_is_explained() -> None:
    app = replay_app("failures")
    async with app.run_test(size=SIZE) as pilot:
        await drawn(app, pilot)
        await pilot.press("t")
        assert isinstance(app.screen, SeekScreen)
        app.screen.query_one(Input).value = "50%"
        await pilot.press("enter")
        await until(lambda: isinstance(app.screen, MainScreen))
        length = app.source.end - app.source.start  # type: ignore[attr-defined]
        assert position(app) == pytest.approx(length / 2)
        await pilot.press("t")
        app.screen.query_one(Input).value = "whenever"
        await pilot.press("enter")
        await pilot.pause()
        assert position(app) == pytest.approx(length / 2), "a bad time moves nothing"


async def test_typing_in_a_filter_keeps_space_and_arrows_for_the_text() -> None:
    app = replay_app("failures", at=5.0)
    async with app.run_test(size=SIZE) as pilot:
        await drawn(app, pilot)
        await pilot.press("4", "slash", "a", "space", "b", "left")
        assert app.focused is not None
        assert isinstance(app.focused, Input)
        assert app.focused.value == "a b"
        assert position(app) == pytest.approx(5.0)
        assert not app.state.status.replay.playing  # type: ignore[union-attr]


async def test_the_header_says_replay_and_where_it_stands() -> None:
    app = replay_app("failures", at=5.0)
    async with app.run_test(size=SIZE) as pilot:
        await drawn(app, pilot)
        header = text_of(app.screen.query_one("#summary"))
        assert header.startswith(" antflow  replay  demo.py")
        assert "0:00:05 of 0:00:11" in header


async def test_an_incomplete_recording_says_so_in_the_header_and_the_scrubber() -> None:
    app = replay_app("mid_run")
    async with app.run_test(size=SIZE) as pilot:
        await drawn(app, pilot)
        header = text_of(app.screen.query_one("#summary"))
        assert "incomplete" in header
        assert "incomplete" in app.screen.query_one(Scrubber).text
        # Issue 17.9: at its last moment it said "● running … ETA 12.4s".
        await pilot.press("right_square_bracket")
        header = text_of(app.screen.query_one("#summary"))
        assert "■ cut off  0:00:04 of 0:00:04 incomplete" in header
        assert "● running" not in header
        assert "ETA" not in header


# ---------------------------------------------------------------------- what a replay hides


async def test_keys_that_need_a_live_run_are_hidden_and_do_nothing_in_a_replay() -> None:
    seen: list[Any] = []
    app = replay_app("failures", at=8.0)
    async with app.run_test(size=SIZE, message_hook=seen.append) as pilot:
        await drawn(app, pilot)
        shown = footer_keys(app)
        assert "Play/pause" in shown
        assert "Seek" in shown
        assert not {"Pause run", "Pause selected", "Retry"} & shown
        await pilot.press("1", "p", "P", "3", "r", "R")
        await pilot.pause()
        assert not [m for m in seen if isinstance(m, PauseRequested | RetryRequested)]
        titles = {command.title for command in key_commands(app.screen)}
        assert "Play/pause" in titles
        assert not {"Pause", "Retry all", "Retry the selected failed item"} & titles


async def test_a_live_runs_keys_show_and_the_replay_keys_do_not() -> None:
    app = recorded_app("mid_run")
    async with app.run_test(size=SIZE) as pilot:
        await drawn(app, pilot)
        shown = footer_keys(app)
        assert {"Pause run", "Retry"} <= shown
        assert "Play/pause" not in shown
        assert not app.screen.query_one(Scrubber).display


async def test_ctrl_c_closes_a_replay() -> None:
    app = replay_app("failures")
    async with app.run_test(size=SIZE) as pilot:
        await drawn(app, pilot)
        await pilot.press("ctrl+c")
        await until(lambda: not app.is_running)


# ---------------------------------------------------------------------- drill-down in a replay


async def test_a_failures_item_screen_has_its_timeline_and_every_tracebacks() -> None:
    app = replay_app("failures", at=11.0)
    async with app.run_test(size=(120, 48)) as pilot:
        await drawn(app, pilot)
        await pilot.press("3")
        panel = app.screen.query_one(ErrorPanel)
        await until(lambda: panel.row_count == 2)
        await pilot.press("j", "enter")
        await until(lambda: isinstance(app.screen, ItemScreen))
        screen = app.screen
        await until(lambda: "Tracebacks" in text_of(screen.query_one("#item-tracebacks-heading")))
        tracebacks = text_of(screen.query_one("#item-tracebacks"))
        assert "1. fetch attempt 1 in Fetch: DemoError" in tracebacks
        assert "2. fetch attempt 2 in Fetch: DemoError" in tracebacks
        assert 'File "antflow_tui/demo.py"' in tracebacks
        assert "task fail" in text_of(screen.query_one("#item-timeline"))
        assert "failed in Fetch" in text_of(screen.query_one("#item-title"))
        assert "press" not in text_of(screen.query_one("#item-facts")), "no retry in a replay"


async def test_go_to_and_the_stage_screen_work_in_a_replay() -> None:
    app = replay_app("failures", at=11.0)
    async with app.run_test(size=SIZE) as pilot:
        await drawn(app, pilot)
        await pilot.press("colon")
        app.screen.query_one(Input).value = "page-5"
        await pilot.press("enter")
        await until(lambda: isinstance(app.screen, ItemScreen) and app.screen.item == "page-5")
        screen = app.screen
        await until(lambda: "failed in Parse" in text_of(screen.query_one("#item-title")))
        await pilot.press("escape", "1", "enter")
        assert isinstance(app.screen, StageScreen)
        assert "Fetch refused item 3" in app.screen.query_one(ErrorPanel).render_row(0, 200).plain


async def test_export_from_a_replay_writes_its_failures(tmp_path: Path) -> None:
    target = tmp_path / "replayed.jsonl"
    app = replay_app("failures", at=11.0, export=target)
    async with app.run_test(size=SIZE) as pilot:
        await drawn(app, pilot)
        await pilot.press("e")
        assert isinstance(app.screen, ExportScreen)
        await pilot.press("enter")
        await until(lambda: target.exists())
    header, *lines = [json.loads(line) for line in target.read_text().splitlines()]
    assert header["failed"] == 2
    assert sorted(line["id"] for line in lines) == ["page-3", "page-5"]


# ---------------------------------------------------------------------- controls as commands


async def test_pause_and_retry_go_to_the_source_as_commands() -> None:
    app = recorded_app("mid_run")
    source = app.source
    assert isinstance(source, RecordedSource)
    async with app.run_test(size=SIZE) as pilot:
        await drawn(app, pilot)
        await pilot.press("1", "P")
        await until(lambda: len(source.sent) == 1)
        assert source.sent[0] == Pause(pipeline=1, stage="Fetch")
        await pilot.press("3", "r")
        await until(lambda: len(source.sent) == 2)
        assert source.sent[1] == Retry(pipeline=1, items=("page-2",))


# ---------------------------------------------------------------------- several pipelines


async def test_the_switcher_goes_through_every_pipeline_and_all_of_them() -> None:
    app = recorded_app("two_pipelines")
    async with app.run_test(size=SIZE) as pilot:
        await drawn(app, pilot)
        main = app.screen
        assert isinstance(main, MainScreen)
        table = main.query_one(StageTable)
        assert main.shown == 2, "the newest pipeline first"
        assert [str(key.value) for key in table.rows] == ["Report"]
        assert "Pipeline" in footer_keys(app)
        switcher = text_of(main.query_one("#summary")).splitlines()[2]
        assert "1 pipeline-1 ✓ 6/6 ✗ 1" in switcher
        assert "2 pipeline-2 ● 0/3" in switcher
        await pilot.press("s")
        assert main.shown == ALL
        assert [str(key.value) for key in table.rows] == ["pipeline-1", "pipeline-2"]
        await pilot.press("1", "enter")
        assert main.shown == 1, "enter on a pipeline's row shows that pipeline"
        assert [str(key.value) for key in table.rows] == ["Extract", "Transform"]
        await pilot.press("s")
        assert main.shown == 2
        panel = main.query_one(ErrorPanel)
        assert panel.pipelines == 2, "failures of every pipeline, with their pipeline"
        assert panel.render_row(0, 80).plain.split()[:2] == ["1", "3"]
        log = main.query_one(EventLog)
        assert log.render_row(log.row_count - 1, 80).plain.split()[1] == "p2"


# ---------------------------------------------------------------------- theme colours


async def test_switching_the_theme_recolours_the_data() -> None:
    app = recorded_app("mid_run")
    async with app.run_test(size=SIZE) as pilot:
        await drawn(app, pilot)
        main = app.screen
        assert isinstance(main, MainScreen)
        log = main.query_one(EventLog)
        table = main.query_one(StageTable)
        before = (main.palette("stage"), main.palette.status("completed"))
        line_before = log.render_row(0, 100)
        cell_before = table.get_cell("Fetch", "done")
        app.theme = "nord"
        await until(lambda: table.get_cell("Fetch", "done").style != cell_before.style)
        after = (main.palette("stage"), main.palette.status("completed"))
        assert after != before
        assert table.get_cell("Fetch", "done").style == main.palette.status("completed")
        assert log.render_row(0, 100).spans != line_before.spans


async def test_the_help_of_a_replay_lists_the_scrubber_not_the_live_keys() -> None:
    app = replay_app("failures")
    async with app.run_test(size=(100, 50)) as pilot:
        await drawn(app, pilot)
        await pilot.press("question_mark")
        help_text = text_of(app.screen.query_one("#help-table"), width=100)
        assert "play / pause the replay" in help_text
        assert "seek to a time" in help_text
        assert "stop the run gracefully" not in help_text
        assert "retry the selected failed item" not in help_text
    live = recorded_app("mid_run")
    async with live.run_test(size=(100, 50)) as pilot:
        await drawn(live, pilot)
        assert "Pipeline" not in footer_keys(live), "one pipeline: nothing to switch"
        await pilot.press("question_mark")
        help_text = text_of(live.screen.query_one("#help-table"), width=100)
        assert "play / pause the replay" not in help_text
        assert "stop the run gracefully" in help_text


# ------------------------------------------------------- a file that goes on after its run


async def test_a_run_over_long_before_its_file_shows_its_own_time_rate_and_busy_shares() -> None:
    """The app was left open 40 s after the run: the header says finished at the run's
    11 s (not the file's 51 s), the rate is over those 11 s, and so are the busy shares."""
    app = replay_app("lingering", at=45.0)
    async with app.run_test(size=SIZE) as pilot:
        await drawn(app, pilot)
        status = app.state.status
        assert status is not None
        assert status.ended_at is not None
        run_time = status.ended_at - status.started_at
        assert run_time < 12.0
        header = text_of(app.screen.query_one("#summary"))
        assert f"● finished  {format_clock(run_time)} of 0:00:51" in header
        assert format_rate(app.state.counts().done / run_time) in header
        await pilot.press("1", "enter")
        assert isinstance(app.screen, StageScreen)
        started = app.state.pipelines[1].at
        worker = app.state.snapshots[1].workers[0][0]
        share = f"{min(worker.busy_seconds / (status.ended_at - started), 1.0):.0%}"
        row = next(
            line
            for line in text_of(app.screen.query_one("#stage-workers")).splitlines()
            if "Fetch-W0" in line
        )
        assert f" {share} " in row


async def test_after_a_jump_the_header_has_a_rate_at_once() -> None:
    # A jump starts the rates again: from the snapshots leading up to it, not from "–".
    app = replay_app("failures", at=7.0)
    async with app.run_test(size=SIZE) as pilot:
        await drawn(app, pilot)
        assert app.state.history_rate is not None
        header = text_of(app.screen.query_one("#summary"))
        assert "/s" in header.splitlines()[0]


# Issue 17.1: a replay that reached its end under a drill-down screen left the main screen
# (header and scrubber) where it stood when the screen was opened.
async def test_the_main_screen_shows_where_the_replay_went_under_a_drill_down() -> None:
    app = replay_app("failures", at=2.0)
    async with app.run_test(size=SIZE) as pilot:
        await drawn(app, pilot)
        main = app.screen
        assert "0:00:02 of 0:00:11" in text_of(main.query_one("#summary"))
        await pilot.press("1", "enter")
        assert isinstance(app.screen, StageScreen)
        await pilot.press("right_square_bracket")  # to the end, from the stage screen
        await until(lambda: app.state.status is not None and app.state.status.ended)
        await pilot.pause()
        await pilot.press("escape")
        await pilot.pause()
        assert app.screen is main
        header = text_of(main.query_one("#summary"))
        assert "finished" in header
        assert "0:00:02 of" not in header
        assert "0:00:11 ━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━● 0:00:11" in (
            main.query_one(Scrubber).text
        )
