"""The `antflow-tui` command: load a script, run its pipeline in the app, print a summary;
or, as `antflow-tui replay FILE`, play a recorded run back."""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn

import click

from antflow_tui import __version__
from antflow_tui.live.loader import (
    CONTRACT,
    MainTarget,
    PipelineTarget,
    ScriptError,
    find_target,
    load_script,
    resolve_pipeline,
)
from antflow_tui.outcome import (
    EXIT_INCOMPLETE,
    EXIT_OK,
    EXIT_SCRIPT_ERROR,
    VIEWER_FAILED,
    viewer_exit_code,
)

if TYPE_CHECKING:
    from collections.abc import Sequence

    from antflow.refeed import RefeedPlan
    from antflow_tui.app import AntflowApp
    from antflow_tui.live.runner import MainJob, PipelineJob
    from antflow_tui.options import AppOptions
    from antflow_tui.outcome import RunOutcome
    from antflow_tui.source.replay import RecordingLike

HELP = f"""Run SCRIPT's pipeline and watch it live, full-screen.

\b
{CONTRACT}

\b
Exit status: 0 when every item fed completed or was skipped and the script
ended normally (items it abandoned itself, leaving stream() early, do not
count); 1 when any failed, was left unfinished or was not fed, when the script
called sys.exit() with another code, or the run was ended by a signal; 2 for
usage or script errors.

\b
To play a recorded run back (--record, antflow.record(), ANTFLOW_RECORD):
  antflow-tui replay FILE
To see it as a timeline in Perfetto (ui.perfetto.dev) or chrome://tracing:
  antflow-tui export-trace FILE -o trace.json

\b
With no terminal to draw on (stdout or stderr redirected, as from cron or CI) or
to read keys from (stdin), or with --headless, it runs with no screen: a
progress line on stderr every few seconds, then the summary and the exit status.

\b
To watch a job running in another process (ANTFLOW_SERVE=1 python job.py, or
antflow-tui SCRIPT --headless --serve), in the terminal or in a browser:
  antflow-tui attach [PID|ADDRESS]
  antflow-tui web PID|ADDRESS|RECORDING
"""

REPLAY_HELP = """Play back a run recorded with --record, antflow.record() or ANTFLOW_RECORD.

It opens on the run's last moment (its final counts and failures); space plays it
from the start.

\b
The same panels and drill-down as live, with a scrubber:
  space play/pause   left/right step 1s   [ ] jump 10s
  < > slower/faster   t seek to a time (1:23, 83, +10, -5, 50%)

Exit status: 0; 1 when antflow-tui itself failed; 2 when FILE is not a recording
this antflow-tui can read.
"""


def _export_path(_ctx: click.Context, param: click.Parameter, value: Path | None) -> Path | None:
    if value is None:
        return None
    folder = value.expanduser().resolve().parent
    if not folder.is_dir():
        raise click.BadParameter(f"folder {folder} does not exist", param=param)
    if not os.access(folder, os.W_OK):
        raise click.BadParameter(f"folder {folder} is not writable", param=param)
    return value


def _positive(_ctx: click.Context, param: click.Parameter, value: float | None) -> float | None:
    if value is not None and not value > 0:
        raise click.BadParameter(f"must be greater than 0, got {value}", param=param)
    return value


def main(args: Sequence[str] | None = None) -> None:
    """The `antflow-tui` command: `antflow-tui replay FILE ...` replays a recording, anything
    else runs a script (`run`)."""
    arguments = list(sys.argv[1:] if args is None else args)
    if arguments[:1] == ["replay"]:
        replay(arguments[1:], prog_name="antflow-tui replay")
    elif arguments[:1] == ["export-trace"]:
        export_trace(arguments[1:], prog_name="antflow-tui export-trace")
    elif arguments[:1] in (["attach"], ["web"]):
        from antflow_tui.attach import command

        chosen = command.attach if arguments[0] == "attach" else command.web
        chosen(arguments[1:], prog_name=f"antflow-tui {arguments[0]}")
    else:
        run(arguments, prog_name="antflow-tui")


@click.command(help=HELP, context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("script", metavar="SCRIPT[:NAME]")
@click.option(
    "--interval",
    type=float,
    default=0.25,
    show_default=True,
    callback=_positive,
    metavar="SECONDS",
    help="Refresh period of the display.",
)
@click.option("--paused", is_flag=True, help="Start with the run paused.")
@click.option(
    "--log-lines",
    type=click.IntRange(min=1),
    default=5_000,
    show_default=True,
    metavar="N",
    help="Most lines the event log keeps.",
)
@click.option(
    "--history",
    type=click.IntRange(min=0),
    default=10_000,
    show_default=True,
    metavar="N",
    help="Completed items whose full history is kept for drill-down (failed and "
    "in-flight items are always kept).",
)
@click.option(
    "--export",
    type=click.Path(dir_okay=False, writable=True, path_type=Path),
    callback=_export_path,
    metavar="PATH",
    help="Write results, failures and unfinished items as JSON Lines when the run ends.",
)
@click.option(
    "--retry-from",
    type=click.Path(exists=True, dir_okay=False, readable=True, path_type=Path),
    metavar="EXPORT",
    help="Instead of the script's items, feed the failed, unfinished and never-fed items "
    "of an earlier --export back into the stage where each was, under its own id.",
)
@click.option(
    "--record",
    type=click.Path(dir_okay=False, writable=True, path_type=Path),
    callback=_export_path,
    metavar="FILE",
    help="Record the run to FILE (JSON Lines) for `antflow-tui replay FILE`.",
)
@click.option(
    "--record-values",
    is_flag=True,
    help="With --record: record the items' values too (as reprs).",
)
@click.option("--exit-when-done", is_flag=True, help="Close the app when the run ends.")
@click.option(
    "--keymap",
    default="",
    metavar="ID=KEY,...",
    help="Remap keys by binding id, e.g. 'pause=space,retry=t' (ids are listed on error).",
)
@click.option(
    "--headless",
    is_flag=True,
    help="No screen: a progress line on stderr, then the summary (as when stdout, stderr "
    "or stdin is not a terminal); with --serve, serve the run to viewers.",
)
@click.option(
    "--serve", is_flag=True, help="With --headless: serve the run to `antflow-tui attach`."
)
@click.option(
    "--progress-every",
    type=click.FloatRange(min=0),
    metavar="SECONDS",
    help="With no screen: seconds between progress lines on stderr (default 5 on a "
    "terminal, 30 into a file; 0: none).",
)
@click.option(
    "--address",
    metavar="ADDRESS",
    help="With --serve: unix:PATH or tcp://127.0.0.1:PORT (default: a private socket).",
)
@click.option(
    "--allow-remote", is_flag=True, help="With --serve: allow a non-loopback TCP address."
)
@click.version_option(__version__, prog_name="antflow-tui")
def run(
    script: str,
    interval: float,
    paused: bool,
    log_lines: int,
    history: int,
    export: Path | None,
    retry_from: Path | None,
    record: Path | None,
    record_values: bool,
    exit_when_done: bool,
    keymap: str,
    headless: bool,
    serve: bool,
    progress_every: float | None,
    address: str | None,
    allow_remote: bool,
) -> None:
    from antflow_tui.keymap import KeymapError, parse_keymap
    from antflow_tui.live.source import LiveSource
    from antflow_tui.options import AppOptions

    try:
        keys = parse_keymap(keymap, LiveSource.CAN)
    except KeymapError as error:
        raise click.BadParameter(str(error), param_hint="--keymap") from None
    if record_values and record is None:
        raise click.BadParameter("needs --record FILE", param_hint="--record-values")
    if serve and not headless:
        raise click.BadParameter(
            "--serve goes with --headless: the run goes on with no screen, and "
            "`antflow-tui attach` watches it",
            param_hint="--headless/--serve",
        )
    if (address or allow_remote) and not serve:
        raise click.BadParameter("needs --headless --serve", param_hint="--address")
    if serve and (record or retry_from or paused):
        raise click.BadParameter(
            "not with --headless --serve", param_hint="--record/--retry-from/--paused"
        )
    no_terminal = None if headless else _not_a_terminal()
    if paused and (headless or no_terminal):
        why = "--headless" if headless else f"{no_terminal} is not a terminal"
        raise click.BadParameter(
            f"no screen to resume it from ({why}): the run would never start",
            param_hint="--paused",
        )
    if progress_every is not None and not (headless or no_terminal):
        raise click.BadParameter(
            "needs --headless (the screen shows the progress)", param_hint="--progress-every"
        )
    options = AppOptions(
        interval=interval,
        paused=paused,
        log_lines=log_lines,
        export=export,
        exit_when_done=exit_when_done,
        history=history,
        keymap=keys,
        own_terminal=True,
        record=record,
        record_values=record_values,
    )
    plan = None if retry_from is None else _read_refeed(retry_from)
    try:
        loaded = load_script(script)
        target = find_target(loaded)
    except ScriptError as error:
        _fail(str(error))
    if plan is not None and not isinstance(target, PipelineTarget):
        _fail(
            f"--retry-from needs a script that defines `pipeline` and `items` (the app feeds "
            f"that pipeline); {loaded.path.name} runs its own main(). Feed the export from "
            f"your main() with `await antflow.refeed.feed_export(pipeline, path)` instead."
        )
    screenless = None
    if headless or no_terminal:
        note = None
        if no_terminal:
            from antflow_tui.live.headless import progress_every as default_every

            every = default_every() if progress_every is None else progress_every
            progress = f"a progress line every {every:g}s on stderr, " if every else ""
            note = (
                f"antflow-tui: {no_terminal} is not a terminal: running {loaded.path.name} "
                f"with no screen, as --headless does ({progress}the summary on stdout)."
            )
        screenless = Screenless(serve, progress_every, address, allow_remote, note)
    code = asyncio.run(_run(target, loaded.path.name, options, plan, screenless))
    sys.exit(code)


@dataclass(frozen=True, slots=True)
class Screenless:
    """How to run with no screen (``--headless``, or no terminal)."""

    serve: bool
    progress_every: float | None
    address: str | None
    allow_remote: bool
    note: str | None = None
    """Why there is no screen, when no one asked (said once the script has loaded)."""


def _not_a_terminal() -> str | None:
    """Which of stdout, stderr (the app draws there) and stdin (it reads keys there) is
    not a terminal, if one is not: redirected to a log, run from cron or CI."""
    for name, stream in (
        ("stdout", sys.__stdout__),
        ("stderr", sys.__stderr__),
        ("stdin", sys.__stdin__),
    ):
        try:
            terminal = stream is not None and stream.isatty()
        except ValueError:  # closed
            terminal = False
        if not terminal:
            return name
    return None


def _read_refeed(path: Path) -> RefeedPlan:
    from antflow.refeed import ExportFileError, read_export

    try:
        plan = read_export(path)
    except ExportFileError as error:
        _fail(str(error))
    if len(plan.pipelines) > 1:
        _fail(
            f"{path} holds {len(plan.pipelines)} pipelines ({', '.join(plan.pipelines)}); "
            f"--retry-from feeds one. Use antflow.refeed.read_export(path, pipeline=NAME) "
            f"from your script to pick one."
        )
    return plan


async def _run(
    target: PipelineTarget | MainTarget,
    title: str,
    options: AppOptions,
    plan: RefeedPlan | None = None,
    screenless: Screenless | None = None,
) -> int:
    from antflow_tui.live import LiveSource, live_app
    from antflow_tui.live.runner import MainJob, PipelineJob
    from antflow_tui.live.serving import served_if_asked

    if isinstance(target, PipelineTarget):
        try:
            pipeline, items, total = await resolve_pipeline(target, title)
        except ScriptError as error:
            _fail(str(error))
        job: PipelineJob | MainJob = PipelineJob(title, pipeline, items, total, refeed=plan)
    else:
        job = MainJob(title, target.main)
    refeed = job.refeed if isinstance(job, PipelineJob) else None
    if refeed is not None and not _announce_refeed(refeed):
        left = any(line.status != "abandoned" for line in refeed.skipped)
        return EXIT_INCOMPLETE if left else EXIT_OK
    if screenless is not None:
        from antflow_tui.live.headless import run_headless

        if screenless.note is not None:
            _say(screenless.note, err=True)
        if refeed is not None:
            _say("\n".join(refeed_lines(refeed)), err=True)
        ran = await run_headless(
            job,
            options,
            serve=screenless.serve,
            address=screenless.address,
            allow_remote=screenless.allow_remote,
            progress=screenless.progress_every,
        )
        return ran if isinstance(ran, int) else _report(ran, job)
    app = live_app(job, options)
    if refeed is not None:
        for line in refeed_lines(refeed):
            app.note(line, error=line.startswith("  line"))
    source = app.source
    assert isinstance(source, LiveSource)
    try:
        async with served_if_asked(source, lambda text, error: app.note(text, error=error)):
            await app.run_async()
    finally:
        # Normally given back as the app unmounts; a crash of ours must not keep the
        # summary and the tracebacks out of the terminal.
        route = None if app.host is None else app.host.fd_route
        if route is not None:
            route.restore()
    return _report(await app.conclude(), job)


def _report(outcome: RunOutcome, job: PipelineJob | MainJob) -> int:
    """What the run came to, printed once it is over (the screen is gone, if there was
    one); returns the exit status."""
    from antflow_tui.live.runner import PipelineJob

    if outcome.crash is not None:
        _say(f"antflow-tui: the script raised an exception:\n\n{outcome.crash}\n", err=True)
    if outcome.app_error is not None:
        _say(f"antflow-tui: {outcome.app_error}", err=True)
    code = outcome.exit_code
    # As fed: lines the pipeline itself refused are listed too.
    refeed = job.refeed if isinstance(job, PipelineJob) else None
    if refeed is not None and refeed.skipped:
        _say("\n".join(refeed_lines(refeed, fed=False)), err=True)
        # Items the export holds but that could not be fed again are left to do (those
        # the script abandoned itself were never work to finish).
        if any(line.status != "abandoned" for line in refeed.skipped):
            code = max(code, EXIT_INCOMPLETE)
    _say(outcome.summary())
    return code


def refeed_lines(plan: RefeedPlan, *, fed: bool = True) -> list[str]:
    """What --retry-from does with each line of the export, for the log and the terminal."""
    lines = []
    if fed:
        counts = plan.counts()
        what = ", ".join(
            f"{count:,} {status.replace('_', ' ')}" for status, count in counts.items()
        )
        lines.append(f"--retry-from {plan.source}: feeding {what or 'nothing'} again.")
        restarts = sum(1 for item in plan.items if item.restart)
        if restarts:
            lines.append(
                f"{restarts:,} of them start over from the first stage with their original "
                "input (the value they held in their stage was not kept as JSON)."
            )
    if plan.skipped:
        lines.append(f"--retry-from {plan.source}: {len(plan.skipped):,} lines not fed again:")
        lines.extend(
            f"  line {line.line} (id {_shown_id(line.item_id)}, {line.status}): {line.reason}"
            for line in plan.skipped
        )
    return lines


def _shown_id(item_id: object) -> str:
    from antflow_tui.safe_text import item_label

    return item_label(item_id, 60)


def _announce_refeed(plan: RefeedPlan) -> bool:
    """Say what the export holds before the app starts; False when there is nothing to feed."""
    if plan.items:
        return True
    _say(f"antflow-tui: {plan.source} has no failed, unfinished or never-fed item to feed again.")
    if plan.skipped:
        _say("\n".join(refeed_lines(plan, fed=False)), err=True)
    return False


def _say(text: str, *, err: bool = False) -> None:
    """Print, unless the terminal has gone (a SIGHUP): the export still holds it all."""
    with contextlib.suppress(OSError):
        click.echo(text, err=err)


def _is_stdout(path: Path) -> bool:
    """Whether `path` is where standard output goes (`/dev/stdout`, or its file)."""
    try:
        return os.path.samestat(os.stat(path), os.fstat(sys.stdout.fileno()))
    except (OSError, ValueError):
        return False


def _fail(message: str) -> NoReturn:
    click.echo(f"antflow-tui: {message}", err=True)
    sys.exit(EXIT_SCRIPT_ERROR)


@click.command(help=REPLAY_HELP, context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--play", is_flag=True, help="Play from the start at once.")
@click.option(
    "--speed",
    type=float,
    default=1.0,
    show_default=True,
    callback=_positive,
    help="Recorded seconds per second of play.",
)
@click.option(
    "--keymap",
    default="",
    metavar="ID=KEY,...",
    help="Remap keys by binding id, e.g. 'replay.play=p' (ids are listed on error).",
)
@click.version_option(__version__, prog_name="antflow-tui")
def replay(file: Path, play: bool, speed: float, keymap: str) -> None:
    from antflow_tui.keymap import KeymapError, parse_keymap
    from antflow_tui.options import AppOptions
    from antflow_tui.source.replay import ReplaySource

    try:
        keys = parse_keymap(keymap, ReplaySource.CAN)
    except KeymapError as error:
        raise click.BadParameter(str(error), param_hint="--keymap") from None
    app = replay_app(file, AppOptions(keymap=keys), playing=play, speed=speed)
    app.run()
    code = viewer_exit_code(app.return_code)
    if code != EXIT_OK:
        _say(f"antflow-tui: {VIEWER_FAILED}", err=True)
    sys.exit(code)


def replay_app(
    file: Path, options: AppOptions, *, playing: bool = False, speed: float = 1.0
) -> AntflowApp:
    """The app over a recording (exits 2 with a message when FILE cannot be replayed)."""
    from antflow.runstream.fileformat import RecordingError
    from antflow_tui.app import make_app
    from antflow_tui.source.replay import ReplaySource

    if not file.exists():
        _fail(f"no such file: {file}")
    try:
        recording = open_recording(file)
    except RecordingError as error:
        _fail(str(error))
    # Held on the last moment (the post-mortem view); playing, from the start.
    at = recording.started_at if playing else recording.ended_at
    source = ReplaySource(recording, name=file.name, at=at, playing=playing, speed=speed)
    return make_app(source, options)


def open_recording(file: Path) -> RecordingLike:
    """Open a recording (the engine's reader)."""
    from antflow.runstream.fileformat import Recording

    return Recording.open(file)


@click.command(
    help="Write a recorded run as Chrome Trace Event JSON: one lane per worker, one slice "
    "per task attempt, failures marked. Open it in ui.perfetto.dev or chrome://tracing.",
    context_settings={"help_option_names": ["-h", "--help"]},
)
@click.argument("recording", type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, writable=True, path_type=Path),
    callback=_export_path,
    required=True,
    metavar="PATH",
    help="The trace file to write.",
)
def export_trace(recording: Path, output: Path) -> None:
    from antflow.runstream.fileformat import Recording, RecordingError
    from antflow.runstream.trace import write_trace

    if not recording.exists():
        _fail(f"no such file: {recording}")
    if output.exists() and os.path.samefile(output, recording):
        _fail(f"-o {output} is the recording itself: name another file for the trace")
    try:
        opened = Recording.open(recording)
    except RecordingError as error:
        _fail(str(error))
    with opened:
        try:
            slices = write_trace(opened, output)
        except OSError as error:
            _fail(f"cannot write the trace to {output}: {error.strerror or error}")
        complete = opened.complete and not opened.damaged
    # With the trace on standard output (-o /dev/stdout), the words go to standard error.
    aside = _is_stdout(output)
    _say(f"Wrote {slices:,} task attempts to {output} (open it in ui.perfetto.dev).", err=aside)
    if not complete:
        _say(
            f"{recording} is incomplete (the run was cut short, or the file is damaged): "
            "the trace holds what could be read.",
            err=aside,
        )
    sys.exit(EXIT_OK)
