"""A log entry or a failure shown whole: what the event log and the error panel cut to
one row (a long PipelineError, a URL past the column's end), for the line view (`v`).

Each function returns a title, the text to show (wrapped, every line of it, literal) and
the plain text a copy takes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

from rich.text import Text

from antflow_tui.formatting import format_clock, format_duration
from antflow_tui.palette import DEFAULT, Palette
from antflow_tui.safe_text import ansi_text, clean, item_label
from antflow_tui.source.state import short_type

if TYPE_CHECKING:
    from antflow.runstream.records import ErrorRecord
    from antflow_tui.error_groups import ErrorGroup
    from antflow_tui.source.state import LogEntry

LONGEST: Final = 100_000
"""Characters of one line shown (a multi-megabyte message is cut there, and says so)."""


@dataclass(frozen=True, slots=True)
class WholeLine:
    """A line to show whole."""

    title: str
    body: Text
    copy: str
    """What a copy takes: the line's own text, as the script or the error wrote it."""


def whole_failure(failure: ErrorRecord, started: float, palette: Palette = DEFAULT) -> WholeLine:
    """A failed item's row: its item, stage, attempt and error, and the whole message."""
    body = Text()
    body.append("Item ", style="dim")
    body.append(item_label(failure.item, 200), style="bold")
    body.append("  in ", style="dim")
    body.append(clean(failure.stage, 60), style=palette("stage"))
    body.append(f"  attempt {failure.attempt}", style="dim")
    body.append(f"  at {format_clock(failure.at - started)}\n", style="dim")
    body.append(clean(failure.type, 200), style=palette("error-type"))
    body.append("\n\n")
    _append_lines(body, failure.message or "(no message)")
    return WholeLine(
        title=f"{short_type(failure.type)} of {item_label(failure.item, 40)}",
        body=body,
        copy=f"{failure.type}: {failure.message}",
    )


def whole_group(group: ErrorGroup, palette: Palette = DEFAULT) -> WholeLine:
    """An error group: its type and message pattern, whole."""
    kind, pattern = group.key
    body = Text()
    body.append(clean(kind, 200), style=palette("error-type"))
    body.append(f"  {group.count:,} failed items\n\n", style="dim")
    _append_lines(body, pattern)
    return WholeLine(title=f"Error group {short_type(kind)}", body=body, copy=pattern)


def whole_entry(entry: LogEntry, started: float, palette: Palette = DEFAULT) -> WholeLine | None:
    """An event log line whole: a line the script wrote (its colours kept), or an event
    with the whole message of its error. None: a marker, nothing more to show."""
    if entry.line is not None:
        line = entry.line
        body = Text(f"{format_clock(line.at - started)} ", style="dim")
        body.append(f"{clean(line.stream, 20)}\n\n", style="dim")
        text = line.text[:LONGEST]
        for number, part in enumerate(text.splitlines() or [""]):
            if number:
                body.append("\n")
            body.append_text(ansi_text(part, limit=LONGEST))
        _say_cut(body, line.text)
        return WholeLine(title="Log line", body=body, copy=line.text)
    event = entry.event
    if event is None:
        return None
    body = Text(f"{format_clock(event.at - started)}  ", style="dim")
    body.append(item_label(event.item, 200), style="bold")
    body.append("  ")
    body.append(clean(event.stage or "", 60), style=palette("stage"))
    body.append("  ")
    body.append(event.kind, style=palette.status(event.kind))
    if event.task:
        body.append(f"  {clean(event.task, 60)} attempt {event.attempt}")
    if event.worker:
        body.append(f"  {clean(event.worker, 60)}", style="dim")
    if event.duration is not None:
        body.append(f"  {format_duration(event.duration)}", style="dim")
    copy = body.plain
    error = entry.error
    if error is not None:
        body.append("\n\n")
        body.append(clean(error.type, 200), style=palette("error-type"))
        body.append("\n")
        _append_lines(body, error.message or "(no message)")
        copy = f"{copy}\n{error.type}: {error.message}"
    return WholeLine(title=f"Event of {item_label(event.item, 40)}", body=body, copy=copy)


def _append_lines(body: Text, text: str) -> None:
    """Every line of `text`, each shown literally."""
    shown = text[:LONGEST]
    body.append("\n".join(clean(line, LONGEST) for line in shown.splitlines()))
    _say_cut(body, text)


def _say_cut(body: Text, text: str) -> None:
    if len(text) > LONGEST:
        body.append(f"\n… {len(text) - LONGEST:,} more characters not shown", style="dim italic")
