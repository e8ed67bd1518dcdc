"""The live await stack of an asyncio task: where, file by line, it is waiting right now.

`Task.get_stack()` only returns the outermost coroutine's frame; following each
coroutine's ``cr_await`` down the chain gives every frame the task is suspended in.
"""

from __future__ import annotations

import asyncio
import linecache
from typing import Any, Final

from antflow.runstream.records import AwaitStack, StackFrame

_MAX_DEPTH: Final = 64


def await_stack(task: asyncio.Task[Any]) -> AwaitStack:
    """Walk the task's coroutine chain from the outermost coroutine inwards."""
    frames: list[StackFrame] = []
    current: Any = task.get_coro()
    awaiting = ""
    for _ in range(_MAX_DEPTH):
        frame = getattr(current, "cr_frame", None) or getattr(current, "gi_frame", None)
        if frame is None:
            break
        code = frame.f_code
        lineno = frame.f_lineno
        frames.append(
            StackFrame(
                filename=code.co_filename,
                lineno=lineno,
                function=code.co_qualname,
                line=linecache.getline(code.co_filename, lineno).strip(),
            )
        )
        inner = getattr(current, "cr_await", None)
        if inner is None:
            inner = getattr(current, "gi_yieldfrom", None)
        if inner is None:
            break
        if not (hasattr(inner, "cr_frame") or hasattr(inner, "gi_frame")):
            # `await future` leaves a FutureIter here, which does not lead to the future;
            # the task's own _fut_waiter (a CPython detail since 3.4) is that future.
            waited = getattr(task, "_fut_waiter", None)
            awaiting = _describe(waited if waited is not None else inner)
            break
        current = inner
    return AwaitStack(tuple(frames), awaiting)


def _describe(awaited: Any) -> str:
    if isinstance(awaited, asyncio.Task):
        return f"task {awaited.get_name()}"
    if isinstance(awaited, asyncio.Future):
        return "a future" + (" (done)" if awaited.done() else "")
    if type(awaited).__name__ == "FutureIter":
        # What `await future` suspends on; the future itself is not reachable from it.
        return "a future"
    return type(awaited).__name__
