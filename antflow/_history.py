"""Compact per-item event history: two int64 words per event.

A full history of a 3-stage run is ~15 events per item; as dataclass instances that is
~1.3 KB per item, so each item keeps an ``array('q')`` instead: word 0 holds the item's
current status kind, then (code, microseconds) pairs. Events are rebuilt only when someone
asks for them (`decode`).
"""

from __future__ import annotations

from array import array
from dataclasses import dataclass
from typing import Any, Final

from antflow.types import STATUSES, TASK_EVENT_TYPES, StatusEvent, TaskEvent

# Event kinds: the six statuses, then the four task event types.
QUEUED: Final = 0
IN_PROGRESS: Final = 1
COMPLETED: Final = 2
FAILED: Final = 3
RETRYING: Final = 4
SKIPPED: Final = 5
TASK_START: Final = 6
TASK_COMPLETE: Final = 7
TASK_RETRY: Final = 8
TASK_FAIL: Final = 9
TASK_KIND_BASE: Final = TASK_START
NO_STATUS: Final = -1

KIND_NAMES: Final = STATUSES + TASK_EVENT_TYPES
KIND_OF: Final = {name: kind for kind, name in enumerate(STATUSES)}

# Code layout, low bits first: kind 4 | stage 16 | worker 20 | task 12 | attempt 11.
_STAGE_SHIFT: Final = 4
_WORKER_SHIFT: Final = 20
_TASK_SHIFT: Final = 40
_ATTEMPT_SHIFT: Final = 52
_MAX_ATTEMPT: Final = (1 << 11) - 1

MICROS: Final = 1_000_000


def base_code(stage_id: int, worker_id: int) -> int:
    """The part of a code fixed for one worker (or for no worker: `worker_id` 0)."""
    return (stage_id << _STAGE_SHIFT) | (worker_id << _WORKER_SHIFT)


def attempt_bits(attempt: int) -> int:
    return min(attempt, _MAX_ATTEMPT) << _ATTEMPT_SHIFT


def task_bits(task_id: int) -> int:
    return task_id << _TASK_SHIFT


def new_log() -> array[int]:
    return array("q", (NO_STATUS,))


@dataclass(frozen=True, slots=True)
class AttemptError:
    """The error of one failed attempt, kept for drill-down."""

    position: int
    """Index of the event in the item's log that carried it."""
    exception: BaseException
    """The exception object."""
    traceback: str
    """Its formatted traceback."""


class NameTable:
    """Interns stage, worker and task names to small ids (0 means none)."""

    __slots__ = ("_ids", "names")

    def __init__(self) -> None:
        self.names: list[str | None] = [None]
        self._ids: dict[str, int] = {}

    def id_of(self, name: str | None) -> int:
        if name is None:
            return 0
        found = self._ids.get(name)
        if found is None:
            found = self._ids[name] = len(self.names)
            self.names.append(name)
        return found


def decode(
    item_id: Any,
    log: array[int],
    errors: list[AttemptError] | None,
    stages: NameTable,
    workers: NameTable,
    tasks: NameTable,
) -> list[StatusEvent | TaskEvent]:
    """Rebuild an item's events, oldest first, with errors and durations attached."""
    by_position = {error.position: error for error in errors} if errors else {}
    events: list[StatusEvent | TaskEvent] = []
    started: dict[tuple[int, int], float] = {}
    for position in range(1, len(log), 2):
        code = log[position]
        timestamp = log[position + 1] / MICROS
        kind = code & 0xF
        stage = stages.names[(code >> _STAGE_SHIFT) & 0xFFFF]
        worker = workers.names[(code >> _WORKER_SHIFT) & 0xFFFFF]
        attempt = code >> _ATTEMPT_SHIFT
        error = by_position.get(position)
        if kind < TASK_KIND_BASE:
            events.append(
                StatusEvent(
                    item_id,
                    stage,
                    STATUSES[kind],
                    worker,
                    timestamp,
                    status_metadata(kind, attempt, error.exception if error else None),
                )
            )
            continue
        task_id = (code >> _TASK_SHIFT) & 0xFFF
        key = (task_id, attempt)
        duration = None
        if kind == TASK_START:
            started[key] = timestamp
        elif key in started:
            duration = timestamp - started.pop(key)
        events.append(
            TaskEvent(
                item_id,
                stage or "",
                tasks.names[task_id] or "",
                worker or "",
                TASK_EVENT_TYPES[kind - TASK_KIND_BASE],
                attempt,
                timestamp,
                error.exception if error else None,
                duration,
            )
        )
    return events


def last_status_position(log: array[int]) -> int:
    """Index of the newest status event's code in `log`, or 0 when there is none."""
    for position in range(len(log) - 2, 0, -2):
        if log[position] & 0xF < TASK_KIND_BASE:
            return position
    return 0


def status_metadata(kind: int, attempt: int, error: BaseException | None) -> dict[str, Any]:
    """The metadata a status event of `kind` carries (the same live and rebuilt)."""
    if kind == IN_PROGRESS:
        return {"attempt": attempt}
    if kind == FAILED:
        return {
            "error": "" if error is None else str(error),
            "error_type": "" if error is None else type(error).__name__,
            "attempts": attempt,
        }
    if kind == RETRYING:
        return {
            "retry": True,
            "attempt": attempt,
            "error": "" if error is None else str(error),
            "error_type": "" if error is None else type(error).__name__,
        }
    return {}
