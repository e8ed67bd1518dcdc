"""A run that costs (issue 22): one stage "Ask" (2 workers, ``max_tokens=150``) whose calls
each wait on their own gate, then report 100 tokens in and 50 out of `MODEL`, priced by
`PRICES` at $0.01 a call. For the budget's pilot tests and its recording."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from antflow import ModelPrice, Pipeline, Prices, Stage, StatusTracker, set_task_usage
from antflow.testing import FakeClock

MODEL = "fake-mini"
# 100 tokens in at $40/M and 50 out at $120/M: $0.01 a call.
PRICE = ModelPrice(input_per_million=40.0, output_per_million=120.0)
ITEMS = 6
PRICES = Prices({MODEL: PRICE})


@dataclass
class CostlyRun:
    """One stage whose calls each wait on their own gate, then report their usage."""

    clock: FakeClock = field(default_factory=lambda: FakeClock(1_700_000_000.0))
    gates: dict[int, asyncio.Future[None]] = field(default_factory=dict)
    started: list[int] = field(default_factory=list)

    def __post_init__(self) -> None:
        async def ask(value: int) -> int:
            self.started.append(value)
            await self.gate(value)
            self.clock.advance(1.0)
            set_task_usage(input_tokens=100, output_tokens=50, model=MODEL)
            return value

        self.pipeline = Pipeline(
            [Stage("Ask", 2, [ask], max_tokens=150, task_attempts=1)],
            status_tracker=StatusTracker(),
            clock=self.clock,
        )

    def gate(self, value: int) -> asyncio.Future[None]:
        gate = self.gates.get(value)
        if gate is None:
            gate = self.gates[value] = asyncio.get_running_loop().create_future()
        return gate

    def release(self, *values: int) -> None:
        for value in values:
            gate = self.gate(value)
            if not gate.done():
                gate.set_result(None)
