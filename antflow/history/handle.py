"""A run being kept: what the recorder and the app report its progress and end through.

Every write is the run's whole row, so a row lost with a rebuilt index comes back with
the next update. Updates are spaced (`UPDATE_EVERY`), so a caller may report on every
snapshot; one that meets an unwritable history raises once, and the run goes on without
further updates.
"""

from __future__ import annotations

import threading
from dataclasses import replace
from typing import TYPE_CHECKING, Any, Final

from antflow.history.errors import HistoryUnavailable
from antflow.history.header import header_fields

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

    from antflow.history.run import Counts, EndStatus, Run

UPDATE_EVERY: Final = 5.0
"""Seconds between two index writes of a running run's counts."""


class RunHandle:
    """A run being kept, from `History.begin`.

    Args:
        run: Its row as written by `begin`.
        store: Writes a row whole, and returns it as written (with its size on disk).
        clock: Unix time.
        monotonic: A monotonic clock, for spacing updates.
    """

    def __init__(
        self,
        run: Run,
        store: Callable[[Run], Run],
        clock: Callable[[], float],
        monotonic: Callable[[], float],
    ) -> None:
        self._run = run
        self._store = store
        self._clock = clock
        self._monotonic = monotonic
        self._written_at = monotonic()
        # The recorder's thread may update while the main thread finishes: a late
        # update must not write "running" over the end.
        self._lock = threading.Lock()
        self.failure: HistoryUnavailable | None = None
        """What an update met, after which updates are skipped (`finish` still tries)."""

    @property
    def run(self) -> Run:
        """The run's row as last written."""
        return self._run

    @property
    def run_id(self) -> str:
        return self._run.id

    @property
    def path(self) -> Path:
        """The recording file to write (created empty by `History.begin`)."""
        return self._run.path

    def header_fields(self) -> dict[str, Any]:
        """What the recording's header must hold under ``history`` for the index to be
        rebuilt from the file (see `antflow.history.header`)."""
        return header_fields(self._run)

    def update_counts(self, counts: Counts, *, force: bool = False) -> bool:
        """Report the running run's counts; written at most every `UPDATE_EVERY`
        seconds (unless `force`). A `Counts.done_earlier` of 0 keeps `begin`'s.

        Returns:
            Whether the index was written.

        Raises:
            HistoryUnavailable: the first time the index cannot be written; later
                updates then do nothing.
        """
        with self._lock:
            if self.failure is not None or self._run.status != "running":
                return False
            now = self._monotonic()
            if not force and now - self._written_at < UPDATE_EVERY:
                return False
            self._written_at = now
            at = self._clock()
            duration = max(at - self._run.started_at, 0.0)
            run = replace(
                self._run,
                counts=self._with_earlier(counts),
                updated_at=at,
                duration=duration,
                rate=rate(counts, duration),
            )
            try:
                self._run = self._store(run)
            except HistoryUnavailable as error:
                self.failure = error
                raise
            return True

    def finish(self, status: EndStatus, counts: Counts) -> Run:
        """Record how the run ended (`antflow.history.run.end_status` says it from an
        end record). A `Counts.done_earlier` of 0 keeps `begin`'s.

        Raises:
            HistoryUnavailable: the index cannot be written.
        """
        with self._lock:
            at = self._clock()
            duration = max(at - self._run.started_at, 0.0)
            run = replace(
                self._run,
                status=status,
                counts=self._with_earlier(counts),
                ended_at=at,
                updated_at=at,
                duration=duration,
                rate=rate(counts, duration),
            )
            self._run = self._store(run)
            return self._run

    def _with_earlier(self, counts: Counts) -> Counts:
        if counts.done_earlier or not self._run.counts.done_earlier:
            return counts
        return replace(counts, done_earlier=self._run.counts.done_earlier)


def rate(counts: Counts, duration: float) -> float | None:
    """Items completed per second over `duration` (None for no time)."""
    return counts.done / duration if duration > 0 else None
