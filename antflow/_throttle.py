"""Throttle: what runs around each call of a stage with a timeout, limit or adaptive
concurrency: the concurrency gate, the cool-down, the rate limit's slot, the timeout,
and the accounting of rate-limit answers.

A stage with none of these has no Throttle and its workers call tasks directly (see
`_worker`); one gets a Throttle at its first rate-limit answer, so that the cool-down
holds its other workers too.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any, Final, TypeVar

import antflow._worker as worker_module
from antflow._adaptive import CLEAN, LIMITED, OTHER, ConcurrencyGate, Ticket
from antflow.exceptions import TaskTimeoutError
from antflow.ratelimit import Cooldown, RateLimit, Reservation
from antflow.retrying import DEFAULT_BACKOFF, is_rate_limit_error, requested_wait

if TYPE_CHECKING:
    from collections.abc import Awaitable

    from antflow._budgeting import StageBudget
    from antflow._runtime import Entry, StageRuntime, WorkerRecord
    from antflow.pipeline import Pipeline

CONCURRENCY: Final = "concurrency"
"""`WorkerState.waiting_for` while a worker waits for room under the stage's concurrency."""
COOL_DOWN: Final = "cool-down"
"""`WorkerState.waiting_for` while a worker waits out a rate-limit answer."""

T = TypeVar("T")


class _GivenUp(Exception):
    """A shutdown gave up on the worker while it waited to make its call."""


class Throttle:
    """One stage's timeout, rate limit, cool-down and concurrency gate, and its counts."""

    def __init__(self, runtime: StageRuntime) -> None:
        stage = runtime.stage
        self.runtime = runtime
        self.timeout: float | None = stage.task_timeout
        self.limit: RateLimit | None = stage.rate_limit
        self.gate: ConcurrencyGate | None = (
            ConcurrencyGate(stage.workers, adaptive=True) if stage.adaptive else None
        )
        self._cooldown: Cooldown | None = self.limit.cooldown if self.limit else None
        self.budget: StageBudget | None = None
        """The stage's side of the pipeline's `Budget`, if it has one."""
        self.rate_limited_retries = 0
        """Rate-limited attempts that were tried again."""
        self.timeouts = 0
        """Attempts cut by `task_timeout`."""

    @staticmethod
    def needed(runtime: StageRuntime) -> bool:
        """Whether the stage's calls need a Throttle from the start."""
        stage = runtime.stage
        return stage.task_timeout is not None or stage.rate_limit is not None or stage.adaptive

    def cooldown(self, pipeline: Pipeline) -> Cooldown:
        """The cool-down this stage's calls wait out: its RateLimit's, or its own."""
        cooldown = self._cooldown
        if cooldown is None:
            cooldown = self._cooldown = Cooldown(pipeline._clock)
        return cooldown

    def current_cooldown(self) -> Cooldown | None:
        """The stage's cool-down, if it has had one (for monitors)."""
        return self._cooldown

    def set_concurrency(self, limit: int) -> None:
        gate = self.gate
        if gate is None:
            gate = self.gate = ConcurrencyGate(limit, adaptive=False)
        gate.set(limit)

    # ------------------------------------------------------------------ one call

    async def attempt(
        self, pipeline: Pipeline, worker: WorkerRecord, entry: Entry, index: int, value: Any
    ) -> Any:
        """Make one call of task `index` on `value`: wait for the budget, room, the
        cool-down and a slot of the rate limit, then run it within the timeout."""
        budget = self.budget
        if budget is None:
            return await self._attempt(pipeline, worker, entry, index, value)
        # Before the gate and the rate limit: a call the budget holds takes no slot.
        hold = await budget.reserve(worker, value)
        while hold is None and budget.detached and self.budget is not None:
            budget = self.budget  # replaced while the call waited: wait for the new one
            hold = await budget.reserve(worker, value)
        ended_well = False
        try:
            output = await self._attempt(pipeline, worker, entry, index, value)
            ended_well = True
            return output
        finally:
            if hold is not None:
                budget.release(worker, hold, ended_well)

    async def _attempt(
        self, pipeline: Pipeline, worker: WorkerRecord, entry: Entry, index: int, value: Any
    ) -> Any:
        gate = self.gate
        ticket: Ticket | None = None
        clock = pipeline._clock
        if gate is not None:
            taking = gate.acquire()
            ticket = await (_waiting(worker, CONCURRENCY, taking) if gate.full() else taking)
        outcome = OTHER
        reservation: Reservation | None = None
        limit = self.limit
        reports = _reports(worker)
        called: float | None = None
        try:
            if gate is not None and gate.adaptive:
                assert ticket is not None
                await self._take_turn(pipeline, worker, gate, ticket)
            if limit is not None:
                reservation = await self._take_slot(pipeline, worker, limit, value)
            else:
                await self._cool_down(pipeline, worker, self.cooldown(pipeline))
            if worker.entry is not entry:
                raise _GivenUp
            called = clock()
            output = await self._call(worker, entry, index, value)
            outcome = CLEAN
            return output
        except BaseException as error:
            if is_rate_limit_error(error, self.runtime.rate_limit_on):
                outcome = LIMITED
            raise
        finally:
            if ticket is not None:
                ended = clock()
                seconds = 0.0 if called is None else ended - called
                gate.release(ticket, outcome, seconds, ended)  # type: ignore[union-attr]
            if reservation is not None:
                assert limit is not None
                limit.settle(reservation, _used(worker, reports, called is not None, outcome))

    async def _call(self, worker: WorkerRecord, entry: Entry, index: int, value: Any) -> Any:
        runtime = self.runtime
        task = runtime.tasks[index]
        awaitable: Any = None
        try:
            if runtime.unpack_args:
                awaitable = worker_module._call_unpacked(task, value)
            else:
                awaitable = task(value)
            semaphore = runtime.semaphores[index]
            if semaphore is not None:
                if semaphore.locked():
                    await _waiting(worker, runtime.task_names[index], semaphore.acquire())
                else:
                    await semaphore.acquire()
                if worker.entry is not entry:
                    close = getattr(awaitable, "close", None)
                    if close is not None:
                        close()
                    semaphore.release()
                    raise _GivenUp
            try:
                if self.timeout is None:
                    return await awaitable
                return await self._within_timeout(awaitable, runtime.task_names[index])
            finally:
                if semaphore is not None:
                    semaphore.release()
        except BaseException as error:
            explained = worker_module._explain(error, awaitable, runtime.task_names[index])
            if explained is not error:
                raise explained from None
            raise

    async def _within_timeout(self, awaitable: Any, name: str) -> Any:
        timeout = self.timeout
        assert timeout is not None
        scope = asyncio.timeout(timeout)
        try:
            async with scope:
                return await awaitable
        except TimeoutError as error:
            if not scope.expired():
                raise  # the task's own TimeoutError
            self.timeouts += 1
            # Chained: the traceback shows the line the task was stuck on.
            raise TaskTimeoutError(name, timeout) from error

    async def _cool_down(
        self, pipeline: Pipeline, worker: WorkerRecord, cooldown: Cooldown
    ) -> None:
        # One sleep per cool-down: a sleep that returns early (an injected one in tests)
        # must not turn this into a busy loop; only a newer rate-limit answer waits again.
        while True:
            remaining = cooldown.until - cooldown.clock()
            if remaining <= 0:
                return
            version = cooldown.version
            await _waiting(worker, COOL_DOWN, pipeline._sleep(remaining))
            if cooldown.version == version:
                return

    async def _take_turn(
        self, pipeline: Pipeline, worker: WorkerRecord, gate: ConcurrencyGate, ticket: Ticket
    ) -> None:
        """Wait for the call's turn under the adaptive pace, after any cool-down; a
        cool-down that begins meanwhile sends it back in line after it, so calls never
        all start together when it ends."""
        cooldown = self.cooldown(pipeline)
        while True:
            await self._cool_down(pipeline, worker, cooldown)
            version = cooldown.version
            delay = gate.turn(pipeline._clock(), version)
            if delay > 0:
                # Held back by the pace, the stage wanted more than it: a clean answer
                # may raise the pace. (Calls slower than the pace's spacing seldom fill
                # the gate, and growing only on a full gate left them at 86 %.)
                ticket.busy = True
                await _waiting(worker, CONCURRENCY, pipeline._sleep(delay))
            if cooldown.version == version:
                return

    async def _take_slot(
        self, pipeline: Pipeline, worker: WorkerRecord, limit: RateLimit, value: Any
    ) -> Reservation:
        tokens = limit.tokens_for(value)
        label = COOL_DOWN if limit.cooldown.remaining() > 0 else limit.name
        worker.waiting_for = label
        try:
            return await limit.admit(tokens, pipeline._sleep)
        finally:
            worker.waiting_for = None

    # ------------------------------------------------------------------ answers

    def note_rate_limited(self, pipeline: Pipeline, error: BaseException, retry: int) -> None:
        """A call got a rate-limit answer and will be tried again: cool down every call
        sharing the limit for what the server asked (or the backoff, if it asked
        nothing)."""
        self.rate_limited_retries += 1
        asked = requested_wait(error)
        if asked is None:
            asked = (self.runtime.stage.backoff or DEFAULT_BACKOFF).wait(retry)
        self.cooldown(pipeline).extend(asked)


def attach_throttle(runtime: StageRuntime) -> Throttle:
    """The stage's Throttle, made now if it had none: its workers stop calling tasks
    directly and go through it from their next call on."""
    throttle = runtime.throttle
    if throttle is None:
        throttle = runtime.throttle = Throttle(runtime)
        runtime.simple = False
    return throttle


async def _waiting(worker: WorkerRecord, what: str, waiting: Awaitable[T]) -> T:
    """Await `waiting`, which will wait, showing the worker as waiting for `what`."""
    worker.waiting_for = what
    try:
        return await waiting
    finally:
        worker.waiting_for = None


def _reports(worker: WorkerRecord) -> tuple[int, int]:
    usage = worker.usage
    return (0, 0) if usage is None else (usage.reports, usage.total_tokens)


def _used(worker: WorkerRecord, before: tuple[int, int], called: bool, outcome: int) -> int | None:
    """The tokens the call used: as its task reported, none if it never ran or was
    refused, else (None) as estimated."""
    reports, tokens = _reports(worker)
    if reports > before[0]:
        return tokens - before[1]
    if not called or outcome == LIMITED:
        return 0
    return None
