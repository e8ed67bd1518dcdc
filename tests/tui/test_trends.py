"""Trends: series in bounded time buckets, sparklines, the queue's trend (pure, no app)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from antflow.runstream.records import PipelineStarted, Snapshot, StageConfig, StageRow
from antflow_tui.trends import (
    BLOCKS,
    CAPACITY,
    LONGEST_PERIOD,
    QueueTrend,
    RunHistory,
    Series,
    queue_trend,
    sparkline,
    trend_words,
)

# ---------------------------------------------------------------------- Series


def test_a_steady_flow_reads_as_its_rate_whatever_the_sampling() -> None:
    every_frame = Series(summed=True)
    every_three_seconds = Series(summed=True)
    for step in range(1, 121):
        at = step * 0.25
        every_frame.add(at, 40 * at)  # 40 items a second
        if step % 12 == 0:
            every_three_seconds.add(at, 40 * at)
    assert every_frame.samples() == pytest.approx([40.0] * len(every_frame.samples()))
    assert every_three_seconds.samples() == pytest.approx(
        [40.0] * len(every_three_seconds.samples())
    )
    assert len(every_frame.samples()) >= 28


def test_a_summed_series_shows_its_newest_bucket_once_half_covered() -> None:
    series = Series(summed=True)
    series.add(0.0, 0)
    series.add(1.0, 10)
    series.add(1.25, 12)
    assert series.samples() == pytest.approx([10.0])
    series.add(1.75, 16)
    assert series.samples() == pytest.approx([10.0, 8.0])


def test_buckets_merge_two_by_two_then_the_oldest_fall_off() -> None:
    series = Series(summed=False)
    for second in range(CAPACITY + 1):
        series.add(float(second), float(second))
    assert series.period == 2.0
    assert len(series.values) <= CAPACITY
    assert series.values[-1] == CAPACITY  # a merged bucket keeps the later level
    for second in range(CAPACITY + 1, 2_000):
        series.add(float(second), float(second))
    assert series.period == LONGEST_PERIOD
    assert len(series.values) == CAPACITY
    assert series.span == CAPACITY * LONGEST_PERIOD
    assert series.values[-1] == 1_999


def test_a_level_series_fills_a_gap_by_interpolating() -> None:
    series = Series(summed=False)
    series.add(0.0, 0.0)
    series.add(4.0, 40.0)
    assert series.values == pytest.approx([0.0, 20.0, 30.0, 40.0, 40.0])


def test_time_going_back_starts_over() -> None:
    series = Series(summed=False)
    series.add(10.0, 5.0)
    series.add(11.0, 6.0)
    series.add(3.0, 1.0)
    assert series.values == [1.0]


def test_level_ago_reads_back_and_knows_where_it_stops() -> None:
    series = Series(summed=False)
    for second in range(6):
        series.add(float(second), float(second * 10))
    assert series.level_ago(2.0) == 30.0
    assert series.level_ago(10.0) is None
    assert Series(summed=True).level_ago(1.0) is None


@given(
    st.lists(st.tuples(st.floats(0.01, 500.0), st.integers(0, 10_000)), min_size=1, max_size=300),
    st.booleans(),
)
def test_memory_stays_bounded_and_values_finite(
    steps: list[tuple[float, int]], summed: bool
) -> None:
    series = Series(summed=summed)
    at = 0.0
    total = 0
    for gap, amount in steps:
        at += gap
        total += amount
        series.add(at, total if summed else amount)
        assert len(series.values) <= CAPACITY
        assert series.period <= LONGEST_PERIOD
    assert all(value >= 0 for value in series.samples())


@given(st.lists(st.integers(0, 50), min_size=2, max_size=200))
def test_a_summed_series_loses_nothing_while_it_reaches_back(amounts: list[int]) -> None:
    """Counts are spread over buckets, never dropped or invented (within its span)."""
    series = Series(summed=True, capacity=10_000)
    total = 0
    series.add(0.0, 0)
    for second, amount in enumerate(amounts, start=1):
        total += amount
        series.add(float(second), total)
    assert sum(series.values) == pytest.approx(total)


# ---------------------------------------------------------------------- sparkline


def test_sparkline_scales_to_the_highest_and_pads_on_the_left() -> None:
    assert sparkline([0, 1, 2, 3, 4, 5, 6, 7, 8], 9) == " ▁▂▃▄▅▆▇█"
    assert sparkline([5, 10], 5) == "   ▄█"
    assert sparkline([], 4) == "    "
    assert sparkline([3.0], 0) == ""


def test_sparkline_zero_is_blank_and_anything_more_shows() -> None:
    line = sparkline([0, 0.001, 1000], 3)
    assert line[0] == " "
    assert line[1] == "▁"
    assert line[2] == "█"


def test_sparkline_groups_from_the_newest_back() -> None:
    # Six values in three cells: (1, 2), (3, 4), (5, 6) -> means 1.5, 3.5, 5.5.
    assert sparkline([1, 2, 3, 4, 5, 6], 3) == sparkline([1.5, 3.5, 5.5], 3)
    # The highest of each group with peak=True (a queue's depth).
    assert sparkline([0, 8, 0, 8], 2, peak=True) == "██"


@given(st.lists(st.floats(0, 1e6), max_size=200), st.integers(1, 40))
def test_sparkline_is_always_its_width_in_blocks(values: list[float], width: int) -> None:
    line = sparkline(values, width)
    assert len(line) == width
    assert set(line) <= set(BLOCKS)


# ---------------------------------------------------------------------- queue trend


def test_a_queue_growing_steadily_says_how_fast_and_for_how_long() -> None:
    trend = queue_trend([0, 40, 80, 120, 160], 1.0)
    assert trend == QueueTrend(growth=40.0, seconds=4.0)
    assert trend_words(trend) == "queue growing 40/s for 4.0s"


def test_a_noisy_but_growing_queue_still_grows() -> None:
    trend = queue_trend([10, 40, 78, 121, 119, 160], 1.0)
    assert trend is not None
    assert trend.seconds == 5.0
    assert trend.growth == pytest.approx(30.0)


def test_a_queue_at_its_capacity_is_full_not_growing() -> None:
    trend = queue_trend([5, 30, 30, 30, 30], 2.0, capacity=30)
    assert trend == QueueTrend(0.0, 6.0, full=True)
    assert trend_words(trend, 30) == "queue full (30) for 6.0s"


@pytest.mark.parametrize(
    "levels",
    [[20, 21, 19, 20, 22], [50, 40, 30, 20], [3], [0, 0, 0, 0], [100, 100, 101]],
)
def test_steady_shrinking_or_unknown_queues_have_no_trend(levels: list[float]) -> None:
    assert queue_trend(levels, 1.0) is None


@given(st.integers(3, 60), st.floats(1.0, 500.0))
def test_a_linear_growth_is_found_at_its_slope(samples: int, slope: float) -> None:
    levels = [slope * n for n in range(samples)]
    trend = queue_trend(levels, 1.0)
    assert trend is not None
    assert trend.growth == pytest.approx(slope)
    assert trend.seconds == samples - 1


def test_trend_words_read_minutes() -> None:
    assert trend_words(QueueTrend(40.0, 120.0)) == "queue growing 40/s for 2m00s"
    assert trend_words(QueueTrend(0.5, 90.0)) == "queue growing 0.50/s for 1m30s"


# ---------------------------------------------------------------------- RunHistory


def _started() -> PipelineStarted:
    config = StageConfig(
        name="Fetch",
        workers=("Fetch-W0",),
        tasks=("fetch",),
        retry="per_task",
        task_attempts=1,
        task_wait_seconds=0.0,
        stage_attempts=1,
        queue_capacity=10,
    )
    return PipelineStarted(pipeline=1, at=0.0, stages=(config,))


def _snapshot(at: float, done: int, queued: int) -> Snapshot:
    row = StageRow(queued=queued, running=0, done=done, failed=0)
    return Snapshot(
        pipeline=1,
        at=at,
        running=True,
        paused=False,
        stopping=False,
        fed=0,
        processed=0,
        failed=0,
        in_flight=0,
        unfinished=0,
        stages=(row,),
    )


def test_history_follows_each_stage_and_ignores_a_snapshot_seen_before() -> None:
    history = RunHistory()
    started = _started()
    for second in range(5):
        history.observe(started, _snapshot(float(second), second * 10, second))
    history.observe(started, _snapshot(2.0, 999, 999))  # older: a replay's repeat
    trend = history.trend(1, "Fetch")
    assert trend is not None
    assert trend.finished.samples() == pytest.approx([10.0] * 4)
    assert trend.queue.samples() == [0, 1, 2, 3, 4]
    assert trend.rate == pytest.approx(10.0)
    assert history.trend(1, "Parse") is None
    history.reset()
    assert history.trend(1, "Fetch") is None
