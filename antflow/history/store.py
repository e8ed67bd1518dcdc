"""The run history: runs begun, updated and finished, listed, found, and pruned.

Each run is a recording in ``runs/`` (the recorder writes it; `History.begin` only
names and creates the file) and a row of the index. The index is a cache of the
recordings: a missing, damaged or foreign one is rebuilt from them under a lock, never
a traceback. Whatever cannot be written raises `HistoryUnavailable`, so the caller warns
once and runs on: history never fails a run.
"""

from __future__ import annotations

import contextlib
import os
import time
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Final, TypeVar

from antflow.history import index
from antflow.history.errors import HistoryError, HistoryUnavailable, RunNotFound
from antflow.history.folder import RUNS, Folder, Location, Opened, locate
from antflow.history.handle import RunHandle, rate
from antflow.history.resolve import chain, names_last, resolve
from antflow.history.retention import doomed
from antflow.history.run import Counts, Run, is_run_id, new_run_id, recording_name
from antflow.history.settings import Retention
from antflow.history.status import process_alive, process_identity
from antflow.history.upkeep import Upkeep

if TYPE_CHECKING:
    import sqlite3
    from collections.abc import Callable, Mapping, Sequence

T = TypeVar("T")

_ID_TRIES: Final = 32
"""Fresh ids tried when one is taken (four random hex digits a second: a clash is rare)."""


class History:
    """The run history of one folder.

    Args:
        home: The history's folder; None: ``ANTFLOW_HOME``, else ``./.antflow``.
        retention: Limits `prune` applies; None: from ``ANTFLOW_HISTORY_KEEP`` and
            ``ANTFLOW_HISTORY_MAX_BYTES``.
        clock: Unix time (injectable for tests).
        monotonic: A monotonic clock, for spacing count updates.
        busy_timeout: Seconds to wait for another process's write or index repair.
        environ: The environment to read settings from (None: ``os.environ``).

    Raises:
        HistorySettingError: a retention variable is not a number.
    """

    def __init__(
        self,
        home: str | os.PathLike[str] | None = None,
        *,
        retention: Retention | None = None,
        clock: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
        busy_timeout: float = index.BUSY_TIMEOUT,
        environ: Mapping[str, str] | None = None,
    ) -> None:
        location = locate(environ) if home is None else Location(Path(home).absolute(), chosen=True)
        self._folder = Folder(location)
        self._upkeep = Upkeep(self._folder, busy_timeout)
        self.home = location.home
        """The history's folder."""
        self.retention = retention or Retention.from_environment(environ)
        self._clock = clock
        self._monotonic = monotonic

    # ------------------------------------------------------------------ a run

    def begin(
        self,
        script: str | os.PathLike[str] | None,
        argv: Sequence[str],
        fingerprint: str | None,
        resumed_from: str | None = None,
        *,
        done_earlier: int = 0,
    ) -> RunHandle:
        """Start keeping a run: give it an id and a recording file, and list it as
        running (in this process).

        Args:
            script: The script run (its name and absolute path are kept), if any.
            argv: The command line.
            fingerprint: The pipeline's fingerprint, compared when resuming.
            resumed_from: The id of the run this one resumes.
            done_earlier: Items the resumed runs completed, not run again.

        Raises:
            HistoryUnavailable: the history cannot be written.
            RunNotFound: `resumed_from` names no kept run (it was deleted).
        """
        started_at = self._clock()
        pid, started = process_identity()
        script_path = None if script is None else os.path.abspath(os.fspath(script))
        with self._folder.opened(create=True) as opened:
            assert opened is not None  # made, with create=True
            run_id = _reserve(opened, started_at)
            run = Run(
                id=run_id,
                started_at=started_at,
                script=None if script_path is None else os.path.basename(script_path),
                script_path=script_path,
                argv=tuple(str(part) for part in argv),
                pid=pid,
                process_start=started,
                status="running",
                ended_at=None,
                updated_at=started_at,
                counts=Counts(done_earlier=done_earlier),
                duration=0.0,
                rate=None,
                resumed_from=resumed_from,
                fingerprint=fingerprint,
                path=self.home / RUNS / recording_name(run_id),
                bytes=0,
                antflow=_version(),
            )
            try:
                self._upkeep.use(opened, lambda connection: self._insert(connection, run))
            except BaseException:
                with contextlib.suppress(HistoryUnavailable):
                    opened.remove_recording(recording_name(run_id))
                raise
        return RunHandle(run, self._store, self._clock, self._monotonic)

    def _insert(self, connection: sqlite3.Connection, run: Run) -> None:
        with index.writing(connection):
            if run.resumed_from is not None and (
                index.one(connection, self.home, run.resumed_from) is None
            ):
                raise RunNotFound(
                    f"cannot resume run {run.resumed_from}: {self.home} no longer holds it"
                )
            index.put(connection, [run])

    def _store(self, run: Run) -> Run:
        """Write a running run's row whole (it comes back if the index was rebuilt)."""
        with self._folder.opened(create=True) as opened:
            assert opened is not None
            size = opened.size(recording_name(run.id))
            run = replace(run, bytes=size or 0)

            def put(connection: sqlite3.Connection) -> None:
                with index.writing(connection):
                    index.put(connection, [run])

            self._upkeep.use(opened, put)
        return run

    # ------------------------------------------------------------------ reading

    def runs(
        self, script: str | os.PathLike[str] | None = None, limit: int | None = None
    ) -> list[Run]:
        """The kept runs, newest first.

        Args:
            script: Only the runs of this script (a path, as given to `begin`).
            limit: At most this many.

        Raises:
            HistoryUnavailable: the index is missing or damaged and cannot be rebuilt.
        """
        script_path = None if script is None else os.path.abspath(os.fspath(script))
        empty: list[Run] = []
        found = self._read(
            lambda connection: index.select(
                connection, self.home, script_path=script_path, limit=limit
            ),
            empty,
        )
        now = self._clock()
        return [self._shown(run, now) for run in found]

    def get(self, run_id: str) -> Run | None:
        """The run `run_id`, or None."""
        if not is_run_id(run_id):
            return None
        found = self._read(lambda connection: index.one(connection, self.home, run_id), None)
        return None if found is None else self._shown(found, self._clock())

    def resolve(self, reference: str, script: str | os.PathLike[str] | None = None) -> Run:
        """The run a user's `reference` names.

        Args:
            reference: ``last``, ``last~N`` (among the runs of `script` when it is
                given), a run id, or the start of exactly one run id (among every run).
            script: The script whose runs ``last`` means.

        Raises:
            RunNotFound: nothing, or more than one run, matches; the message names what
                the history holds.
        """
        last = names_last(reference)
        pool = self.runs(script if last else None)
        shown = None if script is None or not last else os.path.basename(os.fspath(script))
        if shown is not None and not pool:
            others = sorted({run.script or "unknown scripts" for run in self.runs()})
            if others:
                raise RunNotFound(
                    f"no run of {shown} in {self.home} yet; it holds runs of "
                    f"{', '.join(others[:5])}" + (" and more" if len(others) > 5 else "")
                )
        return resolve(pool, reference, where=str(self.home), script=shown)

    def chain(self, run_id: str) -> list[Run]:
        """Run `run_id` and every run it resumed, transitively, newest first (a cycle
        in a damaged index ends it). When the last one's `Run.resumed_from` is not
        None, that run was deleted and the chain is incomplete.

        Raises:
            RunNotFound: there is no run `run_id`.
        """
        found = chain({run.id: run for run in self.runs()}, run_id)
        if not found:
            raise RunNotFound(f"no run {run_id!r} in {self.home}")
        return found

    # ------------------------------------------------------------------ deleting

    def prune(self, keep: int | None = None, max_bytes: int | None = None) -> list[Run]:
        """Delete the runs beyond the retention limits (never a running one, nor one a
        kept run's resume chain needs), and the rows of runs whose file is gone.

        Args:
            keep: Runs kept at most (None: `retention`'s).
            max_bytes: Bytes of recordings kept at most (None: `retention`'s).

        Returns:
            The runs deleted, oldest first.

        Raises:
            HistoryUnavailable: a file or row cannot be deleted.
        """
        retention = Retention(
            keep=self.retention.keep if keep is None else keep,
            max_bytes=self.retention.max_bytes if max_bytes is None else max_bytes,
        )
        with self._folder.opened(create=False) as opened:
            if opened is None:
                return []
            return self._upkeep.use(
                opened, lambda connection: self._prune(opened, connection, retention)
            )

    def _prune(
        self, opened: Opened, connection: sqlite3.Connection, retention: Retention
    ) -> list[Run]:
        with index.writing(connection):
            now = self._clock()
            vanished: list[Run] = []
            present: list[Run] = []
            for run in index.select(connection, self.home):
                shown = self._shown(run, now)
                size = opened.size(recording_name(run.id))
                if size is None and shown.status != "running":
                    vanished.append(shown)
                else:
                    present.append(replace(shown, bytes=size or 0))
            running = {run.id for run in present if run.status == "running"}
            gone = doomed(present, retention, running)
            for run in gone:
                opened.remove_recording(recording_name(run.id))
            index.delete(connection, [run.id for run in (*vanished, *gone)])
        return [*reversed(vanished), *gone]

    def delete(self, run_id: str) -> Run:
        """Delete one run: its recording and its row.

        Raises:
            RunNotFound: there is no run `run_id`.
            HistoryError: it is still running.
            HistoryUnavailable: it cannot be deleted.
        """
        with self._folder.opened(create=False) as opened:
            if opened is None or not is_run_id(run_id):
                raise RunNotFound(f"no run {run_id!r} in {self.home}")

            def delete(connection: sqlite3.Connection) -> Run:
                with index.writing(connection):
                    run = index.one(connection, self.home, run_id)
                    if run is None:
                        raise RunNotFound(f"no run {run_id!r} in {self.home}")
                    shown = self._shown(run, self._clock())
                    if shown.status == "running":
                        raise HistoryError(
                            f"run {run_id} is still running (process {run.pid}): stop it "
                            f"before deleting it"
                        )
                    opened.remove_recording(recording_name(run_id))
                    index.delete(connection, [run_id])
                return shown

            return self._upkeep.use(opened, delete)

    # ------------------------------------------------------------------ the index

    def rebuild_index(self) -> int:
        """Derive every row again from the recordings (rows of runs whose file is gone
        are dropped; a file that is not yet a recording keeps the row it has).

        Returns:
            How many runs the index holds.

        Raises:
            HistoryUnavailable: the index cannot be written.
        """
        with self._folder.opened(create=False) as opened:
            if opened is None:
                return 0
            return self._upkeep.rebuild(opened)

    def _read(self, use: Callable[[sqlite3.Connection], T], default: T) -> T:
        with self._folder.opened(create=False) as opened:
            if opened is None:
                return default
            return self._upkeep.use(opened, use)

    def _shown(self, run: Run, now: float) -> Run:
        """A row as it is now: a running run whose process is gone is crashed, and a
        run's size is its file's now (a running run's row has it as of its last update,
        an ended run's from before its recording was compacted; a running run's counts
        stay as of its last update, at most `UPDATE_EVERY` seconds old)."""
        with contextlib.suppress(OSError):
            run = replace(run, bytes=os.lstat(run.path).st_size)
        if run.status != "running":
            return run
        if process_alive(run.pid, run.process_start):
            duration = max(now - run.started_at, 0.0)
            return replace(run, duration=duration, rate=rate(run.counts, duration))
        duration = max(run.updated_at - run.started_at, 0.0)
        return replace(run, status="crashed", duration=duration, rate=rate(run.counts, duration))


def _reserve(opened: Opened, started_at: float) -> str:
    """A run id no other run has: its recording file is created here, exclusively."""
    for _ in range(_ID_TRIES):
        run_id = new_run_id(started_at)
        try:
            opened.create_recording(recording_name(run_id))
        except FileExistsError:
            continue
        return run_id
    raise HistoryUnavailable(opened.folder.home, "no free run id (too many runs this second)")


def _version() -> str:
    from antflow import __version__

    return __version__
