"""A kept run as the history lists it, and the counts a run reports.

Run ids sort by start time and never collide across processes: the local start time to
the second (what a user reads and types) and four random hex digits, made unique by
creating the run's file with ``O_EXCL``.
"""

from __future__ import annotations

import re
import secrets
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final, Literal

if TYPE_CHECKING:
    from collections.abc import Iterable
    from pathlib import Path

    from antflow.runstream.records import PipelineTotals, Snapshot

RunStatus = Literal["running", "finished", "failed", "stopped", "crashed"]
"""``running``: its process is alive (same PID, same process start time); ``crashed``:
its process is gone and the run has no end (killed, out of memory, power lost)."""
EndStatus = Literal["finished", "failed", "stopped"]
"""How a run that ended cleanly ended (see `end_status`)."""

RUN_ID: Final = re.compile(r"\A\d{8}-\d{6}-[0-9a-f]{4}\Z")
RECORDING_SUFFIX: Final = ".jsonl"


def new_run_id(started_at: float) -> str:
    """A fresh run id: ``20261205-064102-3f9a`` (local start time, then random)."""
    stamp = time.strftime("%Y%m%d-%H%M%S", time.localtime(started_at))
    return f"{stamp}-{secrets.token_hex(2)}"


def is_run_id(text: str) -> bool:
    """Whether `text` is a run id (anything else never names a file of the history)."""
    return RUN_ID.match(text) is not None


def recording_name(run_id: str) -> str:
    """The file name of a run's recording, in the history's ``runs`` folder."""
    return run_id + RECORDING_SUFFIX


def run_id_of(file_name: str) -> str | None:
    """The run id a file of the ``runs`` folder belongs to, or None (not a recording)."""
    if not file_name.endswith(RECORDING_SUFFIX):
        return None
    run_id = file_name.removesuffix(RECORDING_SUFFIX)
    return run_id if is_run_id(run_id) else None


def started_at_of(run_id: str) -> float:
    """The start time a run id says (to the second), for a run whose file tells nothing
    (0.0 for an id naming no real time, such as month 13)."""
    try:
        return time.mktime(time.strptime(run_id[:15], "%Y%m%d-%H%M%S"))
    except (ValueError, OverflowError):
        return 0.0


@dataclass(frozen=True, slots=True)
class Counts:
    """A run's items, summed over its pipelines."""

    fed: int = 0
    done: int = 0
    """Completed (left the last stage) in this run."""
    failed: int = 0
    skipped: int = 0
    unfinished: int = 0
    done_earlier: int = 0
    """Completed by the runs this one resumed, so not run again."""

    @classmethod
    def from_snapshots(cls, snapshots: Iterable[Snapshot], done_earlier: int = 0) -> Counts:
        """The counts of each pipeline's latest snapshot, summed."""
        latest = {snapshot.pipeline: snapshot for snapshot in snapshots}
        return cls(
            fed=sum(s.fed for s in latest.values()),
            done=sum(s.processed for s in latest.values()),
            failed=sum(s.failed for s in latest.values()),
            skipped=sum(s.skipped for s in latest.values()),
            unfinished=sum(s.unfinished for s in latest.values()),
            done_earlier=done_earlier,
        )

    @classmethod
    def from_totals(cls, totals: Iterable[PipelineTotals], done_earlier: int = 0) -> Counts:
        """The counts of an end record's totals, summed."""
        kept = list(totals)
        return cls(
            fed=sum(t.fed for t in kept),
            done=sum(t.processed for t in kept),
            failed=sum(t.failed for t in kept),
            skipped=sum(t.skipped for t in kept),
            unfinished=sum(t.unfinished for t in kept),
            done_earlier=done_earlier,
        )


def end_status(reason: str, counts: Counts) -> EndStatus:
    """How a run ended, from its end record's reason and its counts: ``failed`` when the
    script raised or an item failed, ``stopped`` when it was stopped or left items
    unfinished, else ``finished`` (the same rule as the app's exit status)."""
    if reason == "error":
        return "failed"
    if reason in ("stopped", "interrupted"):
        return "stopped"
    if counts.failed:
        return "failed"
    if counts.unfinished:
        return "stopped"
    return "finished"


@dataclass(frozen=True, slots=True)
class Run:
    """One kept run, as its index row says (the recording is the source of truth)."""

    id: str
    started_at: float
    """Unix time."""
    script: str | None
    """The script's file name (``job.py``), None when unknown."""
    script_path: str | None
    """The script's absolute path, None when unknown."""
    argv: tuple[str, ...]
    pid: int
    process_start: int | None
    """When the process started (clock ticks since boot, Linux), to tell a reused PID."""
    status: RunStatus
    ended_at: float | None
    """Unix time of its clean end; None while running or when it crashed."""
    updated_at: float
    """When its row was last written: a crashed run ended about then."""
    counts: Counts
    duration: float | None
    """Seconds from start to end (to now while running, to `updated_at` when crashed)."""
    rate: float | None
    """Items completed per second in this run."""
    resumed_from: str | None
    """The id of the run this one resumed."""
    fingerprint: str | None
    """The pipeline's fingerprint (stage and task names, its version), as the caller made it."""
    path: Path
    """Its recording."""
    bytes: int
    """Its recording's size on disk."""
    antflow: str
    """The antflow version that ran it."""
