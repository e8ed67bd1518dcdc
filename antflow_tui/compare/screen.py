"""CompareScreen (``antflow-tui compare A B``): two runs side by side, and the items whose
outcome or time changed, one row each (built only when on screen: a million newly failed
items cost what the screen shows)."""

from __future__ import annotations

from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar, Final

from rich.console import Group
from rich.text import Text
from textual import on
from textual.containers import VerticalScroll
from textual.screen import Screen
from textual.widgets import Footer, Static

from antflow.runstream.itemdiff import CHANGE_KINDS
from antflow_tui.compare.present import (
    KIND_ROLES,
    KIND_WORDS,
    errors_table,
    item_header,
    item_row,
    items_heading,
    made_text,
    notes_text,
    run_line,
    stages_table,
    totals_table,
    usage_table,
)
from antflow_tui.keys import bindings
from antflow_tui.palette import COMPONENT_CLASSES, Palette, palette_of
from antflow_tui.screens.path_prompt import PathPrompt
from antflow_tui.widgets.row_list import RowList

if TYPE_CHECKING:
    from collections.abc import Callable

    from rich.console import RenderableType
    from textual.app import ComposeResult
    from textual.binding import BindingType

    from antflow.runstream.compare import Comparison
    from antflow.runstream.itemdiff import ChangeKind, ItemChange, ItemChanges

WRITE_GROUP: Final = "compare-write"
"""The worker group of a file of newly failed items being written (quit waits for it)."""
SHOWN_KINDS: Final[tuple[tuple[ChangeKind, ...], ...]] = (
    CHANGE_KINDS,
    *((kind,) for kind in CHANGE_KINDS),
)
"""What `f` steps through: every change, then one kind at a time."""


class ComparedItems(RowList):
    """The items of the kinds shown, kind by kind, in the order the comparison lists them."""

    BINDINGS: ClassVar[list[BindingType]] = bindings("compare-list")

    def __init__(self, items: ItemChanges, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.items = items
        self.kinds: tuple[ChangeKind, ...] = CHANGE_KINDS

    def on_mount(self) -> None:
        self.show(CHANGE_KINDS)

    def show(self, kinds: tuple[ChangeKind, ...]) -> None:
        """Show the items of these kinds only."""
        self.kinds = kinds
        self._line_cache.clear()
        self.cursor = 0
        self.scroll_home(animate=False)
        self.set_count(sum(self.items.count(kind) for kind in kinds))

    def at(self, index: int) -> ItemChange | None:
        """The row's item (None past the last)."""
        for kind in self.kinds:
            count = self.items.count(kind)
            if index < count:
                return self.items.row(kind, index)
            index -= count
        return None

    def header(self, width: int) -> Text | None:
        return item_header(width)

    def row_key(self, index: int) -> object:
        return (self.kinds, index)

    def render_row(self, index: int, width: int) -> Text:
        change = self.at(index)
        if change is None:
            return Text()
        palette = self.screen.palette if isinstance(self.screen, CompareScreen) else None
        return item_row(change, width) if palette is None else item_row(change, width, palette)


class CompareScreen(Screen[None]):
    """Run A against run B: totals, stages, usage, errors, how they were made (above),
    and the items that changed (below); enter opens an item's story in both runs.

    Args:
        comparison: What `antflow.runstream.compare.compare` found.
        open_item: Opens an item's story in both runs.
        write_failed: Writes the newly failed items to a path; returns the lines to say.
        write_in_thread: Write off the UI thread (B's recording is read again: ~1.4 s at
            a million items), in the worker group `WRITE_GROUP`.
    """

    BINDINGS: ClassVar[list[BindingType]] = bindings("compare")
    COMPONENT_CLASSES: ClassVar[set[str]] = set(COMPONENT_CLASSES)

    def __init__(
        self,
        comparison: Comparison,
        *,
        open_item: Callable[[ItemChange], None],
        write_failed: Callable[[Path], list[str]],
        write_in_thread: bool = False,
    ) -> None:
        super().__init__(classes="compare")
        self.comparison = comparison
        self._open_item = open_item
        self._write_failed = write_failed
        self._write_in_thread = write_in_thread
        self._overwrite: Path | None = None
        """The existing file the user was asked about (entered again: written over)."""
        self.changed_only = False
        """Totals and stages that did not change are left out (`d`)."""
        self._palette: Palette | None = None

    @property
    def palette(self) -> Palette:
        """The data colours of the current theme."""
        if self._palette is None:
            self._palette = palette_of(self)
        return self._palette

    def notify_style_update(self) -> None:
        super().notify_style_update()
        self._palette = None

    def compose(self) -> ComposeResult:
        yield Static(id="compare-runs", classes="detail-title")
        with VerticalScroll(id="compare-summary", classes="detail-body"):
            yield Static(id="compare-totals", classes="detail-section")
            yield Static("Stages", classes="detail-heading")
            yield Static(id="compare-stages", classes="detail-section")
            yield Static("Cost and tokens", classes="detail-heading", id="compare-usage-heading")
            yield Static(id="compare-usage", classes="detail-section")
            yield Static("Errors", classes="detail-heading")
            yield Static(id="compare-errors", classes="detail-section")
            yield Static("How the runs were made (differences only)", classes="detail-heading")
            yield Static(id="compare-made", classes="detail-section")
        yield Static(id="compare-items-heading")
        yield ComparedItems(self.comparison.items, id="compare-items")
        yield Footer()

    def on_mount(self) -> None:
        self.draw()
        self.query_one(ComparedItems).focus()

    def draw(self) -> None:
        """Draw every section from the comparison (and the choices made with keys)."""
        comparison, palette = self.comparison, self.palette
        heading: list[RenderableType] = [
            run_line("A", comparison.a, palette),
            run_line("B", comparison.b, palette),
        ]
        notes = notes_text(comparison, palette)
        if notes is not None:
            heading.append(notes)
        self.query_one("#compare-runs", Static).update(Group(*heading))
        changed = self.changed_only
        self.query_one("#compare-totals", Static).update(
            totals_table(comparison, changed_only=changed, palette=palette)
        )
        self.query_one("#compare-stages", Static).update(
            stages_table(comparison, changed_only=changed, palette=palette)
        )
        usage = usage_table(comparison, palette)
        self.query_one("#compare-usage-heading").display = usage is not None
        self.query_one("#compare-usage").display = usage is not None
        if usage is not None:
            self.query_one("#compare-usage", Static).update(usage)
        self.query_one("#compare-errors", Static).update(errors_table(comparison, palette))
        self.query_one("#compare-made", Static).update(made_text(comparison, palette))
        self._draw_items_heading()

    def _draw_items_heading(self) -> None:
        line = items_heading(self.comparison, self.palette)
        kinds = self.query_one(ComparedItems).kinds
        if kinds != CHANGE_KINDS:
            line.append("   showing: ", style="dim")
            for kind in kinds:
                line.append(KIND_WORDS[kind], style=self.palette(KIND_ROLES[kind]))
        self.query_one("#compare-items-heading", Static).update(line)

    # ---------------------------------------------------------------- keys

    def action_next_kind(self) -> None:
        """Show the next kind of change (all, fixed, newly failed, still failing, slow)."""
        items = self.query_one(ComparedItems)
        position = SHOWN_KINDS.index(items.kinds) if items.kinds in SHOWN_KINDS else 0
        items.show(SHOWN_KINDS[(position + 1) % len(SHOWN_KINDS)])
        self._draw_items_heading()

    def action_toggle_changed(self) -> None:
        """Leave out the totals and stages that did not change, or show them again."""
        self.changed_only = not self.changed_only
        self.draw()

    @on(RowList.Chosen)
    def _chosen(self, event: RowList.Chosen) -> None:
        event.stop()
        change = self.query_one(ComparedItems).at(event.index)
        if change is not None:
            self._open_item(change)

    def action_write_failed(self) -> None:
        """Ask where to write the newly failed items (for --retry-from), then write them."""
        count = self.comparison.items.count("newly_failed")
        if not count:
            self.notify("No item failed newly in B: nothing to write.", timeout=4, markup=False)
            return
        b = self.comparison.b
        name = f"newly-failed-{b.run_id or Path(b.path).stem}.jsonl"
        self._overwrite = None
        self.app.push_screen(WriteFailedScreen((Path.cwd() / name).resolve(), count), self._chose)

    def _chose(self, path: Path | None) -> None:
        if path is None:
            return
        count = self.comparison.items.count("newly_failed")
        if path.exists() and not path.is_dir() and path != self._overwrite:
            self._overwrite = path
            message = f"{path} exists: enter again writes over it, or type another name."
            self.app.push_screen(WriteFailedScreen(path, count, error=message), self._chose)
            return
        if not self._write_in_thread:
            self._write(path)
            return
        self.notify(f"Writing {count:,} newly failed items to {path}…", timeout=4, markup=False)
        self.run_worker(
            partial(self._write, path, in_thread=True),
            thread=True,
            group=WRITE_GROUP,
            exclusive=True,
        )

    def _write(self, path: Path, *, in_thread: bool = False) -> None:
        """Write the file and say what it holds (or ask again, saying why it failed)."""
        count = self.comparison.items.count("newly_failed")

        def then(call: Callable[..., object], *args: object, **kwargs: object) -> None:
            if in_thread:
                self.app.call_from_thread(call, *args, **kwargs)
            else:
                call(*args, **kwargs)

        try:
            lines = self._write_failed(path)
        except OSError as error:
            reason = error.strerror or str(error)
            screen = WriteFailedScreen(path, count, error=f"Could not write {path}: {reason}")
            then(self.app.push_screen, screen, self._chose)
            return
        then(self.notify, "\n".join(lines), timeout=12, markup=False)


class WriteFailedScreen(PathPrompt):
    """Ask where to write the newly failed items; dismisses with the path (None: cancelled).

    Args:
        proposed: The path shown first.
        count: How many items will be written.
        error: Why the last attempt failed, shown above the path.
    """

    BINDINGS: ClassVar[list[BindingType]] = bindings("compare-write")
    TITLE_TEXT = "Newly failed items"
    ID_PREFIX = "write"

    def __init__(self, proposed: Path, count: int, *, error: str | None = None) -> None:
        super().__init__(proposed, error=error)
        self._count = count

    def prompt(self) -> str:
        return (
            f"Write the {self._count:,} newly failed items as a file --retry-from reads, "
            "to (enter writes, esc cancels):"
        )
