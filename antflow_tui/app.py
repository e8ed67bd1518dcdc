"""AntflowApp: runs a job on its own event loop and shows it live; `make_app` builds one."""

from __future__ import annotations

import asyncio
import gc
import time
from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from textual.app import App, SystemCommand
from textual.binding import Binding, BindingType
from textual.screen import ModalScreen

from antflow_tui.bridge import STOP_GRACE_SECONDS, EngineBridge
from antflow_tui.capture import logging_into
from antflow_tui.export import export_run
from antflow_tui.loader import script_traceback
from antflow_tui.outcome import RunOutcome, run_outcome
from antflow_tui.present import note_line, pause_settling, paused_what
from antflow_tui.rates import RateMeter
from antflow_tui.runner import Job, start_job
from antflow_tui.screens.main import MainScreen
from antflow_tui.stall import LoopWatch
from antflow_tui.view import RunFacts, ViewBuilder
from antflow_tui.widgets.event_log import LogEntry, gap_entry

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Mapping

    from textual import events
    from textual.screen import Screen

    from antflow.types import StatusEvent, TaskEvent


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
        self.loop_watch = LoopWatch(options.interval)
        self._event_rate = RateMeter()

    # ---------------------------------------------------------------- lifecycle

    async def on_mount(self) -> None:
        if self.keymap_overrides:
            self.set_keymap(self.keymap_overrides)
        self._main = MainScreen(self.options.log_lines)
        await self.push_screen(self._main)
        self.begin_capture_print(self, stdout=True, stderr=True)
        self._exits.enter_context(logging_into(self._script_output))
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
        self._exits.close()

    def on_print(self, event: events.Print) -> None:
        for line in event.text.splitlines():
            if line.strip():
                self._script_output(line, event.stderr)

    def _script_output(self, line: str, is_error: bool) -> None:
        self.bridge.note(line, error=is_error)

    def _job_done(self, task: asyncio.Task[None]) -> None:
        if not task.cancelled() and task.exception() is not None:
            error = task.exception()
            assert error is not None
            self.crash = script_traceback(error)
            for line in self.crash.splitlines():
                self.bridge.note(line, error=True)
        self.bridge.ended_at = self.clock()
        self.bridge.dirty = True
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
            self.bridge.note(f"--export failed: {error}", error=True)

    def _exit_after_final_frame(self) -> None:
        self.redraw()
        self.exit()

    @property
    def run_active(self) -> bool:
        """The script's job still runs, or a pipeline does (retried items, for one)."""
        job_running = self.job_task is not None and not self.job_task.done()
        return job_running or self.bridge.running()

    # ---------------------------------------------------------------- the frame

    def tick(self, *, force: bool = False) -> None:
        """Once per frame: read the engine's latest state and hand it to the widgets.

        Args:
            force: Draw everything now, skipping the throttles busy runs get.
        """
        main = self._main
        if main is None or not main.is_mounted or self._exit_requested or not self.is_running:
            return
        if self.frozen:
            self.loop_watch.rest()
            main.set_banner(*self._banner("frozen"))
            return
        bridge = self.bridge
        if bridge.ended_at is not None and not bridge.dirty and not bridge.running():
            # The run is over and nothing moved since the last frame: an open report
            # costs nothing while it sits there.
            self.loop_watch.rest()
            return
        bridge.dirty = False
        facts = RunFacts(
            title=self.job.title,
            now=self.clock(),
            started_at=bridge.started_at,
            ended_at=bridge.ended_at,
            crashed=self.crash is not None,
            stopping=bridge.stopping,
            known_total=self.job.known_total,
            pipelines=len(bridge.attached),
            stopped=bridge.stop_requested,
        )
        snapshot = bridge.snapshot()
        failures = bridge.failures()
        view = self.views.build(snapshot, facts, failures, main.size.width, bridge.errors_by_type())
        main.event_log.started = bridge.started_at
        entries = self._drain_log()
        with self.batch_update():
            main.add_log(entries, force=force)
            # A modal (confirm, help, go to) leaves the main screen in view: keep it live.
            top = self.screen
            if top is main or (isinstance(top, ModalScreen) and self.screen_stack[-2] is main):
                main.show(view, force=force)
                paused = paused_what(snapshot)
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
        timed: list[tuple[float, LogEntry]] = [(event.timestamp, _entry(event)) for event in events]
        stall = self.loop_watch.beat(time.monotonic(), events)
        if stall is not None:
            self.bridge.note(stall.message(), error=True)
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
            return "Display frozen: the run goes on (z to unfreeze)", "frozen"
        if state == "stopping":
            return "Stopping: letting running items finish… (ctrl+c again to force)", "stopping"
        if paused and (state == "pausing" or settling):
            return f"Pausing {paused}… running items finish first", "paused"
        if paused:
            return f"Paused: {paused} (p on it to resume)", "paused"
        if self.crash is not None:
            return "The script raised an exception; see the event log", "failed"
        stalled = self.loop_watch.warning(time.monotonic())
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

        in_flight = 0
        snapshot = self.bridge.snapshot()
        if snapshot is not None:
            in_flight = snapshot.pipeline_stats.items_in_flight
        question = (
            f"The run is still going ({in_flight:,} items in flight). Stop it and quit? "
            "Items that have not finished are reported as unfinished."
        )

        def answered(confirmed: bool | None) -> None:
            if confirmed:
                self._quit_when_stopped = True
                self.start_stop(force=False)

        self.push_screen(ConfirmScreen(question, confirm="Stop and quit"), answered)

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
        """Write results and failures as JSON Lines (to --export's path, or a new file)."""
        path = self.options.export or Path.cwd() / (
            f"antflow-export-{datetime.now():%Y%m%d-%H%M%S}.jsonl"
        )
        try:
            count = self.write_export(path)
        except OSError as error:
            self.notify(f"Export failed: {error}", severity="error", timeout=6, markup=False)
            return
        self.notify(f"Exported {count:,} lines to {path}", timeout=5, markup=False)

    def open_item(self, item_id: object) -> None:
        from antflow_tui.screens.item import ItemScreen

        self.push_screen(ItemScreen(item_id))

    def open_worker(self, worker: str) -> None:
        from antflow_tui.screens.worker import WorkerScreen

        self.push_screen(WorkerScreen(worker))

    def open_stage(self, stage: str) -> None:
        from antflow_tui.screens.stage import StageScreen

        self.push_screen(StageScreen(stage))

    async def retry_items(self, item_ids: Iterable[object]) -> int:
        """Retry failed items where they failed; says how many it could."""
        wanted = list(item_ids)
        count = await self.bridge.retry(wanted)
        if count:
            self.notify(f"Retrying {count:,} item(s)", timeout=3, markup=False)
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
            ("Export results", "Results and failures as JSON Lines", self.action_export),
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
        """Pause or resume the run, one stage or one worker, and say so."""
        bridge = self.bridge
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

    def outcome(self, app_error: str | None = None) -> RunOutcome:
        """How the run ended (call after it has)."""
        return run_outcome(
            [attached.pipeline.get_stats() for attached in self.bridge.attached],
            expected=self.job.known_total,
            elapsed=(self.bridge.ended_at or self.clock()) - self.bridge.started_at,
            crash=self.crash,
            app_error=app_error,
        )

    def write_export(self, path: Path | None = None) -> int | None:
        """Write the export to `path` (default: --export, if given); returns lines written."""
        path = path or self.options.export
        return None if path is None else export_run(self.bridge.attached, path)

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


def _entry(event: StatusEvent | TaskEvent) -> LogEntry:
    return LogEntry(event=event)


def make_app(job: Job, options: AppOptions | None = None, **kwargs: object) -> AntflowApp:
    """The one factory the command line and the tests use."""
    return AntflowApp(job, options or AppOptions(), **kwargs)  # type: ignore[arg-type]
