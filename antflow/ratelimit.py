"""RateLimit: a smooth budget of requests and tokens, shared by every stage given it.

Admissions are paced (a generic cell rate algorithm with no burst allowance: each call
takes the next free slot, so a run never starts with a burst), and on top of the pacing a
sliding-window check holds each cap over any window of its length: requests within any
second (``per_second``) or minute (``per_minute``), tokens within any minute
(``tokens_per_minute``, counted as each call's estimate until its task reports its
usage, then as reported). Requests and tokens are taken together in one step, so no
other call can slip between the two budgets. A rate-limit answer from the API (HTTP 429)
cools down every stage sharing the limit for as long as the server asked.
"""

from __future__ import annotations

import asyncio
import itertools
import math
import time
from collections import deque
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

_WINDOW_EPSILON: Final = 1e-6
"""Seconds past the moment a window would allow a call: float sums of slot times must
never land a call on the edge of a server's window."""
_RECHECK: Final = 0.1
"""Seconds the first call in line waits at most before looking at the token budget again."""
_MINUTE: Final = 60.0
_SECOND: Final = 1.0

_numbers = itertools.count(1)


class Cooldown:
    """A pause of new calls after a rate-limit answer, and the count of such answers.

    Every stage sharing a `RateLimit` shares its cool-down; a stage without one has its
    own, read on the pipeline's clock.
    """

    __slots__ = ("clock", "hits", "until", "version")

    def __init__(self, clock: Callable[[], float]) -> None:
        self.clock = clock
        self.until = -math.inf
        """No call starts before this moment (the clock's reading)."""
        self.version = 0
        """Bumped whenever `until` moves, so a waiter knows it must wait again."""
        self.hits: deque[float] = deque()
        """When rate-limit answers came, over the last minute."""

    def extend(self, seconds: float) -> None:
        """A rate-limit answer came now: no new call for `seconds` from now on."""
        now = self.clock()
        self.hits.append(now)
        self._forget(now)
        if now + seconds > self.until:
            self.until = now + seconds
            self.version += 1

    def remaining(self) -> float:
        """Seconds the cool-down still lasts (0 when none)."""
        return max(self.until - self.clock(), 0.0)

    def hits_last_minute(self) -> int:
        self._forget(self.clock())
        return len(self.hits)

    def _forget(self, now: float) -> None:
        hits = self.hits
        while hits and hits[0] <= now - _MINUTE:
            hits.popleft()


def loop_clock() -> float:
    """The running event loop's time (virtual under a virtual-time loop), else the
    monotonic clock asyncio's loops use."""
    try:
        return asyncio.get_running_loop().time()
    except RuntimeError:
        return time.monotonic()


@dataclass(frozen=True, slots=True)
class RateLimitState:
    """One `RateLimit` as monitors see it (see `Pipeline.get_limit_snapshot`)."""

    name: str
    """The limit's name."""
    per_second: float | None
    """Its cap on calls per second, if any."""
    per_minute: float | None
    """Its cap on calls per minute, if any."""
    tokens_per_minute: float | None
    """Its cap on tokens per minute, if any."""
    calls_last_second: int
    """Calls started in the last second."""
    calls_last_minute: int
    """Calls started in the last minute."""
    tokens_last_minute: int
    """Tokens of the calls started in the last minute: as reported, or as estimated for
    calls that have not reported yet."""
    rate_limited_last_minute: int
    """Rate-limit answers (HTTP 429) in the last minute, from every stage sharing it."""
    cooldown_remaining: float
    """Seconds before calls may start again after a rate-limit answer (0: none)."""
    waiting: int
    """Calls waiting for their turn (paced, or cooling down)."""
    stages: tuple[str, ...]
    """The stages of the pipeline that use it."""


class Reservation:
    """A call's place in a `RateLimit`: when it may start, and the tokens it holds."""

    __slots__ = ("at", "tokens")

    def __init__(self, at: float, tokens: int) -> None:
        self.at = at
        self.tokens = tokens


class RateLimit:
    """A budget of calls and tokens shared by every stage given it as ``rate_limit=``.

    ``RateLimit(per_second=50)``, ``RateLimit(per_minute=500, tokens_per_minute=40_000,
    estimate=lambda prompt: len(prompt) // 3 + 1_000)``. Calls are spread evenly (a cap
    of 50 per second starts one call every 20 ms, never 50 at once), and the caps hold
    in every window: no second holds more than `per_second` calls, no minute more than
    `per_minute` calls or `tokens_per_minute` tokens. Give the same object to several
    stages (of one or several pipelines) to share one API's budget between them.

    Tokens: before a call, `estimate` (given the task's input) says how many tokens it
    will take, and the call waits until the budget holds them. After it, the task's
    `set_task_usage` report replaces the estimate: what was estimated but not used goes
    back to the budget, and tokens used beyond it are charged. The cap holds in every
    window as long as estimates are not below what calls use (estimate with the
    request's ``max_tokens``); an estimate above the whole cap counts as the cap. Without
    `estimate`, tokens are counted only once reported.

    A rate-limit answer (HTTP 429) from any stage sharing the limit pauses all of them
    for as long as the server asked (see ``Stage.rate_limit_on``).

    Args:
        per_second: Calls per second, at most (may be fractional: 0.5 is one every 2 s).
        per_minute: Calls per minute, at most.
        tokens_per_minute: Tokens per minute, at most.
        name: How monitors name it; default ``limit 1``, ``limit 2``, ...
        estimate: ``estimate(value) -> tokens``, the tokens a call on `value` may take.
        clock: Monotonic seconds; default the running event loop's time.

    Raises:
        ValueError: a cap that is not a finite number above 0, an `estimate` that is not
            callable, or an `estimate` without `tokens_per_minute`.
    """

    def __init__(
        self,
        per_second: float | None = None,
        per_minute: float | None = None,
        tokens_per_minute: float | None = None,
        name: str | None = None,
        estimate: Callable[[Any], float] | None = None,
        *,
        clock: Callable[[], float] | None = None,
    ) -> None:
        for label, cap in (
            ("per_second", per_second),
            ("per_minute", per_minute),
            ("tokens_per_minute", tokens_per_minute),
        ):
            if cap is not None and not _positive(cap):
                raise ValueError(
                    f"RateLimit: {label} must be a finite number above 0 (or None), got {cap!r}"
                )
        if estimate is not None and not callable(estimate):
            raise ValueError(
                f"RateLimit: estimate must be a function of the value, got {estimate!r}"
            )
        if estimate is not None and tokens_per_minute is None:
            raise ValueError(
                "RateLimit: estimate counts tokens, which need a budget: give tokens_per_minute"
            )
        self.name = str(name) if name is not None else f"limit {next(_numbers)}"
        self.per_second = per_second
        self.per_minute = per_minute
        self.tokens_per_minute = tokens_per_minute
        self.estimate = estimate
        self.clock: Callable[[], float] = clock or loop_clock
        self.cooldown = Cooldown(self.clock)
        intervals = [1.0 / per_second if per_second else 0.0]
        intervals.append(_MINUTE / per_minute if per_minute else 0.0)
        self._interval = max(intervals)
        """Seconds between call slots: the pacing of the stricter call cap."""
        self._second_cap = _window_cap(per_second)
        self._minute_cap = _window_cap(per_minute)
        self._token_cap = int(tokens_per_minute) if tokens_per_minute else 0
        self._token_interval = _MINUTE / tokens_per_minute if tokens_per_minute else 0.0
        self._next_call = -math.inf
        self._next_token = -math.inf
        self._calls: deque[float] = deque()
        """Start times of calls over the last minute (and those given a later slot)."""
        self._tokens: deque[Reservation] = deque()
        """Calls holding tokens over the last minute, in start order."""
        self._token_sum = 0
        self._horizon = -math.inf
        """Reservations at or before this moment have left `_tokens`."""
        self._head = False
        """A call is first in line, waiting for its moment."""
        self._line: deque[asyncio.Future[None]] = deque()
        """Calls waiting behind it, in order."""

    def __repr__(self) -> str:
        caps = [
            f"{label}={cap!r}"
            for label, cap in (
                ("per_second", self.per_second),
                ("per_minute", self.per_minute),
                ("tokens_per_minute", self.tokens_per_minute),
            )
            if cap is not None
        ]
        return f"RateLimit({', '.join([*caps, f'name={self.name!r}'])})"

    # ------------------------------------------------------------------ engine side

    def tokens_for(self, value: Any) -> int:
        """The tokens to hold for a call on `value` (0 without an estimate).

        Raises:
            TypeError: `estimate` returned something that is not a number >= 0.
        """
        if self.estimate is None:
            return 0
        guess = self.estimate(value)
        if isinstance(guess, bool) or not isinstance(guess, int | float) or not guess >= 0:
            raise TypeError(
                f"RateLimit {self.name!r}: estimate returned {guess!r}, not a number of tokens >= 0"
            )
        if not math.isfinite(guess):
            return self._token_cap
        return min(math.ceil(guess), self._token_cap)

    async def admit(self, tokens: int, sleep: Callable[[float], Awaitable[object]]) -> Reservation:
        """Wait in line for the moment pacing, every window cap and the cool-down allow
        one more call holding `tokens`, and take it (calls and tokens in one step).

        Only the first in line waits on time, and it looks again after each wait, so
        tokens given back meanwhile (see `settle`) shorten its wait.
        """
        if self._head or self._line:
            turn = asyncio.get_running_loop().create_future()
            self._line.append(turn)
            try:
                await turn
            except BaseException:
                if turn in self._line:
                    self._line.remove(turn)
                elif turn.done() and not turn.cancelled():
                    self._pass_on()
                raise
        self._head = True
        try:
            while True:
                now = self.clock()
                at = self._earliest(now, tokens)
                if at <= now:
                    break
                # With a token budget, look again now and then: tokens that calls
                # give back (see `settle`) may let this one start sooner.
                await sleep(min(at - now, _RECHECK) if self._token_cap else at - now)
                if self.clock() <= now:
                    break  # a clock that does not move (tests): take the slot as planned
            return self._take(max(at, now), tokens)
        finally:
            self._pass_on()

    def _pass_on(self) -> None:
        self._head = False
        line = self._line
        while line:
            turn = line.popleft()
            if not turn.done():
                self._head = True
                turn.set_result(None)
                return

    def _earliest(self, now: float, tokens: int) -> float:
        self._forget(now)
        at = max(now, self._next_call, self._next_token, self.cooldown.until)
        calls = self._calls
        for cap, window in ((self._second_cap, _SECOND), (self._minute_cap, _MINUTE)):
            if cap and len(calls) >= cap:
                # The cap-th latest call must have left the window by then.
                at = max(at, calls[-cap] + window + _WINDOW_EPSILON)
        if self._token_cap:
            held = self._token_sum
            # A call that holds no tokens (no estimate) still needs room left.
            needed = max(tokens, 1)
            for reservation in self._tokens:
                if held + needed <= self._token_cap:
                    break
                held -= reservation.tokens
                at = max(at, reservation.at + _MINUTE + _WINDOW_EPSILON)
        return at

    def _take(self, at: float, tokens: int) -> Reservation:
        self._next_call = at + self._interval
        self._next_token = at + tokens * self._token_interval
        self._calls.append(at)
        reservation = Reservation(at, tokens)
        if self._token_cap:
            self._tokens.append(reservation)
            self._token_sum += tokens
        return reservation

    def settle(self, reservation: Reservation, used: int | None) -> None:
        """The call is over: it used `used` tokens (None: as estimated)."""
        if used is None or used == reservation.tokens or not self._token_cap:
            return
        change = used - reservation.tokens
        reservation.tokens = used
        if reservation.at > self._horizon:
            self._token_sum += change
        # Pacing follows too: a refund frees slots for the next calls, an overrun
        # pushes them back.
        self._next_token += change * self._token_interval

    def state(self, stages: tuple[str, ...] = ()) -> RateLimitState:
        """The limit as monitors see it now."""
        now = self.clock()
        self._forget(now)
        calls = self._calls
        # Calls given a slot ahead of now have not started: they are not counted yet
        # (counted, a gauge showed 5 calls/s against an API that takes 4).
        started = last_second = 0
        for at in reversed(calls):
            if at > now:
                continue
            if at > now - _SECOND:
                last_second += 1
            started += 1
        tokens = self._token_sum
        waiting = len(self._line) + self._head
        return RateLimitState(
            name=self.name,
            per_second=self.per_second,
            per_minute=self.per_minute,
            tokens_per_minute=self.tokens_per_minute,
            calls_last_second=last_second,
            calls_last_minute=started,
            tokens_last_minute=tokens,
            rate_limited_last_minute=self.cooldown.hits_last_minute(),
            cooldown_remaining=self.cooldown.remaining(),
            waiting=waiting,
            stages=stages,
        )

    def _forget(self, now: float) -> None:
        horizon = now - _MINUTE
        calls = self._calls
        while calls and calls[0] <= horizon:
            calls.popleft()
        held = self._tokens
        while held and held[0].at <= horizon:
            self._token_sum -= held.popleft().tokens
        self._horizon = max(self._horizon, horizon)


def _positive(value: object) -> bool:
    return (
        isinstance(value, int | float)
        and not isinstance(value, bool)
        and math.isfinite(value)
        and value > 0
    )


def _window_cap(rate: float | None) -> int:
    """Calls a window may hold (0: no window check): pacing alone keeps a fractional
    rate below one call per window."""
    return max(int(rate), 1) if rate else 0
