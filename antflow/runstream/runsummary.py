"""A recorded run read whole in one pass: what a comparison of two runs needs of each.

`summarise` reads a recording once, through the reader's `Recording.scan` (so a damaged,
a torn or a compacted file reads as the replay reads it): event batches as columns into
each pipeline's `ItemColumns` (no event object is built), error records into their
groups (`antflow.runstream.grouping`: the app's ``c`` view's), and each pipeline's latest
snapshot. Failure checkpoints, outcomes, log and usage lines are passed over unread: the
events already say which items failed, and the snapshots what the stages reported.

Memory is a few arrays per item (about 27 bytes an item whose id is a small int; a dict
entry more for other ids) and one small record per error group, whatever the file's size.
"""

from __future__ import annotations

from array import array
from collections import defaultdict
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final

from antflow import _history as h
from antflow.runstream.filelines import Batch
from antflow.runstream.grouping import GroupKey, error_key
from antflow.runstream.itemcolumns import ItemColumns
from antflow.runstream.records import (
    End,
    ErrorRecord,
    Header,
    PipelineStarted,
    Snapshot,
    Usage,
)

if TYPE_CHECKING:
    from antflow.runstream.fileformat import Recording

_SCANNED: Final = ("batch", "error", "snapshot", "pipeline")
_STAGE_MASK: Final = h.STAGE_MASK
_UNKNOWN_STAGE: Final = "?"
_SPARSE: Final = 1 << 20
"""Error numbers stay an array's indexes while under 4 x the errors + this."""


class ErrorGroups:
    """Error record number -> its group, and each group's key and an example message.

    Numbers are given from 1 up in a run, so they index an array; a writer that numbers
    otherwise (a viewer's recording starts where it attached) falls back to a dict.
    """

    __slots__ = ("_by_key", "_by_number", "_far", "examples", "keys")

    def __init__(self) -> None:
        self.keys: list[GroupKey] = []
        """Each group's (error type, normalised message), by group index."""
        self.examples: list[str] = []
        """A message of each group as it was (the first one read)."""
        self._by_key: dict[GroupKey, int] = {}
        self._by_number = array("i")
        self._far: dict[int, int] = {}

    def add(self, error: ErrorRecord) -> None:
        """File an error record under its group."""
        key = error_key(error.type, error.message)
        group = self._by_key.get(key)
        if group is None:
            group = self._by_key[key] = len(self.keys)
            self.keys.append(key)
            self.examples.append(error.message)
        number = error.number
        numbers = self._by_number
        if 0 < number < 4 * len(numbers) + _SPARSE:
            if number >= len(numbers):
                numbers.frombytes(bytes(4 * (max(number + 1, 2 * len(numbers)) - len(numbers))))
            numbers[number] = group + 1
        else:
            self._far[number] = group + 1

    @classmethod
    def restored(
        cls, keys: list[GroupKey], examples: list[str], numbers: array[int], far: dict[int, int]
    ) -> ErrorGroups:
        """Groups from what `numbered` and their `keys` and `examples` held (a child
        process's reading, `antflow.runstream.summarywire`).

        Raises:
            ValueError: an example or a key missing, a number's group out of range.
        """
        if len(keys) != len(examples):
            raise ValueError("error groups without their examples")
        groups = (*numbers, *far.values())
        if groups and not 0 <= min(groups) <= max(groups) <= len(keys):
            raise ValueError("an error's group out of range")
        restored = cls()
        restored.keys = keys
        restored.examples = examples
        restored._by_key = {key: group for group, key in enumerate(keys)}
        restored._by_number = numbers
        restored._far = far
        return restored

    @property
    def numbered(self) -> tuple[array[int], dict[int, int]]:
        """Error number -> its group + 1 (0: none), as an array by number below some
        bound and a dict above it."""
        return self._by_number, self._far

    def example_of(self, key: GroupKey) -> str | None:
        """A message of the group `key` as it was (None: no such group)."""
        group = self._by_key.get(key)
        return None if group is None else self.examples[group]

    def group_of(self, number: int) -> int | None:
        """The group of the error record with this number (None: no such record read)."""
        numbers = self._by_number
        found = numbers[number] if 0 < number < len(numbers) else self._far.get(number, 0)
        return found - 1 if found else None


@dataclass(slots=True)
class RunSummary:
    """What one recorded run is, as a comparison reads it (see the module docstring)."""

    path: str
    header: Header
    pipelines: dict[int, PipelineStarted]
    """Every pipeline of the run, by number."""
    end: End | None
    """The end record of a clean close."""
    snapshots: dict[int, Snapshot] = field(default_factory=dict)
    """Each pipeline's latest snapshot."""
    items: dict[int, ItemColumns] = field(default_factory=dict)
    """Each pipeline's items (pipeline 0: events no pipeline could be told for)."""
    stage_names: list[str] = field(default_factory=lambda: [_UNKNOWN_STAGE])
    """The names `ItemColumns.stages` index."""
    errors: ErrorGroups = field(default_factory=ErrorGroups)
    first_event_at: float | None = None
    last_event_at: float | None = None
    complete: bool = False
    """The file ends with an end record (a clean close)."""
    damaged: bool = False
    """Lines were passed over as damaged."""
    torn: bool = False
    """The last line was cut short (a killed run)."""

    @property
    def history(self) -> dict[str, Any]:
        """The run history's fields of its header (empty: not a kept run)."""
        return self.header.history or {}

    @property
    def run_id(self) -> str | None:
        """Its id in the run history, if it is a kept run."""
        found = self.history.get("run_id")
        return found if isinstance(found, str) else None

    @property
    def script_sha256(self) -> str | None:
        """The sha256 of the script's file when the run started, if recorded."""
        found = self.header.script_sha256
        return found if isinstance(found, str) else None

    @property
    def duration(self) -> float | None:
        """Seconds from its first event to its last (None: no event)."""
        if self.first_event_at is None or self.last_event_at is None:
            return None
        return max(self.last_event_at - self.first_event_at, 0.0)

    def stage_usage(self, pipeline: int, stage: str) -> Usage | None:
        """What a stage's tasks reported with `set_task_usage`, as its latest snapshot
        says (None: nothing)."""
        snapshot = self.snapshots.get(pipeline)
        started = self.pipelines.get(pipeline)
        if snapshot is None or started is None:
            return None
        for config, row in zip(started.stages, snapshot.stages, strict=False):
            if config.name == stage:
                return row.usage
        return None


def summarise(recording: Recording) -> RunSummary:
    """Read a recording whole (one pass; see the module docstring)."""
    summary = RunSummary(
        path=recording.path,
        header=recording.header,
        pipelines={p.pipeline: p for p in recording.pipelines()},
        end=recording.end,
    )
    reader = _BatchReader(summary, recording)
    for record in recording.scan(_SCANNED):
        if isinstance(record, Batch):
            reader.take(record)
        elif isinstance(record, ErrorRecord):
            summary.errors.add(record)
        elif isinstance(record, Snapshot):
            summary.snapshots[record.pipeline] = record
        elif isinstance(record, PipelineStarted):
            summary.pipelines[record.pipeline] = record
    summary.complete = recording.complete
    summary.damaged = recording.damaged
    summary.torn = recording.torn
    return summary


class _BatchReader:
    """Routes each batch's records to their pipeline's columns."""

    def __init__(self, summary: RunSummary, recording: Recording) -> None:
        self._summary = summary
        self._recording = recording
        self._scopes: dict[int, tuple[list[ItemColumns | None], list[int]]] = {}
        self._names: dict[str, int] = {_UNKNOWN_STAGE: 0}
        numbers = sorted(summary.pipelines)
        self._lone = numbers[0] if len(numbers) == 1 else None
        """The one pipeline of a one-pipeline run: events of no known pipeline are its."""

    def take(self, batch: Batch) -> None:
        summary = self._summary
        if not batch.ids:
            return
        if summary.first_event_at is None:
            summary.first_event_at = batch.times[0]
        summary.last_event_at = max(summary.last_event_at or batch.times[-1], batch.times[-1])
        tables, stage_names = self._scope(batch.scope)
        codes = batch.codes
        lone = tables[0] if len(tables) == 1 else None
        if lone is not None:
            failures = self._failures(batch, range(len(codes)), stage_names)
            lone.apply(batch.ids, codes, batch.times, failures, natural=batch.natural)
            return
        # Pipelines sharing a tracker: each record to its stage's pipeline.
        by_table: dict[int, list[int]] = defaultdict(list)
        unknown = len(tables) - 1
        for index, code in enumerate(codes):
            stage = (code >> h.STAGE_SHIFT) & _STAGE_MASK
            by_table[stage if stage < unknown else unknown].append(index)
        for stage, indexes in by_table.items():
            table = tables[stage]
            if table is None:
                continue
            ids, times = batch.ids, batch.times
            failures = self._failures(batch, indexes, stage_names)
            table.apply(
                [ids[i] for i in indexes],
                [codes[i] for i in indexes],
                [times[i] for i in indexes],
                failures,
            )

    def _failures(
        self, batch: Batch, indexes: range | list[int], stage_names: list[int]
    ) -> list[tuple[int, int, int]]:
        """(position among `indexes`, error number, stage name index) of the failed
        records there."""
        if not batch.errors:
            return []
        codes = batch.codes
        position = (
            {index: at for at, index in enumerate(indexes)} if isinstance(indexes, list) else None
        )
        found = []
        for index, number in batch.errors.items():
            if not 0 <= index < len(codes) or codes[index] & 15 != h.FAILED:
                continue
            at = index if position is None else position.get(index)
            if at is None:
                continue
            stage = (codes[index] >> h.STAGE_SHIFT) & _STAGE_MASK
            found.append((at, number, stage_names[stage] if stage < len(stage_names) else 0))
        return found

    def _scope(self, scope: int) -> tuple[list[ItemColumns | None], list[int]]:
        """The scope's columns by stage id (one entry: every record goes there; else one
        per stage id, then one for ids out of range) and its stage name indexes."""
        known = self._scopes.get(scope)
        if known is not None:
            return known
        stages = self._recording.event_stages(scope)
        stage_names = [self._name_index(name) for name, _ in stages]
        owners = {self._owner(pipeline) for name, pipeline in stages if name is not None}
        tables: list[ItemColumns | None]
        if len(owners) <= 1:
            owner = owners.pop() if owners else self._owner(0)
            tables = [self._table(owner)]
        else:
            tables = [
                None if name is None else self._table(self._owner(pipeline))
                for name, pipeline in stages
            ]
            tables.append(self._table(self._owner(0)))
        self._scopes[scope] = (tables, stage_names)
        return tables, stage_names

    def _owner(self, pipeline: int) -> int:
        return pipeline or self._lone or 0

    def _table(self, pipeline: int) -> ItemColumns:
        items = self._summary.items
        table = items.get(pipeline)
        if table is None:
            table = items[pipeline] = ItemColumns()
        return table

    def _name_index(self, name: str | None) -> int:
        if name is None:
            return 0
        index = self._names.get(name)
        if index is None:
            index = self._names[name] = len(self._summary.stage_names)
            self._summary.stage_names.append(name)
        return index
