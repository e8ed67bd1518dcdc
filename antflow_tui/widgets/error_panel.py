"""ErrorPanel: failed items, newest first, or the same failures grouped by error.

Two views of one list: items (each failed item) and groups (failures of one type whose
messages differ only in numbers, ids and URLs, with their count). Opening a group lists its
items (`open_group`); the filter applies to the failures in both views. Either view sorts
by a column (`next_sort`), its heading marked with an arrow.

The groups view also lists, after the failures' groups and marked ↻, the errors of
attempts that were tried again (transient errors: a 429, a reset connection), grouped the
same way; opening one lists those attempts.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Final, Literal

from rich.text import Text

from antflow_tui.error_groups import (
    GROUP_COLUMNS,
    GroupKeys,
    failure_sort_key,
    group_cells,
    group_failures,
    group_sort_key,
    type_counts,
)
from antflow_tui.palette import screen_palette
from antflow_tui.present import (
    ERROR_COLUMNS,
    PIPELINE_COLUMN,
    error_rows,
    failure_facts,
)
from antflow_tui.safe_text import fit_middle
from antflow_tui.sorting import SortOrder
from antflow_tui.widgets.row_list import RowList

REGROUP_LARGE: Final = 5_000
"""Failures past which the groups view regroups a changing list at most..."""
REGROUP_EVERY: Final = 1.0
"""...once in this many seconds (grouping is a pass over every failure)."""

if TYPE_CHECKING:
    from collections.abc import Sequence

    from antflow.runstream.records import ErrorRecord
    from antflow_tui.error_groups import ErrorGroup, GroupKey
    from antflow_tui.filters import Filter

ErrorView = Literal["items", "groups"]

ITEM_SORTS: tuple[tuple[str, str], ...] = (
    ("item", "Item"),
    ("stage", "Stage"),
    ("error", "Error"),
    ("message", "Message"),
    ("tries", "Tries"),
)
"""The item list's sortable columns (unsorted: newest first)."""
_ITEM_KEYS = tuple(key for key, _ in ITEM_SORTS)
_GROUP_KEYS = tuple(key for key, _ in GROUP_COLUMNS)
ASCENDING_FIRST = frozenset({"item", "stage", "error", "message", "stages", "first"})
"""Columns a first sort puts A to Z (or oldest first)."""


class ErrorPanel(RowList):
    """Every failure the run has kept, newest first; rows render only when visible.

    With several pipelines, a first column names the pipeline each item failed in.
    """

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self._all: Sequence[ErrorRecord] = ()
        self._retried: Sequence[ErrorRecord] = ()
        self._matching: Sequence[ErrorRecord] = ()
        self._rows: Sequence[ErrorRecord] = ()
        self._newest_first = True
        self._groups: list[ErrorGroup] = []
        self._group_keys = GroupKeys()
        self._grouped_at = float("-inf")
        self._behind = False
        """A changed list waits for its regrouping (see `REGROUP_EVERY`)."""
        self.clock = time.monotonic
        self.filter: Filter | None = None
        self.pipelines = 1
        """How many pipelines the run has (more than one adds the pipeline column)."""
        self.view: ErrorView = "items"
        self.group: GroupKey | None = None
        """The group whose items the list shows (opened from the groups view)."""
        self.group_retried = False
        """The opened group is one of retried attempts (its rows are attempts, not failed
        items)."""
        self.item_order = SortOrder()
        self.group_order = SortOrder()
        self.started = 0.0
        """Unix time the run started: groups show their times into the run."""
        self.type_counts: dict[str, int] | None = None
        """The shown failures by error type, when a filter or a group narrows them (None:
        every failure is shown; the run's counts apply)."""

    def show(
        self,
        failures: Sequence[ErrorRecord],
        *,
        pipelines: int = 1,
        retried: Sequence[ErrorRecord] = (),
    ) -> None:
        """Show these failures (oldest first, as the engine lists them), and in the groups
        view the `retried` attempts' errors too."""
        same = failures is self._all and retried is self._retried
        if same and pipelines == self.pipelines and not self._behind:
            return  # the same lists: nothing failed or was retried since
        if pipelines != self.pipelines:
            self.pipelines = pipelines
            self._line_cache.clear()
        self._all = failures
        self._retried = retried
        if (
            self.view == "groups"
            and len(self._matching) > REGROUP_LARGE  # the list shown is big already
            and self.clock() - self._grouped_at < REGROUP_EVERY
        ):
            if not self._behind and self.is_mounted:
                # Not left to a later frame: after the run's last one none may come.
                wait = REGROUP_EVERY - (self.clock() - self._grouped_at)
                self.set_timer(max(wait, 0.0), self._catch_up)
            self._behind = True
            return
        self._apply()

    def _catch_up(self) -> None:
        if self._behind:
            self._apply()
            self.refresh()

    def set_filter(self, panel_filter: Filter | None) -> None:
        self.filter = None if panel_filter is None or panel_filter.empty else panel_filter
        self._apply()

    # ---------------------------------------------------------------- views

    def toggle_groups(self) -> ErrorView:
        """Items <-> groups (leaving an opened group)."""
        self.view = "items" if self.view == "groups" else "groups"
        self.group = None
        self.group_retried = False
        self._moved()
        return self.view

    def open_group(self, index: int) -> ErrorGroup | None:
        """List the items of the group on row `index`."""
        group = self.group_at(index)
        if group is not None:
            self.group = group.key
            self.group_retried = group.retried
            self.view = "items"
            self._moved()
        return group

    def close_group(self) -> bool:
        """Back from a group's items to the groups; False when no group was open."""
        if self.group is None:
            return False
        self.group = None
        self.group_retried = False
        self.view = "groups"
        self._moved()
        return True

    def _moved(self) -> None:
        self._line_cache.clear()
        self.cursor = 0
        self._apply()

    # ---------------------------------------------------------------- sorting

    @property
    def order(self) -> SortOrder:
        return self.group_order if self.view == "groups" else self.item_order

    def next_sort(self) -> SortOrder:
        """Sort by the next column of the current view (after the last: unsorted)."""
        if self.view == "groups":
            self.group_order = self.group_order.next(_GROUP_KEYS, ASCENDING_FIRST)
        else:
            self.item_order = self.item_order.next(_ITEM_KEYS, ASCENDING_FIRST)
        self._sorted()
        return self.order

    def reverse_sort(self) -> SortOrder:
        if self.view == "groups":
            self.group_order = self.group_order.reversed()
        else:
            self.item_order = self.item_order.reversed()
        self._sorted()
        return self.order

    def _sorted(self) -> None:
        self._line_cache.clear()
        self._apply()

    # ---------------------------------------------------------------- the rows

    def _apply(self) -> None:
        self._behind = False
        chosen = self.filter
        failures = self._retried if self.group_retried else self._all
        retried: Sequence[ErrorRecord] = self._retried if self.view == "groups" else ()
        if chosen is not None:
            failures = [f for f in failures if chosen.matches(failure_facts(f))]
            retried = [f for f in retried if chosen.matches(failure_facts(f))]
        keys = self._group_keys
        if self.group is not None or self.view == "groups":
            keys.update([*failures, *retried])
        if self.group is not None:
            wanted = self.group
            failures = [f for f in failures if keys(f) == wanted]
        self._matching = failures
        narrowed = chosen is not None or self.group is not None
        self.type_counts = type_counts(failures) if narrowed else None
        if self.view == "groups":
            self._grouped_at = self.clock()
            self._groups = [
                *self._order_groups(group_failures(failures, keys)),
                *self._order_groups(group_failures(retried, keys, retried=True)),
            ]
            self.set_count(len(self._groups))
            return
        self._groups = []
        order = self.item_order
        if order.column is None:
            # The common case costs no copy: rows read the list from its end.
            self._rows = failures
            self._newest_first = order.descending
        else:
            column = order.column
            self._rows = sorted(
                failures,
                key=lambda failure: failure_sort_key(failure, column),
                reverse=order.descending,
            )
            self._newest_first = False
        self.set_count(len(self._rows))

    def _order_groups(self, groups: list[ErrorGroup]) -> list[ErrorGroup]:
        order = self.group_order
        if order.column is None:
            return groups if order.descending else groups[::-1]  # biggest first, or last
        column = order.column
        return sorted(groups, key=lambda g: group_sort_key(g, column), reverse=order.descending)

    @property
    def shown_failures(self) -> Sequence[ErrorRecord]:
        """The failures the panel shows (after its filter and group), oldest first."""
        return self._matching

    @property
    def groups(self) -> Sequence[ErrorGroup]:
        """The groups the panel shows (in the groups view), in their order."""
        return self._groups

    def failure_at(self, index: int) -> ErrorRecord | None:
        """The failure on row `index` (None in the groups view)."""
        if self.view == "groups":
            return None
        rows = self._rows
        position = len(rows) - 1 - index if self._newest_first else index
        return rows[position] if 0 <= position < len(rows) else None

    def group_at(self, index: int) -> ErrorGroup | None:
        """The group on row `index` (None in the items view)."""
        if self.view != "groups":
            return None
        return self._groups[index] if 0 <= index < len(self._groups) else None

    def row_key(self, index: int) -> object:
        group = self.group_at(index)
        if group is not None:
            return (group.key, group.retried, group.count, group.last_seen, group.stages)
        failure = self.failure_at(index)
        if failure is None:
            return None
        # A number is unique in the run (a retried item's new failure has a new one),
        # but 0 stands for "not known" (an error older than a recording's or a server's
        # memory of numbers): the item and time tell those apart.
        return (failure.pipeline, failure.number, failure.item, failure.at)

    def header(self, width: int) -> Text | None:
        order = self.order
        if self.view == "groups":
            titles = [_titled(label, key, order) for key, label in GROUP_COLUMNS]
            return _join_groups([Text(title) for title in titles], width)
        keys = {label: key for key, label in ITEM_SORTS}
        titles = [_titled(label, keys.get(label, ""), order) for label in ERROR_COLUMNS]
        if self.pipelines > 1:
            titles.insert(0, PIPELINE_COLUMN)
        return _join([Text(title) for title in titles], width)

    def render_row(self, index: int, width: int) -> Text:
        palette = screen_palette(self)
        group = self.group_at(index)
        if group is not None:
            return _join_groups(group_cells(group, self.started, palette), width)
        failure = self.failure_at(index)
        if failure is None:
            return Text()
        (row,) = error_rows([failure], pipelines=self.pipelines, palette=palette)
        return _join(list(row.cells), width)


def _titled(label: str, key: str, order: SortOrder) -> str:
    return f"{label}{order.arrow}" if key and order.column == key else label


def _column_widths(width: int, *, pipeline: bool = False) -> tuple[int, ...]:
    """Widths of (Pipe,) Item, Stage, Error, Message, Tries; the message gets what is
    left, and the tries column goes first when the panel is narrow."""
    pipe = 4 if pipeline else 0
    width -= pipe + 1 if pipeline else 0
    # The item id matters most: it is what a person looks for and opens.
    item = max(8, min(18, width * 20 // 100))
    stage = max(6, min(14, width * 14 // 100))
    error = max(10, min(24, width * 22 // 100))
    tries = 6
    message = width - item - stage - error - tries - 4
    if message < 10:
        tries = 0
        message = width - item - stage - error - 3
    widths = (item, stage, error, max(message, 0), tries)
    return (pipe, *widths) if pipeline else widths


def _group_widths(width: int) -> tuple[int, ...]:
    """Widths of Count, Error, Message, Stages, First, Last; the message gets what is
    left, and the times, then the stages, go first when the panel is narrow."""
    count = 6
    error = max(10, min(22, width * 20 // 100))
    stages = max(6, min(16, width * 14 // 100))
    first = last = 8
    message = width - count - error - stages - first - last - 5
    if message < 16:
        first = 0
        message = width - count - error - stages - last - 4
    if message < 16:
        stages = 0
        message = width - count - error - last - 3
    return (count, error, max(message, 0), stages, first, last)


def _join(cells: list[Text], width: int) -> Text:
    """Lay cells out in the panel's columns."""
    pipeline = len(cells) > len(ERROR_COLUMNS)
    message = ERROR_COLUMNS.index("Message") + (1 if pipeline else 0)
    return _lay_out(cells, _column_widths(width, pipeline=pipeline), middle=message)


def _join_groups(cells: list[Text], width: int) -> Text:
    return _lay_out(cells, _group_widths(width), middle=_GROUP_MESSAGE)


_GROUP_MESSAGE: Final = [key for key, _ in GROUP_COLUMNS].index("message")


def _lay_out(cells: list[Text], widths: tuple[int, ...], *, middle: int) -> Text:
    """The cells in their columns; the message (column `middle`) is cut in its middle, so
    the end of a long one (its URL, its id) shows too: v shows it whole."""
    line = Text(no_wrap=True, overflow="ellipsis")
    first = True
    for index, (cell, cell_width) in enumerate(zip(cells, widths, strict=True)):
        if not cell_width:
            continue
        if not first:
            line.append(" ")
        first = False
        piece = fit_middle(cell, cell_width) if index == middle else cell.copy()
        if piece.justify == "right":
            piece.pad_left(max(cell_width - piece.cell_len, 0))
        piece.truncate(cell_width, overflow="ellipsis", pad=True)
        line.append_text(piece)
    return line
