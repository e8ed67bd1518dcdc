"""A deterministic pipeline for tests and snapshots: every task waits on its own gate.

`GatedRun` builds Fetch → Parse → Save over a handful of items, with a fake clock, and
lets a test release items one stage at a time, fail some, and wait until the engine has
settled, so a screenshot always shows the same run at the same moment.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any, Final

from antflow import Pipeline, Stage, StatusTracker, set_task_progress, set_task_status
from antflow.testing import FakeClock

DEMO_START: Final = 1_700_000_000.0
"""The demo's clock starts at a real-looking Unix time (2023-11-14), so snapshots show
times of day as a run would."""


def _demo_clock() -> FakeClock:
    return FakeClock(DEMO_START)


_DOING = {"Fetch": "fetching", "Parse": "parsing", "Save": "saving"}


class DemoError(RuntimeError):
    """The failure the demo's tasks raise when told to."""


@dataclass
class GatedRun:
    """Fetch → Parse → Save over `items`; each (stage, item) runs when its gate opens.

    Args:
        items: The items (ints or strings; ids are their sequence numbers).
        workers: Workers per stage.
        history: The tracker's bounded history (None keeps everything; the app then bounds
            it to its --item-history, and says so in the log).
    """

    items: list[Any]
    workers: tuple[int, int, int] = (3, 2, 1)
    history: int | None = 1_000
    clock: FakeClock = field(default_factory=_demo_clock)
    gates: dict[tuple[str, Any], asyncio.Future[None]] = field(default_factory=dict)
    failures: dict[tuple[str, Any], str] = field(default_factory=dict)
    calls: defaultdict[tuple[str, Any], int] = field(default_factory=lambda: defaultdict(int))
    progress: dict[tuple[str, Any], tuple[float, float | None]] = field(default_factory=dict)
    """(stage, value) -> the (done, total) its task reports with `set_task_progress`."""

    def __post_init__(self) -> None:
        self.tracker = StatusTracker(max_history_items=self.history)
        self.pipeline = Pipeline(
            [
                Stage(
                    "Fetch",
                    self.workers[0],
                    [self._task("Fetch")],
                    task_attempts=2,
                    task_wait_seconds=0,
                ),
                Stage("Parse", self.workers[1], [self._task("Parse")], task_attempts=1),
                Stage("Save", self.workers[2], [self._task("Save")], task_attempts=1),
            ],
            status_tracker=self.tracker,
            clock=self.clock,
        )

    def gate(self, stage: str, value: Any) -> asyncio.Future[None]:
        # A bare future (not an Event) keeps stdlib frames out of the await stacks that
        # snapshots show, so they do not depend on the Python patch version.
        gate = self.gates.get((stage, value))
        if gate is None:
            gate = self.gates[(stage, value)] = asyncio.get_running_loop().create_future()
        return gate

    def release(self, stage: str, *values: Any) -> None:
        """Let `stage` finish these values."""
        for value in values:
            gate = self.gate(stage, value)
            if not gate.done():
                gate.set_result(None)

    def fail(self, stage: str, value: Any, message: str) -> None:
        """Make `stage` raise DemoError(message) for `value` (every attempt)."""
        self.failures[(stage, value)] = message

    def _task(self, stage: str) -> Any:
        async def task(value: Any) -> Any:
            self.calls[(stage, value)] += 1
            set_task_status(f"{_DOING[stage]} {value}")
            progress = self.progress.get((stage, value))
            if progress is not None:
                set_task_progress(*progress)
            await self.gate(stage, value)
            self.clock.advance(0.5)
            message = self.failures.get((stage, value))
            if message is not None:
                raise DemoError(message)
            return value

        task.__name__ = stage.lower()
        return task


async def settle(rounds: int = 50) -> None:
    """Let every task that can run, run (no wall-clock waiting)."""
    for _ in range(rounds):
        await asyncio.sleep(0)
