"""ConcurrencyGate: how many calls a stage keeps in flight, set by hand or adapted (AIMD).

Adaptive (``Stage(adaptive=True)``): additive increase, multiplicative decrease, the way
TCP finds a link's capacity (and Netflix's concurrency-limits a service's). A rate-limit
answer halves the limit; answers to calls that were already in flight when it was halved
do not halve it again, so one burst of 429s halves it once. A clean window (as many
clean answers in a row as the limit, from calls made while the stage used all of it)
adds one. The limit stays between 1 and the stage's workers.
"""

from __future__ import annotations

import asyncio
from collections import deque
from typing import Final

CLEAN: Final = 0
"""The call ended without a rate-limit answer (successfully)."""
LIMITED: Final = 1
"""The call was answered with a rate limit."""
OTHER: Final = 2
"""The call failed otherwise, or never ran: it says nothing about the limit."""


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
        "_clean",
        "_issued",
        "_recovery",
        "_waiters",
        "adaptive",
        "decreases",
        "in_flight",
        "limit",
        "maximum",
    )

    def __init__(self, maximum: int, adaptive: bool) -> None:
        self.maximum = maximum
        """The highest the limit goes: the stage's workers, or what `set` gave."""
        self.limit = maximum
        self.adaptive = adaptive
        self.in_flight = 0
        self.decreases = 0
        """Times the limit was halved."""
        self._issued = 0
        self._recovery = 0
        """Calls numbered below this were in flight at the last halving."""
        self._clean = 0
        self._waiters: deque[asyncio.Future[None]] = deque()

    def full(self) -> bool:
        """Whether a call would have to wait now."""
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

    def release(self, ticket: Ticket, outcome: int) -> None:
        """The call is over; `outcome` is `CLEAN`, `LIMITED` or `OTHER`."""
        self.in_flight -= 1
        if self.adaptive and ticket.number >= self._recovery:
            if outcome == LIMITED:
                self.limit = max(self.limit // 2, 1)
                self.decreases += 1
                self._recovery = self._issued
                self._clean = 0
            elif outcome == CLEAN and ticket.busy:
                self._clean += 1
                if self._clean >= self.limit:
                    self._clean = 0
                    if self.limit < self.maximum:
                        self.limit += 1
        self._wake()

    def set(self, limit: int) -> None:
        """Set the limit, and the highest it may adapt to, to `limit`."""
        self.maximum = self.limit = limit
        self._clean = 0
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
