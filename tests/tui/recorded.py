"""Sources for tests that read the small recordings in tests/tui/recordings/.

`recorded_app` shows a recording as the live app would show that moment (a
`RecordedSource`: a replay that claims a live run's capabilities, remembers the commands
it is sent, and answers await stacks from the recording's side file); `replay_app` shows
it as `antflow-tui replay` does. No engine runs: every screen is the same on every run.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import msgspec

from antflow.runstream.fileformat import Recording
from antflow.runstream.records import AwaitStack
from antflow_tui.app import AntflowApp, make_app
from antflow_tui.options import AppOptions
from antflow_tui.source.base import Can
from antflow_tui.source.replay import ReplaySource

if TYPE_CHECKING:
    from antflow.runstream.records import Command
    from antflow_tui.source.base import RunStatus

RECORDINGS = Path(__file__).resolve().parent / "recordings"


def recording(name: str) -> Recording:
    return Recording.open(RECORDINGS / f"{name}.jsonl")


class RecordedSource(ReplaySource):
    """A recording shown as the live run it was, held at one moment."""

    CAN: ClassVar[frozenset[Can]] = frozenset(
        {Can.PAUSE, Can.RETRY, Can.CONCURRENCY, Can.BUDGET, Can.STOP, Can.STACKS, Can.VALUES}
    )

    def capabilities(self) -> frozenset[Can]:
        return self.CAN

    def __init__(self, name: str, *, at: float | None = None) -> None:
        opened = recording(name)
        super().__init__(opened, name=f"{name}.jsonl", at=opened.ended_at if at is None else at)
        self.sent: list[Command] = []
        stacks = RECORDINGS / f"{name}.stacks.json"
        self._stacks: dict[str, Any] = (
            json.loads(stacks.read_text(encoding="utf-8")) if stacks.exists() else {}
        )

    def _status(self) -> RunStatus:
        status = super()._status()
        return dataclasses.replace(status, replay=None, active=status.ended_at is None)

    async def worker_stack(self, pipeline: int, worker: str) -> AwaitStack | None:
        stack = self._stacks.get(worker)
        return None if stack is None else msgspec.convert(stack, AwaitStack)

    async def send(self, command: Command) -> str:
        self.sent.append(command)
        return "Sent"


def recorded_app(name: str, **options: Any) -> AntflowApp:
    """The app over a recording, shown as live at its last moment."""
    return make_app(RecordedSource(name), AppOptions(**{"interval": 0.05, **options}))


def replay_app(name: str, *, at: float | None = None, **options: Any) -> AntflowApp:
    """The app replaying a recording (`at`: seconds into it)."""
    opened = recording(name)
    start = None if at is None else opened.started_at + at
    source = ReplaySource(opened, name=f"{name}.jsonl", at=start)
    return make_app(source, AppOptions(**{"interval": 0.05, **options}))
