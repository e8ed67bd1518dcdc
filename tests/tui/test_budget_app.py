"""A run's cost and budget in the app, live (issue 22): the header's spend, the Cost column,
the banner while the budget pauses the run, `B` raising it, quitting while paused.

The run (`tests.tui.costly`): calls that each wait on their own gate, then report 100
tokens in and 50 out ($0.01). ``--budget-tokens 450`` lets three calls through, then
pauses.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from antflow import use_prices
from antflow_tui.live import live_app
from antflow_tui.live.runner import PipelineJob
from antflow_tui.options import AppOptions
from antflow_tui.screens.budget import BudgetScreen
from antflow_tui.screens.confirm import ConfirmScreen
from antflow_tui.screens.goto import GotoScreen
from antflow_tui.screens.item import ItemScreen
from antflow_tui.screens.main import MainScreen
from antflow_tui.screens.stage import StageScreen
from antflow_tui.screens.worker import WorkerScreen
from antflow_tui.source.base import Can
from antflow_tui.widgets.stage_table import StageTable
from tests.tui.apps import hosted, live, text_of, toasts, until
from tests.tui.costly import ITEMS, PRICES, CostlyRun
from tests.tui.recorded import replay_app

if TYPE_CHECKING:
    from pathlib import Path

    from antflow_tui.app import AntflowApp

SIZE = (160, 40)


def costly_app(run: CostlyRun, **options: Any) -> AntflowApp:
    use_prices(PRICES)
    items = [{"id": f"q-{n}", "value": n} for n in range(ITEMS)]
    job = PipelineJob("ask.py", run.pipeline, items, ITEMS)
    settings = {"interval": 0.05, "stop_grace": 0.0, **options}
    return live_app(job, AppOptions(**settings), clock=run.clock)


def banner(app: AntflowApp) -> str:
    return text_of(app.screen.query_one("#banner"))


def summary(app: AntflowApp) -> str:
    return text_of(app.screen.query_one("#summary"))


def paused_by_budget(app: AntflowApp) -> bool:
    state = live(app).current.pipeline.probe.budget()  # type: ignore[union-attr]
    return state is not None and state.paused


async def drawn(app: AntflowApp, pilot: Any, condition: Any) -> None:
    """Wait until `condition()` holds on the screen as drawn now."""

    def redrawn() -> bool:
        app.redraw()
        return bool(condition())

    await until(redrawn, steps=50_000)
    await pilot.pause()


async def three_calls_then_paused(app: AntflowApp, run: CostlyRun, pilot: Any) -> None:
    await until(lambda: live(app).current is not None and run.started)
    run.release(0, 1, 2)
    await until(lambda: paused_by_budget(app), steps=50_000)
    await drawn(app, pilot, lambda: "Paused by its budget" in banner(app))


# Issue 22: the budget pauses the run before a call would go over; the banner says what
# was spent, of what, why, and the key that raises it; the header shows the spend and the
# tokens of the limit; the stage table a Cost column.
async def test_a_budget_pauses_the_run_and_the_app_says_so() -> None:
    run = CostlyRun()
    app = costly_app(run, budget_tokens=450)
    async with app.run_test(size=SIZE) as pilot:
        await three_calls_then_paused(app, run, pilot)
        assert sorted(run.started) == [0, 1, 2]  # the 4th call waits: 450 of 450 tokens
        said = banner(app)
        assert said.startswith("Paused by its budget (B raises it, nothing lost): ")
        assert "450 of 450 tokens" in said
        assert "(2 calls waiting)" in said
        top, counts_line = summary(app).splitlines()[:2]
        assert "● paused" in top
        assert "$0.03 · 450 of 450 tok" in counts_line
        table = app.screen.query_one(StageTable)
        assert "cost" in [column.value for column in table.columns]
        keys = [column.value for column in table.columns]
        row = table.get_row_at(0)
        assert str(row[keys.index("cost")]) == "$0.03"


# Issue 22: B asks how much; a wrong amount says what to type; a raise lets the run go
# on with nothing lost (every item completes once).
async def test_b_raises_the_budget_and_the_run_goes_on_with_nothing_lost(tmp_path: Path) -> None:
    run = CostlyRun()
    target = tmp_path / "out.jsonl"
    app = costly_app(run, budget_tokens=450, export=target)
    async with app.run_test(size=SIZE) as pilot:
        await three_calls_then_paused(app, run, pilot)
        await pilot.press("B")
        await until(lambda: isinstance(app.screen, BudgetScreen))
        said = "\n".join(text_of(static) for static in app.screen.query("Static"))
        assert "Now: $0.03 spent (no dollar limit) · 450 of 450 tokens spent" in said
        assert "Paused: 450 of 450 tokens spent; the next call may use 150" in said
        assert "in tokens unless said" in said  # the budget caps tokens only
        await pilot.press(*"lots", "enter")
        await pilot.pause()
        assert isinstance(app.screen, BudgetScreen)
        assert "'lots' is not an amount" in text_of(app.screen.query_one("#budget-error"))
        await pilot.press(*("backspace",) * 4, *"+1k", "enter")
        await until(lambda: isinstance(app.screen, MainScreen))
        await until(lambda: any("Budget raised" in toast for toast in toasts(app)))
        assert not paused_by_budget(app)
        assert live(app).current.pipeline.budget.tokens == 1_450  # type: ignore[union-attr]
        await until(lambda: len(run.started) == 5)
        run.release(*range(ITEMS))
        await until(lambda: live(app).ended_at is not None, steps=200_000)
        await drawn(app, pilot, lambda: "finished" in summary(app))
        assert banner(app) == ""
        assert "$0.06" in summary(app).splitlines()[1]
    assert sorted(run.started) == list(range(ITEMS))  # each call once
    outcome = await hosted(app).conclude()
    assert (outcome.completed, outcome.unfinished, outcome.exit_code) == (ITEMS, 0, 0)
    assert "cost $0.06 (900 tokens)" in outcome.summary()
    # Issue 22: the export's header carries the run's usage and cost.
    head = json.loads(target.read_text().splitlines()[0])
    assert head["usage"]["input_tokens"] == 600
    assert head["usage"]["output_tokens"] == 300
    assert round(head["usage"]["cost"], 6) == 0.06


# Issue 22: quitting while paused by the budget stops the run; the calls waiting are
# unfinished (for a resume), and the quit dialog and the summary say why.
async def test_quitting_while_paused_by_the_budget() -> None:
    run = CostlyRun()
    app = costly_app(run, budget_tokens=450)
    async with app.run_test(size=SIZE) as pilot:
        await three_calls_then_paused(app, run, pilot)
        await pilot.press("q")
        await until(lambda: isinstance(app.screen, ConfirmScreen))
        question = text_of(app.screen.query_one("Static"))
        assert "It is paused by its budget" in question
        await pilot.press("y")
        await until(lambda: live(app).ended_at is not None, steps=200_000)
    outcome = await hosted(app).conclude()
    assert (outcome.completed, outcome.unfinished, outcome.items) == (3, 3, ITEMS)
    assert outcome.exit_code == 1
    line = outcome.summary()
    assert "unfinished 3" in line
    assert "cost $0.03 (450 tokens)" in line
    assert "stopped while paused by its budget (" in line
    assert sorted(run.started) == [0, 1, 2]


# Issue 22: a run without a budget has nothing to raise: B is not offered, and says so
# from the command palette's path (the action).
async def test_without_a_budget_b_is_not_offered() -> None:
    run = CostlyRun()
    app = costly_app(run)
    async with app.run_test(size=SIZE) as pilot:
        await until(lambda: live(app).current is not None and run.started)
        assert app.check_action("raise_budget", ()) is False
        app.action_raise_budget()
        await pilot.pause()
        assert "The run has no budget to raise." in toasts(app)
        run.release(*range(ITEMS))
        await until(lambda: live(app).ended_at is not None, steps=200_000)
        # With usage and no budget the header still shows the spend.
        await drawn(app, pilot, lambda: "finished" in summary(app))
        assert "$0.06 · 900 tok" in summary(app).splitlines()[1]


# Issue 22: per stage (its screen: usage and cost per item), per worker and per item.
async def test_cost_per_stage_worker_and_item() -> None:
    run = CostlyRun()
    app = costly_app(run, budget_tokens=450)
    async with app.run_test(size=SIZE) as pilot:
        await three_calls_then_paused(app, run, pilot)
        await pilot.press("1", "enter")
        await until(lambda: isinstance(app.screen, StageScreen))
        await drawn(app, pilot, lambda: "Usage" in text_of(app.screen.query_one("#stage-limits")))
        limits = text_of(app.screen.query_one("#stage-limits"))
        assert "450 tokens (300 in, 150 out) · $0.03 · fake-mini · 3 calls" in limits
        assert "$0.01 per item" in limits
        await pilot.press("escape", "2", "enter")
        await until(lambda: isinstance(app.screen, WorkerScreen))
        await drawn(app, pilot, lambda: "Usage" in text_of(app.screen.query_one("#worker-facts")))
        facts = text_of(app.screen.query_one("#worker-facts"))
        assert "$0.01 per item" in facts
        await pilot.press("escape", "colon")
        await until(lambda: isinstance(app.screen, GotoScreen))
        await pilot.press(*"q-0", "enter")
        await until(lambda: isinstance(app.screen, ItemScreen))
        await drawn(app, pilot, lambda: "Usage" in text_of(app.screen.query_one("#item-facts")))
        item = text_of(app.screen.query_one("#item-facts"))
        assert "Usage: 150 tokens (100 in, 50 out) · $0.01 · fake-mini" in item


# Issue 22: a replay shows the pause as it was recorded, with no key to raise it.
async def test_a_replay_shows_the_pause_without_a_key() -> None:
    app = replay_app("budget", at=3.0)
    assert not app.source.can(Can.BUDGET)
    async with app.run_test(size=SIZE) as pilot:
        await until(lambda: app.state.status is not None)
        await drawn(app, pilot, lambda: "Paused by its budget" in banner(app))
        assert banner(app) == (
            "Paused by its budget: 450 of 450 tokens spent; the next call may use 150 "
            "(2 calls waiting)"
        )
        assert app.check_action("raise_budget", ()) is False
