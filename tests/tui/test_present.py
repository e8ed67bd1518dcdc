"""Unit tests of antflow_tui.present on hand-built snapshots, events and failures."""

from __future__ import annotations

from io import StringIO
from itertools import count
from typing import TYPE_CHECKING, Any, Final

import msgspec
import pytest
from rich.console import Console

from antflow.runstream.records import (
    ErrorRecord,
    Event,
    LogLine,
    PipelineStarted,
    Snapshot,
    StageConfig,
    StageRow,
    WorkerRow,
)
from antflow_tui.filters import parse_filter
from antflow_tui.formatting import (
    format_clock,
    format_count,
    format_duration,
    format_rate,
    plural,
    short_path,
)
from antflow_tui.present import (
    CELL_PADDING,
    OPTIONAL_COLUMNS,
    STAGE_COLUMNS,
    STAGE_WIDTHS,
    STUCK_WITHOUT_AVERAGE,
    WORKER_LEGEND,
    WORKER_MARKS,
    StageSparks,
    StageView,
    WorkerCell,
    bottleneck_stage,
    dropped_line,
    error_message,
    error_rows,
    error_type_counts,
    event_facts,
    event_line,
    failure_facts,
    fit_stage_columns,
    is_stuck,
    line_facts,
    natural_cell_width,
    note_line,
    paused_what,
    progress_text,
    short_worker_name,
    sort_stage_rows,
    stage_average,
    stage_facts,
    stage_rows,
    worker_cell_text,
    worker_cells,
    worker_facts,
    worker_legend,
)
from antflow_tui.story import timeline_rows

if TYPE_CHECKING:
    from collections.abc import Sequence

    from rich.text import Text

NOW = 1_000_000.0
"""The snapshots' Unix time; workers' `since` is set relative to it."""

HOSTILE_MARKUP = "[red]x[/red]"
HOSTILE_ESCAPE = "\x1b[2J"


# ---------------------------------------------------------------------- builders


def stage(
    name: str = "Fetch",
    *,
    pending: int = 0,
    running: int = 0,
    completed: int = 0,
    failed: int = 0,
    skipped: int = 0,
    retrying: int = 0,
    workers: int = 2,
    busy: int = 0,
    capacity: int = 20,
    paused: bool = False,
    task_seconds: float = 0.0,
    task_retries: int = 0,
) -> StageView:
    """A stage with `workers` workers named NAME-W0..., the first `busy` of them busy."""
    config = StageConfig(
        name=name,
        workers=tuple(f"{name}-W{n}" for n in range(workers)),
        tasks=("task",),
        retry="per_task",
        task_attempts=3,
        task_wait_seconds=0.0,
        stage_attempts=1,
        queue_capacity=capacity,
    )
    counts = StageRow(
        queued=pending,
        running=running,
        done=completed,
        failed=failed,
        skipped=skipped,
        retrying=retrying,
        task_retries=task_retries,
        task_seconds=task_seconds,
        paused=paused,
    )
    rows = tuple(
        WorkerRow(status="busy" if n < busy else "idle", holding=n < busy, item=n)
        for n in range(workers)
    )
    return StageView(1, config, counts, rows)


def worker(
    name: str = "Fetch-W0",
    stage_name: str = "Fetch",
    status: str = "idle",
    *,
    item: Any = None,
    seconds: float | None = None,
    task: str | None = None,
    paused: bool = False,
    waiting_for: str | None = None,
) -> tuple[str, str, WorkerRow]:
    """A worker of `stage_name`, as (name, stage, row)."""
    return (
        name,
        stage_name,
        WorkerRow(
            status=status,
            holding=item is not None,
            item=item,
            since=None if seconds is None else NOW - seconds,
            task_status=task,
            paused=paused,
            waiting_for=waiting_for,
        ),
    )


class Snap(list[StageView]):
    """A built snapshot: its stage views (what most presenters take), with the records
    they come from."""

    started: PipelineStarted
    record: Snapshot


def snapshot(
    stages: Sequence[StageView] = (),
    workers: Sequence[tuple[str, str, WorkerRow]] = (),
    *,
    paused: bool = False,
    stopping: bool = False,
) -> Snap:
    """One pipeline's snapshot; `workers` replace the stage's own (a stage named by a
    worker but not given is made)."""
    views = {view.name: view for view in stages}
    given: dict[str, list[tuple[str, WorkerRow]]] = {}
    for name, stage_name, row in workers:
        given.setdefault(stage_name, []).append((name, row))
        if stage_name not in views:
            views[stage_name] = stage(stage_name, workers=0)
    configs = []
    built = Snap()
    for name, view in views.items():
        config, rows = view.config, view.workers
        if name in given:
            names = tuple(worker_name for worker_name, _ in given[name])
            config = msgspec.structs.replace(config, workers=names)
            rows = tuple(row for _, row in given[name])
        configs.append(config)
        built.append(StageView(1, config, view.counts, rows))
    built.started = PipelineStarted(pipeline=1, at=NOW, stages=tuple(configs))
    built.record = Snapshot(
        pipeline=1,
        at=NOW,
        running=True,
        paused=paused,
        stopping=stopping,
        fed=0,
        processed=0,
        failed=0,
        in_flight=0,
        unfinished=0,
        stages=tuple(view.counts for view in built),
        workers=tuple(view.workers for view in built),
    )
    return built


_numbers = count(1)


def failure(
    item_id: Any = 1,
    *,
    stage_name: str = "Fetch",
    error_type: str = "ValueError",
    error: str = "bad value",
    attempts: int = 3,
    timestamp: float = NOW,
    pipeline: int = 1,
) -> ErrorRecord:
    return ErrorRecord(
        number=next(_numbers),
        pipeline=pipeline,
        at=timestamp,
        item=item_id,
        stage=stage_name,
        task="task",
        attempt=attempts,
        type=error_type,
        message=error,
        traceback="",
    )


Logged = tuple[Event, ErrorRecord | None]
"""An event and the error record it refers to (if any)."""


def status_event(
    status: Any = "completed",
    *,
    item_id: Any = 7,
    stage_name: str | None = "Fetch",
    worker_name: str | None = "Fetch-W0",
    at: float = NOW,
    attempt: int | None = None,
    attempts: int | None = None,
    error_type: str | None = None,
    error: str | None = None,
) -> Logged:
    record = None
    if error_type is not None or error is not None:
        record = failure(item_id, stage_name=stage_name or "", error_type=error_type or "",
                         error=error or "", timestamp=at)  # fmt: skip
    event = Event(
        pipeline=1,
        at=at,
        item=item_id,
        kind=status,
        stage=stage_name or "",
        worker=worker_name,
        attempt=attempt or attempts or 1,
        error=None if record is None else record.number,
    )
    return event, record


def task_event(
    event_type: Any = "start",
    *,
    item_id: Any = 7,
    stage_name: str = "Fetch",
    task_name: str = "fetch_page",
    worker_name: str = "Fetch-W0",
    attempt: int = 1,
    at: float = NOW,
    error: BaseException | None = None,
    duration: float | None = None,
) -> Logged:
    record = None
    if error is not None:
        record = failure(item_id, stage_name=stage_name, error_type=type(error).__name__,
                         error=str(error), timestamp=at, attempts=attempt)  # fmt: skip
    event = Event(
        pipeline=1,
        at=at,
        item=item_id,
        kind=event_type,
        stage=stage_name,
        worker=worker_name,
        task=task_name,
        attempt=attempt,
        duration=duration,
        error=None if record is None else record.number,
    )
    return event, record


def line_of(logged: Logged, started: float) -> Text:
    """The event log line of an event (with its error)."""
    event, error = logged
    return event_line(event, started, error)


def facts_of(logged: Logged) -> Any:
    event, error = logged
    return event_facts(event, error)


def rows_of(timeline: Sequence[Logged]) -> list[tuple[Text, ...]]:
    """The item screen's timeline rows of these events."""
    errors = {error.number: error for _, error in timeline if error is not None}
    return timeline_rows([event for event, _ in timeline], errors)


def note(text: str, *, is_error: bool = False) -> LogLine:
    return LogLine(at=NOW, text=text, stream="err" if is_error else "out")


def span_styles(text: Text) -> list[str]:
    """The styles of a Text's spans, in order (positions left out)."""
    return [str(span.style) for span in text.spans]


def rendered(text: Text) -> str:
    """What a terminal would receive for `text`, escape codes and all."""
    out = StringIO()
    Console(file=out, force_terminal=True, color_system="truecolor", width=400).print(text)
    return out.getvalue()


def column(cells: tuple[Text, ...], key: str) -> Text:
    keys = [k for k, _ in STAGE_COLUMNS]
    return cells[keys.index(key)]


# ---------------------------------------------------------------------- numbers


@pytest.mark.parametrize(
    ("value", "shown"),
    [(0, "0"), (7, "7"), (999, "999"), (1000, "1,000"), (1_234_567, "1,234,567"), (-5, "-5")],
)
def test_format_count_groups_thousands(value: int, shown: str) -> None:
    assert format_count(value) == shown


@pytest.mark.parametrize(
    ("count", "shown"), [(0, "0 items"), (1, "1 item"), (2, "2 items"), (1204, "1,204 items")]
)
def test_plural(count: int, shown: str) -> None:
    """Regression (issue 10): "1 item(s)", "after 1 attempt(s)"."""
    assert plural(count, "item") == shown
    assert plural(1, "entry", "entries") == "1 entry"
    assert plural(3, "entry", "entries") == "3 entries"


@pytest.mark.parametrize(
    ("rate", "shown"),
    [
        (None, "–"),
        (0.0, "0.00/s"),
        (0.5, "0.50/s"),
        (9.5, "9.50/s"),
        (12.34, "12.3/s"),
        (150.0, "150/s"),
        (12_345.6, "12,346/s"),
    ],
)
def test_format_rate_digits_follow_magnitude(rate: float | None, shown: str) -> None:
    assert format_rate(rate) == shown


@pytest.mark.parametrize(
    ("seconds", "shown"),
    [
        (None, "–"),
        (-3.0, "0ms"),
        (0.0, "0ms"),
        (0.85, "850ms"),
        (1.0, "1.0s"),
        (3.25, "3.2s"),
        (59.0, "59.0s"),
        (60.0, "1m00s"),
        (245.0, "4m05s"),
        (3599.0, "59m59s"),
        (3600.0, "1h00m"),
        (2 * 3600 + 3 * 60 + 59, "2h03m"),
        (100 * 3600, "100h00m"),
    ],
)
def test_format_duration_units(seconds: float | None, shown: str) -> None:
    assert format_duration(seconds) == shown


@pytest.mark.parametrize(
    ("seconds", "shown"),
    [(0.9994, "999ms"), (0.9996, "1.0s"), (59.94, "59.9s"), (59.96, "1m00s"), (60.4, "1m00s")],
)
def test_format_duration_rounding_moves_to_the_next_unit(seconds: float, shown: str) -> None:
    # Just under a unit boundary the value rounds up: never "1000ms", "60.0s" or "0m59s".
    assert format_duration(seconds) == shown


@pytest.mark.parametrize(
    ("seconds", "shown"),
    [
        (-5.0, "0:00:00"),
        (0.0, "0:00:00"),
        (0.9, "0:00:00"),
        (61.5, "0:01:01"),
        (3600.0, "1:00:00"),
        (3 * 3600 + 25 * 60 + 7, "3:25:07"),
        (30 * 3600, "30:00:00"),
    ],
)
def test_format_clock_is_hours_minutes_seconds(seconds: float, shown: str) -> None:
    assert format_clock(seconds) == shown


# ---------------------------------------------------------------------- stages


def test_stage_average_is_seconds_per_finished_item() -> None:
    assert stage_average(stage(completed=3, failed=1, task_seconds=10.0).counts) == 2.5
    assert stage_average(stage(task_seconds=0.0).counts) is None


def test_bottleneck_when_all_workers_busy_and_queue_full() -> None:
    stages = [stage("Fetch", workers=2, busy=2, pending=20, capacity=20), stage("Parse")]
    assert bottleneck_stage(stages, None) == "Fetch"


def test_bottleneck_when_all_workers_busy_and_queue_growing() -> None:
    stages = [stage("Parse", workers=2, busy=2, pending=6, capacity=20)]
    assert bottleneck_stage(stages, {"Parse": 4}) == "Parse"


def test_no_bottleneck_when_queue_is_shrinking_or_steady_and_not_full() -> None:
    stages = [stage("Parse", workers=2, busy=2, pending=6, capacity=20)]
    assert bottleneck_stage(stages, {"Parse": 6}) is None
    assert bottleneck_stage(stages, {"Parse": 9}) is None
    assert bottleneck_stage(stages, None) is None


def test_no_bottleneck_while_a_worker_is_idle() -> None:
    stages = [stage("Fetch", workers=3, busy=2, pending=20, capacity=20)]
    assert bottleneck_stage(stages, {"Fetch": 1}) is None


def test_no_bottleneck_with_an_empty_queue_or_no_workers() -> None:
    empty = [stage("Fetch", workers=2, busy=2, pending=0, capacity=0)]
    workerless = [stage("Fetch", workers=0, busy=0, pending=5, capacity=5)]
    assert bottleneck_stage(empty, {"Fetch": 0}) is None
    assert bottleneck_stage(workerless, {"Fetch": 1}) is None


def test_bottleneck_picks_the_fullest_queue_relative_to_capacity() -> None:
    stages = [
        stage("Fetch", workers=2, busy=2, pending=30, capacity=100),
        stage("Parse", workers=2, busy=2, pending=9, capacity=10),
        stage("Save", workers=2, busy=2, pending=20, capacity=40),
    ]
    assert bottleneck_stage(stages, {"Fetch": 1, "Parse": 1, "Save": 1}) == "Parse"


def test_stage_rows_cells_follow_the_columns() -> None:
    snap = snapshot(
        [
            stage(
                "Fetch",
                pending=4,
                running=2,
                completed=1200,
                failed=3,
                skipped=5,
                retrying=1,
                workers=4,
                busy=2,
                task_seconds=2406.0,
                task_retries=7,
            ),
            stage("Parse"),
        ]
    )
    rows = stage_rows(snap, {"Fetch": 12.5}, bottleneck=None)
    assert [row.key for row in rows] == ["Fetch", "Parse"]
    cells = rows[0].cells
    assert len(cells) == len(STAGE_COLUMNS)
    shown = {key: column(cells, key).plain for key, _ in STAGE_COLUMNS}
    assert shown == {
        "stage": "Fetch",
        "workers": "2/4",
        "queued": "4",
        "running": "2",
        "done": "1,200",
        "failed": "3",
        "skipped": "5",
        "retrying": "7",
        "rate": "12.5/s",
        "avg": "2.0s",
        # Without latency (no monitor asked for it) and without history yet.
        "p50": "–",
        "p95": "–",
        "max": "–",
        "queue_trend": " " * 11,
        "throughput": " " * 11,
        # A stage without limits or usage, in columns only runs with them show.
        "concurrency": "–",
        "rate_limited": "–",
        "timeouts": "–",
        "tokens": "–",
        "cost": "–",
    }
    assert rows[0].bottleneck is False
    assert rows[0].paused is False
    assert rows[0].optional == frozenset()


def test_stage_rows_without_rate_or_finished_items_show_dashes() -> None:
    (row,) = stage_rows(snapshot([stage("Fetch")]), {}, bottleneck=None)
    assert column(row.cells, "rate").plain == "–"
    assert column(row.cells, "avg").plain == "–"


def test_stage_rows_dim_zero_counts() -> None:
    (row,) = stage_rows(snapshot([stage("Fetch", failed=0)]), {}, bottleneck=None)
    assert str(column(row.cells, "failed").style) == "dim"
    (row,) = stage_rows(snapshot([stage("Fetch", failed=2)]), {}, bottleneck=None)
    assert str(column(row.cells, "failed").style) == "bold red"


def test_stage_rows_mark_the_bottleneck() -> None:
    snap = snapshot([stage("Fetch"), stage("Parse", pending=20, busy=2)])
    rows = stage_rows(snap, {}, bottleneck="Parse")
    assert [row.bottleneck for row in rows] == [False, True]
    assert rows[1].cells[0].plain == "Parse ◀"
    assert "◀" not in rows[0].cells[0].plain
    assert str(column(rows[1].cells, "queued").style) == "yellow"


def paused_mark() -> str:
    """The mark stage_rows appends to a paused stage's name (the glyph may change)."""
    (row,) = stage_rows(snapshot([stage("Fetch", paused=True)]), {}, None)
    return row.cells[0].plain.removeprefix("Fetch ")


def test_stage_rows_mark_a_paused_stage() -> None:
    rows = stage_rows(snapshot([stage("Fetch", paused=True), stage("Parse")]), {}, None)
    assert [row.paused for row in rows] == [True, False]
    mark = paused_mark()
    assert mark.strip()
    assert "◀" not in mark
    assert rows[0].cells[0].plain == f"Fetch {mark}"
    assert rows[1].cells[0].plain == "Parse"
    assert "yellow" in span_styles(rows[0].cells[0])


def test_stage_rows_paused_bottleneck_has_both_marks() -> None:
    (row,) = stage_rows(snapshot([stage("Fetch", paused=True)]), {}, bottleneck="Fetch")
    assert row.cells[0].plain == f"Fetch {paused_mark()} ◀"


def test_stage_rows_show_a_hostile_stage_name_literally() -> None:
    name = f"{HOSTILE_MARKUP}{HOSTILE_ESCAPE}"
    (row,) = stage_rows(snapshot([stage(name)]), {name: 1.0}, bottleneck=None)
    (benign,) = stage_rows(snapshot([stage("abcdefghijklmnopqrs")]), {}, bottleneck=None)
    assert row.cells[0].plain == "[red]x[/red]\\x1b[2J"
    assert span_styles(row.cells[0]) == span_styles(benign.cells[0])
    assert "\x1b[2J" not in rendered(row.cells[0])


# ---------------------------------------------------------------------- workers


def one_cell(
    state: tuple[str, str, WorkerRow], averages: dict[str, float | None] | None = None
) -> WorkerCell:
    (cell,) = worker_cells(snapshot(workers=[state]), NOW, averages or {})
    return cell


def test_worker_cells_idle() -> None:
    cell = one_cell(worker(status="idle"))
    assert cell.look == "idle"
    assert cell.item == ""
    assert cell.seconds is None
    assert cell.status_text == ""


def test_worker_cells_busy_shows_item_status_text_and_time() -> None:
    cell = one_cell(worker(status="busy", item="page-7", seconds=2.5, task="downloading"))
    assert cell == WorkerCell(
        name="Fetch-W0",
        stage="Fetch",
        look="busy",
        item="page-7",
        status_text="downloading",
        seconds=pytest.approx(2.5),  # type: ignore[arg-type]
    )


def test_worker_cells_busy_and_paused_is_pausing() -> None:
    assert one_cell(worker(status="busy", item=1, seconds=1, paused=True)).look == "pausing"


def test_worker_cells_paused() -> None:
    assert one_cell(worker(status="paused", paused=True)).look == "paused"
    assert one_cell(worker(status="idle", paused=True)).look == "paused"


def test_worker_cells_idle_holding_an_item_is_blocked() -> None:
    cell = one_cell(worker(status="idle", item=42))
    assert cell.look == "blocked"
    assert cell.item == "42"


@pytest.mark.parametrize(
    ("average", "seconds", "stuck"),
    [
        (0.1, 9.9, False),  # 10 x 0.1 = 1s, but never under 10s
        (0.1, 10.0, True),
        (2.0, 19.9, False),  # 10 x 2s = 20s
        (2.0, 20.0, True),
        (None, STUCK_WITHOUT_AVERAGE - 0.1, False),
        (None, STUCK_WITHOUT_AVERAGE, True),
    ],
)
def test_worker_cells_stuck_threshold(average: float | None, seconds: float, stuck: bool) -> None:
    cell = one_cell(worker(status="busy", item=1, seconds=seconds), {"Fetch": average})
    assert cell.look == ("stuck" if stuck else "busy")
    assert is_stuck(seconds, average) is stuck


def test_worker_cells_stuck_wins_over_pausing() -> None:
    state = worker(status="busy", item=1, seconds=600, paused=True)
    assert one_cell(state, {"Fetch": 1.0}).look == "stuck"


def test_worker_cells_without_an_average_for_the_stage_use_sixty_seconds() -> None:
    assert STUCK_WITHOUT_AVERAGE == 60.0
    state = worker(status="busy", item=1, seconds=59.0)
    assert one_cell(state, {"Other": 0.1}).look == "busy"


def test_worker_cells_waiting_for_a_concurrency_slot_look_waiting() -> None:
    """Regression (issue 10): a worker waiting for a task_concurrency_limits slot looked
    the same as one running."""
    cell = one_cell(worker(status="busy", item=3, seconds=120.0, task="old", waiting_for="call"))
    assert cell.look == "waiting", "waiting long is not being stuck: its task has not begun"
    assert cell.status_text == "waiting for a call slot"
    text = worker_cell_text(cell, 48)
    assert text.plain.startswith("◌ W0 3 2m00s waiting for a call slot")
    paused = one_cell(worker(status="busy", item=3, seconds=1.0, paused=True, waiting_for="c"))
    assert paused.look == "pausing"


def test_a_stuck_worker_says_stuck_in_words() -> None:
    """Regression (issue 10): a stuck worker was only a red '!'."""
    cell = one_cell(worker(status="busy", item=9, seconds=600.0, task="GET /9"), {"Fetch": 1.0})
    text = worker_cell_text(cell, 48)
    assert text.plain.startswith("! W0 9 10m00s stuck GET /9")
    assert natural_cell_width(cell) >= len("! W0 9 10m00s stuck GET /9")


def test_worker_legend_names_the_glyphs_shown_in_legend_order() -> None:
    legend = worker_legend(["idle", "stuck", "busy", "idle"])
    assert legend.plain == "▶ running  ! stuck  · idle"
    assert worker_legend([]).plain == ""


def test_the_legend_covers_every_look_with_its_glyph() -> None:
    looks = [look for look, _word, _meaning in WORKER_LEGEND]
    assert sorted(looks) == sorted(WORKER_MARKS)
    assert len({WORKER_MARKS[look] for look in looks}) == len(looks), "glyphs are distinct"


def test_worker_cells_keep_snapshot_order() -> None:
    states = [
        worker("Fetch-W0", "Fetch"),
        worker("Fetch-W1", "Fetch"),
        worker("Parse-W0", "Parse"),
    ]
    cells = worker_cells(snapshot(workers=states), NOW, {})
    assert [(c.name, c.stage) for c in cells] == [
        ("Fetch-W0", "Fetch"),
        ("Fetch-W1", "Fetch"),
        ("Parse-W0", "Parse"),
    ]


def test_worker_cells_show_hostile_item_and_status_text_literally() -> None:
    state = worker(
        status="busy", item=f"{HOSTILE_MARKUP}{HOSTILE_ESCAPE}", seconds=1.0, task=HOSTILE_ESCAPE
    )
    cell = one_cell(state)
    assert cell.item == "[red]x[/red]\\x1b[2J"
    assert cell.status_text == "\\x1b[2J"
    text = worker_cell_text(cell, 60)
    assert "[red]x[/red]\\x1b[2J" in text.plain
    assert "\x1b[2J" not in rendered(text)


def test_worker_cells_cut_long_status_text_and_item() -> None:
    cell = one_cell(worker(status="busy", item="i" * 500, seconds=1.0, task="t" * 500))
    assert len(cell.item) <= 24
    assert len(cell.status_text) <= 60
    assert cell.item.endswith("…")
    assert cell.status_text.endswith("…")


def test_short_worker_name_drops_the_stage_prefix() -> None:
    assert short_worker_name("Fetch-W3", "Fetch") == "W3"
    assert short_worker_name("custom", "Fetch") == "custom"


def test_natural_cell_width_fits_everything() -> None:
    cell = WorkerCell("Fetch-W3", "Fetch", "busy", "page-12", "downloading", 3.2)
    width = natural_cell_width(cell)
    text = worker_cell_text(cell, width)
    assert "…" not in text.plain
    assert "page-12" in text.plain
    assert "downloading" in text.plain
    assert width >= len("▶ W3 page-12 3.2s downloading")


def test_natural_cell_width_of_an_idle_worker_is_mark_and_name() -> None:
    assert natural_cell_width(WorkerCell("Fetch-W3", "Fetch", "idle", "", "", None)) == 4


def test_natural_cell_width_fits_wide_characters() -> None:
    # Item ids and status texts are user data: CJK characters take two cells each.
    cell = WorkerCell("Fetch-W0", "Fetch", "busy", "日本語のページ", "処理中です", 1.0)
    text = worker_cell_text(cell, natural_cell_width(cell))
    assert "…" not in text.plain


@pytest.mark.parametrize("width", [1, 3, 8, 17, 40, 90])
@pytest.mark.parametrize(
    "cell",
    [
        WorkerCell("Fetch-W0", "Fetch", "idle", "", "", None),
        WorkerCell("Fetch-W0", "Fetch", "busy", "page-12", "downloading", 3.2),
        WorkerCell("Fetch-W0", "Fetch", "stuck", "日本語のページ", "処理中", 700.0),
    ],
)
def test_worker_cell_text_is_exactly_width_cells(cell: WorkerCell, width: int) -> None:
    assert worker_cell_text(cell, width).cell_len == width
    assert worker_cell_text(cell, width, selected=True).cell_len == width


def test_worker_cell_text_content_and_marks() -> None:
    busy = worker_cell_text(WorkerCell("Fetch-W0", "Fetch", "busy", "p1", "dl", 3.2), 30)
    assert busy.plain.rstrip() == "▶ W0 p1 3.2s dl"
    idle = worker_cell_text(WorkerCell("Fetch-W1", "Fetch", "idle", "", "", None), 10)
    assert idle.plain == "· W1      "
    marks = {
        look: worker_cell_text(WorkerCell("Fetch-W0", "Fetch", look, "", "", None), 6).plain[0]
        for look in ("idle", "busy", "pausing", "paused", "stuck", "blocked")
    }
    assert len(set(marks.values())) == 6


def test_worker_cell_text_ellipsis_when_too_narrow() -> None:
    text = worker_cell_text(WorkerCell("Fetch-W0", "Fetch", "busy", "page-12", "dl", 3.2), 8)
    assert text.plain.endswith("…")


def test_worker_cell_text_selected_is_reverse_over_the_whole_cell() -> None:
    cell = WorkerCell("Fetch-W0", "Fetch", "busy", "p1", "dl", 3.2)
    plain = worker_cell_text(cell, 20)
    chosen = worker_cell_text(cell, 20, selected=True)
    assert plain.plain == chosen.plain
    assert not any("reverse" in str(span.style) for span in plain.spans)
    reverse = [s for s in chosen.spans if "reverse" in str(s.style)]
    assert [(s.start, s.end) for s in reverse] == [(0, len(chosen.plain))]


def test_worker_cell_text_colours_follow_the_look() -> None:
    styles = {
        look: str(
            worker_cell_text(WorkerCell("Fetch-W0", "Fetch", look, "p", "", 1.0), 20).spans[0].style
        )
        for look in ("idle", "busy", "paused", "stuck")
    }
    assert len(set(styles.values())) == 4


# ---------------------------------------------------------------------- errors


def test_error_rows_newest_first_with_every_column() -> None:
    failures = [
        failure(1, error="first\nsecond line", attempts=3, timestamp=NOW),
        failure(
            "page-2", stage_name="Parse", error_type="KeyError", error="'x'", attempts=1,
            timestamp=NOW + 1,
        ),
    ]  # fmt: skip
    rows = error_rows(failures)
    assert [row.item_id for row in rows] == ["page-2", 1]
    assert [cell.plain for cell in rows[0].cells] == ["page-2", "Parse", "KeyError", "'x'", "1"]
    assert [cell.plain for cell in rows[1].cells] == ["1", "Fetch", "ValueError", "first", "3"]


def test_error_rows_name_the_pipeline_when_there_are_several() -> None:
    """Regression (issue 10): with several pipelines, nothing said which one failed it."""
    failures = [failure("a", pipeline=1), failure("a", pipeline=2)]
    single = error_rows(failures[:1])
    assert len(single[0].cells) == 5
    rows = error_rows(failures, pipelines=2)
    assert [[cell.plain for cell in row.cells][:2] for row in rows] == [["2", "a"], ["1", "a"]]
    assert "pipeline-2" in failure_facts(failures[1]).text


def test_error_rows_say_when_the_message_is_empty() -> None:
    (row,) = error_rows([failure(error="")])
    assert row.cells[3].plain == "(no message)"
    assert error_message("  \n \n", 50) == "(no message)"


def test_error_rows_show_hostile_data_literally() -> None:
    hostile = failure(
        f"{HOSTILE_MARKUP}{HOSTILE_ESCAPE}",
        stage_name=f"S{HOSTILE_ESCAPE}",
        error_type=f"E{HOSTILE_MARKUP}",
        error=f"{HOSTILE_MARKUP} {HOSTILE_ESCAPE} boom",
    )
    benign = failure("abcdefghijklmnopqrs", stage_name="abcdefgh", error_type="E", error="boom")
    (row,) = error_rows([hostile])
    (plain,) = error_rows([benign])
    assert [cell.plain for cell in row.cells[:4]] == [
        "[red]x[/red]\\x1b[2J",
        "S\\x1b[2J",
        "E[red]x[/red]",
        "[red]x[/red] \\x1b[2J boom",
    ]
    for cell, reference in zip(row.cells, plain.cells, strict=True):
        assert span_styles(cell) == span_styles(reference)
        assert str(cell.style) == str(reference.style)
        assert "\x1b[2J" not in rendered(cell)


def test_error_rows_cut_a_huge_message() -> None:
    (row,) = error_rows([failure(error="x" * 5_000_000)])
    assert len(row.cells[3].plain) <= 2_000
    assert row.cells[3].plain.endswith("…")


def test_error_type_counts_most_frequent_first_then_by_name() -> None:
    text = error_type_counts({"KeyError": 3, "ValueError": 12, "AError": 3, "TimeoutError": 1})
    assert text.plain == "ValueError 12 · AError 3 · KeyError 3 · TimeoutError 1"


def test_error_type_counts_empty_and_large() -> None:
    assert error_type_counts({}).plain == ""
    assert error_type_counts({"ValueError": 12_345}).plain == "ValueError 12,345"


# ---------------------------------------------------------------------- events


STARTED = NOW - 65.0


@pytest.mark.parametrize(
    ("status", "shown"),
    [
        ("queued", "0:01:05 7 Fetch queued"),
        ("in_progress", "0:01:05 7 Fetch in_progress Fetch-W0"),
        ("completed", "0:01:05 7 Fetch completed Fetch-W0"),
        ("skipped", "0:01:05 7 Fetch skipped Fetch-W0"),
    ],
)
def test_event_line_for_plain_statuses(status: str, shown: str) -> None:
    worker_name = None if status == "queued" else "Fetch-W0"
    event = status_event(status, worker_name=worker_name)
    assert line_of(event, STARTED).plain == shown


def test_event_line_for_a_failure_shows_type_and_first_line() -> None:
    event = status_event(
        "failed", error_type="TimeoutError", error="timed out\nafter 3s", attempts=3
    )
    assert line_of(event, STARTED).plain == (
        "0:01:05 7 Fetch failed Fetch-W0 TimeoutError: timed out"
    )


def test_event_line_for_a_retry_shows_the_attempt_and_error() -> None:
    event = status_event("retrying", attempt=2, error_type="OSError", error="reset")
    assert line_of(event, STARTED).plain == (
        "0:01:05 7 Fetch retrying Fetch-W0 → attempt 2 OSError: reset"
    )


def test_event_line_colours_by_status() -> None:
    failed = line_of(status_event("failed", error_type="E", error="m"), STARTED)
    done = line_of(status_event("completed"), STARTED)
    assert "bold red" in span_styles(failed)
    assert "green" in span_styles(done)


@pytest.mark.parametrize(
    ("event", "shown"),
    [
        (task_event("start"), "0:01:05 7 Fetch task start fetch_page#1 Fetch-W0"),
        (
            task_event("complete", attempt=2, duration=0.25),
            "0:01:05 7 Fetch task complete fetch_page#2 Fetch-W0 250ms",
        ),
        (
            task_event("retry", duration=1.5, error=ConnectionError("refused\nmore")),
            "0:01:05 7 Fetch task retry fetch_page#1 Fetch-W0 1.5s ConnectionError: refused",
        ),
        (
            task_event("fail", attempt=3, duration=2.0, error=ValueError("")),
            "0:01:05 7 Fetch task fail fetch_page#3 Fetch-W0 2.0s ValueError: (no message)",
        ),
    ],
)
def test_event_line_for_task_events(event: Logged, shown: str) -> None:
    assert line_of(event, STARTED).plain == shown


def test_event_line_cuts_a_long_item_id() -> None:
    line = line_of(status_event("completed", item_id="x" * 1000), STARTED)
    assert "x" * 19 + "…" in line.plain
    assert "x" * 21 not in line.plain


HOSTILE_VALUES: Final = [(HOSTILE_MARKUP, "[red]x[/red]"), (HOSTILE_ESCAPE, "\\x1b[2J")]
"""Hostile user strings and how they must read in the line's plain text."""


@pytest.mark.parametrize(("value", "shown"), HOSTILE_VALUES)
@pytest.mark.parametrize("field", ["item", "stage", "worker", "error", "error_type"])
def test_status_event_line_shows_hostile_strings_literally(
    field: str, value: str, shown: str
) -> None:
    def make(value: str) -> Logged:
        parts: dict[str, str] = {
            "item": "item",
            "stage": "Stage",
            "worker": "W",
            "error": "boom",
            "error_type": "E",
        }
        parts[field] = value
        return status_event(
            "failed",
            item_id=parts["item"],
            stage_name=parts["stage"],
            worker_name=parts["worker"],
            error=parts["error"],
            error_type=parts["error_type"],
        )

    hostile = line_of(make(value), STARTED)
    benign = line_of(make("abcdefghijkl"), STARTED)
    assert shown in hostile.plain
    assert "\x1b" not in hostile.plain
    assert span_styles(hostile) == span_styles(benign)
    assert "\x1b[2J" not in rendered(hostile)
    assert shown in rendered(hostile)


@pytest.mark.parametrize(("value", "shown"), HOSTILE_VALUES)
@pytest.mark.parametrize("field", ["item", "stage", "worker", "task", "error"])
def test_task_event_line_shows_hostile_strings_literally(
    field: str, value: str, shown: str
) -> None:
    def make(value: str) -> Logged:
        parts = {"item": "item", "stage": "Stage", "worker": "W", "task": "t", "error": "boom"}
        parts[field] = value
        return task_event(
            "retry",
            item_id=parts["item"],
            stage_name=parts["stage"],
            worker_name=parts["worker"],
            task_name=parts["task"],
            error=RuntimeError(parts["error"]),
            duration=1.0,
        )

    hostile = line_of(make(value), STARTED)
    benign = line_of(make("abcdefghijkl"), STARTED)
    assert shown in hostile.plain
    assert "\x1b" not in hostile.plain
    assert span_styles(hostile) == span_styles(benign)
    assert "\x1b[2J" not in rendered(hostile)
    assert shown in rendered(hostile)


def test_task_event_line_neutralises_an_exception_class_name() -> None:
    # A class name is user data too: type() accepts any string.
    hostile_type = type(f"Bad{HOSTILE_ESCAPE}", (Exception,), {})
    line = line_of(task_event("fail", error=hostile_type("boom")), STARTED)
    assert "\x1b" not in line.plain
    assert "\x1b[2J" not in rendered(line)


def test_event_line_with_a_huge_error_message_stays_short() -> None:
    event = task_event("fail", error=RuntimeError("y" * 5_000_000))
    assert len(line_of(event, STARTED).plain) < 300


def test_note_line_shows_printed_markup_literally_and_never_a_raw_escape() -> None:
    line = note_line(note(f"hello {HOSTILE_MARKUP}\n{HOSTILE_ESCAPE}"), STARTED)
    # A clear-screen escape a script prints is dropped, as a terminal would not show it.
    assert line.plain == "0:01:05 │ hello [red]x[/red]⏎"
    assert "\x1b[2J" not in rendered(line)
    colours = note_line(note("\x1b[32mok\x1b[0m done \x1b]0;title\x07"), STARTED)
    assert colours.plain == "0:01:05 │ ok done "
    assert "\x1b[32mok" in rendered(colours), "a script's colours show"
    assert "\x1b]0;" not in rendered(colours)
    error = note_line(note("oops", is_error=True), STARTED)
    assert "red" in span_styles(error)
    assert "red" not in span_styles(note_line(note("fine"), STARTED))


def test_dropped_line_counts_and_rate() -> None:
    assert dropped_line(48_211, 61_000.0).plain == "… 48,211 events not shown (61,000/s)"
    assert dropped_line(5, None).plain == "… 5 events not shown"


# ---------------------------------------------------------------------- item timeline


def test_timeline_rows_relative_times_and_details() -> None:
    error = TimeoutError("slow\nreally")
    timeline: list[Logged] = [
        status_event("queued", worker_name=None, at=NOW),
        status_event("in_progress", at=NOW + 0.5, attempt=1),
        task_event("start", at=NOW + 0.5),
        task_event("retry", at=NOW + 2.0, duration=1.5, error=error),
        status_event("retrying", at=NOW + 2.0, attempt=2, error_type="TimeoutError", error="slow"),
        task_event("complete", attempt=2, at=NOW + 65.0, duration=3.0),
        status_event("failed", at=NOW + 65.0, attempts=3, error_type="E", error="bad"),
    ]
    rows = rows_of(timeline)
    assert len(rows) == len(timeline)
    assert all(len(row) == 5 for row in rows)
    plain = [[cell.plain for cell in row] for row in rows]
    assert [row[0] for row in plain] == ["+0ms", "+500ms", "+500ms", "+2.0s", "+2.0s",
                                         "+1m05s", "+1m05s"]  # fmt: skip
    assert plain[0][1:4] == ["Fetch", "queued", ""]
    assert plain[1][2:] == ["in_progress", "Fetch-W0", "attempt 1"]
    assert plain[2][2:] == ["  task start", "Fetch-W0", "fetch_page attempt 1"]
    assert plain[3][4] == "fetch_page attempt 1  1.5s  TimeoutError: slow"
    assert plain[4][4] == "attempt 2  TimeoutError: slow"
    assert plain[5][4] == "fetch_page attempt 2  3.0s"
    assert plain[6][4] == "after 3 attempts  E: bad"


def test_timeline_rows_empty() -> None:
    assert rows_of([]) == []


def test_timeline_rows_show_hostile_strings_literally() -> None:
    hostile = f"{HOSTILE_MARKUP}{HOSTILE_ESCAPE}"
    rows = rows_of(
        [
            status_event(
                "failed", stage_name=hostile, worker_name=hostile, attempts=1,
                error_type=hostile, error=hostile,
            ),
            task_event("fail", task_name=hostile, error=RuntimeError(hostile)),
        ]
    )  # fmt: skip
    for row in rows:
        for cell in row:
            assert "\x1b" not in cell.plain
            assert "\x1b[2J" not in rendered(cell)
    assert rows[0][1].plain == "[red]x[/red]\\x1b[2J"
    assert rows[0][3].plain == "[red]x[/red]\\x1b[2J"
    assert "[red]x[/red]\\x1b[2J" in rows[1][4].plain


def test_timeline_rows_neutralise_an_exception_class_name() -> None:
    hostile_type = type(f"Bad{HOSTILE_ESCAPE}", (Exception,), {})
    (row,) = rows_of([task_event("fail", error=hostile_type("boom"))])
    assert "\x1b" not in row[4].plain


# ---------------------------------------------------------------------- paused_what


def test_paused_what_nothing() -> None:
    assert paused_what(None, None) == ""
    assert (
        paused_what(
            snapshot([stage("Fetch")], [worker()]).started,
            snapshot([stage("Fetch")], [worker()]).record,
        )
        == ""
    )


def test_paused_what_the_whole_run() -> None:
    snap = snapshot([stage("Fetch", paused=True)], [worker(paused=True)], paused=True)
    assert paused_what(snap.started, snap.record) == "the whole run"


def test_paused_what_stages_and_workers_not_in_a_paused_stage() -> None:
    snap = snapshot(
        [stage("Fetch", paused=True), stage("Parse")],
        [
            worker("Fetch-W0", "Fetch", "paused", paused=True),
            worker("Parse-W0", "Parse", "paused", paused=True),
            worker("Parse-W1", "Parse"),
        ],
    )
    assert paused_what(snap.started, snap.record) == "stage Fetch, worker Parse-W0"


def test_paused_what_caps_the_list() -> None:
    workers = [worker(f"Fetch-W{i}", "Fetch", "paused", paused=True) for i in range(7)]
    snap = snapshot([stage("Fetch")], workers)
    assert paused_what(snap.started, snap.record) == (
        "worker Fetch-W0, worker Fetch-W1, worker Fetch-W2, worker Fetch-W3, and 3 more"
    )


def test_paused_what_neutralises_names() -> None:
    snap = snapshot([stage(f"S{HOSTILE_ESCAPE}", paused=True)])
    assert paused_what(snap.started, snap.record) == "stage S\\x1b[2J"


# ---------------------------------------------------------------------- filter facts


def test_event_facts_answer_qualifiers() -> None:
    event = status_event(
        "failed", item_id=42, stage_name="Fetch", error_type="TimeoutError", error="slow"
    )
    facts = facts_of(event)
    assert (facts.status, facts.stage, facts.item, facts.worker) == (
        "failed", "Fetch", "42", "Fetch-W0",
    )  # fmt: skip
    assert "TimeoutError" in facts.error
    assert parse_filter("status:failed stage:fetch item:42 error:timeout").matches(facts)
    assert not parse_filter("item:4").matches(facts)
    assert not parse_filter("status:completed").matches(facts)


def test_event_facts_for_task_events() -> None:
    facts = facts_of(task_event("retry", error=OSError("reset"), task_name="get"))
    assert facts.status == "retry"
    assert facts.error == "OSError reset"
    assert parse_filter("get error:oserror").matches(facts)


def test_failure_facts() -> None:
    facts = failure_facts(failure("p1", stage_name="Parse", error_type="KeyError", error="x"))
    assert (facts.status, facts.stage, facts.item, facts.error) == (
        "failed", "Parse", "p1", "KeyError x",
    )  # fmt: skip
    assert parse_filter("keyerror item:p1").matches(facts)


def test_worker_facts() -> None:
    cell = WorkerCell("Fetch-W1", "Fetch", "stuck", "page-9", "waiting", 100.0)
    facts = worker_facts(cell)
    assert (facts.status, facts.stage, facts.item, facts.worker) == (
        "stuck", "Fetch", "page-9", "Fetch-W1",
    )  # fmt: skip
    assert parse_filter("status:stuck waiting").matches(facts)


def test_stage_facts() -> None:
    rows = stage_rows(snapshot([stage("Fetch", paused=True), stage("Parse")]), {}, "Fetch")
    facts = [stage_facts(row) for row in rows]
    assert facts[0].status == "paused bottleneck"
    assert facts[1].status == ""
    assert [parse_filter("status:bottleneck").matches(f) for f in facts] == [True, False]


# ---------------------------------------------------------------------- paths

CWD = "/home/ana/project"
STDLIB = "/usr/lib/python3.11"


@pytest.mark.parametrize(
    ("filename", "shown"),
    [
        ("/home/ana/project/scrape.py", "scrape.py"),
        ("/home/ana/project/pkg/tasks.py", "pkg/tasks.py"),
        (
            "/opt/venv/lib/python3.11/site-packages/httpx/_client.py",
            "site-packages/httpx/_client.py",
        ),
        ("/usr/lib/python3.11/asyncio/tasks.py", "<stdlib>/asyncio/tasks.py"),
        ("/home/ana/project-old/x.py", "/home/ana/project-old/x.py"),
        ("/elsewhere/x.py", "/elsewhere/x.py"),
    ],
)
def test_short_path(filename: str, shown: str) -> None:
    assert short_path(filename, CWD, STDLIB) == shown


def test_short_path_with_no_cwd_or_stdlib_keeps_the_path() -> None:
    assert short_path("/a/b.py", "", "") == "/a/b.py"


# ---------------------------------------------------------------------- issue 14


def test_stage_rows_show_latency_and_sparklines() -> None:
    view = stage("Fetch", completed=10, task_seconds=20.0)
    counts = msgspec.structs.replace(view.counts, p50=0.5, p95=7.9, max_seconds=8.25)
    view = StageView(view.pipeline, view.config, counts, view.workers)
    sparks = {"Fetch": StageSparks(throughput=[1.0, 2.0, 4.0], queue=[0.0, 3.0])}
    (row,) = stage_rows([view], {"Fetch": 2.0}, None, sparks=sparks)
    assert column(row.cells, "avg").plain == "2.0s"
    assert column(row.cells, "p50").plain == "500ms"
    assert column(row.cells, "p95").plain == "7.9s"
    assert column(row.cells, "max").plain == "8.2s"
    assert column(row.cells, "throughput").plain == "        ▂▄█"
    assert column(row.cells, "queue_trend").plain == "          █"
    assert row.sort_keys["p95"] == 7.9
    assert row.sort_keys["stage"] == "fetch"


def test_stage_columns_fit_80_and_grow_with_the_width() -> None:
    # 80 columns less the border; stage names of up to 7 cells ("Fetch ◀").
    narrow = fit_stage_columns(78, 7)
    assert narrow == (
        "stage",
        "workers",
        "queued",
        "done",
        "failed",
        "retrying",
        "rate",
        "throughput",
        "p95",
    )
    widths = {key: STAGE_WIDTHS.get(key, 7) + CELL_PADDING for key in narrow}
    assert sum(widths.values()) <= 78
    # A longer name: the retries go first.
    assert "retrying" not in fit_stage_columns(78, 8)
    everything = {key for key, _ in STAGE_COLUMNS}
    assert set(fit_stage_columns(200, 8)) == everything - OPTIONAL_COLUMNS
    assert set(fit_stage_columns(240, 8, OPTIONAL_COLUMNS)) == everything
    for optional in (frozenset(), OPTIONAL_COLUMNS):
        previous: set[str] = set()
        for width in range(20, 240, 7):
            chosen = set(fit_stage_columns(width, 8, optional))
            assert chosen >= previous
            assert "stage" in chosen
            previous = chosen


# Issue 21: a run with limits keeps each stage's concurrency and 429s at 80 columns,
# before the throughput sparkline; a run without them shows no such columns.
def test_limit_columns_fit_80_columns_when_a_stage_has_limits() -> None:
    narrow = fit_stage_columns(78, 8, {"concurrency", "rate_limited", "timeouts", "tokens"})
    assert narrow == (
        "stage",
        "workers",
        "concurrency",
        "queued",
        "done",
        "failed",
        "rate_limited",
        "rate",
        "p95",
    )
    assert "concurrency" not in fit_stage_columns(160, 8)
    wide = fit_stage_columns(158, 8, {"concurrency", "rate_limited", "timeouts", "tokens"})
    assert {"concurrency", "rate_limited", "timeouts", "tokens", "throughput"} <= set(wide)


def test_sort_stage_rows_by_a_column_unknowns_last() -> None:
    views = [stage("Fetch", failed=1), stage("Parse", failed=5), stage("Save", failed=5)]
    rows = stage_rows(views, {"Fetch": 3.0, "Save": 1.0}, None)
    by_failed = sort_stage_rows(rows, "failed")
    assert [row.key for row in by_failed] == ["Parse", "Save", "Fetch"]
    assert [row.key for row in sort_stage_rows(rows, "rate")] == ["Fetch", "Save", "Parse"]
    rising = sort_stage_rows(rows, "rate", descending=False)
    assert [row.key for row in rising] == ["Save", "Fetch", "Parse"]
    assert [row.key for row in sort_stage_rows(rows, None)] == ["Fetch", "Parse", "Save"]
    backwards = sort_stage_rows(rows, None, descending=False)
    assert [row.key for row in backwards] == ["Save", "Parse", "Fetch"]
    names = sort_stage_rows(rows, "stage", descending=False)
    assert [row.key for row in names] == ["Fetch", "Parse", "Save"]


@pytest.mark.parametrize(
    ("progress", "shown"),
    [
        ((0, 10), "░░░░░"),
        ((5, 10), "██▌░░"),
        ((10, 10), "█████"),
        ((15, 10), "█████"),
        ((-1, 10), "░░░░░"),
        ((42, None), "↑42"),
        ((1234, 0), "↑1,234"),
        # Not finite: from a recording or a server of another version; never a crash.
        ((float("nan"), None), "↑0"),
        ((float("inf"), 10), "░░░░░"),
        ((1, float("nan")), "↑1"),
        ((1, float("inf")), "↑1"),
    ],
)
def test_progress_text(progress: tuple[float, float | None], shown: str) -> None:
    assert progress_text(progress) == shown


def test_a_worker_reporting_progress_shows_its_bar() -> None:
    row = WorkerRow(
        status="busy", holding=True, item="doc-1", since=NOW - 2, progress=(30.0, 120.0)
    )
    views = snapshot([], [("Gen-W0", "Gen", row)])
    (cell,) = worker_cells(views, NOW, {})
    assert cell.progress == (30.0, 120.0)
    text = worker_cell_text(cell, natural_cell_width(cell))
    assert text.plain.rstrip() == "▶ W0 doc-1 █▎░░░ 2.0s"
    idle = WorkerRow(status="idle", progress=(1.0, 2.0))
    (cell,) = worker_cells(snapshot([], [("Gen-W0", "Gen", idle)]), NOW, {})
    assert cell.progress is None


@pytest.mark.parametrize(
    ("stream", "style"),
    [("ERROR", "red"), ("err", "red"), ("WARNING", "yellow"), ("DEBUG", "dim"), ("INFO", None)],
)
def test_note_lines_take_their_level_colour(stream: str, style: str | None) -> None:
    line = note_line(LogLine(at=NOW, text="hello", stream=stream), STARTED)
    assert line.plain == "0:01:05 │ hello"
    styles = span_styles(line)
    if style is None:
        assert "red" not in styles
        assert "yellow" not in styles
    else:
        assert style in styles[1]


def test_facts_carry_levels() -> None:
    assert facts_of(status_event("failed", error_type="E", error="x")).level == 40
    assert facts_of(status_event("retrying")).level == 30
    assert facts_of(status_event("completed")).level == 20
    assert facts_of(task_event("retry")).level == 30
    assert line_facts(LogLine(at=NOW, text="x", stream="DEBUG")).level == 10
    assert line_facts(LogLine(at=NOW, text="x", stream="err")).level == 40
    assert failure_facts(failure()).level == 40
