"""Faults and bad input: hanging and blocking tasks, hostile strings, the app's own bugs,
quitting at every phase, and a big run that must stay bounded. Nothing may be lost."""

from __future__ import annotations

import asyncio
import json
from typing import TYPE_CHECKING, Any

import pytest

from antflow import Pipeline, Stage, StatusTracker, set_task_status
from antflow.testing import FakeClock
from antflow_tui.demo import DEMO_START, GatedRun
from antflow_tui.live import live_app
from antflow_tui.live.runner import PipelineJob
from antflow_tui.options import AppOptions
from antflow_tui.present import STUCK_WITHOUT_AVERAGE
from antflow_tui.screens.confirm import ConfirmScreen
from antflow_tui.screens.item import ItemScreen
from antflow_tui.widgets.error_panel import ErrorPanel
from antflow_tui.widgets.event_log import EventLog
from antflow_tui.widgets.worker_grid import WorkerGrid
from tests.tui.apps import ITEMS, gated_app, hosted, live, mid_run, stats, text_of, until

if TYPE_CHECKING:
    from pathlib import Path

    from antflow_tui.app import AntflowApp

SIZE = (120, 40)


def accounted(app: AntflowApp) -> None:
    """Every item fed is completed, failed, skipped or unfinished: none in flight."""
    for attached in app.source.attached:
        stats = attached.pipeline.get_stats()
        assert stats.items_in_flight == 0, stats
        assert stats.items_processed + stats.items_failed + stats.items_unfinished == (
            stats.items_fed
        )


def screen_text(app: AntflowApp) -> str:
    """Everything the terminal shows right now, as plain text."""
    strips = app.screen._compositor.render_strips()
    return "\n".join(strip.text for strip in strips)


# ---------------------------------------------------------------------- hanging tasks


async def test_hanging_tasks_show_as_stuck_and_quitting_counts_them_unfinished() -> None:
    clock = FakeClock(DEMO_START)
    never: asyncio.Future[None] | None = None

    async def hang(value: int) -> int:
        nonlocal never
        set_task_status("waiting forever")
        never = never or asyncio.get_running_loop().create_future()
        await never
        return value

    pipeline = Pipeline([Stage("Hang", 2, [hang])], clock=clock)
    app = live_app(
        PipelineJob("hang.py", pipeline, range(5), 5), AppOptions(interval=0.05, stop_grace=0.0)
    )
    async with app.run_test(size=SIZE) as pilot:
        await until(lambda: pipeline.get_stats().stage_stats["Hang"].busy_workers == 2)
        clock.advance(STUCK_WITHOUT_AVERAGE + 1)
        app.redraw()
        cells = app.screen.query_one(WorkerGrid)._cells
        assert [cell.look for cell in cells] == ["stuck", "stuck"]
        await pilot.press("q")
        await until(lambda: isinstance(app.screen, ConfirmScreen))
        await pilot.press("y")
        await until(lambda: not app.is_running, steps=200_000)
    outcome = await hosted(app).conclude()
    accounted(app)
    assert (outcome.completed, outcome.unfinished, outcome.exit_code) == (0, 5, 1)


# ---------------------------------------------------------------------- a task blocking the loop


# Regression (issue 10): the stall banner blamed a Fetch task that only waited through the
# stall (a Parse task called time.sleep), and the stall was told twice.
async def test_a_task_blocking_the_loop_is_blamed_once_and_the_run_recovers() -> None:
    fetched = asyncio.Event()
    app: AntflowApp | None = None

    async def fetch(value: int) -> int:
        if value:
            await fetched.wait()  # awaiting all through the stall, then done after it
        return value

    async def parse(value: int) -> int:
        if value == 0:
            assert app is not None
            assert app.host is not None
            assert app.host.watchdog is not None
            # The fault under test: code that does not await. It holds the loop until the
            # watchdog has seen it (a thread's event, not a timed sleep).
            app.host.watchdog.sampled.wait(30)
            fetched.set()
        return value

    pipeline = Pipeline([Stage("Fetch", 3, [fetch]), Stage("Parse", 1, [parse])])
    app = live_app(
        PipelineJob("block.py", pipeline, range(4), 4),
        AppOptions(interval=0.05, watchdog_late=0.05),
    )
    async with app.run_test(size=SIZE) as pilot:
        await until(lambda: app.source.ended_at is not None, steps=500_000)
        assert app.host is not None
        stalls = app.host.stalls
        await until(lambda: stalls.last is not None, steps=500_000)
        app.redraw()
        await pilot.pause()
        stall = stalls.last
        assert stall is not None
        assert stall.blame is not None
        assert stall.blame.detail == "worker Parse-W0 on item 0"
        assert "in parse" in stall.blame.where
        assert "test_faults.py" in stall.blame.where
        notes = [e.line.text for e in app.screen.query_one(EventLog).entries if e.line]
        told = [note for note in notes if "event loop was blocked" in note]
        assert len(told) == 1, told
        assert "Parse-W0" in told[0]
        assert "Fetch" not in told[0]
        assert "blocked" in text_of(app.screen.query_one("#banner"))
    assert hosted(app).outcome().completed == 4


# ---------------------------------------------------------------------- hostile strings


HOSTILE = "[red]boom[/red] \x1b[2J\x1b]0;pwned\x07 \u202e evil"


async def test_hostile_ids_values_errors_and_status_texts_are_shown_literally() -> None:
    huge = "x" * 5_000_000
    items = [
        {"id": HOSTILE, "value": huge},
        {"id": b"\xff\xfe\x00", "value": "bytes id"},
        {"id": "[bold]ok[/bold]", "value": "fine"},
    ]

    async def nasty(value: Any) -> Any:
        set_task_status(HOSTILE)
        if value is huge:
            raise ValueError(HOSTILE + "y" * 2_000_000)
        if value == "bytes id":
            raise KeyError(b"\xff\x00")
        return value

    pipeline = Pipeline([Stage("Nasty", 1, [nasty], task_attempts=1)])
    app = live_app(PipelineJob(HOSTILE, pipeline, items, 3), AppOptions(interval=0.05))
    async with app.run_test(size=(160, 48)) as pilot:
        await until(lambda: app.source.ended_at is not None)
        app.redraw()
        await pilot.press("3")
        await pilot.pause()
        shown = screen_text(app)
        assert "\x1b" not in shown
        assert "\u202e" not in shown
        assert "[red]boom[/red]" in shown
        assert "[bold]ok[/bold]" in shown
        panel = app.screen.query_one(ErrorPanel)
        assert panel.row_count == 2
        await pilot.press("G", "enter")
        await until(lambda: isinstance(app.screen, ItemScreen))
        await pilot.press("v")
        await pilot.pause()
        item_text = screen_text(app)
        assert "\x1b" not in item_text
        assert "[red]boom[/red]" in item_text
        await pilot.press("escape", "4", "slash")
        app.focused.value = "error:boom"  # type: ignore[union-attr]
        await pilot.press("enter")
        log = app.screen.query_one(EventLog)
        assert log.row_count >= 1
    accounted(app)


# ---------------------------------------------------------------------- the app's own bug


async def test_a_bug_in_the_app_stops_the_run_gracefully_and_still_exports(tmp_path: Path) -> None:
    run = GatedRun(list(ITEMS))
    target = tmp_path / "out.jsonl"
    app = gated_app(run, export=target)

    def broken(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError("widget bug")

    async def run_until_the_bug() -> None:
        async with app.run_test(size=SIZE):
            await mid_run(app, run)
            app.screen.query_one(WorkerGrid).show = broken  # type: ignore[method-assign]
            await until(lambda: not app.is_running, steps=200_000)

    with pytest.raises(RuntimeError, match="widget bug"):
        await run_until_the_bug()
    assert hosted(app).run_active or app.source.running(), (
        "the app's crash alone must not end the run"
    )
    outcome = await hosted(app).conclude()
    accounted(app)
    assert outcome.app_error is not None
    assert outcome.exit_code == 1
    assert (outcome.completed, outcome.failed) == (1, 1)
    assert outcome.unfinished == 6
    header, *lines = [json.loads(line) for line in target.read_text().splitlines()]
    assert (header["completed"], header["failed"], header["unfinished"]) == (1, 1, 6)
    assert sorted(line["status"] for line in lines) == ["completed", "failed"] + ["unfinished"] * 6
    unfinished = [line for line in lines if line["status"] == "unfinished"]
    # Where each was when the stop came, and the value it held there: enough to feed it again.
    assert all(line["stage"] in ("Fetch", "Parse", "Save") for line in unfinished)
    assert {line["id"]: line["value"] for line in unfinished}["page-7"] == 7
    assert {line["id"]: line["input"] for line in unfinished}["page-7"] == {
        "id": "page-7",
        "value": 7,
    }


# ---------------------------------------------------------------------- quitting at every phase


async def _quit(app: AntflowApp, pilot: Any) -> None:
    await pilot.press("q")
    if isinstance(app.screen, ConfirmScreen):
        await pilot.press("y")
    await until(lambda: not app.is_running, steps=200_000)


async def test_quit_at_the_start_before_anything_ran() -> None:
    run = GatedRun(list(ITEMS))
    app = gated_app(run, paused=True)
    async with app.run_test(size=SIZE) as pilot:
        await until(lambda: app.source.current is not None)
        await _quit(app, pilot)
    outcome = await hosted(app).conclude()
    accounted(app)
    assert (outcome.items, outcome.completed, outcome.unfinished) == (8, 0, 8)


async def test_quit_while_the_feeding_waits_for_room_is_a_stop_not_a_crash(
    tmp_path: Path,
) -> None:
    # Regression: a stop made the app's own feed() raise (it waited for room in a full
    # queue), and the app took that for the script raising: exit 2, a traceback.
    gate = asyncio.Event()

    async def held(x: int) -> int:
        await gate.wait()
        return x

    pipeline = Pipeline([Stage("Held", 1, [held], queue_capacity=2)])
    export = tmp_path / "out.jsonl"
    app = live_app(
        PipelineJob("full.py", pipeline, list(range(20)), 20),
        # A grace the held task never uses up in time: the feeding ends long before the stop.
        AppOptions(interval=0.05, stop_grace=0.3, export=export),
    )
    async with app.run_test(size=SIZE) as pilot:
        await until(lambda: pipeline.get_stats().items_fed == 3)  # one running, two queued
        await live(app).stop()  # what ctrl+c does
        # The run ends, and --export is written, once the stop is done: not when the
        # feeding gave up (then 3 items were still in flight).
        await until(lambda: export.exists())
        header, *lines = export.read_text().splitlines()
        assert json.loads(header)["in_flight"] == 0
        assert len(lines) == 20
        await _quit(app, pilot)
    outcome = await hosted(app).conclude()
    accounted(app)
    assert outcome.crash is None
    assert (outcome.unfinished, outcome.not_fed, outcome.exit_code) == (3, 17, 1)


async def test_quit_while_paused() -> None:
    run = GatedRun(list(ITEMS))
    app = gated_app(run)
    async with app.run_test(size=SIZE) as pilot:
        await mid_run(app, run)
        await pilot.press("p")
        run.release("Fetch", *range(8))
        run.release("Parse", *range(8))
        run.release("Save", *range(8))
        await until(lambda: stats(app).stage_stats["Fetch"].busy_workers == 0)
        await _quit(app, pilot)
    outcome = await hosted(app).conclude()
    accounted(app)
    assert outcome.completed + outcome.failed + outcome.unfinished == 8
    assert outcome.unfinished > 0


async def test_quit_during_a_shutdown() -> None:
    """ctrl+c starts a graceful stop (the gated tasks would hold it for its whole grace);
    q during it forces the stop and quits."""
    run = GatedRun(list(ITEMS))
    app = gated_app(run, stop_grace=3_600.0)
    async with app.run_test(size=SIZE) as pilot:
        await mid_run(app, run)
        await pilot.press("ctrl+c")
        await until(lambda: app.source.stopping)
        await pilot.press("q")
        await until(lambda: not app.is_running, steps=200_000)
    outcome = await hosted(app).conclude()
    accounted(app)
    assert (outcome.completed, outcome.failed, outcome.unfinished) == (1, 1, 6)
    assert outcome.exit_code == 1


async def test_quit_after_the_end_keeps_the_outcome() -> None:
    run = GatedRun(list(ITEMS))
    app = gated_app(run)
    async with app.run_test(size=SIZE) as pilot:
        await until(lambda: app.source.current is not None)
        for stage in ("Fetch", "Parse", "Save"):
            run.release(stage, *range(8))
        await until(lambda: app.source.ended_at is not None)
        await _quit(app, pilot)
    outcome = await hosted(app).conclude()
    assert (outcome.completed, outcome.exit_code) == (8, 0)


# ---------------------------------------------------------------------- a big run stays bounded


async def test_a_hundred_thousand_items_keep_the_log_and_the_tracker_bounded() -> None:
    async def noop(value: int) -> int:
        return value

    async def sometimes(value: int) -> int:
        if value % 10_000 == 7:
            raise ValueError(f"bad {value}")
        return value

    tracker = StatusTracker(max_history_items=1_000)
    pipeline = Pipeline(
        [Stage("A", 10, [noop]), Stage("B", 10, [sometimes], task_attempts=1)],
        collect_results=False,
        status_tracker=tracker,
    )
    n = 100_000
    app = live_app(
        PipelineJob("big.py", pipeline, range(n), n),
        AppOptions(interval=0.05, log_lines=2_000, history=1_000),
    )
    async with app.run_test(size=(160, 48)):
        await until(lambda: app.source.ended_at is not None, steps=5_000_000)
        app.redraw()
        log = app.screen.query_one(EventLog)
        assert len(log.entries) <= 2_000
        shown = [log.render_row(row, 200).plain for row in range(log.row_count)]
        assert any("events not shown" in line for line in shown), (
            "a flood must be summarised, not lost silently"
        )
    stats = pipeline.get_stats()
    assert (stats.items_processed, stats.items_failed) == (n - 10, 10)
    assert tracker.get_stats()["failed"] == 10
    assert sum(tracker.get_stats().values()) == n
    assert tracker.items_in_history <= 1_000 + 10
    assert all(tracker.has_history(f.item_id) for f in tracker.get_failed_items())
