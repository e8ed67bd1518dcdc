"""CompareItemScreen: one item's story in run A and in run B, side by side (or one after
the other, `s`): how it ended, its timeline and its tracebacks in each."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, ClassVar

from rich.console import Group
from rich.table import Table
from rich.text import Text
from textual.containers import Horizontal, VerticalScroll
from textual.screen import Screen
from textual.widgets import Footer, Static

from antflow_tui.compare.present import KIND_ROLES, KIND_WORDS, end_text, run_line, seconds_text
from antflow_tui.gauges import usage_words
from antflow_tui.keys import bindings
from antflow_tui.palette import COMPONENT_CLASSES, DEFAULT, Palette, palette_of
from antflow_tui.present import error_message
from antflow_tui.safe_text import clean, item_label
from antflow_tui.source.state import short_type
from antflow_tui.story import timeline_rows
from antflow_tui.tracebacks import traceback_text

if TYPE_CHECKING:
    from collections.abc import Callable

    from rich.console import RenderableType
    from textual.app import ComposeResult
    from textual.binding import BindingType

    from antflow.runstream.itemdiff import ItemChange, ItemEnd
    from antflow.runstream.records import ItemDetail
    from antflow.runstream.runsummary import RunSummary

SIDE_BY_SIDE_WIDTH = 120
"""Narrower terminals show the two stories one after the other."""


class CompareItemScreen(Screen[None]):
    """An item in both runs.

    Args:
        change: The item and how it ended in each run.
        runs: Run A's and run B's summaries (their names on the panes).
        read: Reads the item's story in run ``"a"`` or ``"b"`` (a scan of its recording:
            called on a worker thread); None when that run has no such item.
    """

    BINDINGS: ClassVar[list[BindingType]] = bindings("compare-item")
    COMPONENT_CLASSES: ClassVar[set[str]] = set(COMPONENT_CLASSES)

    def __init__(
        self,
        change: ItemChange,
        runs: tuple[RunSummary, RunSummary],
        read: Callable[[str], ItemDetail | None],
    ) -> None:
        super().__init__(classes="compare-item")
        self.change = change
        self.runs = runs
        self._read = read
        self.stories: dict[str, ItemDetail | None] = {}
        """The stories read so far, by run (``a``, ``b``)."""
        self._palette: Palette | None = None

    @property
    def palette(self) -> Palette:
        if self._palette is None:
            self._palette = palette_of(self)
        return self._palette

    def compose(self) -> ComposeResult:
        yield Static(id="compare-item-title", classes="detail-title")
        with Horizontal(id="compare-item-panes"):
            for side in ("a", "b"):
                with VerticalScroll(id=f"compare-item-{side}", classes="compare-item-pane"):
                    yield Static(id=f"compare-item-{side}-story")
        yield Footer()

    def on_mount(self) -> None:
        self.set_class(self.app.size.width < SIDE_BY_SIDE_WIDTH, "-stacked")
        change = self.change
        title = Text(f"Item {item_label(change.item, 60)}  ", style="bold")
        title.append(KIND_WORDS[change.kind], style=self.palette(KIND_ROLES[change.kind]))
        if change.pipeline != 1:
            title.append(f"  (pipeline {change.pipeline})", style="dim")
        self.query_one("#compare-item-title", Static).update(title)
        for side in ("a", "b"):
            self._draw(side)
        self.query_one("#compare-item-a").focus()
        self.run_worker(self._read_both, thread=True, group="compare-item", exit_on_error=False)

    def _read_both(self) -> None:
        for side in ("a", "b"):
            story = self._read(side)
            self.app.call_from_thread(self._arrived, side, story)

    def _arrived(self, side: str, story: ItemDetail | None) -> None:
        self.stories[side] = story
        self._draw(side)

    def _draw(self, side: str) -> None:
        run = self.runs[0] if side == "a" else self.runs[1]
        end = self.change.a if side == "a" else self.change.b
        pane = story_pane(
            side.upper(),
            run,
            end,
            self.stories.get(side),
            read=side in self.stories,
            palette=self.palette,
        )
        self.query_one(f"#compare-item-{side}-story", Static).update(pane)

    def action_toggle_layout(self) -> None:
        """Side by side, or one after the other."""
        self.toggle_class("-stacked")

    def action_scroll(self, lines: int) -> None:
        focused = self.focused
        if isinstance(focused, VerticalScroll):
            focused.scroll_relative(y=lines, animate=False)


def story_pane(
    label: str,
    run: RunSummary,
    end: ItemEnd,
    story: ItemDetail | None,
    *,
    read: bool,
    palette: Palette = DEFAULT,
) -> RenderableType:
    """One run's side: the run, how the item ended, its timeline and tracebacks."""
    parts: list[RenderableType] = [run_line(label, run, palette), end_text(end, palette)]
    if end.seconds is not None:
        parts.append(Text(f"Task time: {seconds_text(end.seconds)}", style="dim"))
    if not read:
        parts.append(Text("Reading its story…", style="dim italic"))
        return Group(*parts)
    if story is None or not story.known:
        parts.append(Text(f"Run {label} has no item with this id.", style="dim italic"))
        return Group(*parts)
    if story.usage is not None:
        parts.append(Text(f"Usage: {usage_words(story.usage)}"))
    parts.append(Text())
    parts.append(Text("Timeline", style="bold"))
    table = Table(box=None, pad_edge=False, show_header=True, header_style="bold dim")
    for column in ("+time", "Stage", "Event", "Worker", "Details"):
        table.add_column(column, no_wrap=column != "Details")
    errors = {error.number: error for error in story.errors}
    for row in timeline_rows(story.events, errors, palette):
        table.add_row(*row)
    parts.append(table)
    if story.errors:
        parts.append(Text())
        parts.append(Text("Tracebacks", style="bold"))
    for number, error in enumerate(story.errors, start=1):
        head = Text(f"{number}. ", style="bold")
        head.append(f"{clean(error.task or 'skip_if', 40)} attempt {error.attempt}", style="bold")
        head.append(f" in {clean(error.stage, 30)}: ")
        head.append(clean(short_type(error.type), 40), style=palette.status("failed"))
        head.append(f": {error_message(error.message, 200)}")
        parts.append(head)
        parts.append(traceback_text(error.traceback, palette=palette, cwd=os.getcwd()))
    return Group(*parts)
