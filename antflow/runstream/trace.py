"""A recording as a Chrome Trace Event file: one lane per worker, one slice per task
attempt, failures marked. Perfetto (ui.perfetto.dev) and chrome://tracing open it: a
free Gantt view of any recorded run.

Written as it is read, so memory holds only the attempts running at a time.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from antflow.runstream.records import ErrorRecord, Event, ReprKey

if TYPE_CHECKING:
    from collections.abc import Iterator
    from typing import TextIO

    from antflow.runstream.fileformat import Recording

_COLOURS: Final = {"complete": "good", "retry": "bad", "fail": "terrible"}
"""Perfetto's reserved colour names for the slice of each outcome."""


def trace_events(recording: Recording) -> Iterator[dict[str, Any]]:
    """The trace's events: lane names first, then one complete slice per task attempt."""
    lanes: dict[tuple[int, str], int] = {}
    for started in recording.pipelines():
        yield _meta("process_name", started.pipeline, 0, {"name": f"pipeline {started.pipeline}"})
        for stage in started.stages:
            for worker in stage.workers:
                tid = len(lanes) + 1
                lanes[(started.pipeline, worker)] = tid
                yield _meta("thread_name", started.pipeline, tid, {"name": worker})
    origin = recording.started_at
    open_attempts: dict[tuple[Any, ...], float] = {}
    errors: dict[int, ErrorRecord] = {}
    for record in recording.records():
        if isinstance(record, ErrorRecord):
            errors[record.number] = record
            continue
        if not isinstance(record, Event) or record.task is None or record.worker is None:
            continue
        key = (record.pipeline, _plain(record.item), record.stage, record.task, record.attempt)
        if record.kind == "start":
            open_attempts[key] = record.at
            continue
        began = open_attempts.pop(key, None)
        if began is None:
            continue
        tid = lanes.setdefault((record.pipeline, record.worker), len(lanes) + 1)
        args: dict[str, Any] = {
            "item": _plain(record.item),
            "stage": record.stage,
            "attempt": record.attempt,
            "outcome": record.kind,
        }
        error = errors.pop(record.error, None) if record.error is not None else None
        if error is not None:
            args["error"] = f"{error.type}: {error.message}"
        yield {
            "name": record.task,
            "cat": record.stage,
            "ph": "X",
            "ts": (began - origin) * 1e6,
            "dur": max(record.at - began, 0.0) * 1e6,
            "pid": record.pipeline,
            "tid": tid,
            "cname": _COLOURS.get(record.kind, "generic_work"),
            "args": args,
        }


def write_trace(recording: Recording, path: str | Path) -> int:
    """Write the trace as JSON to `path`; returns how many slices it holds.

    A file is written beside `path` and renamed over it at the end, so a failed write (a
    full disk) leaves no half trace and whatever `path` held stays whole; a link, a device
    or a pipe (`/dev/stdout`) is written straight.
    """
    target = Path(path)
    if target.is_symlink() or (target.exists() and not target.is_file()):
        # A link (/dev/stdout is one) is written through, never replaced by a file.
        with open(target, "w", encoding="utf-8") as out:
            return _write(recording, out)
    partial = target.with_name(f".{target.name}.partial")
    try:
        with open(partial, "w", encoding="utf-8") as out:
            slices = _write(recording, out)
        os.replace(partial, target)
    finally:
        partial.unlink(missing_ok=True)
    return slices


def _write(recording: Recording, out: TextIO) -> int:
    slices = 0
    out.write('{"displayTimeUnit":"ms","traceEvents":[\n')
    first = True
    for event in trace_events(recording):
        if not first:
            out.write(",\n")
        first = False
        out.write(json.dumps(event))
        slices += event["ph"] == "X"
    out.write("\n]}\n")
    return slices


def _meta(name: str, pid: int, tid: int, args: dict[str, Any]) -> dict[str, Any]:
    return {"name": name, "ph": "M", "pid": pid, "tid": tid, "args": args}


def _plain(item: Any) -> Any:
    return item.repr if isinstance(item, ReprKey) else item
