"""Recordings: the run stream as a JSON Lines file (API fixed; implementation in progress).

Reading side used by replay (`antflow-tui replay FILE`): `Recording.open(path)`.
Memory does not grow with the file's length: the reader keeps a seek index (from the end
record, or built by one scan when the end record is missing) and reads what it needs.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

    from antflow.runstream.records import (
        ErrorRecord,
        Header,
        ItemDetail,
        ItemKey,
        PipelineStarted,
        Record,
        Snapshot,
    )


class RecordingError(Exception):
    """The file is not a recording this antflow can read; the message says why and what
    to do (a newer major version names the version and the antflow that wrote it)."""


@dataclass(frozen=True, slots=True)
class SeekPoint:
    """The state of a recorded run at one moment."""

    at: float
    snapshots: dict[int, Snapshot]
    """Per pipeline number, its latest snapshot at or before `at`."""
    failures: dict[int, list[ErrorRecord]]
    """Per pipeline number, the final error of each item failed at `at`, oldest first."""


class Recording:
    """A recording opened for reading."""

    header: Header
    complete: bool
    """False when the run did not close cleanly (no end record; a torn last line)."""
    started_at: float
    ended_at: float
    """Time of the last record."""

    @classmethod
    def open(cls, path: str | Path) -> Recording:
        """Open and index a recording.

        Raises:
            RecordingError: not a recording, or a newer major version.
        """
        raise NotImplementedError

    def pipelines(self) -> list[PipelineStarted]:
        raise NotImplementedError

    def records(self, start: float, stop: float) -> Iterator[Record]:
        """Every record with start < at <= stop, in file order (decoded, typed)."""
        raise NotImplementedError

    def seek(self, at: float) -> SeekPoint:
        """The state at `at`: nearest snapshot before it plus what followed (≤ 1 s for a
        recording of a million items)."""
        raise NotImplementedError

    def item(self, pipeline: int, item: ItemKey) -> ItemDetail:
        """One item's whole recorded story (a scan of the file)."""
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError
