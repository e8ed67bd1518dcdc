"""Property test (issue 21): rate-limited retries, timeouts and failures never lose or
duplicate an item: each fed id ends in exactly one terminal state, and the tracker's
counts agree with the pipeline's. Runs in virtual time (see `tests.vtime`)."""

from __future__ import annotations

import asyncio
import os
from collections import Counter
from typing import TYPE_CHECKING

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from antflow import Pipeline, RateLimit, Stage, StatusTracker
from tests.fake_api import Answer, act_out
from tests.vtime import VirtualTime

if TYPE_CHECKING:
    from collections.abc import Iterator

answers = st.sampled_from(["ok", "ok", "429", "429", "error", "hang"])


@settings(
    max_examples=int(os.environ.get("ANTFLOW_PROPERTY_EXAMPLES", "60")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(
    plans=st.lists(st.lists(answers, min_size=1, max_size=8), min_size=1, max_size=25),
    workers=st.integers(1, 6),
    attempts=st.integers(1, 3),
    limited_attempts=st.integers(1, 4),
    adaptive=st.booleans(),
    shared_limit=st.booleans(),
    stop_at=st.none() | st.floats(0.0, 30.0),
)
def test_rate_limits_and_timeouts_never_lose_or_duplicate_an_item(
    plans: list[list[Answer]],
    workers: int,
    attempts: int,
    limited_attempts: int,
    adaptive: bool,
    shared_limit: bool,
    stop_at: float | None,
) -> None:
    calls: Counter[int] = Counter()
    scripts: dict[int, Iterator[Answer]] = {i: iter(plan) for i, plan in enumerate(plans)}

    async def call(value: int) -> int:
        calls[value] += 1
        await act_out(next(scripts[value], "ok"), value)
        return value

    tracker = StatusTracker()

    async def main() -> Pipeline:
        loop = asyncio.get_running_loop()
        stage = Stage(
            "Ask",
            workers,
            [call],
            task_attempts=attempts,
            task_wait_seconds=0.5,
            task_timeout=3.0,
            rate_limit_attempts=limited_attempts,
            adaptive=adaptive,
            rate_limit=RateLimit(per_second=5) if shared_limit else None,
        )
        pipeline = Pipeline([stage], status_tracker=tracker, clock=loop.time)
        if stop_at is None:
            await pipeline.run(range(len(plans)))
            return pipeline
        await pipeline.start()
        await pipeline.feed(range(len(plans)))
        await asyncio.sleep(stop_at)
        await pipeline.shutdown(graceful=False)
        return pipeline

    pipeline = VirtualTime().run(main())

    stats = pipeline.get_stats()
    completed = {result.id for result in pipeline.results}
    failed = set(pipeline.failed_item_ids())
    unfinished = set(pipeline.get_unfinished_items())
    fed = set(range(len(plans)))
    assert stats.items_fed == len(plans)
    assert completed | failed | unfinished == fed
    assert len(completed) + len(failed) + len(unfinished) == len(plans)
    assert len(pipeline.results) == len(completed)
    assert stats.items_in_flight == 0
    if stop_at is None:
        assert not unfinished
    counts = tracker.get_stats()
    assert counts["completed"] == len(completed)
    assert counts["failed"] == len(failed) == stats.items_failed
    assert counts["unfinished"] == len(unfinished)
    for item in failed:
        assert tracker.get_status(item).status == "failed"  # type: ignore[union-attr]
    # Rate-limited attempts use up none of task_attempts; together they are bounded.
    for count in calls.values():
        assert count <= attempts + limited_attempts
