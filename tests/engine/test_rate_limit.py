"""Rate limits end to end, in virtual time, against fake APIs with a hidden limit.

Issue 21: rate-limit answers (HTTP 429) are not failures, the retry waits what the
server asked and so does every worker sharing the limit, `adaptive=True` finds an
unknown limit, `RateLimit` keeps to a known one (calls and tokens), a 429 storm ends
with a clear error, and the monitor surface reports all of it.
"""

from __future__ import annotations

import asyncio
import itertools
import random
from typing import TYPE_CHECKING, Any

import pytest

from antflow import (
    Pipeline,
    RateLimit,
    RateLimitExceededError,
    Stage,
    StatusTracker,
    set_task_usage,
)
from antflow._adaptive import ConcurrencyGate
from antflow.testing import FakeClock
from tests.fake_api import FakeApi, TooManyRequests

if TYPE_CHECKING:
    from tests.vtime import VirtualTime

LIMIT = 20
"""The fake API's hidden limit: calls in any sliding second."""
ITEMS = 2_400
"""Two minutes of calls at the limit."""


def run_stage(vtime: VirtualTime, api: FakeApi, items: int, **stage: Any) -> Pipeline:
    async def ask(value: int) -> int:
        result: int = await api.call(value)
        return result

    async def main() -> Pipeline:
        loop = asyncio.get_running_loop()
        pipeline = Pipeline([Stage("Ask", tasks=[ask], **stage)], clock=loop.time)
        await pipeline.run(range(items))
        return pipeline

    return vtime.run(main())


# Issue 21: 10, 50 and 200 workers with adaptive=True and no configured limit lose
# nothing, reach >= 90 % of the hidden limit and see <= 10 % of calls answered 429.
@pytest.mark.parametrize("workers", [10, 50, 200])
@pytest.mark.parametrize("exact_wait", [False, True], ids=["retry-after", "retry-after-ms"])
def test_adaptive_concurrency_finds_a_hidden_limit(
    vtime: VirtualTime, workers: int, exact_wait: bool
) -> None:
    api = FakeApi(per_second=LIMIT, latency=(0.3, 0.6), retry_after_ms=exact_wait)

    pipeline = run_stage(vtime, api, ITEMS, workers=workers, adaptive=True)

    stats = pipeline.get_stats()
    assert (stats.items_processed, stats.items_failed) == (ITEMS, 0)
    assert api.throughput_share() >= 0.90
    assert api.refused_share() <= 0.10
    assert api.early_retries() == []
    stage = pipeline.get_limit_snapshot().stages[0]
    assert stage.adaptive
    assert 1 <= stage.concurrency <= stage.max_concurrency == workers
    assert stage.rate_limited_retries == len(api.calls) - ITEMS


# Issue 21: with a RateLimit equal to the hidden limit, <= 1 % of calls are answered 429.
@pytest.mark.parametrize("workers", [10, 50, 200])
def test_a_rate_limit_equal_to_the_hidden_one_is_hardly_ever_refused(
    vtime: VirtualTime, workers: int
) -> None:
    api = FakeApi(per_second=LIMIT, latency=(0.3, 0.6))
    limit = RateLimit(per_second=LIMIT, name="api")

    pipeline = run_stage(vtime, api, 1_200, workers=workers, rate_limit=limit)

    assert pipeline.get_stats().items_failed == 0
    assert api.refused_share() <= 0.01
    assert api.max_calls_in_a_second() <= LIMIT
    if workers >= 50:  # 10 workers of ~0.45 s calls cannot use all of it
        assert api.throughput_share() >= 0.95


# Issue 21: the limit is smooth, no burst at the start.
def test_a_rate_limit_spreads_calls_evenly_from_the_start(vtime: VirtualTime) -> None:
    api = FakeApi(per_second=None, latency=(0.0, 0.0))

    run_stage(vtime, api, 50, workers=50, rate_limit=RateLimit(per_second=10))

    starts = [call.at for call in api.calls]
    gaps = [later - earlier for earlier, later in itertools.pairwise(starts)]
    assert min(gaps) == pytest.approx(0.1)
    assert starts[-1] == pytest.approx(4.9)


# Issue 21: a 429 cools down every worker of the stage, not only the one told.
def test_a_rate_limit_answer_cools_down_every_worker(vtime: VirtualTime) -> None:
    calls: list[tuple[float, int]] = []
    refused = False

    async def ask(value: int) -> int:
        nonlocal refused
        now = asyncio.get_running_loop().time()
        calls.append((now, value))
        await asyncio.sleep(0.1)
        if value == 0 and not refused:
            refused = True
            raise TooManyRequests({"retry-after": "3"})
        return value

    async def main() -> None:
        loop = asyncio.get_running_loop()
        pipeline = Pipeline([Stage("Ask", 4, [ask])], clock=loop.time)
        await pipeline.run(range(12))
        assert pipeline.get_stats().items_processed == 12

    vtime.run(main())

    # The first four started together; item 0 was refused at 0.1, so nothing started
    # again until 3.1, though three workers were free from 0.1 on.
    later = [at for at, _ in calls[4:]]
    assert min(later) == pytest.approx(3.1)


# Issue 21: a rate-limited attempt uses up none of task_attempts, and the retry waits
# at least what the server asked (an HTTP date here), whatever the backoff says.
def test_rate_limited_attempts_use_up_no_attempt(vtime: VirtualTime) -> None:
    answers = iter([429, 429, 429, 500, 429, 200])
    seen: list[float] = []

    class ServerError(Exception):
        pass

    async def ask(value: int) -> str:
        loop = asyncio.get_running_loop()
        seen.append(loop.time())
        status = next(answers)
        if status == 429:
            raise TooManyRequests({"Retry-After": "2"})
        if status == 500:
            raise ServerError("500")
        return "ok"

    tracker = StatusTracker()

    async def main() -> Pipeline:
        loop = asyncio.get_running_loop()
        stage = Stage("Ask", 1, [ask], task_attempts=2, task_wait_seconds=0.5)
        pipeline = Pipeline([stage], status_tracker=tracker, clock=loop.time)
        await pipeline.run([1])
        return pipeline

    pipeline = vtime.run(main())

    assert [r.value for r in pipeline.results] == ["ok"]
    gaps = [round(later - earlier, 6) for earlier, later in itertools.pairwise(seen)]
    assert gaps == [2.0, 2.0, 2.0, 0.5, 2.0]
    stats = pipeline.get_stats().stage_stats["Ask"]
    assert stats.task_retries == 1
    assert pipeline.get_limit_snapshot().stages[0].rate_limited_retries == 4
    retries = [e for e in tracker.get_task_events(0) if e.event_type == "retry"]
    assert len(retries) == 5


# Issue 21: an API that never stops answering 429 ends each item with a clear error.
def test_a_never_ending_429_storm_ends_the_items_with_a_clear_error(
    vtime: VirtualTime,
) -> None:
    async def ask(value: int) -> int:
        raise TooManyRequests({"retry-after": "1"})

    tracker = StatusTracker()

    async def main() -> Pipeline:
        loop = asyncio.get_running_loop()
        stage = Stage("Ask", 3, [ask], rate_limit_attempts=5)
        pipeline = Pipeline([stage], status_tracker=tracker, clock=loop.time)
        await pipeline.run(range(4))
        return pipeline

    pipeline = vtime.run(main())

    assert pipeline.get_stats().items_failed == 4
    failures = tracker.get_failed_items()
    assert {f.error_type for f in failures} == {"RateLimitExceededError"}
    error = failures[0].exception
    assert isinstance(error, RateLimitExceededError)
    assert error.attempts == 5
    assert isinstance(error.__cause__, TooManyRequests)
    assert "rate-limited 5 times" in str(error)
    assert "429 Too Many Requests" in str(error)
    assert "TooManyRequests" in failures[0].traceback


def test_types_in_rate_limit_on_are_rate_limits_too(vtime: VirtualTime) -> None:
    class SlowDown(Exception):
        retry_after = 1.5

    tries: list[float] = []

    async def ask(value: int) -> int:
        tries.append(asyncio.get_running_loop().time())
        if len(tries) < 4:
            raise SlowDown
        return value

    async def main() -> Pipeline:
        loop = asyncio.get_running_loop()
        stage = Stage("Ask", 1, [ask], task_attempts=1, rate_limit_on=[SlowDown])
        pipeline = Pipeline([stage], clock=loop.time)
        await pipeline.run([7])
        return pipeline

    pipeline = vtime.run(main())

    assert [r.value for r in pipeline.results] == [7]
    assert tries == [0.0, 1.5, 3.0, 4.5]


# Issue 21: tokens in any 60 s window never go above tokens_per_minute; estimates
# are reconciled with what tasks report, so unused estimates come back to the budget.
def test_tokens_per_minute_hold_in_every_window(vtime: VirtualTime) -> None:
    cap = 30_000
    api = FakeApi(tokens_per_minute=cap, latency=(0.5, 1.5))
    rng = random.Random(3)
    prompts = [rng.randint(200, 800) for _ in range(400)]
    max_tokens = 400
    tracker = StatusTracker()

    async def ask(prompt: int) -> int:
        used = prompt + rng.randint(50, max_tokens)
        await api.call(prompt, tokens=used)
        set_task_usage(input_tokens=prompt, output_tokens=used - prompt, model="fake-1")
        return used

    limit = RateLimit(tokens_per_minute=cap, estimate=lambda prompt: prompt + max_tokens)

    async def main() -> Pipeline:
        loop = asyncio.get_running_loop()
        stage = Stage("Ask", 50, [ask], rate_limit=limit)
        pipeline = Pipeline([stage], status_tracker=tracker, clock=loop.time)
        await pipeline.run(prompts)
        return pipeline

    pipeline = vtime.run(main())

    assert pipeline.get_stats().items_failed == 0
    assert api.refused_share() == 0
    assert api.max_tokens_in_a_minute() <= cap
    used = sum(call.tokens for call in api.accepted)
    # Reconciled: well above what the estimates alone would allow in that time.
    assert used / (vtime.elapsed / 60) >= 0.9 * cap
    stage = pipeline.get_limit_snapshot().stages[0]
    assert stage.usage is not None
    assert stage.usage.total_tokens == used
    assert stage.usage.model == "fake-1"
    item = tracker.get_usage(0)
    assert item is not None
    assert item.total_tokens == pipeline.results[0].value


def test_a_token_limit_keeps_an_api_with_a_hidden_token_limit_happy(
    vtime: VirtualTime,
) -> None:
    cap = 20_000
    api = FakeApi(tokens_per_minute=cap, latency=(0.2, 0.4))

    async def ask(prompt: int) -> int:
        await api.call(prompt, tokens=prompt)
        set_task_usage(input_tokens=prompt)
        return prompt

    limit = RateLimit(tokens_per_minute=cap, estimate=lambda prompt: prompt)

    async def main() -> None:
        loop = asyncio.get_running_loop()
        pipeline = Pipeline([Stage("Ask", 200, [ask], rate_limit=limit)], clock=loop.time)
        await pipeline.run([500] * 200)
        assert pipeline.get_stats().items_failed == 0

    vtime.run(main())

    assert api.refused_share() == 0
    assert api.max_tokens_in_a_minute() <= cap


# Issue 21: stages (and pipelines) given the same RateLimit share its budget and its
# cool-down.
def test_two_pipelines_share_one_rate_limit(vtime: VirtualTime) -> None:
    api = FakeApi(per_second=10, latency=(0.1, 0.2))
    limit = RateLimit(per_second=10, name="shared")

    async def ask(value: Any) -> Any:
        return await api.call(value)

    async def main() -> list[Pipeline]:
        loop = asyncio.get_running_loop()
        pipelines = [
            Pipeline([Stage(name, 20, [ask], rate_limit=limit)], clock=loop.time)
            for name in ("A", "B")
        ]
        await asyncio.gather(pipelines[0].run(range(100)), pipelines[1].run(range(100, 200)))
        return pipelines

    pipelines = vtime.run(main())

    assert api.refused_share() == 0
    assert api.max_calls_in_a_second() <= 10
    assert vtime.elapsed == pytest.approx(20, abs=0.5)
    assert all(p.get_stats().items_processed == 100 for p in pipelines)


def test_a_429_cools_down_every_stage_sharing_the_limit(vtime: VirtualTime) -> None:
    limit = RateLimit(name="shared")
    starts: dict[str, list[float]] = {"A": [], "B": []}

    def task_for(name: str) -> Any:
        async def ask(value: int) -> int:
            starts[name].append(asyncio.get_running_loop().time())
            await asyncio.sleep(1)
            if name == "A" and value == 0 and len(starts["A"]) == 1:
                raise TooManyRequests({"retry-after": "10"})
            return value

        return ask

    async def main() -> None:
        loop = asyncio.get_running_loop()
        stages = [
            Stage("A", 1, [task_for("A")], rate_limit=limit),
            Stage("B", 1, [task_for("B")], rate_limit=limit),
        ]
        pipeline = Pipeline(stages, clock=loop.time)
        await pipeline.run(range(3))
        snapshot = pipeline.get_limit_snapshot()
        assert [state.name for state in snapshot.limits] == ["shared"]
        assert snapshot.limits[0].stages == ("A", "B")

    vtime.run(main())

    # A's first call was refused at t=1: B's first call (its input comes from A) and
    # A's retry both waited until t=11.
    assert starts["A"][1] == pytest.approx(11)
    assert starts["B"][0] >= 11


def test_the_limit_snapshot_reports_calls_tokens_and_cool_downs(vtime: VirtualTime) -> None:
    limit = RateLimit(
        per_second=5,
        per_minute=600,
        tokens_per_minute=100_000,
        name="llm",
        estimate=lambda value: 100,
    )
    seen: list[Any] = []

    async def ask(value: int) -> int:
        await asyncio.sleep(0.5)
        set_task_usage(input_tokens=30, output_tokens=20, cost=0.01)
        return value

    async def main() -> None:
        loop = asyncio.get_running_loop()
        pipeline = Pipeline([Stage("Ask", 8, [ask], rate_limit=limit)], clock=loop.time)
        await pipeline.start()
        await pipeline.feed(range(20))
        await asyncio.sleep(2.05)
        seen.append(pipeline.get_limit_snapshot())
        await pipeline.join()

    vtime.run(main())

    snapshot = seen[0]
    (state,) = snapshot.limits
    assert (state.name, state.per_second, state.per_minute) == ("llm", 5, 600)
    # Calls start every 0.2 s: 11 by t=2.05, 5 of them within the last second; those
    # that finished reported 50 tokens, those still running hold their estimate.
    assert state.calls_last_minute == 11
    assert state.calls_last_second == 5
    assert state.tokens_last_minute == 8 * 50 + 3 * 100
    assert state.rate_limited_last_minute == 0
    assert state.cooldown_remaining == 0
    assert state.waiting == 8 - 3  # workers holding an item, given a later slot
    stage = snapshot.stages[0]
    assert stage.limit == "llm"
    assert stage.usage is not None
    assert stage.usage.cost == pytest.approx(0.08)


# Issue 21: set_concurrency changes a stage's concurrency live, and reads back.
def test_set_concurrency_limits_calls_in_flight_live(vtime: VirtualTime) -> None:
    peak = running = 0
    peaks: list[int] = []

    async def work(value: int) -> int:
        nonlocal peak, running
        running += 1
        peak = max(peak, running)
        await asyncio.sleep(1)
        running -= 1
        return value

    async def main() -> None:
        nonlocal peak
        loop = asyncio.get_running_loop()
        pipeline = Pipeline([Stage("Fetch", 10, [work])], clock=loop.time)
        await pipeline.start()
        await pipeline.feed(range(60))
        await asyncio.sleep(1.5)
        peaks.append(peak)
        pipeline.set_concurrency("Fetch", 3)
        await asyncio.sleep(1.0)  # the calls running finish, three start
        peak = 0
        await asyncio.sleep(3)
        peaks.append(peak)
        stage = pipeline.get_limit_snapshot().stages[0]
        assert (stage.concurrency, stage.max_concurrency, stage.adaptive) == (3, 3, False)
        pipeline.set_concurrency("Fetch", 10)
        peak = 0
        await asyncio.sleep(1.5)
        peaks.append(peak)
        await pipeline.join()

    vtime.run(main())

    assert peaks == [10, 3, 10]


@pytest.mark.parametrize("bad", [0, 11, 2.5, True, "3"])
def test_set_concurrency_refuses_what_a_stage_cannot_have(bad: Any) -> None:
    pipeline = Pipeline([Stage("Fetch", 10, [asyncio.sleep])])
    with pytest.raises(ValueError, match=r"'Fetch' has 10 workers: its concurrency must be"):
        pipeline.set_concurrency("Fetch", bad)
    with pytest.raises(ValueError, match="not found"):
        pipeline.set_concurrency("Nope", 1)


def test_stages_without_limits_stay_on_the_direct_path() -> None:
    plain = Pipeline([Stage("A", 2, [asyncio.sleep])])
    limited = Pipeline([Stage("A", 2, [asyncio.sleep], task_timeout=1.0)])
    assert plain._runtimes[0].throttle is None
    assert plain._runtimes[0].simple
    assert limited._runtimes[0].throttle is not None
    assert not limited._runtimes[0].simple


# Issue 21 (examples/llm_batch.py made 2.3 calls/s paced at 4): a cool-down voids the
# start times handed out before it; they are given out again from the cool-down's end
# instead of queueing behind start times nobody uses any more.
def test_a_cool_down_gives_the_paced_start_times_out_afresh() -> None:
    gate = ConcurrencyGate(10, adaptive=True)
    gate.rate = 4.0
    waits = [gate.turn(100.0, version=0) for _ in range(4)]
    assert waits == [0.0, 0.25, 0.5, 0.75]
    # A 429 cooled the stage down until 101.0: every caller takes its turn again then.
    again = [gate.turn(101.0, version=1) for _ in range(4)]
    assert again == [0.0, 0.25, 0.5, 0.75]


# Issue 21: slow calls (1-3 s) seldom fill the gate; the pace still climbs back to the
# limit after a first 429 measured low (a slow start's burst): 86 % with a constant probe.
def test_adaptive_pace_climbs_back_with_slow_calls(vtime: VirtualTime) -> None:
    api = FakeApi(per_second=LIMIT, latency=(1.0, 3.0), retry_after_ms=True)

    pipeline = run_stage(vtime, api, ITEMS, workers=50, adaptive=True)

    assert pipeline.get_stats().items_failed == 0
    assert api.throughput_share() >= 0.87
    assert api.refused_share() <= 0.01


# Issue 21 (a gauge read "calls 5/s" against an API that takes 4): a call given a slot
# ahead of now has not started and is not counted as a call of the last second.
def test_calls_given_a_later_slot_are_not_counted_yet() -> None:
    clock = FakeClock(100.0)
    limit = RateLimit(per_second=4, name="api", clock=clock)
    for at in (99.2, 99.5, 99.9, 100.4):  # the last one's slot is still ahead
        limit._calls.append(at)
    state = limit.state()
    assert (state.calls_last_second, state.calls_last_minute) == (3, 3)
