"""AntflowApp: shows a run from a `RunSource` (live, recorded or attached); `make_app`
builds one.

The app polls its source once per frame, hands the frame to the one `RunState`, and gives
each widget its rows. Screens post what the user asks for up as messages: controls go
back to the source as commands, and where to go is opened here, once. What the source can
do (`RunSource.can`) decides which keys work. A script run in this process is hosted by a
`ScriptHost` (its output, signals, watchdog, and the keys that stop it).
"""

from __future__ import annotations

import contextlib
import gc
import time
from typing import TYPE_CHECKING, Any, ClassVar

from textual.app import App, SystemCommand
from textual.screen import ModalScreen
from textual.widgets import Input

from antflow_tui.banner import frozen_banner, run_banner
from antflow_tui.commands import KeyCommand, KeyCommands, key_commands
from antflow_tui.controls import Controls, pipeline_with
from antflow_tui.keys import bindings, key_for, needs
from antflow_tui.options import AppOptions
from antflow_tui.replay_keys import ReplayKeys
from antflow_tui.screens.base import RunScreen
from antflow_tui.screens.main import MainScreen
from antflow_tui.source.base import ANY_ITEM, Can
from antflow_tui.source.state import RunState
from antflow_tui.view import ViewBuilder
from antflow_tui.widgets.scrubber import JUMP_SECONDS, STEP_SECONDS

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Mapping
    from pathlib import Path

    from textual.binding import BindingType
    from textual.command import Provider
    from textual.screen import Screen

    from antflow.runstream.records import ItemKey
    from antflow_tui.hosting.host import ScriptHost
    from antflow_tui.hosting.terminal import TerminalFile
    from antflow_tui.messages import (
        ConcurrencyRequested,
        ItemRequested,
        PaletteChanged,
        PauseRequested,
        RetryRequested,
        ScreenUncovered,
        StageRequested,
        ViewChanged,
        WorkerRequested,
    )
    from antflow_tui.source.base import RunSource


class AntflowApp(App[None]):
    """Watch a pipeline run (htop for a batch job), live, recorded or from elsewhere.

    Args:
        source: Where the run comes from.
        options: The command line's settings.
        host: Runs the source's script in this process (a live run; None: only watch).
    """

    TITLE = "antflow-tui"
    CSS_PATH = "styles/app.tcss"
    ENABLE_COMMAND_PALETTE = True
    # One provider: Textual's system commands come after every key's (see KeyCommands).
    COMMANDS: ClassVar[set[type[Provider] | Callable[[], type[Provider]]]] = {KeyCommands}
    BINDINGS: ClassVar[list[BindingType]] = bindings("app")
    NEEDS: ClassVar[Mapping[str, Can]] = needs("app")
    """Action -> what the source must be able to do for it (as `RunScreen.NEEDS`)."""

    def __init__(
        self, source: RunSource, options: AppOptions, host: ScriptHost | None = None
    ) -> None:
        super().__init__()
        self.source = source
        self.options = options
        self.host = host
        self.state = RunState()
        self.views = ViewBuilder()
        self._main: MainScreen | None = None
        self.frozen = False
        self.keymap_overrides = dict(options.keymap)
        self.commands_offered: list[KeyCommand] | None = None
        """The command palette's commands, read as it opens."""
        self._exit_requested = False
        self._end_drawn = 0
        self._capabilities = source.capabilities()
        self.controls = Controls(self)
        self.replay_keys = ReplayKeys(self)
        self.export_path: Path | None = None
        """Where `e` last wrote the export."""
        driver = None if host is None else host.join(self)
        if driver is not None:
            self.driver_class = driver

    @property
    def terminal(self) -> TerminalFile | None:
        """The terminal a hosted script's app draws on (None: Textual's own output)."""
        return None if self.host is None else self.host.terminal

    # ---------------------------------------------------------------- lifecycle

    async def on_mount(self) -> None:
        if self.keymap_overrides:
            self.set_keymap(self.keymap_overrides)
        self._main = MainScreen(self.source, self.state, self.options.log_lines)
        await self.push_screen(self._main)
        if self.host is not None:
            self.host.start()
        self.set_interval(self.options.interval, self.tick)
        self.call_after_refresh(self.tick)
        # Everything built so far (widgets, styles, the script's module) lives as long as
        # the app: keep it out of full garbage collections, which otherwise stall the loop
        # for tens of milliseconds on every pass over it (measured: 25-35 ms).
        gc.freeze()

    def exit(self, *args: Any, **kwargs: Any) -> None:
        # Frames stop first: the screens are about to be taken down under the timer.
        self._exit_requested = True
        super().exit(*args, **kwargs)

    def on_unmount(self) -> None:
        self._exit_requested = True
        if self.host is not None:
            self.host.close()

    # ---------------------------------------------------------------- the frame

    def tick(self, *, force: bool = False) -> None:
        """Once per frame: take the source's frame into the state, and the state to the
        widgets.

        Args:
            force: Draw everything now, skipping the throttles busy runs get.
        """
        main = self._main
        if main is None or not main.is_mounted or self._exit_requested or not self.is_running:
            return
        self._keys_follow_the_source()
        if self.frozen:
            main.set_banner(*frozen_banner(self._key))
            return
        frame = self.source.next_frame(time.monotonic())
        if frame is None and not force:
            return  # nothing moved since the last frame: an open report costs nothing
        entries = [] if frame is None else self.state.apply(frame)
        status = self.state.status
        if status is None:
            return
        if frame is not None and frame.reset:
            main.event_log.clear_entries()
            self.views.reset()
        if status.ends != self._end_drawn:
            # The last frame of a run (or of a retry after it) is drawn in full, past
            # every throttle: nothing may move after it to draw again.
            self._end_drawn = status.ends
            force = True
        view = self.views.build(
            self.state,
            main.shown,
            main.header_width,
            palette=main.palette,
            switch_key=key_for(self, "switch"),
        )
        main.event_log.set_context(status.started_at, len(self.state.pipelines))
        with self.batch_update():
            main.add_log(entries, force=force)
            # A modal (confirm, help, go to) leaves the screen under it in view: keep it live.
            shown = self.screen
            if isinstance(shown, ModalScreen) and len(self.screen_stack) > 1:
                shown = self.screen_stack[-2]
            if shown is main:
                main.show(view, force=force)
                stalled = "" if self.host is None else self.host.stall_banner()
                can_pause = self.source.can(Can.PAUSE)
                main.set_banner(
                    *run_banner(
                        view,
                        status,
                        can_pause=can_pause,
                        key=self._key,
                        stalled=stalled,
                        can_raise=self.source.can(Can.BUDGET),
                    )
                )
            if isinstance(shown, RunScreen) and shown.is_mounted:
                shown.refresh_view(force=force)

    def _keys_follow_the_source(self) -> None:
        """A source whose abilities change as it goes (a job attached again, perhaps with
        another token, or detached): its keys come and go."""
        now = self.source.capabilities()
        if now != self._capabilities:
            self._capabilities = now
            for screen in self.screen_stack:
                screen.refresh_bindings()

    def _key(self, binding_id: str) -> str:
        return key_for(self, binding_id)

    def redraw(self) -> None:
        """Draw a frame now, whether or not the source reported anything (user actions)."""
        self.tick(force=True)

    def on_palette_changed(self, _message: PaletteChanged) -> None:
        self.redraw()

    def on_view_changed(self, _message: ViewChanged) -> None:
        self.redraw()

    def on_screen_uncovered(self, _message: ScreenUncovered) -> None:
        # Only the screen on top is drawn each frame: one coming back (a drill-down
        # closed) may have missed the run's end, after which no frame comes.
        self.redraw()

    # ---------------------------------------------------------------- navigation

    def on_item_requested(self, message: ItemRequested) -> None:
        self.open_item(message.item, message.pipeline)

    def on_stage_requested(self, message: StageRequested) -> None:
        self.open_stage(message.stage, message.pipeline)

    def on_worker_requested(self, message: WorkerRequested) -> None:
        self.open_worker(message.worker, message.pipeline)

    def open_item(self, item: ItemKey, pipeline: int = ANY_ITEM) -> None:
        """Open an item's screen, in pipeline number `pipeline` (`ANY_ITEM`: the newest
        pipeline that knows it)."""
        from antflow_tui.screens.item import ItemScreen

        self.push_screen(ItemScreen(self.source, self.state, pipeline, item))

    def open_worker(self, worker: str, pipeline: int | None = None) -> None:
        from antflow_tui.screens.worker import WorkerScreen

        number = pipeline or pipeline_with(self.state, worker=worker)
        self.push_screen(WorkerScreen(self.source, self.state, number, worker))

    def open_stage(self, stage: str, pipeline: int | None = None) -> None:
        from antflow_tui.screens.stage import StageScreen

        number = pipeline or pipeline_with(self.state, stage=stage)
        self.push_screen(StageScreen(self.source, self.state, number, stage))

    def action_goto(self) -> None:
        """Ask for an item id and open it."""
        from antflow_tui.screens.goto import GotoScreen

        def chosen(text: str | None) -> None:
            if text:
                self.run_worker(self._open_typed_item(text), exit_on_error=False)

        self.push_screen(GotoScreen(), chosen)

    async def _open_typed_item(self, text: str) -> None:
        """Open the item a typed id most likely means: an int if the run knows one."""
        candidates: list[ItemKey] = [text]
        with contextlib.suppress(ValueError):
            candidates.insert(0, int(text))
        for candidate in candidates:
            detail = await self.source.item(ANY_ITEM, candidate)
            if detail.known or detail.location is not None:
                self.open_item(candidate, detail.pipeline)
                return
        self.open_item(candidates[0])

    def action_help(self) -> None:
        from antflow_tui.screens.help import HelpScreen

        if not isinstance(self.screen, HelpScreen):
            self.push_screen(HelpScreen(self.source.capabilities()))

    def action_command_palette(self) -> None:
        # What the screen's keys offer, read while it has focus (see KeyCommands).
        self.commands_offered = key_commands(self.screen)
        super().action_command_palette()

    def get_system_commands(self, screen: Screen[object]) -> Iterable[SystemCommand]:
        # Every key is a command already (`antflow_tui.commands`): Textual's Quit and Keys
        # would list quit and help a second time.
        for command in super().get_system_commands(screen):
            if command.title not in ("Quit", "Keys"):
                yield command
        if self.source.can(Can.DETACH):
            yield SystemCommand("Detach", "Quit this viewer; the job goes on", self.exit)

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        needed = self.NEEDS.get(action)
        if needed is None:
            return True
        if action == "raise_budget" and not self.controls.budgets():
            return False  # a run without a budget has nothing to raise
        # Typing in a filter or a dialog keeps its keys (space, arrows).
        return self.source.can(needed) and not isinstance(self.focused, Input)

    # ---------------------------------------------------------------- controls

    async def on_pause_requested(self, message: PauseRequested) -> None:
        if self.source.can(Can.PAUSE):
            await self.controls.pause(message.pipeline, message.stage, message.worker)

    async def on_retry_requested(self, message: RetryRequested) -> None:
        if self.source.can(Can.RETRY):
            await self.controls.retry(message.items)

    async def on_concurrency_requested(self, message: ConcurrencyRequested) -> None:
        if self.source.can(Can.CONCURRENCY):
            await self.controls.concurrency(message.pipeline, message.stage, message.change)

    def action_toggle_freeze(self) -> None:
        """Freeze the display (the run goes on), or unfreeze it."""
        self.frozen = not self.frozen
        self.redraw()

    async def action_quit(self) -> None:
        """Quit; a hosted run asks first while it is active, then stops (`ScriptHost`)."""
        if self.host is None:
            self.exit()
        else:
            self.host.quit()

    def action_stop(self) -> None:
        """ctrl+c: stop a hosted run (twice: force it); otherwise, and once it is over, quit,
        as htop and k9s do."""
        if self.host is None:
            self.exit()
        else:
            self.host.stop_key()

    def action_raise_budget(self) -> None:
        """Ask how much to raise the run's budget by (or to), then raise it."""
        self.controls.ask_raise_budget()

    def action_stop_job(self) -> None:
        """Stop an attached job's pipelines (the viewer stays attached); asks first."""
        self.controls.stop_job()

    def action_play(self) -> None:
        """Play the replay on from where it stands, or hold it."""
        self.replay_keys.play()

    def action_step(self, direction: int) -> None:
        self.replay_keys.move(direction * STEP_SECONDS)

    def action_jump(self, direction: int) -> None:
        self.replay_keys.move(direction * JUMP_SECONDS)

    def action_speed(self, direction: int) -> None:
        """Play faster (1) or slower (-1)."""
        self.replay_keys.speed(direction)

    def action_seek(self) -> None:
        """Ask for a time into the recording and go there."""
        self.replay_keys.seek()

    # ---------------------------------------------------------------- export

    def write_export(
        self, path: Path | None = None, *, in_flight_unfinished: bool = False
    ) -> int | None:
        """Write the export to `path` (default: --export, if given); returns the number of
        items written."""
        path = path or self.options.export
        if path is None:
            return None
        return self.source.export(path, self.state, in_flight_unfinished=in_flight_unfinished)

    def action_export(self) -> None:
        """Ask where to write the export, then write it there."""
        from antflow_tui.screens.export import ask_and_export

        ask_and_export(self)


def make_app(
    source: RunSource, options: AppOptions | None = None, host: ScriptHost | None = None
) -> AntflowApp:
    """The one factory the command line and the tests use: the app over a source (a live
    run, hosted here: `antflow_tui.live.live_app`)."""
    return AntflowApp(source, options or AppOptions(), host)
