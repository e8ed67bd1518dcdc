"""The built-in displays: what they draw, that user data stays literal, and how they run."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from typing import Any

import pytest
from rich.console import Console

from antflow import (
    DashboardProtocol,
    DashboardSnapshot,
    ErrorSummary,
    FailedItem,
    Pipeline,
    PipelineResult,
    PipelineStats,
    Stage,
    StageStats,
    WorkerState,
    set_task_status,
)
from antflow.display import (
    BaseDashboard,
    CompactDashboard,
    DetailedDashboard,
    FullDashboard,
    ProgressDisplay,
    make_builtin_display,
)
from antflow.display._tally import Meter
from antflow.display._text import format_duration, safe_text
from antflow.display.progress import progress_line
from antflow.testing import FakeClock

RICH_DASHBOARDS = (CompactDashboard, DetailedDashboard, FullDashboard)


class TerminalBuffer(io.StringIO):
    """A StringIO that says it is a terminal."""

    def isatty(self) -> bool:
        return True


def stage(name: str, *, completed: int = 0, failed: int = 0, paused: bool = False) -> StageStats:
    return StageStats(
        stage_name=name,
        pending_items=4,
        in_progress_items=2,
        completed_items=completed,
        failed_items=failed,
        skipped_items=0,
        retrying_items=1,
        task_retries=69,
        workers=3,
        busy_workers=2,
        paused=paused,
    )


def worker(name: str, stage_name: str = "Fetch", **fields: Any) -> WorkerState:
    fields.setdefault("status", "idle")
    return WorkerState(worker_name=name, stage=stage_name, **fields)


def snapshot(
    *,
    processed: int = 6,
    failed: int = 1,
    total: int | None = 10,
    workers: tuple[WorkerState, ...] = (),
    stages: tuple[StageStats, ...] | None = None,
    timestamp: float = 1000.0,
    done_earlier: int = 0,
) -> DashboardSnapshot:
    if stages is None:
        stages = (stage("Fetch", completed=7, failed=1), stage("Store", completed=processed))
    return DashboardSnapshot(
        worker_states={w.worker_name: w for w in workers},
        worker_metrics={},
        pipeline_stats=PipelineStats(
            items_processed=processed,
            items_failed=failed,
            items_in_flight=3,
            queue_sizes={s.stage_name: s.pending_items for s in stages},
            stage_stats={s.stage_name: s for s in stages},
            items_done_earlier=done_earlier,
        ),
        timestamp=timestamp,
        total_items=total,
        running=True,
    )


def summary(*failures: FailedItem) -> ErrorSummary:
    by_type: dict[str, int] = {}
    by_stage: dict[str, int] = {}
    for item in failures:
        by_type[item.error_type] = by_type.get(item.error_type, 0) + 1
        by_stage[item.stage] = by_stage.get(item.stage, 0) + 1
    return ErrorSummary(len(failures), by_type, by_stage, list(failures))


def failure(item_id: Any, error: str, stage_name: str = "Fetch") -> FailedItem:
    return FailedItem(item_id, error, "ValueError", stage_name, attempts=1, timestamp=1.0)


def plain_console(width: int = 120) -> tuple[Console, io.StringIO]:
    buffer = io.StringIO()
    return Console(file=buffer, force_terminal=False, width=width), buffer


def show(dashboard: BaseDashboard, *snaps: DashboardSnapshot, errors: ErrorSummary) -> None:
    """Drive a dashboard the way the engine's monitor does."""
    dashboard.on_start(None, 10)  # type: ignore[arg-type]
    for snap in snaps:
        dashboard.on_update(snap)
    dashboard.on_finish([], errors)


# ---------------------------------------------------------------------- factory and imports


@pytest.mark.parametrize(
    ("kind", "expected"),
    [
        ("progress", ProgressDisplay),
        ("compact", CompactDashboard),
        ("detailed", DetailedDashboard),
        ("full", FullDashboard),
    ],
)
def test_make_builtin_display_returns_the_named_display(kind: Any, expected: type) -> None:
    display = make_builtin_display(kind)

    assert type(display) is expected
    assert isinstance(display, DashboardProtocol)


def test_make_builtin_display_rejects_an_unknown_kind() -> None:
    with pytest.raises(ValueError, match="sparkline"):
        make_builtin_display("sparkline")  # type: ignore[arg-type]


def test_the_progress_display_loads_without_rich() -> None:
    probe = (
        "import json, sys\n"
        "from antflow.display import make_builtin_display\n"
        "make_builtin_display('progress')\n"
        "print(json.dumps(sorted(sys.modules)))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, check=True
    )

    assert "rich" not in json.loads(done.stdout)


# ---------------------------------------------------------------------- Rich dashboards


@pytest.mark.parametrize("kind", RICH_DASHBOARDS)
def test_rich_dashboard_draws_progress_and_a_final_summary(kind: type[BaseDashboard]) -> None:
    console, buffer = plain_console()

    show(kind(console=console), snapshot(), errors=summary(failure(3, "nope")))  # type: ignore[call-arg]

    out = buffer.getvalue()
    assert "7/10" in out
    assert "70.0%" in out
    assert "in flight 3" in out
    assert "Finished: 6 completed, 1 failed" in out
    assert "1 failed item" in out


@pytest.mark.parametrize("kind", [DetailedDashboard, FullDashboard])
def test_stage_dashboards_show_each_stage_and_its_counts(kind: type[BaseDashboard]) -> None:
    console, buffer = plain_console()
    snap = snapshot(stages=(stage("Fetch", completed=17, failed=5), stage("Store", paused=True)))

    show(kind(console=console), snap, errors=summary())  # type: ignore[call-arg]

    lines = buffer.getvalue().splitlines()
    fetch = next(line for line in lines if "Fetch" in line).split()
    assert fetch[1:] == ["Fetch", "2/3", "4", "2", "17", "5", "0", "69", "│"]
    assert any("Store (paused)" in line for line in lines)
    assert any("busy workers 0/0" in line for line in lines)


# Issue 17.9: the column showed items waiting for a stage retry at that instant ("Retrying
# 0" while Fetch had retried 69 times); it counts attempts tried again, as the app does.
async def test_the_retries_column_counts_attempts_tried_again() -> None:
    console, buffer = plain_console()
    calls: dict[int, int] = {}

    async def flaky(x: int) -> int:
        calls[x] = calls.get(x, 0) + 1
        if calls[x] < 3:
            raise ConnectionError("reset")
        return x

    stage = Stage("Fetch", 2, [flaky], task_attempts=3, task_wait_seconds=0)
    await Pipeline([stage]).run(range(5), custom_dashboard=DetailedDashboard(console=console))

    fetch = next(line for line in buffer.getvalue().splitlines() if "Fetch" in line).split()
    header = next(line for line in buffer.getvalue().splitlines() if "Stage" in line).split()
    assert header[-2:] == ["Retries", "│"]
    assert fetch[-2:] == ["10", "│"], "two attempts tried again for each of 5 items"


def test_compact_dashboard_leaves_stages_out() -> None:
    console, buffer = plain_console()

    show(CompactDashboard(console=console), snapshot(), errors=summary())

    assert "Store" not in buffer.getvalue()


@pytest.mark.parametrize("kind", RICH_DASHBOARDS)
def test_an_unknown_total_shows_counts_without_a_bar(kind: type[BaseDashboard]) -> None:
    console, buffer = plain_console()
    dashboard = kind(console=console)  # type: ignore[call-arg]

    dashboard.on_start(None, 0)  # type: ignore[arg-type]
    dashboard.on_update(snapshot(total=None))
    dashboard.on_finish([], summary())

    out = buffer.getvalue()
    assert "7 done" in out
    assert "━" not in out
    assert "%" not in out


def test_rate_and_elapsed_come_from_the_dashboard_clock() -> None:
    clock = FakeClock()
    console, buffer = plain_console()
    dashboard = CompactDashboard(console=console, clock=clock)

    dashboard.on_start(None, 10)  # type: ignore[arg-type]
    clock.now = 2.0
    dashboard.on_update(snapshot(processed=9, failed=1))
    dashboard.on_finish([], summary())

    out = buffer.getvalue()
    assert "5.0 items/s" in out
    assert "in 2.0s" in out


# Issue 20.4: a resumed run's items done earlier count towards the bar, not the rate.
def test_items_done_earlier_fill_the_bar_but_not_the_rate() -> None:
    clock = FakeClock()
    meter = Meter(clock)
    meter.start()
    clock.now = 2.0
    tally = meter.read(snapshot(processed=4, failed=0, total=10, done_earlier=6))
    assert (tally.done, tally.fraction, tally.rate) == (10, 1.0, 2.0)
    assert progress_line(tally, 10) == (
        "[##########] 10/10 100.0%  2.0 items/s  0 failed  6 done earlier"
    )
    console, buffer = plain_console()
    show(
        CompactDashboard(console=console, clock=clock),
        snapshot(processed=4, failed=0, total=10, done_earlier=6),
        errors=summary(),
    )
    assert "done earlier 6" in buffer.getvalue()


def test_the_rate_counts_only_this_run() -> None:
    clock = FakeClock()
    meter = Meter(clock)

    meter.start(done_before=10)
    clock.now = 5.0
    tally = meter.read(snapshot(processed=19, failed=1, total=20))

    assert tally.rate == 2.0
    assert tally.fraction == 1.0


def test_full_dashboard_shows_workers_and_what_they_run() -> None:
    console, buffer = plain_console()
    busy = worker(
        "Fetch-W1",
        status="busy",
        current_item_id="page-7",
        current_task="downloading 3/10",
        processing_since=990.0,
    )

    show(
        FullDashboard(console=console),
        snapshot(failed=0, workers=(worker("Fetch-W0"), busy), stages=(stage("Fetch"),)),
        errors=summary(),
    )

    row = next(line for line in buffer.getvalue().splitlines() if "Fetch-W1" in line)
    assert "busy" in row
    assert "page-7" in row
    assert "downloading 3/10" in row
    assert "10.0s" in row
    assert "No errors" in buffer.getvalue()


def test_full_dashboard_lists_busy_workers_first_and_caps_the_rows() -> None:
    console, buffer = plain_console()
    idle = tuple(worker(f"Fetch-W{n}") for n in range(19))
    busy = worker("Fetch-W19", status="busy", current_item_id=1, processing_since=999.0)

    show(
        FullDashboard(console=console, max_workers=5),
        snapshot(workers=(*idle, busy)),
        errors=summary(),
    )

    out = buffer.getvalue()
    assert "Fetch-W19" in out
    assert "Fetch-W4" not in out
    assert "+15 more workers" in out


def test_full_dashboard_error_section_uses_the_final_summary() -> None:
    console, buffer = plain_console()
    errors = summary(*(failure(n, f"bad {n}", "Store") for n in range(25)))

    show(FullDashboard(console=console), snapshot(failed=25), errors=errors)

    out = buffer.getvalue()
    assert "by type: ValueError 25" in out
    assert "by stage: Store 25" in out
    assert "bad 24" in out
    assert "bad 4 " not in out  # only the last 20 failures are listed
    assert "+5 more failed" in out


# Issue 16 (AntFlow compat): FullDashboard(max_items_shown=N) and its attribute.
def test_full_dashboard_max_items_shown_caps_the_failed_items_listed() -> None:
    assert FullDashboard().max_items_shown == 20, "AntFlow's default"
    console, buffer = plain_console()
    errors = summary(*(failure(n, f"bad {n}", "Store") for n in range(8)))
    dashboard = FullDashboard(console=console, max_items_shown=3)

    show(dashboard, snapshot(failed=8), errors=errors)

    out = buffer.getvalue()
    assert dashboard.max_items_shown == 3
    assert [n for n in range(8) if f"bad {n}" in out] == [5, 6, 7]
    assert "+5 more failed" in out
    assert "by type: ValueError 8" in out, "the counts still count every failure"
    with pytest.raises(ValueError, match="max_items_shown must be 0 or more"):
        FullDashboard(max_items_shown=-1)


def test_markup_in_user_data_is_shown_literally() -> None:
    console, buffer = plain_console()
    busy = worker(
        "Fetch-W0",
        status="busy",
        current_item_id="[red]boom[/red]",
        current_task="[bold]loud[/bold]",
    )

    show(
        FullDashboard(console=console),
        snapshot(workers=(busy,)),
        errors=summary(failure("[blink]id[/blink]", "[red]boom[/red] :smile:")),
    )

    out = buffer.getvalue()
    assert "[red]boom[/red]" in out
    assert "[bold]loud[/bold]" in out
    assert "[blink]id[/blink]" in out
    assert ":smile:" in out


@pytest.mark.parametrize("terminal", [False, True])
def test_escape_sequences_in_user_data_never_reach_the_output(terminal: bool) -> None:
    buffer = io.StringIO()
    console = Console(file=buffer, force_terminal=terminal, width=120)
    busy = worker(
        "Fetch-W0",
        status="busy",
        current_item_id="id\x1b]0;pwned\x07",
        current_task="\x1b[2Jwiping\x1b[31m",
    )

    show(
        FullDashboard(console=console),
        snapshot(workers=(busy,)),
        errors=summary(failure(1, "line one\nline two\x1b[5;5H")),
    )

    out = buffer.getvalue()
    assert "wiping" in out
    assert "line one line two" in out
    assert "\x1b[2J" not in out
    assert "\x1b]0;" not in out
    assert "\x1b[5;5H" not in out
    if not terminal:
        assert "\x1b" not in out


def test_long_user_values_are_truncated() -> None:
    console, buffer = plain_console(width=200)
    busy = worker("Fetch-W0", status="busy", current_item_id="x" * 500)

    show(FullDashboard(console=console), snapshot(workers=(busy,)), errors=summary())

    out = buffer.getvalue()
    assert "x" * 39 + "…" in out
    assert "x" * 40 not in out


def test_a_terminal_console_redraws_in_place() -> None:
    buffer = io.StringIO()
    console = Console(file=buffer, force_terminal=True, width=100, height=50)

    show(DetailedDashboard(console=console), snapshot(), snapshot(processed=9), errors=summary())

    out = buffer.getvalue()
    assert "\x1b[2K" in out  # Live erases its previous frame
    assert out.count("Finished:") == 1
    assert "Fetch" in out


def test_a_dashboard_serves_a_second_run() -> None:
    console, buffer = plain_console()
    dashboard = CompactDashboard(console=console)

    show(dashboard, snapshot(processed=2, failed=0), errors=summary())
    show(dashboard, snapshot(processed=4, failed=0), errors=summary())

    out = buffer.getvalue()
    assert out.count("Finished:") == 2
    assert "Finished: 4 completed" in out


# ---------------------------------------------------------------------- ProgressDisplay


def test_progress_off_a_terminal_prints_a_bounded_number_of_lines() -> None:
    buffer = io.StringIO()
    display = ProgressDisplay(file=buffer)

    display.on_start(None, 1000)  # type: ignore[arg-type]
    for done in range(1, 1001):
        display.on_update(snapshot(processed=done, failed=0, total=1000))
    display.on_finish([], summary())

    lines = buffer.getvalue().splitlines()
    assert "\r" not in buffer.getvalue()
    assert 2 <= len(lines) <= 11
    assert "100/1000" in lines[0]
    assert "1000/1000" in lines[-1]
    assert "100.0%" in lines[-1]
    assert "0 failed" in lines[-1]


def test_progress_off_a_terminal_with_no_total_prints_every_interval() -> None:
    clock = FakeClock()
    buffer = io.StringIO()
    display = ProgressDisplay(file=buffer, quiet_interval=10.0, clock=clock)

    display.on_start(None, 0)  # type: ignore[arg-type]
    for second in range(1, 101):
        clock.now = float(second)
        display.on_update(snapshot(processed=second, failed=0, total=None))
    display.on_finish([], summary())

    lines = buffer.getvalue().splitlines()
    assert len(lines) == 11
    assert lines[0].startswith("10 done")
    assert lines[-1].startswith("100 done")
    assert "1.0 items/s" in lines[-1]


def test_progress_on_a_terminal_redraws_one_line() -> None:
    buffer = TerminalBuffer()
    display = ProgressDisplay(file=buffer)

    display.on_start(None, 10)  # type: ignore[arg-type]
    for done in range(1, 6):
        display.on_update(snapshot(processed=done, failed=1, total=10))
    drawn = buffer.getvalue()
    display.on_finish([], summary())

    assert drawn.count("\r") == 5
    assert "\n" not in drawn
    assert "[##################------------] 6/10  60.0%" in drawn
    assert "1 failed" in drawn
    assert buffer.getvalue().endswith("\n")
    assert buffer.getvalue().count("\n") == 1


def test_progress_without_any_update_still_prints_a_final_line() -> None:
    buffer = io.StringIO()
    display = ProgressDisplay(file=buffer)

    display.on_start(None, 3)  # type: ignore[arg-type]
    display.on_finish([], summary(failure(1, "x"), failure(2, "y")))

    assert buffer.getvalue().startswith("[####################----------] 2/3")


def test_progress_writes_to_the_current_stderr_by_default(
    capsys: pytest.CaptureFixture[str],
) -> None:
    display = ProgressDisplay()

    display.on_start(None, 1)  # type: ignore[arg-type]
    display.on_update(snapshot(processed=1, failed=0, total=1))
    display.on_finish([], summary())

    captured = capsys.readouterr()
    assert "1/1" in captured.err
    assert captured.out == ""


# ---------------------------------------------------------------------- safe text


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("[red]x[/red]", "[red]x[/red]"),
        ("\x1b[2Jclear", "clear"),
        ("\x1b]0;title\x07after", "after"),
        ("tab\tand\nnewline", "tab and newline"),
        ("bell\x07nul\x00", "bell?nul?"),
        ("\u202eevil", "?evil"),
        (42, "42"),
        ("y" * 41, "y" * 39 + "…"),
    ],
)
def test_safe_text(value: object, expected: str) -> None:
    assert safe_text(value) == expected


def test_safe_text_survives_a_str_that_raises() -> None:
    class Broken:
        def __str__(self) -> str:
            raise RuntimeError

    assert safe_text(Broken()) == "<Broken: str() raised RuntimeError>"


@pytest.mark.parametrize(
    ("seconds", "expected"), [(4.25, "4.2s"), (187, "3m07s"), (7500, "2h05m"), (-1, "0.0s")]
)
def test_format_duration(seconds: float, expected: str) -> None:
    assert format_duration(seconds) == expected


# ---------------------------------------------------------------------- BaseDashboard


def test_base_dashboard_requires_render() -> None:
    with pytest.raises(TypeError, match="render"):
        BaseDashboard()  # type: ignore[abstract]


def test_base_dashboard_forwards_updates_to_render() -> None:
    seen: list[DashboardSnapshot] = []

    class Recorder(BaseDashboard):
        def render(self, snapshot: DashboardSnapshot) -> None:
            seen.append(snapshot)

    recorder = Recorder()
    snap = snapshot()
    recorder.on_start(None, 12)  # type: ignore[arg-type]
    recorder.on_update(snap)
    recorder.on_finish([], summary())

    assert seen == [snap]
    assert recorder.total_items == 12
    assert isinstance(recorder, DashboardProtocol)


# ---------------------------------------------------------------------- through Pipeline.run


async def echo(value: Any) -> Any:
    set_task_status(f"echoing {value}")
    if value == 3:
        raise ValueError("[red]boom[/red]")
    return value


def echo_pipeline() -> Pipeline:
    return Pipeline([Stage("Echo", workers=2, tasks=[echo], task_attempts=1, task_wait_seconds=0)])


async def test_run_with_the_full_dashboard(capsys: pytest.CaptureFixture[str]) -> None:
    results = await echo_pipeline().run(range(6), dashboard="full")

    out = capsys.readouterr().out
    assert [r.value for r in results] == [0, 1, 2, 4, 5]
    assert "Echo" in out
    assert "[red]boom[/red]" in out
    assert "by type: ValueError 1" in out
    assert "Finished: 5 completed, 1 failed" in out


@pytest.mark.parametrize("kind", ["compact", "detailed"])
async def test_run_with_the_other_dashboards(kind: Any, capsys: pytest.CaptureFixture[str]) -> None:
    results = await echo_pipeline().run(range(6), dashboard=kind)

    assert len(results) == 5
    assert "Finished: 5 completed, 1 failed" in capsys.readouterr().out


async def test_run_with_progress(capsys: pytest.CaptureFixture[str]) -> None:
    results = await echo_pipeline().run(range(6), progress=True)

    err = capsys.readouterr().err
    assert len(results) == 5
    assert err.splitlines()[-1].startswith("[##############################] 6/6 100.0%")
    assert "1 failed" in err


async def test_a_dashboard_written_like_the_guide_works(
    capsys: pytest.CaptureFixture[str],
) -> None:
    # Verbatim from the Custom Dashboard Guide ("Subclassing BaseDashboard").
    class MyRichDashboard(BaseDashboard):
        def __init__(self):
            self.total = 0

        def on_start(self, pipeline, total_items):
            self.total = total_items
            print("Starting...")

        def render(self, snapshot):
            # This is called by on_update
            stats = snapshot.pipeline_stats
            pct = (stats.items_processed / self.total * 100) if self.total else 0
            print(f"\rProgress: {pct:.1f}%", end="")

        def on_finish(self, results, summary):
            print(f"\nDone: {len(results)} results")

    results = await echo_pipeline().run([0, 1, 2], custom_dashboard=MyRichDashboard())

    out = capsys.readouterr().out
    assert len(results) == 3
    started, progressed, finished = (out.find(s) for s in ("Starting...", "\rProgress:", "Done:"))
    assert 0 <= started < progressed < finished
    assert "Progress: 100.0%\nDone: 3 results" in out


def _results(count: int) -> list[PipelineResult]:
    return [PipelineResult(id=n, value=n, sequence_id=n) for n in range(count)]


def test_without_updates_the_final_summary_counts_the_results() -> None:
    console, buffer = plain_console()
    dashboard = DetailedDashboard(console=console)

    dashboard.on_start(None, 4)  # type: ignore[arg-type]
    dashboard.on_finish(_results(4), summary())

    assert "Finished: 4 completed, 0 failed" in buffer.getvalue()


# AntFlow compat: the Rich dashboards take AntFlow's positional arguments
# (`FullDashboard(2.0, 5)`: refresh rate, then items shown), the console by keyword only.
def test_dashboards_take_antflows_positional_arguments() -> None:
    assert CompactDashboard(2.0).refresh_rate == 2.0
    assert DetailedDashboard(0.5).refresh_rate == 0.5
    full = FullDashboard(2.0, 5)
    assert (full.refresh_rate, full.max_items_shown) == (2.0, 5)
