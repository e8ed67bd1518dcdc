"""A rate-limited run for the app's tests and recordings, in virtual time (issue 21).

Prompt → Ask → Save over a few dozen documents: Ask calls a fake API (`tests.fake_api`)
that allows 3 calls in any second, under a `RateLimit` with a token budget, with
``adaptive=True`` (so it finds the calls-per-second limit from the 429s) and a
`task_timeout` that cuts the call that never answers; each call reports its tokens with
`set_task_usage`. Run through the app's live source on a `tests.vtime` loop, whose
clock the pipeline, the limit and the recorder all read: the same run, to the
microsecond, every time.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any, Final

from antflow import Pipeline, RateLimit, Stage, set_task_status, set_task_usage
from antflow_tui.demo import DEMO_START
from antflow_tui.live.runner import PipelineJob
from antflow_tui.live.source import LiveSource
from tests.fake_api import FakeApi, TooManyRequests

if TYPE_CHECKING:
    from collections.abc import Callable

DOCUMENTS: Final = 40
HANGS: Final = 7
"""The document whose first call never answers (the timeout cuts it)."""
TIMEOUT: Final = 6.0
TOKENS_PER_MINUTE: Final = 60_000


class LimitedRun:
    """The run's pipeline, its fake API and its clock (Unix-looking virtual time)."""

    def __init__(self, documents: int = DOCUMENTS) -> None:
        loop = asyncio.get_running_loop()
        self.api = FakeApi(per_second=3, latency=(0.6, 1.4), seed=21)
        self.items = [{"id": f"doc-{n:02d}", "value": n} for n in range(documents)]
        self.hung = False
        self.refused = asyncio.Event()
        """Set as the API answers its first 429."""
        self.cut = asyncio.Event()
        """Set as the timeout cuts the call that never answers."""

        def clock() -> float:
            return DEMO_START + loop.time()

        self.clock: Callable[[], float] = clock
        self.limit = RateLimit(
            tokens_per_minute=TOKENS_PER_MINUTE,
            name="fake-llm",
            estimate=lambda prompt: 400,
        )
        self.pipeline = Pipeline(
            [
                Stage("Prompt", 2, [self.prompt]),
                Stage(
                    "Ask",
                    8,
                    [self.ask],
                    rate_limit=self.limit,
                    adaptive=True,
                    task_timeout=TIMEOUT,
                    task_attempts=3,
                    task_wait_seconds=0.5,
                ),
                Stage("Save", 1, [self.save]),
            ],
            clock=clock,
        )

    async def prompt(self, value: int) -> int:
        set_task_status(f"prompt {value}")
        await asyncio.sleep(0.05)
        return value

    async def ask(self, value: int) -> int:
        set_task_status("waiting for the model")
        if value == HANGS and not self.hung:
            self.hung = True
            try:
                await asyncio.Event().wait()  # never answers: the task_timeout ends it
            finally:
                self.cut.set()
        try:
            await self.api.call(value, 200 + 7 * value)
        except TooManyRequests:
            self.refused.set()
            raise
        set_task_usage(input_tokens=120 + 5 * value, output_tokens=80 + 2 * value, model="fake-1")
        return value

    async def save(self, value: int) -> int:
        await asyncio.sleep(0.02)
        return value

    def source(self, **settings: Any) -> LiveSource:
        """The app's live source of this run (not started)."""
        job = PipelineJob("llm.py", self.pipeline, self.items, len(self.items))
        return LiveSource(job, clock=self.clock, stop_grace=0.0, **settings)
