"""Compact per-item event history: two float64 words per event.

A full history of a 3-stage run is ~15 events per item; as dataclass instances that is
~1.3 KB per item, so each item keeps an ``array('d')`` instead: word 0 holds the item's
current status kind, then (code, Unix time) pairs. Codes are integers below 2**53, which a
double holds exactly, so timestamps need no conversion on the hot path.

Events that happen together share a record: "in_progress + the first task starts", and
"the last task completes + completed (+ queued at the next stage)". A successful one-task
stage thus costs two records. Events are rebuilt only on request (`decode`).
"""

from __future__ import annotations

from array import array
from dataclasses import dataclass
from typing import Any, Final

from antflow._safe import safe_str
from antflow.types import STATUSES, TASK_EVENT_TYPES, StatusEvent, TaskEvent

# Event kinds: the seven statuses, the four task event types, then the combined records.
QUEUED: Final = 0
IN_PROGRESS: Final = 1
COMPLETED: Final = 2
FAILED: Final = 3
RETRYING: Final = 4
SKIPPED: Final = 5
UNFINISHED: Final = 6
"""A shutdown came before the item finished (terminal, until the item is fed again)."""
TASK_START: Final = 7
TASK_COMPLETE: Final = 8
TASK_RETRY: Final = 9
TASK_FAIL: Final = 10
BEGIN_PER_TASK: Final = 11
"""in_progress, then attempt 1 of the first task starts."""
BEGIN_PER_STAGE: Final = 12
"""in_progress, then the first task starts with the stage attempt as its attempt."""
FINISH: Final = 13
"""The last task completes (its attempt in the record), then the stage completes."""
FINISH_HANDOFF: Final = 14
"""As FINISH, then the item is queued at the next stage (see `Successors`)."""
DONE_EARLIER: Final = 15
"""A status: a run this one resumes completed the item, so it was not run again
(recorded at the last stage, terminal)."""
NO_STATUS: Final = -1

KIND_NAMES: Final[tuple[str, ...]] = (
    *STATUSES[: UNFINISHED + 1],
    *TASK_EVENT_TYPES,
    *("",) * (FINISH_HANDOFF - BEGIN_PER_TASK + 1),  # merged records: several events each
    "done_earlier",
)
"""The event a one-event record of each kind stands for, by kind."""
STATUS_KINDS: Final = (*range(UNFINISHED + 1), DONE_EARLIER)
"""The kinds that are statuses, in `antflow.types.STATUSES` order."""
KIND_OF: Final = dict(zip(STATUSES, STATUS_KINDS, strict=True))
"""A status's kind."""
STATUS_OF: Final = {kind: status for status, kind in KIND_OF.items()}
"""A status kind's name."""
# Code layout, low bits first: kind 4 | stage 12 | worker 16 | task 10 | attempt 11 = 53
# bits, the integers a double represents exactly.
STAGE_SHIFT: Final = 4
WORKER_SHIFT: Final = 16
TASK_SHIFT: Final = 32
ATTEMPT_SHIFT: Final = 42
STAGE_MASK: Final = (1 << 12) - 1
WORKER_MASK: Final = (1 << 16) - 1
TASK_MASK: Final = (1 << 10) - 1
MAX_ATTEMPT: Final = (1 << 11) - 1
ATTEMPT_ONE: Final = 1 << ATTEMPT_SHIFT


def base_code(stage_id: int, worker_id: int) -> int:
    """The part of a code fixed for one worker (or for no worker: `worker_id` 0)."""
    return (stage_id << STAGE_SHIFT) | (worker_id << WORKER_SHIFT)


def attempt_bits(attempt: int) -> int:
    return (attempt if attempt < MAX_ATTEMPT else MAX_ATTEMPT) << ATTEMPT_SHIFT


_EMPTY_LOG: Final = array("d", (NO_STATUS,))


def new_log() -> array[float]:
    # Copying a one-word template is ~6x cheaper than building an array from a tuple.
    return _EMPTY_LOG.__copy__()


@dataclass(frozen=True, slots=True)
class ErrorNote:
    """A new attempt error, as an error sink (a recorder's, a run stream's) receives it."""

    item_id: Any
    exception: BaseException
    traceback: str
    code: int
    """The code of the record that carried it (stage, worker, task, attempt)."""
    timestamp: float


@dataclass(frozen=True, slots=True)
class AttemptError:
    """The error of one failed attempt, kept for drill-down."""

    position: int
    """Index of the record in the item's log that carried it."""
    exception: BaseException
    """The exception object."""
    traceback: str
    """Its formatted traceback."""


class NameTable:
    """Interns stage, worker and task names to small ids (0 means none)."""

    __slots__ = ("_ids", "kind", "limit", "names")

    def __init__(self, kind: str, limit: int) -> None:
        self.kind = kind
        self.limit = limit
        self.names: list[str | None] = [None]
        self._ids: dict[str, int] = {}

    def id_of(self, name: str | None) -> int:
        if name is None:
            return 0
        found = self._ids.get(name)
        if found is None:
            found = len(self.names)
            if found > self.limit:
                raise ValueError(
                    f"a StatusTracker follows at most {self.limit:,} distinct {self.kind} names;"
                    f" give each pipeline its own tracker"
                )
            self._ids[name] = found
            self.names.append(name)
        return found


class Successors:
    """Which stage follows which, so one record can say "queued at the next stage".

    The first pipeline to register a stage name fixes its successor; a later pipeline
    whose same-named stage leads elsewhere records its hand-offs separately instead.
    """

    __slots__ = ("_next",)

    def __init__(self) -> None:
        self._next: dict[int, int] = {}

    def register(self, stage_id: int, next_stage_id: int) -> bool:
        """Record that `next_stage_id` follows `stage_id`; False if another already does."""
        return self._next.setdefault(stage_id, next_stage_id) == next_stage_id

    def after(self, stage_id: int) -> int:
        return self._next.get(stage_id, 0)


@dataclass(slots=True)
class _Record:
    """One record's fields, unpacked."""

    item_id: Any
    kind: int
    stage_id: int
    stage: str | None
    worker: str | None
    task_id: int
    attempt: int
    timestamp: float
    error: BaseException | None
    duration: float | None = None
    """The task attempt's duration when the record came with it (live tails)."""


class _Decoder:
    """Turns records back into events, pairing task starts with their ends for durations."""

    def __init__(self, stages: NameTable, tasks: NameTable, successors: Successors) -> None:
        self.stages = stages
        self.tasks = tasks
        self.successors = successors
        self.started: dict[tuple[int, int], float] = {}
        self.stage_attempt = 1

    def status(self, record: _Record, status: int, attempt: int) -> StatusEvent:
        error = record.error if status in (FAILED, RETRYING) else None
        return StatusEvent(
            record.item_id,
            record.stage,
            STATUS_OF[status],
            record.worker,
            record.timestamp,
            status_metadata(status, attempt, error),
        )

    def task(self, record: _Record, event_type: int, attempt: int) -> TaskEvent:
        key = (record.task_id, attempt)
        duration = None
        if event_type == TASK_START:
            self.started[key] = record.timestamp
        elif key in self.started:
            duration = record.timestamp - self.started.pop(key)
        if event_type != TASK_START and record.duration is not None:
            duration = record.duration
        return TaskEvent(
            record.item_id,
            record.stage or "",
            self.tasks.names[record.task_id] or "",
            record.worker or "",
            TASK_EVENT_TYPES[event_type - TASK_START],
            attempt,
            record.timestamp,
            record.error if event_type in (TASK_RETRY, TASK_FAIL) else None,
            duration,
        )

    def events(self, record: _Record) -> list[StatusEvent | TaskEvent]:
        kind = record.kind
        if kind in (BEGIN_PER_TASK, BEGIN_PER_STAGE):
            self.stage_attempt = record.attempt
            first_attempt = 1 if kind == BEGIN_PER_TASK else record.attempt
            return [
                self.status(record, IN_PROGRESS, record.attempt),
                self.task(record, TASK_START, first_attempt),
            ]
        if kind in (FINISH, FINISH_HANDOFF):
            events: list[StatusEvent | TaskEvent] = [
                self.task(record, TASK_COMPLETE, record.attempt),
                self.status(record, COMPLETED, self.stage_attempt),
            ]
            if kind == FINISH_HANDOFF:
                next_stage = self.stages.names[self.successors.after(record.stage_id)]
                events.append(
                    StatusEvent(record.item_id, next_stage, "queued", None, record.timestamp, {})
                )
            return events
        if kind < TASK_START or kind == DONE_EARLIER:
            if kind == IN_PROGRESS:
                self.stage_attempt = record.attempt
            return [self.status(record, kind, record.attempt)]
        return [self.task(record, kind, record.attempt)]


def unpack(
    item_id: Any,
    code: int,
    timestamp: float,
    names: tuple[NameTable, NameTable, NameTable],
    error: BaseException | None = None,
    duration: float | None = None,
) -> _Record:
    stages, workers, _ = names
    stage_id = (code >> STAGE_SHIFT) & STAGE_MASK
    return _Record(
        item_id=item_id,
        kind=code & 0xF,
        stage_id=stage_id,
        stage=stages.names[stage_id],
        worker=workers.names[(code >> WORKER_SHIFT) & WORKER_MASK],
        task_id=(code >> TASK_SHIFT) & TASK_MASK,
        attempt=code >> ATTEMPT_SHIFT,
        timestamp=timestamp,
        error=error,
        duration=duration,
    )


def decode(
    item_id: Any,
    log: array[float],
    errors: list[AttemptError] | None,
    names: tuple[NameTable, NameTable, NameTable],
    successors: Successors,
) -> list[StatusEvent | TaskEvent]:
    """Rebuild an item's events from its log, oldest first, errors and durations attached.

    Args:
        item_id: The item.
        log: Its log.
        errors: Its attempt errors (matched to records by position).
        names: The stage, worker and task name tables.
        successors: Which stage follows which.
    """
    by_position = {error.position: error.exception for error in errors} if errors else {}
    decoder = _Decoder(names[0], names[2], successors)
    events: list[StatusEvent | TaskEvent] = []
    for position in range(1, len(log), 2):
        record = unpack(
            item_id, int(log[position]), log[position + 1], names, by_position.get(position)
        )
        events.extend(decoder.events(record))
    return events


RawRecord = tuple[Any, int, float, "float | None", "BaseException | None"]
"""(item id, code, timestamp, duration, error): one record as a live tail receives it."""


def decode_raw(
    records: list[RawRecord],
    names: tuple[NameTable, NameTable, NameTable],
    successors: Successors,
) -> list[StatusEvent | TaskEvent]:
    """Rebuild events from raw records of many items, in the order they were recorded."""
    decoder = _Decoder(names[0], names[2], successors)
    events: list[StatusEvent | TaskEvent] = []
    for item_id, code, timestamp, duration, error in records:
        events.extend(decoder.events(unpack(item_id, int(code), timestamp, names, error, duration)))
    return events


def status_metadata(kind: int, attempt: int, error: BaseException | None) -> dict[str, Any]:
    """The metadata a status event of `kind` carries (the same live and rebuilt)."""
    if kind == IN_PROGRESS:
        return {"attempt": attempt}
    if kind == FAILED:
        return {
            "error": "" if error is None else safe_str(error),
            "error_type": "" if error is None else type(error).__name__,
            "attempts": attempt,
        }
    if kind == RETRYING:
        return {
            "retry": True,
            "attempt": attempt,
            "error": "" if error is None else safe_str(error),
            "error_type": "" if error is None else type(error).__name__,
        }
    return {}
