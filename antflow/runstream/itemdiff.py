"""Two runs' items matched by id: fixed, newly failed, still failing, newly slow.

Matching works on `ItemColumns` (slots, not objects): the categories hold slot numbers
in arrays, and `ItemChanges.row` builds the one row a screen or a JSON list shows, so a
million newly failed items cost a few megabytes until they are looked at.

Items are matched within the pipeline of the same number in each run (a run's first
pipeline with the other's first), by id.
"""

from __future__ import annotations

import heapq
import itertools
import operator
from array import array
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final, Literal

from antflow.runstream.itemcolumns import (
    ABSENT,
    COMPLETED,
    DONE_EARLIER,
    FAILED,
    STATUS_NAMES,
    ItemColumns,
)

if TYPE_CHECKING:
    from collections.abc import Iterator, Sequence

    from antflow.runstream.grouping import GroupKey
    from antflow.runstream.runsummary import RunSummary

ChangeKind = Literal["fixed", "newly_failed", "still_failing", "newly_slow"]
CHANGE_KINDS: Final[tuple[ChangeKind, ...]] = (
    "fixed",
    "newly_failed",
    "still_failing",
    "newly_slow",
)
SLOWER_BY: Final = 0.2
"""An item is newly slow when it took this much longer than before (a fifth)..."""
SLOWER_SECONDS: Final = 0.001
"""...and at least this many seconds longer."""
_DONE: Final = (COMPLETED, DONE_EARLIER)
_PRESENT: Final = bytes((0, *(1,) * 255))
"""A status byte -> 1 when an item is there (not `ABSENT`)."""


@dataclass(frozen=True, slots=True)
class ItemEnd:
    """How an item ended in one run."""

    status: str
    """``completed``, ``failed``, ``skipped``, ``unfinished``, ``in flight``, ``done
    earlier`` or ``absent`` (the run has no item with this id)."""
    stage: str | None = None
    """The stage it failed in (failed items)."""
    error: GroupKey | None = None
    """Its last error's group: (type, normalised message)."""
    seconds: float | None = None
    """The time its task attempts ran, added up (None: not finished)."""


@dataclass(frozen=True, slots=True)
class ItemChange:
    """One item whose outcome or time changed between run A and run B."""

    kind: ChangeKind
    pipeline: int
    item: Any
    """Its id, as the recordings hold it (a `ReprKey` for ids JSON has no form for)."""
    a: ItemEnd
    b: ItemEnd

    @property
    def same_error(self) -> bool | None:
        """For an item failing in both: whether its error's group is the same."""
        if self.kind != "still_failing":
            return None
        return self.a.error == self.b.error

    @property
    def added_seconds(self) -> float | None:
        if self.a.seconds is None or self.b.seconds is None:
            return None
        return self.b.seconds - self.a.seconds


@dataclass(slots=True)
class _Segment:
    """Items of one category in one pipeline: their slots in A and in B (-1: none)."""

    pipeline: int
    a: array[int] = field(default_factory=lambda: array("q"))
    b: array[int] = field(default_factory=lambda: array("q"))


@dataclass(slots=True)
class ItemChanges:
    """Every item whose outcome changed, and the newly slow ones, by category."""

    counts: dict[str, int]
    """Items by category (`CHANGE_KINDS`), and ``still_failing_same_error``,
    ``still_failing_other_error``, ``only_in_a``, ``only_in_b``, ``in_both``."""
    _a: RunSummary
    _b: RunSummary
    _segments: dict[ChangeKind, list[_Segment]]
    _keys: dict[tuple[str, int], Sequence[Any]] = field(default_factory=dict)

    def count(self, kind: ChangeKind) -> int:
        return self.counts[kind]

    def rows(self, kind: ChangeKind, limit: int | None = None) -> Iterator[ItemChange]:
        """The items of one category, in order (at most `limit`)."""
        shown = 0
        for segment in self._segments[kind]:
            for index in range(len(segment.a)):
                if limit is not None and shown >= limit:
                    return
                shown += 1
                yield self._row(kind, segment, index)

    def row(self, kind: ChangeKind, index: int) -> ItemChange:
        """The `index`-th item of one category (raises IndexError past the last)."""
        for segment in self._segments[kind]:
            if index < len(segment.a):
                return self._row(kind, segment, index)
            index -= len(segment.a)
        raise IndexError(index)

    def slots(self, kind: ChangeKind) -> Iterator[tuple[int, int, int]]:
        """(pipeline, slot in A, slot in B) of each item of one category (-1: none)."""
        for segment in self._segments[kind]:
            for slot_a, slot_b in zip(segment.a, segment.b, strict=True):
                yield segment.pipeline, slot_a, slot_b

    def _row(self, kind: ChangeKind, segment: _Segment, index: int) -> ItemChange:
        pipeline = segment.pipeline
        slot_a, slot_b = segment.a[index], segment.b[index]
        item = self._key("b", pipeline, slot_b) if slot_b >= 0 else self._key("a", pipeline, slot_a)
        return ItemChange(
            kind=kind,
            pipeline=pipeline,
            item=item,
            a=item_end(self._a, pipeline, slot_a),
            b=item_end(self._b, pipeline, slot_b),
        )

    def _key(self, side: str, pipeline: int, slot: int) -> Any:
        keys = self._keys.get((side, pipeline))
        if keys is None:
            summary = self._a if side == "a" else self._b
            keys = self._keys[(side, pipeline)] = summary.items[pipeline].key_list()
        return keys[slot]


def item_end(summary: RunSummary, pipeline: int, slot: int) -> ItemEnd:
    """How the item in `slot` of a pipeline ended in `summary` (-1: it has none)."""
    table = summary.items.get(pipeline)
    if table is None or slot < 0:
        return ItemEnd("absent")
    status = table.status[slot]
    if status != FAILED:
        return ItemEnd(STATUS_NAMES[status], seconds=table.seconds_of(slot))
    group = summary.errors.group_of(table.errors[slot])
    return ItemEnd(
        "failed",
        stage=summary.stage_names[table.stages[slot]],
        error=None if group is None else summary.errors.keys[group],
        seconds=table.seconds_of(slot),
    )


def diff_items(a: RunSummary, b: RunSummary, *, slow: int = 20) -> ItemChanges:
    """Match the items of two runs by id (pipeline by pipeline) and sort out what changed.

    Args:
        slow: How many newly slow items to keep: those that took the most time more
            (by `SLOWER_BY` and `SLOWER_SECONDS` at least).
    """
    segments: dict[ChangeKind, list[_Segment]] = {kind: [] for kind in CHANGE_KINDS}
    counts = dict.fromkeys(
        (*CHANGE_KINDS, "still_failing_same_error", "still_failing_other_error"), 0
    )
    counts.update(only_in_a=0, only_in_b=0, in_both=0)
    slowest: list[tuple[float, int, int, int]] = []
    empty = ItemColumns()
    for pipeline in sorted(set(a.items) | set(b.items)):
        table_a = a.items.get(pipeline, empty)
        table_b = b.items.get(pipeline, empty)
        found: dict[ChangeKind, _Segment] = {
            kind: _Segment(pipeline) for kind in CHANGE_KINDS if kind != "newly_slow"
        }
        if table_a.dense and table_b.dense:
            _match_dense(table_a, table_b, found, counts)
        else:
            _match_keys(table_a, table_b, found, counts)
        for kind, segment in found.items():
            if len(segment.a):
                segments[kind].append(segment)
        _same_errors(a, b, found["still_failing"], counts)
        for added, slot_a, slot_b in _slowest(table_a, table_b, slow):
            slowest.append((added, pipeline, slot_a, slot_b))
    for kind in ("fixed", "newly_failed", "still_failing"):
        counts[kind] = sum(len(segment.a) for segment in segments[kind])
    slowest.sort(key=lambda entry: -entry[0])
    # Newly slow items are shown slowest first, whatever their pipeline.
    segments["newly_slow"] = _ordered(slowest[:slow])
    counts["newly_slow"] = len(slowest[:slow])
    return ItemChanges(counts, a, b, segments)


def _ordered(slowest: list[tuple[float, int, int, int]]) -> list[_Segment]:
    """Consecutive entries of one pipeline share a segment (order kept)."""
    found: list[_Segment] = []
    for _added, pipeline, slot_a, slot_b in slowest:
        if not found or found[-1].pipeline != pipeline:
            found.append(_Segment(pipeline))
        found[-1].a.append(slot_a)
        found[-1].b.append(slot_b)
    return found


def _positions(status: array[int], size: int, code: int) -> list[int]:
    """The slots below `size` holding `code`, found by the bytes' own search."""
    data = status.tobytes()[:size]
    needle = bytes((code,))
    found: list[int] = []
    at = data.find(needle)
    while at >= 0:
        found.append(at)
        at = data.find(needle, at + 1)
    return found


def _match_dense(
    a: ItemColumns, b: ItemColumns, found: dict[ChangeKind, _Segment], counts: dict[str, int]
) -> None:
    """Both runs' ids are their slots: the slot is the id in both."""
    status_a, status_b = a.status, b.status
    size_a, size_b = a.size, b.size
    for slot in _positions(status_a, size_a, FAILED):
        other = status_b[slot] if slot < size_b else ABSENT
        if other in _DONE:
            _add(found["fixed"], slot, slot)
        elif other == FAILED:
            _add(found["still_failing"], slot, slot)
    for slot in _positions(status_b, size_b, FAILED):
        if (status_a[slot] if slot < size_a else ABSENT) != FAILED:
            present = slot < size_a and status_a[slot] != ABSENT
            _add(found["newly_failed"], slot if present else -1, slot)
    absent = bytes(1)
    common = min(size_a, size_b)
    data_a, data_b = status_a.tobytes(), status_b.tobytes()
    in_a = size_a - data_a[:size_a].count(absent)
    in_b = size_b - data_b[:size_b].count(absent)
    # A byte 1 per item present, as one big int each: AND and a bit count in C.
    present_a = int.from_bytes(data_a[:common].translate(_PRESENT), "little")
    present_b = int.from_bytes(data_b[:common].translate(_PRESENT), "little")
    both = (present_a & present_b).bit_count()
    counts["in_both"] += both
    counts["only_in_a"] += in_a - both
    counts["only_in_b"] += in_b - both


def _match_keys(
    a: ItemColumns, b: ItemColumns, found: dict[ChangeKind, _Segment], counts: dict[str, int]
) -> None:
    """Ids of any kind: looked up by key."""
    status_a, status_b = a.status, b.status
    both = 0
    for key, slot_a in a.items():
        slot_b = b.slot(key)
        if slot_b is None:
            counts["only_in_a"] += 1
            continue
        both += 1
        was, now = status_a[slot_a], status_b[slot_b]
        if was == FAILED:
            if now in _DONE:
                _add(found["fixed"], slot_a, slot_b)
            elif now == FAILED:
                _add(found["still_failing"], slot_a, slot_b)
        elif now == FAILED:
            _add(found["newly_failed"], slot_a, slot_b)
    for key, slot_b in b.items():
        if a.slot(key) is None:
            counts["only_in_b"] += 1
            if status_b[slot_b] == FAILED:
                _add(found["newly_failed"], -1, slot_b)
    counts["in_both"] += both


def _add(segment: _Segment, slot_a: int, slot_b: int) -> None:
    segment.a.append(slot_a)
    segment.b.append(slot_b)


def _same_errors(a: RunSummary, b: RunSummary, segment: _Segment, counts: dict[str, int]) -> None:
    table_a, table_b = a.items.get(segment.pipeline), b.items.get(segment.pipeline)
    if table_a is None or table_b is None:
        return
    for slot_a, slot_b in zip(segment.a, segment.b, strict=True):
        group_a = a.errors.group_of(table_a.errors[slot_a])
        group_b = b.errors.group_of(table_b.errors[slot_b])
        same = (
            group_a is not None
            and group_b is not None
            and a.errors.keys[group_a] == b.errors.keys[group_b]
        )
        counts["still_failing_same_error" if same else "still_failing_other_error"] += 1


def _slowest(a: ItemColumns, b: ItemColumns, keep: int) -> list[tuple[float, int, int]]:
    """(added seconds, slot in A, slot in B) of the `keep` items completed in both runs
    that took the most time more."""
    if keep <= 0:
        return []
    if a.dense and b.dense:
        return _slowest_dense(a, b, keep)
    heap: list[tuple[float, int, int]] = []
    status_a, status_b = a.status, b.status
    for key, slot_a in a.items():
        if status_a[slot_a] != COMPLETED:
            continue
        slot_b = b.slot(key)
        if slot_b is None or status_b[slot_b] != COMPLETED:
            continue
        entry = _slower(a.seconds[slot_a], b.seconds[slot_b], slot_a, slot_b)
        if entry is None:
            continue
        if len(heap) < keep:
            heapq.heappush(heap, entry)
        elif entry > heap[0]:
            heapq.heapreplace(heap, entry)
    return sorted(heap, reverse=True)


def _slowest_dense(a: ItemColumns, b: ItemColumns, keep: int) -> list[tuple[float, int, int]]:
    common = min(a.size, b.size)
    status_a, status_b = a.status, b.status
    seconds_a, seconds_b = a.seconds, b.seconds
    # Differences for every slot at C speed; only slots at least `SLOWER_SECONDS` slower
    # can be newly slow, picked at C speed too, then checked one by one. (Widening a
    # `nlargest` of every slot until enough passed took 2.6 s of a 1M-item comparison of
    # two real runs, where the slowest differences are mostly failed items.)
    added = array("d", map(operator.sub, seconds_b[:common], seconds_a[:common]))
    entries = (
        entry
        for slot in itertools.compress(range(common), map(SLOWER_SECONDS.__le__, added))
        if status_a[slot] == COMPLETED
        and status_b[slot] == COMPLETED
        and (entry := _slower(seconds_a[slot], seconds_b[slot], slot, slot)) is not None
    )
    return heapq.nlargest(keep, entries)  # memory for `keep` entries, not every candidate


def _slower(before: float, after: float, slot_a: int, slot_b: int) -> tuple[float, int, int] | None:
    more = after - before
    if more < SLOWER_SECONDS or more < SLOWER_BY * max(before, 0.0):
        return None
    return (more, slot_a, slot_b)
