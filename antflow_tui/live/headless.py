"""``antflow-tui SCRIPT --headless [--serve]``: run a script with no screen.

The run is the app's (the same loading, the same accounting, summary and exit status,
``--export``, ``--record``, ``--retry-from``), but nothing is drawn: the script prints to
stdout and stderr as under plain python. Without ``--serve`` a progress line goes to
stderr every few seconds (what a cron log or a CI job shows); with it, `antflow-tui
attach` (or ``web``) watches the run from anywhere on the machine. ctrl+c, SIGTERM and
SIGHUP stop it gracefully; a second ctrl+c forces the stop.

The command line runs this too when there is no terminal to draw on or read keys from
(stdout redirected to a log, cron, CI): the full-screen app would write its escape codes
into the log and wait for a key forever.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import sys
from functools import partial
from typing import TYPE_CHECKING, Final

from antflow.runstream.serve import RunServer, take_over_environment
from antflow_tui.header import progress_line, run_state
from antflow_tui.live.budgeting import run_budget
from antflow_tui.live.source import LiveSource
from antflow_tui.outcome import EXIT_SCRIPT_ERROR
from antflow_tui.pace import PaceMeter
from antflow_tui.safe_text import clean

if TYPE_CHECKING:
    from antflow.budget import BudgetState
    from antflow.runstream.stream import RunStream
    from antflow_tui.live.runner import Job
    from antflow_tui.options import AppOptions
    from antflow_tui.outcome import RunOutcome

SERVED_EVENTS: Final = 1_000
"""Events a viewer gets per tracker per pump tick (the app's frames take far fewer)."""
PROGRESS_ON_A_TERMINAL: Final = 5.0
"""Seconds between progress lines when stderr is a terminal..."""
PROGRESS_INTO_A_FILE: Final = 30.0
"""...and when it is a file or a pipe (a night's run logs some 1,000 lines, not 6,000)."""


class _LogToViewers(logging.Handler):
    """The script's log records, as log lines for the viewers' event logs."""

    def __init__(self, stream: RunStream) -> None:
        super().__init__()
        self.stream = stream

    def emit(self, record: logging.LogRecord) -> None:
        if record.name.startswith("antflow.runstream"):
            return
        try:
            self.stream.log(self.format(record), record.levelname)
        except Exception:  # logging must never fail the program
            self.handleError(record)


def _say(text: str) -> None:
    with contextlib.suppress(OSError):
        print(text, file=sys.stderr, flush=True)


def progress_every() -> float:
    """The default seconds between progress lines, for where stderr goes."""
    stream = sys.__stderr__
    terminal = stream is not None and stream.isatty()
    return PROGRESS_ON_A_TERMINAL if terminal else PROGRESS_INTO_A_FILE


class Progress:
    """The run's progress as one line, from the live source's fresh snapshots."""

    def __init__(self, source: LiveSource) -> None:
        self.source = source
        self._pace = PaceMeter()

    def line(self) -> str:
        source = self.source
        status = source.status()
        snapshots = {attached.number: source.snapshot(attached) for attached in source.attached}
        pipelines = {started.pipeline: started for started in source.stream.pipelines()}
        counts = source.counts()
        state = run_state(status, snapshots.values())
        pace = self._pace.pace(pipelines, snapshots, status.now)
        elapsed = (status.ended_at or status.now) - status.started_at
        return progress_line(
            title=status.title,
            state=state,
            elapsed=elapsed,
            counts=counts,
            rate=None if pace is None else pace.rate,
            eta=None if pace is None else pace.eta,
            held=status.paused,
        )


async def run_headless(
    job: Job,
    options: AppOptions,
    *,
    serve: bool = False,
    address: str | None = None,
    allow_remote: bool = False,
    progress: float | None = None,
) -> RunOutcome | int:
    """Run `job` with no screen until it ends: how it went, or the exit status when it
    could not start.

    Args:
        serve: Serve the run to `antflow-tui attach` (and print where).
        progress: Seconds between progress lines on stderr (0: none; None: the default
            for where stderr goes). Without `serve` only.
    """
    source = LiveSource(
        job,
        history=options.history,
        log_lines=options.log_lines,
        interval=options.interval,
        stop_grace=options.stop_grace,
        record=options.record,
        record_values=options.record_values,
        keeping=options.keeping,
        warn_now=lambda text: _say(f"antflow-tui: {text}"),
        budget=run_budget(options),
    )
    # This run is served here or not at all: ANTFLOW_SERVE would serve it a second time
    # (as antflow-tui, without the script's name and total); it asks this one to serve.
    setting = take_over_environment()
    if setting is not None and not serve:
        serve, address = True, setting or None
    stream = source.stream
    stream.event_capacity = SERVED_EVENTS
    stream.follow(False)  # a server follows events only while someone watches; no one else
    server = None
    if serve:
        server = RunServer(
            stream,
            address=address,
            allow_remote=allow_remote,
            execute=source.command_from_viewer,
        )
        try:
            served = await server.start()
        except (OSError, ValueError) as error:
            _say(f"antflow-tui: cannot serve: {error}")
            return EXIT_SCRIPT_ERROR
        pid = os.getpid()
        _say(
            f"antflow-tui: serving {job.title} on {served.address} (pid {pid}); watch it with\n"
            f"  antflow-tui attach {pid}\n"
            f"  antflow-tui web {pid}      (in a browser)"
        )
    source.on_budget_paused = partial(_say_budget_paused, served=serve)
    ended = asyncio.Event()
    source.on_end = ended.set
    handler = _LogToViewers(stream)
    if serve:
        logging.getLogger().addHandler(handler)
    loop = asyncio.get_running_loop()
    stops: list[asyncio.Task[None]] = []
    signalled: list[str] = []

    def stop(name: str) -> None:
        force = bool(stops)
        signalled.append(name)
        _say(f"antflow-tui: {name}: stopping the run{' at once' if force else ''}")
        stops.append(loop.create_task(source.stop(force=force)))

    for number in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        loop.add_signal_handler(number, stop, signal.Signals(number).name)
    every = 0.0 if serve else (progress_every() if progress is None else progress)
    try:
        source.start()
        await _until_ended(ended, Progress(source) if every else None, every)
        await asyncio.gather(*stops, return_exceptions=True)
    finally:
        for number in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            loop.remove_signal_handler(number)
        logging.getLogger().removeHandler(handler)
        if source.run_active:
            await source.stop(force=False)
        source.mark_closed()
        if server is not None:
            await server.close()
        stream.close()
    app_error = None
    if options.export is not None:
        try:
            source.export(options.export)
        except OSError as error:
            app_error = f"--export could not be written: {error}"
    return source.outcome(app_error, stopped_by=signalled[0] if signalled else None)


def _say_budget_paused(state: BudgetState, *, served: bool) -> None:
    """What the run waits for, and the commands that raise its budget or stop it."""
    _say(budget_paused_words(state, pid=os.getpid() if served else None))


def budget_paused_words(state: BudgetState, *, pid: int | None) -> str:
    """The lines a run with no screen prints when its budget pauses it.

    Args:
        pid: The process serving the run (None: it is not served: only stopping it is
            left to say).
    """
    why = clean(state.reason or "its budget is spent", 300)
    text = f"antflow-tui: the run is paused by its budget: {why}\n"
    if pid is not None:
        text += f"  raise it:  antflow-tui attach {pid}   then B (the run goes on, nothing lost)\n"
    return text + (
        "  or stop it: ctrl+c (or kill -TERM) leaves the items waiting unfinished, for a resume"
    )


async def _until_ended(ended: asyncio.Event, progress: Progress | None, every: float) -> None:
    """Wait for the run's end, with a progress line every `every` seconds (if any)."""
    if progress is None:
        await ended.wait()
        return
    while not ended.is_set():
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(ended.wait(), every)
        if not ended.is_set():
            _say(progress.line())
