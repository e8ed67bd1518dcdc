"""Finding a run from what a user types, and the chain of runs a resume builds on.

Pure functions over runs listed newest first, so the messages are tested without a
folder. Every miss is one `RunNotFound` naming what the history does hold.
"""

from __future__ import annotations

import re
import time
from typing import TYPE_CHECKING, Final

from antflow.history.errors import RunNotFound

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    from antflow.history.run import Run

_LAST: Final = re.compile(r"\Alast(?:~(\d{1,9}))?\Z")
_SHOWN: Final = 5
"""Runs a message lists at most."""


def names_last(reference: str) -> bool:
    """Whether `reference` is ``last`` or ``last~N`` (chosen among one script's runs)."""
    return _LAST.match(reference.strip()) is not None


def resolve(runs: Sequence[Run], reference: str, *, where: str, script: str | None) -> Run:
    """The run `reference` names among `runs` (newest first).

    Args:
        runs: The runs to choose from: those of `script` when it is given.
        reference: ``last`` (the newest), ``last~N`` (the Nth before it), a run id, or
            the start of exactly one run id.
        where: The history's folder, for messages.
        script: The script the runs were chosen for, for messages (None: every run).

    Raises:
        RunNotFound: nothing, or more than one run, matches.
    """
    text = reference.strip()
    of_script = f" of {script}" if script else ""
    last = _LAST.match(text)
    if last is not None:
        back = int(last.group(1) or 0)
        if back < len(runs):
            return runs[back]
        if not runs:
            raise RunNotFound(f"no run{of_script} in {where} yet")
        raise RunNotFound(
            f"there is no {text}: {where} holds {_count(len(runs))}{of_script} "
            f"({_lasts(len(runs))}): {_listing(runs)}"
        )
    if not text or not all(c.isdigit() or c in "-abcdef" for c in text):
        raise RunNotFound(
            f"{reference!r} names no run: give a run id (such as 20261205-064102-3f9a), "
            f"the start of one, 'last' or 'last~N'"
        )
    exact = [run for run in runs if run.id == text]
    if exact:
        return exact[0]
    matching = [run for run in runs if run.id.startswith(text)]
    if len(matching) == 1:
        return matching[0]
    if matching:
        raise RunNotFound(
            f"{text!r} is the start of {len(matching)} run ids{of_script}: "
            f"{_listing(matching)}; give more of the id"
        )
    if not runs:
        raise RunNotFound(f"no run {text!r}: {where} holds no run{of_script} yet")
    raise RunNotFound(
        f"no run {text!r} in {where}; it holds {_count(len(runs))}{of_script}, the newest: "
        f"{_listing(runs)}"
    )


def chain(by_id: Mapping[str, Run], run_id: str) -> list[Run]:
    """Run `run_id` and every run it resumed, transitively, newest first.

    The chain stops at a run whose predecessor is not in `by_id` (deleted): its
    `Run.resumed_from` is then not None. A cycle (a damaged or edited index) ends it
    at the first run met twice.
    """
    found: list[Run] = []
    seen: set[str] = set()
    current = by_id.get(run_id)
    while current is not None and current.id not in seen:
        found.append(current)
        seen.add(current.id)
        previous = current.resumed_from
        current = by_id.get(previous) if previous is not None else None
    return found


def describe(run: Run) -> str:
    """A run in a message: id, script, start, status."""
    start = time.strftime("%Y-%m-%d %H:%M", time.localtime(run.started_at))
    return f"{run.id} ({run.script or 'unknown script'}, {start}, {run.status})"


def _listing(runs: Sequence[Run]) -> str:
    shown = ", ".join(describe(run) for run in runs[:_SHOWN])
    more = len(runs) - _SHOWN
    return shown + (f" and {more:,} more (antflow-tui runs lists them)" if more > 0 else "")


def _lasts(runs: int) -> str:
    return "last" if runs == 1 else f"last to last~{runs - 1}"


def _count(runs: int) -> str:
    return f"{runs:,} run" + ("" if runs == 1 else "s")
