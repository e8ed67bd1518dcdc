"""A comparison of two runs as Rich renderables: pure functions of the comparison, for
the compare screen and for the text printed when there is no terminal.

Every change is coloured by whether it is better or worse (more completed items is
better; more failures, more time or more tokens is worse); user data (ids, messages,
stage names, the command line) is shown literally.
"""

from __future__ import annotations

import math
import time
from typing import TYPE_CHECKING, Final, Literal

from rich.console import Group
from rich.table import Table
from rich.text import Text

from antflow.runstream.itemdiff import CHANGE_KINDS
from antflow_tui.formatting import fit_count, format_count, format_duration, format_rate
from antflow_tui.palette import DEFAULT, Palette
from antflow_tui.safe_text import clean, item_label, literal
from antflow_tui.source.state import short_type

if TYPE_CHECKING:
    from rich.console import RenderableType

    from antflow.runstream.compare import Change, Comparison, Difference
    from antflow.runstream.itemdiff import ItemChange, ItemEnd
    from antflow.runstream.retryfile import RetryFile
    from antflow.runstream.runsummary import RunSummary

Unit = Literal["count", "seconds", "rate", "tokens", "cost"]
Better = Literal["up", "down", "neither"]

KIND_WORDS: Final[dict[str, str]] = {
    "fixed": "fixed",
    "newly_failed": "newly failed",
    "still_failing": "still failing",
    "newly_slow": "newly slow",
}
KIND_ROLES: Final[dict[str, str]] = {
    "fixed": "status-completed",
    "newly_failed": "status-failed",
    "still_failing": "status-retrying",
    "newly_slow": "status-unfinished",
}
_TOTALS: Final[tuple[tuple[str, str, Unit, Better], ...]] = (
    ("fed", "fed", "count", "neither"),
    ("completed", "completed", "count", "up"),
    ("failed", "failed", "count", "down"),
    ("skipped", "skipped", "count", "neither"),
    ("unfinished", "unfinished", "count", "down"),
    ("done_earlier", "done earlier", "count", "neither"),
    ("duration_seconds", "duration", "seconds", "down"),
    ("throughput_per_second", "throughput", "rate", "up"),
)
_QUIET: Final = frozenset({"skipped", "unfinished", "done_earlier"})
"""Totals left out when they are 0 in both runs."""
WORSE: Final = "status-failed"
BETTER: Final = "status-completed"


# ---------------------------------------------------------------------- values


def value_text(value: float | None, unit: Unit) -> str:
    """One side's value: '1,204', '3.2s', '4.10/s', '1.2M', '$0.4210'; '—' unknown."""
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "—"
    if unit == "seconds":
        return seconds_text(value)
    if unit == "rate":
        return format_rate(value)
    if unit == "tokens":
        return fit_count(int(value), 6)
    if unit == "cost":
        return f"${value:,.4f}" if abs(value) < 100 else f"${value:,.2f}"
    return format_count(int(value))


def seconds_text(seconds: float) -> str:
    """A duration, small ones too: 35µs, 4.2ms, 850ms, 3.2s, 4m05s."""
    size = abs(seconds)
    if size and size < 0.0009995:
        return f"{seconds * 1e6:.0f}µs"
    if size and size < 0.0099995:
        return f"{seconds * 1e3:.1f}ms"
    return format_duration(seconds)


def change_text(change: Change, unit: Unit, better: Better, palette: Palette = DEFAULT) -> Text:
    """B - A, signed, with the relative change for times and rates; green when better,
    red when worse, dim when nothing changed or it cannot be told."""
    delta = change.change
    if delta is None or (isinstance(delta, float) and not math.isfinite(delta)):
        return Text("—", style="dim")
    if delta == 0 or (unit in ("seconds", "rate", "cost") and abs(delta) < 1e-12):
        return Text("=", style="dim")
    sign = "+" if delta > 0 else "−"
    shown = value_text(abs(delta), unit)
    if unit == "rate":
        shown = shown.removesuffix("/s") + "/s"
    text = f"{sign}{shown}"
    ratio = change.ratio
    if ratio is not None and unit != "count":
        text += f" ({(ratio - 1) * 100:+.0f}%)".replace("-", "−")
    style = ""
    if better != "neither":
        good = (delta > 0) == (better == "up")
        style = str(palette(BETTER if good else WORSE))
    return Text(text, style=style)


def _row(label: str, change: Change, unit: Unit, better: Better, palette: Palette) -> list[Text]:
    return [
        Text(label),
        Text(value_text(change.a, unit), justify="right"),
        Text(value_text(change.b, unit), justify="right"),
        change_text(change, unit, better, palette),
    ]


def _table(*headings: str) -> Table:
    table = Table(box=None, pad_edge=False, show_header=True, header_style="bold dim")
    for index, heading in enumerate(headings):
        table.add_column(heading, no_wrap=True, justify="right" if 0 < index < 3 else "left")
    return table


# ---------------------------------------------------------------------- sections


def run_line(label: str, run: RunSummary, palette: Palette = DEFAULT) -> Text:
    """'A  20261205-064102-3f9a · llm_batch.py · 2026-12-05 06:41 · finished'."""
    line = Text(f"{label}  ", style="bold")
    line.append(clean(run.run_id or run.path, 60), style="bold")
    if run.header.script:
        line.append(" · ")
        line.append(clean(run.header.script, 40))
    started = time.strftime("%Y-%m-%d %H:%M", time.localtime(run.header.started_at))
    line.append(f" · {started}", style="dim")
    ended = "cut short" if run.end is None else run.end.reason
    role = "status-completed" if ended == "finished" else "status-unfinished"
    line.append(" · ")
    line.append(clean(ended, 20), style=palette(role))
    if run.damaged:
        line.append(" · damaged", style=palette("status-failed"))
    return line


def totals_table(
    comparison: Comparison, *, changed_only: bool = False, palette: Palette = DEFAULT
) -> Table:
    """Counts, duration, throughput, tokens and cost: A, B and the change."""
    table = _table("Totals", "A", "B", "change")
    by_name = {change.name: change for change in comparison.totals}
    for name, label, unit, better in _TOTALS:
        change = by_name[name]
        if name in _QUIET and not change.a and not change.b:
            continue
        if changed_only and change.change in (0, None):
            continue
        table.add_row(*_row(label, change, unit, better, palette))
    given, taken, cost = comparison.usage_total
    if given.a or given.b or taken.a or taken.b or cost.a is not None or cost.b is not None:
        usage: tuple[tuple[str, Change, Unit], ...] = (
            ("tokens in", given, "tokens"),
            ("tokens out", taken, "tokens"),
            ("cost", cost, "cost"),
        )
        for label, change, unit in usage:
            if changed_only and change.change in (0, None):
                continue
            table.add_row(*_row(label, change, unit, "down", palette))
    return table


def stages_table(
    comparison: Comparison, *, changed_only: bool = False, palette: Palette = DEFAULT
) -> Table:
    """Per stage: task time p50 / p95 / max and throughput, A → B, with the change."""
    table = Table(box=None, pad_edge=False, show_header=True, header_style="bold dim")
    several = len({stage.pipeline for stage in comparison.stages}) > 1
    table.add_column("Stage", no_wrap=True, max_width=24)
    for heading in ("p50 A → B", "p95 A → B", "max A → B", "throughput A → B"):
        table.add_column(heading, no_wrap=True)
    for stage in comparison.stages:
        changes = (stage.p50, stage.p95, stage.max, stage.throughput)
        if changed_only and stage.present == "both" and all(_same(c) for c in changes):
            continue
        name = literal(stage.stage, "", 24)
        name.stylize(palette("stage"))
        if several:
            name = Text(f"{stage.pipeline}·").append_text(name)
        if stage.present != "both":
            name.append(f" (only {stage.present.upper()})", style="dim")
        cells: list[Text] = [name]
        measures: tuple[tuple[Change, Unit, Better], ...] = (
            (stage.p50, "seconds", "down"),
            (stage.p95, "seconds", "down"),
            (stage.max, "seconds", "down"),
            (stage.throughput, "rate", "up"),
        )
        for change, unit, better in measures:
            cells.append(span_text(change, unit, better, palette))
        table.add_row(*cells)
    return table


def span_text(change: Change, unit: Unit, better: Better, palette: Palette = DEFAULT) -> Text:
    """'175µs → 320µs +83%': both values and the relative change (coloured)."""
    text = Text(f"{value_text(change.a, unit)} → {value_text(change.b, unit)}")
    ratio = change.ratio
    delta = change.change
    if ratio is None or delta is None or abs(ratio - 1) < 0.005:
        return text
    word = f" {(ratio - 1) * 100:+.0f}%".replace("-", "−")
    if better == "neither":
        text.append(word, style="dim")
        return text
    good = (delta > 0) == (better == "up")
    text.append(word, style=palette(BETTER if good else WORSE))
    return text


def _same(change: Change) -> bool:
    delta = change.change
    return delta is None or abs(delta) < 1e-9


def usage_table(comparison: Comparison, palette: Palette = DEFAULT) -> Table | None:
    """Tokens and cost per stage (None: no stage reported usage in either run)."""
    if not comparison.usage:
        return None
    table = Table(box=None, pad_edge=False, show_header=True, header_style="bold dim")
    for heading in ("Stage", "tokens in A → B", "tokens out A → B", "cost A → B", "model"):
        table.add_column(heading, no_wrap=True)
    for stage in comparison.usage:
        name = literal(stage.stage, "", 24)
        name.stylize(palette("stage"))
        model_a, model_b = stage.model
        model = clean(model_b or model_a or "", 30)
        if model_a and model_b and model_a != model_b:
            model = f"{clean(model_a, 20)} → {clean(model_b, 20)}"
        table.add_row(
            name,
            span_text(stage.input_tokens, "tokens", "down", palette),
            span_text(stage.output_tokens, "tokens", "down", palette),
            span_text(stage.cost, "cost", "down", palette),
            Text(model, style="dim"),
        )
    return table


def made_text(comparison: Comparison, palette: Palette = DEFAULT) -> Text:
    """What differed in how the runs were made, one line each (differences only)."""
    if not comparison.made:
        return Text(
            "Made the same way: command line, script, antflow and every stage setting.", style="dim"
        )
    lines = Text()
    for number, difference in enumerate(comparison.made):
        if number:
            lines.append("\n")
        lines.append_text(difference_line(difference, palette))
    return lines


def difference_line(difference: Difference, palette: Palette = DEFAULT) -> Text:
    """'Generate · task_attempts: 3 → 1'."""
    line = Text()
    if difference.stage is not None:
        stage = literal(difference.stage, "", 30)
        stage.stylize(palette("stage"))
        line.append_text(stage)
        line.append(" · ")
    elif difference.limit is not None:
        line.append(f"rate limit {clean(difference.limit, 30)} · ")
    elif difference.pipeline is not None:
        line.append(f"pipeline {difference.pipeline} · ")
    line.append(difference.setting.replace("_", " "), style="bold")
    line.append(": ")
    line.append(_setting(difference.setting, difference.a), style="dim")
    line.append(" → ")
    line.append(_setting(difference.setting, difference.b), style="bold")
    return line


def _setting(name: str, value: object) -> str:
    if value is None:
        return "none"
    if name == "script_sha256" and isinstance(value, str):
        return value[:12] + "…"
    if name == "argv" and isinstance(value, list):
        return clean(" ".join(str(part) for part in value), 120)
    if isinstance(value, list):
        return clean(", ".join(str(part) for part in value), 120) or "none"
    return clean(str(value), 120)


def errors_table(comparison: Comparison, palette: Palette = DEFAULT) -> Table | Text:
    """Error groups that appeared, went away, grew or shrank (failed items when each
    run ended), biggest change first."""
    if not comparison.errors:
        return Text("No failed item in either run.", style="dim")
    table = _table("Error", "A", "B", "change", "Message")
    for group in comparison.errors:
        error = literal(short_type(group.type), "", 28)
        error.stylize(palette("error-type"))
        trend = group.trend
        role = {"appeared": WORSE, "grew": WORSE, "gone": BETTER, "shrank": BETTER}.get(trend)
        change = Text(
            f"{group.change:+,}".replace("-", "−") + f" {trend}" if trend != "same" else "=",
            style=str(palette(role)) if role else "dim",
        )
        table.add_row(
            error,
            Text(format_count(group.a), justify="right"),
            Text(format_count(group.b), justify="right"),
            change,
            Text(group.message or "(no message)", no_wrap=True, overflow="ellipsis"),
        )
    return table


def items_heading(comparison: Comparison, palette: Palette = DEFAULT) -> Text:
    """'Items: 12 fixed · 9 newly failed · 6 still failing (2 another error) · 10 newly slow'."""
    counts = comparison.items.counts
    line = Text("Items by id: ", style="bold")
    for number, kind in enumerate(CHANGE_KINDS):
        if number:
            line.append(" · ")
        line.append(
            f"{format_count(counts[kind])} {KIND_WORDS[kind]}", style=palette(KIND_ROLES[kind])
        )
        if kind == "still_failing" and counts["still_failing_other_error"]:
            line.append(f" ({format_count(counts['still_failing_other_error'])} another error)")
    if counts["only_in_a"] or counts["only_in_b"]:
        line.append(
            f"  ({format_count(counts['only_in_a'])} only in A, "
            f"{format_count(counts['only_in_b'])} only in B)",
            style="dim",
        )
    return line


# ---------------------------------------------------------------------- items

ITEM_COLUMNS: Final = (("kind", 15), ("item", 20), ("a", 0), ("b", 0), ("time", 24))
"""The item list's columns and widths (0: an equal share of what is left)."""
NARROW_ITEM_COLUMNS: Final = (("kind", 15), ("item", 12), ("a", 0), ("b", 0), ("time", 15))
"""The same below `NARROW_WIDTH`: at 80 columns the fixed widths left 'In A' and 'In B'
eight cells each ('complet…')."""
NARROW_WIDTH: Final = 120


def item_header(width: int) -> Text:
    return _cells(["Change", "Item", "In A", "In B", "Task time A → B"], width)


def item_row(change: ItemChange, width: int, palette: Palette = DEFAULT) -> Text:
    """One item whose outcome or time changed, in `width` cells."""
    kind = Text(KIND_WORDS[change.kind], style=palette(KIND_ROLES[change.kind]))
    if change.kind == "still_failing":
        kind.append(" =" if change.same_error else " ≠", style="dim")
    item = Text(item_label(change.item, 40))
    if change.pipeline != 1:
        item = Text(f"{change.pipeline}·").append_text(item)
    seconds = Text(
        f"{value_text(change.a.seconds, 'seconds')} → {value_text(change.b.seconds, 'seconds')}"
    )
    added = change.added_seconds
    if added is not None and change.kind == "newly_slow":
        seconds.append(f" +{seconds_text(added)}", style=palette(WORSE))
    return _cells(
        [kind, item, end_text(change.a, palette), end_text(change.b, palette), seconds], width
    )


def end_text(end: ItemEnd, palette: Palette = DEFAULT) -> Text:
    """How an item ended in one run: 'failed in Parse: ParseError: bad tag <n>'."""
    status = end.status
    role = {
        "completed": "status-completed",
        "done earlier": "status-completed",
        "failed": "status-failed",
        "skipped": "status-skipped",
        "unfinished": "status-unfinished",
        "in flight": "status-in_progress",
    }.get(status)
    text = Text(status, style=palette(role) if role else "dim")
    if end.stage:
        text.append(" in ")
        stage = literal(end.stage, "", 20)
        stage.stylize(palette("stage"))
        text.append_text(stage)
    if end.error is not None:
        text.append(": ")
        text.append(clean(short_type(end.error[0]), 30), style=palette("error-type"))
        if end.error[1]:
            text.append(f": {clean(end.error[1], 200)}")
    return text


def _cells(cells: list[Text | str], width: int) -> Text:
    columns = NARROW_ITEM_COLUMNS if width < NARROW_WIDTH else ITEM_COLUMNS
    fixed = sum(size for _, size in columns)
    flexible = [index for index, (_, size) in enumerate(columns) if size == 0]
    share = max((width - fixed - len(columns)) // max(len(flexible), 1), 8)
    line = Text(no_wrap=True, overflow="ellipsis")
    for index, cell in enumerate(cells):
        size = columns[index][1] or share
        text = cell if isinstance(cell, Text) else Text(cell)
        text = text.copy()
        text.truncate(size, overflow="ellipsis", pad=True)
        if index:
            line.append(" ")
        line.append_text(text)
    line.truncate(width, overflow="ellipsis")
    return line


# ---------------------------------------------------------------------- the whole


def notes_text(comparison: Comparison, palette: Palette = DEFAULT) -> Text | None:
    if not comparison.notes:
        return None
    return Text("\n".join(clean(note, 400) for note in comparison.notes), style=palette("held"))


def report(comparison: Comparison, *, items: int = 20, width: int = 120) -> RenderableType:
    """The whole comparison as text (no terminal: ``compare A B | less``)."""
    palette = DEFAULT
    parts: list[RenderableType] = [
        run_line("A", comparison.a, palette),
        run_line("B", comparison.b, palette),
    ]
    notes = notes_text(comparison, palette)
    if notes is not None:
        parts.append(notes)
    parts += [Text(), totals_table(comparison, palette=palette), Text()]
    parts += [Text("Stages", style="bold"), stages_table(comparison, palette=palette), Text()]
    usage = usage_table(comparison, palette)
    if usage is not None:
        parts += [Text("Cost and tokens", style="bold"), usage, Text()]
    parts += [Text("Errors", style="bold"), errors_table(comparison, palette), Text()]
    parts += [Text("How the runs were made (differences only)", style="bold")]
    parts += [made_text(comparison, palette), Text()]
    parts.append(items_heading(comparison, palette))
    parts.append(item_header(width))
    for kind in CHANGE_KINDS:
        shown = 0
        for change in comparison.items.rows(kind, items):
            parts.append(item_row(change, width, palette))
            shown += 1
        more = comparison.items.counts[kind] - shown
        if more > 0:
            parts.append(Text(f"  … and {format_count(more)} more {KIND_WORDS[kind]}", style="dim"))
    return Group(*parts)


def retry_file_lines(written: RetryFile) -> list[str]:
    """What a retry file holds and what --retry-from will do with it."""
    lines = [
        f"Wrote {written.written:,} newly failed item{'s' if written.written != 1 else ''} "
        f"to {written.path}: --retry-from feeds {written.fed:,} of them again"
        + (
            f", and lists {len(written.skipped):,} it cannot feed with the reason."
            if written.skipped
            else "."
        )
    ]
    if written.skipped:
        lines.append(
            "  A recording keeps no item values: an item is fed again only from the output "
            "of a durable stage (Stage(durable=True)) before the one it failed in. The file "
            "still lists each item's id, stage and error."
        )
        reasons: dict[str, int] = {}
        for line in written.skipped:
            reasons[line.reason] = reasons.get(line.reason, 0) + 1
        lines.extend(f"  {count:,} × {reason}" for reason, count in reasons.items())
    if len(written.pipelines) > 1:
        lines.append(
            f"  It holds {len(written.pipelines)} pipelines ({', '.join(written.pipelines)}): "
            "--retry-from feeds a file of one; use antflow.refeed.read_export(path, "
            "pipeline=NAME) from your script."
        )
    return lines
