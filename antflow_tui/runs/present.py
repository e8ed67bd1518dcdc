"""Kept runs as the runs screen and ``antflow-tui runs --json`` show them: pure functions
of a `Run` (its index row: no file is read), tested on hand-made runs.

A row's columns come and go with the width, the most useful kept first (start, status,
script, done, failed...), and are drawn in a fixed order, so a narrow terminal shows
fewer columns, never a jumble.
"""

from __future__ import annotations

import os
import shlex
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

from rich.text import Text

from antflow.history.run import started_at_of
from antflow_tui.formatting import format_count, format_duration, format_rate
from antflow_tui.palette import DEFAULT, Palette
from antflow_tui.safe_text import clean

if TYPE_CHECKING:
    from collections.abc import Callable, Collection, Sequence

    from antflow.history import Run

STATUS_ROLES: Final = {
    "running": "state-running",
    "finished": "state-finished",
    "failed": "state-failed",
    "stopped": "state-stopped",
    "crashed": "state-crashed",
}
"""A run's status -> the palette role it is shown in (the theme's colours)."""
GAP: Final = 2
"""Cells between two columns."""
MARK_WIDTH: Final = 2
"""The gutter where a marked run (to compare) shows its mark."""
SCRIPT_MIN: Final = 10
SCRIPT_MAX: Final = 28


def started_text(started_at: float) -> str:
    """'2026-12-05 06:41': when a run started, in local time."""
    return time.strftime("%Y-%m-%d %H:%M", time.localtime(started_at))


def resumed_text(run_id: str) -> str:
    """When the run `run_id` started, from its id (it may have been deleted since)."""
    started = started_at_of(run_id)
    return started_text(started) if started else clean(run_id, 20)


def left_over(run: Run) -> int:
    """Items fed and not finished: those a clean end left unfinished; for a crashed run
    (it has no end) or a running one, those in flight at its last update."""
    counts = run.counts
    if run.status in ("running", "crashed"):
        in_flight = counts.fed - counts.done - counts.failed - counts.skipped
        return max(in_flight, counts.unfinished, 0)
    return counts.unfinished


@dataclass(frozen=True, slots=True)
class Column:
    """One column of the runs list."""

    title: str
    width: int
    cell: Callable[[Run, Palette], Text]
    right: bool = False
    """Right-aligned (numbers)."""


def _plain(text: str, style: str = "") -> Text:
    return Text(text, style=style)


def _count(value: int, style: object) -> Text:
    return Text(format_count(value), style=style if value else "dim")  # type: ignore[arg-type]


def _status(run: Run, palette: Palette) -> Text:
    return Text(run.status, style=palette(STATUS_ROLES.get(run.status, "")))


def _script(run: Run, _palette: Palette) -> Text:
    return Text(clean(run.script or "?", 200), style="bold")


def _done(run: Run, palette: Palette) -> Text:
    return _count(run.counts.done, palette.status("completed"))


def _failed(run: Run, palette: Palette) -> Text:
    return _count(run.counts.failed, palette.status("failed"))


def _unfinished(run: Run, palette: Palette) -> Text:
    return _count(left_over(run), palette.status("unfinished"))


def _earlier(run: Run, palette: Palette) -> Text:
    return _count(run.counts.done_earlier, palette.status("done_earlier"))


def _resumed(run: Run, _palette: Palette) -> Text:
    return _plain("" if run.resumed_from is None else resumed_text(run.resumed_from), "dim")


START: Final = Column("started", 16, lambda run, _p: _plain(started_text(run.started_at)))
START_SHORT: Final = Column("started", 11, lambda run, _p: _plain(started_text(run.started_at)[5:]))
"""Without the year: a narrow terminal (under `SHORT_BELOW` cells) has no room for it."""
SHORT_BELOW: Final = 110
SCRIPT: Final = Column("script", SCRIPT_MAX, _script)
STATUS: Final = Column("status", 8, _status)
DONE: Final = Column("done", 7, _done, right=True)
FAILED: Final = Column("failed", 6, _failed, right=True)
UNFINISHED: Final = Column("unfinished", 10, _unfinished, right=True)
EARLIER: Final = Column("done earlier", 12, _earlier, right=True)
EARLIER_SHORT: Final = Column("earlier", 7, _earlier, right=True)
"""A narrow terminal's: at 80 cells, what a resume skipped is worth more than the
duration (the detail line says "done earlier" in full)."""
DURATION: Final = Column(
    "duration", 8, lambda run, _p: _plain(format_duration(run.duration)), right=True
)
RATE: Final = Column("rate", 9, lambda run, _p: _plain(format_rate(run.rate)), right=True)
RESUMED: Final = Column("resumed from", 16, _resumed)
RUN_ID: Final = Column("run", 20, lambda run, _p: _plain(run.id, "dim"))

ORDER: Final = (
    START,
    SCRIPT,
    STATUS,
    DONE,
    FAILED,
    UNFINISHED,
    EARLIER,
    DURATION,
    RATE,
    RESUMED,
    RUN_ID,
)
"""The columns left to right."""
PRIORITY: Final = (
    START,
    STATUS,
    SCRIPT,
    DONE,
    FAILED,
    UNFINISHED,
    EARLIER,
    DURATION,
    RATE,
    RESUMED,
    RUN_ID,
)
"""Which columns a narrower list keeps first."""


@dataclass(frozen=True, slots=True)
class Layout:
    """The columns a width holds, and the script column's width."""

    columns: tuple[Column, ...]
    script_width: int

    def width_of(self, column: Column) -> int:
        return self.script_width if column is SCRIPT else column.width


def layout(width: int) -> Layout:
    """The columns that fit in `width` cells (the mark's gutter taken), the script's
    column as wide as what is left allows (between `SCRIPT_MIN` and `SCRIPT_MAX`)."""
    room = width - MARK_WIDTH
    chosen: list[Column] = []
    used = 0
    narrow = width < SHORT_BELOW
    shorter: dict[Column, Column] = {START: START_SHORT, EARLIER: EARLIER_SHORT} if narrow else {}
    for column in (shorter.get(column, column) for column in PRIORITY):
        need = (SCRIPT_MIN if column is SCRIPT else column.width) + (GAP if chosen else 0)
        if used + need > room:
            break
        chosen.append(column)
        used += need
    script = SCRIPT_MIN
    if SCRIPT in chosen:
        script = min(SCRIPT_MAX, SCRIPT_MIN + room - used)
    order = (shorter.get(column, column) for column in ORDER)
    return Layout(tuple(column for column in order if column in chosen), script)


def header_row(shape: Layout) -> Text:
    """The list's column titles."""
    row = Text(" " * MARK_WIDTH)
    for index, column in enumerate(shape.columns):
        if index:
            row.append(" " * GAP)
        row.append_text(_fit(Text(column.title), shape.width_of(column), column.right))
    return row


def run_row(run: Run, shape: Layout, *, marked: bool = False, palette: Palette = DEFAULT) -> Text:
    """One run's row: its columns in `shape`, after a mark when it is marked."""
    row = Text(("● " if marked else "  "), style=palette("pipeline"), no_wrap=True)
    for index, column in enumerate(shape.columns):
        if index:
            row.append(" " * GAP)
        row.append_text(_fit(column.cell(run, palette), shape.width_of(column), column.right))
    return row


def _fit(text: Text, width: int, right: bool) -> Text:
    text = text.copy()
    text.truncate(width, overflow="ellipsis")
    pad = width - text.cell_len
    if pad > 0:
        if right:
            text = Text(" " * pad) + text
        else:
            text.append(" " * pad)
    return text


def format_bytes(size: int) -> str:
    """12345678 -> '11.8 MB' (powers of 1024, as the retention's limits)."""
    value = float(size)
    for unit in ("B", "KB", "MB", "GB"):
        if value < 1024 or unit == "GB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} GB"  # pragma: no cover - the loop returns


def detail_line(run: Run, *, palette: Palette = DEFAULT) -> Text:
    """What the list says of the selected run under it: its id, status, where its
    script is, its command line, its size, what it resumed."""
    line = Text(" ", no_wrap=True, overflow="ellipsis")
    line.append(run.id, style="bold")
    line.append("  ")
    line.append(run.status, style=palette(STATUS_ROLES.get(run.status, "")))
    if run.status == "crashed":
        line.append(" (its process is gone, the run has no end)", style="dim")
    parts = [
        clean(run.script_path or run.script or "unknown script", 200),
        format_bytes(run.bytes),
    ]
    if run.argv:
        parts.append(clean(shlex.join(_shown_argv(run.argv)), 200))
    if run.resumed_from is not None:
        parts.append(f"resumed {run.resumed_from}")
    if run.counts.done_earlier:
        parts.append(f"done earlier {format_count(run.counts.done_earlier)}")
    if run.counts.skipped:
        parts.append(f"skipped {format_count(run.counts.skipped)}")
    for part in parts:
        line.append("  ·  ", style="dim")
        line.append(part)
    return line


def _shown_argv(argv: Sequence[str]) -> list[str]:
    """A command line as a person reads it: the program by its name only."""
    if not argv:
        return []
    return [os.path.basename(argv[0]), *argv[1:]]


def matches(run: Run, text: str) -> bool:
    """Whether the screen's filter `text` picks `run`: part of its script's name or
    path, of its status, or of its id (case does not matter)."""
    wanted = text.strip().lower()
    if not wanted:
        return True
    fields = (run.script or "", run.script_path or "", run.status, run.id)
    return any(wanted in field.lower() for field in fields)


def of_script(run: Run, script: str) -> bool:
    """Whether `run` is a run of `script` (``--script``): a file name matches the runs
    of any script so named, a path (one with a /) only that file's."""
    if os.sep in script or (os.altsep and os.altsep in script):
        return run.script_path == os.path.abspath(script)
    return run.script == script


JSON_FIELDS: Final = (
    "id",
    "script",
    "script_path",
    "status",
    "started_at",
    "started",
    "ended_at",
    "updated_at",
    "duration",
    "rate",
    "fed",
    "done",
    "failed",
    "skipped",
    "unfinished",
    "done_earlier",
    "resumed_from",
    "path",
    "bytes",
    "pid",
    "argv",
    "antflow",
)
"""The fields of each ``runs --json`` object, in order (docs/runs/history.md lists them)."""


def run_json(run: Run) -> dict[str, Any]:
    """A run as one ``antflow-tui runs --json`` object (`JSON_FIELDS`)."""
    counts = run.counts
    found: dict[str, Any] = {
        "id": run.id,
        "script": run.script,
        "script_path": run.script_path,
        "status": run.status,
        "started_at": run.started_at,
        "started": time.strftime("%Y-%m-%dT%H:%M:%S%z", time.localtime(run.started_at)),
        "ended_at": run.ended_at,
        "updated_at": run.updated_at,
        "duration": run.duration,
        "rate": run.rate,
        "fed": counts.fed,
        "done": counts.done,
        "failed": counts.failed,
        "skipped": counts.skipped,
        "unfinished": left_over(run),
        "done_earlier": counts.done_earlier,
        "resumed_from": run.resumed_from,
        "path": str(run.path),
        "bytes": run.bytes,
        "pid": run.pid,
        "argv": list(run.argv),
        "antflow": run.antflow,
    }
    return {name: found[name] for name in JSON_FIELDS}


def history_place(home: str | os.PathLike[str], cwd: str | None = None) -> str:
    """Where the history is, as short as it reads right: ``./.antflow`` under the
    current folder, else its absolute path."""
    here = os.getcwd() if cwd is None else cwd
    path = os.fspath(home)
    try:
        relative = os.path.relpath(path, here)
    except ValueError:
        return path
    return path if relative.startswith("..") else os.path.join(".", relative)


def runs_summary(runs: Collection[Run], shown: int) -> str:
    """The list's title: '1,204 runs' or '12 of 1,204 runs' under a filter."""
    total = len(runs)
    noun = "run" if total == 1 else "runs"
    if shown == total:
        return f"{format_count(total)} {noun}"
    return f"{format_count(shown)} of {format_count(total)} {noun}"
