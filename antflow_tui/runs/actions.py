"""What a kept run leads to from the runs screen: resuming it, comparing two.

Pure: each returns the command line to run (the screen leaves, and the command line
replaces it: `Launch`) or why there is none (`Refusal`, whose words say the command to
run by hand when there is one), so the tests check the command built without running it.
"""

from __future__ import annotations

import os
import shlex
import sys
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Collection, Sequence

    from antflow.history import Run


@dataclass(frozen=True, slots=True)
class Launch:
    """A command line that replaces the runs screen (exec)."""

    argv: tuple[str, ...]
    """What is executed: the program first."""
    shown: str
    """The same command as a user would type it (``antflow-tui job.py --resume ID``)."""


@dataclass(frozen=True, slots=True)
class Refusal:
    """Why a run cannot be resumed (or compared) from here, and what to do."""

    words: str


def program(argv0: str | None = None, executable: str | None = None) -> tuple[str, ...]:
    """How to run antflow-tui again: the ``antflow-tui`` this process was started as,
    else this Python with ``-m antflow_tui``."""
    first = sys.argv[0] if argv0 is None else argv0
    if os.path.basename(first) == "antflow-tui" and os.access(first, os.X_OK):
        return (os.path.abspath(first),)
    return (executable or sys.executable, "-m", "antflow_tui")


def script_word(run: Run) -> str | None:
    """What names the run's script on a command line: its absolute path, with the
    ``:NAME`` it was run with (``job.py:main``), if any; None when it is not known."""
    if run.script_path is None:
        return None
    name = os.path.basename(run.script_path)
    for word in run.argv[1:]:
        path, colon, attribute = word.rpartition(":")
        if colon and attribute.isidentifier() and os.path.basename(path) == name:
            return f"{run.script_path}:{attribute}"
    return run.script_path


def resume_command(
    run: Run,
    *,
    exists: Collection[str] | None = None,
    cwd: str | None = None,
    prefix: Sequence[str] | None = None,
) -> Launch | Refusal:
    """The command that resumes `run`: ``antflow-tui SCRIPT --resume RUN``, when its
    script is still there and the run is over.

    Args:
        exists: The paths that exist (None: ask the file system), for tests.
        cwd: The folder the command is shown relative to (None: the current one).
        prefix: How to run antflow-tui (None: `program`).
    """
    word = script_word(run)
    if run.status == "running":
        return Refusal(
            f"Run {run.id} is still running (process {run.pid}): resuming it now would "
            f"run its items twice. Stop it first, or wait for it to end."
        )
    if word is None:
        return Refusal(f"Run {run.id} does not say which script it ran: it cannot be resumed.")
    path = run.script_path or ""
    present = os.path.isfile(path) if exists is None else path in exists
    shown = f"antflow-tui {shlex.quote(_relative(word, cwd))} --resume {run.id}"
    if not present:
        return Refusal(
            f"The script of run {run.id} is gone ({path}). Put it back, then run: {shown}"
        )
    return Launch((*(prefix or program()), word, "--resume", run.id), shown)


def compare_command(
    first: Run,
    second: Run,
    *,
    commands: Collection[str],
    prefix: Sequence[str] | None = None,
) -> Launch | Refusal:
    """The command that compares two runs, the older first: ``antflow-tui compare A B``
    (issue 22), once antflow-tui has it.

    Args:
        commands: The commands antflow-tui has (its command line's `COMMANDS`).
        prefix: How to run antflow-tui (None: `program`).
    """
    older, newer = sorted((first, second), key=lambda run: (run.started_at, run.id))
    shown = f"antflow-tui compare {older.id} {newer.id}"
    if "compare" not in commands:
        return Refusal(f"Comparing two runs is coming soon (it will run: {shown}).")
    return Launch((*(prefix or program()), "compare", older.id, newer.id), shown)


def _relative(path_word: str, cwd: str | None) -> str:
    """A script path as short as it reads right from `cwd`: relative when under it."""
    here = os.getcwd() if cwd is None else cwd
    try:
        relative = os.path.relpath(path_word, here)
    except ValueError:
        return path_word
    return path_word if relative.startswith("..") else relative
