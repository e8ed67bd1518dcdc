"""The compare screen's rows as text: an item whose outcome changed, at any width.

Issue 22 ("Compare two runs item by item").
"""

from __future__ import annotations

import pytest

from antflow.runstream.itemdiff import ItemChange, ItemEnd
from antflow_tui.compare.present import item_header, item_row

NEWLY_FAILED = ItemChange(
    kind="newly_failed",
    pipeline=1,
    item="doc-020",
    a=ItemEnd("completed", seconds=10.6),
    b=ItemEnd("failed", stage="Generate", error=("ContextLengthError", "too long"), seconds=1.1),
)


# Issue 22.4: at 80 columns both outcomes stay readable (the item and time columns give
# way); every row is exactly as wide as the list.
@pytest.mark.parametrize("width", [76, 120, 156])
def test_item_rows_fit_the_width_and_keep_both_outcomes(width: int) -> None:
    row = item_row(NEWLY_FAILED, width)
    assert row.cell_len <= width
    assert "doc-020" in row.plain
    assert "completed" in row.plain
    assert "failed in Gen" in row.plain
    assert "10.6s → 1.1s" in row.plain
    assert item_header(width).cell_len <= width


# Issue 22.4 and the brief: user data is shown literally (no markup, no escapes).
def test_item_ids_and_errors_are_shown_literally() -> None:
    change = ItemChange(
        kind="newly_failed",
        pipeline=1,
        item="[red]x\x1b[2J",
        a=ItemEnd("completed", seconds=1.0),
        b=ItemEnd("failed", stage="S", error=("E", "[bold]boom"), seconds=1.0),
    )
    row = item_row(change, 200)
    assert "[red]x" in row.plain
    assert "\x1b" not in row.plain
    assert "[bold]boom" in row.plain
