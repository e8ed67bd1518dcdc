"""Keeping runs in the history, and resuming them: ``async with antflow.keep_history():``
in a script, ``ANTFLOW_HISTORY=1`` / ``ANTFLOW_RESUME=last`` for an unmodified one.

Both keep every pipeline that starts (inside the block, or anywhere in the process) in
one run of the history (`antflow.history`): from the first pipeline's start, a recording
in the run's file with what a resume needs (`Recorder(..., outcomes=True)`), the run's
row updated every few seconds and finished at the end, then the history pruned. Asked
to resume a run, each pipeline that starts gets its part of the resume plan
(`antflow.resume`), or is refused (`ResumeError`) when it changed since.

History never fails a run: a history that cannot be written is one warning, and the run
goes on without it (a resume it was asked for still applies).

`RunKeeper` is the piece a monitor that runs scripts itself uses (antflow-tui): it takes
over the environment (`take_over_environment`) and gives its own stream.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import logging
import os
import sys
import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

from antflow.exceptions import ResumeError
from antflow.history import (
    Counts,
    History,
    HistorySettingError,
    HistoryUnavailable,
    Retention,
    RunNotFound,
    end_status,
    history_setting,
    history_wanted,
)
from antflow.history.handle import UPDATE_EVERY
from antflow.observe import observe, observe_process
from antflow.resume import ACCEPT_HINT, Fingerprint, plan_for
from antflow.runstream.compactfile import is_compacted
from antflow.runstream.compaction import CompactionError, compact
from antflow.runstream.record import LogToStream, run_reason
from antflow.runstream.recorder import Recorder
from antflow.runstream.stream import RunStream

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Callable, Mapping, Sequence

    from antflow.history import Run, RunHandle
    from antflow.pipeline import Pipeline
    from antflow.resume import ResumePlan

logger = logging.getLogger(__name__)

HISTORY_VARIABLE: Final = "ANTFLOW_HISTORY"
RESUME_VARIABLE: Final = "ANTFLOW_RESUME"
"""``last`` (the newest run of this script), ``last~N``, or a run id (or its start)."""
ACCEPT_VARIABLE: Final = "ANTFLOW_RESUME_ACCEPT_CHANGES"
"""``1``: resume even a run of a pipeline that changed since."""
_YES: Final = frozenset({"1", "true", "yes", "on"})


@dataclass(frozen=True, slots=True)
class HistoryRequest:
    """What the environment asks of a plain run (`history_request`)."""

    keep: bool
    """Keep the run in the history."""
    resume: str | None
    """The run to resume (``last``, a run id...), if any."""
    accept_changes: bool
    """Resume even a run of a pipeline that changed since."""


def history_request(environ: Mapping[str, str] | None = None) -> HistoryRequest:
    """What ``ANTFLOW_HISTORY``, ``ANTFLOW_RESUME`` and ``ANTFLOW_RESUME_ACCEPT_CHANGES``
    ask of a plain library run: it is kept when ``ANTFLOW_HISTORY=1``, or when it resumes
    a run (unless ``ANTFLOW_HISTORY=0``).

    Raises:
        HistorySettingError: ``ANTFLOW_HISTORY`` means nothing.
    """
    env = os.environ if environ is None else environ
    setting = history_setting(env)
    resume = env.get(RESUME_VARIABLE, "").strip() or None
    keep = history_wanted(setting, by_default=resume is not None)
    accept = env.get(ACCEPT_VARIABLE, "").strip().lower() in _YES
    return HistoryRequest(keep=keep, resume=resume, accept_changes=accept)


class RunKeeper:
    """Keeps one run in the history, and applies a resume plan, from the first start of
    a pipeline on: give it each pipeline as it starts (`attach`, an observer), and
    `close` it once the run is over.

    Args:
        stream: The run's stream (the keeper attaches each pipeline to it).
        history: Where to keep the run; None: keep nothing (a resume still applies).
        plan: The resume plan, if the run resumes one.
        accept_changes: Resume pipelines that changed since the run resumed.
        script: The script run (for the history's listing and ``last``).
        argv: Its command line.
        hint: How a refusal says to go on anyway.
        warn: Says the keeper's one warning (default: the log).
    """

    def __init__(
        self,
        stream: RunStream,
        *,
        history: History | None,
        plan: ResumePlan | None = None,
        accept_changes: bool = False,
        script: str | os.PathLike[str] | None = None,
        argv: Sequence[str] = (),
        hint: str = ACCEPT_HINT,
        warn: Callable[[str], None] | None = None,
    ) -> None:
        self.stream = stream
        self.history = history
        self.plan = plan
        """The resume plan applied, if any."""
        self.accept_changes = accept_changes
        self.script = script
        self.argv = tuple(argv)
        self.hint = hint
        self._warn = warn or _log_warning
        self.handle: RunHandle | None = None
        """The run kept, once its first pipeline started (None: none, or the history
        could not be written)."""
        self.recorder: Recorder | None = None
        self.tidying: threading.Thread | None = None
        """The thread compacting an earlier run left uncompacted (see
        `_compact_one_left_over`), once this run began."""
        self.finished: Run | None = None
        """The run's row as `close` wrote it."""
        self._numbers: dict[int, int] = {}
        """id(pipeline) -> its number among the pipelines started."""
        self._pipelines: list[Pipeline] = []
        self._begun = False
        self._warned = False
        self._updates: asyncio.Task[None] | None = None
        self._closed = False

    @property
    def description(self) -> str | None:
        """``resumed from 2026-12-05 06:41 · 2,000 done earlier``, when resuming."""
        return None if self.plan is None else self.plan.description

    # ---------------------------------------------------------------- pipelines

    def attach(self, pipeline: Pipeline) -> None:
        """Keep `pipeline` (about to start) in the run, and resume its part of the plan.

        Raises:
            ResumeError: it changed since the run resumed (nothing was kept of it).
        """
        if self._closed:
            return
        number = self._numbers.get(id(pipeline))
        if number is None:
            number = len(self._pipelines) + 1
            part = None
            if self.plan is not None:
                part = self.plan.for_pipeline(
                    number, pipeline, accept_changes=self.accept_changes, hint=self.hint
                )
            self._numbers[id(pipeline)] = number
            self._pipelines.append(pipeline)
            if part is not None:
                pipeline.resume_from(part)
        if self.history is None:
            return  # nothing to keep: no stream, no tracker, nothing per item
        if not self._begun:
            self._begun = True
            self.stream.attach(pipeline)
            self._begin(pipeline)
        else:
            self.stream.attach(pipeline)
        self._keep_updating()

    def _begin(self, pipeline: Pipeline) -> None:
        """Begin the run in the history and record it (its first pipeline attached)."""
        if self.history is None:
            return
        fingerprint = Fingerprint.of(pipeline).text
        done = 0 if self.plan is None else self.plan.done_earlier
        resumed = None if self.plan is None else self.plan.run.id
        try:
            try:
                handle = self.history.begin(
                    self.script, self.argv, fingerprint, resumed, done_earlier=done
                )
            except RunNotFound:
                # Deleted since the plan was read (another process pruned it): the plan
                # holds what it stored all the same.
                handle = self.history.begin(self.script, self.argv, fingerprint)
        except HistoryUnavailable as error:
            self._unavailable(error)
            return
        self.handle = handle
        self.stream.note_script(self.script)  # a comparison of runs tells a changed script
        # Compacted once closed (on a thread): a kept run takes ~20 bytes an item, not ~220.
        recorder = Recorder(
            handle.path,
            self.stream,
            outcomes=True,
            history=handle.header_fields(),
            compact=True,
        )
        try:
            recorder.open()
        except OSError as error:
            self._say(
                f"cannot keep this run in the history: its recording {handle.path} cannot "
                f"be written ({error.strerror or error}). The run goes on without it."
            )
            return
        self.recorder = recorder
        self.tidying = threading.Thread(
            target=_compact_one_left_over,
            args=(self.history, handle.run_id),
            name="antflow history tidying",
            daemon=True,
        )
        self.tidying.start()

    def _keep_updating(self) -> None:
        """Update the run's row every few seconds, on the loop that runs its pipelines."""
        if self.handle is None:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return
        task = self._updates
        if task is None or task.done() or task.get_loop() is not loop:
            self._updates = loop.create_task(self._update_forever(), name="antflow history")

    async def _update_forever(self) -> None:
        while self.handle is not None and not self._closed:
            await asyncio.sleep(UPDATE_EVERY)
            handle = self.handle
            if handle is None or handle.failure is not None:
                return
            counts = self.counts()
            try:
                # A thread: a write may wait on another process's lock.
                await asyncio.to_thread(handle.update_counts, counts, force=True)
            except HistoryUnavailable as error:
                self._unavailable(error)
                return

    # ---------------------------------------------------------------- the end

    def counts(self) -> Counts:
        """The run's counts now (its pipelines' latest, summed)."""
        snapshots = self.stream.snapshots()
        earlier = sum(snapshot.done_earlier for snapshot in snapshots)
        return Counts.from_snapshots(snapshots, earlier)

    def close(self, reason: str | None = None) -> Run | None:
        """End the recording and the run's row, then prune the history.

        Args:
            reason: How the run ended (``finished``, ``stopped``, ``interrupted``,
                ``error``); None: as its pipelines' states say.

        Returns:
            The run's row as written (None: nothing was kept).
        """
        if self._closed:
            return self.finished
        self._closed = True
        if self._updates is not None:
            self._updates.cancel()
            self._updates = None
        reason = reason or run_reason(self.stream)
        if self.recorder is not None:
            self.recorder.close(reason)
        handle = self.handle
        if handle is None or self.history is None:
            return None
        counts = self.counts()
        try:
            self.finished = handle.finish(end_status(reason, counts), counts)
            self.history.prune()
        except HistoryUnavailable as error:
            self._unavailable(error)
        return self.finished

    # ---------------------------------------------------------------- warnings

    def _unavailable(self, error: HistoryUnavailable) -> None:
        if self.recorder is not None and self.recorder.broken:
            return  # the recording said it stopped (a full disk): the same cause, said once
        self._say(f"{error}. The run goes on without it.")

    def _say(self, text: str) -> None:
        if self._warned:
            return
        self._warned = True
        self._warn(text)


def _compact_one_left_over(history: History, own: str) -> None:
    """Compact the newest earlier run of the history left as it was written: one that
    crashed, or whose compaction the 10 s wait at exit cut short (one a start, on this
    thread: a run's start is not held up, and a history of big runs is tidied over a few
    starts; cut short at exit, it leaves the recording as it was). Never raises: the
    history is tidied, not needed."""
    try:
        for run in history.runs():
            if run.id == own or run.status == "running" or is_compacted(run.path):
                continue
            compact(run.path, unfinished=run.status == "crashed")
            return
    except CompactionError as refused:
        logger.debug("run history: %s", refused)
    except Exception:
        # Tidying must never fail a run, whatever a damaged history holds.
        logger.debug("tidying the run history failed", exc_info=True)


def _log_warning(text: str) -> None:
    logger.warning("%s", text)


def _script() -> str | None:
    """The script this process runs (None: ``python -c``, an interactive session)."""
    first = sys.argv[0] if sys.argv else ""
    return None if first in ("", "-c", "-") else os.path.abspath(first)


def _history(environ: Mapping[str, str] | None = None) -> History | None:
    try:
        return History(environ=environ)
    except HistorySettingError as error:
        _log_warning(f"{error}. The run goes on without keeping its history.")
        return None


@contextlib.asynccontextmanager
async def keep_history(
    *,
    resume: str | None = None,
    accept_changes: bool | None = None,
    script: str | os.PathLike[str] | None = None,
) -> AsyncIterator[RunKeeper]:
    """Keep every pipeline that starts inside the block in one run of the run history
    (``./.antflow``, or ``ANTFLOW_HOME``), resuming the run named, if any.

    Args:
        resume: The run to resume: ``last`` (the newest run of this script), ``last~N``,
            or a run id (or its start); None: as ``ANTFLOW_RESUME`` says (nothing when
            it is unset).
        accept_changes: Resume even when the pipeline changed since the run resumed
            (its stage or task names, its version); None: as
            ``ANTFLOW_RESUME_ACCEPT_CHANGES`` says.
        script: The script, for the history (default: the one Python runs).

    Yields:
        The keeper: its `RunKeeper.plan`, `RunKeeper.description` and, once a pipeline
        started, `RunKeeper.handle` (the run kept).

    Raises:
        ResumeError: on entry, no kept run matches `resume` (or the history cannot be
            read); from a pipeline's start (so from `run()`), the pipeline changed since
            the run resumed. Nothing has run then.

    With ``ANTFLOW_HISTORY=0`` nothing is kept (a resume still applies). A history that
    cannot be written is one warning, and the run goes on without it.

    Example:
        ```python
        async with antflow.keep_history(resume="last"):
            results = await pipeline.run(items)
        ```
    """
    take_over_environment()
    try:
        request = history_request()
    except HistorySettingError as error:
        _log_warning(f"{error}. The run goes on without keeping its history.")
        request = HistoryRequest(keep=False, resume=None, accept_changes=False)
    reference = resume if resume is not None else request.resume
    accept = accept_changes if accept_changes is not None else request.accept_changes
    script_path = os.fspath(script) if script is not None else _script()
    off = _history_off()
    history = None if off else _history()
    plan = None
    if reference is not None:
        plan = plan_for(history or _reader(), script_path, reference)[0]
    stream = _stream(script_path)
    keeper = RunKeeper(
        stream,
        history=history,
        plan=plan,
        accept_changes=accept,
        script=script_path,
        argv=sys.argv,
    )
    handler = LogToStream(stream)
    logging.getLogger().addHandler(handler)
    reason = None
    try:
        with observe(keeper.attach):
            yield keeper
    except BaseException:
        reason = "error"
        raise
    finally:
        logging.getLogger().removeHandler(handler)
        keeper.close(reason)
        stream.close()


def _reader() -> History:
    """The history, only to read a resume's runs from (no retention settings needed)."""
    return History(retention=Retention())


def _history_off() -> bool:
    try:
        return history_setting() == "off"
    except HistorySettingError:
        return True


def _stream(script: str | None) -> RunStream:
    name = None if script is None else os.path.basename(script)
    return RunStream(argv=sys.argv, script=name, follow_events=False, follow_errors=False)


# ---------------------------------------------------------------------- the environment


_environment_observer: Callable[[], None] | None = None


def keep_from_environment() -> None:
    """With ``ANTFLOW_HISTORY=1`` or ``ANTFLOW_RESUME`` set, keep this process's run in
    the history (from its first pipeline's start), resuming the run named; finished at
    exit. A variable that means nothing is one warning, and nothing is kept. A resume
    that cannot be (no such run, the pipeline changed) ends the process at the first
    pipeline's start, before anything runs: its message on stderr, exit status 2.
    (`antflow.runstream.keepenv.history_from_environment` calls it when one is set.)"""
    global _environment_observer
    try:
        request = history_request()
    except HistorySettingError as error:
        _log_warning(f"{error}. The run goes on without keeping its history.")
        return
    if not request.keep and request.resume is None:
        return
    state: dict[str, RunKeeper] = {}

    def on_start(pipeline: Pipeline) -> None:
        try:
            keep(pipeline)
        except ResumeError as refused:
            # Asked for on the command line: refused as a command line refuses, with
            # its message and exit status 2, not a traceback through the script.
            print(f"antflow: {refused}", file=sys.stderr, flush=True)
            raise SystemExit(2) from None

    def keep(pipeline: Pipeline) -> None:
        keeper = state.get("keeper")
        if keeper is None:
            script = _script()
            history = _history() if request.keep else None
            plan = None
            if request.resume is not None:
                plan = plan_for(history or _reader(), script, request.resume)[0]
            stream = _stream(script)
            keeper = state["keeper"] = RunKeeper(
                stream,
                history=history,
                plan=plan,
                accept_changes=request.accept_changes,
                script=script,
                argv=sys.argv,
                hint=f"set {ACCEPT_VARIABLE}=1 to resume it anyway, or run it afresh "
                f"without {RESUME_VARIABLE}",
            )
            logging.getLogger().addHandler(LogToStream(stream))
            atexit.register(keeper.close)
        keeper.attach(pipeline)

    _environment_observer = observe_process(on_start)


def take_over_environment() -> HistoryRequest | None:
    """For a monitor that keeps runs itself (antflow-tui), or `keep_history`: stop
    keeping this process's runs from ``ANTFLOW_HISTORY``/``ANTFLOW_RESUME`` (nothing was
    kept yet if no pipeline started), and return what they asked (None: nothing, or a
    value that means nothing, said once)."""
    global _environment_observer
    if _environment_observer is not None:
        _environment_observer()
        _environment_observer = None
    try:
        request = history_request()
    except HistorySettingError:
        return None
    if not request.keep and request.resume is None:
        return None
    return request


__all__ = [
    "ACCEPT_VARIABLE",
    "HISTORY_VARIABLE",
    "RESUME_VARIABLE",
    "HistoryRequest",
    "ResumeError",
    "RunKeeper",
    "history_request",
    "keep_from_environment",
    "keep_history",
    "take_over_environment",
]
