"""The run stream's records: plain, frozen values describing a run of pipelines.

One vocabulary for a run wherever it goes: a live monitor in the same process, a
recording file, a socket. Every record is a `msgspec.Struct` (frozen, JSON-encodable),
holds no live object (no exception, no pipeline, no user value: ids are JSON scalars or
a `ReprKey`, errors are type, message and traceback text), and times are Unix seconds of
the run's one clock (the engine's).

This module imports nothing from the engine, so readers (the UI, tools) can use it alone.
The on-disk encoding (compact event batches, interned names) is `antflow.runstream.fileformat`'s
business; what it decodes to is what is here.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any, Final, Literal

import msgspec

from antflow._safe import safe_repr

if TYPE_CHECKING:
    from collections.abc import Iterable

FORMAT: Final = "antflow-run"
"""The `Header.format` of every recording."""
VERSION: Final = 2
"""The major version written; a reader refuses a newer major version. Version 2 added
outcomes lines and the ``done_earlier`` event (issue 20), and packed event batches (an older reader
would pass every one over as a damaged line); version 1 files read as ever."""

MESSAGE_LIMIT: Final = 16_384
"""Characters of an error message a record keeps (a 20 MB message would be written into
the file several times over: its error record, every failure checkpoint, a traceback)."""
TRACEBACK_LIMIT: Final = 65_536
"""Characters of a traceback a record keeps: its start and its end (where the error is)."""
LOG_LINE_LIMIT: Final = 16_384
"""Characters of a log line a record keeps."""
STATUS_LIMIT: Final = 1_024
"""Characters of a worker's task status (`set_task_status`) a snapshot keeps."""
_ID_BITS: Final = 14_000
"""Larger ints than this are ids no JSON reader takes back (Python's own int-to-text
limit is 4,300 digits): kept as their repr."""


def clip(text: str, limit: int, *, keep_end: bool = False) -> str:
    """`text`, or at most `limit` characters of it with a note saying how much was cut
    (its start, or its start and its end with `keep_end`)."""
    if len(text) <= limit:
        return text
    note = f"\n… [{len(text) - limit:,} of {len(text):,} characters cut] …\n"
    if not keep_end:
        return text[:limit] + note
    head = limit // 4
    return text[:head] + note + text[len(text) - (limit - head) :]


class ReprKey(msgspec.Struct, frozen=True):
    """An item id that is not a JSON scalar (a tuple, an object...), kept as its repr."""

    repr: str

    def __str__(self) -> str:
        return self.repr


ItemKey = int | float | str | bool | None | ReprKey
"""An item id as the stream carries it: JSON scalars as they are, anything else a repr."""


def item_key(item_id: Any) -> ItemKey:
    """The stream's form of an item id: JSON scalars as they are (bool is an int), and
    what JSON has no number for (NaN, infinities, ints past thousands of digits), or no
    type at all, as a repr."""
    if item_id is None or isinstance(item_id, str) or type(item_id) is ReprKey:
        return item_id
    if isinstance(item_id, float):
        return item_id if math.isfinite(item_id) else ReprKey(float.__repr__(item_id))
    if isinstance(item_id, int) and item_id.bit_length() <= _ID_BITS:
        return item_id
    return ReprKey(safe_repr(item_id))


EventKind = Literal[
    # Item statuses (StatusEvent.status)
    "queued",
    "in_progress",
    "completed",
    "failed",
    "retrying",
    "skipped",
    "unfinished",
    "done_earlier",
    # Task events (TaskEvent.event_type)
    "start",
    "complete",
    "retry",
    "fail",
]
STATUS_KINDS: Final = frozenset(
    {
        "queued",
        "in_progress",
        "completed",
        "failed",
        "retrying",
        "skipped",
        "unfinished",
        "done_earlier",
    }
)
TASK_KINDS: Final = frozenset({"start", "complete", "retry", "fail"})


# ---------------------------------------------------------------------- run and pipelines


class _Record(msgspec.Struct, frozen=True, tag_field="record"):
    """Base of the records a stream carries: encoded as objects tagged ``record``."""


class _Command(msgspec.Struct, frozen=True, tag_field="command"):
    """Base of the commands: encoded as objects tagged ``command``."""


class StageConfig(msgspec.Struct, frozen=True):
    """A stage as configured (mirrors `antflow.StageInfo`)."""

    name: str
    workers: tuple[str, ...]
    """Worker names, in order."""
    tasks: tuple[str, ...]
    """Task names, in order."""
    retry: str
    """``per_task`` or ``per_stage``."""
    task_attempts: int
    task_wait_seconds: float
    stage_attempts: int
    queue_capacity: int
    concurrency_limits: dict[str, int] = {}
    has_skip_if: bool = False
    no_retry_on: tuple[str, ...] = ()
    """Exception types that fail an item at once, without more attempts."""
    durable: bool = False
    """Its outputs are kept for a resume (`antflow.Stage.durable`)."""


class Header(_Record, frozen=True, tag="header"):
    """The first record of a recording (and of a stream): what run this is."""

    format: str
    version: int
    antflow: str
    """The antflow version that produced the stream."""
    started_at: float
    argv: tuple[str, ...] = ()
    pid: int = 0
    script: str | None = None
    values: bool = False
    """Whether error records carry the item's value (as a repr)."""
    pipelines: tuple[PipelineStarted, ...] = ()
    """The pipelines already started when the stream began (more follow as records)."""
    history: dict[str, Any] | None = None
    """What the run history keeps of a kept run (`antflow.history.header`), if it is one."""
    script_sha256: str | None = None
    """The sha256 (hex) of the script's file when the run started, when the recorder knew
    the file (a kept run, ``antflow.record``, ``ANTFLOW_RECORD``): a comparison of two
    runs says whether the script changed between them."""


class PipelineStarted(_Record, frozen=True, tag="pipeline"):
    """A pipeline of the run started (again: a restart repeats it with the same number)."""

    pipeline: int
    """1 for the first pipeline the run started, 2 for the next..."""
    at: float
    stages: tuple[StageConfig, ...]
    total_items: int | None = None
    """Items the run expects in all, when it is known (``run(items)``)."""
    name: str = ""
    """A label for the pipeline ('' for the default ``pipeline-N``)."""
    version: str | int | None = None
    """`antflow.Pipeline`'s version, part of its fingerprint with the stage and task names."""


# ---------------------------------------------------------------------- what happens


class Event(_Record, frozen=True, tag="event"):
    """One item event: a status change or a task event, as the tracker records it."""

    pipeline: int
    """The pipeline number; 0 when unknown (a tracker shared by pipelines whose stage
    names coincide)."""
    at: float
    item: ItemKey
    kind: EventKind
    stage: str
    worker: str | None = None
    task: str | None = None
    """The task, for task events."""
    attempt: int = 1
    duration: float | None = None
    """Seconds the task attempt ran, on complete/retry/fail (when known)."""
    error: int | None = None
    """The `ErrorRecord.number` of the error this event carries (retry, fail, failed,
    retrying), if any."""


class ErrorRecord(_Record, frozen=True, tag="error"):
    """The error of one failed attempt (retried or final), as text."""

    number: int
    """Unique in the run, from 1; events refer to it."""
    pipeline: int
    at: float
    item: ItemKey
    stage: str
    task: str | None
    """The task that raised, or None (``skip_if``)."""
    attempt: int
    type: str
    """The exception class, qualified by its module (``scrape.ParseError``)."""
    message: str
    traceback: str
    value: str | None = None
    """Repr of the value the item entered the stage with, when values are recorded."""


def bounded_error(error: ErrorRecord) -> ErrorRecord:
    """`error` with its message and traceback within `MESSAGE_LIMIT` and
    `TRACEBACK_LIMIT` (records from elsewhere, a served job's)."""
    if len(error.message) <= MESSAGE_LIMIT and len(error.traceback) <= TRACEBACK_LIMIT:
        return error
    return msgspec.structs.replace(
        error,
        message=clip(error.message, MESSAGE_LIMIT),
        traceback=clip(error.traceback, TRACEBACK_LIMIT, keep_end=True),
    )


class StageRow(msgspec.Struct, frozen=True):
    """One stage's counts at a snapshot (the name is its config's, by position)."""

    queued: int
    running: int
    done: int
    failed: int
    skipped: int = 0
    retrying: int = 0
    """Items waiting in the queue for another stage attempt."""
    task_retries: int = 0
    """Task attempts that failed and were tried again."""
    retried: tuple[tuple[str, int], ...] = ()
    """`task_retries` by the error type those attempts raised (qualified names, as
    `ErrorRecord.type`), the most frequent first."""
    task_seconds: float = 0.0
    paused: bool = False
    next_items: tuple[ItemKey, ...] = ()
    """The first few items waiting in the queue."""
    p50: float | None = None
    """Median task time of finished items (seconds), when latency is measured."""
    p95: float | None = None
    max_seconds: float | None = None
    slowest: tuple[tuple[ItemKey, float], ...] = ()
    """(item, seconds) of the slowest finished items, slowest first."""
    histogram: tuple[tuple[float, int], ...] = ()
    """(upper bound in seconds, sampled count) of each non-empty bucket of task times."""
    limits: StageLimits | None = None
    """Its concurrency, rate-limit answers and timeouts; None for a stage with no
    timeout, rate limit or adaptive concurrency (issue 21)."""
    usage: Usage | None = None
    """What its tasks reported with `set_task_usage`, added up (None: nothing); its
    ``cost`` is the stage's spend so far (issue 22)."""


class WorkerRow(msgspec.Struct, frozen=True):
    """One worker at a snapshot (the name is its stage config's, by position)."""

    status: str
    """``idle``, ``busy`` or ``paused``."""
    holding: bool = False
    """Whether it holds an item (`item` is then meaningful, even when None)."""
    item: ItemKey = None
    since: float | None = None
    """When it began the current attempt."""
    task_status: str | None = None
    """What the running task said with `set_task_status`."""
    waiting_for: str | None = None
    """The task whose concurrency slot it waits for."""
    progress: tuple[float, float | None] | None = None
    """(done, total) the running task reported with `set_task_progress`."""
    paused: bool = False
    processed: int = 0
    failed: int = 0
    busy_seconds: float = 0.0
    last_active: float | None = None
    recent: tuple[ItemKey, ...] = ()
    usage: Usage | None = None
    """What the tasks it ran reported with `set_task_usage`, added up (None: nothing)."""


class Snapshot(_Record, frozen=True, tag="snapshot"):
    """A pipeline's whole state at one moment; taken in O(stages + workers)."""

    pipeline: int
    at: float
    running: bool
    paused: bool
    stopping: bool
    fed: int
    processed: int
    failed: int
    in_flight: int
    unfinished: int
    skipped: int = 0
    total_items: int | None = None
    stages: tuple[StageRow, ...] = ()
    workers: tuple[tuple[WorkerRow, ...], ...] = ()
    """Per stage, its workers in order."""
    abandoned: int = 0
    """Of `unfinished`, those the script's own shutdown left (not a `Stop` command): a
    script that breaks out of ``stream()`` early abandons the rest on purpose."""
    stopped: bool = False
    """A `Stop` command stopped this pipeline: items it was never fed count as not fed
    (without one, a pipeline the script ended early abandoned them)."""
    limits: tuple[LimitRow, ...] = ()
    """Every `antflow.RateLimit` its stages use, in the order they first use it."""
    done_earlier: int = 0
    """Items the script fed that a run this one resumes had completed: not run again,
    and not counted in `fed`; `total_items` counts them (items still to feed:
    ``total_items - fed - done_earlier``)."""
    budget: BudgetRow | None = None
    """Its `antflow.Budget`, if it has one (issue 22)."""


class LogLine(_Record, frozen=True, tag="log"):
    """A line the script printed or logged."""

    at: float
    text: str
    stream: str = "out"
    """``out``, ``err``, or a logging level name (``WARNING``...)."""


class Control(_Record, frozen=True, tag="control"):
    """A command someone gave the run, and what came of it."""

    at: float
    command: Command
    result: str
    """The notice shown for it ("Paused stage Fetch", "Retrying 3 items")."""


class Gap(_Record, frozen=True, tag="gap"):
    """Records were skipped here (a slow viewer fell behind); a snapshot follows."""

    at: float
    dropped: int


class PipelineTotals(msgspec.Struct, frozen=True):
    pipeline: int
    fed: int
    processed: int
    failed: int
    unfinished: int
    skipped: int = 0
    done_earlier: int = 0
    usage: Usage | None = None
    """What its tasks reported with `set_task_usage`, every stage's added up: its
    tokens and cost (None: nothing reported)."""


class End(_Record, frozen=True, tag="end"):
    """The last record of a clean close."""

    at: float
    reason: str
    """``finished``, ``stopped``, ``interrupted``, ``error``..."""
    totals: tuple[PipelineTotals, ...] = ()
    index: tuple[tuple[float, int], ...] = ()
    """(time, byte offset) of each group of snapshot lines, for seeking (files only)."""
    checkpoints: tuple[tuple[float, int, int], ...] = ()
    """(time, byte offset, pipeline) of each failure checkpoint line (files only)."""
    names: tuple[int, ...] = ()
    """Byte offsets of the name tables' lines (files only)."""
    pipelines: tuple[PipelineStarted, ...] = ()
    """Every pipeline of the run (files only): a reader needs no scan."""


# ---------------------------------------------------------------------- limits (issue 21)


class Usage(msgspec.Struct, frozen=True, omit_defaults=True):
    """What tasks reported with `set_task_usage`, added up (`antflow.TaskUsage`)."""

    input_tokens: int = 0
    """Tokens sent (prompt tokens)."""
    output_tokens: int = 0
    """Tokens received (completion tokens)."""
    cost: float | None = None
    """US dollars spent: as the tasks said (``cost=``), or priced by their model (a
    price file); None when no report had a cost."""
    model: str | None = None
    """The model named in the latest report that named one."""
    reports: int = 0
    """How many reports were added up."""
    unpriced: int = 0
    """Reports whose cost is unknown (no ``cost=``, no price for their model): `cost`
    leaves them out (issue 22)."""
    cached_input_tokens: int = 0
    """Of `input_tokens`, those read from the provider's prompt cache."""
    cache_write_tokens: int = 0
    """Of `input_tokens`, those written to the provider's prompt cache."""

    @property
    def total_tokens(self) -> int:
        return self.input_tokens + self.output_tokens


def added_usage(usages: Iterable[Usage | None]) -> Usage | None:
    """These usages added up (None: none of them reported anything): a pipeline's, from
    its stages' rows; a run's, from its pipelines'."""
    found = [usage for usage in usages if usage is not None]
    if not found:
        return None
    costs = [usage.cost for usage in found if usage.cost is not None]
    models = [usage.model for usage in found if usage.model]
    return Usage(
        input_tokens=sum(usage.input_tokens for usage in found),
        output_tokens=sum(usage.output_tokens for usage in found),
        cost=math.fsum(costs) if costs else None,
        model=models[-1] if models else None,
        reports=sum(usage.reports for usage in found),
        unpriced=sum(usage.unpriced for usage in found),
        cached_input_tokens=sum(usage.cached_input_tokens for usage in found),
        cache_write_tokens=sum(usage.cache_write_tokens for usage in found),
    )


class BudgetRow(msgspec.Struct, frozen=True, omit_defaults=True):
    """A pipeline's `antflow.Budget` at a snapshot (``pipeline.probe.budget()``): its
    limits, what was spent and is held, and whether the run is paused by it (issue 22)."""

    budget: int
    """Which Budget: the same number in the snapshots of every pipeline sharing it (one
    Budget given to several pipelines caps them together)."""
    usd: float | None = None
    """The limit in US dollars (None: no dollar limit)."""
    tokens: int | None = None
    """The limit in tokens (None: no token limit)."""
    spent_usd: float = 0.0
    """US dollars the calls reported (priced, or given as ``cost=``)."""
    spent_tokens: int = 0
    """Tokens the calls reported."""
    reserved_usd: float = 0.0
    """US dollars held by calls running that have not reported them yet."""
    reserved_tokens: int = 0
    """Tokens held by calls running that have not reported them yet."""
    paused: bool = False
    """The run is paused by its budget: calls wait for it and none is running that could
    give back what it reserved; only a raise lets it go on."""
    waiting: int = 0
    """Calls held back by the budget."""
    running: int = 0
    """Calls running that hold a reservation."""
    calls: int = 0
    """Calls let through so far."""
    unpriced: int = 0
    """Usage reports whose cost is unknown: the dollar limit cannot count them."""
    unreserved: int = 0
    """Calls let through without a dollar reservation (no estimate, or no price)."""
    reason: str | None = None
    """Why calls are held back, in a sentence (None when none is)."""


class StageLimits(msgspec.Struct, frozen=True, omit_defaults=True):
    """A stage's concurrency, rate-limit answers and timeouts at a snapshot (for a stage
    with a timeout, a rate limit, adaptive concurrency or a concurrency set by hand, or
    one that was answered with a rate limit)."""

    concurrency: int
    """Calls it lets run at once now (adapted, or as set)."""
    max_concurrency: int
    """The most `concurrency` may be: its workers, or what `SetConcurrency` set."""
    adaptive: bool = False
    """`concurrency` adapts to rate-limit answers (``Stage(adaptive=True)``)."""
    in_flight: int = 0
    """Calls holding a concurrency slot now (waiting for their turn or running)."""
    rate_limited_retries: int = 0
    """Calls answered with a rate limit and tried again (they use up no attempt)."""
    timeouts: int = 0
    """Attempts cut by its `task_timeout`."""
    rate_limited_last_minute: int = 0
    """Rate-limit answers over the last minute on its cool-down (its RateLimit's, which
    other stages may share)."""
    cooldown_until: float | None = None
    """When its calls may start again after a rate-limit answer (None: no cool-down)."""
    limit: str | None = None
    """The name of its `RateLimit`, if any."""
    task_timeout: float | None = None
    """Its `task_timeout` in seconds, if any."""


class LimitRow(msgspec.Struct, frozen=True, omit_defaults=True):
    """One `antflow.RateLimit` at a snapshot: its caps, and what was used of them."""

    name: str
    per_second: float | None = None
    """Its cap on calls per second, if any."""
    per_minute: float | None = None
    """Its cap on calls per minute, if any."""
    tokens_per_minute: float | None = None
    """Its cap on tokens per minute, if any."""
    calls_last_second: int = 0
    """Calls started over the last second."""
    calls_last_minute: int = 0
    """Calls started over the last minute."""
    tokens_last_minute: int = 0
    """Tokens of the calls started over the last minute (as reported, or as estimated
    for calls not reported yet)."""
    rate_limited_last_minute: int = 0
    """Rate-limit answers (HTTP 429) over the last minute, every stage's sharing it."""
    cooldown_until: float | None = None
    """When calls may start again after a rate-limit answer (None: no cool-down)."""
    waiting: int = 0
    """Calls waiting for their turn (paced, or cooling down)."""
    stages: tuple[str, ...] = ()
    """The pipeline's stages that use it."""


class ItemUsage(_Record, frozen=True, tag="usage"):
    """What an item's tasks reported with `set_task_usage` so far, added up over its
    stages and attempts (a recording writes one as an attempt that reported ends; the
    latest holds)."""

    pipeline: int
    at: float
    item: ItemKey
    usage: Usage


class SetConcurrency(_Command, frozen=True, tag="set-concurrency"):
    """Let at most `limit` calls of a stage run at once (``Pipeline.set_concurrency``);
    on an adaptive stage, also the most it adapts to."""

    pipeline: int
    stage: str
    limit: int


class RaiseBudget(_Command, frozen=True, tag="raise-budget"):
    """Raise the run's budget (``Budget.raise_by`` / ``raise_to``): a run paused by it
    goes on, nothing lost (issue 22)."""

    usd: float | None = None
    """US dollars: added to the dollar limit, or the new limit (see `add`)."""
    tokens: int | None = None
    """Tokens: added to the token limit, or the new limit (see `add`)."""
    add: bool = True
    """Raise by these amounts (True), or set the limits to them (False)."""
    pipeline: int | None = None
    """Only this pipeline's budget (None: every budget of the run)."""


# ---------------------------------------------------------------------- commands


class Pause(_Command, frozen=True, tag="pause"):
    """Pause the run (every pipeline), or one pipeline's stage or worker."""

    pipeline: int | None = None
    stage: str | None = None
    worker: str | None = None


class Resume(_Command, frozen=True, tag="resume"):
    """Undo a `Pause` at the same level."""

    pipeline: int | None = None
    stage: str | None = None
    worker: str | None = None


class Retry(_Command, frozen=True, tag="retry"):
    """Feed failed items back where they failed, in their own pipeline."""

    pipeline: int
    items: tuple[ItemKey, ...]


class Stop(_Command, frozen=True, tag="stop"):
    """Stop the run: gracefully (running items get a grace period) or at once."""

    force: bool = False


Command = Pause | Resume | Retry | Stop | SetConcurrency | RaiseBudget


# ---------------------------------------------------------------------- pulls


class StackFrame(msgspec.Struct, frozen=True):
    """One frame of a worker's await chain."""

    filename: str
    lineno: int
    function: str
    line: str = ""


class AwaitStack(msgspec.Struct, frozen=True):
    """Where a worker's task is suspended, outermost frame first."""

    frames: tuple[StackFrame, ...]
    awaiting: str = ""


class ItemLocationRecord(msgspec.Struct, frozen=True):
    """Where an item is now (see `antflow.Pipeline.locate`)."""

    stage: str
    state: str
    """``queued``, ``waiting for a retry``, ``running``, ``handing on`` or ``failed``."""
    worker: str | None = None
    value: str | None = None
    """Repr of the value it holds there, when the source may show values."""


class ItemDetail(msgspec.Struct, frozen=True):
    """One item's whole story in one pipeline: every event, every error, where it is."""

    pipeline: int
    item: ItemKey
    known: bool
    """Whether the source holds the item's history."""
    status: str | None = None
    stage: str | None = None
    events: tuple[Event, ...] = ()
    errors: tuple[ErrorRecord, ...] = ()
    location: ItemLocationRecord | None = None
    evicted: bool | None = False
    """True if a bounded history dropped it, None if it may have."""
    retryable: bool = False
    abandoned: bool = False
    """The script's own shutdown left it unfinished (see `Snapshot.abandoned`)."""
    also_in: tuple[int, ...] = ()
    """Other pipelines of the run that know an item with this id."""
    usage: Usage | None = None
    """What its tasks reported with `set_task_usage` (None: nothing, or not known)."""


Record = (
    Header
    | PipelineStarted
    | Event
    | ErrorRecord
    | Snapshot
    | LogLine
    | Control
    | Gap
    | End
    | ItemUsage
)
"""Every record a run stream carries."""
