"""Unit tests of antflow_tui.header: state, progress, rate, ETA and the counts line."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest

from antflow.runstream.records import Snapshot, WorkerRow
from antflow_tui.accounting import RunCounts
from antflow_tui.header import (
    eta_seconds,
    header_lines,
    pipeline_mark,
    progress_bar,
    progress_line,
    run_state,
    switcher_line,
)
from antflow_tui.palette import DEFAULT, ROLES
from antflow_tui.source.base import ReplayPosition, RunStatus

STATES = [role.removeprefix("state-") for role in ROLES if role.startswith("state-")]

if TYPE_CHECKING:
    from rich.text import Text

NOW = 1_000_000.0


def counts(**changes: int | None) -> RunCounts:
    """30 of 100 done: 25 completed, 3 failed, 2 skipped; 5 in flight (2 running)."""
    values: dict[str, int | None] = {
        "completed": 25,
        "failed": 3,
        "skipped": 2,
        "in_flight": 5,
        "running": 2,
        "unfinished": 0,
        "abandoned": 0,
        "not_fed": 65,
        "total": 100,
    }
    values.update(changes)
    return RunCounts(**values)  # type: ignore[arg-type]


def snapshot(
    *, busy: bool = False, paused: bool = False, stopping: bool = False, running: bool = True
) -> Snapshot:
    worker = WorkerRow(
        status="busy" if busy else "paused" if paused else "idle",
        holding=busy,
        item=1 if busy else None,
        since=NOW if busy else None,
        paused=paused,
    )
    return Snapshot(
        pipeline=1,
        at=NOW,
        running=running,
        paused=paused,
        stopping=stopping,
        fed=0,
        processed=0,
        failed=0,
        in_flight=0,
        unfinished=0,
        workers=((worker,),),
    )


def status(
    *, ended: bool = False, crashed: bool = False, stopping: bool = False, stopped: bool = False
) -> RunStatus:
    return RunStatus(
        title="scrape.py",
        now=NOW,
        started_at=NOW - 60,
        ended_at=NOW if ended else None,
        crashed=crashed,
        stopping=stopping,
        stop_requested=stopped,
    )


def header(
    *,
    state: Any = "running",
    counted: RunCounts | None = None,
    rate: float | None = 2.0,
    width: int = 120,
    title: str = "scrape.py",
    pipeline: int = 1,
    pipelines: int = 1,
    held: bool = False,
    stuck: int = 0,
) -> tuple[Text, Text]:
    return header_lines(
        title=title,
        state=state,
        elapsed=3723.0,
        counts=counted or counts(),
        rate=rate,
        width=width,
        pipeline=pipeline,
        pipelines=pipelines,
        held=held,
        stuck=stuck,
    )


def span_styles(text: Text) -> list[str]:
    return [str(span.style) for span in text.spans]


# ---------------------------------------------------------------------- state


@pytest.mark.parametrize(
    ("snap", "ended", "crashed", "stopping", "state"),
    [
        (None, False, False, False, "starting"),
        (snapshot(busy=True), False, False, False, "running"),
        (snapshot(stopping=True), False, False, False, "stopping"),
        (None, False, False, True, "stopping"),
        (snapshot(), True, False, False, "finished"),
        (snapshot(stopping=True), True, False, False, "finished"),
        (snapshot(), True, True, False, "failed"),
        (None, False, True, False, "failed"),
    ],
)  # fmt: skip
def test_run_state(
    snap: Snapshot | None, ended: bool, crashed: bool, stopping: bool, state: str
) -> None:
    snapshots = [] if snap is None else [snap]
    run = status(ended=ended, crashed=crashed, stopping=stopping)
    assert run_state(run, snapshots) == state


def test_run_state_pausing_until_busy_workers_finish_then_paused() -> None:
    assert run_state(status(), [snapshot(busy=True, paused=True)]) == "pausing"
    assert run_state(status(), [snapshot(paused=True)]) == "paused"


def test_run_state_of_several_pipelines_follows_those_still_running() -> None:
    done = snapshot(running=False)
    assert run_state(status(), [done, snapshot(paused=True)]) == "paused"
    assert run_state(status(), [snapshot(paused=True), snapshot(busy=True)]) == "running"
    assert run_state(status(), [done, done]) == "running", "until the source says it ended"


def test_a_stopped_run_says_stopped() -> None:
    assert run_state(status(ended=True, stopped=True), [snapshot()]) == "stopped"


# ---------------------------------------------------------------------- eta and bar


def test_eta_is_the_items_left_over_the_rate() -> None:
    assert eta_seconds(counts(), 7.0) == pytest.approx(10.0)


@pytest.mark.parametrize("rate", [None, 0.0, -1.0])
def test_eta_is_unknown_without_a_positive_rate(rate: float | None) -> None:
    assert eta_seconds(counts(), rate) is None


def test_eta_is_unknown_without_a_total() -> None:
    assert eta_seconds(counts(total=None), 5.0) is None


def test_eta_is_zero_once_done_passes_the_total() -> None:
    assert eta_seconds(counts(completed=120, total=100), 5.0) == 0.0


@pytest.mark.parametrize(
    ("fraction", "width", "filled"),
    [(0.0, 10, 0), (0.5, 10, 5), (1.0, 10, 10), (0.333, 30, 10), (0.5, 7, 4)],
)
def test_progress_bar_is_exactly_width_cells(fraction: float, width: int, filled: int) -> None:
    bar = progress_bar(fraction, width)
    assert bar.cell_len == width
    assert bar.plain == "█" * filled + "░" * (width - filled)


def test_progress_bar_with_unknown_fraction_is_an_empty_dim_track() -> None:
    bar = progress_bar(None, 12)
    assert bar.plain == "·" * 12
    assert str(bar.style) == "dim"


@pytest.mark.parametrize("width", [0, -4])
def test_progress_bar_is_at_least_one_cell(width: int) -> None:
    assert progress_bar(0.5, width).cell_len == 1


# ---------------------------------------------------------------------- the top line


@pytest.mark.parametrize("state", STATES)
def test_header_shows_the_state_word_in_its_style(state: str) -> None:
    top, _ = header(state=state)
    shown = "■ cut off" if state == "cut-off" else f"● {state}"
    assert shown in top.plain
    start = top.plain.index(shown)
    styles = [s.style for s in top.spans if s.start == start]
    assert styles == [DEFAULT(f"state-{state}")]


def test_header_shows_title_elapsed_done_over_total_percent_and_rate() -> None:
    top, _ = header()
    assert "scrape.py" in top.plain
    assert "1:02:03" in top.plain
    assert " 30/100 30%" in top.plain
    assert "2.00/s" in top.plain


def test_header_shows_eta_while_running() -> None:
    top, _ = header(state="running", rate=2.0)
    assert "ETA 35.0s" in top.plain


@pytest.mark.parametrize("state", ["finished", "failed", "stopping", "starting", "stopped"])
def test_header_hides_eta_when_the_run_is_not_moving(state: str) -> None:
    top, _ = header(state=state)
    assert "ETA" not in top.plain


@pytest.mark.parametrize("state", ["paused", "pausing"])
def test_header_marks_the_eta_while_the_run_is_paused(state: str) -> None:
    """Regression (issue 10): the ETA went on counting down while nothing moved."""
    top, _ = header(state=state)
    assert "ETA – (paused)" in top.plain
    assert "35.0s" not in top.plain


def test_header_marks_the_eta_while_a_stage_or_worker_is_paused() -> None:
    top, _ = header(state="running", held=True)
    assert "ETA – (paused)" in top.plain


def test_header_marks_the_eta_while_an_item_is_stuck() -> None:
    top, _ = header(state="running", stuck=2)
    assert "ETA – (2 stuck)" in top.plain
    assert "35.0s" not in top.plain
    still, _ = header(state="running", stuck=2, rate=0.0)
    assert "ETA – (2 stuck)" in still.plain, "says why there is no ETA"


def test_header_shows_a_count_when_the_total_is_unknown() -> None:
    top, _ = header(counted=counts(completed=1234, failed=0, skipped=0, total=None))
    assert " 1,234 done" in top.plain
    assert "1,234/" not in top.plain
    assert "ETA" not in top.plain


@pytest.mark.parametrize("width", [80, 120, 200])
def test_header_top_line_fits_its_width_and_has_a_bar(width: int) -> None:
    top, _ = header(width=width)
    assert top.cell_len <= width
    assert "█" in top.plain or "░" in top.plain


def test_header_leaves_the_bar_out_when_too_narrow() -> None:
    top, _ = header(width=40)
    assert "█" not in top.plain
    assert "░" not in top.plain
    assert "30/100" in top.plain


def test_header_names_the_pipeline_shown_when_there_are_several() -> None:
    one, _ = header(pipelines=1)
    three, _ = header(pipeline=2, pipelines=3)
    assert "(pipeline" not in one.plain
    assert "(pipeline 2 of 3)" in three.plain


def test_header_shows_a_hostile_title_literally() -> None:
    top, _ = header(title="[red]x[/red]\x1b[2J.py")
    benign, _ = header(title="abcdefghijklmnopqr.py")
    assert "[red]x[/red]\\x1b[2J.py" in top.plain
    assert "\x1b" not in top.plain
    assert span_styles(top) == span_styles(benign)


# ---------------------------------------------------------------------- the counts line


# Issue 17.9: "in flight 88" (the queues' capacity plus the workers, for most of a run) said
# nothing: what runs and what waits are shown apart.
def test_counts_line_lists_every_count() -> None:
    _, line = header()
    assert line.plain.split() == [
        "completed", "25", "failed", "3", "skipped", "2", "running", "2", "queued", "3",
    ]  # fmt: skip


def test_counts_line_shows_unfinished_and_abandoned_only_when_some_are() -> None:
    _, none_left = header()
    _, some_left = header(counted=counts(unfinished=4, abandoned=2))
    assert "unfinished" not in none_left.plain
    assert "abandoned" not in none_left.plain
    assert "unfinished 4" in some_left.plain
    assert "abandoned 2" in some_left.plain


def test_counts_line_shows_not_fed_once_the_run_is_over() -> None:
    """Regression (issue 10): the items never fed were missing from the header while the
    summary counted them."""
    _, running = header(state="running")
    _, stopped = header(state="stopped")
    assert "not fed" not in running.plain, "while it runs, they are just still to come"
    assert "not fed 65" in stopped.plain


# ---------------------------------------------------------------------- replay and pipelines


def test_a_replay_says_so_and_shows_the_position_against_the_length() -> None:
    replay = ReplayPosition(start=NOW, end=NOW + 3723.0 * 2, playing=True, speed=2.0, complete=True)
    top, _ = header_lines(
        title="etl.py",
        state="running",
        elapsed=3723.0,
        counts=counts(),
        rate=2.0,
        width=160,
        replay=replay,
    )
    assert top.plain.startswith(" antflow  replay  etl.py")
    assert "1:02:03 of 2:04:06" in top.plain
    assert "incomplete" not in top.plain


def test_an_incomplete_recording_says_so() -> None:
    replay = ReplayPosition(start=NOW, end=NOW + 10, playing=False, speed=1.0, complete=False)
    top, _ = header_lines(
        title="etl.py", state="running", elapsed=5, counts=counts(), rate=None, width=160,
        replay=replay,
    )  # fmt: skip
    assert "incomplete" in top.plain
    assert "damaged" not in top.plain


# Issue 18.11: a recording with lines passed over says so.
def test_a_damaged_recording_says_so() -> None:
    replay = ReplayPosition(NOW, NOW + 10, playing=False, speed=1.0, complete=True, damaged=True)
    top, _ = header_lines(
        title="etl.py", state="running", elapsed=5, counts=counts(), rate=None, width=160,
        replay=replay,
    )  # fmt: skip
    assert "0:00:05 of 0:00:10 damaged" in top.plain
    assert "incomplete" not in top.plain


# Issue 17.9: a truncated recording replayed as "● running … ETA 12.4s" at its last moment.
def test_a_recording_cut_off_says_so_at_its_end_with_no_running_dot_or_eta() -> None:
    import dataclasses

    cut = ReplayPosition(start=NOW - 60, end=NOW, playing=False, speed=1.0, complete=False)
    at_end = dataclasses.replace(status(), replay=cut)
    before_end = dataclasses.replace(at_end, now=NOW - 5)
    assert run_state(at_end, [snapshot(busy=True)]) == "cut-off"
    assert run_state(before_end, [snapshot(busy=True)]) == "running", "it ran then"
    whole = dataclasses.replace(cut, complete=True)
    assert run_state(dataclasses.replace(at_end, replay=whole), [snapshot()]) == "running"
    top, _ = header_lines(
        title="etl.py", state="cut-off", elapsed=60, counts=counts(), rate=2.0, width=160,
        replay=cut,
    )  # fmt: skip
    assert "■ cut off  0:01:00 of 0:01:00 incomplete" in top.plain
    assert "●" not in top.plain
    assert "ETA" not in top.plain


def test_the_switcher_names_every_pipeline_with_its_counts_and_marks_the_shown_one() -> None:
    entries = [
        (1, "pipeline-1", pipeline_mark(snapshot(running=False)), counts(total=None)),
        (2, "report", pipeline_mark(snapshot(busy=True)), counts(failed=0)),
    ]
    line = switcher_line(entries, 2, key="s")
    assert line.plain.split("│")[0].strip() == "all"
    assert "1 pipeline-1 ✓ 30 done ✗ 3" in line.plain
    assert "2 report ● 27/100" in line.plain
    assert line.plain.rstrip().endswith("(s switches)")
    start = line.plain.index("2 report")
    assert any(span.start == start and "reverse" in str(span.style) for span in line.spans)
    everything = switcher_line(entries, 0)
    assert any(span.start == 1 and "reverse" in str(span.style) for span in everything.spans)


def test_the_switcher_shows_hostile_pipeline_names_literally() -> None:
    line = switcher_line([(1, "[b]x[/b]\x1b[2J", "running", counts())], 1)
    assert "[b]x[/b]\\x1b[2J" in line.plain
    assert "\x1b" not in line.plain


@pytest.mark.parametrize(
    ("snap", "mark"),
    [
        (None, "starting"),
        (snapshot(busy=True), "running"),
        (snapshot(paused=True), "paused"),
        (snapshot(stopping=True), "stopping"),
        (snapshot(running=False), "done"),
    ],
)
def test_pipeline_marks(snap: Snapshot | None, mark: str) -> None:
    assert pipeline_mark(snap) == mark


def test_a_top_line_without_room_for_the_rate_moves_it_down_and_never_wraps() -> None:
    """Regression: at 80 columns with two pipelines the rate wrapped onto a line of its
    own, pushing the pipeline switcher out of the header."""
    top, below = header(
        width=79,
        title="etl_main.py",
        pipeline=2,
        pipelines=2,
        state="finished",
        counted=counts(completed=1959, failed=44, skipped=0, in_flight=0, total=None),
        rate=163.0,
    )
    assert top.cell_len <= 79
    assert top.no_wrap
    assert "163/s" not in top.plain
    assert below.plain.rstrip().endswith("163/s")


# Issue 17.5: with no screen, the header's words as one plain line, every few seconds.
def test_the_progress_line_is_the_header_in_plain_words() -> None:
    line = progress_line(
        title="job.py", state="running", elapsed=65, counts=counts(), rate=2.0, eta=40.0
    )
    assert line == (
        "job.py  running  0:01:05  30/100 30%  2.00/s  ETA 40.0s  "
        "completed 25  failed 3  skipped 2  running 2  queued 3"
    )
    paused = progress_line(
        title="job.py", state="paused", elapsed=65, counts=counts(), rate=2.0, held=True
    )
    assert "ETA – (paused)" in paused
    over = progress_line(
        title="[b]x\x1b[2J", state="finished", elapsed=65, counts=counts(), rate=None
    )
    assert over.startswith("[b]x")
    assert "\x1b" not in over
    assert "ETA" not in over
    assert "not fed 65" in over
