"""`-` and `+`: a stage's concurrency changed live from the app (issue 21).

On a live gated run the keys reach the engine (`Pipeline.set_concurrency`, read back with
`get_limit_snapshot`), from the stage table, the worker grid and the stage screen, and
stop at 1 and at the stage's workers, saying so; on a replay they are not offered.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from antflow.runstream.records import SetConcurrency
from antflow_tui.demo import GatedRun
from antflow_tui.screens.help import HelpScreen
from antflow_tui.screens.main import MainScreen
from antflow_tui.screens.stage import StageScreen
from antflow_tui.source.base import Can
from antflow_tui.widgets.stage_table import StageTable
from tests.tui.apps import ITEMS, gated_app, live, mid_run, text_of, toasts, until
from tests.tui.recorded import RecordedSource, replay_app

if TYPE_CHECKING:
    from antflow_tui.app import AntflowApp

SIZE = (120, 40)


def footer_keys(app: AntflowApp) -> list[str]:
    """What the footer offers on the current screen."""
    return [
        active.binding.description
        for active in app.screen.active_bindings.values()
        if active.binding.show and active.enabled
    ]


def fetch_concurrency(app: AntflowApp) -> tuple[int, int]:
    """Fetch's (concurrency, max_concurrency) as the engine has them."""
    source = live(app)
    assert source.current is not None
    stage = source.current.pipeline.get_limit_snapshot().stages[0]
    return stage.concurrency, stage.max_concurrency


# Issue 21: - and + on the selected stage change the engine's concurrency live, say so,
# and stop at 1 and at the stage's workers (3) with a notice, sending nothing.
async def test_minus_and_plus_change_the_selected_stages_concurrency() -> None:
    run = GatedRun(list(ITEMS))
    app = gated_app(run)
    async with app.run_test(size=SIZE) as pilot:
        await mid_run(app, run)
        await pilot.press("1")  # the stage table, Fetch (3 workers) selected
        assert app.screen.query_one(StageTable).selected_stage == "Fetch"
        assert fetch_concurrency(app) == (3, 3)
        await pilot.press("minus")
        await until(lambda: fetch_concurrency(app) == (2, 2))
        assert "Fetch: at most 2 calls at once (of 3 workers)" in toasts(app)
        await pilot.press("minus", "minus")
        await until(lambda: fetch_concurrency(app) == (1, 1))
        await pilot.press("minus")
        await pilot.pause()
        assert fetch_concurrency(app) == (1, 1)
        assert any("already makes 1 call at a time, the fewest" in t for t in toasts(app))
        await pilot.press("plus", "plus")
        await until(lambda: fetch_concurrency(app) == (3, 3))
        await pilot.press("plus")
        await pilot.pause()
        assert fetch_concurrency(app) == (3, 3)
        assert any("may already make 3 calls at once, one per worker" in t for t in toasts(app))
        # Fetch now has a concurrency of its own: the table shows the column.
        app.redraw()
        await pilot.pause()
        table = app.screen.query_one(StageTable)
        assert "concurrency" in [column.value for column in table.columns]
        # The gated tasks release: the run goes on under the new limit and ends whole.
        run.release("Fetch", *range(len(ITEMS)))
        run.release("Parse", *range(len(ITEMS)))
        run.release("Save", *range(len(ITEMS)))
        await until(lambda: live(app).ended_at is not None, steps=200_000)
        assert live(app).current.pipeline.get_stats().items_processed == 7  # type: ignore[union-attr]


# Issue 21: from a worker selected in the grid, and from the stage's own screen.
async def test_the_keys_work_from_the_worker_grid_and_the_stage_screen() -> None:
    run = GatedRun(list(ITEMS))
    app = gated_app(run)
    async with app.run_test(size=SIZE) as pilot:
        await mid_run(app, run)
        await pilot.press("2", "minus")  # the grid's first worker: Fetch-W0
        await until(lambda: fetch_concurrency(app) == (2, 2))
        await pilot.press("1", "enter")
        await until(lambda: isinstance(app.screen, StageScreen))
        assert {"Fewer calls", "More calls"} <= set(footer_keys(app))
        await pilot.press("minus")
        await until(lambda: fetch_concurrency(app) == (1, 1))
        await pilot.press("plus", "plus")
        await until(lambda: fetch_concurrency(app) == (3, 3))
        app.redraw()
        await pilot.pause()
        limits = text_of(app.screen.query_one("#stage-limits"))
        assert "3 of 3 at once" in limits
        assert "- / + change it" in limits


# Issue 21: a replay changes nothing: the keys are hidden (footer, help) and do nothing.
async def test_a_replay_offers_no_concurrency_keys() -> None:
    app = replay_app("limited", at=5.0)
    assert not app.source.can(Can.CONCURRENCY)
    async with app.run_test(size=SIZE) as pilot:
        await until(lambda: app.state.status is not None)
        app.redraw()
        assert isinstance(app.screen, MainScreen)
        assert app.screen.check_action("concurrency", (-1,)) is False
        await pilot.press("1", "down", "enter")
        await until(lambda: isinstance(app.screen, StageScreen))
        assert app.screen.check_action("concurrency", (1,)) is False
        assert "Fewer calls" not in footer_keys(app)
        await pilot.press("minus")
        await pilot.pause()
        assert toasts(app) == []
        limits = text_of(app.screen.query_one("#stage-limits"))
        assert "Concurrency" in limits
        assert "change it" not in limits
        await pilot.press("question_mark")
        await until(lambda: isinstance(app.screen, HelpScreen))
        assert "fewer calls at once" not in text_of(app.screen.query_one("#help-table"), 200)


# Issue 21: the app sends what the keys ask for as a SetConcurrency command: the same
# command an attached viewer's keys send over the wire.
async def test_the_keys_send_set_concurrency_commands() -> None:
    from tests.tui.recorded import recorded_app

    app = recorded_app("limited")
    source = app.source
    assert isinstance(source, RecordedSource)
    async with app.run_test(size=SIZE) as pilot:
        await until(lambda: app.state.status is not None)
        app.redraw()
        # Ask: 2 at once of 8, adaptive (just cut back by a 429): - asks for one fewer
        # than run now; + then goes on from what - asked (no snapshot came between).
        await pilot.press("1", "down", "minus")
        await pilot.press("plus", "plus")
        await pilot.pause()
    assert source.sent == [
        SetConcurrency(pipeline=1, stage="Ask", limit=1),
        SetConcurrency(pipeline=1, stage="Ask", limit=2),
        SetConcurrency(pipeline=1, stage="Ask", limit=3),
    ]
