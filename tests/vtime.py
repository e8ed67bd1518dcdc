"""An asyncio event loop in virtual time, for tests of waits that span minutes.

`VirtualTimeLoop.time()` starts at 0 and moves only when nothing is ready to run: then
the loop jumps straight to its next timer instead of sleeping until it is due. Anything
built on the loop's timers (``asyncio.sleep``, ``asyncio.timeout``, ``call_later``) thus
takes no wall-clock time, and 200 workers over ten simulated minutes run in a second or
two, in the same order as they would in real time. (The idea of aiostream's
``TimeTravelLoop``, vxgmichel/aiostream ``aiostream/test_utils.py``.)

Real I/O still works: with no timer pending the loop waits for it for real. A test that
waits on nothing at all then hangs, as it would on a real loop (pytest-timeout ends it).

Tests use it through the ``vtime`` fixture (``tests/conftest.py``)::

    def test_something(vtime: VirtualTime) -> None:
        result = vtime.run(main())          # main() runs on a fresh virtual-time loop
        assert vtime.elapsed == 60.0        # simulated seconds the run took
"""

from __future__ import annotations

import asyncio
import selectors
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    from collections.abc import Coroutine

T = TypeVar("T")


class VirtualTimeLoop(asyncio.SelectorEventLoop):
    """A selector event loop whose clock jumps to the next timer when the loop is idle."""

    def __init__(self) -> None:
        super().__init__(selectors.DefaultSelector())
        self._virtual_now = 0.0
        real_select = self._selector.select  # type: ignore[attr-defined]

        def select(timeout: float | None = None) -> list[Any]:
            # asyncio asks to block for `timeout` seconds only when nothing is ready and
            # its next timer is that far away: move the clock there and poll instead.
            if timeout is not None and timeout > 0:
                self._virtual_now += timeout
                timeout = 0
            return real_select(timeout)  # type: ignore[no-any-return]

        self._selector.select = select  # type: ignore[attr-defined]

    def time(self) -> float:
        return self._virtual_now


class VirtualTime:
    """Runs coroutines on fresh virtual-time loops; the ``vtime`` fixture's value."""

    def __init__(self) -> None:
        self.loop: VirtualTimeLoop | None = None
        self.elapsed = 0.0
        """Simulated seconds the last `run` took."""

    def run(self, main: Coroutine[Any, Any, T]) -> T:
        """Run `main` to its end on a new `VirtualTimeLoop` and return its result."""
        loop = self.loop = VirtualTimeLoop()
        try:
            result = loop.run_until_complete(main)
            self.elapsed = loop.time()
            loop.run_until_complete(loop.shutdown_asyncgens())
            return result
        finally:
            loop.close()

    def now(self) -> float:
        """The running loop's time (for ``clock=`` arguments made before the loop runs)."""
        return asyncio.get_running_loop().time()
