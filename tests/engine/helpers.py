"""Shared helpers for the engine tests: a fake clock, per-item gates and loop yielding.

Nothing here sleeps on the wall clock: gated tasks wait on `asyncio.Event`s, and `settle`
only yields to the event loop so tasks that are already ready get to run.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from typing import TYPE_CHECKING

# The one fake clock, where antflow-tui's demo gets it too (re-exported for the tests).
from antflow.testing import FakeClock as FakeClock

if TYPE_CHECKING:
    from collections.abc import Callable, Hashable


async def settle(steps: int = 20) -> None:
    """Yield to the event loop `steps` times, letting every ready task run."""
    for _ in range(steps):
        await asyncio.sleep(0)


async def wait_until(predicate: Callable[[], bool], *, steps: int = 2_000) -> None:
    """Yield to the loop until `predicate()` holds; fail if it never does.

    Only for conditions that ready tasks will bring about (no wall-clock waiting): the
    bound turns a hang into an assertion error that names the condition.
    """
    for _ in range(steps):
        if predicate():
            return
        await asyncio.sleep(0)
    assert predicate(), f"condition not reached after {steps} loop iterations"


async def no_wait(seconds: float) -> None:
    """A `sleep=` replacement for retry waits: returns at the next loop iteration."""
    await asyncio.sleep(0)


class Gates:
    """Per-key gates for fake tasks.

    A task calls ``await gates.pass_through(key)``: that marks the key as entered and then
    waits until the test calls ``gates.open(key)`` (or ``open_all()``).
    """

    def __init__(self) -> None:
        self._entered: defaultdict[Hashable, asyncio.Event] = defaultdict(asyncio.Event)
        self._released: defaultdict[Hashable, asyncio.Event] = defaultdict(asyncio.Event)
        self._all_open = False
        self.entered_keys: list[Hashable] = []

    async def pass_through(self, key: Hashable) -> None:
        self.entered_keys.append(key)
        self._entered[key].set()
        if not self._all_open:
            await self._released[key].wait()

    async def entered(self, key: Hashable) -> None:
        """Wait until a task has reached the gate for `key`."""
        await self._entered[key].wait()

    def has_entered(self, key: Hashable) -> bool:
        return self._entered[key].is_set()

    def open(self, key: Hashable) -> None:
        self._released[key].set()

    def close_new(self) -> None:
        """Undo `open_all` for keys no task has been released for yet."""
        self._all_open = False

    def open_all(self) -> None:
        self._all_open = True
        for event in self._released.values():
            event.set()
