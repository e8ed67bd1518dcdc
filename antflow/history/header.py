"""What the history writes into a recording's header, and reads back from it.

The recording is the source of truth: the index can always be rebuilt from the runs'
files. What a `Header` already holds (start, argv, PID, script name, antflow version)
is read from it; what it lacks is one JSON object under the header's ``history`` key
(the recorder adds `header_fields` there), read back from the header's raw line so it
does not matter whether the `Header` struct declares it.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

if TYPE_CHECKING:
    from antflow.history.run import Run

HEADER_KEY: Final = "history"
"""The key of the header's object that the history owns."""
_HEADER_LIMIT: Final = 1 << 20
"""Longest header line read (as `antflow.runstream.fileformat`'s reader)."""


def header_fields(run: Run) -> dict[str, Any]:
    """What a run's recording header must hold under ``history`` for the index to be
    rebuilt from it (plain JSON values)."""
    return {
        "run_id": run.id,
        "started_at": run.started_at,
        "script_path": run.script_path,
        "fingerprint": run.fingerprint,
        "resumed_from": run.resumed_from,
        "process_start": run.process_start,
        "done_earlier": run.counts.done_earlier,
    }


@dataclass(frozen=True, slots=True)
class HeaderFields:
    """`header_fields` as read back; each None when missing or of the wrong type."""

    run_id: str | None = None
    started_at: float | None = None
    script_path: str | None = None
    fingerprint: str | None = None
    resumed_from: str | None = None
    process_start: int | None = None
    done_earlier: int = 0


def read_header_fields(descriptor: int) -> HeaderFields:
    """The history's fields of the header on a recording's first line (nothing when it
    has none or they are damaged: a hostile file gives wrong fields, never an error)."""
    try:
        first = os.pread(descriptor, _HEADER_LIMIT, 0).partition(b"\n")[0]
        raw = json.loads(first)
    except (OSError, ValueError, RecursionError):
        return HeaderFields()
    fields = raw.get(HEADER_KEY) if isinstance(raw, dict) else None
    if not isinstance(fields, dict):
        return HeaderFields()
    return HeaderFields(
        run_id=_text(fields.get("run_id")),
        started_at=_number(fields.get("started_at")),
        script_path=_text(fields.get("script_path")),
        fingerprint=_text(fields.get("fingerprint")),
        resumed_from=_text(fields.get("resumed_from")),
        process_start=_whole(fields.get("process_start")),
        done_earlier=max(_whole(fields.get("done_earlier")) or 0, 0),
    )


def _text(value: object) -> str | None:
    return value if isinstance(value, str) else None


def _whole(value: object) -> int | None:
    return value if type(value) is int else None


def _number(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    try:
        number = float(value)
    except OverflowError:
        return None
    return number if number == number and abs(number) != float("inf") else None
