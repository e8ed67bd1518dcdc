"""LatencyTracker: quantiles within a few percent, the maximum and the slowest items
exact, memory fixed whatever the count."""

from __future__ import annotations

import math
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from antflow import Pipeline, Stage
from antflow._latency import EVERY_ITEM_UNTIL, SAMPLE_EVERY, SLOWEST_KEPT, LatencyTracker
from antflow.runstream.stream import RunStream
from tests.engine.helpers import FakeClock


def exact_quantile(values: list[float], fraction: float) -> float:
    """The nearest-rank quantile."""
    ordered = sorted(values)
    rank = math.ceil(fraction * len(ordered))
    return ordered[max(0, min(len(ordered) - 1, rank - 1))]


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.floats(min_value=1e-6, max_value=3600.0, allow_nan=False), min_size=1, max_size=400)
)
def test_quantiles_are_close_and_the_maximum_and_slowest_exact(values: list[float]) -> None:
    tracker = LatencyTracker()
    for index, value in enumerate(values):
        tracker.add(value, index)
    assert tracker.maximum == max(values)
    for fraction in (0.5, 0.95):
        estimate = tracker.quantile(fraction)
        assert estimate is not None
        lower = exact_quantile(values, fraction - 0.01) * 0.9
        upper = exact_quantile(values, min(fraction + 0.01, 1.0)) * 1.1
        assert lower <= estimate <= upper, (fraction, estimate, lower, upper)
    slowest = tracker.slowest_items()
    expected = sorted(range(len(values)), key=lambda i: (-values[i], i))[:SLOWEST_KEPT]
    assert [seconds for _, seconds in slowest] == [values[i] for i in expected]


def test_many_items_fit_a_fixed_histogram() -> None:
    tracker = LatencyTracker()
    size = len(tracker.buckets)
    rng = random.Random(7)
    values = [rng.lognormvariate(-3, 1) for _ in range(100_000)]
    for index, value in enumerate(values):
        tracker.add(value, index)
    assert tracker.count == 100_000
    assert len(tracker.buckets) == size
    assert tracker.quantile(0.5) == pytest.approx(exact_quantile(values, 0.5), rel=0.08)
    assert tracker.quantile(0.95) == pytest.approx(exact_quantile(values, 0.95), rel=0.08)
    assert tracker.maximum == max(values)
    assert tracker.quantile(0.5) is not None
    assert LatencyTracker().quantile(0.5) is None


async def test_snapshots_carry_each_stages_latency_once_a_monitor_asks() -> None:
    clock = FakeClock()
    durations = {0: 0.1, 1: 0.2, 2: 5.0}

    async def timed(x: int) -> int:
        clock.advance(durations[x])
        return x

    pipeline = Pipeline([Stage("A", 1, [timed])], clock=clock)
    stream = RunStream()
    stream.attach(pipeline)
    await pipeline.run(range(3))
    (row,) = stream.snapshot(1).stages
    assert row.max_seconds == pytest.approx(5.0)
    assert row.p50 == pytest.approx(0.2, rel=0.1)
    assert [item for item, _ in row.slowest] == [2, 1, 0]
    assert sum(count for _, count in row.histogram) == 3
    # Without a monitor nothing is measured.
    assert Pipeline([Stage("A", 1, [timed])])._runtimes[0].latency is None


async def test_a_busy_stage_samples_its_items_but_keeps_the_slowest() -> None:
    clock = FakeClock()

    slow = EVERY_ITEM_UNTIL + 1_001  # past the items all kept, and not a sampled one

    async def timed(x: int) -> int:
        clock.advance(9.0 if x == slow else 0.001)
        return x

    pipeline = Pipeline([Stage("A", 1, [timed])], clock=clock)
    pipeline.measure_latency()
    items = EVERY_ITEM_UNTIL + 3_200
    await pipeline.run(range(items))
    latency = pipeline._runtimes[0].latency
    assert latency is not None
    # Every item of the first EVERY_ITEM_UNTIL, then one in 32 standing for 32: the
    # histogram estimates every item; the slow one is in the maximum and the slowest.
    assert abs(sum(latency.buckets) - items) <= SAMPLE_EVERY
    assert latency.maximum == pytest.approx(9.0)
    assert latency.slowest_items()[0][0] == slow


async def test_the_quantiles_follow_the_whole_run_not_its_first_items() -> None:
    clock = FakeClock()

    async def slower_at_first(x: int) -> int:
        clock.advance(1.0 if x < EVERY_ITEM_UNTIL else 0.1)
        return x

    pipeline = Pipeline([Stage("A", 1, [slower_at_first])], clock=clock)
    pipeline.measure_latency()
    await pipeline.run(range(EVERY_ITEM_UNTIL + 30_000))
    latency = pipeline._runtimes[0].latency
    assert latency is not None
    # 2,048 items took 1 s and 30,000 took 0.1 s: the median is 0.1 s (within a bucket).
    assert latency.quantile(0.5) == pytest.approx(0.1, rel=0.1)
    assert latency.quantile(0.95) == pytest.approx(1.0, rel=0.1)


async def test_failed_items_count_in_the_task_times() -> None:
    # The scrape example's timeouts fail: left out, p95 and max would hide them.
    clock = FakeClock()

    async def times_out_or_not(x: int) -> int:
        clock.advance(30.0 if x == 7 else 0.1)
        if x == 7:
            raise TimeoutError("read timed out")
        return x

    pipeline = Pipeline([Stage("A", 1, [times_out_or_not], task_attempts=1)], clock=clock)
    pipeline.measure_latency()
    await pipeline.run(range(10))
    latency = pipeline._runtimes[0].latency
    assert latency is not None
    assert sum(latency.buckets) == 10
    assert latency.maximum == pytest.approx(30.0)
    assert latency.slowest_items()[0] == (7, pytest.approx(30.0))


async def test_a_stage_of_many_workers_samples_its_items_too() -> None:
    # Sampling by each worker's own count took nothing past the first 2,048 items when
    # every worker finished fewer than 32: the quantiles froze on the run's start.
    clock = FakeClock()
    fast = EVERY_ITEM_UNTIL + 952

    async def slower_later(x: int) -> int:
        clock.advance(0.001 if x < fast else 0.02)
        return x

    pipeline = Pipeline([Stage("A", 500, [slower_later])], clock=clock)
    pipeline.measure_latency()
    await pipeline.run(range(fast + 9_000))
    latency = pipeline._runtimes[0].latency
    assert latency is not None
    assert abs(sum(latency.buckets) - (fast + 9_000)) <= SAMPLE_EVERY
    assert latency.quantile(0.5) == pytest.approx(0.02, rel=0.1)
