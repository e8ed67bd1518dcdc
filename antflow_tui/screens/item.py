"""ItemScreen: one item's whole story: status, value, timeline, and every traceback."""

from __future__ import annotations

import os
import sysconfig
import time
from typing import TYPE_CHECKING, Any, ClassVar, Final

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text
from textual.binding import Binding, BindingType
from textual.containers import VerticalScroll
from textual.widgets import Footer, Static

from antflow_tui.formatting import short_paths_in
from antflow_tui.keys import key_for
from antflow_tui.present import STATUS_STYLES, error_message
from antflow_tui.safe_text import clean, item_label, value_repr
from antflow_tui.screens.detail import DetailScreen
from antflow_tui.story import timeline_rows

if TYPE_CHECKING:
    from textual.app import ComposeResult

    from antflow_tui.story import ItemStory


STORY_SECONDS: Final = 0.4
"""How often the item screen re-reads a live item's story."""


class ItemScreen(DetailScreen):
    """Everything about one item; updates live while the item is in flight, and after the
    run has ended too (a retry starts it again).

    Args:
        item_id: The item.
        pipeline: The number of its pipeline (None: the newest pipeline that knows it).
    """

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("r", "retry", "Retry", id="item.retry"),
        Binding("v", "toggle_value", "Full value", id="item.value"),
    ]

    def __init__(self, item_id: Any, pipeline: int | None = None) -> None:
        super().__init__()
        self.item_id = item_id
        self.pipeline = pipeline
        self._full_value = False
        self._shown_key: tuple[Any, ...] | None = None
        self._read_at = 0.0

    def compose(self) -> ComposeResult:
        yield Static(id="item-title", classes="detail-title", markup=False)
        with VerticalScroll(id="item-body", classes="detail-body"):
            yield Static(id="item-facts", classes="detail-section")
            yield Static(id="item-value", classes="detail-section")
            yield Static("Timeline", classes="detail-heading")
            yield Static(id="item-timeline", classes="detail-section")
            yield Static("Tracebacks", classes="detail-heading", id="item-tracebacks-heading")
            yield Static(id="item-tracebacks", classes="detail-section")
        yield Footer()

    def on_mount(self) -> None:
        self.refresh_view()
        self.query_one("#item-body").focus()

    def refresh_view(self, *, force: bool = False) -> None:
        """Called every frame by the app; redraws only when the story moved on.

        Reading the story decodes the item's history and looks for it in the queues, so
        it is read a few times a second, not every frame.
        """
        moment = time.monotonic()
        recent = moment - self._read_at < STORY_SECONDS
        if self._shown_key is not None and recent and not force:
            return
        self._read_at = moment
        story = self.antflow.bridge.story(self.item_id, self.pipeline)
        if self.pipeline is None:
            self.pipeline = story.pipeline if story.known else None
        key = (
            story.status,
            len(story.timeline),
            len(story.errors),
            None if story.location is None else story.location.state,
            story.unfinished,
            story.abandoned,
            story.pipelines,
            self._full_value,
        )
        if key == self._shown_key:
            return
        self._shown_key = key
        self.query_one("#item-title", Static).update(_title(story))
        retry_key = key_for(self.app, "item.retry")
        self.query_one("#item-facts", Static).update(_facts(story, retry_key))
        self.query_one("#item-value", Static).update(_value(story, full=self._full_value))
        self.query_one("#item-timeline", Static).update(_timeline(story))
        self.query_one("#item-tracebacks", Static).update(_tracebacks(story))
        has_errors = bool(story.errors)
        self.query_one("#item-tracebacks-heading").display = has_errors
        self.query_one("#item-tracebacks").display = has_errors

    async def action_retry(self) -> None:
        await self.antflow.retry_items([(self.item_id, self.pipeline)])
        self._shown_key = None
        self.refresh_view()

    def action_toggle_value(self) -> None:
        self._full_value = not self._full_value
        self._shown_key = None
        self.refresh_view()


def _title(story: ItemStory) -> Text:
    title = Text("Item ")
    title.append(item_label(story.item_id, 60), style="bold")
    if story.status:
        title.append("  ")
        title.append(story.status, style=STATUS_STYLES.get(story.status, ""))
        if story.stage:
            title.append(f" in {clean(story.stage, 30)}")
    if story.pipelines > 1:
        title.append(f"  (pipeline {story.pipeline} of {story.pipelines})", style="dim")
    return title


def _facts(story: ItemStory, retry_key: str = "r") -> RenderableType:
    if not story.known:
        if story.evicted:
            return Text(
                "This item's history was evicted: antflow-tui keeps the full history of the "
                "newest completed items only (see --history). Failed and in-flight items are "
                "always kept, and every count stays exact.",
                style="yellow",
            )
        if story.evicted is None:
            return Text(
                f"No history for item {item_label(story.item_id, 60)}: it was never seen, or "
                "it completed and its history was evicted (only the newest completed items "
                "are kept; see --history).",
                style="yellow",
            )
        return Text(
            f"No item with id {item_label(story.item_id, 60)} has been seen by this run.",
            style="yellow",
        )
    lines = Text()
    if story.also_in:
        others = ", ".join(str(number) for number in story.also_in)
        lines.append(
            f"Pipeline {story.pipeline} of {story.pipelines}; an item with this id is also in "
            f"pipeline {others} (open it from that pipeline's error or event rows).\n",
            "dim",
        )
    if story.unfinished:
        lines.append("Unfinished: the run was stopped before this item finished.\n", "magenta")
    if story.abandoned:
        lines.append(
            "Abandoned by the script: it stopped waiting for this item (it left stream() "
            "early, or shut the pipeline down itself).\n",
            "yellow",
        )
    if story.location is not None:
        where = story.location
        lines.append("Now: ", style="dim")
        lines.append(f"{where.state} in {clean(where.stage, 30)}")
        if where.worker:
            lines.append(f" on {clean(where.worker, 30)}")
        lines.append("\n")
    if story.retryable:
        lines.append(
            f"Failed: press {retry_key} to feed it again into the stage where it failed.",
            "yellow",
        )
    return lines


def _value(story: ItemStory, *, full: bool) -> RenderableType:
    location = story.location
    if location is None:
        return Text("Its value is not kept once an item has left the pipeline.", style="dim italic")
    label = Text(f"Value entering {clean(location.stage, 30)}", style="dim")
    label.append("  (v: " + ("shorter" if full else "all of it") + ")", style="dim italic")
    shown = value_repr(location.value, long=full)
    body = Text("\n".join(clean(line) for line in shown.splitlines()) or "''")
    return Group(label, body)


def _timeline(story: ItemStory) -> RenderableType:
    if not story.timeline:
        return Text("No events.", style="dim")
    table = Table(box=None, pad_edge=False, show_header=True, header_style="bold dim")
    for column in ("+time", "Stage", "Event", "Worker", "Details"):
        table.add_column(column, no_wrap=column != "Details")
    for row in timeline_rows(story.timeline):
        table.add_row(*row)
    return table


def _tracebacks(story: ItemStory) -> RenderableType:
    parts: list[RenderableType] = []
    for number, error in enumerate(story.errors, start=1):
        head = Text(f"{number}. ", style="bold")
        head.append(f"{clean(error.task, 40)}", style="bold")
        if error.attempt is not None:
            head.append(f" attempt {error.attempt}")
        head.append(f" in {clean(error.stage, 30)}: ")
        head.append(f"{clean(error.error_type, 40)}", style="bold red")
        head.append(f": {error_message(error.message, 200)}")
        traceback = short_paths_in(error.traceback, os.getcwd(), sysconfig.get_paths()["stdlib"])
        body = Text("\n".join(clean(line) for line in traceback.splitlines()), style="dim")
        parts.extend([head, body, Text()])
    return Group(*parts)
