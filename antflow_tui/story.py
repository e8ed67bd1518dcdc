"""An item's story (`ItemDetail`, a record) as the item screen's rows."""

from __future__ import annotations

from typing import TYPE_CHECKING

from rich.text import Text

from antflow.runstream.records import TASK_KINDS
from antflow_tui.formatting import format_duration, plural
from antflow_tui.palette import DEFAULT, Palette
from antflow_tui.present import error_message
from antflow_tui.safe_text import clean, literal
from antflow_tui.source.state import short_type

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    from antflow.runstream.records import ErrorRecord, Event


def timeline_rows(
    events: Sequence[Event],
    errors: Mapping[int, ErrorRecord] | None = None,
    palette: Palette = DEFAULT,
) -> list[tuple[Text, ...]]:
    """The item screen's timeline: time since the first event, stage, event, worker, details.

    Args:
        errors: The item's error records by number, for the events that carry one.
    """
    if not events:
        return []
    errors = errors or {}
    first = events[0].at
    rows: list[tuple[Text, ...]] = []
    for event in events:
        when = Text(f"+{format_duration(event.at - first)}", style="dim")
        stage = literal(event.stage or "", "", 24)
        stage.stylize(palette("stage"))
        worker = literal(event.worker or "", "dim", 24)
        details = Text()
        if event.kind not in TASK_KINDS:
            what = Text(event.kind, style=palette.status(event.kind))
            if event.kind in ("in_progress", "retrying"):
                details.append(f"attempt {event.attempt}")
            if event.kind == "failed":
                details.append(f"after {plural(event.attempt, 'attempt')}")
        else:
            what = Text(f"  task {event.kind}", style=palette.status(event.kind))
            details.append(f"{clean(event.task or '', 30)} attempt {event.attempt}")
            if event.duration is not None:
                details.append(f"  {format_duration(event.duration)}", style="dim")
        error = None if event.error is None else errors.get(event.error)
        if error is not None:
            details.append(f"  {clean(short_type(error.type), 40)}", style=palette("error-type"))
            details.append(f": {error_message(error.message, 160)}")
        rows.append((when, stage, what, worker, details))
    return rows
