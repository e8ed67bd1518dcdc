"""ScriptHost: the script's run in this process, under the app.

The app draws a run; when the run is a script started here (`antflow_tui.live`), the app
also owns the terminal for it, and this is that half of its job: the script's output led
into the event log (print, logging, descriptors 1 and 2), its reads of stdin refused, a
watchdog over the event loop the script shares, SIGTERM and SIGHUP, the keys that stop
the run (a quit that asks, ctrl+c twice), what happens when the run ends (the export,
--exit-when-done), and the outcome once the app has closed.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import time
from contextlib import ExitStack
from typing import TYPE_CHECKING, Any, Final

from antflow.runstream.records import Stop
from antflow_tui.formatting import format_duration, plural
from antflow_tui.hosting.capture import logging_into, script_streams
from antflow_tui.hosting.stall import StallNotice
from antflow_tui.hosting.watchdog import Watchdog
from antflow_tui.keys import key_for, keys_for
from antflow_tui.safe_text import clean

if TYPE_CHECKING:
    from textual.driver import Driver

    from antflow_tui.accounting import RunCounts
    from antflow_tui.app import AntflowApp
    from antflow_tui.hosting.fdroute import FdRoute
    from antflow_tui.hosting.terminal import TerminalFile
    from antflow_tui.hosting.watchdog import LoopStall
    from antflow_tui.live.source import LiveSource
    from antflow_tui.options import AppOptions
    from antflow_tui.outcome import RunOutcome

STDIN_NOTES: Final = 5
"""Reads of stdin the log tells of, one line each; past that, the script is looping."""
FD_CATCH_UP_SECONDS: Final = 0.02
FD_CATCH_UP_TRIES: Final = 50
"""How long (at most 1 s) a closing app waits for lines still in descriptor 1 and 2's
pipes, so its last frame shows them."""


class ScriptHost:
    """Runs `source`'s script under an app (see the module's docstring).

    Args:
        source: The live run.
        options: The command line's settings (``own_terminal``: a real terminal, whose
            descriptors, signals and blocked loop are ours to handle).
    """

    def __init__(self, source: LiveSource, options: AppOptions) -> None:
        self.source = source
        self.options = options
        self._app: AntflowApp | None = None
        self._exits = ExitStack()
        self.stalls = StallNotice()
        self.watchdog: Watchdog | None = None
        self.stopped_by: str | None = None
        """The signal (or emergency) that ended the run, if one did."""
        self._stdin_reads = 0
        self._stdout: Any = None
        self.fd_route: FdRoute | None = None
        self.terminal: TerminalFile | None = None
        self.terminal_attrs: list[Any] | None = None
        self._stopper: asyncio.Task[str] | None = None
        self._quit_when_stopped = False
        self._user_stopped = False

    @property
    def app(self) -> AntflowApp:
        assert self._app is not None, "an app joins the host as it is made"
        return self._app

    def join(self, app: AntflowApp) -> type[Driver] | None:
        """The app this run is hosted by (as it is made); returns the driver it must use:
        with a real terminal, one that draws on its own descriptor and tells the watchdog
        of stop keys the blocked loop cannot read (None: Textual's own)."""
        self._app = app
        if not self.options.own_terminal:
            return None
        from antflow_tui.hosting.terminal import TerminalDriver, open_terminal, terminal_attrs

        self.terminal = open_terminal()
        self.terminal_attrs = terminal_attrs()
        TerminalDriver.terminal = self.terminal
        TerminalDriver.key_watch = self._key_read
        return TerminalDriver

    # ---------------------------------------------------------------- lifecycle

    def start(self) -> None:
        """Once the app's screen is up: the script's output goes to the event log, a
        watchdog watches the loop, signals stop the run; then the script starts."""
        owned = self.options.own_terminal
        if owned:
            from antflow_tui.hosting.fdroute import FdRoute

            self.fd_route = FdRoute(self._script_output)
            self._exits.callback(self.fd_route.close)
        self._stdout = self._exits.enter_context(
            script_streams(self._script_output, self._stdin_refused, routed_fds=owned)
        )
        self._exits.enter_context(logging_into(self._script_output, self._script_log))
        self._start_watchdog()
        if owned:
            self._handle_signals()
        self.source.on_end = self._run_over
        self.source.start()

    def close(self) -> None:
        """The app is closing: the script's output and signals are given back."""
        if self.watchdog is not None:
            self.watchdog.stop()
        self._exits.close()

    @property
    def run_active(self) -> bool:
        """The script still runs, or a pipeline does (retried items, for one)."""
        return self.source.run_active

    def counts(self, *, in_flight_unfinished: bool = False) -> RunCounts:
        """Where every item of the run stands now, read fresh (from any thread)."""
        return self.source.counts(in_flight_unfinished=in_flight_unfinished)

    def note(self, text: str, *, error: bool = False) -> None:
        """A line for the event log (any thread)."""
        self.source.note(text, error=error)

    def _script_output(self, line: str, is_error: bool) -> None:
        """A line the script wrote (print, logging, descriptors 1 and 2); any thread."""
        self.note(line, error=is_error)

    def _script_log(self, line: str, level: str) -> None:
        """A line a logging handler of the script wrote, with its record's level."""
        self.source.note(line, stream=level)

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
        """The run ended (again, after a retry): export, draw the last frame, and close if
        --exit-when-done asked (unless the user stopped it: the report stays)."""
        app = self.app
        if self.source.refused is not None:
            app.exit()  # nothing ran: the refusal is said once the screen is gone
            return
        self._export_quietly()
        # The last frame, past every busy-run throttle, so the report shows the end.
        app.call_later(app.redraw)
        if self.options.exit_when_done and not self._user_stopped:
            app.call_after_refresh(self._exit_after_final_frame)

    def _export_quietly(self) -> None:
        """--export when the run ends; a failure goes to the event log, not a traceback."""
        try:
            self.app.write_export()
        except OSError as error:
            self.note(
                f"--export failed: {error}. Press {key_for(self.app, 'export')} to write the "
                "export somewhere else.",
                error=True,
            )

    def _exit_after_final_frame(self, waited: int = 0) -> None:
        app = self.app
        route = self.fd_route
        if route is not None and not route.caught_up() and waited < FD_CATCH_UP_TRIES:
            # What a child process wrote just before the end is still on its way from
            # descriptor 1 or 2: the last frame shows it, so wait for it (briefly).
            app.set_timer(FD_CATCH_UP_SECONDS, lambda: self._exit_after_final_frame(waited + 1))
            return
        app.redraw()
        # Exit once that frame is on the screen, not before it is painted.
        app.call_after_refresh(app.exit)

    # ---------------------------------------------------------------- the watchdog

    def _start_watchdog(self) -> None:
        emergency = hint = None
        if self.options.own_terminal:
            from antflow_tui.hosting.emergency import emergency_exit, show_hint

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
            describe=self.source.describe_task,
            emergency=emergency,
            hint=hint,
            stop_keys=keys_for(self.app, "stop"),
            signal_deadline=self.options.stop_grace + 5.0,
            **settings,
        )
        self.watchdog.start()

    def _key_read(self, key: str) -> None:
        """The terminal's input thread read a key (it reaches the loop only if it runs)."""
        if self.watchdog is not None:
            self.watchdog.key_pressed(key)

    def _stalled(self, stall: LoopStall) -> None:
        """On the loop, once it runs again after code held it."""
        self.note(self.stalls.report(stall, time.monotonic()), error=True)

    def stall_banner(self) -> str:
        """The banner while the loop has lately been held ('' when it has not)."""
        return self.stalls.banner(time.monotonic())

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
            self.app.exit()

    # ---------------------------------------------------------------- stopping

    def quit(self) -> None:
        """q: quit; while the run is active, ask first, then stop it gracefully. Asked
        again while that stop is under way, quit forces it."""
        app = self.app
        if self._stopper is not None and not self._stopper.done():
            self._quit_when_stopped = True
            self.start_stop(force=True)
            return
        if not self.run_active:
            app.exit()
            return
        from antflow_tui.screens.confirm import ConfirmScreen

        def question() -> str:
            if not self.run_active:
                # It ended under the dialog: nothing is left to stop.
                return "The run has ended: nothing is left to stop. Quit?"
            return self.quit_question(self.counts())

        def answered(confirmed: bool | None) -> None:
            if not confirmed:
                return
            if not self.run_active:
                app.exit()
                return
            self._quit_when_stopped = True
            self.start_stop(force=False)

        app.push_screen(ConfirmScreen(question, confirm="Stop and quit"), answered)

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
        question += "."
        by_budget = self.source.paused_by_budget()
        if by_budget is not None:
            question += (
                f" It is paused by its budget ({clean(by_budget, 200)}): the items waiting for "
                "it stay unfinished, for a resume to run."
            )
        return question

    def stop_key(self) -> None:
        """ctrl+c: stop the run gracefully; a second press forces it. Once the run is over,
        quit, as htop and k9s do."""
        under_way = self._stopper is not None and not self._stopper.done()
        if not self.run_active and not under_way:
            self.app.exit()
            return
        self.start_stop(force=self.source.stop_requested)

    def start_stop(self, *, force: bool) -> None:
        """Stop the run in the background, so keys (a forcing second press) still work.

        The app quits once the stop is done if a quit asked for it.
        """
        app = self.app
        if self._stopper is not None and not self._stopper.done():
            if force:
                # The engine turns the graceful shutdown under way into a forced one.
                app.run_worker(self.source.send(Stop(force=True)), exclusive=False)
            return
        self._user_stopped = True
        self._stopper = asyncio.get_running_loop().create_task(self.source.send(Stop(force=force)))
        self._stopper.add_done_callback(self._stopped)
        app.redraw()

    def _stopped(self, _task: asyncio.Task[str]) -> None:
        if self._quit_when_stopped:
            self.app.exit()
        else:
            self.app.redraw()

    # ---------------------------------------------------------------- results

    def outcome(
        self, app_error: str | None = None, *, in_flight_unfinished: bool = False
    ) -> RunOutcome:
        """How the run ended (call after it has)."""
        return self.source.outcome(
            app_error, in_flight_unfinished=in_flight_unfinished, stopped_by=self.stopped_by
        )

    async def conclude(self) -> RunOutcome:
        """Once the app has closed, for whatever reason: stop what still runs, export,
        and account for every item.

        If the app itself failed (a bug of ours), the user's run is still shut down
        gracefully, and what finished is exported and reported.
        """
        app_error = None
        if self.app.return_code not in (0, None):
            app_error = "antflow-tui itself failed (its traceback is above); the run was stopped"
        if self.source.run_active:
            await self.source.stop(force=False)
        self.source.mark_closed()
        try:
            self.app.write_export()
        except OSError as error:
            app_error = f"--export could not be written: {error}"
        return self.outcome(app_error)
