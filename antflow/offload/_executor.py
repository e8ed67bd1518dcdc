"""`on_executor`: run a stage's function in a `concurrent.futures` executor (stdlib only)."""

from __future__ import annotations

import asyncio
import contextlib
import weakref
from concurrent.futures import Executor, ProcessPoolExecutor, ThreadPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import TYPE_CHECKING, Any

from antflow.offload._core import RemoteTraceback, remote_task
from antflow.offload._remote import RemoteError, call_in_process
from antflow.stage import task_name

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Callable
    from concurrent.futures import Future

    from antflow.offload._core import Call, Report
    from antflow.stage import TaskFunc


def on_executor(executor: Executor, fn: Callable[..., Any]) -> TaskFunc:
    """A task that runs ``fn(value)`` in `executor`, one call per attempt.

    With a `ProcessPoolExecutor`, CPU-bound work runs on other cores and the pipeline's
    event loop (and a dashboard drawn on it) never stalls; `fn` and its arguments must
    pickle. An error comes back as the function's own exception type with the remote
    traceback as its ``__cause__``; one that cannot be unpickled here (an ``__init__``
    that takes other arguments than the message it passes on) comes back as a
    `RemoteError` named like it, with its message and traceback.

    A process of the pool that dies (``os._exit``, a crash, the OOM killer) breaks a
    `ProcessPoolExecutor` for good, failing every call in it. Here the pool is replaced
    by a new one with the same settings for the calls that follow (shut down when this
    task is garbage-collected, or at exit), and the calls that were in it run again, one
    at a time: only the call that kills a process again fails (with `BrokenProcessPool`).

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
    if isinstance(executor, ProcessPoolExecutor):
        keeper = _PoolKeeper(executor)

        def submit_to_pool(args: tuple[Any, ...], kwargs: dict[str, Any], report: Report) -> Call:
            report(f"in {where}")
            return _PoolCall(keeper, fn, args, kwargs)

        return remote_task(fn, submit_to_pool, "on_executor")

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


class _PoolKeeper:
    """The process pool calls go to, replaced when a dead process breaks it, and the
    turns of calls that must run again alone.

    Calls that were in a pool when it broke are suspects: each runs again alone (no other
    call in the pool), so one that breaks the new pool too is the one that kills its
    process. New calls wait while suspects are waiting or running.
    """

    def __init__(self, pool: ProcessPoolExecutor) -> None:
        self.pool = pool
        self.generation = 0
        """How many times the pool was replaced; each call knows the one it went to."""
        self._settings: dict[str, Any] = {
            "max_workers": pool._max_workers,  # type: ignore[attr-defined]
            "mp_context": pool._mp_context,
            "initializer": pool._initializer,
            "initargs": pool._initargs,
            "max_tasks_per_child": getattr(pool, "_max_tasks_per_child", None),
        }
        self._ours: ProcessPoolExecutor | None = None
        self._running = 0
        """Calls submitted in turn (not suspects) and not ended."""
        self._suspects = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._changed = asyncio.Event()
        self._alone = asyncio.Lock()

    def submit(self, fn: Callable[..., Any], *args: Any) -> tuple[Future[Any], int]:
        """Submit to the current pool (replacing it first if it is already broken)."""
        try:
            return self.pool.submit(call_in_process, fn, *args), self.generation
        except BrokenProcessPool:
            self.replace(self.generation)
            return self.pool.submit(call_in_process, fn, *args), self.generation

    def replace(self, generation: int) -> None:
        """Replace the pool that broke under a call made on `generation` (once)."""
        if generation != self.generation:
            return  # another call has replaced it already
        old = self._ours
        pool = ProcessPoolExecutor(**self._settings)
        # Ours to shut down: when this task goes, or at exit (finalizers run then).
        weakref.finalize(self, pool.shutdown, wait=False, cancel_futures=True)
        self.pool = self._ours = pool
        self.generation += 1
        if old is not None:
            old.shutdown(wait=False, cancel_futures=True)

    async def enter(self) -> None:
        """Wait for the turn of a new call: no suspect waiting or running."""
        self._bind()
        while self._suspects:
            await self._changed.wait()
        self._running += 1

    def leave(self) -> None:
        self._running -= 1
        self._notify()

    @contextlib.asynccontextmanager
    async def alone(self) -> AsyncIterator[None]:
        """Hold the pool for one suspect: no other call in it meanwhile."""
        self._bind()
        self._suspects += 1
        try:
            async with self._alone:
                while self._running:
                    await self._changed.wait()
                yield
        finally:
            self._suspects -= 1
            self._notify()

    def _notify(self) -> None:
        changed, self._changed = self._changed, asyncio.Event()
        changed.set()

    def _bind(self) -> None:
        # asyncio primitives belong to one loop; a pipeline may run on several in turn.
        loop = asyncio.get_running_loop()
        if self._loop is not loop:
            self._loop = loop
            self._changed = asyncio.Event()
            self._alone = asyncio.Lock()
            self._running = self._suspects = 0


class _PoolCall:
    __slots__ = ("_args", "_fn", "_future", "_keeper", "_kwargs")

    def __init__(
        self,
        keeper: _PoolKeeper,
        fn: Callable[..., Any],
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
    ) -> None:
        self._keeper = keeper
        self._fn = fn
        self._args = args
        self._kwargs = kwargs
        self._future: Future[Any] | None = None

    async def result(self) -> Any:
        keeper = self._keeper
        await keeper.enter()
        try:
            return await self._run()
        except BrokenProcessPool:
            pass  # run again below, alone: this call may not be the one that broke it
        finally:
            keeper.leave()
        async with keeper.alone():
            try:
                return await self._run()
            except BrokenProcessPool as error:
                name = task_name(self._fn)
                raise BrokenProcessPool(
                    f"the process running {name} died (os._exit, a crash or the OOM killer), "
                    f"in the pool it had to itself; the pool was replaced for the next calls"
                ) from error

    async def _run(self) -> Any:
        keeper = self._keeper
        future, generation = keeper.submit(self._fn, self._args, self._kwargs)
        self._future = future
        try:
            return await asyncio.wrap_future(future)
        except BrokenProcessPool:
            keeper.replace(generation)
            raise
        except RemoteError as error:
            # The pool's traceback is of the re-raise; the original one came as text.
            raise error.with_traceback(None) from RemoteTraceback(error.traceback_text)

    async def cancel(self) -> None:
        if self._future is not None:
            self._future.cancel()


def _describe(executor: Executor) -> str:
    if isinstance(executor, ProcessPoolExecutor):
        return "a process pool"
    if isinstance(executor, ThreadPoolExecutor):
        return "a thread pool"
    return f"a {type(executor).__name__}"
