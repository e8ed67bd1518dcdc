"""Which exceptions from user code stop the run, and which are only the item's (or the
observer's) failure.

User code (tasks, hooks, callbacks, dashboards) may raise anything. Only three things
stop a worker: this worker being cancelled from outside (a shutdown), and
`KeyboardInterrupt` / `SystemExit`, which mean "stop the program". A `CancelledError`
that user code raises by itself, or a stray `GeneratorExit`, is an ordinary failure.
"""

from __future__ import annotations

import asyncio


def cancelled_from_outside() -> bool:
    """True when the current task is being cancelled, so a CancelledError is ours."""
    task = asyncio.current_task()
    return task is None or task.cancelling() > 0


def must_propagate(error: BaseException) -> bool:
    """Whether `error` from user code must end the worker rather than be reported."""
    if isinstance(error, KeyboardInterrupt | SystemExit):
        return True
    return isinstance(error, asyncio.CancelledError) and cancelled_from_outside()
