"""`on_executor`: run a stage's function in a `concurrent.futures` executor (stdlib only)."""

from __future__ import annotations

import asyncio
from concurrent.futures import Executor, ProcessPoolExecutor, ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

from antflow.offload._core import remote_task

if TYPE_CHECKING:
    from collections.abc import Callable
    from concurrent.futures import Future

    from antflow.offload._core import Call, Report
    from antflow.stage import TaskFunc


def on_executor(executor: Executor, fn: Callable[..., Any]) -> TaskFunc:
    """A task that runs ``fn(value)`` in `executor`, one call per attempt.

    With a `ProcessPoolExecutor`, CPU-bound work runs on other cores and the pipeline's
    event loop (and a dashboard drawn on it) never stalls; `fn` and its arguments must
    pickle. An error comes back as the function's own exception type with the remote
    traceback as its ``__cause__``.

    Cancellation (a forced shutdown): a call still waiting in the executor's queue is
    cancelled and never runs. A call already running cannot be interrupted, in a process
    or a thread: it runs to its end and its result is dropped. (`ProcessPoolExecutor`
    also hands one call per process to its processes ahead of time and counts it as
    running.) The item is reported unfinished either way.

    Args:
        executor: Where calls run; the caller creates it and shuts it down.
        fn: A plain function of the stage's input (or of the unpacked input).

    Returns:
        An ``async def`` task named after `fn`.

    Raises:
        TypeError: `fn` is an ``async def`` function, or not callable.
    """
    where = _describe(executor)

    def submit(args: tuple[Any, ...], kwargs: dict[str, Any], report: Report) -> Call:
        call = _ExecutorCall(executor.submit(fn, *args, **kwargs))
        report(f"in {where}")
        return call

    return remote_task(fn, submit, "on_executor")


class _ExecutorCall:
    __slots__ = ("_future",)

    def __init__(self, future: Future[Any]) -> None:
        self._future = future

    async def result(self) -> Any:
        return await asyncio.wrap_future(self._future)

    async def cancel(self) -> None:
        self._future.cancel()


def _describe(executor: Executor) -> str:
    if isinstance(executor, ProcessPoolExecutor):
        return "a process pool"
    if isinstance(executor, ThreadPoolExecutor):
        return "a thread pool"
    return f"a {type(executor).__name__}"
