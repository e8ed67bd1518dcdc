"""The `antflow-tui` command: load a script, run its pipeline in the app, print a summary."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

import click

from antflow import __version__
from antflow_tui.loader import (
    CONTRACT,
    MainTarget,
    PipelineTarget,
    ScriptError,
    find_target,
    load_script,
    resolve_pipeline,
)
from antflow_tui.outcome import EXIT_SCRIPT_ERROR

HELP = f"""Run SCRIPT's pipeline and watch it live, full-screen.

\b
{CONTRACT}

\b
Exit status: 0 when every item completed or was skipped; 1 when any failed or
the run was stopped before the end; 2 for usage or script errors.
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
@click.option("--exit-when-done", is_flag=True, help="Close the app when the run ends.")
@click.option(
    "--keymap",
    default="",
    metavar="ID=KEY,...",
    help="Remap keys by binding id, e.g. 'pause=space,retry=t' (ids are listed on error).",
)
@click.version_option(__version__, prog_name="antflow-tui")
def main(
    script: str,
    interval: float,
    paused: bool,
    log_lines: int,
    history: int,
    export: Path | None,
    exit_when_done: bool,
    keymap: str,
) -> None:
    from antflow_tui.app import AppOptions
    from antflow_tui.keys import KeymapError, parse_keymap

    try:
        keys = parse_keymap(keymap)
    except KeymapError as error:
        raise click.BadParameter(str(error), param_hint="--keymap") from None
    options = AppOptions(
        interval=interval,
        paused=paused,
        log_lines=log_lines,
        export=export,
        exit_when_done=exit_when_done,
        history=history,
        keymap=keys,
    )
    try:
        loaded = load_script(script)
        target = find_target(loaded)
    except ScriptError as error:
        _fail(str(error))
    code = asyncio.run(_run(target, loaded.path.name, options))
    sys.exit(code)


async def _run(target: PipelineTarget | MainTarget, title: str, options: object) -> int:
    from antflow_tui.app import make_app
    from antflow_tui.runner import MainJob, PipelineJob

    if isinstance(target, PipelineTarget):
        try:
            pipeline, items, total = await resolve_pipeline(target, title)
        except ScriptError as error:
            _fail(str(error))
        job: PipelineJob | MainJob = PipelineJob(title, pipeline, items, total)
    else:
        job = MainJob(title, target.main)
    app = make_app(job, options)  # type: ignore[arg-type]
    await app.run_async()
    outcome = await app.conclude()
    if outcome.crash is not None:
        click.echo(f"antflow-tui: the script raised an exception:\n\n{outcome.crash}\n", err=True)
    if outcome.app_error is not None:
        click.echo(f"antflow-tui: {outcome.app_error}", err=True)
    click.echo(outcome.summary())
    return outcome.exit_code


def _fail(message: str) -> None:
    click.echo(f"antflow-tui: {message}", err=True)
    sys.exit(EXIT_SCRIPT_ERROR)
