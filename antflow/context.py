"""`set_task_status`, `set_task_progress` and `set_task_usage`: let a running task say what
it is doing, how far it got and what it spent, for dashboards and rate limits."""

from __future__ import annotations

import math
from contextvars import ContextVar
from dataclasses import replace
from typing import Final, Protocol

from antflow._safe import safe_str
from antflow.prices import current_prices
from antflow.types import TaskUsage

_MAX_MODEL_NAME: Final = 200


class _StatusHolder(Protocol):
    current_task: str | None
    progress: tuple[float, float | None] | None

    def add_usage(self, usage: TaskUsage) -> None: ...


# Each worker sets this once in its own asyncio task; tasks it awaits see it.
_current_worker: ContextVar[_StatusHolder | None] = ContextVar("antflow_worker", default=None)


def set_task_status(text: str | None) -> None:
    """Show `text` as what the current worker is doing (``WorkerState.current_task``).

    Call it from inside a task, as often as you like: it only stores the text. Outside a
    pipeline worker it does nothing. The text is cleared when the worker finishes the item.

    Args:
        text: A short description ("downloading 3/10 pages"), or None to clear it.
    """
    holder = _current_worker.get()
    if holder is not None:
        holder.current_task = None if text is None else safe_str(text)


def set_task_progress(done: float, total: float | None = None) -> None:
    """Show how far the current task got (``WorkerState.progress``): `done` of `total`
    (tokens streamed, bytes downloaded, pages parsed...), or just `done` when the total
    is unknown. Cleared when the worker finishes the item; outside a worker, nothing.

    A display helper never fails the task calling it: a `done` that is not a finite
    number is ignored, and so is a `total` that is not a finite number above zero (the
    progress is then shown without one).

    Args:
        done: How much is done so far.
        total: How much there is in all, if known.
    """
    holder = _current_worker.get()
    if holder is None:
        return
    shown = _finite(done)
    if shown is None:
        return
    whole = _finite(total)
    holder.progress = (max(shown, 0.0), whole if whole is not None and whole > 0 else None)


def set_task_usage(
    input_tokens: int = 0,
    output_tokens: int = 0,
    cost: float | None = None,
    model: str | None = None,
    *,
    cached_input_tokens: int = 0,
    cache_write_tokens: int = 0,
) -> None:
    """Report what the current task's call to an API used, once the call has returned.

    Each report adds to the item's usage (``StatusTracker.get_usage``) and to its
    worker's and stage's totals (``Pipeline.get_limit_snapshot``). A stage with a
    `RateLimit` that budgets tokens reconciles its estimate for the attempt with what
    the attempt reported: the budget gets back what was estimated but not used, and is
    charged what was used beyond the estimate. A pipeline's `Budget` is charged too.

    Without `cost`, the report is priced by its model's prices (``ANTFLOW_PRICES``,
    `antflow.use_prices`); a report with neither has no cost and counts as unpriced.
    To pass an API's response as it is, see `set_task_usage_from`.

    Call it once per API call (a task making two calls reports twice). Like the other
    display helpers it never fails the task: numbers that are not finite and >= 0 count
    as 0 (a cost as none). Outside a pipeline worker it does nothing.

    Args:
        input_tokens: Tokens sent (``usage.prompt_tokens`` / ``usage.input_tokens``),
            cached ones included.
        output_tokens: Tokens received (``usage.completion_tokens`` / ``output_tokens``).
        cost: US dollars the call cost, when the task knows it better than the prices.
        model: The model that answered (what prices the report).
        cached_input_tokens: Of `input_tokens`, those read from the prompt cache.
        cache_write_tokens: Of `input_tokens`, those written to the prompt cache.
    """
    holder = _current_worker.get()
    if holder is None:
        return
    spent = _finite(cost)
    report_usage(
        holder,
        TaskUsage(
            input_tokens=_tokens(input_tokens),
            output_tokens=_tokens(output_tokens),
            cost=spent if spent is not None and spent >= 0 else None,
            model=_name(model),
            reports=1,
            cached_input_tokens=_tokens(cached_input_tokens),
            cache_write_tokens=_tokens(cache_write_tokens),
        ),
    )


def current_holder() -> _StatusHolder | None:
    """The worker running the current task, if any."""
    return _current_worker.get()


def report_usage(holder: _StatusHolder, usage: TaskUsage) -> None:
    """Give one report to `holder`, priced by its model when it has no cost."""
    if usage.cost is None:
        prices = current_prices()
        cost = None if prices is None else prices.cost_of(usage)
        usage = replace(usage, cost=cost, unpriced=int(cost is None))
    holder.add_usage(usage)


def _name(model: object) -> str | None:
    if model is None:
        return None
    try:
        return str(model)[:_MAX_MODEL_NAME]
    except Exception:
        return None


def _tokens(value: object) -> int:
    number = _finite(value)
    return int(number) if number is not None and number > 0 else 0


def _finite(value: object) -> float | None:
    """`value` as a float, or None if it is not a finite number (JSON has no NaN)."""
    if value is None or isinstance(value, str | bytes):
        return None
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError, OverflowError):
        return None
    return number if math.isfinite(number) else None
