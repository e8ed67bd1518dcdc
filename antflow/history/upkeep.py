"""Keeping the index usable: made on first use, rebuilt from the recordings when it is
missing, damaged, half made (a process died making it) or of another schema.

Making or rebuilding it takes the folder's lock, so one process does it while the others
wait, then find it ready. The recordings are read before the write transaction, so other
processes' writes wait only for the writing, not for the reading.
"""

from __future__ import annotations

import logging
import os
import sqlite3
from typing import TYPE_CHECKING, TypeVar

from antflow.history import index
from antflow.history.errors import HistoryUnavailable, damaged, unavailable
from antflow.history.rebuild import run_from_recording, unreadable_run
from antflow.history.run import Run, run_id_of

if TYPE_CHECKING:
    import contextlib
    from collections.abc import Callable

    from antflow.history.folder import Folder, Opened

logger = logging.getLogger(__name__)

T = TypeVar("T")


class Upkeep:
    """The index of one history folder, used and repaired.

    Args:
        folder: The history's folder.
        timeout: Seconds to wait for another process's write, or its repair.
    """

    def __init__(self, folder: Folder, timeout: float) -> None:
        self.folder = folder
        self.home = folder.home
        self.timeout = timeout

    def use(self, opened: Opened, use: Callable[[sqlite3.Connection], T]) -> T:
        """`use` run on the index, made or repaired first when it needs it.

        Raises:
            HistoryUnavailable: the index cannot be written (or made).
        """
        for _ in range(2):
            try:
                if opened.index_sound():
                    with self.connected() as connection:
                        if index.ready(connection):
                            return use(connection)
            except sqlite3.Error as error:
                if not damaged(error):
                    raise unavailable(self.home, error) from None
                logger.warning(
                    "the run history's index %s is damaged (%s): rebuilding it from the recordings",
                    self.folder.index_path,
                    error,
                )
            self._repair(opened)
        raise HistoryUnavailable(self.home, "its index could not be rebuilt; try again")

    def rebuild(self, opened: Opened) -> int:
        """Derive every row again from the recordings, on a usable index.

        Returns:
            How many runs the index holds.
        """
        self.use(opened, lambda connection: None)
        with opened.locked(self.timeout):
            try:
                with self.connected() as connection:
                    return self._fill(opened, connection, fresh=False)
            except sqlite3.Error as error:
                raise unavailable(self.home, error) from None

    def connected(self) -> contextlib.AbstractContextManager[sqlite3.Connection]:
        return index.connected(self.folder.index_path, self.timeout)

    def _repair(self, opened: Opened) -> None:
        """Make the index anew, unless another process did while this one waited."""
        with opened.locked(self.timeout):
            try:
                if opened.index_sound():
                    with self.connected() as connection:
                        if index.ready(connection):
                            return
            except sqlite3.Error as error:
                if not damaged(error):
                    raise unavailable(self.home, error) from None
            opened.remove_index()
            try:
                with self.connected() as connection:
                    index.create(connection)
                    self._fill(opened, connection, fresh=True)
            except sqlite3.Error as error:
                raise unavailable(self.home, error) from None

    def _fill(self, opened: Opened, connection: sqlite3.Connection, *, fresh: bool) -> int:
        """Write every recording's row; drop the rows of runs whose file is gone. A file
        that is not a recording yet keeps the row it has (its run has just begun)."""
        readable: dict[str, Run] = {}
        unreadable: dict[str, Run] = {}
        for name in opened.recordings():
            run_id = run_id_of(name)
            descriptor = None if run_id is None else opened.recording_descriptor(name)
            if run_id is None or descriptor is None:
                continue
            try:
                run = run_from_recording(self.home, run_id, descriptor)
                if run is None:
                    size = os.fstat(descriptor).st_size
                    unreadable[run_id] = unreadable_run(self.home, run_id, size)
                else:
                    readable[run_id] = run
            finally:
                os.close(descriptor)
        with index.writing(connection):
            existing = index.ids(connection)
            present = {run_id_of(name) for name in opened.recordings()}
            index.delete(connection, existing - present)
            index.put(connection, [run for run in readable.values() if run.id in present])
            new = present - existing
            index.put(connection, [run for run in unreadable.values() if run.id in new])
            if fresh:
                index.mark_ready(connection)
            return len(index.ids(connection))
