"""The export of a run fed by records (a recording, an attached job): what the app has seen.

Such a source holds no more than its frames brought, so its export is the app's one state
(`RunState`) written out: the counts, and every failed item with its error (and its value,
as a repr, when the run recorded values). The live run writes its own, fuller export from
the engine (`antflow_tui.live.export`).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from antflow_tui.cost import run_usage
from antflow_tui.export import ExportRecord, header_line, recorded_failed_line, write_export

if TYPE_CHECKING:
    from collections.abc import Iterator

    from antflow_tui.source.state import RunState


def export_seen(path: Path, seen: RunState) -> int:
    """Write the counts and the failed items `seen` holds to `path`; returns the number of
    items written."""
    started = [seen.pipelines[number] for number in sorted(seen.pipelines)]
    names = [
        one.name or ("pipeline" if len(started) == 1 else f"pipeline-{one.pipeline}")
        for one in started
    ]
    title = seen.status.title if seen.status is not None else ""

    def lines() -> Iterator[ExportRecord]:
        usage = run_usage(seen.snapshots.values())
        yield header_line(seen.counts(), script=title, pipelines=names, usage=usage)
        for one, name in zip(started, names, strict=True):
            for failure in seen.failures_of(one.pipeline):
                yield recorded_failed_line(name, failure)

    return write_export(Path(path), lines())
