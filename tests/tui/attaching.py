"""Helpers for the attach tests: follow an `AttachSource` into a `RunState` until a
condition holds, waiting on what the source receives (never on the clock)."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

from antflow_tui.source.state import RunState

if TYPE_CHECKING:
    from collections.abc import Callable

    from antflow_tui.attach.source import AttachSource
    from antflow_tui.source.base import Frame

LIMIT = 20.0
"""Seconds a condition may take before the test fails (a hang, not a timing assertion)."""


class Followed:
    """An attach source and the state its frames build, as the app would hold it."""

    def __init__(self, source: AttachSource) -> None:
        self.source = source
        self.state = RunState()
        self.frames: list[Frame] = []
        self.log: list[Any] = []

    def take(self) -> None:
        frame = self.source.next_frame(0.0)
        if frame is not None:
            self.frames.append(frame)
            self.log.extend(self.state.apply(frame))

    async def until(self, condition: Callable[[Followed], bool]) -> None:
        """Apply frames as records arrive until `condition(self)` holds."""
        async with asyncio.timeout(LIMIT):
            while True:
                self.source.changed.clear()
                self.take()
                if condition(self):
                    return
                await self.source.changed.wait()

    def snapshot(self, pipeline: int = 1) -> Any:
        return self.state.snapshots.get(pipeline)

    def failed_items(self) -> list[Any]:
        return sorted(error.item for error in self.state.failures)

    def lines(self) -> list[str]:
        return [entry.line.text for entry in self.log if entry.line is not None]
