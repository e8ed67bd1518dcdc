"""``antflow-tui SCRIPT --headless --serve``: run a script with no screen, served to viewers.

The run is the app's (the same loading, the same accounting, summary and exit status),
but nothing is drawn: the script prints to the terminal as under plain python, and
`antflow-tui attach` (or ``web``) watches it from anywhere on the machine. ctrl+c, SIGTERM
and SIGHUP stop it gracefully; a second ctrl+c forces the stop.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import sys
from typing import TYPE_CHECKING, Final

from antflow.runstream.serve import RunServer, take_over_environment
from antflow_tui.live.loader import MainTarget, PipelineTarget, ScriptError, resolve_pipeline
from antflow_tui.live.runner import MainJob, PipelineJob
from antflow_tui.live.source import LiveSource
from antflow_tui.outcome import EXIT_SCRIPT_ERROR

if TYPE_CHECKING:
    from antflow.runstream.stream import RunStream
    from antflow_tui.app import AppOptions

SERVED_EVENTS: Final = 1_000
"""Events a viewer gets per tracker per pump tick (the app's frames take far fewer)."""


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


async def run_headless(
    target: PipelineTarget | MainTarget,
    title: str,
    options: AppOptions,
    *,
    address: str | None = None,
    allow_remote: bool = False,
) -> int:
    """Run the script's job, serving it until it ends; returns the exit status."""
    if isinstance(target, PipelineTarget):
        try:
            pipeline, items, total = await resolve_pipeline(target, title)
        except ScriptError as error:
            _say(f"antflow-tui: {error}")
            return EXIT_SCRIPT_ERROR
        job: PipelineJob | MainJob = PipelineJob(title, pipeline, items, total)
    else:
        job = MainJob(title, target.main)
    source = LiveSource(
        job,
        history=options.history,
        log_lines=options.log_lines,
        interval=options.interval,
        stop_grace=options.stop_grace,
    )
    # This run is served here: ANTFLOW_SERVE must not serve it a second time.
    take_over_environment()
    stream = source.stream
    stream.event_capacity = SERVED_EVENTS
    stream.follow(False)  # the server follows events only while someone watches
    server = RunServer(
        stream, address=address, allow_remote=allow_remote, execute=source.command_from_viewer
    )
    try:
        served = await server.start()
    except (OSError, ValueError) as error:
        _say(f"antflow-tui: cannot serve: {error}")
        return EXIT_SCRIPT_ERROR
    pid = os.getpid()
    _say(
        f"antflow-tui: serving {title} on {served.address} (pid {pid}); watch it with\n"
        f"  antflow-tui attach {pid}\n"
        f"  antflow-tui web {pid}      (in a browser)"
    )
    ended = asyncio.Event()
    source.on_end = ended.set
    handler = _LogToViewers(stream)
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
    try:
        source.start()
        await ended.wait()
        await asyncio.gather(*stops, return_exceptions=True)
    finally:
        for number in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            loop.remove_signal_handler(number)
        logging.getLogger().removeHandler(handler)
        if source.run_active:
            await source.stop(force=False)
        source.mark_closed()
        await server.close()
        stream.close()
    outcome = source.outcome(stopped_by=signalled[0] if signalled else None)
    if outcome.crash is not None:
        _say(f"antflow-tui: the script raised an exception:\n\n{outcome.crash}\n")
    with contextlib.suppress(OSError):
        print(outcome.summary(), flush=True)
    return outcome.exit_code
