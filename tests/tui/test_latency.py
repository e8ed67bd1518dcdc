"""A stage's task times as the stage screen draws them (pure, no app)."""

from __future__ import annotations

import math
from itertools import pairwise

import pytest
from hypothesis import given
from hypothesis import strategies as st

from antflow_tui.latency import histogram_chart, histogram_rows, latency_summary, slowest_line


def test_rows_cover_the_buckets_with_true_upper_bounds() -> None:
    histogram = [(0.25, 3), (0.5, 10), (1.0, 6), (4.0, 1)]
    rows = histogram_rows(histogram, 8)
    assert sum(count for _, count in rows) == 20
    assert len(rows) <= 8
    # Every bucket sits in the first row whose bound is at or above its own.
    for upper, _ in histogram:
        assert any(bound >= upper for bound, _ in rows)
    # Rows are contiguous on a log scale: empty ones between are kept.
    ratios = {round(math.log2(b / a), 6) for (a, _), (b, _) in pairwise(rows)}
    assert len(ratios) == 1


def test_rows_merge_until_they_fit() -> None:
    histogram = [(2.0**exponent, 1) for exponent in range(-10, 10)]
    rows = histogram_rows(histogram, 5)
    assert len(rows) <= 5
    assert sum(count for _, count in rows) == 20


def test_no_rows_without_counts() -> None:
    assert histogram_rows([], 8) == []
    assert histogram_rows([(1.0, 0)], 8) == []
    assert histogram_rows([(1.0, 3)], 0) == []


@given(
    st.lists(st.tuples(st.floats(1e-6, 1e5), st.integers(0, 10_000)), max_size=60),
    st.integers(1, 12),
)
def test_rows_never_lose_or_invent_counts(histogram: list[tuple[float, int]], rows: int) -> None:
    shown = histogram_rows(histogram, rows)
    assert len(shown) <= rows
    assert sum(count for _, count in shown) == sum(count for _, count in histogram)


def test_chart_draws_a_bar_and_share_per_row_and_marks_the_percentiles() -> None:
    rows = [(0.25, 1), (0.5, 6), (1.0, 2), (2.0, 1)]
    chart = histogram_chart(rows, 40, p50=0.4, p95=1.7)
    lines = chart.plain.split("\n")
    assert len(lines) == 4
    assert lines[0].startswith("≤  250ms ")
    assert lines[1].rstrip().endswith("60%  p50")
    assert lines[3].rstrip().endswith("10%  p95")
    assert "█" in lines[1]
    together = histogram_chart([(1.0, 5)], 40, p50=0.9, p95=0.95)
    assert together.plain.endswith("p50 p95")


def test_chart_without_items() -> None:
    assert histogram_chart([], 40).plain == "No finished items yet."


def test_slowest_line_and_summary() -> None:
    line = slowest_line("[red]page-9[/red]", 8.25, 30)
    assert line.plain.startswith("[red]page-9[/red]")
    assert line.plain.endswith("8.2s")
    assert len(line.plain) == 30
    summary = latency_summary(0.5, 1.2, 8.0, None)
    assert summary.plain == "avg –  p50 500ms  p95 1.2s  max 8.0s"


@pytest.mark.parametrize(
    "item", ["日本語のページ番号一二三四五六七八九十", "🙂" * 30, "page-12345"]
)
def test_a_slowest_line_keeps_its_time_whatever_the_width_of_the_id(item: str) -> None:
    line = slowest_line(item, 12.5, 30)
    assert line.cell_len == 30
    assert line.plain.endswith(" 12.5s")
