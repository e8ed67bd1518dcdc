"""The runs screen (issue 20.3): the run history listed newest first, enter replays, r
resumes (the command built, not run), d deletes after asking, / filters, m and c
compare; and its snapshot, from a history built by the test on a fixed clock."""

from __future__ import annotations

import time
from dataclasses import replace
from typing import TYPE_CHECKING, Any

import pytest

from antflow.history import index as index_module
from antflow.history.run import new_run_id
from antflow_tui.runs.actions import Launch
from antflow_tui.runs.screen import ListState, Replay, RunList, RunsApp, RunsScreen
from antflow_tui.screens.confirm import ConfirmScreen
from tests.tui.apps import until
from tests.tui.kept import SCRAPE, kept_history

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

    from antflow.history import History, Run

SIZE = (140, 30)
PREFIX = ("/venv/bin/antflow-tui",)


@pytest.fixture
def utc(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Start times read the same wherever the tests run."""
    monkeypatch.setenv("TZ", "UTC")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


@pytest.fixture
def kept(
    tmp_path: Path, utc: None, monkeypatch: pytest.MonkeyPatch
) -> tuple[History, dict[str, Run]]:
    monkeypatch.chdir(tmp_path)
    return kept_history(tmp_path / ".antflow")


def runs_app(history: History, **options: Any) -> RunsApp:
    options.setdefault("prefix", PREFIX)
    return RunsApp(history, **options)


def screen_of(app: RunsApp) -> RunsScreen:
    assert isinstance(app.screen, RunsScreen)
    return app.screen


def listed_ids(app: RunsApp) -> list[str]:
    return [run.id for run in app.runs_screen.query_one(RunList).runs]


# Issue 20.3: every run, newest first, each status its own word; the detail line names
# the selected run.
async def test_the_runs_are_listed_newest_first(kept: tuple[History, dict[str, Run]]) -> None:
    history, runs = kept
    app = runs_app(history)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        order = ["running", "resumed", "crashed", "failed", "first"]
        assert listed_ids(app) == [runs[name].id for name in order]
        listing = app.runs_screen.query_one(RunList)
        rows = [listing.render_row(n, 136).plain for n in range(5)]
        assert [row.split()[3] for row in rows] == [
            "running",
            "stopped",
            "crashed",
            "failed",
            "finished",
        ]
        assert "2026-12-05 07:00" in rows[1]  # the run it resumed, by its start
        assert str(app.runs_screen.query_one("#runs-title").render()).count("5 runs") == 1
        detail = str(app.runs_screen.query_one("#runs-detail").render())
        assert runs["running"].id in detail
        assert "antflow-tui /work/jobs/scrape.py --headless" in detail


# Issue 20.3: enter replays the selected run: the app leaves with its recording.
async def test_enter_replays_the_selected_run(kept: tuple[History, dict[str, Run]]) -> None:
    history, runs = kept
    app = runs_app(history)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("down", "down", "enter")
    assert app.return_value == Replay(runs["crashed"].path, runs["crashed"].id)


# Issue 20.3: r resumes: after asking, the app leaves with `antflow-tui SCRIPT --resume RUN`
# (the command line execs it); the question warns when a later run resumed it already.
async def test_r_resumes_the_selected_run_after_asking(
    kept: tuple[History, dict[str, Run]], monkeypatch: pytest.MonkeyPatch
) -> None:
    history, runs = kept
    monkeypatch.setattr("antflow_tui.runs.actions.os.path.isfile", lambda path: path == SCRAPE)
    app = runs_app(history)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("down", "down", "r")
        await until(lambda: isinstance(app.screen, ConfirmScreen))
        question = str(app.screen.query_one("#question").render())
        assert f"Resume run {runs['crashed'].id} of scrape.py (crashed" in question
        assert f"Run {runs['resumed'].id} resumed it already" in question
        assert f"antflow-tui {SCRAPE} --resume {runs['crashed'].id}" in question
        await pilot.press("y")
    launch = app.return_value
    assert isinstance(launch, Launch)
    assert launch.argv == (*PREFIX, SCRAPE, "--resume", runs["crashed"].id)


# Issue 20.3: a run whose script is gone is not resumed: the screen says the command to
# run once it is back. A running run is not resumed either.
async def test_a_run_whose_script_is_gone_says_the_command(
    kept: tuple[History, dict[str, Run]], monkeypatch: pytest.MonkeyPatch
) -> None:
    history, runs = kept
    monkeypatch.setattr("antflow_tui.runs.actions.os.path.isfile", lambda path: False)
    app = runs_app(history)
    said: list[str] = []
    async with app.run_test(size=SIZE) as pilot:
        monkeypatch.setattr(screen_of(app), "_say", lambda words, error=False: said.append(words))
        await pilot.press("r")  # the running run
        await pilot.press("down", "r")
        await pilot.pause()
        assert not isinstance(app.screen, ConfirmScreen)
    assert "is still running" in said[0]
    assert said[1] == (
        f"The script of run {runs['resumed'].id} is gone ({SCRAPE}). Put it back, then run: "
        f"antflow-tui {SCRAPE} --resume {runs['resumed'].id}"
    )
    assert app.return_value is None


# Issue 20.3: d deletes the selected run once confirmed (its file and its row); n keeps it.
async def test_d_deletes_a_run_after_asking(kept: tuple[History, dict[str, Run]]) -> None:
    history, runs = kept
    failed = runs["failed"]
    assert failed.path.exists()
    app = runs_app(history)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("down", "down", "down", "d")
        await until(lambda: isinstance(app.screen, ConfirmScreen))
        question = str(app.screen.query_one("#question").render())
        assert f"Delete run {failed.id} (llm_batch.py, failed" in question
        await pilot.press("n")
        await until(lambda: isinstance(app.screen, RunsScreen))
        assert failed.id in listed_ids(app)
        await pilot.press("d")
        await until(lambda: isinstance(app.screen, ConfirmScreen))
        await pilot.press("y")
        await until(lambda: failed.id not in listed_ids(app))
        # The cursor stays in place, on the next older run.
        selected = app.runs_screen.query_one(RunList).selected
        assert selected is not None
        assert selected.id == runs["first"].id
    assert history.get(failed.id) is None
    assert not failed.path.exists()


# Issue 20.3: the running run cannot be deleted: one clear message, nothing deleted.
async def test_a_running_run_is_not_deleted(
    kept: tuple[History, dict[str, Run]], monkeypatch: pytest.MonkeyPatch
) -> None:
    history, runs = kept
    app = runs_app(history)
    said: list[str] = []
    async with app.run_test(size=SIZE) as pilot:
        monkeypatch.setattr(screen_of(app), "_say", lambda words, error=False: said.append(words))
        await pilot.press("d")
        await until(lambda: isinstance(app.screen, ConfirmScreen))
        await pilot.press("y")
        await until(lambda: bool(said))
    assert "is still running" in said[0]
    assert history.get(runs["running"].id) is not None


# Issue 20.3: / filters by script (status, id): the list and its title say what is shown.
async def test_the_filter_keeps_one_scripts_runs(kept: tuple[History, dict[str, Run]]) -> None:
    history, runs = kept
    app = runs_app(history)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("slash", *"llm", "enter")
        await pilot.pause()
        assert listed_ids(app) == [runs["failed"].id]
        assert "1 of 5 runs" in str(app.runs_screen.query_one("#runs-title").render())
        await pilot.press("escape")
        await pilot.pause()
        assert len(listed_ids(app)) == 5
        await pilot.press("slash", *"crashed", "enter")
        await pilot.pause()
        assert listed_ids(app) == [runs["crashed"].id]


# Issue 20.3 (leaving room for issue 22): m marks two runs, c compares them (the older
# first) once antflow-tui has a compare command; until then it says what it will run.
async def test_two_marked_runs_are_compared(kept: tuple[History, dict[str, Run]]) -> None:
    history, runs = kept
    app = runs_app(history, commands=("replay", "runs", "compare"))
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("down", "m", "down", "down", "m")
        await pilot.pause()
        assert "● " in app.runs_screen.query_one(RunList).render_row(1, 136).plain
        await pilot.press("c")
    launch = app.return_value
    assert isinstance(launch, Launch)
    assert launch.argv == (*PREFIX, "compare", runs["failed"].id, runs["resumed"].id)


async def test_compare_is_said_to_be_coming_without_the_command(
    kept: tuple[History, dict[str, Run]], monkeypatch: pytest.MonkeyPatch
) -> None:
    history, runs = kept
    app = runs_app(history, commands=("replay", "runs"))
    said: list[str] = []
    async with app.run_test(size=SIZE) as pilot:
        monkeypatch.setattr(screen_of(app), "_say", lambda words, error=False: said.append(words))
        await pilot.press("c")
        await pilot.press("m", "down", "c")
        await pilot.pause()
    assert said[0].startswith("Mark two runs with m")
    assert said[1] == (
        "Comparing two runs is coming soon (it will run: antflow-tui compare "
        f"{runs['resumed'].id} {runs['running'].id})."
    )
    assert app.return_value is None


# Issue 20.3: what the list keeps across a replay: the run selected, the filter, the marks.
async def test_the_list_opens_again_where_it_was(kept: tuple[History, dict[str, Run]]) -> None:
    history, runs = kept
    state = ListState(filter_text="scrape", selected=runs["crashed"].id, notice="cannot replay")
    app = runs_app(history, state=state)
    said: list[str] = []
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        said.extend(n.message for n in app._notifications)
        selected = app.runs_screen.query_one(RunList).selected
        assert selected is not None
        assert selected.id == runs["crashed"].id
        assert len(listed_ids(app)) == 4
    assert said == ["cannot replay"]
    assert state.notice is None


# Issue 20.3: the list's snapshot: every status in its theme colour, a resumed run's
# "resumed from", a marked run (80 columns: `test_runs_present`).
def test_runs_screen_snapshot(snap_compare: Any, kept: tuple[History, dict[str, Run]]) -> None:
    history, _runs = kept

    async def before(pilot: Any) -> None:
        await pilot.press("down", "m")
        await pilot.pause()

    assert snap_compare(runs_app(history), terminal_size=(140, 20), run_before=before)


# Issue 20.3: 1,000 runs list from one read of the index, and a frame draws only the rows
# on screen: no run's file is opened (benchmarks/runs_screen.py times it: 0.25 s for 1,000).
async def test_a_thousand_runs_draw_only_the_rows_on_screen(
    kept: tuple[History, dict[str, Run]], monkeypatch: pytest.MonkeyPatch
) -> None:
    history, runs = kept
    base = runs["first"]
    many = [
        replace(
            base,
            id=new_run_id(base.started_at - 60 * (n + 1)),
            started_at=base.started_at - 60 * (n + 1),
        )
        for n in range(1_000)
    ]
    with (
        index_module.connected(history.home / "index.db") as connection,
        index_module.writing(connection),
    ):
        index_module.put(connection, many)
    drawn: list[int] = []
    render_row = RunList.render_row

    def counted(self: RunList, index: int, width: int) -> Any:
        drawn.append(index)
        return render_row(self, index, width)

    def no_file(*_args: Any, **_kwargs: Any) -> Any:
        raise AssertionError("the list opened a run's file")

    monkeypatch.setattr(RunList, "render_row", counted)
    monkeypatch.setattr("antflow.runstream.fileformat.Recording.open", no_file)
    app = runs_app(history)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        assert len(listed_ids(app)) == 1_005
        visible = app.runs_screen.query_one(RunList).scrollable_content_region.height
        assert 0 < len(set(drawn)) <= visible
        drawn.clear()
        await pilot.press("end")
        await pilot.pause()
        assert max(drawn) == 1_004
        assert len(set(drawn)) <= 2 * visible
