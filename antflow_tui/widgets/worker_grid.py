"""WorkerGrid: one compact cell per worker, grouped by stage, coloured by state.

One widget draws every cell (line API), so a pipeline with hundreds of workers costs the
visible lines per frame, not a widget per worker.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar, Final

from rich.style import Style
from rich.text import Text
from textual.geometry import Size
from textual.message import Message
from textual.reactive import reactive
from textual.scroll_view import ScrollView
from textual.strip import Strip

from antflow_tui.keys import bindings
from antflow_tui.palette import screen_palette
from antflow_tui.present import WorkerCell, natural_cell_width, worker_cell_text, worker_facts
from antflow_tui.safe_text import clean
from antflow_tui.widgets.strips import text_strip

if TYPE_CHECKING:
    from collections.abc import Sequence

    from textual.binding import BindingType

    from antflow_tui.filters import Filter

MIN_CELL_WIDTH: Final = 17
BUSY_REDRAW_SECONDS: Final = 0.25
"""How often the grid redraws while only items and times change."""
MAX_CELL_WIDTH: Final = 48
"""Cells grow up to this to show their status text, then columns shrink in number."""


@dataclass(frozen=True, slots=True)
class _Line:
    """A layout line: a stage heading, or a run of cell indexes."""

    heading: str | None
    cells: tuple[int, ...] = ()


class WorkerGrid(ScrollView, can_focus=True):
    """The worker cells; arrows (or h/j/k/l) move the cursor, enter opens a worker."""

    BINDINGS: ClassVar[list[BindingType]] = bindings("worker-grid")

    DEFAULT_CSS = """
    WorkerGrid {
        overflow-x: hidden;
        overflow-y: auto;
    }
    """

    cursor: reactive[int] = reactive(0, repaint=False)

    class WorkerChosen(Message):
        """Enter was pressed on a worker."""

        def __init__(self, worker: str, pipeline: int = 1) -> None:
            super().__init__()
            self.worker = worker
            self.pipeline = pipeline

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self._cells: Sequence[WorkerCell] = ()
        self._lines: list[_Line] = []
        self._columns = 1
        self._cell_width = MIN_CELL_WIDTH
        self._stages: tuple[str, ...] = ()
        self._stage_summaries: dict[str, str] = {}
        self.filter: Filter | None = None
        self._unfiltered: Sequence[WorkerCell] = ()
        self._wanted_width = MIN_CELL_WIDTH
        self._looks: list[str] = []
        self._laid_out_width = 0
        self._drawn_at = float("-inf")

    def set_filter(self, grid_filter: Filter | None) -> None:
        self.filter = None if grid_filter is None or grid_filter.empty else grid_filter
        self.show(self._unfiltered, self._stage_summaries, force=True)

    def show(
        self, cells: Sequence[WorkerCell], summaries: dict[str, str], *, force: bool = False
    ) -> None:
        """Show these cells (in stage order); `summaries` heads each stage's group.

        While only items and times change, the grid redraws at most every
        `BUSY_REDRAW_SECONDS` (items flicking by faster cannot be read); a worker changing
        its state (busy, paused, stuck...) shows at once.
        """
        looks: list[str] = [cell.look for cell in cells]
        moment = time.monotonic()
        recent = moment - self._drawn_at < BUSY_REDRAW_SECONDS
        if not force and recent and looks == self._looks:
            self._unfiltered = cells
            return
        self._looks = looks
        self._drawn_at = moment
        self._unfiltered = cells
        if self.filter is not None:
            chosen = self.filter
            cells = [cell for cell in cells if chosen.matches(worker_facts(cell))]
        stages = tuple(dict.fromkeys(cell.heading for cell in cells))
        names_before = [cell.name for cell in self._cells]
        wanted = max((natural_cell_width(cell) for cell in cells), default=MIN_CELL_WIDTH)
        self._wanted_width = min(max(wanted, MIN_CELL_WIDTH), MAX_CELL_WIDTH)
        relayout = (
            stages != self._stages
            or [cell.name for cell in cells] != names_before
            or self._columns != self._fit_columns()
            # A scrollbar that came or went changes the width without a resize event.
            or self._laid_out_width != self.scrollable_content_region.width
        )
        self._cells = cells
        self._stage_summaries = summaries
        self._stages = stages
        if relayout:
            self._layout()
        if self.cursor >= len(cells):
            self.cursor = max(len(cells) - 1, 0)
        self.refresh()

    @property
    def selected(self) -> WorkerCell | None:
        return self._cells[self.cursor] if 0 <= self.cursor < len(self._cells) else None

    def _fit_columns(self) -> int:
        width = max(self.scrollable_content_region.width, 1)
        return max(1, (width + 1) // (self._wanted_width + 1))

    def _layout(self) -> None:
        width = max(self.scrollable_content_region.width, 1)
        self._columns = self._fit_columns()
        self._cell_width = max((width - (self._columns - 1)) // self._columns, 8)
        lines: list[_Line] = []
        index = 0
        for stage in self._stages:
            lines.append(_Line(heading=stage))
            members = [i for i in range(index, len(self._cells)) if self._cells[i].heading == stage]
            lines.extend(
                _Line(None, tuple(members[start : start + self._columns]))
                for start in range(0, len(members), self._columns)
            )
            index += len(members)
        self._lines = lines
        self._laid_out_width = width
        self.virtual_size = Size(width, len(lines))

    def on_resize(self) -> None:
        self._layout()
        self.refresh()

    def render_line(self, y: int) -> Strip:
        width = self.scrollable_content_region.width
        base = self.rich_style
        index = self.scroll_offset.y + y
        if index >= len(self._lines):
            return Strip.blank(width, base)
        line = self._lines[index]
        palette = screen_palette(self)
        if line.heading is not None:
            text = Text(clean(line.heading, 40), style=palette("stage") + Style(bold=True))
            summary = self._stage_summaries.get(line.heading)
            if summary:
                text.append(f"  {summary}", style="dim")
        else:
            text = Text(no_wrap=True)
            for position, cell_index in enumerate(line.cells):
                if position:
                    text.append(" ")
                chosen = cell_index == self.cursor and self.has_focus
                text.append_text(
                    worker_cell_text(
                        self._cells[cell_index], self._cell_width, selected=chosen, palette=palette
                    )
                )
        return text_strip(text, width, base, self.app.console)

    # ---------------------------------------------------------------- cursor

    def _line_of(self, cell_index: int) -> int:
        for number, line in enumerate(self._lines):
            if cell_index in line.cells:
                return number
        return 0

    def watch_cursor(self) -> None:
        line = self._line_of(self.cursor)
        top = self.scroll_offset.y
        height = max(self.scrollable_content_region.height, 1)
        if line - 1 < top:
            self.scroll_to(y=max(line - 1, 0), animate=False, immediate=True)
        elif line >= top + height:
            self.scroll_to(y=line - height + 1, animate=False, immediate=True)
        self.refresh()

    def action_move(self, dx: int, dy: int) -> None:
        if not self._cells:
            return
        if dx:
            self.cursor = min(max(self.cursor + dx, 0), len(self._cells) - 1)
            return
        line_number = self._line_of(self.cursor)
        column = self._lines[line_number].cells.index(self.cursor)
        step = 1 if dy > 0 else -1
        number = line_number + step
        while 0 <= number < len(self._lines):
            cells = self._lines[number].cells
            if cells:
                self.cursor = cells[min(column, len(cells) - 1)]
                return
            number += step

    def action_page(self, direction: int) -> None:
        rows = max(self.scrollable_content_region.height - 1, 1)
        self.cursor = min(
            max(self.cursor + direction * rows * self._columns, 0), max(len(self._cells) - 1, 0)
        )

    def action_first(self) -> None:
        self.cursor = 0

    def action_last(self) -> None:
        self.cursor = max(len(self._cells) - 1, 0)

    def action_choose(self) -> None:
        cell = self.selected
        if cell is not None:
            self.post_message(self.WorkerChosen(cell.name, cell.pipeline))

    def on_focus(self) -> None:
        self.refresh()

    def on_blur(self) -> None:
        self.refresh()
