"""AttachApp: the app over a run served by another process.

The same screens as live, with what attaching changes: quitting (``q``, ``ctrl+c``)
detaches and never stops the job; stopping the job has its own key, which asks first and
is there only when the token grants control; the banner says when the connection has
dropped (the panels keep the last state meanwhile).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, ClassVar, Protocol

from textual.app import SystemCommand
from textual.binding import Binding, BindingType

from antflow.runstream.records import Stop
from antflow_tui import app as app_module
from antflow_tui.app import AntflowApp, AppOptions
from antflow_tui.keys import key_for

if TYPE_CHECKING:
    from collections.abc import Iterable

    from textual.screen import Screen

    from antflow_tui.source.base import RunSource
    from antflow_tui.view import MainView


class Attached(Protocol):
    """What the app reads of an attach source beyond `RunSource`."""

    notice: str
    """What to say about the connection ('' while attached)."""
    connections: int
    stop_allowed: bool

    @property
    def title(self) -> str: ...


class AttachApp(AntflowApp):
    """Watch a job running in another process; detach at will."""

    # The app's styles (a relative CSS_PATH is read beside the subclass's module).
    CSS_PATH = str(Path(app_module.__file__).parent / "styles" / "app.tcss")

    BINDINGS: ClassVar[list[BindingType]] = [
        # Not in the footer: the footer of an attached run reads as the live one's.
        Binding("X", "stop_job", "Stop the job", show=False, id="stop-job"),
    ]

    def __init__(self, source: RunSource, attached: Attached, options: AppOptions) -> None:
        super().__init__(source, options)
        self.attached = attached
        self._connections_seen: tuple[object, ...] = ()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "stop_job":
            return self.attached.stop_allowed
        return super().check_action(action, parameters)

    def tick(self, *, force: bool = False) -> None:
        super().tick(force=force)
        seen = (self.attached.connections, self.attached.stop_allowed, self.source.capabilities)
        if seen != self._connections_seen:
            # Attached again (perhaps with other scopes), or detached: keys come and go.
            self._connections_seen = seen
            for screen in self.screen_stack:
                screen.refresh_bindings()

    def _banner(self, view: MainView) -> tuple[str, str]:
        if self.attached.notice:
            return self.attached.notice, "paused"
        return super()._banner(view)

    def action_stop_job(self) -> None:
        """Stop the job's pipelines (the viewer stays attached); asks first."""
        if not self.attached.stop_allowed:
            return
        from antflow_tui.screens.confirm import ConfirmScreen

        def answered(confirmed: bool | None) -> None:
            if confirmed:
                self.run_worker(self._stop_job(), exit_on_error=False)

        question = (
            f"Stop the job {self.attached.title}? Its pipelines stop gracefully: running "
            f"items get {self.options.stop_grace:g}s to finish, then are cancelled, and what "
            f"did not finish is reported unfinished. (Quitting this viewer, "
            f"{key_for(self, 'quit')}, only detaches.)"
        )
        self.push_screen(ConfirmScreen(question, confirm="Stop the job"), answered)

    async def _stop_job(self) -> None:
        notice = await self.source.send(Stop())
        self.notify(notice, timeout=4, markup=False)
        self.redraw()

    def get_system_commands(self, screen: Screen[object]) -> Iterable[SystemCommand]:
        yield from super().get_system_commands(screen)
        yield SystemCommand("Detach", "Quit this viewer; the job goes on", self.exit)
