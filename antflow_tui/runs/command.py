"""``antflow-tui runs``: the runs screen, ``--json`` for scripts, ``--prune``.

The command is made by the command line (`runs_command`), which gives it how to replay a
recording (the replay app is the command line's), so this package depends on nothing of
it. The screen leaves what the user chose to the loop here (`browse`): a replay comes
back to the list, on the same run; a resume or a comparison replaces this process with
its command (``antflow-tui SCRIPT --resume RUN``), as a shell would run it.
"""

from __future__ import annotations

import json
import os
import sys
from typing import TYPE_CHECKING, NoReturn

import click

from antflow.history import History, HistoryError
from antflow.history.settings import parse_bytes
from antflow_tui.arguments import fail, keymap_option, say
from antflow_tui.outcome import EXIT_INCOMPLETE, EXIT_OK
from antflow_tui.runs.present import format_bytes, of_script, run_json, started_text

if TYPE_CHECKING:
    from collections.abc import Callable, Collection, Mapping, Sequence
    from pathlib import Path

    from antflow.history import Run
    from antflow_tui.runs.screen import ListState

RUNS_HELP = """List the runs kept in the run history, newest first: every run of
`antflow-tui SCRIPT` (./.antflow in the current folder, or ANTFLOW_HOME).

\b
  enter  replay the run (q in the replay comes back here)
  r      resume it: runs `antflow-tui SCRIPT --resume RUN` (asks first)
  d      delete it (asks first)
  /      filter by script, status or run id
  m, c   mark two runs, compare them
  q      quit

With --json, one JSON object per run on stdout, newest first (the fields are in
docs/runs/history.md). With --prune, delete the runs beyond the retention limits now
(the last 100 runs or 2 GB: ANTFLOW_HISTORY_KEEP, ANTFLOW_HISTORY_MAX_BYTES, or --keep
and --max-bytes), never one a kept resume still needs, and list them.
"""


def runs_command(
    *,
    replay: Callable[[Path], str | None],
    commands: Collection[str],
    execute: Callable[[Sequence[str]], NoReturn] | None = None,
) -> click.Command:
    """The ``runs`` command.

    Args:
        replay: Replays a recording in the replay app until it is closed; returns why it
            cannot (None: it was shown).
        commands: The commands antflow-tui has.
        execute: Replaces this process with a command line (default: `exec_command`).
    """

    @click.command("runs", help=RUNS_HELP, context_settings={"help_option_names": ["-h", "--help"]})
    @click.option("--json", "as_json", is_flag=True, help="One JSON object per run, on stdout.")
    @click.option(
        "--prune",
        is_flag=True,
        help="Delete the runs beyond the retention limits now, and list them.",
    )
    @click.option(
        "--keep",
        type=click.IntRange(min=1),
        metavar="N",
        help="With --prune: keep the last N runs (default ANTFLOW_HISTORY_KEEP, or 100).",
    )
    @click.option(
        "--max-bytes",
        metavar="SIZE",
        help="With --prune: keep at most SIZE of recordings (500M, 2G; default "
        "ANTFLOW_HISTORY_MAX_BYTES, or 2G).",
    )
    @click.option(
        "--script",
        metavar="SCRIPT",
        help="Only the runs of SCRIPT: a file name (job.py) or a path (./jobs/job.py).",
    )
    @click.option(
        "--keymap",
        default="",
        metavar="ID=KEY,...",
        help="Remap keys by binding id, e.g. 'runs.resume=R' (ids are listed on error).",
    )
    def runs(
        as_json: bool,
        prune: bool,
        keep: int | None,
        max_bytes: str | None,
        script: str | None,
        keymap: str,
    ) -> None:
        if (keep is not None or max_bytes is not None) and not prune:
            raise click.BadParameter("needs --prune", param_hint="--keep/--max-bytes")
        if prune and as_json:
            raise click.BadParameter("use one", param_hint="--prune/--json")
        history = _history()
        if prune:
            sys.exit(prune_now(history, keep, _size(max_bytes)))
        if as_json:
            sys.exit(print_json(history, script))
        from antflow_tui.runs.screen import ListState

        keys = keymap_option(keymap, frozenset())
        state = ListState(filter_text=script or "")
        sys.exit(
            browse(
                history,
                state,
                replay=replay,
                commands=commands,
                keymap=keys,
                execute=execute or exec_command,
            )
        )

    return runs


def _history() -> History:
    try:
        return History()
    except HistoryError as error:
        fail(str(error))


def _size(text: str | None) -> int | None:
    if text is None:
        return None
    try:
        return parse_bytes(text, "--max-bytes")
    except HistoryError as error:
        raise click.BadParameter(str(error), param_hint="--max-bytes") from None


def listed(history: History, script: str | None = None) -> list[Run]:
    """The runs, newest first (of `script` only, when given); exits 2 with the message
    when the history cannot be read."""
    try:
        found = history.runs()
    except HistoryError as error:
        fail(str(error))
    return found if script is None else [run for run in found if of_script(run, script)]


def print_json(history: History, script: str | None) -> int:
    """``--json``: one object per run (`antflow_tui.runs.present.run_json`), newest first."""
    for run in listed(history, script):
        say(json.dumps(run_json(run), ensure_ascii=False))
    return EXIT_OK


def prune_now(history: History, keep: int | None, max_bytes: int | None) -> int:
    """``--prune``: apply retention now, and say what it deleted and what it kept."""
    try:
        deleted = history.prune(keep, max_bytes)
        kept = history.runs()
    except HistoryError as error:
        fail(str(error))
    limit_runs = history.retention.keep if keep is None else keep
    limit_bytes = history.retention.max_bytes if max_bytes is None else max_bytes
    limits = f"the last {limit_runs:,} runs or {format_bytes(limit_bytes)}"
    size = format_bytes(sum(run.bytes for run in kept))
    if not deleted:
        say(f"Nothing to delete: {len(kept):,} runs kept ({size}; limits: {limits}).")
        return EXIT_OK
    freed = format_bytes(sum(run.bytes for run in deleted))
    say(f"Deleted {len(deleted):,} runs ({freed}):")
    for run in deleted:
        say(f"  {_described(run)}")
    say(f"Kept {len(kept):,} runs ({size}; limits: {limits}).")
    return EXIT_OK


def _described(run: Run) -> str:
    from antflow_tui.safe_text import clean

    script = clean(run.script or "unknown script", 60)
    started = started_text(run.started_at)
    return f"{run.id}  {script}  {run.status}  {started}  {format_bytes(run.bytes)}"


def browse(
    history: History,
    state: ListState,
    *,
    replay: Callable[[Path], str | None],
    commands: Collection[str],
    keymap: Mapping[str, str],
    execute: Callable[[Sequence[str]], NoReturn],
) -> int:
    """The runs screen until the user quits: a replay comes back to it, a resume or a
    comparison replaces this process. Returns the exit status."""
    from antflow_tui.runs.actions import Launch
    from antflow_tui.runs.screen import Replay, RunsApp

    while True:
        app = RunsApp(history, state=state, commands=commands, keymap=keymap)
        choice = app.run()
        if app.return_code not in (0, None):
            return EXIT_INCOMPLETE
        if isinstance(choice, Replay):
            state.selected = choice.run_id
            state.notice = replay(choice.path)
            continue
        if isinstance(choice, Launch):
            say(f"antflow-tui: {choice.shown}", err=True)
            execute(choice.argv)
        return EXIT_OK


def exec_command(argv: Sequence[str]) -> NoReturn:
    """Replace this process with `argv` (the terminal is the app's no more)."""
    sys.stdout.flush()
    sys.stderr.flush()
    try:
        os.execv(argv[0], list(argv))
    except OSError as error:
        fail(f"cannot run {argv[0]}: {error.strerror or error}")
