"""AntflowApp: shows a run from a `RunSource` (live or recorded); `make_app` builds one.

The app polls its source once per frame, hands the frame to the one `RunState`, and gives
each widget its rows. Controls come up from the screens as messages and go back to the
source as commands. A live source also runs the script here: the app then owns the
terminal for it (its output into the event log, signals, a watchdog over the loop).
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import signal
import time
from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Final

from textual.app import App, SystemCommand
from textual.binding import Binding, BindingType
from textual.screen import ModalScreen
from textual.widgets import Input

from antflow.runstream.records import Pause, Resume, Retry, Stop
from antflow_tui.capture import logging_into, script_streams
from antflow_tui.commands import KeyCommand, KeyCommands, key_commands
from antflow_tui.formatting import format_duration, plural
from antflow_tui.keys import key_for, keys_for
from antflow_tui.messages import (
    PaletteChanged,
    PauseRequested,
    RetryRequested,
)
from antflow_tui.safe_text import clean
from antflow_tui.screens.main import MainScreen
from antflow_tui.source.base import ANY_ITEM, PAUSE, RETRY, SEEK, STOP, ScriptRun, Seekable
from antflow_tui.stall import StallNotice
from antflow_tui.state import RunState
from antflow_tui.view import MainView, ViewBuilder
from antflow_tui.watchdog import Watchdog

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Mapping

    from textual.command import Provider
    from textual.screen import Screen

    from antflow.runstream.records import ItemKey
    from antflow_tui.accounting import RunCounts
    from antflow_tui.fdroute import FdRoute
    from antflow_tui.messages import (
        PaletteChanged,
        PauseRequested,
        RetryRequested,
        ScreenUncovered,
    )
    from antflow_tui.outcome import RunOutcome
    from antflow_tui.source.base import RunSource
    from antflow_tui.terminal import TerminalFile
    from antflow_tui.watchdog import LoopStall

STDIN_NOTES = 5
"""Reads of stdin the log tells of, one line each; past that, the script is looping."""
FD_CATCH_UP_SECONDS: Final = 0.02
FD_CATCH_UP_TRIES: Final = 50
"""How long (at most 1 s) a closing app waits for lines still in descriptor 1 and 2's
pipes, so its last frame shows them."""
STEP_SECONDS: Final = 1.0
"""How far the replay's left and right keys move."""
JUMP_SECONDS: Final = 10.0
"""How far the replay's [ and ] keys move."""
SPEEDS: Final = (0.25, 0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0)
"""The replay speeds < and > step through."""


@dataclass(frozen=True, slots=True)
class AppOptions:
    """What the command line can set."""

    interval: float = 0.25
    paused: bool = False
    log_lines: int = 5_000
    export: Path | None = None
    exit_when_done: bool = False
    history: int = 10_000
    keymap: Mapping[str, str] = field(default_factory=dict)
    """Binding id -> key(s), overriding the defaults (see `antflow_tui.keys`)."""
    stop_grace: float = 3.0
    """Seconds a stop lets running items finish before cancelling them."""
    own_terminal: bool = False
    """The app owns a real terminal (the command line): lead descriptors 1 and 2 into the
    event log, handle SIGTERM and SIGHUP, and let the watchdog end a blocked app."""
    watchdog_late: float | None = None
    """Seconds the event loop must not answer to count as blocked (None: the default)."""
    record: Path | None = None
    """Record the live run to this file (``--record``)."""
    record_values: bool = False
    """Record the items' values too, as reprs (``--record-values``)."""


class AntflowApp(App[None]):
    """Watch a pipeline run (htop for a batch job), live or from a recording."""

    TITLE = "antflow-tui"
    CSS_PATH = "styles/app.tcss"
    ENABLE_COMMAND_PALETTE = True
    # One provider: Textual's system commands come after every key's (see KeyCommands).
    COMMANDS: ClassVar[set[type[Provider] | Callable[[], type[Provider]]]] = {KeyCommands}

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("q", "quit", "Quit", id="quit"),
        Binding("ctrl+q", "quit", "Quit", show=False, priority=True, id="quit-now"),
        Binding("ctrl+c", "stop", "Stop the run", show=False, priority=True, id="stop"),
        Binding("colon", "goto", "Go to", tooltip="Go to an item by id", id="goto"),
        Binding("z", "toggle_freeze", "Freeze", tooltip="Freeze the display", id="freeze"),
        Binding("e", "export", "Export", show=False, id="export"),
        Binding("question_mark,f1", "help", "Help", id="help"),
        # A replay's scrubber: from any panel (a priority binding), but not while typing.
        Binding("space", "play", "Play/pause", priority=True, id="replay.play"),
        Binding("left", "step(-1)", "Back 1s", show=False, priority=True, id="replay.back"),
        Binding("right", "step(1)", "On 1s", show=False, priority=True, id="replay.forward"),
        Binding("left_square_bracket", "jump(-1)", "Back 10s", show=False, id="replay.jump-back"),
        Binding("right_square_bracket", "jump(1)", "On 10s", show=False, id="replay.jump-forward"),
        Binding("less_than_sign", "speed(-1)", "Slower", show=False, id="replay.slower"),
        Binding("greater_than_sign", "speed(1)", "Faster", show=False, id="replay.faster"),
        Binding("t", "seek", "Seek", tooltip="Seek to a time", id="replay.seek"),
    ]

    REPLAY_ACTIONS: ClassVar[frozenset[str]] = frozenset({"play", "step", "jump", "speed", "seek"})
    NEEDS: ClassVar[Mapping[str, str]] = dict.fromkeys(REPLAY_ACTIONS, SEEK)
    """Action -> the source capability it needs (as `RunScreen.NEEDS`)."""

    def __init__(self, source: RunSource, options: AppOptions) -> None:
        super().__init__()
        self.source = source
        self.options = options
        self.state = RunState()
        self.live: ScriptRun | None = source if isinstance(source, ScriptRun) else None
        """The source, when it runs a script in this process (a live run)."""
        self.views = ViewBuilder()
        self._exits = ExitStack()
        self._main: MainScreen | None = None
        self.frozen = False
        self.keymap_overrides = dict(options.keymap)
        self.commands_offered: list[KeyCommand] | None = None
        """The command palette's commands, read as it opens."""
        self._exit_requested = False
        self._stopper: asyncio.Task[str] | None = None
        self._quit_when_stopped = False
        self._user_stopped = False
        self.stalls = StallNotice()
        self.watchdog: Watchdog | None = None
        self.stopped_by: str | None = None
        """The signal (or emergency) that ended the run, if one did."""
        self.export_path: Path | None = None
        """Where `e` last wrote the export."""
        self._stdin_reads = 0
        self._end_drawn = 0
        self._stdout: Any = None
        self.fd_route: FdRoute | None = None
        self.terminal: TerminalFile | None = None
        self.terminal_attrs: list[Any] | None = None
        if options.own_terminal:
            from antflow_tui.terminal import TerminalDriver, open_terminal, terminal_attrs

            self.terminal = open_terminal()
            self.terminal_attrs = terminal_attrs()
            TerminalDriver.terminal = self.terminal
            TerminalDriver.key_watch = self._key_read
            self.driver_class = TerminalDriver

    def can(self, capability: str) -> bool:
        return capability in self.source.capabilities

    # ---------------------------------------------------------------- lifecycle

    async def on_mount(self) -> None:
        if self.keymap_overrides:
            self.set_keymap(self.keymap_overrides)
        self._main = MainScreen(self.source, self.state, self.options.log_lines)
        await self.push_screen(self._main)
        live = self.live
        if live is not None:
            self._own_the_script(live)
        self.set_interval(self.options.interval, self.tick)
        self.call_after_refresh(self.tick)
        # Everything built so far (widgets, styles, the script's module) lives as long as
        # the app: keep it out of full garbage collections, which otherwise stall the loop
        # for tens of milliseconds on every pass over it (measured: 25-35 ms).
        gc.freeze()

    def _own_the_script(self, live: ScriptRun) -> None:
        """A live run: the script's output goes to the event log, a watchdog watches the
        loop, signals stop the run; then the script starts."""
        owned = self.options.own_terminal
        if owned:
            from antflow_tui.fdroute import FdRoute

            self.fd_route = FdRoute(self._script_output)
            self._exits.callback(self.fd_route.close)
        self._stdout = self._exits.enter_context(
            script_streams(self._script_output, self._stdin_refused, routed_fds=owned)
        )
        self._exits.enter_context(logging_into(self._script_output, self._script_log))
        self._start_watchdog()
        if owned:
            self._handle_signals()
        live.on_end = self._run_over
        live.start()

    def exit(self, *args: Any, **kwargs: Any) -> None:
        # Frames stop first: the screens are about to be taken down under the timer.
        self._exit_requested = True
        super().exit(*args, **kwargs)

    def on_unmount(self) -> None:
        self._exit_requested = True
        if self.watchdog is not None:
            self.watchdog.stop()
        self._exits.close()

    def _script_output(self, line: str, is_error: bool) -> None:
        """A line the script wrote (print, logging, descriptors 1 and 2); any thread."""
        self.note(line, error=is_error)

    def _script_log(self, line: str, level: str) -> None:
        """A line a logging handler of the script wrote, with its record's level."""
        if self.live is not None:
            self.live.note(line, stream=level)

    def note(self, text: str, *, error: bool = False) -> None:
        """A line for the event log (a live run's; any thread)."""
        if self.live is not None:
            self.live.note(text, error=error)

    def _stdin_refused(self) -> None:
        """The script read stdin (its `input()` gets StdinOwnedError): say so."""
        if self._stdout is not None:
            self._stdout.finish()  # the prompt it printed, if any
        self._stdin_reads += 1
        if self._stdin_reads <= STDIN_NOTES:
            self.note(
                "The script read from stdin (input()): stdin is owned by antflow-tui, so it "
                "got StdinOwnedError. Pass answers another way (an argument, an environment "
                "variable, a file), or run it with python to answer its prompts.",
                error=True,
            )

    def _run_over(self) -> None:
        """The live run ended (again, after a retry): export, draw the last frame, and
        close if --exit-when-done asked (unless the user stopped it: the report stays)."""
        self._export_quietly()
        # The last frame, past every busy-run throttle, so the report shows the end.
        self.call_later(self.redraw)
        if self.options.exit_when_done and not self._user_stopped:
            self.call_after_refresh(self._exit_after_final_frame)

    def _export_quietly(self) -> None:
        """--export when the run ends; a failure goes to the event log, not a traceback."""
        try:
            self.write_export()
        except OSError as error:
            self.note(
                f"--export failed: {error}. Press {key_for(self, 'export')} to write the "
                "export somewhere else.",
                error=True,
            )

    def _exit_after_final_frame(self, waited: int = 0) -> None:
        route = self.fd_route
        if route is not None and not route.caught_up() and waited < FD_CATCH_UP_TRIES:
            # What a child process wrote just before the end is still on its way from
            # descriptor 1 or 2: the last frame shows it, so wait for it (briefly).
            self.set_timer(FD_CATCH_UP_SECONDS, lambda: self._exit_after_final_frame(waited + 1))
            return
        self.redraw()
        # Exit once that frame is on the screen, not before it is painted.
        self.call_after_refresh(self.exit)

    @property
    def run_active(self) -> bool:
        """A live run's script still runs, or a pipeline does (retried items, for one)."""
        return self.live is not None and self.live.run_active

    # ---------------------------------------------------------------- the watchdog

    def _start_watchdog(self) -> None:
        emergency = hint = None
        if self.options.own_terminal:
            from antflow_tui.emergency import emergency_exit, show_hint

            def emergency(reason: str) -> None:
                emergency_exit(self, reason)

            def hint(blame: str) -> None:
                show_hint(self, blame)

        settings: dict[str, Any] = {}
        if self.options.watchdog_late is not None:
            settings["late"] = self.options.watchdog_late
            settings["period"] = self.options.watchdog_late / 5
        self.watchdog = Watchdog(
            asyncio.get_running_loop(),
            on_stall=self._stalled,
            describe=self._describe_task,
            emergency=emergency,
            hint=hint,
            stop_keys=keys_for(self, "stop"),
            signal_deadline=self.options.stop_grace + 5.0,
            **settings,
        )
        self.watchdog.start()

    def _key_read(self, key: str) -> None:
        """The terminal's input thread read a key (it reaches the loop only if it runs)."""
        if self.watchdog is not None:
            self.watchdog.key_pressed(key)

    def _describe_task(self, name: str) -> str:
        """What the run knows of an asyncio task (called from the watchdog thread)."""
        return "" if self.live is None else self.live.describe_task(name)

    def _stalled(self, stall: LoopStall) -> None:
        """On the loop, once it runs again after code held it."""
        self.note(self.stalls.report(stall, time.monotonic()), error=True)

    def _handle_signals(self) -> None:
        """SIGTERM and SIGHUP stop the run gracefully (see `stop_for_signal`).

        A Python-level handler runs in the main thread even while the script blocks the
        loop; it tells the watchdog too, which ends the app itself if the loop cannot.
        """
        loop = asyncio.get_running_loop()

        def handler(number: int, _frame: object) -> None:
            name = signal.Signals(number).name
            if self.watchdog is not None:
                self.watchdog.signalled(name)
            with contextlib.suppress(RuntimeError):  # the loop has closed: the app is ending
                loop.call_soon_threadsafe(self.stop_for_signal, name)

        for number in (signal.SIGTERM, signal.SIGHUP):
            previous = signal.signal(number, handler)
            self._exits.callback(signal.signal, number, previous)

    def stop_for_signal(self, name: str) -> None:
        """A signal asked the app to end: stop the run (its grace is bounded), then quit;
        the export and the summary follow as after any quit."""
        if self.stopped_by is not None:
            return
        self.stopped_by = name
        grace = format_duration(self.options.stop_grace)
        self.note(
            f"{name} received: stopping the run (running items get {grace}), then closing.",
            error=True,
        )
        self._quit_when_stopped = True
        if self.run_active:
            self.start_stop(force=False)
        elif self._stopper is None or self._stopper.done():
            self.exit()

    # ---------------------------------------------------------------- the frame

    def counts(self, *, in_flight_unfinished: bool = False) -> RunCounts:
        """Where every item of the run stands now (the numbers every screen shows)."""
        if self.live is not None:
            return self.live.counts(in_flight_unfinished=in_flight_unfinished)
        return self.state.counts(in_flight_unfinished=in_flight_unfinished)

    def tick(self, *, force: bool = False) -> None:
        """Once per frame: take the source's frame into the state, and the state to the
        widgets.

        Args:
            force: Draw everything now, skipping the throttles busy runs get.
        """
        main = self._main
        if main is None or not main.is_mounted or self._exit_requested or not self.is_running:
            return
        if self.frozen:
            main.set_banner(*self._frozen_banner())
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
                main.set_banner(*self._banner(view))
            refresh = getattr(shown, "refresh_view", None)
            if refresh is not None and shown.is_mounted:
                refresh(force=force)

    def redraw(self) -> None:
        """Draw a frame now, whether or not the source reported anything (user actions)."""
        self.tick(force=True)

    def on_palette_changed(self, _message: PaletteChanged) -> None:
        self.redraw()

    def on_screen_uncovered(self, _message: ScreenUncovered) -> None:
        # Only the screen on top is drawn each frame: one coming back (a drill-down
        # closed) may have missed the run's end, after which no frame comes.
        self.redraw()

    def _frozen_banner(self) -> tuple[str, str]:
        return f"Display frozen: the run goes on ({key_for(self, 'freeze')} to unfreeze)", (
            "frozen"
        )

    def _banner(self, view: MainView) -> tuple[str, str]:
        state = view.state
        if state == "stopping":
            again = key_for(self, "stop")
            return f"Stopping: letting running items finish… ({again} again to force)", "stopping"
        paused = view.held
        can_pause = self.can(PAUSE)
        if paused and (state == "pausing" or view.settling):
            return f"Pausing {paused}… running items finish first", "paused"
        if paused == "the whole run":
            if not can_pause:
                return "Paused: the whole run (as recorded)", "paused"
            return f"Paused: the whole run ({key_for(self, 'pause')} to resume)", "paused"
        if paused:
            if not can_pause:
                return f"Paused: {paused} (as recorded)", "paused"
            return f"Paused: {paused} ({key_for(self, 'pause-selected')} on it to resume)", "paused"
        status = self.state.status
        if status is not None and status.crashed:
            return "The script raised an exception; see the event log", "failed"
        stalled = self.stalls.banner(time.monotonic())
        if stalled:
            return stalled, "failed"
        return "", ""

    # ---------------------------------------------------------------- actions

    async def action_quit(self) -> None:
        """Quit; while the run is active, ask first, then stop it gracefully.

        Asked again while that stop is under way, quit forces it.
        """
        if self._stopper is not None and not self._stopper.done():
            self._quit_when_stopped = True
            self.start_stop(force=True)
            return
        if not self.run_active:
            self.exit()
            return
        from antflow_tui.screens.confirm import ConfirmScreen

        def answered(confirmed: bool | None) -> None:
            if confirmed:
                self._quit_when_stopped = True
                self.start_stop(force=False)

        self.push_screen(
            ConfirmScreen(lambda: self.quit_question(self.counts()), confirm="Stop and quit"),
            answered,
        )

    def quit_question(self, counts: RunCounts) -> str:
        """What the quit dialog asks, in the words and numbers the summary will use."""
        going = f"{plural(counts.in_flight, 'item')} in flight"
        if counts.not_fed:
            going += f" and {plural(counts.not_fed, 'item')} not fed yet"
        grace = format_duration(self.options.stop_grace)
        question = (
            f"The run is still going: {going}. Stop it and quit? Items still running after "
            f"{grace}, and those waiting in queues, are reported as unfinished"
        )
        if counts.not_fed:
            question += "; items not fed yet as not fed"
        return question + "."

    def action_toggle_freeze(self) -> None:
        """Freeze the display (the run goes on), or unfreeze it."""
        self.frozen = not self.frozen
        self.redraw()

    def action_help(self) -> None:
        from antflow_tui.screens.help import HelpScreen

        if not isinstance(self.screen, HelpScreen):
            self.push_screen(HelpScreen(self.source.capabilities))

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

    def action_export(self) -> None:
        """Ask where to write the export (proposing the last path used, --export, or a
        new file in the current folder), then write it there."""
        from antflow_tui.screens.export import ExportScreen

        if self.is_web:
            self._deliver_export()
            return
        proposed = self.export_path or self.options.export
        if proposed is None:
            proposed = Path.cwd() / f"antflow-export-{datetime.now():%Y%m%d-%H%M%S}.jsonl"
        self.push_screen(ExportScreen(proposed.resolve()), self._export_to)

    def _deliver_export(self) -> None:
        """In a browser (``antflow-tui web``): the export downloads through the page; the
        server's disk and stdout (the page's channel) are left alone."""
        import tempfile

        name = f"antflow-export-{datetime.now():%Y%m%d-%H%M%S}.jsonl"
        with tempfile.TemporaryDirectory(prefix="antflow-export-") as folder:
            path = Path(folder) / name
            count = self.source.export(path)
            # Opened here, read by the driver's thread: the file may go at once.
            self.deliver_binary(path, save_filename=name, mime_type="application/x-ndjson")
        self.notify(f"Exported {plural(count, 'item')}: {name}", timeout=5, markup=False)

    def _export_to(self, path: Path | None) -> None:
        from antflow_tui.screens.export import ExportScreen

        if path is None:
            return
        try:
            count = self.write_export(path)
        except OSError as error:
            reason = error.strerror or str(error)
            again = ExportScreen(path, error=f"Could not write {path}: {reason}")
            self.push_screen(again, self._export_to)
            return
        self.export_path = path
        self.notify(f"Exported {plural(count or 0, 'item')} to {path}", timeout=5, markup=False)

    def open_item(self, item: ItemKey, pipeline: int = ANY_ITEM) -> None:
        """Open an item's screen, in pipeline number `pipeline` (`ANY_ITEM`: the newest
        pipeline that knows it)."""
        from antflow_tui.screens.item import ItemScreen

        self.push_screen(ItemScreen(self.source, self.state, pipeline, item))

    def open_worker(self, worker: str, pipeline: int | None = None) -> None:
        from antflow_tui.screens.worker import WorkerScreen

        number = pipeline or self._pipeline_with(worker=worker)
        self.push_screen(WorkerScreen(self.source, self.state, number, worker))

    def open_stage(self, stage: str, pipeline: int | None = None) -> None:
        from antflow_tui.screens.stage import StageScreen

        number = pipeline or self._pipeline_with(stage=stage)
        self.push_screen(StageScreen(self.source, self.state, number, stage))

    def _pipeline_with(self, *, stage: str | None = None, worker: str | None = None) -> int:
        """The newest pipeline that has this stage or worker."""
        for number in sorted(self.state.pipelines, reverse=True):
            for config in self.state.stage_configs(number):
                if config.name == stage or worker in config.workers:
                    return number
        return self.state.newest or 1

    # ---------------------------------------------------------------- controls

    async def on_pause_requested(self, message: PauseRequested) -> None:
        """Pause or resume the run, one stage or one worker (at its own level), and say so."""
        if not self.can(PAUSE):
            return
        status = self.state.status
        pipeline, stage, worker = message.pipeline, message.stage, message.worker
        if stage is None and worker is None:
            pipeline = None
            # A run started --paused resumes before anything runs.
            resuming = status is not None and status.paused
        else:
            resuming = False
        if not self.state.running and not resuming:
            ended = status is not None and status.ended
            notice = "The run has ended: nothing to pause." if ended else "Nothing runs yet."
            self.notify(notice, severity="warning", timeout=3, markup=False)
            return
        held = self._is_paused(pipeline, stage, worker)
        command = (Resume if held else Pause)(pipeline=pipeline, stage=stage, worker=worker)
        notice = await self.source.send(command)
        self.notify(notice, timeout=2, markup=False)
        self.redraw()

    def _is_paused(self, pipeline: int | None, stage: str | None, worker: str | None) -> bool:
        """Whether that level is paused now (its own pause, not one above it)."""
        status = self.state.status
        if stage is None and worker is None:
            return status is not None and status.paused
        from antflow_tui.present import stage_views

        number = pipeline or self._pipeline_with(stage=stage, worker=worker)
        started = self.state.pipelines.get(number)
        snapshot = self.state.snapshots.get(number)
        if started is None or snapshot is None:
            return False
        for view in stage_views(started, snapshot):
            if stage is not None and view.name == stage:
                return view.counts.paused
            for name, row in zip(view.config.workers, view.workers, strict=False):
                if name == worker:
                    return row.paused and not view.counts.paused and not snapshot.paused
        return False

    async def on_retry_requested(self, message: RetryRequested) -> None:
        """Retry failed items where they failed, each in its own pipeline; say how many."""
        if not self.can(RETRY):
            return
        await self.retry_items(message.items)

    async def retry_items(self, items: Iterable[tuple[int, ItemKey]]) -> list[str]:
        """Send one retry per pipeline; shows (and returns) the notices."""
        by_pipeline: dict[int, list[ItemKey]] = {}
        for pipeline, item in items:
            by_pipeline.setdefault(pipeline, []).append(item)
        notices = []
        holds = False
        for pipeline, wanted in sorted(by_pipeline.items()):
            held = self._holding(pipeline, wanted)
            notice = await self.source.send(Retry(pipeline=pipeline, items=tuple(wanted)))
            if held and notice.startswith("Retrying"):
                notice = f"{notice}. {held}"
            else:
                held = ""
            if len(by_pipeline) > 1:
                notice = f"{self.state.pipeline_name(pipeline)}: {notice}"
            notices.append(notice)
            holds = holds or bool(held)
        # A hold is worth the time to read it: the items will not move until it is lifted.
        self.notify("\n".join(notices), timeout=8 if holds else 3, markup=False)
        self.redraw()
        return notices

    def action_command_palette(self) -> None:
        # What the screen's keys offer, read while it has focus (see KeyCommands).
        self.commands_offered = key_commands(self.screen)
        super().action_command_palette()

    def _holding(self, pipeline: int, items: list[ItemKey]) -> str:
        """What pause would hold these items once retried, in words ('' when none does):
        a retry into a paused stage is otherwise silent, the item just waits there."""
        status = self.state.status
        started = self.state.pipelines.get(pipeline)
        snapshot = self.state.snapshots.get(pipeline)
        if (status is not None and status.paused) or (snapshot is not None and snapshot.paused):
            them = "the item waits" if len(items) == 1 else "the items wait"
            return f"The run is paused: {them} until it resumes ({key_for(self, 'pause')})."
        if started is None or snapshot is None:
            return ""
        from antflow_tui.present import holding_stages

        wanted = set(items)
        stages = {f.stage for f in self.state.failures_of(pipeline) if f.item in wanted}
        held = holding_stages(started, snapshot, stages)
        if not held:
            return ""
        names = ", ".join(clean(name, 30) for name in held)
        where = f"Stage {names} is" if len(held) == 1 else f"Stages {names} are"
        them = "the item waits" if len(items) == 1 else "the items wait"
        resume = key_for(self, "pause-selected")
        return f"{where} paused: {them} there ({resume} on it resumes it)."

    def get_system_commands(self, screen: Screen[object]) -> Iterable[SystemCommand]:
        # Every key is a command already (`antflow_tui.commands`): Textual's Quit and Keys
        # would list quit and help a second time.
        for command in super().get_system_commands(screen):
            if command.title not in ("Quit", "Keys"):
                yield command

    # ---------------------------------------------------------------- replay

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action in self.REPLAY_ACTIONS:
            # Typing in a filter or a dialog keeps its keys (space, arrows).
            return self.can(SEEK) and not isinstance(self.focused, Input)
        return True

    def _seekable(self) -> Seekable | None:
        source = self.source
        return source if isinstance(source, Seekable) and self.can(SEEK) else None

    def action_play(self) -> None:
        """Play the replay on from where it stands, or hold it."""
        seekable = self._seekable()
        status = self.state.status
        if seekable is None or status is None or status.replay is None:
            return
        replay = status.replay
        if not replay.playing and status.now >= replay.end:
            seekable.seek(replay.start)  # played to the end: play it again from the start
        seekable.play(not replay.playing)
        self.redraw()

    def action_step(self, direction: int) -> None:
        self._move(direction * STEP_SECONDS)

    def action_jump(self, direction: int) -> None:
        self._move(direction * JUMP_SECONDS)

    def _move(self, seconds: float) -> None:
        seekable = self._seekable()
        status = self.state.status
        if seekable is None or status is None:
            return
        seekable.seek(status.now + seconds)
        self.redraw()

    def action_speed(self, direction: int) -> None:
        """Play faster (1) or slower (-1), through `SPEEDS`."""
        seekable = self._seekable()
        status = self.state.status
        if seekable is None or status is None or status.replay is None:
            return
        speed = status.replay.speed
        if direction > 0:
            speed = next((s for s in SPEEDS if s > speed), SPEEDS[-1])
        else:
            speed = next((s for s in reversed(SPEEDS) if s < speed), SPEEDS[0])
        seekable.set_speed(speed)
        self.notify(f"Replay speed {speed:g}x", timeout=2, markup=False)
        self.redraw()

    def action_seek(self) -> None:
        """Ask for a time into the recording and go there."""
        from antflow_tui.screens.seek import SeekScreen, parse_position

        status = self.state.status
        if self._seekable() is None or status is None or status.replay is None:
            return
        replay = status.replay

        def chosen(text: str | None) -> None:
            seekable = self._seekable()
            if not text or seekable is None:
                return
            try:
                at = parse_position(text, start=replay.start, end=replay.end, now=status.now)
            except ValueError as error:
                self.notify(str(error), severity="error", timeout=4, markup=False)
                return
            seekable.seek(at)
            self.redraw()

        self.push_screen(SeekScreen(replay.end - replay.start), chosen)

    def action_stop(self) -> None:
        """ctrl+c: stop the run gracefully; a second press forces it. Once the run is over
        (and in a replay), quit, as htop and k9s do."""
        under_way = self._stopper is not None and not self._stopper.done()
        over = self.live is not None and not self.run_active and not under_way
        if over or not self.can(STOP):
            self.exit()
            return
        self.start_stop(force=self.live is not None and self.live.stop_requested)

    def start_stop(self, *, force: bool) -> None:
        """Stop the run in the background, so keys (a forcing second press) still work.

        The app quits once the stop is done if a quit asked for it.
        """
        if self._stopper is not None and not self._stopper.done():
            if force:
                # The engine turns the graceful shutdown under way into a forced one.
                self.run_worker(self.source.send(Stop(force=True)), exclusive=False)
            return
        self._user_stopped = True
        self._stopper = asyncio.get_running_loop().create_task(self.source.send(Stop(force=force)))
        self._stopper.add_done_callback(self._stopped)
        self.redraw()

    def _stopped(self, _task: asyncio.Task[str]) -> None:
        if self._quit_when_stopped:
            self.exit()
        else:
            self.redraw()

    # ---------------------------------------------------------------- results

    def outcome(
        self,
        app_error: str | None = None,
        *,
        in_flight_unfinished: bool = False,
    ) -> RunOutcome:
        """How a live run ended (call after it has)."""
        assert self.live is not None, "only a live run has an outcome"
        return self.live.outcome(
            app_error, in_flight_unfinished=in_flight_unfinished, stopped_by=self.stopped_by
        )

    def write_export(
        self, path: Path | None = None, *, in_flight_unfinished: bool = False
    ) -> int | None:
        """Write the export to `path` (default: --export, if given); returns the number of
        items written."""
        path = path or self.options.export
        if path is None:
            return None
        return self.source.export(path, in_flight_unfinished=in_flight_unfinished)

    async def conclude(self) -> RunOutcome:
        """Once the app has closed, for whatever reason: stop what still runs, export,
        and account for every item (a live run).

        If the app itself failed (a bug of ours), the user's run is still shut down
        gracefully, and what finished is exported and reported.
        """
        live = self.live
        assert live is not None, "only a live run concludes"
        app_error = None
        if self.return_code not in (0, None):
            app_error = "antflow-tui itself failed (its traceback is above); the run was stopped"
        if live.run_active:
            await live.stop(force=False)
        live.mark_closed()
        try:
            self.write_export()
        except OSError as error:
            app_error = f"--export could not be written: {error}"
        return self.outcome(app_error)


def make_app(source: RunSource, options: AppOptions | None = None) -> AntflowApp:
    """The one factory the command line and the tests use: the app over a source (a live
    run: `antflow_tui.live.live_app`)."""
    return AntflowApp(source, options or AppOptions())
