"""StageQueue: a bounded priority queue that is cheap when every item has the same priority.

Items of equal priority keep their order in a deque per priority, and a heap holds only the
distinct priorities present, so the common single-priority case costs a deque append and
popleft instead of a heap push and pop of (priority, sequence) tuples.
"""

from __future__ import annotations

import asyncio
import heapq
from collections import deque
from itertools import islice
from typing import TYPE_CHECKING, Generic, TypeVar

if TYPE_CHECKING:
    from collections.abc import Iterator

T = TypeVar("T")


class QueueClosed(Exception):
    """Raised by `StageQueue.get` once the queue is closed: the worker should stop."""


class StageQueue(Generic[T]):
    """A priority queue (lower runs first, equal priorities in arrival order).

    Feeders call `wait_for_room` while `capacity` items are waiting, then `put_nowait`;
    `put_nowait(..., force=True)` ignores the capacity, for items that already hold a place
    in the pipeline (retries) and must never wait for room behind themselves.
    """

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self._buckets: dict[int, deque[T]] = {}
        self._priorities: list[int] = []
        self._size = 0
        self._getters: deque[asyncio.Future[None]] = deque()
        self._putters: deque[asyncio.Future[None]] = deque()
        self._closed = False

    def __len__(self) -> int:
        return self._size

    @property
    def closed(self) -> bool:
        return self._closed

    def full(self) -> bool:
        return self._size >= self.capacity

    def put_nowait(
        self, item: T, priority: int, *, force: bool = False, front: bool = False
    ) -> None:
        """Add `item` now.

        Args:
            item: The item.
            priority: Lower runs first.
            force: Add even when the queue is full.
            front: Put it before items of the same priority (an item handed back).

        Raises:
            asyncio.QueueFull: the queue is full and `force` is false.
        """
        if not force and self._size >= self.capacity:
            raise asyncio.QueueFull
        bucket = self._buckets.get(priority)
        if bucket is None:
            bucket = self._buckets[priority] = deque()
            heapq.heappush(self._priorities, priority)
        if front:
            bucket.appendleft(item)
        else:
            bucket.append(item)
        self._size += 1
        getters = self._getters
        while getters:
            waiter = getters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                break

    async def wait_for_room(self) -> None:
        """Wait once for a slot to free up (or for `wake_putters`); callers re-check."""
        waiter = asyncio.get_running_loop().create_future()
        self._putters.append(waiter)
        try:
            await waiter
        except BaseException:
            waiter.cancel()
            # Pass the wake-up on, so a free slot is not wasted on a cancelled putter.
            if self._size < self.capacity and not waiter.cancelled():
                self._wake_putter()
            raise

    def wake_putters(self) -> None:
        """Wake everyone waiting for room, so they re-check why they wait (pause, stop)."""
        while self._putters:
            self._wake_putter()

    def get_nowait(self) -> T:
        """Remove and return the next item.

        Raises:
            asyncio.QueueEmpty: nothing is waiting.
        """
        if not self._size:
            raise asyncio.QueueEmpty
        priority = self._priorities[0]
        bucket = self._buckets[priority]
        item = bucket.popleft()
        if not bucket:
            heapq.heappop(self._priorities)
            del self._buckets[priority]
        self._size -= 1
        if self._putters:
            self._wake_putter()
        return item

    async def get(self) -> T:
        """Remove and return the next item, waiting for one.

        Raises:
            QueueClosed: the queue was closed (at once if it is closed and empty).
        """
        while not self._size:
            if self._closed:
                raise QueueClosed
            waiter = asyncio.get_running_loop().create_future()
            self._getters.append(waiter)
            try:
                await waiter
            except BaseException:
                waiter.cancel()
                if self._size and not waiter.cancelled():
                    # We were woken for an item we will not take: wake someone else.
                    self._wake_getter()
                raise
        return self.get_nowait()

    def close(self) -> None:
        """Wake every waiting getter with `QueueClosed` once the queue is empty."""
        self._closed = True
        for waiter in self._getters:
            if not waiter.done():
                waiter.set_result(None)
        self._getters.clear()

    def reopen(self) -> None:
        self._closed = False

    def drain(self) -> list[T]:
        """Remove and return every waiting item, in the order they would have run."""
        items = list(self)
        self._buckets.clear()
        self._priorities.clear()
        self._size = 0
        self.wake_putters()
        return items

    def __iter__(self) -> Iterator[T]:
        for priority in sorted(self._priorities):
            yield from self._buckets[priority]

    def head(self, count: int) -> list[T]:
        """The next `count` items, without removing them."""
        return list(islice(iter(self), count))

    def _wake_putter(self) -> None:
        while self._putters:
            waiter = self._putters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return

    def _wake_getter(self) -> None:
        while self._getters:
            waiter = self._getters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return
