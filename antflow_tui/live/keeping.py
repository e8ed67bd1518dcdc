"""The run history of ``antflow-tui SCRIPT``: every run kept by default, and a killed one
resumed (issue 20).

What the command line and the environment ask (`keeping_for`: ``--no-history``,
``--resume``, ``--accept-changes``, ``ANTFLOW_HISTORY``, ``ANTFLOW_RESUME``) is read once,
before the script runs: a resume that cannot be (no such run, one still running) is
refused then, with its message and exit status 2, before anything starts. The live
source then keeps its run through the engine's `RunKeeper` (`keeper_for`): a recording of
its own stream in the run's file, the run's row updated every few seconds, finished and
the history pruned at the end. A history that cannot be written is one warning (the
event log, and stderr once the run is over); the run goes on without it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

from antflow.exceptions import ResumeError
from antflow.history import History, HistorySettingError, Retention, history_setting
from antflow.resume import plan_for
from antflow.runstream.keeping import (
    ACCEPT_VARIABLE,
    RESUME_VARIABLE,
    RunKeeper,
    take_over_environment,
)

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping, Sequence
    from pathlib import Path

    from antflow import Pipeline
    from antflow.resume import ResumePlan
    from antflow.runstream.stream import RunStream

ACCEPT_HINT: Final = "pass --accept-changes to resume it anyway, or run it afresh without --resume"
"""How a refused resume says to go on (the app's words for the engine's refusal)."""
_YES: Final = frozenset({"1", "true", "yes", "on"})


@dataclass(frozen=True, slots=True)
class Keeping:
    """How a live run is kept in the run history, and what it resumes."""

    history: History | None
    """Where the run is kept (None: it is not: ``--no-history``, ``ANTFLOW_HISTORY=0``)."""
    script: str
    """The script's absolute path (``last`` means its newest run)."""
    argv: tuple[str, ...]
    """The command line, kept with the run."""
    plan: ResumePlan | None = None
    """What the run resumes (``--resume``), if anything."""
    accept_changes: bool = False
    """Resume even a run of a pipeline that changed since (``--accept-changes``)."""
    warning: str | None = None
    """What could not be read of the settings (said once, in the event log and after)."""

    @property
    def description(self) -> str | None:
        """``resumed from 2026-12-05 06:41 · 2,000 done earlier``, when resuming."""
        return None if self.plan is None else self.plan.description


def keeping_for(
    script: Path,
    argv: Sequence[str],
    *,
    keep: bool = True,
    resume: str | None = None,
    accept_changes: bool = False,
    environ: Mapping[str, str] | None = None,
) -> Keeping:
    """What the command line and the environment ask of the history for a run of
    `script`: kept unless `keep` is False or ``ANTFLOW_HISTORY=0``; resuming `resume`
    (else ``ANTFLOW_RESUME``), if given.

    Takes the environment over from the engine, so a run is never kept twice.

    Raises:
        ResumeError: the run to resume cannot be (none matches, it is still running, the
            history cannot be read); the message says what the history holds.
    """
    env = os.environ if environ is None else environ
    take_over_environment()
    warning = None
    try:
        off = history_setting(env) == "off"
    except HistorySettingError as error:
        off, warning = True, f"{error}. The run goes on without keeping its history."
    history = None
    if keep and not off:
        try:
            history = History(environ=env)
        except HistorySettingError as error:
            warning = f"{error}. The run goes on without keeping its history."
    reference = resume if resume is not None else env.get(RESUME_VARIABLE, "").strip() or None
    accept = accept_changes or env.get(ACCEPT_VARIABLE, "").strip().lower() in _YES
    path = str(script.absolute())
    plan = None
    if reference is not None:
        # Only read: retention's settings do not matter to a resume.
        reader = history or History(retention=Retention(), environ=env)
        plan = plan_for(reader, path, reference)[0]
    return Keeping(history, path, tuple(argv), plan, accept, warning)


def refusal(keeping: Keeping, pipeline: Pipeline) -> str | None:
    """Why the resume cannot apply to `pipeline`, the run's first (it changed since the
    run resumed), before it starts; None when it can (or nothing is resumed)."""
    if keeping.plan is None:
        return None
    try:
        keeping.plan.for_pipeline(
            1, pipeline, accept_changes=keeping.accept_changes, hint=ACCEPT_HINT
        )
    except ResumeError as refused:
        return str(refused)
    return None


def keeper_for(stream: RunStream, keeping: Keeping, warn: Callable[[str], None]) -> RunKeeper:
    """The engine's keeper of the run whose stream is `stream` (the app's own: its
    recording holds what the app shows), saying its one warning through `warn`."""
    return RunKeeper(
        stream,
        history=keeping.history,
        plan=keeping.plan,
        accept_changes=keeping.accept_changes,
        script=keeping.script,
        argv=keeping.argv,
        hint=ACCEPT_HINT,
        warn=warn,
    )
