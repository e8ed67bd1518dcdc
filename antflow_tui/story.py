"""ItemStory: one item's whole story as plain data, and the rows the item screen shows."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from rich.text import Text

from antflow_tui.formatting import format_duration, plural
from antflow_tui.present import STATUS_STYLES, error_message
from antflow_tui.safe_text import clean, literal

if TYPE_CHECKING:
    from collections.abc import Sequence

    from antflow.types import ItemLocation, StatusEvent, TaskEvent


@dataclass(frozen=True, slots=True)
class AttemptErrorView:
    """One failed attempt of an item, as text."""

    stage: str
    task: str
    attempt: int | None
    error_type: str
    message: str
    traceback: str


def attempt_error_views(
    timeline: Sequence[StatusEvent | TaskEvent], errors: Sequence[tuple[BaseException, str]]
) -> list[AttemptErrorView]:
    """Each distinct failed attempt's error, labelled with the task event that raised it."""
    from antflow.types import TaskEvent

    raised_by: dict[int, TaskEvent] = {}
    for event in timeline:
        if isinstance(event, TaskEvent) and event.error is not None:
            raised_by.setdefault(id(event.error), event)
    failed_in: dict[int, str] = {}
    for event in timeline:
        if not isinstance(event, TaskEvent) and event.status == "failed":
            failed_in[len(failed_in)] = event.stage or ""
    views = []
    seen: set[int] = set()
    for exception, text in errors:
        if id(exception) in seen:
            continue
        seen.add(id(exception))
        event = raised_by.get(id(exception))
        views.append(
            AttemptErrorView(
                stage=event.stage if event else next(iter(failed_in.values()), ""),
                task=event.task_name if event else "skip_if",
                attempt=event.attempt if event else None,
                error_type=type(exception).__name__,
                message=str(exception),
                traceback=text,
            )
        )
    return views


@dataclass(frozen=True, slots=True)
class ItemStory:
    """Everything known about one item, as plain data for the item screen."""

    item_id: Any
    known: bool
    """The tracker holds this item's history."""
    evicted: bool | None
    """True: the item existed but its history was evicted (bounded history); None: it
    may have been (the tracker has evicted some histories and cannot tell)."""
    status: str | None
    stage: str | None
    timeline: list[StatusEvent | TaskEvent]
    errors: list[AttemptErrorView]
    location: ItemLocation | None
    """Where the item is now (queued, running, failed...), with the value it holds."""
    retryable: bool
    unfinished: bool = False
    """A stop came before the item finished."""
    abandoned: bool = False
    """The script's own shutdown left it (it broke out of `stream()` early, say)."""
    pipeline: int = 1
    """The number of the pipeline this story is from."""
    pipelines: int = 1
    """How many pipelines the run has."""
    also_in: tuple[int, ...] = ()
    """Other pipelines that know an item with this id."""


def timeline_rows(timeline: Sequence[StatusEvent | TaskEvent]) -> list[tuple[Text, ...]]:
    """The item screen's timeline: time since the first event, stage, event, worker, details."""
    from antflow.types import StatusEvent

    if not timeline:
        return []
    first = timeline[0].timestamp
    rows = []
    for event in timeline:
        when = Text(f"+{format_duration(event.timestamp - first)}", style="dim")
        stage = literal(event.stage or "", "magenta", 24)
        worker = literal(event.worker or "", "dim", 24)
        details = Text()
        if isinstance(event, StatusEvent):
            what = Text(event.status, style=STATUS_STYLES.get(event.status, ""))
            metadata = event.metadata
            if event.status in ("in_progress", "retrying") and "attempt" in metadata:
                details.append(f"attempt {metadata['attempt']}")
            if event.status == "failed":
                attempts = metadata.get("attempts")
                details.append(
                    f"after {plural(attempts, 'attempt')}"
                    if isinstance(attempts, int)
                    else "after ? attempts"
                )
            if metadata.get("error_type"):
                details.append(f"  {clean(str(metadata['error_type']), 40)}", style="red")
                details.append(f": {error_message(str(metadata.get('error', '')), 160)}")
        else:
            what = Text(f"  task {event.event_type}", style=STATUS_STYLES.get(event.event_type, ""))
            details.append(f"{clean(event.task_name, 30)} attempt {event.attempt}")
            if event.duration is not None:
                details.append(f"  {format_duration(event.duration)}", style="dim")
            if event.error is not None:
                details.append(f"  {clean(type(event.error).__name__, 40)}", style="red")
                details.append(f": {error_message(str(event.error), 160)}")
        rows.append((when, stage, what, worker, details))
    return rows
