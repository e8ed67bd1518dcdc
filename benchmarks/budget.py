"""Budgets: how far past its limit a run goes before it pauses (the overshoot).

Run by hand:  .venv/bin/python benchmarks/budget.py [SEEDS]

In virtual time, against the fake LLM of tests/fake_api.py (OpenAI-shaped answers,
prompts of 500-1,500 tokens, answers of 50-400 tokens, 0.5-2 s a call), priced at $2 /
$8 per million tokens. A stage of 10, 50 or 200 workers runs until its budget ($0.50
and 200,000 tokens) pauses it; the overshoot is what was spent past the limit by then.
Each setup runs SEEDS times (default 20) and the worst is shown, beside the bound the
reservations allow: the calls running when the limit was reached, each by what it used
beyond its reservation.

- ``RateLimit estimate``: prompt + max_tokens per call (an estimate that holds);
- ``max_tokens=1900``: one estimate for every call, that holds;
- ``estimate too low``: half the prompt, no answer;
- ``no estimate``: the stage reserves nothing.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from antflow import (
    Budget,
    ModelPrice,
    Pipeline,
    Prices,
    RateLimit,
    Stage,
    set_task_usage_from,
    use_prices,
)
from tests.fake_api import FakeLLM
from tests.vtime import VirtualTime

PRICE = ModelPrice(input_per_million=2.0, output_per_million=8.0)
MAX_TOKENS = 400
USD = 0.5
TOKENS = 200_000


def prompt_tokens(key: int) -> int:
    return 500 + (key * 37) % 1000


def holding(key: int) -> int:
    return prompt_tokens(key) + MAX_TOKENS


def too_low(key: int) -> int:
    return prompt_tokens(key) // 2


def limit(estimate: Any) -> dict[str, Any]:
    return {"rate_limit": RateLimit(tokens_per_minute=1e9, estimate=estimate)}


SETUPS: dict[str, Any] = {
    "RateLimit estimate": lambda: limit(holding),
    "max_tokens=1900": lambda: {"max_tokens": 1_500 + MAX_TOKENS},
    "estimate too low": lambda: limit(too_low),
    "no estimate": lambda: {},
}


def overshoot(workers: int, seed: int, options: dict[str, Any]) -> tuple[float, int]:
    llm = FakeLLM(seed=seed)
    budget = Budget(usd=USD, tokens=TOKENS)

    async def ask(key: int) -> str:
        response = await llm.create(key, prompt_tokens(key), MAX_TOKENS)
        set_task_usage_from(response)
        return response.text

    async def main() -> tuple[float, int]:
        loop = asyncio.get_running_loop()
        stopped = asyncio.Event()
        budget.on_paused(lambda state: stopped.set())
        items = 2_000
        stage = Stage("Ask", workers, [ask], queue_capacity=items, **options)
        pipeline = Pipeline([stage], budget=budget, clock=loop.time)
        await pipeline.start()
        await pipeline.feed(range(items))
        await stopped.wait()
        state = budget.state()
        await pipeline.shutdown(graceful=False)
        return state.overshoot_usd, state.overshoot_tokens

    return VirtualTime().run(main())


def main() -> None:
    seeds = int(sys.argv[1]) if len(sys.argv) > 1 else 20
    use_prices(Prices({FakeLLM.model: PRICE}))
    most_cost = PRICE.cost(1_499, MAX_TOKENS)
    print(f"budget ${USD} and {TOKENS:,} tokens; worst of {seeds} seeds (virtual time)")
    print(f"  {'':20}{'workers':>8}{'$ over':>10}{'tokens over':>13}{'$ bound':>10}")
    for label, make in SETUPS.items():
        for workers in (10, 50, 200):
            worst = [overshoot(workers, seed, make()) for seed in range(seeds)]
            usd = max(w[0] for w in worst)
            tokens = max(w[1] for w in worst)
            if label == "no estimate":
                bound = workers * most_cost
            elif label == "estimate too low":
                bound = workers * (most_cost - min(too_low(k) for k in range(1000)) * 8e-6)
            else:
                bound = 0.0
            print(f"  {label:20}{workers:>8}{usd:>10.4f}{tokens:>13,}{bound:>10.4f}")


if __name__ == "__main__":
    main()
