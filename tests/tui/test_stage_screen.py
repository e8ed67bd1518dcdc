"""The stage screen (issue 14): live numbers, the task-time distribution, the slowest items
(enter opens one), each worker's share, and the errors a stage gives up on at once."""

from __future__ import annotations

from io import StringIO

import msgspec
from rich.console import Console

from antflow.runstream.records import StageConfig
from antflow_tui.screens.item import ItemScreen
from antflow_tui.screens.stage import StageScreen, config_table
from antflow_tui.widgets.error_panel import ErrorPanel
from antflow_tui.widgets.slowest_list import SlowestList
from tests.tui.apps import text_of, until
from tests.tui.recorded import recorded_app, replay_app

SIZE = (120, 48)


async def _stage_screen(app: object, pilot: object) -> StageScreen:
    await until(lambda: app.state.status is not None)  # type: ignore[attr-defined]
    app.redraw()  # type: ignore[attr-defined]
    await pilot.press("1", "enter")  # type: ignore[attr-defined]
    await until(lambda: isinstance(app.screen, StageScreen))  # type: ignore[attr-defined]
    return app.screen  # type: ignore[attr-defined,no-any-return]


async def test_the_stage_screen_shows_times_slowest_items_and_workers() -> None:
    app = recorded_app("mid_run")
    async with app.run_test(size=SIZE) as pilot:
        screen = await _stage_screen(app, pilot)
        latency = text_of(screen.query_one("#stage-latency"))
        assert "avg 1.2s  p50 530ms  p95 1.5s  max 1.5s" in latency
        assert "≤" in latency
        assert "%" in latency
        now = text_of(screen.query_one("#stage-now"))
        assert "3 (3/3 workers busy)" in now
        assert "page-7" in now.splitlines()[-1]
        workers = text_of(screen.query_one("#stage-workers"))
        assert "Share" in workers
        assert "Fetch-W0" in workers
        assert "█▉░░░" in workers, "page-4 reports 3 of 8"
        assert "↑1,500" in workers
        slowest = screen.query_one(SlowestList)
        assert slowest.items[0] == ("page-1", 1.5)
        assert "page-1" in slowest.render_line(0).text
        slowest.focus()
        await pilot.press("enter")
        await until(lambda: isinstance(app.screen, ItemScreen))
        assert app.screen.item == "page-1"


async def test_the_stage_screen_in_a_replay() -> None:
    app = replay_app("failures", at=7.0)
    async with app.run_test(size=SIZE) as pilot:
        screen = await _stage_screen(app, pilot)
        now = text_of(screen.query_one("#stage-now"))
        assert "sparklines: the last" in now
        assert "Give up on" in text_of(screen.query_one("#stage-config"))


def test_the_configuration_names_the_errors_given_up_on_at_once() -> None:
    config = StageConfig(
        name="Generate",
        workers=("Generate-W0",),
        tasks=("generate",),
        retry="per_task",
        task_attempts=4,
        task_wait_seconds=1.0,
        stage_attempts=1,
        queue_capacity=10,
        no_retry_on=("llm_batch.ContextLengthError", "[red]KeyError[/red]"),
    )
    out = StringIO()
    Console(file=out, width=100, color_system=None).print(config_table(config))
    shown = out.getvalue()
    assert "Give up on" in shown
    assert "ContextLengthError, [red]KeyError[/red]" in shown
    assert "4 per task, 1.0s apart" in shown


async def test_the_stage_screen_lists_its_own_stage_s_failures_only() -> None:
    app = replay_app("failures", at=7.0)
    async with app.run_test(size=SIZE) as pilot:
        screen = await _stage_screen(app, pilot)
        assert screen.stage == "Fetch"
        recorded = app.state.failures_of(1)
        assert {f.stage for f in recorded} >= {"Fetch"}
        # A stage whose name holds this one's ("stage:Fetch" would match it too).
        other = msgspec.structs.replace(recorded[0], stage="Prefetch", item="not-mine")
        app.state._set_failures({1: (*recorded, other)}, replace=True)
        screen.refresh_view()
        shown = screen.query_one(ErrorPanel).shown_failures
        assert shown
        assert {f.stage for f in shown} == {"Fetch"}
        assert len(shown) == sum(f.stage == "Fetch" for f in recorded)
