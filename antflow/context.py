"""`set_task_status` and `set_task_progress`: let a running task say what it is doing and
how far it got, for dashboards to show."""

from __future__ import annotations

import math
from contextvars import ContextVar
from typing import Protocol

from antflow._safe import safe_str


class _StatusHolder(Protocol):
    current_task: str | None
    progress: tuple[float, float | None] | None


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


def _finite(value: object) -> float | None:
    """`value` as a float, or None if it is not a finite number (JSON has no NaN)."""
    if value is None or isinstance(value, str | bytes):
        return None
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError, OverflowError):
        return None
    return number if math.isfinite(number) else None
