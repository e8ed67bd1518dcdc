"""ConcurrencyGate: how many calls a stage keeps in flight, set by hand or adapted.

Adaptive (``Stage(adaptive=True)``) is additive increase, multiplicative decrease, the way
TCP finds a link's capacity (and Netflix's concurrency-limits a service's), shaped for
APIs whose rate-limit answers each cost a cool-down (the whole stage waits what the
server asked, often a full second):

- Slow start: one call in flight at first, one more per clean answer (doubling per
  round), so a run does not open with a burst of 429s.
- A rate-limit answer is the decrease: calls are then started evenly spaced, at a bit
  under the rate the API accepted over the last second (`BACK_OFF`), instead of halving
  blindly: halving measured 75-85 % of the limit against a sliding-window API answering
  ``Retry-After: 1``, where each halving costs a cool-down and a climb back
  (benchmarks/rate_limit.py). Answers to calls that were in flight at the decrease do
  not decrease it again, so one burst of 429s counts once.
- Additive increase: after that, the pace grows slowly (`PROBE_PER_SECOND`), finding out
  now and then whether the API allows more.

Calls in flight follow the pace (pace x call time, Little's law): that is the stage's
concurrency monitors show, between 1 and its workers; room for twice as many lets slow
calls pass without holding the pace up.
"""

from __future__ import annotations

import asyncio
import math
from collections import deque
from typing import Final

CLEAN: Final = 0
"""The call ended without a rate-limit answer (successfully)."""
LIMITED: Final = 1
"""The call was answered with a rate limit."""
OTHER: Final = 2
"""The call failed otherwise, or never ran: it says nothing about the limit."""
BACK_OFF: Final = 0.9
"""After a rate-limit answer, calls start at this share of the rate the API accepted."""
RECOVER_TO: Final = 0.97
"""The pace then grows back quickly (`RECOVER_PER_SECOND`) to this share of the one
refused,"""
RECOVER_PER_SECOND: Final = 0.05
PROBE_PER_SECOND: Final = 0.001
"""and past it slowly at first, as a share of itself per second: trying the refused pace
again costs a cool-down;"""
PROBE_SPEEDUP: Final = 20.0
"""then faster the longer no call is refused: the probe's step grows by its first size
every this many seconds (as TCP CUBIC's window does). A pace measured low at the first
429 (a slow start's burst) otherwise takes minutes to climb back: calls of 1-3 s made
86 % of the limit with a constant probe, 88 % with this, while calls of 0.3-0.6 s
answered ``Retry-After: 1`` (a second's cool-down per 429) stay at 90-93 %
(benchmarks/rate_limit.py)."""
_ROOM: Final = 2.0
"""Calls allowed in flight, as a multiple of those the pace keeps in flight on average."""
_LATENCY_WEIGHT: Final = 0.1
"""Weight of each clean call's duration in the average call time."""
_RECENT: Final = 1.0
"""Seconds over which the accepted rate is measured."""


class Ticket:
    """One call let through the gate."""

    __slots__ = ("busy", "number")

    def __init__(self, number: int, busy: bool) -> None:
        self.number = number
        self.busy = busy
        """The stage was using its whole limit when the call went through."""


class ConcurrencyGate:
    """At most `limit` calls of a stage in flight at once; the others wait in line."""

    __slots__ = (
        "_decreased_at",
        "_grown_at",
        "_issued",
        "_latency",
        "_next_start",
        "_pace_version",
        "_recovery",
        "_refusals",
        "_starts",
        "_waiters",
        "_window",
        "adaptive",
        "decreases",
        "in_flight",
        "maximum",
        "rate",
        "refused_rate",
    )

    def __init__(self, maximum: int, adaptive: bool) -> None:
        self.maximum = maximum
        """The highest the limit goes: the stage's workers, or what `set` gave."""
        self.adaptive = adaptive
        self._window = 1.0 if adaptive else float(maximum)
        """Calls in flight allowed while no pace is set (slow start, or set by hand)."""
        self.rate: float | None = None
        """Calls started per second, once a rate-limit answer set a pace."""
        self.refused_rate = math.inf
        """The pace at the last rate-limit answer."""
        self.in_flight = 0
        self.decreases = 0
        """Rate-limit answers that slowed the stage down."""
        self._issued = 0
        self._recovery = 0
        """Calls numbered below this were in flight at the last decrease."""
        self._latency = 0.0
        """Average seconds of a clean call (0: none seen yet)."""
        self._next_start = -math.inf
        self._pace_version = 0
        """The cool-down version the start times handed out belong to (see `turn`)."""
        self._grown_at = -math.inf
        self._decreased_at = -math.inf
        self._starts: deque[float] = deque()
        """When calls started over the last `_RECENT` seconds (adaptive only)."""
        self._refusals: deque[float] = deque()
        """When rate-limit answers came over the last `_RECENT` seconds."""
        self._waiters: deque[asyncio.Future[None]] = deque()

    @property
    def concurrency(self) -> int:
        """Calls the stage keeps in flight now, as monitors show it."""
        if self.rate is None or self._latency <= 0:
            return self.limit
        return min(max(round(self.rate * self._latency), 1), self.maximum)

    @property
    def limit(self) -> int:
        """Calls allowed in flight now."""
        if self.rate is not None and self._latency > 0:
            return min(max(math.ceil(self.rate * self._latency * _ROOM), 1), self.maximum)
        return min(max(math.ceil(self._window - 1e-9), 1), self.maximum)

    def full(self) -> bool:
        """Whether a call would have to wait for room now."""
        return self.in_flight >= self.limit or bool(self._waiters)

    async def acquire(self) -> Ticket:
        """Wait for room, in line, and take it."""
        if self.in_flight >= self.limit or self._waiters:
            waiter = asyncio.get_running_loop().create_future()
            self._waiters.append(waiter)
            try:
                await waiter
            except BaseException:
                if waiter in self._waiters:
                    self._waiters.remove(waiter)
                elif waiter.done() and not waiter.cancelled():
                    # Woken (its room taken for it) and cancelled at once: give it back.
                    self.in_flight -= 1
                    self._wake()
                raise
        else:
            self.in_flight += 1
        ticket = Ticket(self._issued, self.in_flight >= self.limit)
        self._issued += 1
        return ticket

    def turn(self, now: float, version: int = 0) -> float:
        """Take the next start time of a paced gate: the seconds to wait for it.

        Args:
            version: The cool-down's version once the caller waited it out. A newer one
                voids every start time handed out before it (each of those callers takes
                its turn again after the cool-down), so they are given out afresh from
                now instead of queueing behind start times nobody will use: kept, they
                drifted the pace seconds ahead of the clock after each 429, and a stage
                paced at 4 calls/s made 2.3 (examples/llm_batch.py).
        """
        start = now
        if version != self._pace_version:
            self._pace_version = version
            self._next_start = min(self._next_start, now)
        if self.rate is not None:
            start = max(now, self._next_start)
            self._next_start = start + 1 / self.rate
        starts = self._starts
        starts.append(start)
        while starts[0] <= now - _RECENT:
            starts.popleft()
        return start - now

    def release(self, ticket: Ticket, outcome: int, seconds: float = 0.0, now: float = 0.0) -> None:
        """The call is over, at `now`, after `seconds`; `outcome` is `CLEAN`, `LIMITED`
        or `OTHER`."""
        self.in_flight -= 1
        if self.adaptive:
            if outcome == CLEAN:
                self._latency = (
                    seconds
                    if self._latency == 0
                    else self._latency + _LATENCY_WEIGHT * (seconds - self._latency)
                )
            elif outcome == LIMITED:
                self._refusals.append(now)
            if ticket.number >= self._recovery:
                if outcome == LIMITED:
                    self._decrease(now)
                elif outcome == CLEAN and ticket.busy:
                    self._grow(now)
        self._wake()

    def _decrease(self, now: float) -> None:
        horizon = now - _RECENT
        for times in (self._starts, self._refusals):
            while times and times[0] <= horizon:
                times.popleft()
        if self.rate is None:
            # The first answer: measure what the API accepted over the last second.
            accepted = sum(1 for start in self._starts if start <= now) - len(self._refusals)
            current = max(accepted, 1) / _RECENT
        else:
            current = self.rate
        self.refused_rate = current
        self.rate = max(current * BACK_OFF, 1 / 60)
        self._next_start = max(self._next_start, now)
        self._grown_at = self._decreased_at = now
        self.decreases += 1
        self._recovery = self._issued

    def _grow(self, now: float) -> None:
        rate = self.rate
        if rate is None:
            self._window = min(self._window + 1, float(self.maximum))
            return
        elapsed = now - self._grown_at
        if elapsed <= 0:
            return
        self._grown_at = now
        recovered = RECOVER_TO * self.refused_rate
        if rate < recovered:
            rate = min(rate * (1 + RECOVER_PER_SECOND * elapsed), recovered)
        else:
            speedup = 1 + (now - self._decreased_at) / PROBE_SPEEDUP
            rate *= 1 + PROBE_PER_SECOND * speedup * elapsed
        ceiling = self.maximum / self._latency if self._latency > 0 else math.inf
        self.rate = min(rate, ceiling)

    def set(self, limit: int) -> None:
        """Set the limit, and the highest it may adapt to, to `limit`."""
        self.maximum = limit
        self._window = float(limit)
        self.rate = None
        self._recovery = self._issued
        self._wake()

    def _wake(self) -> None:
        waiters = self._waiters
        while self.in_flight < self.limit and waiters:
            waiter = waiters.popleft()
            if not waiter.done():
                # The room is taken on the waiter's behalf now, so a second wake before
                # it runs cannot hand the same room to another.
                self.in_flight += 1
                waiter.set_result(None)
