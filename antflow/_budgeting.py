"""A stage's side of a pipeline's `Budget`: what each call reserves, and waiting for room.

Estimates, in order: the stage's `RateLimit` ``estimate``, its ``max_tokens``, else one
learned from its calls (the first goes alone; then each reserves the most a call used
so far). Dollars are the tokens at the dearest token of the stage's model. A call that
does not fit waits, shown as waiting for the budget; a graceful stop does not wait for
it (see `Pipeline._settled`).
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Any

from antflow.budget import BUDGET, Budget, Hold
from antflow.prices import current_prices

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    from antflow._runtime import StageRuntime, WorkerRecord
    from antflow.types import TaskUsage

logger = logging.getLogger(__name__)


class StageBudget:
    """One stage's side of a pipeline's `Budget`: its estimates, and the reservation of
    each call its workers are making.

    A stage with no estimate (no RateLimit ``estimate``, no ``max_tokens``) learns one:
    its first call goes alone, and each call then reserves the most a call of the stage
    has used so far. A stage whose first call ends well without a usage report costs
    nothing: its calls are not held any more (until one reports a usage).
    """

    __slots__ = (
        "budget",
        "costly",
        "detached",
        "estimated",
        "free",
        "holds",
        "learned_tokens",
        "learned_usd",
        "on_parked",
        "probe",
        "rate",
        "runtime",
        "stopping",
    )

    def __init__(
        self,
        budget: Budget,
        runtime: StageRuntime,
        on_parked: Callable[[], None],
        stopping: Callable[[], bool],
    ) -> None:
        stage = runtime.stage
        self.budget = budget
        self.runtime = runtime
        self.on_parked = on_parked
        """Called when a call begins to wait: a graceful stop waits for items in hand,
        but not for calls the budget holds (see `Pipeline._settled`)."""
        self.stopping = stopping
        """Whether the pipeline is shutting down: calls held then stay held."""
        limit = stage.rate_limit
        self.estimated = (limit is not None and limit.estimate is not None) or bool(
            stage.max_tokens
        )
        """Its calls' tokens are estimated before they start."""
        self.costly = self.estimated
        """The stage's calls cost: it has an estimate, or reported a usage."""
        self.free = False
        """A call ended well without reporting a usage, and none ever reported one."""
        self.probe: asyncio.Future[None] | None = None
        """Done when the first call, made alone, ends (while the stage is not known to
        cost or not)."""
        self.rate = 0.0
        """The most US dollars per token a report of the stage cost."""
        self.learned_tokens = 0
        """The most tokens one call of the stage used (its estimate when it has none)."""
        self.learned_usd = 0.0
        """The most US dollars one call of the stage cost."""
        self.holds: dict[WorkerRecord, Hold] = {}
        self.detached = False
        """The pipeline no longer has this budget: calls waiting go on."""

    def tokens_for(self, value: Any) -> int:
        """The tokens a call on `value` reserves: its estimate, else the most a call
        used so far.

        Raises:
            TypeError: the RateLimit's `estimate` returned something that is not a number
                of tokens.
        """
        stage = self.runtime.stage
        limit = stage.rate_limit
        if limit is not None and limit.estimate is not None:
            return limit.tokens_for(value)
        return stage.max_tokens or self.learned_tokens

    def usd_for(self, tokens: int) -> float | None:
        """The dollars `tokens` may cost (None: nothing to price them by): at the
        dearest token of the stage's model (the latest one it reported), else of its
        dearest report so far, else, while it has named no model, of the dearest model
        in the price file. A stage with no estimate reserves the dearest call so far."""
        if not self.estimated and self.learned_usd > 0:
            return self.learned_usd
        if not tokens:
            return None
        prices = current_prices()
        usage = self.runtime.usage
        model = None if usage is None else usage.model
        if prices is not None and model is not None:
            price = prices.price_of(model)
            if price is not None:
                return tokens * price.highest_per_token
        if self.rate > 0:
            return tokens * self.rate
        if model is None and prices is not None and prices.highest_per_token is not None:
            return tokens * prices.highest_per_token
        return None

    async def reserve(self, worker: WorkerRecord, value: Any) -> Hold | None:
        """Wait until the call fits the budget and reserve its estimate (None: the stage
        does not cost, or the budget was taken off the pipeline)."""
        while not self.costly:
            if self.free:
                return None
            probe = self.probe
            if probe is None:
                # Unreserved only if it turns out to cost (see `release`).
                hold = self.budget.take(0, 0.0)
                hold.probing = True
                self.probe = asyncio.get_running_loop().create_future()
                self.holds[worker] = hold
                return hold
            await self._parked(worker, asyncio.shield(probe))
            if self.detached:
                return None
        budget = self.budget
        tokens = self.tokens_for(value)
        usd = self.usd_for(tokens) if budget.usd is not None else 0.0
        if not budget.fits(tokens, usd or 0.0):
            budget.waiting += 1
            try:
                while True:
                    await self._parked(worker, budget.wait(tokens, usd or 0.0))
                    if self.detached:
                        return None
                    if not self.stopping() and budget.fits(tokens, usd or 0.0):
                        break
            finally:
                budget.waiting -= 1
                if not budget.waiting:
                    budget.pause_over()
        hold = budget.take(tokens, usd)
        self.holds[worker] = hold
        return hold

    async def _parked(self, worker: WorkerRecord, waiting: Awaitable[None]) -> None:
        worker.waiting_for = BUDGET
        self.on_parked()
        try:
            await waiting
        finally:
            worker.waiting_for = None

    def charge(self, worker: WorkerRecord, usage: TaskUsage) -> None:
        """A task of the stage reported `usage` (see `set_task_usage`)."""
        if not self.costly and not self.estimated:
            logger.warning(
                "stage %r reports a usage but has no token estimate: the budget holds the "
                "most a call of it has used so far, and calls running may pass it by more; "
                "give the stage max_tokens=... or its RateLimit an estimate",
                self.runtime.name,
            )
        self.costly = True
        self.free = False
        cost = usage.cost
        tokens = usage.total_tokens
        if cost and tokens and cost > self.rate * tokens:
            self.rate = cost / tokens
        self.budget.charge(self.holds.get(worker), usage)

    def release(self, worker: WorkerRecord, hold: Hold, ended_well: bool) -> None:
        """The worker's call ended (`ended_well`: it returned)."""
        if self.holds.get(worker) is hold:
            del self.holds[worker]
        self.learned_tokens = max(self.learned_tokens, hold.used_tokens)
        self.learned_usd = max(self.learned_usd, hold.used_usd)
        if hold.probing:
            if ended_well and not hold.reports and not self.costly:
                self.free = True
            if hold.reports and self.budget.usd is not None:
                self.budget.unreserved += 1
            probe, self.probe = self.probe, None
            if probe is not None and not probe.done():
                probe.set_result(None)
        self.budget.release(hold)
