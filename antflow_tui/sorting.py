"""Sort orders of the tables (htop's F6): which column, which way, and the arrow that says
so in the column's heading."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

if TYPE_CHECKING:
    from collections.abc import Collection, Sequence

DOWN: Final = "▼"
"""Biggest (or latest, or Z) first."""
UP: Final = "▲"


@dataclass(frozen=True, slots=True)
class SortOrder:
    """A table's order: by `column` (None: the table's natural order), which way."""

    column: str | None = None
    descending: bool = True
    """Biggest, latest or Z first; for the natural order (no column), False reverses it."""

    def next(self, columns: Sequence[str], ascending_first: Collection[str] = ()) -> SortOrder:
        """The next column of `columns` (after the last: the natural order again).

        Args:
            ascending_first: Columns a first sort puts A to Z (names); the others go
                biggest first.
        """
        if not columns:
            return SortOrder()
        if self.column not in columns:
            following = columns[0]
        else:
            position = columns.index(self.column) + 1
            if position == len(columns):
                return SortOrder()
            following = columns[position]
        return SortOrder(following, following not in ascending_first)

    def reversed(self) -> SortOrder:
        """The other way round (the natural order too: `descending` False reverses it)."""
        return SortOrder(self.column, not self.descending)

    @property
    def arrow(self) -> str:
        return DOWN if self.descending else UP


def heading_with_arrow(label: str, column: str, order: SortOrder) -> str:
    """A column's heading, with the arrow when the table is sorted by it."""
    return f"{label}{order.arrow}" if order.column == column else label
