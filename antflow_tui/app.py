"""AntflowApp: runs a job on its own event loop and shows it live; `make_app` builds one."""

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
from typing import TYPE_CHECKING, Any, ClassVar

from textual.app import App, SystemCommand
from textual.binding import Binding, BindingType
from textual.screen import ModalScreen

from antflow_tui.accounting import RunCounts, run_counts
from antflow_tui.bridge import STOP_GRACE_SECONDS, EngineBridge
from antflow_tui.capture import logging_into, script_streams
from antflow_tui.export import export_run
from antflow_tui.formatting import format_duration, plural
from antflow_tui.keys import key_for, keys_for
from antflow_tui.loader import script_traceback
from antflow_tui.outcome import RunOutcome
from antflow_tui.present import note_line, pause_settling, paused_what
from antflow_tui.rates import RateMeter
from antflow_tui.runner import Job, MainJob, start_job
from antflow_tui.safe_text import item_label
from antflow_tui.screens.main import MainScreen
from antflow_tui.stall import StallNotice
from antflow_tui.view import RunFacts, ViewBuilder
from antflow_tui.watchdog import Watchdog
from antflow_tui.widgets.event_log import LogEntry, gap_entry

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Mapping

    from textual.screen import Screen

    from antflow.types import StatusEvent, TaskEvent
    from antflow_tui.fdroute import FdRoute
    from antflow_tui.terminal import TerminalFile
    from antflow_tui.watchdog import LoopStall

STDIN_NOTES = 5
"""Reads of stdin the log tells of, one line each; past that, the script is looping."""


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
    stop_grace: float = STOP_GRACE_SECONDS
    """Seconds a stop lets running items finish before cancelling them."""
    own_terminal: bool = False
    """The app owns a real terminal (the command line): lead descriptors 1 and 2 into the
    event log, handle SIGTERM and SIGHUP, and let the watchdog end a blocked app."""
    watchdog_late: float | None = None
    """Seconds the event loop must not answer to count as blocked (None: the default)."""


class AntflowApp(App[None]):
    """Watch a pipeline run: htop for a batch job."""

    TITLE = "antflow-tui"
    CSS_PATH = "styles/app.tcss"
    ENABLE_COMMAND_PALETTE = True

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("q", "quit", "Quit", id="quit"),
        Binding("ctrl+q", "quit", "Quit", show=False, priority=True, id="quit-now"),
        Binding("ctrl+c", "stop", "Stop", show=False, priority=True, id="stop"),
        Binding("colon", "goto", "Go to", id="goto"),
        Binding("z", "toggle_freeze", "Freeze", id="freeze"),
        Binding("e", "export", "Export", show=False, id="export"),
        Binding("question_mark,f1", "help", "Help", id="help"),
    ]

    def __init__(
        self,
        job: Job,
        options: AppOptions,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        super().__init__()
        self.job = job
        self.options = options
        self.clock = clock
        self.bridge = EngineBridge(
            history=options.history,
            log_lines=options.log_lines,
            interval=options.interval,
            start_paused=options.paused,
            stop_grace=options.stop_grace,
            clock=clock,
        )
        self.views = ViewBuilder()
        self.job_task: asyncio.Task[None] | None = None
        self.crash: str | None = None
        self._exits = ExitStack()
        self._main: MainScreen | None = None
        self.frozen = False
        self.keymap_overrides = dict(options.keymap)
        self._exit_requested = False
        self._stopper: asyncio.Task[None] | None = None
        self._quit_when_stopped = False
        self.stalls = StallNotice()
        self._event_rate = RateMeter()
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

    # ---------------------------------------------------------------- lifecycle

    async def on_mount(self) -> None:
        if self.keymap_overrides:
            self.set_keymap(self.keymap_overrides)
        self._main = MainScreen(self.options.log_lines)
        await self.push_screen(self._main)
        owned = self.options.own_terminal
        if owned:
            from antflow_tui.fdroute import FdRoute

            self.fd_route = FdRoute(self._script_output)
            self._exits.callback(self.fd_route.close)
        self._stdout = self._exits.enter_context(
            script_streams(self._script_output, self._stdin_refused, routed_fds=owned)
        )
        self._exits.enter_context(logging_into(self._script_output))
        self._start_watchdog()
        if owned:
            self._handle_signals()
        self.bridge.started_at = self.clock()
        self._main.event_log.started = self.bridge.started_at
        self.job_task = start_job(self.job, self.bridge.attach)
        self.job_task.add_done_callback(self._job_done)
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
        if self.watchdog is not None:
            self.watchdog.stop()
        self._exits.close()

    def _script_output(self, line: str, is_error: bool) -> None:
        """A line the script wrote (print, logging, descriptors 1 and 2); any thread."""
        self.bridge.note(line, error=is_error)

    def _stdin_refused(self) -> None:
        """The script read stdin (its `input()` gets StdinOwnedError): say so."""
        if self._stdout is not None:
            self._stdout.finish()  # the prompt it printed, if any
        self._stdin_reads += 1
        if self._stdin_reads <= STDIN_NOTES:
            self.bridge.note(
                "The script read from stdin (input()): stdin is owned by antflow-tui, so it "
                "got StdinOwnedError. Pass answers another way (an argument, an environment "
                "variable, a file), or run it with python to answer its prompts.",
                error=True,
            )

    def _job_done(self, task: asyncio.Task[None]) -> None:
        if not task.cancelled() and task.exception() is not None:
            error = task.exception()
            assert error is not None
            self.crash = script_traceback(error)
            for line in self.crash.splitlines():
                self.bridge.note(line, error=True)
        ended_early = self.crash is not None or (isinstance(self.job, MainJob) and self.job.exited)
        if ended_early and self.bridge.running() and not self.bridge.stop_requested:
            # As under plain python, where the script's end ends its pipelines: what they
            # still hold is unfinished.
            how = "raised" if self.crash is not None else "called sys.exit()"
            self.bridge.note(
                f"The script {how} while a pipeline was running: stopping it; items not "
                "finished are reported as unfinished.",
                error=True,
            )
            self._quit_when_stopped = self.options.exit_when_done
            self.start_stop(force=False)
            return
        self._run_over()

    def _run_over(self) -> None:
        self.bridge.mark_ended()
        self._export_quietly()
        # The last frame, past every busy-run throttle, so the report shows the end.
        self.call_later(self.redraw)
        if self.options.exit_when_done and not self.bridge.stop_requested:
            self.call_after_refresh(self._exit_after_final_frame)

    def _export_quietly(self) -> None:
        """--export when the run ends; a failure goes to the event log, not a traceback."""
        try:
            self.write_export()
        except OSError as error:
            self.bridge.note(
                f"--export failed: {error}. Press {key_for(self, 'export')} to write the "
                "export somewhere else.",
                error=True,
            )

    def _exit_after_final_frame(self) -> None:
        self.redraw()
        self.exit()

    @property
    def run_active(self) -> bool:
        """The script's job still runs, or a pipeline does (retried items, for one)."""
        job_running = self.job_task is not None and not self.job_task.done()
        return job_running or self.bridge.running()

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
        if name == "antflow-tui job":
            return "the script's main()" if isinstance(self.job, MainJob) else "feeding items"
        worker = name.removeprefix("antflow ")
        if worker == name:
            return ""
        for attached in list(self.bridge.attached):
            state = attached.pipeline.get_worker_states().get(worker)
            if state is not None:
                if state.current_item_id is None:
                    return f"worker {worker}"
                return f"worker {worker} on item {item_label(state.current_item_id, 40)}"
        return ""

    def _stalled(self, stall: LoopStall) -> None:
        """On the loop, once it runs again after code held it."""
        self.bridge.note(self.stalls.report(stall, time.monotonic()), error=True)

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
        self.bridge.note(
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
        return run_counts(
            self.bridge.tallies(),
            known_total=self.job.known_total,
            in_flight_unfinished=in_flight_unfinished,
        )

    def tick(self, *, force: bool = False) -> None:
        """Once per frame: read the engine's latest state and hand it to the widgets.

        Args:
            force: Draw everything now, skipping the throttles busy runs get.
        """
        main = self._main
        if main is None or not main.is_mounted or self._exit_requested or not self.is_running:
            return
        if self.frozen:
            main.set_banner(*self._banner("frozen"))
            return
        bridge = self.bridge
        if bridge.ended_at is not None and not bridge.dirty and not bridge.running():
            # The run is over and nothing moved since the last frame: an open report
            # costs nothing while it sits there.
            return
        bridge.dirty = False
        if bridge.ends != self._end_drawn:
            # The last frame of a run (or of a retry after it) is drawn in full, past
            # every throttle: nothing may move after it to draw again.
            self._end_drawn = bridge.ends
            force = True
        snapshot = bridge.snapshot()
        current = bridge.current
        paused = paused_what(snapshot)
        facts = RunFacts(
            title=self.job.title,
            now=self.clock(),
            started_at=bridge.started_at,
            ended_at=bridge.ended_at,
            crashed=self.crash is not None,
            stopping=bridge.stopping,
            pipelines=len(bridge.attached),
            stopped=bridge.stop_requested,
            pipeline=1 if current is None else current.number,
            held=bool(paused),
        )
        counts = run_counts(bridge.tallies(snapshot), known_total=self.job.known_total)
        failures = bridge.failures()
        view = self.views.build(
            snapshot, facts, counts, failures, main.size.width, bridge.errors_by_type()
        )
        main.event_log.started = bridge.started_at
        entries = self._drain_log()
        with self.batch_update():
            main.add_log(entries, force=force)
            # A modal (confirm, help, go to) leaves the main screen in view: keep it live.
            top = self.screen
            if top is main or (isinstance(top, ModalScreen) and self.screen_stack[-2] is main):
                main.show(view, force=force)
                settling = pause_settling(snapshot)
                main.set_banner(*self._banner(view.state, paused, settling=settling))
            refresh = getattr(top, "refresh_view", None)
            if refresh is not None and top.is_mounted:
                refresh(force=force)

    def redraw(self) -> None:
        """Draw a frame now, whether or not the engine reported anything (user actions)."""
        self.bridge.dirty = True
        self.tick(force=True)

    def _drain_log(self) -> list[LogEntry]:
        events, dropped, received = self.bridge.drain_events()
        rate = self._event_rate.update(received, time.monotonic())
        timed: list[tuple[float, LogEntry]] = [
            (event.timestamp, _entry(event, pipeline)) for event, pipeline in events
        ]
        for when, text, is_error in self.bridge.drain_notes():
            timed.append(
                (when, LogEntry(note=note_line(when, text, self.bridge.started_at, is_error)))
            )
        # Printed lines and engine events arrive by different paths: merge them by time.
        timed.sort(key=lambda pair: pair[0])
        entries = [entry for _, entry in timed]
        if dropped:
            entries.insert(0, gap_entry(dropped, rate))
        return entries

    def _banner(self, state: str, paused: str = "", *, settling: bool = False) -> tuple[str, str]:
        if state == "frozen":
            return f"Display frozen: the run goes on ({key_for(self, 'freeze')} to unfreeze)", (
                "frozen"
            )
        if state == "stopping":
            again = key_for(self, "stop")
            return f"Stopping: letting running items finish… ({again} again to force)", "stopping"
        pause_key = key_for(self, "pause")
        if paused and (state == "pausing" or settling):
            return f"Pausing {paused}… running items finish first", "paused"
        if paused == "the whole run":
            return f"Paused: the whole run ({pause_key} anywhere to resume)", "paused"
        if paused:
            return f"Paused: {paused} ({pause_key} on it to resume)", "paused"
        if self.crash is not None:
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
            ConfirmScreen(self.quit_question(self.counts()), confirm="Stop and quit"), answered
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
            self.push_screen(HelpScreen())

    def action_goto(self) -> None:
        """Ask for an item id and open it."""
        from antflow_tui.screens.goto import GotoScreen

        def chosen(text: str | None) -> None:
            if text:
                self.open_item(self.bridge.resolve_item_id(text))

        self.push_screen(GotoScreen(), chosen)

    def action_export(self) -> None:
        """Ask where to write the export (proposing the last path used, --export, or a
        new file in the current folder), then write it there."""
        from antflow_tui.screens.export import ExportScreen

        proposed = self.export_path or self.options.export
        if proposed is None:
            proposed = Path.cwd() / f"antflow-export-{datetime.now():%Y%m%d-%H%M%S}.jsonl"
        self.push_screen(ExportScreen(proposed.resolve()), self._export_to)

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

    def open_item(self, item_id: object, pipeline: int | None = None) -> None:
        """Open an item's screen, in pipeline number `pipeline` (None: the newest
        pipeline that knows it)."""
        from antflow_tui.screens.item import ItemScreen

        self.push_screen(ItemScreen(item_id, pipeline))

    def open_worker(self, worker: str) -> None:
        from antflow_tui.screens.worker import WorkerScreen

        self.push_screen(WorkerScreen(worker))

    def open_stage(self, stage: str) -> None:
        from antflow_tui.screens.stage import StageScreen

        self.push_screen(StageScreen(stage))

    async def retry_items(self, items: Iterable[tuple[object, int | None]]) -> int:
        """Retry failed items where they failed, each in its own pipeline; says how many
        it could. `items` are (item id, pipeline number) pairs."""
        count = await self.bridge.retry(items)
        if count:
            self.notify(f"Retrying {plural(count, 'item')}", timeout=3, markup=False)
        elif self.bridge.stop_requested:
            self.notify("The run was stopped; nothing can be retried.", timeout=3, markup=False)
        else:
            self.notify(
                "Nothing to retry: only failed items can be retried.", timeout=3, markup=False
            )
        self.redraw()
        return count

    def get_system_commands(self, screen: Screen[object]) -> Iterable[SystemCommand]:
        yield from super().get_system_commands(screen)
        commands = (
            ("Pause or resume the run", "Workers finish their item, then wait", self._pause_run),
            ("Freeze or unfreeze the display", "The run goes on", self.action_toggle_freeze),
            ("Go to item", "Open an item by its id", self.action_goto),
            ("Export results", "Results, failures, unfinished items", self.action_export),
            ("Stop the run", "Gracefully; running items get a moment", self.action_stop),
            ("Keys", "Every key and what it does", self.action_help),
        )
        for title, help_text, callback in commands:
            yield SystemCommand(title, help_text, callback)
        if isinstance(screen, MainScreen):
            yield SystemCommand(
                "Retry all failed items", "Those the error panel shows", screen.action_retry_all
            )
            yield SystemCommand("Filter events", "Type text or qualifiers", screen.action_filter)
            yield SystemCommand(
                "Follow new events (on/off)", "In the event log", screen.action_toggle_follow
            )

    def _pause_run(self) -> None:
        self.toggle_pause()

    def toggle_pause(self, *, stage: str | None = None, worker: str | None = None) -> None:
        """Pause or resume the run, one stage or one worker, and say so.

        While the whole run is paused, this resumes it, whatever has focus: that is what
        the banner promises.
        """
        bridge = self.bridge
        if bridge.paused:
            stage = worker = None
        if not bridge.running():
            ended = bridge.ended_at is not None
            message = "The run has ended: nothing to pause." if ended else "Nothing runs yet."
            self.notify(message, severity="warning", timeout=3, markup=False)
            if not bridge.paused:
                return
        paused = not bridge.is_paused(stage=stage, worker=worker)
        bridge.set_paused(paused, stage=stage, worker=worker)
        what = f"stage {stage}" if stage else f"worker {worker}" if worker else "the run"
        self.notify(f"{'Paused' if paused else 'Resumed'} {what}", timeout=2, markup=False)
        self.redraw()

    def action_stop(self) -> None:
        """ctrl+c: stop the run gracefully; a second press forces it."""
        self.start_stop(force=self.bridge.stop_requested)

    def start_stop(self, *, force: bool) -> None:
        """Stop the run in the background, so keys (a forcing second press) still work.

        The app quits once the stop is done if a quit asked for it.
        """
        if self._stopper is not None and not self._stopper.done():
            if force:
                # The engine turns the graceful shutdown under way into a forced one.
                self.run_worker(self.bridge.stop(force=True), exclusive=False)
            return
        self._stopper = asyncio.get_running_loop().create_task(self.stop_run(force=force))
        self._stopper.add_done_callback(self._stopped)
        self.redraw()

    def _stopped(self, _task: asyncio.Task[None]) -> None:
        if self.bridge.ended_at is None and not self.run_active:
            self._run_over()
        if self._quit_when_stopped:
            self.exit()
        else:
            self.redraw()

    async def stop_run(self, *, force: bool) -> None:
        """Shut the pipelines down, then end the script's job."""
        await self.bridge.stop(force=force)
        if self.job_task is not None and not self.job_task.done():
            self.job_task.cancel()
            await asyncio.gather(self.job_task, return_exceptions=True)

    # ---------------------------------------------------------------- results

    def outcome(
        self,
        app_error: str | None = None,
        *,
        in_flight_unfinished: bool = False,
    ) -> RunOutcome:
        """How the run ended (call after it has)."""
        script_exit = self.job.exit_code if isinstance(self.job, MainJob) else None
        return RunOutcome(
            counts=self.counts(in_flight_unfinished=in_flight_unfinished),
            elapsed=(self.bridge.ended_at or self.clock()) - self.bridge.started_at,
            crash=self.crash,
            app_error=app_error,
            script_exit=script_exit,
            stopped_by=self.stopped_by,
        )

    def write_export(
        self, path: Path | None = None, *, in_flight_unfinished: bool = False
    ) -> int | None:
        """Write the export to `path` (default: --export, if given); returns the number of
        items written."""
        path = path or self.options.export
        if path is None:
            return None
        over = self.bridge.ended_at is not None or in_flight_unfinished
        return export_run(
            path,
            list(self.bridge.attached),
            self.counts(in_flight_unfinished=in_flight_unfinished),
            script=self.job.title,
            not_fed=self.job.not_fed() if over else (),
            in_flight_unfinished=in_flight_unfinished,
        )

    async def conclude(self) -> RunOutcome:
        """Once the app has closed, for whatever reason: stop what still runs, export,
        and account for every item.

        If the app itself failed (a bug of ours), the user's run is still shut down
        gracefully, and what finished is exported and reported.
        """
        app_error = None
        if self.return_code not in (0, None):
            app_error = "antflow-tui itself failed (its traceback is above); the run was stopped"
        if self.run_active or self.bridge.running():
            await self.stop_run(force=False)
        if self.bridge.ended_at is None:
            self.bridge.ended_at = self.clock()
        try:
            self.write_export()
        except OSError as error:
            app_error = f"--export could not be written: {error}"
        return self.outcome(app_error)


def _entry(event: StatusEvent | TaskEvent, pipeline: int | None) -> LogEntry:
    return LogEntry(event=event, pipeline=pipeline)


def make_app(job: Job, options: AppOptions | None = None, **kwargs: object) -> AntflowApp:
    """The one factory the command line and the tests use."""
    return AntflowApp(job, options or AppOptions(), **kwargs)  # type: ignore[arg-type]
