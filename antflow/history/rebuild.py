"""A run's index row, derived again from its recording (the source of truth).

Read with `antflow.runstream.fileformat`'s reader, which passes over damage: a run that
ended cleanly is read from its header and end record; one without an end (it crashed,
or still runs) from its header and last snapshots. A file that is no recording yet (the
run had just begun) or no recording at all still gets a row, from its id, so retention
can see and delete it.
"""

from __future__ import annotations

import math
import os
from typing import TYPE_CHECKING, Final

from antflow.history.folder import RUNS
from antflow.history.header import read_header_fields
from antflow.history.run import (
    Counts,
    Run,
    RunStatus,
    end_status,
    recording_name,
    started_at_of,
)
from antflow.runstream.fileformat import Recording, RecordingError

if TYPE_CHECKING:
    from pathlib import Path

    from antflow.runstream.records import Snapshot

_SNAPSHOT_WINDOWS: Final = (10.0, 600.0, math.inf)
"""Seconds before a crashed recording's last record searched for its last snapshots:
a running pipeline is snapshotted every second, so the first window nearly always holds
them, and a wider one is read only for a run that idled."""


def run_from_recording(home: Path, run_id: str, descriptor: int) -> Run | None:
    """The row of run `run_id`, whose recording is open at `descriptor` (None: the
    file holds no readable header; see `unreadable_run`)."""
    path = home / RUNS / recording_name(run_id)
    fields = read_header_fields(descriptor)
    try:
        recording = Recording.open(_path_of(descriptor))
    except (RecordingError, OSError):
        return None
    with recording:
        header = recording.header
        started_at = fields.started_at if fields.started_at is not None else header.started_at
        if recording.end is not None:
            counts = Counts.from_totals(recording.end.totals, fields.done_earlier)
            status: RunStatus = end_status(recording.end.reason, counts)
            ended_at: float | None = recording.end.at
            duration: float | None = max(recording.end.at - started_at, 0.0)
        else:
            counts = Counts.from_snapshots(_last_snapshots(recording), fields.done_earlier)
            status = "running"
            ended_at = duration = None
        return Run(
            id=run_id,
            started_at=started_at,
            script=header.script,
            script_path=fields.script_path,
            argv=tuple(header.argv),
            pid=header.pid,
            process_start=fields.process_start,
            status=status,
            ended_at=ended_at,
            updated_at=recording.ended_at,
            counts=counts,
            duration=duration,
            rate=counts.done / duration if duration else None,
            resumed_from=fields.resumed_from,
            fingerprint=fields.fingerprint,
            path=path,
            bytes=os.fstat(descriptor).st_size,
            antflow=header.antflow,
        )


def _path_of(descriptor: int) -> str:
    """A path that opens the very file `descriptor` is open on (not whatever the file
    name means by the time the reader opens it)."""
    linux = f"/proc/self/fd/{descriptor}"
    return linux if os.path.exists(linux) else f"/dev/fd/{descriptor}"


def _last_snapshots(recording: Recording) -> list[Snapshot]:
    last = recording.ended_at
    for window in _SNAPSHOT_WINDOWS:
        found = recording.snapshots(last - window, last)
        if found:
            return found
    return []


def unreadable_run(home: Path, run_id: str, size: int) -> Run:
    """A run whose file holds no header: it crashed before writing one, or the file
    is not a recording. Shown crashed; retention deletes it in its turn."""
    started_at = started_at_of(run_id)
    path = home / RUNS / recording_name(run_id)
    return Run(
        id=run_id,
        started_at=started_at,
        script=None,
        script_path=None,
        argv=(),
        pid=0,
        process_start=None,
        status="crashed",
        ended_at=None,
        updated_at=started_at,
        counts=Counts(),
        duration=None,
        rate=None,
        resumed_from=None,
        fingerprint=None,
        path=path,
        bytes=size,
        antflow="",
    )
