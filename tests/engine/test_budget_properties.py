"""Property test (issue 22): budgets, with rate limits, 429s, failures, timeouts, raises
and stops at any moment, never lose or duplicate an item: each fed id ends in exactly
one terminal state, the tracker agrees, the budget gives back every reservation, and
with estimates that hold nothing is spent beyond the limit. Runs in virtual time."""

from __future__ import annotations

import asyncio
import os
from collections import Counter
from typing import TYPE_CHECKING

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from antflow import (
    Budget,
    ModelPrice,
    Pipeline,
    Prices,
    RateLimit,
    Stage,
    StatusTracker,
    set_task_usage,
    use_prices,
)
from tests.fake_api import Answer, act_out
from tests.vtime import VirtualTime

if TYPE_CHECKING:
    from collections.abc import Iterator

answers = st.sampled_from(["ok", "ok", "ok", "429", "error", "hang"])
MOST_TOKENS = 1_000
"""What a call uses at most: the stage's max_tokens when the test says estimates hold."""
PRICE = ModelPrice(input_per_million=1.0, output_per_million=2.0)


@settings(
    max_examples=int(os.environ.get("ANTFLOW_PROPERTY_EXAMPLES", "60")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(
    plans=st.lists(
        st.tuples(st.lists(answers, min_size=1, max_size=5), st.integers(1, MOST_TOKENS)),
        min_size=1,
        max_size=25,
    ),
    workers=st.integers(1, 6),
    attempts=st.integers(1, 3),
    usd=st.none() | st.floats(0.0005, 0.02),
    tokens=st.none() | st.integers(500, 20_000),
    estimated=st.booleans(),
    shared_limit=st.booleans(),
    adaptive=st.booleans(),
    raises=st.lists(st.floats(0.0, 20.0), max_size=3),
    stop_at=st.none() | st.floats(0.0, 30.0),
    graceful=st.booleans(),
)
def test_budgets_never_lose_or_duplicate_an_item(
    plans: list[tuple[list[Answer], int]],
    workers: int,
    attempts: int,
    usd: float | None,
    tokens: int | None,
    estimated: bool,
    shared_limit: bool,
    adaptive: bool,
    raises: list[float],
    stop_at: float | None,
    graceful: bool,
) -> None:
    if usd is None and tokens is None:
        usd = 0.005
    calls: Counter[int] = Counter()
    reported = [0]
    scripts: dict[int, Iterator[Answer]] = {i: iter(plan) for i, (plan, _) in enumerate(plans)}
    budget = Budget(usd=usd, tokens=tokens)

    async def call(value: int) -> int:
        calls[value] += 1
        await act_out(next(scripts[value], "ok"), value)
        used = plans[value][1]
        reported[0] += used
        set_task_usage(input_tokens=used // 2, output_tokens=used - used // 2, model="m")
        return value

    tracker = StatusTracker()

    async def main() -> Pipeline:
        use_prices(Prices({"m": PRICE}))
        loop = asyncio.get_running_loop()
        stage = Stage(
            "Ask",
            workers,
            [call],
            task_attempts=attempts,
            task_wait_seconds=0.5,
            task_timeout=3.0,
            rate_limit_attempts=3,
            adaptive=adaptive,
            rate_limit=RateLimit(per_second=5) if shared_limit else None,
            max_tokens=MOST_TOKENS if estimated else None,
            queue_capacity=len(plans),
        )
        pipeline = Pipeline([stage], status_tracker=tracker, clock=loop.time, budget=budget)
        await pipeline.start()
        await pipeline.feed(range(len(plans)))
        began = loop.time()
        for at in sorted(raises):
            await asyncio.sleep(max(began + at - loop.time(), 0.0))
            budget.raise_by(usd=0.002 if budget.usd else None, tokens=None if usd else 1_000)
        if stop_at is None:
            # A run paused for good waits for a raise: give one that lets everything by.
            budget.raise_to(usd=1e6 if budget.usd else None, tokens=10**9 if tokens else None)
            await pipeline.join()
            return pipeline
        await asyncio.sleep(max(began + stop_at - loop.time(), 0.0))
        await pipeline.shutdown(graceful=graceful)
        return pipeline

    pipeline = VirtualTime().run(main())

    stats = pipeline.get_stats()
    completed = {result.id for result in pipeline.results}
    failed = set(pipeline.failed_item_ids())
    unfinished = set(pipeline.get_unfinished_items())
    assert stats.items_fed == len(plans)
    assert completed | failed | unfinished == set(range(len(plans)))
    assert len(completed) + len(failed) + len(unfinished) == len(plans)
    assert stats.items_in_flight == 0
    if stop_at is None:
        assert not unfinished
    counts = tracker.get_stats()
    assert counts["completed"] == len(completed)
    assert counts["failed"] == len(failed)
    assert counts["unfinished"] == len(unfinished)
    for count in calls.values():
        assert count <= attempts + 3
    state = budget.state()
    assert (state.reserved_tokens, state.reserved_usd, state.running) == (0, 0.0, 0)
    assert state.spent_tokens == reported[0]
    assert state.unpriced == 0
    if estimated and stop_at is not None:
        # Estimates held: the limits as they stood were never passed.
        if state.usd is not None:
            assert state.spent_usd <= state.usd * (1 + 1e-9)
        if state.tokens is not None:
            assert state.spent_tokens <= state.tokens
