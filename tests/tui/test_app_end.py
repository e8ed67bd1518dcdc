"""Pilot tests of how a run ends and how it is counted: sys.exit, leaving stream() early,
stopping, the quit dialog, and the same numbers in the header, summary and export."""

from __future__ import annotations

import asyncio
import json
from typing import TYPE_CHECKING, Any

from antflow import Pipeline, Stage, StatusTracker
from antflow_tui.demo import GatedRun
from antflow_tui.live import live_app
from antflow_tui.live.runner import MainJob, PipelineJob
from antflow_tui.options import AppOptions
from antflow_tui.screens.confirm import ConfirmScreen
from antflow_tui.widgets.event_log import EventLog
from tests.tui.apps import ITEMS, finish, gated_app, hosted, mid_run, text_of, until

if TYPE_CHECKING:
    from pathlib import Path

    from antflow_tui.app import AntflowApp

SIZE = (120, 40)


def notes(app: AntflowApp) -> list[str]:
    log = app.screen.query_one(EventLog)
    return [entry.line.text for entry in log.entries if entry.line is not None]


def header(app: AntflowApp) -> str:
    return text_of(app.screen.query_one("#summary"))


async def test_sys_exit_zero_mid_run_stops_the_pipeline_and_exits_one() -> None:
    """Regression (issue 10): sys.exit(0) in main() gave exit 0 with 22 unfinished items
    and "the script raised an exception"."""
    gate = asyncio.Event()

    async def slow(value: int) -> int:
        await gate.wait()
        return value

    async def main() -> None:
        pipeline = Pipeline([Stage("Slow", 2, [slow])])
        await pipeline.start()
        await pipeline.feed(range(6))
        raise SystemExit(0)

    app = live_app(MainJob("exits.py", main), AppOptions(interval=0.05, stop_grace=0.0))
    async with app.run_test(size=SIZE) as pilot:
        await until(lambda: app.source.ended_at is not None, steps=200_000)
        app.redraw()
        await pilot.pause()
        assert "stopped" in header(app)
        assert any("called sys.exit() while a pipeline was running" in n for n in notes(app))
    outcome = await hosted(app).conclude()
    assert outcome.crash is None, "sys.exit is no exception of the script's"
    assert (outcome.unfinished, outcome.script_exit, outcome.exit_code) == (6, 0, 1)
    assert outcome.summary().endswith("script exit code 0")


async def test_sys_exit_with_a_code_after_the_run_exits_one_and_shows_the_code() -> None:
    """Regression (issue 10): sys.exit(3) made the app exit 3."""

    async def noop(value: int) -> int:
        return value

    async def main() -> None:
        await Pipeline([Stage("A", 1, [noop])]).run(range(3))
        raise SystemExit(3)

    app = live_app(MainJob("exits.py", main), AppOptions(interval=0.05))
    async with app.run_test(size=SIZE):
        await until(lambda: app.source.ended_at is not None, steps=200_000)
    outcome = await hosted(app).conclude()
    assert (outcome.completed, outcome.script_exit, outcome.exit_code) == (3, 3, 1)
    assert "script exit code 3" in outcome.summary()


async def test_sys_exit_zero_after_the_run_exits_zero() -> None:
    async def noop(value: int) -> int:
        return value

    async def main() -> None:
        await Pipeline([Stage("A", 1, [noop])]).run(range(3))
        raise SystemExit

    app = live_app(MainJob("exits.py", main), AppOptions(interval=0.05))
    async with app.run_test(size=SIZE):
        await until(lambda: app.source.ended_at is not None, steps=200_000)
    outcome = await hosted(app).conclude()
    assert (outcome.completed, outcome.exit_code) == (3, 0)


async def test_leaving_stream_early_abandons_the_rest_and_exits_zero(tmp_path: Path) -> None:
    """Regression (issue 10): breaking out of stream() (documented as supported) made the
    app exit 1 with the rest "unfinished"; plain python exits 0."""
    target = tmp_path / "out.jsonl"

    async def noop(value: int) -> int:
        return value

    async def main() -> None:
        pipeline = Pipeline([Stage("A", 1, [noop])], status_tracker=StatusTracker())
        async for result in pipeline.stream(range(50)):
            if result.id == 2:
                break
        await asyncio.sleep(0)  # the stream closes itself once it is let go
        await pipeline.shutdown()

    app = live_app(MainJob("first.py", main), AppOptions(interval=0.05, export=target))
    async with app.run_test(size=SIZE) as pilot:
        await until(lambda: app.source.ended_at is not None, steps=200_000)
        app.redraw()
        await pilot.pause()
        counts = hosted(app).counts()
        assert counts.abandoned > 0
        assert counts.unfinished == 0
        assert f"abandoned {counts.abandoned}" in header(app)
    outcome = await hosted(app).conclude()
    assert outcome.failed == 0
    assert outcome.abandoned == counts.abandoned
    assert outcome.exit_code == 0
    assert f"abandoned by the script {counts.abandoned}" in outcome.summary()
    head, *lines = [json.loads(line) for line in target.read_text().splitlines()]
    assert head["abandoned"] == counts.abandoned
    fed_and_left = app.source.attached[0].pipeline.get_stats().items_unfinished
    # Items the stream never fed have no line (nothing knows them); those it fed do.
    assert sum(1 for line in lines if line["status"] == "abandoned") == fed_and_left


async def test_stopped_runs_count_never_fed_items_alike_everywhere(tmp_path: Path) -> None:
    """Regression (issue 10): after ctrl+c twice the header said unfinished 86, the summary
    unfinished 261, the export held 86; and the quit dialog said "88 items in flight"."""
    target = tmp_path / "out.jsonl"
    run = GatedRun([{"id": f"page-{n}", "value": n} for n in range(40)], workers=(2, 1, 1))
    app = gated_app(run, export=target)
    async with app.run_test(size=SIZE) as pilot:
        await until(lambda: app.source.current is not None)
        # 2 Fetch workers hold an item each and its queue 20 more: feeding waits.
        await until(lambda: hosted(app).counts().in_flight == 22)
        before = hosted(app).counts()
        assert (before.in_flight, before.not_fed) == (22, 18)
        await pilot.press("q")
        await until(lambda: isinstance(app.screen, ConfirmScreen))
        question = text_of(app.screen.query_one("Static"))
        assert "22 items in flight and 18 items not fed yet" in question
        await pilot.press("n")
        await pilot.press("ctrl+c", "ctrl+c")
        await until(lambda: app.source.ended_at is not None, steps=200_000)
        app.redraw()
        await pilot.pause()
        shown = header(app)
    outcome = await hosted(app).conclude()
    assert (outcome.unfinished, outcome.not_fed, outcome.items) == (22, 18, 40)
    assert "unfinished 22" in shown
    assert "not fed 18" in shown
    assert "unfinished 22  not fed 18" in outcome.summary()
    head, *lines = [json.loads(line) for line in target.read_text().splitlines()]
    assert (head["unfinished"], head["not_fed"], head["items"]) == (22, 18, 40)
    statuses = [line["status"] for line in lines]
    assert (statuses.count("unfinished"), statuses.count("not_fed")) == (22, 18)
    not_fed = [line for line in lines if line["status"] == "not_fed"]
    assert not_fed[0] == {
        "pipeline": "pipeline",
        "status": "not_fed",
        "id": "page-22",
        "value": 22,
        "input": {"id": "page-22", "value": 22},
    }


async def test_history_bounds_a_scripts_own_tracker_and_says_so() -> None:
    """Regression (issue 10): --item-history (then --history) was ignored for a script's tracker."""

    async def noop(value: int) -> int:
        return value

    tracker = StatusTracker()
    pipeline = Pipeline([Stage("A", 2, [noop])], status_tracker=tracker)
    app = live_app(PipelineJob("own.py", pipeline, range(50), 50), AppOptions(history=10))
    async with app.run_test(size=SIZE):
        await until(lambda: app.source.ended_at is not None, steps=200_000)
        app.redraw()
        said = [n for n in notes(app) if "--item-history" in n]
    assert tracker.max_history_items == 10
    assert tracker.items_in_history == 10
    assert len(said) == 1
    assert "keeps the newest 10 completed items' histories here (it kept all)" in said[0]


async def test_a_scripts_smaller_history_bound_is_kept() -> None:
    async def noop(value: int) -> int:
        return value

    tracker = StatusTracker(max_history_items=5)
    pipeline = Pipeline([Stage("A", 1, [noop])], status_tracker=tracker)
    app = live_app(PipelineJob("own.py", pipeline, range(20), 20), AppOptions(history=10))
    async with app.run_test(size=SIZE):
        await until(lambda: app.source.ended_at is not None, steps=200_000)
        app.redraw()
        assert not [n for n in notes(app) if "--item-history" in n]
    assert tracker.max_history_items == 5


async def test_input_in_the_script_gets_an_error_and_the_log_says_why() -> None:
    """Regression (issue 10): input() under the app left a blank screen forever."""
    got: list[BaseException] = []

    async def main() -> None:
        try:
            input("Proceed? [y/N] ")  # noqa: ASYNC250 - the case under test
        except EOFError as error:
            got.append(error)

    app = live_app(MainJob("asks.py", main), AppOptions(interval=0.05))
    async with app.run_test(size=SIZE):
        await until(lambda: app.source.ended_at is not None, steps=200_000)
        app.redraw()
        said = notes(app)
    (error,) = got
    assert type(error).__name__ == "StdinOwnedError"
    assert "stdin is owned by antflow-tui" in str(error)
    assert any(note.endswith("Proceed? [y/N] ") for note in said), "the prompt is shown"
    assert any("stdin is owned by antflow-tui" in note for note in said)


async def test_printed_pieces_are_one_log_line_each() -> None:
    """Regression (issue 10): print("got", n) showed as two log lines."""

    async def main() -> None:
        print("got", 5)
        print("x", end="")
        print("y", end="", flush=True)
        print()

    app = live_app(MainJob("prints.py", main), AppOptions(interval=0.05))
    async with app.run_test(size=SIZE):
        await until(lambda: app.source.ended_at is not None, steps=200_000)
        app.redraw()
        said = notes(app)
    assert said == ["got 5", "xy"]


async def test_the_script_raising_still_exits_two() -> None:
    async def main() -> Any:
        raise LookupError("no such bucket")

    app = live_app(MainJob("fails.py", main), AppOptions(interval=0.05))
    async with app.run_test(size=SIZE):
        await until(lambda: app.source.ended_at is not None, steps=200_000)
    outcome = await hosted(app).conclude()
    assert outcome.exit_code == 2
    assert "LookupError: no such bucket" in (outcome.crash or "")


async def test_the_quit_dialog_keeps_its_numbers_up_to_date() -> None:
    # Regression: the dialog said "13 items in flight" while the header showed 6.
    run = GatedRun(ITEMS)
    app = gated_app(run)
    async with app.run_test(size=(120, 40)) as pilot:
        await mid_run(app, run)
        await pilot.press("q")
        await until(lambda: isinstance(app.screen, ConfirmScreen))
        dialog = app.screen
        asked = text_of(dialog.query_one("#question"))
        before = hosted(app).counts().in_flight
        assert f"{before} items in flight" in asked
        run.release("Save", 1)  # page-1 goes through: one fewer in flight
        await until(lambda: hosted(app).counts().in_flight == before - 1)
        dialog._ask_again()  # what its half-second timer does
        assert f"{before - 1} items in flight" in text_of(dialog.query_one("#question"))
        await pilot.press("n")


# Issue 20 (noticed trying it): the quit dialog asked "The run is still going: 0 items in
# flight. Stop it and quit?" once the run had ended under it.
async def test_the_quit_dialog_says_when_the_run_ended_under_it() -> None:
    run = GatedRun(ITEMS)
    app = gated_app(run)
    async with app.run_test(size=(120, 40)) as pilot:
        await mid_run(app, run)
        await pilot.press("q")
        await until(lambda: isinstance(app.screen, ConfirmScreen))
        dialog = app.screen
        await finish(app, run)
        await until(lambda: not hosted(app).run_active, steps=200_000)
        dialog._ask_again()  # what its half-second timer does
        assert text_of(dialog.query_one("#question")) == (
            "The run has ended: nothing is left to stop. Quit?"
        )
        await pilot.press("y")
        await until(lambda: not app.is_running)
    outcome = hosted(app).outcome()
    # Nothing was stopped: every item ended as the run left it (mid_run fails one).
    assert outcome.counts.unfinished == 0
    assert outcome.counts.completed + outcome.counts.failed == len(ITEMS)
