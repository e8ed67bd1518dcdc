"""Budgets end to end, in virtual time, against a fake LLM (issue 22, cost).

A run given ``Budget(usd=..., tokens=...)`` reserves each call's estimate before it
starts, pauses when the next call would go over (calls running finish, nothing fails),
goes on when the budget is raised with nothing lost, leaves the calls it holds
unfinished when stopped, and reports all of it through ``pipeline.probe.budget()``.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Any

import pytest

from antflow import (
    Budget,
    ModelPrice,
    Pipeline,
    PipelineError,
    Prices,
    RateLimit,
    Stage,
    StatusTracker,
    set_task_usage,
    set_task_usage_from,
    use_prices,
)
from tests.fake_api import FakeApi, FakeLLM, TooManyRequests

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable

    from antflow.budget import BudgetState
    from tests.vtime import VirtualTime

MODEL = "fake-mini"
PRICE = ModelPrice(input_per_million=2.0, output_per_million=8.0, cached_input_per_million=0.5)
MAX_TOKENS = 400
"""The most tokens an answer may have (the request's max_tokens)."""
ITEMS = 200
WORKERS = 10


def prompt_tokens(key: int) -> int:
    return 500 + (key * 37) % 1000


def estimate(key: int) -> int:
    """What a call on `key` may use at most: its prompt and the longest answer."""
    return prompt_tokens(key) + MAX_TOKENS


def call_cost(prompt: int, answer: int) -> float:
    return PRICE.cost(prompt, answer)


ESTIMATES: dict[str, Callable[[], dict[str, Any]]] = {
    "rate-limit-estimate": lambda: {
        "rate_limit": RateLimit(tokens_per_minute=10**9, estimate=estimate)
    },
    "max_tokens": lambda: {"max_tokens": 1_500 + MAX_TOKENS},
}


@pytest.fixture
def priced() -> Prices:
    prices = Prices({MODEL: PRICE})
    use_prices(prices)
    return prices


def asker(llm: FakeLLM) -> Callable[[int], Any]:
    async def ask(key: int) -> str:
        response = await llm.create(key, prompt_tokens(key), MAX_TOKENS)
        set_task_usage_from(response)
        return response.text

    return ask


def stall(budget: Budget) -> asyncio.Event:
    """Set when the run comes to a stop on `budget`: calls wait for it, none running."""
    stopped = asyncio.Event()
    budget.on_paused(lambda state: stopped.set())
    return stopped


async def state_at_pause(
    budget: Budget, stage: Stage, items: Iterable[Any] = range(ITEMS)
) -> BudgetState:
    """Run `stage` alone under `budget` until the budget pauses it: the budget's state
    then (the pipeline shut down after)."""
    pipeline = Pipeline([stage], budget=budget, clock=asyncio.get_running_loop().time)
    stopped = stall(budget)
    await pipeline.start()
    await pipeline.feed(items)
    await stopped.wait()
    state = pipeline.probe.budget()
    assert state is not None
    await pipeline.shutdown()
    return state


def answered_cost(llm: FakeLLM) -> float:
    return sum(call_cost(prompt, answer) for _, prompt, answer in llm.answered)


# Issue 22: when the next call would go over, the run pauses (calls running finish,
# nothing fails, the probe says so and why); raising the budget continues it with 0 items
# lost or run twice; estimates that hold overspend nothing.
@pytest.mark.parametrize("how", list(ESTIMATES))
def test_a_budget_pauses_at_its_limit_and_a_raise_continues_it(
    vtime: VirtualTime, priced: Prices, how: str
) -> None:
    llm = FakeLLM()
    budget = Budget(usd=0.25)
    tracker = StatusTracker()
    held: list[BudgetState] = []
    ask = asker(llm)

    async def watched(key: int) -> str:
        # What a monitor would read while calls run: held back is not paused.
        held.append(budget.state())
        return await ask(key)

    async def main() -> tuple[Pipeline, BudgetState, list[str | None], int]:
        loop = asyncio.get_running_loop()
        stage = Stage("Ask", WORKERS, [watched], queue_capacity=ITEMS, **ESTIMATES[how]())
        pipeline = Pipeline([stage], budget=budget, clock=loop.time, status_tracker=tracker)
        stopped = stall(budget)
        await pipeline.start()
        await pipeline.feed(range(ITEMS))
        await stopped.wait()
        paused = pipeline.probe.budget()
        assert paused is not None
        waiting = [w.state.waiting_for for w in pipeline.probe.stages()[0].workers]
        done_at_pause = pipeline.get_stats().items_processed
        budget.raise_to(usd=100.0)
        await pipeline.join()
        return pipeline, paused, waiting, done_at_pause

    pipeline, paused, waiting, done_at_pause = vtime.run(main())

    reserved = {
        "rate-limit-estimate": max(estimate(key) for key in range(ITEMS)),
        "max_tokens": 1_500 + MAX_TOKENS,
    }[how] * PRICE.highest_per_token
    assert paused.paused
    assert paused.waiting == WORKERS == waiting.count("budget")
    assert 0 < done_at_pause < ITEMS
    assert paused.spent_usd <= 0.25  # estimates held: not a cent over
    assert paused.overshoot_usd == 0
    assert paused.spent_usd > 0.25 - reserved  # and it went as far as it could
    assert paused.reason is not None
    assert "of $0.25 spent" in paused.reason
    assert paused.unpriced == paused.unreserved == 0
    while_running = [state for state in held if state.waiting]
    assert while_running
    for state in while_running:
        assert not state.paused
        assert state.running > 0
        assert state.reason is not None
    stats = pipeline.get_stats()
    assert (stats.items_processed, stats.items_failed, stats.items_unfinished) == (ITEMS, 0, 0)
    assert llm.calls_per_key() == dict.fromkeys(range(ITEMS), 1)
    after = pipeline.probe.budget()
    assert after is not None
    assert not after.paused
    assert after.reason is None
    assert after.spent_usd == pytest.approx(answered_cost(llm))
    assert after.spent_tokens == sum(p + a for _, p, a in llm.answered)
    assert (after.reserved_usd, after.reserved_tokens, after.running) == (0.0, 0, 0)
    assert after.calls == ITEMS
    usage = tracker.get_usage(7)
    assert usage is not None
    assert usage.model == FakeLLM.model
    assert usage.cost == pytest.approx(call_cost(usage.input_tokens, usage.output_tokens))


# Issue 22: a token budget holds the same way, and the reason names the tokens.
def test_a_token_budget_pauses_without_prices(vtime: VirtualTime) -> None:
    llm = FakeLLM()
    budget = Budget(tokens=60_000)

    async def main() -> BudgetState:
        stage = Stage(
            "Ask", WORKERS, [asker(llm)], queue_capacity=ITEMS, max_tokens=1_500 + MAX_TOKENS
        )
        return await state_at_pause(budget, stage)

    state = vtime.run(main())

    assert state.spent_tokens <= 60_000
    assert state.spent_tokens > 60_000 - (1_500 + MAX_TOKENS)
    assert state.reason is not None
    assert "of 60,000 tokens spent" in state.reason
    # No prices: tokens are known, dollars are not (never 0 pretending to be known).
    assert state.unpriced == len(llm.answered)


# Issue 22: the overshoot is at most what the reservations let through. Estimates below
# what calls use: each call running when the budget is reached overspends by at most
# what it used beyond its reservation.
def test_estimates_too_low_overspend_at_most_what_calls_running_used_beyond_them(
    vtime: VirtualTime, priced: Prices
) -> None:
    llm = FakeLLM()
    budget = Budget(usd=0.25, tokens=150_000)

    def low(key: int) -> int:
        return prompt_tokens(key) // 2  # half the prompt, no answer

    async def main() -> BudgetState:
        limit = RateLimit(tokens_per_minute=10**9, estimate=low)
        return await state_at_pause(
            budget, Stage("Ask", WORKERS, [asker(llm)], queue_capacity=ITEMS, rate_limit=limit)
        )

    state = vtime.run(main())

    beyond = [call_cost(p, a) - PRICE.highest_per_token * low(key) for key, p, a in llm.answered]
    assert state.overshoot_usd <= WORKERS * max(beyond)
    tokens_beyond = [p + a - low(key) for key, p, a in llm.answered]
    assert state.overshoot_tokens <= WORKERS * max(tokens_beyond)
    assert state.spent_usd == pytest.approx(answered_cost(llm))


# Issue 22: a stage with no estimate learns one: its first call goes alone, then each
# call reserves the most a call used so far; the overshoot is at most what the calls
# running when the budget is reached used beyond that.
def test_a_stage_without_an_estimate_learns_one_from_its_first_call(
    vtime: VirtualTime, priced: Prices
) -> None:
    llm = FakeLLM()
    budget = Budget(usd=0.1)

    async def main() -> BudgetState:
        return await state_at_pause(
            budget, Stage("Ask", WORKERS, [asker(llm)], queue_capacity=ITEMS)
        )

    state = vtime.run(main())

    assert llm.started[0][1] == 0
    assert llm.started[1][1] == 1  # the second call waited for the first one's answer
    assert llm.most_running == WORKERS
    assert state.unreserved == 1  # only the first call went without a reservation
    costs = [call_cost(p, a) for _, p, a in llm.answered]
    assert state.spent_usd == pytest.approx(sum(costs))
    assert state.overshoot_usd <= WORKERS * (max(costs) - costs[0])


# Issue 22: a run stopped while paused by its budget leaves the calls it holds
# unfinished (no failure, no call made), and feeding them again runs each once.
def test_a_run_stopped_while_paused_by_its_budget_resumes_with_nothing_lost(
    vtime: VirtualTime, priced: Prices
) -> None:
    llm = FakeLLM()
    budget = Budget(usd=0.2)
    tracker = StatusTracker()
    items = [{"id": f"doc-{key}", "value": key} for key in range(ITEMS)]

    async def main() -> tuple[Pipeline, list[Any], list[Any]]:
        loop = asyncio.get_running_loop()
        stage = Stage(
            "Ask", WORKERS, [asker(llm)], queue_capacity=ITEMS, max_tokens=1_500 + MAX_TOKENS
        )
        pipeline = Pipeline([stage], budget=budget, clock=loop.time, status_tracker=tracker)
        stopped = stall(budget)
        await pipeline.start()
        await pipeline.feed(items)
        await stopped.wait()
        await pipeline.shutdown()  # graceful: it does not wait for the budget
        completed = [result.id for result in pipeline.results]
        unfinished = pipeline.get_unfinished_items()
        # Started again before the budget is raised, it pauses again, and says so.
        stopped = stall(budget)
        await pipeline.start()
        by_id = {item["id"]: item for item in items}
        await pipeline.feed([by_id[item_id] for item_id in unfinished])
        await stopped.wait()
        budget.raise_to(usd=50.0)
        await pipeline.join()
        return pipeline, completed, unfinished

    pipeline, completed, unfinished = vtime.run(main())

    assert completed
    assert unfinished
    assert set(completed).isdisjoint(unfinished)
    assert len(completed) + len(unfinished) == ITEMS
    stats = pipeline.get_stats()
    assert (stats.items_processed, stats.items_failed, stats.items_unfinished) == (ITEMS, 0, 0)
    assert llm.calls_per_key() == dict.fromkeys(range(ITEMS), 1)
    assert tracker.get_stats()["completed"] == ITEMS


# Issue 22: stages that never reported a usage (parsing, scoring) are not held: items
# past the paid call finish while the run is paused.
def test_stages_that_cost_nothing_go_on_while_the_budget_pauses(
    vtime: VirtualTime, priced: Prices
) -> None:
    llm = FakeLLM()
    budget = Budget(usd=0.15)
    scored: list[int] = []

    async def prompt(key: int) -> int:
        await asyncio.sleep(0.05)
        return key

    drained = asyncio.Event()

    def check_drained(*_: object) -> None:
        # The budget stopped the paid stage and the free one took every item it let by.
        state = budget.state()
        if state.paused and not state.running and len(scored) == len(llm.answered):
            drained.set()

    async def score(text: str) -> str:
        await asyncio.sleep(0.3)
        scored.append(int(text.split()[-1]))
        check_drained()
        return text

    async def main() -> tuple[Pipeline, int]:
        loop = asyncio.get_running_loop()
        pipeline = Pipeline(
            [
                Stage("Prompt", 2, [prompt], queue_capacity=ITEMS),
                Stage(
                    "Ask",
                    WORKERS,
                    [asker(llm)],
                    queue_capacity=ITEMS,
                    max_tokens=1_500 + MAX_TOKENS,
                ),
                Stage("Score", 1, [score]),
            ],
            budget=budget,
            clock=loop.time,
        )
        budget.on_paused(check_drained)
        await pipeline.start()
        await pipeline.feed(range(ITEMS))
        await drained.wait()
        processed = pipeline.get_stats().items_processed
        await pipeline.shutdown()
        return pipeline, processed

    pipeline, processed = vtime.run(main())

    assert processed == len(llm.answered) == len(scored) > 0
    state = pipeline.probe.budget()
    assert state is not None
    assert state.unreserved == 0  # the free stages' first calls cost nothing
    views = {view.info.name: view for view in pipeline.probe.stages()}
    assert views["Prompt"].stats.completed_items > len(llm.answered)


# Issue 22: without a price, tokens are known and dollars are not: every report counts
# as unpriced ("12 calls without a price"), a warning names the model once, and the
# token limit still holds.
def test_calls_without_a_price_are_counted_and_named_once(
    vtime: VirtualTime, caplog: pytest.LogCaptureFixture
) -> None:
    llm = FakeLLM(model="unlisted-model")
    use_prices(Prices({MODEL: PRICE}))
    budget = Budget(usd=1.0, tokens=40_000)

    async def main() -> BudgetState:
        stage = Stage(
            "Ask", WORKERS, [asker(llm)], queue_capacity=ITEMS, max_tokens=1_500 + MAX_TOKENS
        )
        return await state_at_pause(budget, stage)

    with caplog.at_level(logging.WARNING, logger="antflow.budget"):
        state = vtime.run(main())

    assert state.spent_usd == 0.0
    assert state.unpriced == len(llm.answered) > 0
    assert state.spent_tokens <= 40_000 < state.spent_tokens + 1_500 + MAX_TOKENS
    told = [r.getMessage() for r in caplog.records if "no price" in r.getMessage()]
    assert len(told) == 1
    assert "'unlisted-model'" in told[0]
    # Before the stage's model was known, calls held its tokens at the dearest price
    # listed; after, the model has none: the dollars could not be reserved.
    assert state.unreserved > 0


# Issue 22: cost= given by the task counts without any price file; the stage learns
# what its tokens cost from its reports and reserves by it.
def test_a_cost_given_by_the_task_counts_and_prices_the_reservations(vtime: VirtualTime) -> None:
    budget = Budget(usd=0.1)

    async def ask(key: int) -> int:
        await asyncio.sleep(1.0)
        set_task_usage(input_tokens=900, output_tokens=100, cost=0.01, model="own")
        return key

    async def main() -> BudgetState:
        stage = Stage("Ask", 4, [ask], max_tokens=1_000, queue_capacity=ITEMS)
        return await state_at_pause(budget, stage, range(50))

    state = vtime.run(main())

    # The first calls (up to 4 at once) ran before any report said what a token costs;
    # every later one reserved its 1,000 tokens at $0.01 per 1,000.
    assert state.unreserved <= 4
    assert state.spent_usd == pytest.approx(0.01 * state.calls)
    assert state.spent_usd <= 0.1 + 4 * 0.01
    assert state.unpriced == 0


# Issue 22: budgets and rate limits together: 429s are retried through both, a call
# refused holds nothing afterwards, and after a raise every item is done once.
def test_a_budget_with_a_rate_limit_and_429s_loses_nothing(
    vtime: VirtualTime, priced: Prices
) -> None:
    api = FakeApi(per_second=4, latency=(0.0, 0.0))
    llm = FakeLLM(limit=api)
    budget = Budget(usd=0.2)
    limit = RateLimit(per_second=6, tokens_per_minute=10**8, estimate=estimate)

    async def main() -> tuple[Pipeline, BudgetState]:
        loop = asyncio.get_running_loop()
        stage = Stage(
            "Ask", WORKERS, [asker(llm)], queue_capacity=ITEMS, rate_limit=limit, adaptive=True
        )
        pipeline = Pipeline([stage], budget=budget, clock=loop.time)
        stopped = stall(budget)
        await pipeline.start()
        await pipeline.feed(range(ITEMS))
        await stopped.wait()
        paused = pipeline.probe.budget()
        assert paused is not None
        budget.raise_by(usd=100.0)
        await pipeline.join()
        return pipeline, paused

    pipeline, paused = vtime.run(main())

    assert api.refused_share() > 0  # the hidden limit did answer 429s
    assert paused.spent_usd <= 0.2
    stats = pipeline.get_stats()
    assert (stats.items_processed, stats.items_failed) == (ITEMS, 0)
    assert llm.calls_per_key() == dict.fromkeys(range(ITEMS), 1)
    state = pipeline.probe.budget()
    assert state is not None
    assert state.spent_usd == pytest.approx(answered_cost(llm))
    assert (state.reserved_usd, state.reserved_tokens, state.running) == (0.0, 0, 0)


# Issue 22: a budget set, replaced or taken off while the run is paused by it.
def test_set_budget_live_replaces_or_lifts_the_pause(vtime: VirtualTime, priced: Prices) -> None:
    llm = FakeLLM()
    first = Budget(usd=0.05)
    second = Budget(usd=0.1)

    async def main() -> tuple[Pipeline, list[BudgetState | None]]:
        loop = asyncio.get_running_loop()
        stage = Stage(
            "Ask", WORKERS, [asker(llm)], queue_capacity=ITEMS, max_tokens=1_500 + MAX_TOKENS
        )
        pipeline = Pipeline([stage], clock=loop.time)
        seen: list[BudgetState | None] = [pipeline.probe.budget()]
        await pipeline.start()
        pipeline.set_budget(first)
        stopped = stall(first)
        await pipeline.feed(range(ITEMS))
        await stopped.wait()
        seen.append(pipeline.probe.budget())
        stopped = stall(second)
        pipeline.set_budget(second)  # a fresh budget: the calls held wait on it
        await stopped.wait()
        seen.append(pipeline.probe.budget())
        pipeline.set_budget(None)
        await pipeline.join()
        seen.append(pipeline.probe.budget())
        return pipeline, seen

    pipeline, seen = vtime.run(main())

    assert seen[0] is None
    assert seen[-1] is None
    assert seen[1] is not None
    assert seen[1].usd == 0.05
    assert seen[1].paused
    assert seen[2] is not None
    assert seen[2].usd == 0.1
    assert 0 < seen[2].spent_usd <= 0.1
    assert pipeline.get_stats().items_processed == ITEMS
    assert llm.calls_per_key() == dict.fromkeys(range(ITEMS), 1)


def test_budget_limits_are_checked_and_raised() -> None:
    with pytest.raises(ValueError, match="give usd=, tokens= or both"):
        Budget()
    for bad in (0, -1.0, float("nan"), float("inf"), "5", True):
        with pytest.raises(ValueError, match="usd must be a number of US dollars above 0"):
            Budget(usd=bad)  # type: ignore[arg-type]
        with pytest.raises(ValueError, match="tokens must be a number of tokens >= 1"):
            Budget(tokens=bad)  # type: ignore[arg-type]
    budget = Budget(usd=5)
    budget.raise_by(usd=2.5)
    assert (budget.usd, budget.tokens) == (7.5, None)
    budget.raise_to(tokens=1e6)
    assert (budget.usd, budget.tokens) == (7.5, 1_000_000)
    with pytest.raises(ValueError, match="no dollar limit to raise"):
        Budget(tokens=10).raise_by(usd=1)
    with pytest.raises(ValueError, match="give usd=, tokens= or both"):
        budget.raise_to()
    with pytest.raises(PipelineError, match=r"budget must be an antflow\.Budget"):
        Pipeline([Stage("A", 1, [asyncio.sleep])], budget=5.0)  # type: ignore[arg-type]


# Issue 22: a pipeline without a budget pays nothing per item: its stages keep the
# direct path and the probe reports no budget.
def test_without_a_budget_stages_stay_on_the_direct_path() -> None:
    plain = Pipeline([Stage("A", 2, [asyncio.sleep])])
    budgeted = Pipeline([Stage("A", 2, [asyncio.sleep])], budget=Budget(usd=1))
    assert plain._runtimes[0].simple
    assert plain._runtimes[0].throttle is None
    assert plain.probe.budget() is None
    assert not budgeted._runtimes[0].simple
    state = budgeted.probe.budget()
    assert state is not None
    assert (state.usd, state.spent_usd, state.paused) == (1.0, 0.0, False)


# Issue 22: a first call refused (429) or failed says nothing of what calls cost: the
# stage is not taken for free, and the next call goes alone again.
def test_a_first_call_that_fails_does_not_make_a_stage_free(vtime: VirtualTime) -> None:
    budget = Budget(usd=0.03)
    refused: list[int] = []
    started: list[tuple[int, int]] = []
    reported: list[int] = []

    async def ask(key: int) -> int:
        started.append((key, len(reported)))
        await asyncio.sleep(1.0)
        if not refused:
            refused.append(key)
            raise TooManyRequests({"retry-after": "1"})
        if len(refused) == 1:
            refused.append(key)
            raise ValueError("a failure, retried")
        set_task_usage(input_tokens=900, output_tokens=100, cost=0.01, model="own")
        reported.append(key)
        return key

    async def main() -> BudgetState:
        stage = Stage("Ask", 5, [ask], queue_capacity=50, task_wait_seconds=0.0)
        return await state_at_pause(budget, stage, range(50))

    state = vtime.run(main())

    # Three calls alone: the 429, the failure, then the first that reported.
    assert [count for _, count in started[:4]] == [0, 0, 0, 1]
    assert state.spent_usd <= 0.03 + 1e-9
    # Only the call that reported went without a reservation (the others cost nothing).
    assert state.unreserved == 1
