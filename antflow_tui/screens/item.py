"""ItemScreen: one item's whole story: status, value, timeline, and every traceback."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar, Final

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text
from textual.app import SuspendNotSupported
from textual.containers import VerticalScroll
from textual.widgets import Footer, Static

from antflow_tui.editor import EditorError, editor_command, run_suspended
from antflow_tui.gauges import usage_words
from antflow_tui.keys import bindings, key_for, needs
from antflow_tui.messages import RetryRequested
from antflow_tui.palette import DEFAULT, Palette
from antflow_tui.present import error_message
from antflow_tui.safe_text import clean, item_label
from antflow_tui.screens.detail import DetailScreen
from antflow_tui.source.base import ANY_ITEM, Can
from antflow_tui.source.state import short_type
from antflow_tui.story import timeline_rows
from antflow_tui.tracebacks import Fold, Frame, folded, last_own_frame, parse, traceback_text

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, Mapping

    from textual.app import ComposeResult
    from textual.binding import BindingType

    from antflow.runstream.records import ItemDetail, ItemKey
    from antflow_tui.source.base import RunSource
    from antflow_tui.source.state import RunState


STORY_SECONDS: Final = 0.4
"""How often the item screen asks again for a live item's story."""
SHORT_VALUE: Final = 300
"""Characters of a value shown until `v` asks for all of it."""


class ItemScreen(DetailScreen):
    """Everything about one item; updates live while the item is in flight, and after the
    run has ended too (a retry starts it again).

    Args:
        pipeline: The number of its pipeline (`ANY_ITEM`: the newest pipeline that knows
            it).
        item: The item's id, as the run's records carry it.
    """

    BINDINGS: ClassVar[list[BindingType]] = bindings("item")
    NEEDS: ClassVar[Mapping[str, Can]] = {**DetailScreen.NEEDS, **needs("item")}
    TRACEBACK_ACTIONS: ClassVar[frozenset[str]] = frozenset(
        {"toggle_frames", "copy_traceback", "open_editor"}
    )

    def __init__(self, source: RunSource, state: RunState, pipeline: int, item: ItemKey) -> None:
        super().__init__(source, state)
        self.item = item
        self.pipeline = pipeline
        self.detail: ItemDetail | None = None
        """The story last read (None until the first arrives)."""
        self._full_value = False
        self.unfolded = False
        """Library frames are shown in full (not folded)."""
        self._folds = False
        self.launch: Callable[[list[str]], Awaitable[int]] | None = None
        """Runs the editor's command (None: in the terminal, the app suspended)."""
        self._shown_key: tuple[object, ...] | None = None
        self._read_at = float("-inf")
        self._reading = False

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
        self.query_one("#item-title", Static).update(Text(f"Item {item_label(self.item, 60)}"))
        self.refresh_view(force=True)
        self.query_one("#item-body").focus()

    def refresh_view(self, *, force: bool = False) -> None:
        """Called every frame by the app: asks for the story again a few times a second
        (it costs a lookup of the item's history and queues), at once when `force`d."""
        moment = time.monotonic()
        if self._reading or (not force and moment - self._read_at < STORY_SECONDS):
            return
        self._read_at = moment
        self._reading = True
        self.run_worker(self._read(), group="item-story", exit_on_error=False)

    async def _read(self) -> None:
        try:
            detail = await self.source.item(self.pipeline, self.item)
        finally:
            self._reading = False
        if self.pipeline == ANY_ITEM and detail.known:
            self.pipeline = detail.pipeline
        self.show_detail(detail)

    def show_detail(self, detail: ItemDetail) -> None:
        """Draw `detail` (only what changed since the last one)."""
        self.detail = detail
        pipelines = len(self.state.pipelines)
        key = (
            detail.status,
            len(detail.events),
            len(detail.errors),
            None if detail.location is None else detail.location.state,
            detail.abandoned,
            detail.also_in,
            detail.usage,
            pipelines,
            self._full_value,
            self.unfolded,
            self.palette,
        )
        if key == self._shown_key:
            return
        self._shown_key = key
        palette = self.palette
        retry_key = key_for(self.app, "item.retry") if self.source.can(Can.RETRY) else None
        self.query_one("#item-title", Static).update(_title(detail, pipelines, palette))
        self.query_one("#item-facts", Static).update(_facts(detail, pipelines, retry_key))
        value_key = key_for(self.app, "item.value")
        self.query_one("#item-value", Static).update(
            _value(detail, full=self._full_value, key=value_key, values=self.source.can(Can.VALUES))
        )
        self.query_one("#item-timeline", Static).update(_timeline(detail, palette))
        unfold_key = key_for(self.app, "item.frames")
        self.query_one("#item-tracebacks", Static).update(
            _tracebacks(detail, palette, unfolded=self.unfolded, unfold_key=unfold_key)
        )
        has_errors = bool(detail.errors)
        self._folds = _has_folds(detail)
        self.query_one("#item-tracebacks-heading").display = has_errors
        self.query_one("#item-tracebacks").display = has_errors
        self.refresh_bindings()  # the traceback keys come with the first traceback

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "toggle_frames":
            return self._folds
        if action in self.TRACEBACK_ACTIONS:
            return self.detail is not None and bool(self.detail.errors)
        return super().check_action(action, parameters)

    def action_toggle_frames(self) -> None:
        """Show library frames in full, or folded again."""
        self.unfolded = not self.unfolded
        if self.detail is not None:
            self.show_detail(self.detail)

    def action_copy_traceback(self) -> None:
        """Copy the last attempt's traceback (as it was written) to the clipboard."""
        if self.detail is None or not self.detail.errors:
            return
        error = self.detail.errors[-1]
        self.app.copy_to_clipboard(error.traceback)
        lines = len(error.traceback.splitlines())
        self.notify(
            f"Copied the traceback of attempt {error.attempt} ({lines} lines) to the clipboard.",
            timeout=3,
            markup=False,
        )

    async def action_open_editor(self) -> None:
        """Open the user's code in their editor at the frame nearest the last error."""
        frame = self.editor_frame()
        if frame is None:
            self.notify(
                "None of this item's tracebacks goes through your own code.",
                timeout=4,
                markup=False,
            )
            return
        if not _on_this_machine(frame.path):
            self.notify(
                f"{clean(frame.path, 120)} is not on this machine.",
                severity="warning",
                timeout=4,
                markup=False,
            )
            return
        try:
            command = editor_command(frame.path, frame.line, os.environ)
            if self.launch is not None:
                await self.launch(command)
            else:
                await run_suspended(self.app, command)
        except EditorError as error:
            self.notify(str(error), severity="error", timeout=5, markup=False)
        except SuspendNotSupported:
            self.notify(
                "The editor opens only in a terminal: this app is not running in one.",
                severity="warning",
                timeout=5,
                markup=False,
            )
        except OSError as error:
            self.notify(
                f"Could not run the editor {clean(command[0], 60)!r} ({error.strerror}): set "
                "$EDITOR.",
                severity="error",
                timeout=5,
                markup=False,
            )

    def editor_frame(self) -> Frame | None:
        """The user's frame the editor opens: the last one of the latest traceback that
        has one."""
        if self.detail is None:
            return None
        for error in reversed(self.detail.errors):
            frame = last_own_frame(folded(parse(error.traceback)))
            if frame is not None:
                return frame
        return None

    def action_retry(self) -> None:
        pipeline = self.pipeline if self.detail is None else self.detail.pipeline
        self.post_message(RetryRequested(((pipeline, self.item),)))
        self._shown_key = None
        self.refresh_view(force=True)

    def action_toggle_value(self) -> None:
        self._full_value = not self._full_value
        self._shown_key = None
        if self.detail is not None:
            self.show_detail(self.detail)


def _has_folds(detail: ItemDetail) -> bool:
    """Whether a traceback of the item has library frames to fold."""
    return any(
        isinstance(piece, Fold)
        for error in detail.errors
        for piece in folded(parse(error.traceback))
    )


def _on_this_machine(path: str) -> bool:
    """Whether a traceback's file is here (a recording or a served job may come from
    another machine)."""
    return Path(path).is_file()


def _title(detail: ItemDetail, pipelines: int, palette: Palette = DEFAULT) -> Text:
    title = Text("Item ")
    title.append(item_label(detail.item, 60), style="bold")
    if detail.status:
        title.append("  ")
        title.append(detail.status, style=palette.status(detail.status))
        if detail.stage:
            title.append(f" in {clean(detail.stage, 30)}")
    if pipelines > 1:
        title.append(f"  (pipeline {detail.pipeline} of {pipelines})", style="dim")
    return title


def _facts(detail: ItemDetail, pipelines: int, retry_key: str | None = "r") -> RenderableType:
    if not detail.known:
        if detail.evicted:
            return Text(
                "This item's history was evicted: antflow-tui keeps the full history of the "
                "newest completed items only (see --item-history). Failed and in-flight items are "
                "always kept, and every count stays exact.",
                style="yellow",
            )
        if detail.evicted is None:
            return Text(
                f"No history for item {item_label(detail.item, 60)}: it was never seen, or "
                "it completed and its history was evicted (only the newest completed items "
                "are kept; see --item-history).",
                style="yellow",
            )
        return Text(
            f"No item with id {item_label(detail.item, 60)} has been seen by this run.",
            style="yellow",
        )
    lines = Text()
    if detail.also_in:
        others = ", ".join(str(number) for number in detail.also_in)
        lines.append(
            f"Pipeline {detail.pipeline} of {pipelines}; an item with this id is also in "
            f"pipeline {others} (open it from that pipeline's error or event rows).\n",
            "dim",
        )
    if detail.status == "unfinished" and not detail.abandoned:
        lines.append("Unfinished: the run was stopped before this item finished.\n", "magenta")
    if detail.abandoned:
        lines.append(
            "Abandoned by the script: it stopped waiting for this item (it left stream() "
            "early, or shut the pipeline down itself).\n",
            "yellow",
        )
    if detail.location is not None:
        where = detail.location
        lines.append("Now: ", style="dim")
        lines.append(f"{where.state} in {clean(where.stage, 30)}")
        if where.worker:
            lines.append(f" on {clean(where.worker, 30)}")
        lines.append("\n")
    if detail.usage is not None:
        # What its tasks reported with set_task_usage, every stage and attempt added up.
        lines.append("Usage: ", style="dim")
        lines.append(f"{usage_words(detail.usage)}\n")
    if detail.retryable and retry_key is not None:
        lines.append(
            f"Failed: press {retry_key} to feed it again into the stage where it failed.",
            "yellow",
        )
    return lines


def _value(
    detail: ItemDetail, *, full: bool, key: str = "v", values: bool = True
) -> RenderableType:
    location = detail.location
    if location is None:
        if not detail.known:
            return Text("")  # nothing seen of it: no value to speak of
        return Text("Its value is not kept once an item has left the pipeline.", style="dim italic")
    if location.value is None:
        # Values come with a recording made with them, or a job served with them.
        what = "not kept" if values else "not included in this run's records (--record-values)"
        return Text(f"Value entering {clean(location.stage, 30)}: {what}.", style="dim italic")
    label = Text(f"Value entering {clean(location.stage, 30)}", style="dim")
    shown = location.value
    if len(shown) > SHORT_VALUE:
        label.append(f"  ({key}: " + ("shorter" if full else "all of it") + ")", style="dim italic")
        if not full:
            shown = shown[: SHORT_VALUE - 1] + "…"
    body = Text("\n".join(clean(line) for line in shown.splitlines()) or "''")
    return Group(label, body)


def _timeline(detail: ItemDetail, palette: Palette = DEFAULT) -> RenderableType:
    if not detail.events:
        return Text("No events.", style="dim")
    table = Table(box=None, pad_edge=False, show_header=True, header_style="bold dim")
    for column in ("+time", "Stage", "Event", "Worker", "Details"):
        table.add_column(column, no_wrap=column != "Details")
    errors = {error.number: error for error in detail.errors}
    for row in timeline_rows(detail.events, errors, palette):
        table.add_row(*row)
    return table


def _tracebacks(
    detail: ItemDetail,
    palette: Palette = DEFAULT,
    *,
    unfolded: bool = False,
    unfold_key: str = "enter",
) -> RenderableType:
    parts: list[RenderableType] = []
    for number, error in enumerate(detail.errors, start=1):
        head = Text(f"{number}. ", style="bold")
        head.append(f"{clean(error.task or 'skip_if', 40)}", style="bold")
        head.append(f" attempt {error.attempt}")
        head.append(f" in {clean(error.stage, 30)}: ")
        head.append(f"{clean(short_type(error.type), 40)}", style=palette.status("failed"))
        head.append(f": {error_message(error.message, 200)}")
        body = traceback_text(
            error.traceback,
            unfolded=unfolded,
            palette=palette,
            cwd=os.getcwd(),
            unfold_key=unfold_key,
        )
        parts.extend([head, body, Text()])
    return Group(*parts)
