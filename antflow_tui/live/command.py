"""``antflow-tui SCRIPT``, the command line's default command: load a script, run its
pipeline in the app (or with no screen), print a summary, exit with the run's status."""

from __future__ import annotations

import asyncio
import math
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import click

from antflow_tui import __version__
from antflow_tui.arguments import fail, keymap_option, positive, say, writable_file
from antflow_tui.live.loader import (
    CONTRACT,
    MainTarget,
    PipelineTarget,
    ScriptError,
    find_target,
    load_script,
    resolve_pipeline,
)
from antflow_tui.outcome import EXIT_INCOMPLETE, EXIT_OK

if TYPE_CHECKING:
    from antflow import Pipeline
    from antflow.refeed import RefeedPlan
    from antflow_tui.live.keeping import Keeping
    from antflow_tui.live.runner import MainJob, PipelineJob
    from antflow_tui.options import AppOptions
    from antflow_tui.outcome import RunOutcome


class _ProgramContext(click.Context):
    """The default command is the program itself: its usage and its errors read
    ``antflow-tui [OPTIONS] SCRIPT[:NAME]``, with no command name."""

    @property
    def command_path(self) -> str:
        return super().command_path.rstrip()


class DefaultCommand(click.Command):
    """A command run when the command line names no other (`antflow_tui.cli`)."""

    context_class = _ProgramContext


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


@click.command(
    "script",
    help=HELP,
    context_settings={"help_option_names": ["-h", "--help"]},
    cls=DefaultCommand,
)
@click.argument("script", metavar="SCRIPT[:NAME]")
@click.option(
    "--interval",
    type=float,
    default=0.25,
    show_default=True,
    callback=positive,
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
    "--item-history",
    "history",
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
    callback=writable_file,
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
    callback=writable_file,
    metavar="FILE",
    help="Record the run to FILE (JSON Lines) for `antflow-tui replay FILE`.",
)
@click.option(
    "--record-values",
    is_flag=True,
    help="With --record: record the items' values too (as reprs).",
)
@click.option(
    "--prices",
    metavar="FILE",
    help="Price usage reports by this TOML file of US dollars per million tokens, per "
    "model (instead of ANTFLOW_PRICES); nothing is bundled.",
)
@click.option(
    "--budget-usd",
    type=float,
    callback=positive,
    metavar="N",
    help="Pause the run before a call would spend over N US dollars (needs prices, or "
    "tasks that report cost=); raise it from the app to go on.",
)
@click.option(
    "--budget-tokens",
    type=click.IntRange(min=1),
    metavar="N",
    help="Pause the run before a call would use over N tokens (input and output).",
)
@click.option("--exit-when-done", is_flag=True, help="Close the app when the run ends.")
@click.option(
    "--no-history",
    is_flag=True,
    help="Do not keep this run in the run history (./.antflow, or ANTFLOW_HOME; also "
    "ANTFLOW_HISTORY=0). Every run is kept otherwise: `antflow-tui runs` lists them.",
)
@click.option(
    "--resume",
    is_flag=False,
    flag_value="last",
    default=None,
    metavar="[RUN]",
    help="Resume a kept run of this script (default: the last one; or last~1, a run id, "
    "or its start): items it completed are not run again, but counted done earlier.",
)
@click.option(
    "--accept-changes",
    is_flag=True,
    help="With --resume: resume even if the pipeline changed since (stage or task names, "
    "its version).",
)
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
    prices: str | None,
    budget_usd: float | None,
    budget_tokens: int | None,
    exit_when_done: bool,
    no_history: bool,
    resume: str | None,
    accept_changes: bool,
    keymap: str,
    headless: bool,
    serve: bool,
    progress_every: float | None,
    address: str | None,
    allow_remote: bool,
) -> None:
    from antflow_tui.live.source import LiveSource
    from antflow_tui.options import AppOptions

    keys = keymap_option(keymap, LiveSource.CAN)
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
    if accept_changes and resume is None and not os.environ.get("ANTFLOW_RESUME", "").strip():
        raise click.BadParameter("needs --resume [RUN]", param_hint="--accept-changes")
    if resume is not None and retry_from is not None:
        raise click.BadParameter(
            "--retry-from feeds an export's items, --resume the script's own: use one",
            param_hint="--resume/--retry-from",
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
    _use_prices(prices)
    plan = None if retry_from is None else _read_refeed(retry_from)
    try:
        loaded = load_script(script)
        target = find_target(loaded)
    except ScriptError as error:
        fail(str(error))
    keeping = _keeping(loaded.path, no_history, resume, accept_changes)
    options = AppOptions(
        keeping=keeping,
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
        budget_usd=_budget_usd(budget_usd),
        budget_tokens=budget_tokens,
    )
    if plan is not None and not isinstance(target, PipelineTarget):
        fail(
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


def _keeping(script: Path, no_history: bool, resume: str | None, accept: bool) -> Keeping:
    """What the run history keeps of this run, and what it resumes (a resume that cannot
    be is refused now, before the script runs: its message, exit 2)."""
    from antflow.exceptions import ResumeError
    from antflow_tui.live.keeping import keeping_for

    try:
        return keeping_for(
            script, sys.argv, keep=not no_history, resume=resume, accept_changes=accept
        )
    except ResumeError as refused:
        fail(str(refused))


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


def _budget_usd(value: float | None) -> float | None:
    """--budget-usd as a Budget takes it (a finite number of dollars above 0)."""
    if value is not None and not math.isfinite(value):
        raise click.BadParameter(
            f"must be a number of US dollars, got {value}", param_hint="--budget-usd"
        )
    return value


def _use_prices(path: str | None) -> None:
    """--prices FILE (else ``ANTFLOW_PRICES``): every usage report of the run is priced
    by it; one clear message and exit 2 when the file cannot be used (before the script's
    first Pipeline would raise it from inside the script)."""
    from antflow.exceptions import PriceFileError
    from antflow.prices import (
        ENVIRONMENT_VARIABLE,
        load_prices,
        prices_from_environment,
        use_prices,
    )

    try:
        if path is not None:
            use_prices(load_prices(path))
        else:
            prices_from_environment()
    except PriceFileError as error:
        told = str(error)
        if path is None:
            told = f"{ENVIRONMENT_VARIABLE}: {told}"
        fail(told)


def _read_refeed(path: Path) -> RefeedPlan:
    from antflow.refeed import ExportFileError, read_export

    try:
        plan = read_export(path)
    except ExportFileError as error:
        fail(str(error))
    if len(plan.pipelines) > 1:
        fail(
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
    from antflow_tui.live import live_app
    from antflow_tui.live.runner import MainJob, PipelineJob
    from antflow_tui.live.serving import served_if_asked

    if isinstance(target, PipelineTarget):
        try:
            pipeline, items, total = await resolve_pipeline(target, title)
        except ScriptError as error:
            fail(str(error))
        refused = _refused(options, pipeline)
        if refused is not None:
            fail(refused)
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
            say(screenless.note, err=True)
        if refeed is not None:
            say("\n".join(refeed_lines(refeed)), err=True)
        ran = await run_headless(
            job,
            options,
            serve=screenless.serve,
            address=screenless.address,
            allow_remote=screenless.allow_remote,
            progress=screenless.progress_every,
        )
        return ran if isinstance(ran, int) else _report(ran, job, screen=False)
    app = live_app(job, options)
    host = app.host
    assert host is not None, "a live app hosts its script"
    if refeed is not None:
        for line in refeed_lines(refeed):
            host.note(line, error=line.startswith("  line"))
    try:
        async with served_if_asked(host.source, lambda text, error: host.note(text, error=error)):
            await app.run_async()
    finally:
        # Normally given back as the app unmounts; a crash of ours must not keep the
        # summary and the tracebacks out of the terminal.
        if host.fd_route is not None:
            host.fd_route.restore()
    return _report(await host.conclude(), job)


def _refused(options: AppOptions, pipeline: Pipeline) -> str | None:
    """Why the resume asked for cannot apply to the script's pipeline, known before the
    app opens (a script with its own main() is refused at its pipeline's start)."""
    if options.keeping is None:
        return None
    from antflow_tui.live.keeping import refusal

    return refusal(options.keeping, pipeline)


def _report(outcome: RunOutcome, job: PipelineJob | MainJob, *, screen: bool = True) -> int:
    """What the run came to, printed once it is over (the screen is gone, if there was
    one); returns the exit status. `screen`: the run had one (a run with no screen said
    the history's warning as it came)."""
    from antflow_tui.live.runner import PipelineJob

    if outcome.refused is not None:
        say(f"antflow-tui: {outcome.refused}", err=True)
        return outcome.exit_code
    if outcome.history_warning is not None and screen:
        say(f"antflow-tui: {outcome.history_warning}", err=True)
    if outcome.crash is not None:
        say(f"antflow-tui: the script raised an exception:\n\n{outcome.crash}\n", err=True)
    if outcome.app_error is not None:
        say(f"antflow-tui: {outcome.app_error}", err=True)
    code = outcome.exit_code
    # As fed: lines the pipeline itself refused are listed too.
    refeed = job.refeed if isinstance(job, PipelineJob) else None
    if refeed is not None and refeed.skipped:
        say("\n".join(refeed_lines(refeed, fed=False)), err=True)
        # Items the export holds but that could not be fed again are left to do (those
        # the script abandoned itself were never work to finish).
        if any(line.status != "abandoned" for line in refeed.skipped):
            code = max(code, EXIT_INCOMPLETE)
    say(outcome.summary())
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
    say(f"antflow-tui: {plan.source} has no failed, unfinished or never-fed item to feed again.")
    if plan.skipped:
        say("\n".join(refeed_lines(plan, fed=False)), err=True)
    return False
