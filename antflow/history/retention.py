"""Which runs retention deletes: the oldest beyond the limits, except those still needed.

Pure: given every run newest first, it returns the ones to delete, so the rules are
tested on hand-made runs. The newest runs are kept while both limits hold (count and
bytes); from the first run that breaks one, every older run is a candidate. Never
deleted: a running run, and any run in the resume chain of a kept one (a resume needs
every run of its chain: the completed set is their union). The newest run is kept
whatever its size, so a run never deletes itself.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from antflow.history.resolve import chain

if TYPE_CHECKING:
    from collections.abc import Collection, Sequence

    from antflow.history.run import Run
    from antflow.history.settings import Retention


def doomed(runs: Sequence[Run], retention: Retention, running: Collection[str]) -> list[Run]:
    """The runs to delete, oldest first.

    Args:
        runs: Every run, newest first, with its size on disk as it is now.
        retention: The limits.
        running: The ids of the runs whose process is alive.
    """
    kept: list[Run] = []
    candidates: list[Run] = []
    total = 0
    full = False
    for run in runs:
        if run.id in running:
            kept.append(run)
            total += run.bytes
            continue
        fits = len(kept) < max(retention.keep, 1) and (
            total + run.bytes <= retention.max_bytes or not kept
        )
        if full or not fits:
            full = True
            candidates.append(run)
            continue
        kept.append(run)
        total += run.bytes
    by_id = {run.id: run for run in runs}
    needed = {older.id for run in kept for older in chain(by_id, run.id)}
    return [run for run in reversed(candidates) if run.id not in needed]
