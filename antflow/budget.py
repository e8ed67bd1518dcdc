"""Budget: a cap on what a run spends, in US dollars and tokens, that pauses the run.

Before each call of a stage that costs, the stage reserves its estimate: the tokens its
`RateLimit`'s ``estimate`` gives (else the stage's ``max_tokens``), priced at the
dearest token of the stage's model. The call starts only when what is spent, what
calls running hold and this estimate stay within the budget; otherwise it waits, and
the run is *paused by its budget*: calls already running finish, no new one starts,
nothing fails. When a call reports its usage (`set_task_usage`) the report is charged
and the call's reservation shrinks by as much; the rest of it comes back when the call
ends. Raising the budget (`Budget.raise_to`) lets the waiting calls go on.

Overshoot: a call is let through only if its reservation fits, so the budget is passed
only by what calls use beyond what they reserved, and only by the calls running when it
is reached. With estimates that hold (the prompt plus the request's max_tokens) and the
model's price known, nothing is overspent. A stage with no estimate learns one: its
first call goes alone, then each call reserves the most a call of the stage has used so
far; each call running when the budget is reached may pass it by what it uses beyond
that.

A stage *costs* once it has an estimate or has reported a usage. A stage with no
estimate whose first call returns without reporting one (parsing, scoring) costs
nothing: the budget does not hold it. (Each stage's side, its estimates and its calls
waiting, is `antflow._budgeting`.)
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

from antflow._guard import must_propagate

if TYPE_CHECKING:
    from collections.abc import Callable

    from antflow.types import TaskUsage

logger = logging.getLogger(__name__)

BUDGET: Final = "budget"
"""`WorkerState.waiting_for` while a worker's call waits for the budget."""
_SLACK: Final = 1e-9
"""Relative room for float sums of dollars: a call that fits to the cent is let through."""
_MAX_UNPRICED_MODELS: Final = 32
"""Models without a price told about, at most (one warning each)."""
_numbers = itertools.count(1)


@dataclass(frozen=True, slots=True)
class BudgetState:
    """A `Budget` as monitors see it (``pipeline.probe.budget()``)."""

    usd: float | None
    """The limit in US dollars (None: no dollar limit)."""
    tokens: int | None
    """The limit in tokens (None: no token limit)."""
    spent_usd: float
    """US dollars the calls reported (priced, or given as ``cost=``)."""
    spent_tokens: int
    """Tokens the calls reported."""
    reserved_usd: float
    """US dollars held by calls running that have not reported them yet."""
    reserved_tokens: int
    """Tokens held by calls running that have not reported them yet."""
    paused: bool
    """The run is paused by its budget: calls wait for it, and no call is running that
    could give back what it reserved; only a raise lets the run go on."""
    waiting: int
    """Calls held back by the budget (for a while when calls running may still give
    back what they reserved and did not use)."""
    running: int
    """Calls running that hold a reservation."""
    calls: int
    """Calls let through so far."""
    unpriced: int
    """Usage reports whose cost is unknown (no ``cost=`` and no price for their model):
    the dollar limit cannot count them."""
    unreserved: int
    """Calls let through without a dollar reservation: no token estimate, or no price to
    turn it into dollars."""
    reason: str | None
    """Why calls are held back, in a sentence (None when none is)."""
    number: int = 0
    """Which `Budget` (`Budget.number`): pipelines sharing one report the same."""

    @property
    def overshoot_usd(self) -> float:
        """US dollars spent beyond the limit (0 when within it)."""
        return 0.0 if self.usd is None else max(self.spent_usd - self.usd, 0.0)

    @property
    def overshoot_tokens(self) -> int:
        """Tokens spent beyond the limit (0 when within it)."""
        return 0 if self.tokens is None else max(self.spent_tokens - self.tokens, 0)


class Hold:
    """What one call still reserves of a budget, and what it reported."""

    __slots__ = ("probing", "reports", "tokens", "usd", "used_tokens", "used_usd")

    def __init__(self, tokens: int, usd: float) -> None:
        self.tokens = tokens
        self.usd = usd
        self.used_tokens = 0
        self.used_usd = 0.0
        self.reports = 0
        self.probing = False
        """The stage's first call, made alone to learn what a call uses."""


class Budget:
    """A cap on what the runs given it spend: ``Pipeline(stages, budget=Budget(usd=5))``.

    When the next call would go over, the run pauses (see `antflow.budget`); raise it
    with `raise_to` or `raise_by` and it goes on, nothing lost. One Budget given to
    several pipelines caps them together. Dollars come from usage reports: their
    ``cost=``, or their model's price (``ANTFLOW_PRICES``, `antflow.use_prices`).

    Args:
        usd: US dollars, at most.
        tokens: Tokens (input and output), at most.

    Raises:
        ValueError: neither limit, or one that is not a finite number above 0.
    """

    def __init__(self, usd: float | None = None, tokens: int | None = None) -> None:
        if usd is None and tokens is None:
            raise ValueError("Budget: give usd=, tokens= or both (Budget(usd=5.0))")
        self._usd = None if usd is None else _usd_limit(usd)
        self._tokens = None if tokens is None else _token_limit(tokens)
        self.number = next(_numbers)
        """Unique in the process: a monitor tells budgets shared by pipelines apart by it."""
        self.spent_usd = 0.0
        self.spent_tokens = 0
        self.reserved_usd = 0.0
        self.reserved_tokens = 0
        self.running = 0
        self.calls = 0
        self.unpriced = 0
        self.unreserved = 0
        self.waiting = 0
        self._need: tuple[int, float] = (0, 0.0)
        """What the latest call refused needed (for `BudgetState.reason`)."""
        self._told = False
        """The pause was logged (once per pause: it is over when no call waits)."""
        self._unpriced_models: set[str | None] = set()
        self._waiters: list[asyncio.Future[None]] = []
        self._paused_listeners: list[Callable[[BudgetState], None]] = []

    def __repr__(self) -> str:
        limits = [f"{k}={v!r}" for k, v in (("usd", self._usd), ("tokens", self._tokens)) if v]
        return f"Budget({', '.join(limits)})"

    @property
    def usd(self) -> float | None:
        """The limit in US dollars (None: none)."""
        return self._usd

    @property
    def tokens(self) -> int | None:
        """The limit in tokens (None: none)."""
        return self._tokens

    def raise_to(self, usd: float | None = None, tokens: int | None = None) -> None:
        """Set new limits (None leaves one as it is); calls waiting go on if they fit.

        A limit below what is spent pauses the run at its next call: raising is the
        usual use, lowering is allowed. A limit the budget had not is added.

        Raises:
            ValueError: both None, or a limit that is not a finite number above 0.
        """
        if usd is None and tokens is None:
            raise ValueError("Budget.raise_to: give usd=, tokens= or both")
        new_usd = self._usd if usd is None else _usd_limit(usd)
        new_tokens = self._tokens if tokens is None else _token_limit(tokens)
        self._usd, self._tokens = new_usd, new_tokens
        self._told = False
        self.wake()

    def raise_by(self, usd: float | None = None, tokens: int | None = None) -> None:
        """Raise the limits by these amounts (the app's keys).

        Raises:
            ValueError: both None, an amount that is not a finite number above 0, or a
                limit the budget has not (`raise_to` adds one).
        """
        if usd is None and tokens is None:
            raise ValueError("Budget.raise_by: give usd=, tokens= or both")
        new_usd = new_tokens = None
        if usd is not None:
            if self._usd is None:
                raise ValueError("Budget.raise_by: no dollar limit to raise; raise_to(usd=...)")
            new_usd = self._usd + _usd_limit(usd)
        if tokens is not None:
            if self._tokens is None:
                raise ValueError("Budget.raise_by: no token limit to raise; raise_to(tokens=...)")
            new_tokens = self._tokens + _token_limit(tokens)
        self.raise_to(usd=new_usd, tokens=new_tokens)

    def on_paused(self, listener: Callable[[BudgetState], None]) -> Callable[[], None]:
        """Call ``listener(state)`` each time the run comes to a stop on this budget:
        calls wait for it and none is left running that could give some back (when
        the warning is logged). A listener records and returns; one that raises is
        logged and detached.

        Returns:
            A function that detaches it.
        """
        listeners = self._paused_listeners
        listeners.append(listener)

        def remove() -> None:
            if listener in listeners:
                listeners.remove(listener)

        return remove

    def state(self) -> BudgetState:
        """The budget now, O(1)."""
        return BudgetState(
            usd=self._usd,
            tokens=self._tokens,
            spent_usd=self.spent_usd,
            spent_tokens=self.spent_tokens,
            reserved_usd=max(self.reserved_usd, 0.0),
            reserved_tokens=self.reserved_tokens,
            paused=self.waiting > 0 and not self.running,
            waiting=self.waiting,
            running=self.running,
            calls=self.calls,
            unpriced=self.unpriced,
            unreserved=self.unreserved,
            reason=self._reason() if self.waiting else None,
            number=self.number,
        )

    # ------------------------------------------------------------------ engine side

    def fits(self, tokens: int, usd: float) -> bool:
        """Whether a call reserving `tokens` and `usd` keeps within every limit (one
        reserving nothing needs room left)."""
        return self._tokens_fit(tokens) and self._usd_fits(usd)

    def _tokens_fit(self, tokens: int) -> bool:
        cap = self._tokens
        return cap is None or self.spent_tokens + self.reserved_tokens + max(tokens, 1) <= cap

    def _usd_fits(self, usd: float) -> bool:
        limit = self._usd
        if limit is None:
            return True
        held = self.spent_usd + self.reserved_usd
        return held + usd <= limit * (1 + _SLACK) if usd > 0 else held < limit

    def take(self, tokens: int, usd: float | None) -> Hold:
        """Let a call through, reserving `tokens` and `usd` (None: no dollar estimate)."""
        self.calls += 1
        self.running += 1
        if usd is None:
            usd = 0.0
            if self._usd is not None:
                self.unreserved += 1
        self.reserved_tokens += tokens
        self.reserved_usd += usd
        return Hold(tokens, usd)

    def charge(self, hold: Hold | None, usage: TaskUsage) -> None:
        """A call reported `usage`: count it, and take it off the call's reservation."""
        tokens = usage.total_tokens
        cost = usage.cost
        self.spent_tokens += tokens
        if cost is not None:
            self.spent_usd += cost
        if usage.unpriced:
            self.unpriced += usage.unpriced
            self._tell_unpriced(usage.model)
        if hold is not None:
            hold.reports += 1
            hold.used_tokens += tokens
            hold.used_usd += cost or 0.0
            held = min(hold.tokens, tokens)
            hold.tokens -= held
            self.reserved_tokens -= held
            if cost is not None:
                given = min(hold.usd, cost)
                hold.usd -= given
                self.reserved_usd -= given

    def release(self, hold: Hold) -> None:
        """A call ended: what it reserved and did not report comes back."""
        self.running -= 1
        self.reserved_tokens -= hold.tokens
        self.reserved_usd -= hold.usd
        hold.tokens, hold.usd = 0, 0.0
        if not self.running:
            # No call holds anything: float sums of dollars must not leave dust behind.
            self.reserved_tokens, self.reserved_usd = 0, 0.0
        if self._waiters:
            self.wake()

    def pause_over(self) -> None:
        """No call waits any more: the next pause is told again."""
        self._told = False

    def wake(self) -> None:
        """Let every waiting call look again."""
        waiters, self._waiters = self._waiters, []
        for waiter in waiters:
            if not waiter.done():
                waiter.set_result(None)

    async def wait(self, tokens: int, usd: float) -> None:
        """Wait until something may have made room (a call ended, a raise)."""
        self._need = (tokens, usd)
        loop = asyncio.get_running_loop()
        if not self.running and not self._told:
            # Once every call woken with this one has looked: a smaller one may fit.
            loop.call_soon(self._tell_paused)
        waiter = loop.create_future()
        self._waiters.append(waiter)
        try:
            await waiter
        finally:
            if waiter in self._waiters:
                self._waiters.remove(waiter)

    def _tell_paused(self) -> None:
        if self._told or not self.waiting or self.running:
            return
        self._told = True
        if not self._paused_listeners:
            # A monitor listening says it in its own words (a key, a command to run); the
            # engine's advice is for a script alone.
            logger.warning(
                "the run is paused by its budget: %s; raise it (pipeline.budget.raise_to(...)) "
                "to go on, or stop it: the items waiting are left unfinished",
                self._reason(),
            )
        if self._paused_listeners:
            state = self.state()
            for listener in list(self._paused_listeners):
                try:
                    listener(state)
                except BaseException as error:
                    if must_propagate(error):
                        raise
                    logger.exception("a Budget.on_paused listener raised; it is detached")
                    self._paused_listeners.remove(listener)

    def _reason(self) -> str:
        tokens, usd = self._need
        parts = []
        limit = self._usd
        if limit is not None and not self._usd_fits(usd):
            text = f"{_dollars(self.spent_usd)} of {_limit(limit)} spent"
            if self.reserved_usd > 0:
                text += f", {_dollars(self.reserved_usd)} held by calls running"
            if usd > 0:
                text += f"; the next call may cost {_dollars(usd)}"
            parts.append(text)
        cap = self._tokens
        if cap is not None and not self._tokens_fit(tokens):
            text = f"{self.spent_tokens:,} of {cap:,} tokens spent"
            if self.reserved_tokens:
                text += f", {self.reserved_tokens:,} held by calls running"
            if tokens:
                text += f"; the next call may use {tokens:,}"
            parts.append(text)
        if self.running:
            noun = "call" if self.running == 1 else "calls"
            parts.append(f"{self.running} {noun} running may give some back")
        return "; ".join(parts) or "waiting for calls running to give back what they reserved"

    def _tell_unpriced(self, model: str | None) -> None:
        models = self._unpriced_models
        if self._usd is None or model in models or len(models) >= _MAX_UNPRICED_MODELS:
            return
        models.add(model)
        named = "a model not named" if model is None else f"model {model!r}"
        logger.warning(
            "Budget: a call of %s has no price and no cost=, so the dollar limit cannot "
            "count it; list the model in the price file (ANTFLOW_PRICES) or pass cost=",
            named,
        )


def _usd_limit(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"Budget: usd must be a number of US dollars above 0, got {value!r}")
    if not math.isfinite(value) or value <= 0:
        raise ValueError(f"Budget: usd must be a number of US dollars above 0, got {value!r}")
    return float(value)


def _token_limit(value: Any) -> int:
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or not math.isfinite(value)
        or value < 1
    ):
        raise ValueError(f"Budget: tokens must be a number of tokens >= 1, got {value!r}")
    return int(value)


def _dollars(amount: float) -> str:
    """To a hundredth of a cent below $100: a spend near its limit must not round to it."""
    return f"${amount:,.2f}" if abs(amount) >= 100 else f"${amount:,.4f}"


def _limit(amount: float) -> str:
    # A limit raised by $0.10 from $0.20 is 0.30000000000000004: still whole cents.
    return f"${amount:,.2f}" if abs(round(amount, 2) - amount) < 1e-9 else _dollars(amount)


__all__ = ["BUDGET", "Budget", "BudgetState"]
