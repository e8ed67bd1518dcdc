"""A replay's keys: play and hold, step and jump, play faster or slower, seek to a time.

The app binds them (from any panel, never while typing) when its source can seek
(`Can.SEEK`); this carries them out on the source and draws the frame they lead to.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from antflow_tui.source.base import Can
from antflow_tui.widgets.scrubber import next_speed

if TYPE_CHECKING:
    from antflow_tui.app import AntflowApp
    from antflow_tui.source.base import ReplayPosition, RunStatus


class ReplayKeys:
    """The scrubber's keys, for `app`'s replay."""

    def __init__(self, app: AntflowApp) -> None:
        self.app = app

    def _replay(self) -> tuple[RunStatus, ReplayPosition] | None:
        status = self.app.state.status
        if status is None or status.replay is None or not self.app.source.can(Can.SEEK):
            return None
        return status, status.replay

    def play(self) -> None:
        """Play the replay on from where it stands, or hold it."""
        found = self._replay()
        if found is None:
            return
        status, replay = found
        source = self.app.source
        if not replay.playing and status.now >= replay.end:
            source.seek(replay.start)  # played to the end: play it again from the start
        source.play(not replay.playing)
        self.app.redraw()

    def move(self, seconds: float) -> None:
        """Move the position by `seconds` (back when negative)."""
        found = self._replay()
        if found is not None:
            self.app.source.seek(found[0].now + seconds)
            self.app.redraw()

    def speed(self, direction: int) -> None:
        """Play faster (1) or slower (-1), through `SPEEDS`."""
        found = self._replay()
        if found is None:
            return
        speed = next_speed(found[1].speed, direction)
        self.app.source.set_speed(speed)
        self.app.notify(f"Replay speed {speed:g}x", timeout=2, markup=False)
        self.app.redraw()

    def seek(self) -> None:
        """Ask for a time into the recording and go there."""
        from antflow_tui.screens.seek import SeekScreen, parse_position

        found = self._replay()
        if found is None:
            return
        status, replay = found

        def chosen(text: str | None) -> None:
            if not text or self._replay() is None:
                return
            try:
                at = parse_position(text, start=replay.start, end=replay.end, now=status.now)
            except ValueError as error:
                self.app.notify(str(error), severity="error", timeout=4, markup=False)
                return
            self.app.source.seek(at)
            self.app.redraw()

        self.app.push_screen(SeekScreen(replay.end - replay.start), chosen)
