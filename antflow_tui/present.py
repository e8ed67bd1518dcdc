"""Pure functions from a run's records (snapshots, events, error records) to what widgets
show.

Nothing here touches a widget, a pipeline or the clock: every input is passed in, records
only (`antflow.runstream.records`), so each function is unit-tested on hand-built values
and the same screens show a live run and a recorded one. Colours come from a `Palette`
(the theme's, in the app).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Final, Literal

from rich.cells import cell_len
from rich.style import Style
from rich.text import Text

from antflow.runstream.records import TASK_KINDS
from antflow_tui.cost import COST_WIDTH, pipeline_usage, usage_cost, usd_cell
from antflow_tui.filters import Facts
from antflow_tui.formatting import (
    fit_count,
    format_clock,
    format_count,
    format_duration,
    format_rate,
)
from antflow_tui.gauges import concurrency_text, tokens_cell, waiting_words
from antflow_tui.levels import ERROR, INFO, WARNING, event_level, line_level
from antflow_tui.palette import DEFAULT, Palette
from antflow_tui.safe_text import ansi_text, clean, first_line, item_label, literal
from antflow_tui.source.state import short_type
from antflow_tui.trends import sparkline

if TYPE_CHECKING:
    from collections.abc import Collection, Iterable, Mapping, Sequence

    from antflow.runstream.records import (
        ErrorRecord,
        Event,
        ItemKey,
        LogLine,
        PipelineStarted,
        Snapshot,
        StageConfig,
        StageLimits,
        Usage,
        WorkerRow,
    )
    from antflow.runstream.records import StageRow as StageCounts

WorkerLook = Literal["idle", "busy", "waiting", "pausing", "paused", "stuck", "blocked"]
"""How a worker cell looks; "waiting" holds an item but waits its turn (a task's
`task_concurrency_limits` slot, the stage's concurrency, a rate limit or its cool-down);
"blocked" holds a finished item while the next stage's queue is full (backpressure)."""

STUCK_FACTOR: Final = 10.0
"""A worker is stuck once on one item this many times its stage's average task time..."""
STUCK_MIN_SECONDS: Final = 10.0
"""...and at least this long (so fast stages do not flag every hiccup)."""
STUCK_WITHOUT_AVERAGE: Final = 60.0
"""Before a stage has finished anything, stuck means this long on one item."""


# ---------------------------------------------------------------------- stages

STAGE_COLUMNS: Final = (
    ("stage", "Stage"),
    ("workers", "Busy"),
    ("concurrency", "Conc"),
    ("queued", "Queued"),
    ("queue_trend", "Queue depth"),
    ("running", "Run"),
    ("done", "Done"),
    ("failed", "Fail"),
    ("skipped", "Skip"),
    ("retrying", "Retry"),
    ("rate_limited", "429s"),
    ("timeouts", "T/out"),
    ("rate", "Rate"),
    ("throughput", "Throughput"),
    ("tokens", "Tokens"),
    ("cost", "Cost"),
    ("avg", "Avg"),
    ("p50", "p50"),
    ("p95", "p95"),
    ("max", "Max"),
)
"""Column keys and headings, in the order shown; the table shows those that fit its width
(`fit_stage_columns`), and the `OPTIONAL_COLUMNS` only when some stage has what they show."""

OPTIONAL_COLUMNS: Final = frozenset({"concurrency", "rate_limited", "timeouts", "tokens", "cost"})
"""Columns of what only some runs have (issue 21): a stage's concurrency and its 429s
(a stage with a rate limit, adaptive concurrency or a concurrency set by hand), its
timeouts (a stage with `task_timeout`), the tokens its tasks reported, and what they
cost (issue 22: with prices, or a task's own ``cost=``)."""

SPARK_WIDTH: Final = 11
"""Cells of a sparkline in the stage table."""

STAGE_WIDTHS: Final[Mapping[str, int]] = {
    "workers": 5,
    "concurrency": 7,
    "queued": 7,
    "queue_trend": SPARK_WIDTH,
    "running": 4,
    "done": 6,
    "failed": 5,
    "skipped": 5,
    "retrying": 6,
    "rate_limited": 5,
    "timeouts": 6,
    "rate": 7,
    "throughput": SPARK_WIDTH,
    "tokens": 7,
    "cost": COST_WIDTH,
    "avg": 6,
    "p50": 6,
    "p95": 6,
    "max": 6,
}
"""Fixed widths of the number columns: widths that follow the numbers would re-measure the
table (a layout pass) as counts grow, and depend on the order values came in. Numbers too
big for their column are shortened (12.3k, 4.5M). Each sortable column has room for its
heading and the sort arrow."""

STAGE_PRIORITY: Final[Mapping[str, int]] = {
    "stage": 0,
    "workers": 1,
    "queued": 1,
    "done": 1,
    "failed": 1,
    "rate": 2,
    "concurrency": 2,
    "p95": 3,
    "rate_limited": 3,
    "throughput": 4,
    "cost": 4,
    "retrying": 5,
    "tokens": 5,
    "timeouts": 5,
    "queue_trend": 6,
    "avg": 7,
    "max": 7,
    "p50": 8,
    "running": 9,
    "skipped": 9,
}
"""Which columns a narrow table keeps (lowest first). At 80 columns: stage, busy, queued,
done, fail, rate, p95 (the tail Avg hides), the throughput sparkline and retries; Avg,
p50, Max, the queue sparkline, Run and Skip come back as the terminal widens. A run with
limits keeps its stages' concurrency and 429s before the sparkline."""

SPARK_COLUMNS: Final = frozenset({"queue_trend", "throughput"})
"""Columns that draw a trend, not a value: not sortable."""
CELL_PADDING: Final = 2
"""Cells a DataTable adds around each column."""


def fit_stage_columns(
    width: int, stage_width: int, optional: Collection[str] = ()
) -> tuple[str, ...]:
    """The stage table's columns that fit in `width` cells, in `STAGE_COLUMNS` order.

    Args:
        stage_width: The first column's width (it fits the longest stage name).
        optional: The `OPTIONAL_COLUMNS` that some stage has something to show in.
    """
    widths = {
        key: STAGE_WIDTHS.get(key, stage_width) + CELL_PADDING
        for key, _ in STAGE_COLUMNS
        if key not in OPTIONAL_COLUMNS or key in optional
    }
    chosen: set[str] = set()
    used = 0
    for key in sorted(widths, key=lambda key: STAGE_PRIORITY[key]):
        if used + widths[key] > width and chosen:
            # Lower priorities may still fit; a column of the same priority as one that
            # did not fit would make the set depend on dictionary order: stop at it.
            break
        chosen.add(key)
        used += widths[key]
    return tuple(key for key, _ in STAGE_COLUMNS if key in chosen)


@dataclass(frozen=True, slots=True)
class StageView:
    """One stage at a snapshot: its configuration and counts together."""

    pipeline: int
    config: StageConfig
    counts: StageCounts
    workers: tuple[WorkerRow, ...]

    @property
    def name(self) -> str:
        return self.config.name

    @property
    def busy(self) -> int:
        return sum(1 for worker in self.workers if worker.status == "busy")


def stage_views(started: PipelineStarted, snapshot: Snapshot) -> list[StageView]:
    """The pipeline's stages in order, each with its counts and workers at `snapshot`."""
    views = []
    for index, config in enumerate(started.stages):
        if index >= len(snapshot.stages):
            break
        workers = snapshot.workers[index] if index < len(snapshot.workers) else ()
        views.append(StageView(started.pipeline, config, snapshot.stages[index], workers))
    return views


@dataclass(frozen=True, slots=True)
class StageRow:
    """One stage table row: its key and its cells in `STAGE_COLUMNS` order."""

    key: str
    cells: tuple[Text, ...]
    bottleneck: bool
    paused: bool
    pipeline: int = 1
    """The row's pipeline (in the all-pipelines view a row is a whole pipeline)."""
    sort_keys: Mapping[str, float | str] = field(default_factory=dict)
    """What each sortable column sorts by (a number, or the stage's name)."""
    optional: frozenset[str] = frozenset()
    """The `OPTIONAL_COLUMNS` this row has something to show in."""


@dataclass(frozen=True, slots=True)
class StageSparks:
    """A stage's recent history, for its sparklines (see `antflow_tui.trends`)."""

    throughput: Sequence[float] = ()
    """Items finished per second, oldest first."""
    queue: Sequence[float] = ()
    """Queue depth, oldest first."""


def stage_average(counts: StageCounts) -> float | None:
    """Mean seconds per finished item in the stage, or None before the first."""
    finished = counts.done + counts.failed
    return counts.task_seconds / finished if finished else None


def bottleneck_stage(
    stages: Sequence[StageView], previous_pending: Mapping[str, float | None] | None
) -> str | None:
    """The stage holding the run back: all its workers busy and its queue full or growing.

    Among several, the one whose queue is fullest relative to its capacity.
    """
    candidates: list[tuple[float, str]] = []
    for stage in stages:
        queued = stage.counts.queued
        workers = len(stage.workers)
        if not workers or stage.busy < workers or not queued:
            continue
        before = previous_pending.get(stage.name) if previous_pending else None
        capacity = stage.config.queue_capacity
        full = capacity and queued >= capacity
        growing = before is not None and queued > before
        if full or growing:
            fill = queued / max(capacity, 1)
            candidates.append((fill, stage.name))
    return max(candidates)[1] if candidates else None


_MISSING: Final = float("-inf")
"""The sort key of a value not known (sorted last, biggest first)."""


def stage_rows(
    stages: Sequence[StageView],
    rates: Mapping[str, float | None],
    bottleneck: str | None,
    palette: Palette = DEFAULT,
    sparks: Mapping[str, StageSparks] | None = None,
) -> list[StageRow]:
    """The stage table, one row per stage in pipeline order."""
    rows = []
    for stage in stages:
        name = stage.name
        counts = stage.counts
        label = Text(clean(name, 24), style="bold")
        if counts.paused:
            label.append(" ‖", style=palette("held"))
        if name == bottleneck:
            label.stylize(palette("bottleneck"))
            label.append(" ◀", style=palette("bottleneck"))
        workers = len(stage.workers)
        busy = Text(f"{stage.busy}/{workers}")
        if workers and stage.busy == workers:
            busy.stylize("bold")
        trend = (sparks or {}).get(name) or StageSparks()
        average = stage_average(counts)
        rate = rates.get(name)
        limits = counts.limits
        cells = (
            label,
            busy,
            _concurrency(limits, palette),
            _number(counts.queued, palette("held") if name == bottleneck else "", "queued"),
            _spark(trend.queue, palette("trend-queue"), peak=True),
            _number(counts.running, palette.status("in_progress"), "running"),
            _number(counts.done, palette.status("completed"), "done"),
            _number(counts.failed, palette.status("failed"), "failed"),
            _number(counts.skipped, palette.status("skipped"), "skipped"),
            # Task attempts that failed and were tried again, per-task and per-stage alike.
            _number(counts.task_retries, palette.status("retrying"), "retrying"),
            _limit_count(
                None if limits is None else limits.rate_limited_retries,
                palette.status("retry"),
                "rate_limited",
            ),
            _limit_count(
                None if limits is None or limits.task_timeout is None else limits.timeouts,
                palette.status("fail"),
                "timeouts",
            ),
            Text(_fit_rate(rate, STAGE_WIDTHS["rate"]), justify="right"),
            _spark(trend.throughput, palette("trend-rate")),
            _tokens(counts.usage),
            _cost(counts.usage),
            _seconds(average),
            _seconds(counts.p50),
            _seconds(counts.p95),
            _seconds(counts.max_seconds),
        )
        keys: dict[str, float | str] = {
            "stage": name.casefold(),
            "workers": stage.busy / workers if workers else _MISSING,
            "queued": counts.queued,
            "running": counts.running,
            "done": counts.done,
            "failed": counts.failed,
            "skipped": counts.skipped,
            "retrying": counts.task_retries,
            "rate": _known(rate),
            "avg": _known(average),
            "p50": _known(counts.p50),
            "p95": _known(counts.p95),
            "max": _known(counts.max_seconds),
        }
        optional: set[str] = set()
        if limits is not None:
            optional |= {"concurrency", "rate_limited"}
            keys["concurrency"] = limits.concurrency
            keys["rate_limited"] = limits.rate_limited_retries
            if limits.task_timeout is not None:
                optional.add("timeouts")
                keys["timeouts"] = limits.timeouts
        if counts.usage is not None:
            optional.add("tokens")
            keys["tokens"] = counts.usage.input_tokens + counts.usage.output_tokens
            spent = usage_cost(counts.usage)
            if spent is not None:
                optional.add("cost")
                keys["cost"] = spent
        rows.append(
            StageRow(
                name,
                cells,
                name == bottleneck,
                counts.paused,
                stage.pipeline,
                keys,
                frozenset(optional),
            )
        )
    return rows


def _concurrency(limits: StageLimits | None, palette: Palette) -> Text:
    """'13/24': calls at once now, of the most allowed (bold when the stage uses all its
    workers' worth; '–' for a stage without limits beside stages with)."""
    if limits is None:
        return Text("–", style="dim", justify="right")
    text = Text(concurrency_text(limits), justify="right")
    if limits.adaptive:
        text.stylize(palette("gauge"))
    return text


def _limit_count(value: int | None, style: Style, column: str) -> Text:
    if value is None:
        return Text("–", style="dim", justify="right")
    return _number(value, style, column)


def _tokens(usage: Usage | None) -> Text:
    shown = tokens_cell(usage)
    return Text(shown or "–", style="" if shown else "dim", justify="right")


def _cost(usage: Usage | None) -> Text:
    """A stage's spend ('–' with no cost known: no usage, or no price for it)."""
    shown = usd_cell(usage_cost(usage))
    return Text(shown or "–", style="" if shown else "dim", justify="right")


def _spark(values: Sequence[float], style: Style, *, peak: bool = False) -> Text:
    return Text(sparkline(values, SPARK_WIDTH, peak=peak), style=style, no_wrap=True)


def _seconds(value: float | None) -> Text:
    return Text(format_duration(value), justify="right", style="" if value is not None else "dim")


def _known(value: float | None) -> float:
    return _MISSING if value is None else value


def sort_stage_rows(
    rows: Sequence[StageRow], column: str | None, *, descending: bool = True
) -> list[StageRow]:
    """The rows sorted by a column (None: as they come, in pipeline order, or the other
    way round); unknown values last either way, ties in pipeline order."""
    if column is None or column in SPARK_COLUMNS:
        return list(rows) if descending else list(reversed(rows))
    known = [row for row in rows if row.sort_keys.get(column, _MISSING) != _MISSING]
    unknown = [row for row in rows if row.sort_keys.get(column, _MISSING) == _MISSING]
    known.sort(key=lambda row: row.sort_keys[column], reverse=descending)
    return known + unknown


def pipeline_rows(
    pipelines: Sequence[tuple[str, PipelineStarted, Snapshot]],
    rates: Mapping[int, float | None],
    palette: Palette = DEFAULT,
) -> list[StageRow]:
    """The all-pipelines table: one row of totals per pipeline, keyed by its label."""
    rows = []
    for label, started, snapshot in pipelines:
        views = stage_views(started, snapshot)
        workers = sum(len(view.workers) for view in views)
        busy = sum(view.busy for view in views)
        paused = snapshot.paused
        name = Text(clean(label, 24), style="bold")
        name.stylize(palette("pipeline"))
        if paused:
            name.append(" ‖", style=palette("held"))
        busy_text = Text(f"{busy}/{workers}")
        if workers and busy == workers:
            busy_text.stylize("bold")
        finished = snapshot.processed + snapshot.failed
        seconds = sum(view.counts.task_seconds for view in views)
        average = seconds / finished if finished else None
        rate = rates.get(started.pipeline)
        queued = sum(v.counts.queued for v in views)
        running = sum(v.counts.running for v in views)
        retries = sum(v.counts.task_retries for v in views)
        done = snapshot.processed - snapshot.skipped
        usage = pipeline_usage(snapshot)
        cells = (
            name,
            busy_text,
            Text(""),
            _number(queued, "", "queued"),
            Text(""),
            _number(running, palette.status("in_progress"), "running"),
            _number(done, palette.status("completed"), "done"),
            _number(snapshot.failed, palette.status("failed"), "failed"),
            _number(snapshot.skipped, palette.status("skipped"), "skipped"),
            _number(retries, palette.status("retrying"), "retrying"),
            Text(""),
            Text(""),
            Text(_fit_rate(rate, STAGE_WIDTHS["rate"]), justify="right"),
            Text(""),
            _tokens(usage),
            _cost(usage),
            _seconds(average),
            # A pipeline's stages each have their own distribution: no one percentile.
            _seconds(None),
            _seconds(None),
            _seconds(max((v.counts.max_seconds or 0.0 for v in views), default=None) or None),
        )
        keys: dict[str, float | str] = {
            "stage": label.casefold(),
            "workers": busy / workers if workers else _MISSING,
            "queued": queued,
            "running": running,
            "done": done,
            "failed": snapshot.failed,
            "skipped": snapshot.skipped,
            "retrying": retries,
            "rate": _known(rate),
            "avg": _known(average),
        }
        optional: set[str] = set()
        if usage is not None:
            optional.add("tokens")
            keys["tokens"] = usage.input_tokens + usage.output_tokens
            spent = usage_cost(usage)
            if spent is not None:
                optional.add("cost")
                keys["cost"] = spent
        rows.append(
            StageRow(label, cells, False, paused, started.pipeline, keys, frozenset(optional))
        )
    return rows


def _number(value: int, style: Style | str, column: str) -> Text:
    shown = fit_count(value, STAGE_WIDTHS[column])
    return Text(shown, style=style if value else "dim", justify="right")


def _fit_rate(per_second: float | None, width: int) -> str:
    shown = format_rate(per_second)
    if per_second is None or len(shown) <= width:
        return shown
    return f"{fit_count(round(per_second), width - 2)}/s"


# ---------------------------------------------------------------------- workers


@dataclass(frozen=True, slots=True)
class WorkerCell:
    """One worker as the grid shows it."""

    name: str
    stage: str
    look: WorkerLook
    item: str
    """The current item's id, shown literally ('' when idle)."""
    status_text: str
    """The running task's `set_task_status` text, cleaned."""
    seconds: float | None
    """Time on the current item."""
    pipeline: int = 1
    group: str = ""
    """The heading the grid shows the cell under ('' : its stage)."""
    progress: tuple[float, float | None] | None = None
    """(done, total) the running task reported with `set_task_progress`."""

    @property
    def heading(self) -> str:
        return self.group or self.stage


def worker_cells(
    stages: Sequence[StageView],
    now: float,
    averages: Mapping[str, float | None],
    *,
    group: str = "",
) -> list[WorkerCell]:
    """Every worker, in stage order, with what it is doing and whether it looks stuck.

    Args:
        group: Put before each stage's name in the grid's headings (the pipeline, when
            the grid shows several).
    """
    cells = []
    for stage in stages:
        for name, row in zip(stage.config.workers, stage.workers, strict=False):
            look, status_text, seconds = _worker_look(
                row, now, averages.get(stage.name), stage.config, stage.counts.limits
            )
            cells.append(
                WorkerCell(
                    name=name,
                    stage=stage.name,
                    look=look,
                    item=item_label(row.item) if row.holding else "",
                    status_text=status_text,
                    seconds=seconds,
                    pipeline=stage.pipeline,
                    group=f"{group}{stage.name}" if group else "",
                    progress=row.progress if row.holding and look != "idle" else None,
                )
            )
    return cells


def _worker_look(
    row: WorkerRow,
    now: float,
    average: float | None,
    config: StageConfig | None = None,
    limits: StageLimits | None = None,
) -> tuple[WorkerLook, str, float | None]:
    seconds = None if row.since is None else now - row.since
    look: WorkerLook
    status_text = "" if not row.task_status else clean(row.task_status, 60)
    if row.status == "busy":
        look = "pausing" if row.paused else "busy"
        if row.waiting_for is not None:
            # Its task has not begun: the time is spent waiting, not stuck.
            look = "pausing" if row.paused else "waiting"
            status_text = waiting_words(row.waiting_for, config, limits, now)
        elif seconds is not None and is_stuck(seconds, average):
            look = "stuck"
    elif row.status == "paused" or row.paused:
        look = "paused"
    elif row.holding:
        look = "blocked"
    else:
        look = "idle"
    return look, status_text, seconds


def is_stuck(seconds: float, stage_average_seconds: float | None) -> bool:
    """True when one item has held a worker far longer than its stage usually takes."""
    if stage_average_seconds is None:
        return seconds >= STUCK_WITHOUT_AVERAGE
    return seconds >= max(STUCK_FACTOR * stage_average_seconds, STUCK_MIN_SECONDS)


WORKER_MARKS: Final[Mapping[str, str]] = {
    "idle": "·",
    "blocked": "»",
    "busy": "▶",
    "waiting": "◌",
    "pausing": "▷",
    "paused": "‖",
    "stuck": "!",
}
WORKER_LEGEND: Final[tuple[tuple[WorkerLook, str, str], ...]] = (
    ("busy", "running", "running an item"),
    (
        "waiting",
        "waiting",
        "holds an item, waiting its turn: a task's or the stage's concurrency, a rate limit, "
        "or the cool-down after a 429",
    ),
    ("stuck", "stuck", "far longer on one item than its stage usually takes"),
    ("blocked", "blocked", "done with its item; the next stage's queue is full"),
    ("pausing", "pausing", "paused; finishing its item first"),
    ("paused", "paused", "paused; takes no new item"),
    ("idle", "idle", "waiting for an item"),
)
"""Every worker-grid glyph: its look, its word, and what it means (the help screen)."""
BOTTLENECK_MARK: Final = "◀"


def worker_legend(looks: Iterable[str], palette: Palette = DEFAULT) -> Text:
    """The glyphs of these looks with their words, in legend order ('▶ running · idle')."""
    present = set(looks)
    legend = Text()
    for look, word, _meaning in WORKER_LEGEND:
        if look in present:
            if legend:
                legend.append("  ")
            legend.append(f"{WORKER_MARKS[look]} {word}", style=palette.look(look))
    return legend


def short_worker_name(name: str, stage: str) -> str:
    """``Fetch-W3`` -> ``W3`` (the grid groups workers by stage already)."""
    prefix = f"{stage}-"
    return name[len(prefix) :] if name.startswith(prefix) else name


def natural_cell_width(cell: WorkerCell) -> int:
    """How wide a cell would like to be to show everything (in terminal cells)."""
    width = 2 + cell_len(short_worker_name(cell.name, cell.stage))
    if cell.item:
        width += 1 + cell_len(cell.item)
    if cell.progress is not None:
        width += 1 + cell_len(progress_text(cell.progress))
    if cell.seconds is not None:
        width += 7
    if cell.look == "stuck":
        width += 6
    if cell.status_text:
        width += 1 + cell_len(cell.status_text)
    return width


def worker_cell_text(
    cell: WorkerCell, width: int, *, selected: bool = False, palette: Palette = DEFAULT
) -> Text:
    """One grid cell, exactly `width` cells wide."""
    style = palette.look(cell.look)
    text = Text(no_wrap=True, overflow="ellipsis")
    text.append(f"{WORKER_MARKS[cell.look]} ", style=style)
    text.append(short_worker_name(cell.name, cell.stage), style=style + _BOLD)
    if cell.item:
        text.append(" ")
        text.append(cell.item, style="bold" if cell.look != "idle" else "")
    if cell.progress is not None:
        text.append(" ")
        text.append(progress_text(cell.progress), style=palette("progress"))
    if cell.seconds is not None:
        text.append(
            f" {format_duration(cell.seconds)}", style="dim" if cell.look == "busy" else style
        )
    if cell.look == "stuck":
        text.append(" stuck", style=style)
    if cell.status_text:
        text.append(" ")
        text.append(cell.status_text, style="italic")
    text.truncate(width, overflow="ellipsis", pad=True)
    if selected:
        text.stylize("reverse")
    return text


_BOLD: Final = Style(bold=True)

PROGRESS_WIDTH: Final = 5
"""Cells of a worker's progress bar."""
_EIGHTHS: Final = " ▏▎▍▌▋▊▉"


def progress_text(progress: tuple[float, float | None]) -> str:
    """A task's reported progress: a small bar of done out of total ('██▌░░'), or just
    how much is done when the total is not known ('↑1.2k')."""
    done, total = progress
    if not math.isfinite(done):
        done = 0.0  # a recording or a server of another version may carry anything
    if total is None or not math.isfinite(total) or total <= 0:
        return f"↑{fit_count(round(max(done, 0)), PROGRESS_WIDTH)}"
    eighths = round(min(max(done / total, 0.0), 1.0) * PROGRESS_WIDTH * 8)
    full, rest = divmod(eighths, 8)
    bar = "█" * full + (_EIGHTHS[rest] if rest else "")
    return bar + "░" * (PROGRESS_WIDTH - len(bar))


# ---------------------------------------------------------------------- errors


@dataclass(frozen=True, slots=True)
class ErrorRow:
    """One failed item in the error panel."""

    item_id: ItemKey
    cells: tuple[Text, ...]


ERROR_COLUMNS: Final = ("Item", "Stage", "Error", "Message", "Tries")
MESSAGE_CELL: Final = 2_000
"""Characters of a message's first line an error row holds."""
PIPELINE_COLUMN: Final = "Pipe"
"""Heads the column naming each failure's pipeline, shown when a run has several."""


def error_rows(
    failures: Sequence[ErrorRecord], *, pipelines: int = 1, palette: Palette = DEFAULT
) -> list[ErrorRow]:
    """Failed items, newest first; with several pipelines, each row starts with the number
    of the pipeline it failed in."""
    rows = []
    for failure in reversed(failures):
        cells: tuple[Text, ...] = (
            literal(item_label(failure.item), "bold"),
            literal(failure.stage, "", 16),
            literal(short_type(failure.type), "", 24),
            # Whole (to a bound): the panel cuts it in the middle, keeping its end.
            Text(error_message(failure.message, MESSAGE_CELL), no_wrap=True, overflow="ellipsis"),
            Text(str(failure.attempt), justify="right"),
        )
        cells[2].stylize(palette("error-type"))
        if pipelines > 1:
            pipe = Text(str(failure.pipeline), justify="right")
            pipe.stylize(palette("pipeline"))
            cells = (pipe, *cells)
        rows.append(ErrorRow(item_id=failure.item, cells=cells))
    return rows


def error_type_counts(counts: Mapping[str, int], palette: Palette = DEFAULT) -> Text:
    """'ValueError 12 · TimeoutError 3', most frequent first."""
    text = Text()
    for index, (name, count) in enumerate(sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))):
        if index:
            text.append(" · ", style="dim")
        text.append(clean(short_type(name), 30), style=palette("error-type"))
        text.append(f" {format_count(count)}")
    return text


# ---------------------------------------------------------------------- events


def event_line(
    event: Event,
    started: float,
    error: ErrorRecord | None = None,
    *,
    palette: Palette = DEFAULT,
    show_pipeline: bool = False,
) -> Text:
    """One event log line: time into the run, item, stage, what happened, details.

    Args:
        error: The error record the event refers to (`Event.error`), when known.
        show_pipeline: Start with the event's pipeline number (a run of several).
    """
    line = Text(no_wrap=True, overflow="ellipsis")
    line.append(f"{format_clock(event.at - started)} ", style="dim")
    if show_pipeline:
        line.append(f"p{event.pipeline or '?'} ", style=palette("pipeline"))
    line.append(item_label(event.item, 20), style="bold")
    line.append(" ")
    line.append(clean(event.stage or "", 16), style=palette("stage"))
    line.append(" ")
    kind = event.kind
    if kind not in TASK_KINDS:
        line.append(kind, style=palette.status(kind))
        if event.worker:
            line.append(f" {clean(event.worker, 20)}", style="dim")
        if kind == "retrying":
            line.append(f" → attempt {event.attempt}", style=palette.status("retrying"))
    else:
        line.append(f"task {kind}", style=palette.status(kind))
        line.append(f" {clean(event.task or '', 24)}#{event.attempt}")
        if event.worker:
            line.append(f" {clean(event.worker, 20)}", style="dim")
        if event.duration is not None:
            line.append(f" {format_duration(event.duration)}", style="dim")
    if error is not None:
        line.append(f" {clean(short_type(error.type), 40)}: ", style=palette("error-type"))
        line.append(error_message(error.message, 120))
    return line


def error_message(message: str, limit: int) -> str:
    """The first line of an error message, or a note that it has none."""
    return first_line(message, limit) or "(no message)"


def is_error_line(line: LogLine) -> bool:
    """A line the script wrote to stderr, or logged at ERROR and above."""
    return line_level(line.stream) >= ERROR


def note_line(line: LogLine, started: float, palette: Palette = DEFAULT) -> Text:
    """A line the script printed or logged, as the event log shows it (errors in the
    error colour, warnings in the warning colour, debug lines dim)."""
    level = line_level(line.stream)
    text = Text(no_wrap=True, overflow="ellipsis")
    text.append(f"{format_clock(line.at - started)} ", style="dim")
    if level >= ERROR:
        style = palette("log-error")
    elif level >= WARNING:
        style = palette("log-warning")
    elif level < INFO:
        style = palette("log-debug")
    else:
        style = None
    text.append("│ ", style=style or palette.status("skipped"))
    # Scripts print colours (a Rich console thinks it writes to a terminal): show them.
    text.append_text(ansi_text(line.text, "" if style is None else str(style), 400))
    return text


def dropped_line(dropped: int, rate: float | None) -> Text:
    """The line standing in for events the log could not keep up with."""
    text = Text(f"… {format_count(dropped)} events not shown", style="dim italic")
    if rate:
        text.append(f" ({format_rate(rate)})", style="dim italic")
    return text


# ---------------------------------------------------------------------- filter facts


def event_facts(event: Event, error: ErrorRecord | None = None) -> Facts:
    """What a log line offers to a filter (built from the event, not its rendering)."""
    status = event.kind
    what = status if status not in TASK_KINDS else f"task {status} {event.task or ''}"
    error_text = "" if error is None else f"{short_type(error.type)} {error.message}"
    item = item_label(event.item, 10_000)
    stage = event.stage or ""
    worker = event.worker or ""
    pipeline = f" pipeline-{event.pipeline}" if event.pipeline else ""
    return Facts(
        text=f"{item} {stage} {what} {worker} {error_text}{pipeline}",
        status=status,
        stage=stage,
        item=item,
        error=error_text.strip(),
        worker=worker,
        level=event_level(status),
    )


def line_facts(line: LogLine) -> Facts:
    """What a line the script printed or logged offers to a filter."""
    return Facts(text=line.text, level=line_level(line.stream))


def failure_facts(failure: ErrorRecord) -> Facts:
    """What an error panel row offers to a filter."""
    label = item_label(failure.item, 10_000)
    error = f"{short_type(failure.type)} {failure.message}"
    return Facts(
        text=f"{label} {failure.stage} {error} pipeline-{failure.pipeline}",
        status="failed",
        stage=failure.stage,
        item=label,
        error=error,
        level=ERROR,
    )


def worker_facts(cell: WorkerCell) -> Facts:
    """What a worker cell offers to a filter."""
    return Facts(
        text=f"{cell.name} {cell.look} {cell.item} {cell.status_text}",
        status=cell.look,
        stage=cell.stage,
        item=cell.item,
        worker=cell.name,
    )


def stage_facts(row: StageRow) -> Facts:
    """What a stage row offers to a filter."""
    status = " ".join(
        word for word, on in (("paused", row.paused), ("bottleneck", row.bottleneck)) if on
    )
    return Facts(text=row.key, stage=row.key, status=status)


def pause_settling(snapshots: Iterable[Snapshot]) -> bool:
    """True while a paused worker still finishes its item ("pausing…")."""
    return any(
        worker.paused and worker.status == "busy"
        for snapshot in snapshots
        for stage in snapshot.workers
        for worker in stage
    )


def holding_stages(
    started: PipelineStarted, snapshot: Snapshot, stages: Collection[str]
) -> list[str]:
    """Of these stages, those a pause holds items in: the stage's own, or every one of its
    workers' (in the pipeline's order)."""
    return [
        view.name
        for view in stage_views(started, snapshot)
        if view.name in stages
        and (view.counts.paused or bool(view.workers and all(w.paused for w in view.workers)))
    ]


def paused_what(started: PipelineStarted | None, snapshot: Snapshot | None) -> str:
    """What a pause holds, for the banner: 'the run', or 'stage Fetch, worker Parse-W0'."""
    if snapshot is None or started is None:
        return ""
    if snapshot.paused:
        return "the whole run"
    views = stage_views(started, snapshot)
    parts = [f"stage {clean(view.name, 30)}" for view in views if view.counts.paused]
    parts += [
        f"worker {clean(name, 30)}"
        for view in views
        if not view.counts.paused
        for name, worker in zip(view.config.workers, view.workers, strict=False)
        if worker.paused
    ]
    if len(parts) > 4:
        parts = [*parts[:4], f"and {len(parts) - 4} more"]
    return ", ".join(parts)
