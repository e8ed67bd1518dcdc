"""`set_task_status`: let a running task say what it is doing, for dashboards to show."""

from __future__ import annotations

from contextvars import ContextVar
from typing import Protocol


class _StatusHolder(Protocol):
    current_task: str | None


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
        holder.current_task = None if text is None else str(text)
