"""The `antflow-tui` command line: a click group whose default command runs a script.

``antflow-tui SCRIPT [OPTIONS]`` runs a script's pipeline in the app
(`antflow_tui.live.command`); ``antflow-tui COMMAND ...`` runs one of `COMMANDS`:
``replay`` and ``export-trace`` (here), ``attach`` and ``web``
(`antflow_tui.attach.command`). Only a first word that is exactly a command's name is
one: a script named like a command runs as ``antflow-tui ./replay``.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Final

import click

from antflow_tui import __version__
from antflow_tui.arguments import (
    fail,
    is_stdout,
    keymap_option,
    positive,
    say,
    writable_file,
)
from antflow_tui.outcome import EXIT_OK, VIEWER_FAILED, viewer_exit_code

if TYPE_CHECKING:
    from collections.abc import Sequence

    from antflow_tui.app import AntflowApp
    from antflow_tui.options import AppOptions
    from antflow_tui.source.replay import RecordingLike

SETTINGS: Final = {"help_option_names": ["-h", "--help"]}
COMMANDS: Final = ("replay", "runs", "compare", "attach", "web", "export-trace")
"""The commands, in the order the help lists them."""


class ScriptOrCommand(click.Group):
    """A group whose first word is a command's name, or else a script: everything then goes
    to the default command (`antflow_tui.live.command.run`). The group's own help is the
    default command's, with the commands listed after its options."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name == "replay":
            return replay
        if cmd_name == "export-trace":
            return export_trace
        if cmd_name == "runs":
            # Issue 20: the run history's list; it replays a run with this module's app.
            from antflow_tui.runs.command import runs_command

            return runs_command(replay=replay_kept, commands=COMMANDS)
        if cmd_name == "compare":
            from antflow_tui.compare.command import compare_command

            return compare_command
        if cmd_name in ("attach", "web"):
            # Imported when named: a script's run needs none of the attach client.
            from antflow_tui.attach import command

            return command.attach if cmd_name == "attach" else command.web
        return None

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if args and (args[0] in COMMANDS or args[0] in SETTINGS["help_option_names"]):
            return super().parse_args(ctx, args)
        # The script command takes every word (its options, --version, its own --help).
        ctx._protected_args, ctx.args = [], list(args)
        return ctx.args

    def invoke(self, ctx: click.Context) -> object:
        if ctx._protected_args:
            return super().invoke(ctx)
        script = _script_command()
        with ctx, script.make_context(None, ctx.args, parent=ctx) as script_ctx:
            return script.invoke(script_ctx)

    def format_help(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        script = _script_command()
        script_ctx = script.context_class(script, parent=ctx)
        script.format_usage(script_ctx, formatter)
        formatter.write_usage(ctx.command_path, "COMMAND [ARGS]...", prefix="       ")
        script.format_help_text(script_ctx, formatter)
        script.format_options(script_ctx, formatter)
        self.format_commands(ctx, formatter)


def _script_command() -> click.Command:
    from antflow_tui.live.command import run

    return run


@click.group(cls=ScriptOrCommand, context_settings=SETTINGS, add_help_option=True)
def cli() -> None:
    """The `antflow-tui` command."""


def main(args: Sequence[str] | None = None) -> None:
    """The `antflow-tui` command (the package's script)."""
    cli.main(list(sys.argv[1:] if args is None else args), prog_name="antflow-tui")


REPLAY_HELP = """Play back a run recorded with --record, antflow.record() or ANTFLOW_RECORD,
or a run kept in the run history: `replay last` (the newest), `last~1`, a run id or its
start (`antflow-tui runs` lists them).

It opens on the run's last moment (its final counts and failures); space plays it
from the start.

\b
The same panels and drill-down as live, with a scrubber:
  space play/pause   left/right step 1s   [ ] jump 10s
  < > slower/faster   t seek to a time (1:23, 83, +10, -5, 50%)

Exit status: 0; 1 when antflow-tui itself failed; 2 when FILE is not a recording
this antflow-tui can read.
"""


@click.command("replay", help=REPLAY_HELP, context_settings=SETTINGS)
@click.argument("file", metavar="FILE|RUN", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--play", is_flag=True, help="Play from the start at once.")
@click.option(
    "--speed",
    type=float,
    default=1.0,
    show_default=True,
    callback=positive,
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
    from antflow_tui.options import AppOptions
    from antflow_tui.source.replay import ReplaySource

    keys = keymap_option(keymap, ReplaySource.CAN)
    file = kept_recording(file)
    app = replay_app(file, AppOptions(keymap=keys), playing=play, speed=speed)
    app.run()
    code = viewer_exit_code(app.return_code)
    if code != EXIT_OK:
        say(f"antflow-tui: {VIEWER_FAILED}", err=True)
    sys.exit(code)


def replay_app(
    file: Path, options: AppOptions, *, playing: bool = False, speed: float = 1.0
) -> AntflowApp:
    """The app over a recording (exits 2 with a message when FILE cannot be replayed)."""
    from antflow.runstream.fileformat import RecordingError
    from antflow_tui.app import make_app
    from antflow_tui.source.replay import ReplaySource

    if not file.exists():
        fail(f"no such file: {file}")
    try:
        recording = open_recording(file)
    except RecordingError as error:
        fail(str(error))
    # Held on the last moment (the post-mortem view); playing, from the start.
    at = recording.started_at if playing else recording.ended_at
    source = ReplaySource(recording, name=file.name, at=at, playing=playing, speed=speed)
    return make_app(source, options)


def kept_recording(file: Path) -> Path:
    """The recording `file` names: itself when it exists, else the kept run it names
    (``last``, ``last~1``, a run id or its start) in the run history; exits 2 with what the
    history holds when neither."""
    from antflow.history import History, HistoryError
    from antflow.history.resolve import names_last

    text = str(file)
    if file.exists() or os.sep in text:
        return file
    looks_like_run = names_last(text) or all(c.isdigit() or c in "-abcdef" for c in text)
    if not looks_like_run:
        return file
    try:
        return History().resolve(text).path
    except HistoryError as error:
        # `last` names a kept run only; an id could have been a file's name too.
        fail(
            f"replay {text}: {error}" if names_last(text) else f"no such file: {file}, and {error}"
        )


def replay_kept(file: Path) -> str | None:
    """Replay a kept run until the user closes it (``antflow-tui runs``'s enter); returns
    why it cannot be (None: it was shown)."""
    from antflow.runstream.fileformat import RecordingError
    from antflow_tui.app import make_app
    from antflow_tui.options import AppOptions
    from antflow_tui.source.replay import ReplaySource

    try:
        recording = open_recording(file)
    except RecordingError as error:
        return f"cannot replay {file.name}: {error}"
    except OSError as error:
        return f"cannot replay {file.name}: {error.strerror or error}"
    source = ReplaySource(recording, name=file.name, at=recording.ended_at)
    make_app(source, AppOptions()).run()
    return None


def open_recording(file: Path) -> RecordingLike:
    """Open a recording (the engine's reader)."""
    from antflow.runstream.fileformat import Recording

    return Recording.open(file)


@click.command(
    "export-trace",
    help="Write a recorded run as Chrome Trace Event JSON: one lane per worker, one slice "
    "per task attempt, failures marked. Open it in ui.perfetto.dev or chrome://tracing.",
    context_settings=SETTINGS,
)
@click.argument("recording", type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, writable=True, path_type=Path),
    callback=writable_file,
    required=True,
    metavar="PATH",
    help="The trace file to write.",
)
def export_trace(recording: Path, output: Path) -> None:
    from antflow.runstream.fileformat import Recording, RecordingError
    from antflow.runstream.trace import write_trace

    if not recording.exists():
        fail(f"no such file: {recording}")
    if output.exists() and os.path.samefile(output, recording):
        fail(f"-o {output} is the recording itself: name another file for the trace")
    try:
        opened = Recording.open(recording)
    except RecordingError as error:
        fail(str(error))
    with opened:
        try:
            slices = write_trace(opened, output)
        except OSError as error:
            fail(f"cannot write the trace to {output}: {error.strerror or error}")
        complete = opened.complete and not opened.damaged
    # With the trace on standard output (-o /dev/stdout), the words go to standard error.
    aside = is_stdout(output)
    say(f"Wrote {slices:,} task attempts to {output} (open it in ui.perfetto.dev).", err=aside)
    if not complete:
        say(
            f"{recording} is incomplete (the run was cut short, or the file is damaged): "
            "the trace holds what could be read.",
            err=aside,
        )
    sys.exit(EXIT_OK)
