"""Deliver tracker events: listeners synchronously, user callbacks in order on one task.

User callbacks may be slow or async; running them on a single dispatcher task keeps them
in event order without making workers wait, until the backlog passes `BACKLOG_LIMIT`
(then workers wait for it, so a slow callback costs speed, never unbounded memory).
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter, deque
from collections.abc import Callable
from typing import Any, Final

from antflow._guard import must_propagate
from antflow._safe import safe_repr

logger = logging.getLogger("antflow.tracker")

BACKLOG_LIMIT: Final = 10_000
_LOGGED_FAILURES_PER_CALLBACK: Final = 5

Listener = Callable[[Any], None]


class Delivery:
    """Fans events out to listeners and queues them for user callbacks."""

    def __init__(self) -> None:
        self.listeners: list[Listener] = []
        self.pending: deque[tuple[Callable[[Any], Any], Any]] = deque()
        self._dispatcher: asyncio.Task[None] | None = None
        self._idle_waiters: list[asyncio.Future[None]] = []
        self._failures: Counter[str] = Counter()

    def send(self, callback: Callable[[Any], Any] | None, event: Any) -> None:
        """Give `event` to every listener now, and queue it for `callback`."""
        if self.listeners:
            for listener in tuple(self.listeners):
                try:
                    listener(event)
                except BaseException as error:
                    if isinstance(error, KeyboardInterrupt | SystemExit):
                        raise
                    logger.exception(
                        "StatusTracker listener %s raised; detaching it", safe_repr(listener)
                    )
                    if listener in self.listeners:
                        self.listeners.remove(listener)
        if callback is not None:
            self.pending.append((callback, event))
            if self._dispatcher is None:
                self._dispatcher = asyncio.get_running_loop().create_task(
                    self._dispatch(), name="antflow tracker callbacks"
                )

    def rebind(self, loop: asyncio.AbstractEventLoop) -> None:
        """Forget a dispatcher left on another (closed) loop, so events queued for it
        are delivered on `loop` rather than never."""
        dispatcher = self._dispatcher
        if dispatcher is not None and dispatcher.get_loop() is not loop:
            self._dispatcher = None
            self._idle_waiters = []
            if self.pending:
                self._dispatcher = loop.create_task(
                    self._dispatch(), name="antflow tracker callbacks"
                )

    def is_dispatcher(self, task: asyncio.Task[Any]) -> bool:
        """True if `task` is the one running user callbacks."""
        return task is self._dispatcher

    async def drain(self) -> None:
        """Wait until every queued callback has run."""
        while self._dispatcher is not None:
            waiter = asyncio.get_running_loop().create_future()
            self._idle_waiters.append(waiter)
            await waiter

    async def _dispatch(self) -> None:
        pending = self.pending
        try:
            while pending:
                callback, event = pending.popleft()
                try:
                    result = callback(event)
                    if result is not None:
                        await result
                except BaseException as error:
                    # A callback never stops delivery, whatever it raises, unless the
                    # program is being stopped.
                    if must_propagate(error):
                        raise
                    self._report(callback)
                if not pending:
                    # Let a burst of events arrive before this task exits.
                    await asyncio.sleep(0)
        finally:
            if self._dispatcher is asyncio.current_task():
                self._dispatcher = None
            waiters, self._idle_waiters = self._idle_waiters, []
            for waiter in waiters:
                if not waiter.done():
                    waiter.set_result(None)

    def _report(self, callback: Callable[[Any], Any]) -> None:
        name = getattr(callback, "__qualname__", None)
        if not isinstance(name, str):
            name = safe_repr(callback)
        self._failures[name] += 1
        count = self._failures[name]
        if count <= _LOGGED_FAILURES_PER_CALLBACK:
            logger.exception("StatusTracker callback %s raised; the pipeline carries on", name)
        if count == _LOGGED_FAILURES_PER_CALLBACK:
            logger.error("StatusTracker callback %s keeps raising; not logging it again", name)
