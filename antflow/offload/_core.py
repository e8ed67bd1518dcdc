"""What every backend shares: an async task that submits one call per attempt and awaits it.

A backend supplies `Submit`: start one call of the wrapped function and return a `Call`
that can be awaited and cancelled. This module names the task after the function, shows
where the call runs as the worker's task status, and cancels the call when the worker is
cancelled (a forced shutdown), so no remote work outlives the item it was for.
"""

from __future__ import annotations

import asyncio
import importlib
import inspect
import logging
from typing import TYPE_CHECKING, Any, Final, Protocol

from antflow._safe import safe_repr
from antflow.context import _current_worker
from antflow.stage import task_name

if TYPE_CHECKING:
    from collections.abc import Callable
    from types import ModuleType

    from antflow.context import _StatusHolder
    from antflow.stage import TaskFunc

logger = logging.getLogger(__name__)

CANCEL_TIMEOUT: Final = 10.0
"""Seconds a cancelled task waits for its backend to confirm the remote call is cancelled.

Bounded so that an unreachable scheduler cannot hang a forced shutdown."""

_cancellers: set[asyncio.Task[None]] = set()
"""Cancellations still being sent; asyncio keeps only weak references to tasks."""


class Call(Protocol):
    """One submitted call of the wrapped function."""

    async def result(self) -> Any:
        """Wait for the call and return its result, or raise the function's error."""

    async def cancel(self) -> None:
        """Ask the backend to drop the call (best effort: see each backend)."""


class Report(Protocol):
    """Shows a text as the current worker's task status while the attempt runs."""

    def __call__(self, text: str) -> None: ...


class Submit(Protocol):
    """Starts one call of the wrapped function with these arguments."""

    def __call__(self, args: tuple[Any, ...], kwargs: dict[str, Any], report: Report) -> Call: ...


class RemoteTraceback(Exception):
    """The traceback of an error raised in another process, as text.

    Set as the ``__cause__`` of the error a remote call raised (the way
    `concurrent.futures.ProcessPoolExecutor` does), so tracebacks shown by antflow-tui and
    by Python read the remote frames first, then the error.
    """

    __module__ = "antflow.offload"  # where users import it from, as tracebacks name it

    def __init__(self, text: str) -> None:
        super().__init__(text)
        self.text = text
        """The remote traceback, formatted."""

    def __str__(self) -> str:
        return f'\n"""\n{self.text.rstrip()}\n"""'


def remote_task(fn: Callable[..., Any], submit: Submit, backend: str) -> TaskFunc:
    """An ``async def`` task running `fn` through `submit`: one call per attempt.

    Args:
        fn: The plain function to run elsewhere.
        submit: Starts one call of `fn`.
        backend: How error messages name the wrapper (``on_dask``).

    Returns:
        A coroutine function with `fn`'s name, qualified name, module and docstring.

    Raises:
        TypeError: `fn` is not callable, or is a coroutine function (those already run on
            the pipeline's loop; only plain functions can run elsewhere).
    """
    if not callable(fn):
        raise TypeError(f"{backend}() needs a function to run, got {fn!r}")
    if inspect.iscoroutinefunction(inspect.unwrap(fn)):
        raise TypeError(
            f"{backend}() runs plain 'def' functions elsewhere; {task_name(fn)!r} is "
            f"'async def', so give it to the stage directly"
        )
    name = task_name(fn)

    async def offloaded(*args: Any, **kwargs: Any) -> Any:
        report = _Reporter(_current_worker.get())
        try:
            call = submit(args, kwargs, report)
            try:
                return await call.result()
            except asyncio.CancelledError:
                await _cancel(call, name)
                raise
        finally:
            report.close()

    # Not functools.wraps: Stage validation follows __wrapped__ and would find a plain def.
    offloaded.__name__ = name
    offloaded.__qualname__ = getattr(fn, "__qualname__", name)
    offloaded.__module__ = getattr(fn, "__module__", None) or __name__
    offloaded.__doc__ = getattr(fn, "__doc__", None)
    return offloaded


def require(module: str, extra: str, backend: str) -> ModuleType:
    """Import `module`, or explain which extra of antflow brings it.

    Raises:
        ImportError: the module is not installed.
    """
    try:
        return importlib.import_module(module)
    except ImportError as error:
        raise ImportError(
            f"{backend}() needs the {module!r} package: pip install 'antflow[{extra}]'"
        ) from error


class _Reporter:
    """Sets the worker's task status until the attempt ends, then clears it.

    A backend may report late (Dask says which worker started the call when its event
    arrives); once closed, a late report is dropped instead of labelling the worker's
    next item.
    """

    __slots__ = ("_holder",)

    def __init__(self, holder: _StatusHolder | None) -> None:
        self._holder = holder

    def __call__(self, text: str) -> None:
        holder = self._holder
        if holder is not None:
            holder.current_task = text

    def close(self) -> None:
        holder = self._holder
        if holder is not None:
            holder.current_task = None
            self._holder = None


async def _cancel(call: Call, name: str) -> None:
    # In its own task: a second cancellation of the worker must not stop the message
    # from going out.
    canceller = asyncio.get_running_loop().create_task(call.cancel())
    _cancellers.add(canceller)
    canceller.add_done_callback(_cancellers.discard)
    done, _ = await asyncio.wait({canceller}, timeout=CANCEL_TIMEOUT)
    if not done:
        logger.warning(
            "cancelling the remote call of %s took over %.0f s; leaving it", name, CANCEL_TIMEOUT
        )
    elif not canceller.cancelled() and canceller.exception() is not None:
        logger.warning(
            "could not cancel the remote call of %s: %s", name, safe_repr(canceller.exception())
        )
