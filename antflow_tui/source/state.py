"""RunState: the one reducer from a source's frames to what the screens show.

Every source (live, replay, attach) feeds the same `RunState`, and every screen reads it: the
latest snapshot of each pipeline, the failed items and their counts by error type, the
run's status on the source's one clock. Each is kept here once; counts are derived from
snapshots when asked (`counts`), never kept a second time.
"""

from __future__ import annotations

from collections import Counter, OrderedDict
from dataclasses import dataclass, field
from itertools import count
from typing import TYPE_CHECKING, Final

from antflow.runstream.records import Event
from antflow_tui.accounting import RunCounts, run_counts
from antflow_tui.levels import INFO, event_level, line_level
from antflow_tui.rates import RateMeter
from antflow_tui.source.base import ERROR_MEMORY
from antflow_tui.trends import RunHistory

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping, Sequence

    from antflow.runstream.records import (
        ErrorRecord,
        LogLine,
        PipelineStarted,
        Snapshot,
        StageConfig,
    )
    from antflow_tui.source.base import Frame, RunStatus

RECENT_SECONDS: Final = 30.0
"""How far back `recent_rate` looks."""

_sequence = count()


@dataclass(frozen=True, slots=True)
class LogEntry:
    """One event log line: an event (with its error, if it carries one), a line the
    script printed, or a marker for events the log skipped."""

    event: Event | None = None
    error: ErrorRecord | None = None
    line: LogLine | None = None
    dropped: int = 0
    """For a marker: how many events were not shown."""
    rate: float | None = None
    """For a marker: events per second at the time."""
    gap: int = 0
    """For a divider: routine lines dropped between the kept lines above it and the rest."""
    seq: int = field(default_factory=lambda: next(_sequence))

    @property
    def level(self) -> int:
        """Its log level (`antflow_tui.levels`): an event's by its kind, a line's by its
        stream."""
        if self.event is not None:
            return event_level(self.event.kind)
        if self.line is not None:
            return line_level(self.line.stream)
        return INFO

    @property
    def at(self) -> float | None:
        if self.event is not None:
            return self.event.at
        return None if self.line is None else self.line.at

    @property
    def pipeline(self) -> int | None:
        """The event's pipeline number (None: not an event, or not known)."""
        if self.event is None or not self.event.pipeline:
            return None
        return self.event.pipeline


def short_type(name: str) -> str:
    """``scrape.ParseError`` -> ``ParseError``: a panel column has no room for modules."""
    return name.rsplit(".", 1)[-1]


class RunState:
    """Everything the screens show about a run, updated one `Frame` at a time."""

    def __init__(self, *, error_memory: int = ERROR_MEMORY) -> None:
        self.status: RunStatus | None = None
        self.pipelines: dict[int, PipelineStarted] = {}
        self.snapshots: dict[int, Snapshot] = {}
        self._failures: dict[int, tuple[ErrorRecord, ...]] = {}
        self.failures: Sequence[ErrorRecord] = ()
        """Every pipeline's failed items, oldest first (a new list whenever one changes)."""
        self.failure_counts: dict[str, int] = {}
        """`failures` by error type (qualified names)."""
        self.retried: Sequence[ErrorRecord] = ()
        """The errors of failed attempts tried again (transient errors: no item failed
        for them), oldest first: the recent ones the state remembers, apart from the
        failed items' final errors. The snapshots count them all (`StageRow.retried`)."""
        self._errors: OrderedDict[int, ErrorRecord] = OrderedDict()
        self._error_memory = error_memory
        self._event_rate = RateMeter()
        self._events_seen = 0
        self.frames = 0
        """Frames applied so far."""
        self.history = RunHistory()
        """Every stage's throughput and queue depth over the last minutes."""
        self.history_rate: float | None = None
        """Items ending per second over the last `RECENT_SECONDS` of the latest frame that
        brought earlier snapshots (an attach, a replay's jump): where a rate starts from,
        instead of from nothing."""

    # ---------------------------------------------------------------- reducing

    def apply(self, frame: Frame) -> list[LogEntry]:
        """Take in one frame; returns the new event log lines, oldest first (a marker for
        skipped events first)."""
        self.frames += 1
        self.status = frame.status
        if frame.reset:
            # A replay jumped (back, perhaps before some pipeline started): start over.
            self.pipelines.clear()
            self.snapshots.clear()
            self._errors.clear()
            self._event_rate = RateMeter()
            self.history.reset()
            self.history_rate = None
        for started in frame.pipelines:
            self.pipelines[started.pipeline] = started
        if frame.history:
            self.history_rate = recent_rate((*frame.history, *frame.snapshots.values()))
        for snapshot in (*frame.history, *frame.snapshots.values()):
            config = self.pipelines.get(snapshot.pipeline)
            if config is not None:
                self.history.observe(config, snapshot)
        self.snapshots.update(frame.snapshots)
        for error in frame.errors:
            self._remember(error)
        if frame.failures is not None:
            self._set_failures(frame.failures, replace=frame.reset)
        elif frame.reset:
            self._set_failures({}, replace=True)
        if frame.errors or frame.failures is not None or frame.reset:
            self._set_retried()
        self._events_seen += len(frame.events) + frame.dropped
        rate = self._event_rate.update(self._events_seen, frame.status.now)
        timed: list[tuple[float, Event | LogLine]] = [(event.at, event) for event in frame.events]
        timed.extend((line.at, line) for line in frame.logs)
        # Events and printed lines come by different paths: merge them by time. The entries
        # are made after, so their `seq` runs in log order (the log relies on it).
        timed.sort(key=lambda pair: pair[0])
        entries = [LogEntry(dropped=frame.dropped, rate=rate)] if frame.dropped else []
        for _, record in timed:
            if isinstance(record, Event):
                entries.append(LogEntry(event=record, error=self.error(record.error)))
            else:
                entries.append(LogEntry(line=record))
        return entries

    def _remember(self, error: ErrorRecord) -> None:
        self._errors[error.number] = error
        while len(self._errors) > self._error_memory:
            self._errors.popitem(last=False)

    def _set_failures(
        self, failures: Mapping[int, tuple[ErrorRecord, ...]], *, replace: bool
    ) -> None:
        if replace:
            self._failures = {}
        self._failures.update(failures)
        merged: list[ErrorRecord] = []
        for number in sorted(self._failures):
            merged.extend(self._failures[number])
        if len(self._failures) > 1:
            merged.sort(key=lambda error: error.at)
        self.failures = merged
        self.failure_counts = dict(Counter(error.type for error in merged))

        for error in merged:
            self._remember(error)

    def _set_retried(self) -> None:
        final = {error.number for error in self.failures}
        self.retried = [
            error
            for error in self._errors.values()
            if error.number and error.number not in final and error.task is not None
        ]

    # ---------------------------------------------------------------- reading

    def error(self, number: int | None) -> ErrorRecord | None:
        """A recent error record by its number (None: unknown or long gone)."""
        return None if number is None else self._errors.get(number)

    @property
    def newest(self) -> int | None:
        """The number of the pipeline that started last."""
        return max(self.pipelines) if self.pipelines else None

    def pipeline_name(self, number: int) -> str:
        started = self.pipelines.get(number)
        name = "" if started is None else started.name
        return name or f"pipeline-{number}"

    def stage_configs(self, pipeline: int) -> tuple[StageConfig, ...]:
        started = self.pipelines.get(pipeline)
        return () if started is None else started.stages

    def failures_of(self, pipeline: int | None) -> Sequence[ErrorRecord]:
        """One pipeline's failed items (None: every pipeline's), oldest first."""
        if pipeline is None:
            return self.failures
        return self._failures.get(pipeline, ())

    def counts(
        self, pipelines: Iterable[int] | None = None, *, in_flight_unfinished: bool = False
    ) -> RunCounts:
        """Where every item stands (None: the whole run; the numbers every screen shows)."""
        numbers = self.snapshots if pipelines is None else pipelines
        snapshots = [self.snapshots[n] for n in numbers if n in self.snapshots]
        whole = pipelines is None
        known = self.status.known_total if whole and self.status is not None else None
        return run_counts(snapshots, known_total=known, in_flight_unfinished=in_flight_unfinished)

    @property
    def running(self) -> bool:
        """Some pipeline runs."""
        return any(snapshot.running for snapshot in self.snapshots.values())


def recent_rate(snapshots: Iterable[Snapshot]) -> float | None:
    """Items that ended (completed, failed or skipped) per second over the last
    `RECENT_SECONDS` of these snapshots, every pipeline's added up (None: too little)."""
    by_pipeline: dict[int, list[Snapshot]] = {}
    for snapshot in snapshots:
        by_pipeline.setdefault(snapshot.pipeline, []).append(snapshot)
    total: float | None = None
    for taken in by_pipeline.values():
        taken.sort(key=lambda snapshot: snapshot.at)
        last = taken[-1]
        first = next(s for s in taken if s.at >= last.at - RECENT_SECONDS)
        if last.at - first.at <= 0:
            continue
        ended = (last.processed + last.failed) - (first.processed + first.failed)
        total = (total or 0.0) + max(ended, 0) / (last.at - first.at)
    return total
