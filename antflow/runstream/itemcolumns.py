"""One pipeline's items as columns: how each ended, its last error, the time it ran.

A run of a million items is read into a few arrays, not a million objects: each item has
a slot, and each column an entry per slot. Items whose ids are small non-negative ints
(``run(range(n))``, row numbers) are their own slots and no key is kept at all; any other
id (a string, a tuple, a sparse or negative int) switches the table to a dict of id ->
slot, keeping ids as they are (ints stay ints).

`apply` takes an event batch's columns as `antflow.runstream.fileformat.Recording.scan`
gives them, in file order, and keeps per item:

- its status after its last status event (so an item failed then retried by hand and
  completed reads completed);
- the number of the error record its last ``failed`` event carried, and the stage;
- the seconds its task attempts ran, every stage and attempt added up (waiting in a
  queue or between attempts is not counted). Each start subtracts its time and each end
  adds its own, which sums the attempts without holding a start per item: exact once
  every start has its end (a completed or failed item; an item still running when the
  recording ends has no meaningful time, `seconds_of` says None).
"""

from __future__ import annotations

from array import array
from typing import TYPE_CHECKING, Any, Final

from antflow import _history as h

if TYPE_CHECKING:
    from collections.abc import Iterator, Sequence

ABSENT: Final = 0
IN_FLIGHT: Final = 1
"""Queued, running or waiting for a retry when the recording ends."""
COMPLETED: Final = 2
FAILED: Final = 3
SKIPPED: Final = 4
UNFINISHED: Final = 5
DONE_EARLIER: Final = 6
"""A run this one resumed completed it: not run again."""
STATUS_NAMES: Final = (
    "absent",
    "in flight",
    "completed",
    "failed",
    "skipped",
    "unfinished",
    "done earlier",
)
"""A status's word, by its code."""

_KEEP: Final = -1
_STATUS_OF: Final[tuple[int, ...]] = (
    IN_FLIGHT,  # queued
    IN_FLIGHT,  # in_progress
    COMPLETED,
    FAILED,
    IN_FLIGHT,  # retrying
    SKIPPED,
    UNFINISHED,
    _KEEP,  # task start
    _KEEP,  # task complete
    _KEEP,  # task retry
    _KEEP,  # task fail
    IN_FLIGHT,  # in_progress + task start
    IN_FLIGHT,  # the same, per stage retry
    COMPLETED,  # task complete + completed
    IN_FLIGHT,  # task complete + completed + queued at the next stage
    DONE_EARLIER,
)
"""The status an item has after a record of each kind (`_KEEP`: unchanged)."""
_SIGN: Final[tuple[int, ...]] = tuple(
    -1
    if kind in (h.TASK_START, h.BEGIN_PER_TASK, h.BEGIN_PER_STAGE)
    else 1
    if kind in (h.TASK_COMPLETE, h.TASK_RETRY, h.TASK_FAIL, h.FINISH, h.FINISH_HANDOFF)
    else 0
    for kind in range(16)
)
"""-1: a record of that kind starts a task attempt; 1: it ends one; 0: neither."""
_ACTIONS: Final[tuple[tuple[int, float], ...]] = tuple(
    zip(_STATUS_OF, map(float, _SIGN), strict=True)
)
"""(status after, sign as a float) by kind: one lookup a record, and float x float is
the multiplication the interpreter specialises (~25% of the loop over int signs)."""
_TIMED: Final = frozenset({COMPLETED, FAILED, SKIPPED})
"""Statuses whose items' every attempt has ended (their `seconds` are whole)."""
_DENSE_SLACK: Final = 1 << 16
"""Int ids stay their own slots while each batch's largest is under 4 x the slots + this."""


class ItemColumns:
    """One pipeline's items (see the module docstring). Slots are handed out in the
    order items are first seen (or are the ids themselves)."""

    __slots__ = ("_filling", "_keys", "_size", "_status", "errors", "seconds", "stages")

    def __init__(self) -> None:
        self._keys: dict[Any, int] | None = None
        """id -> slot; None while ids are their own slots."""
        self._size = 0
        """Slots in use (in dense mode: the largest id + 1)."""
        self._status = array("b")
        self.seconds = array("d")
        """Task time of each item (see `seconds_of`)."""
        self._filling: list[int] | None = None
        """`status` as a list while batches are applied: the loop over every record
        stores into a list faster than into an array (the interpreter specialises list
        indexing: 0.69 s against 0.82 s over 5.6M records); an array again when read.
        `seconds` stays an array: as a list its million float objects took ~60 MB more
        a run (0.54 s)."""
        self.errors = array("q")
        """The error record number of each item's last failure (0: none)."""
        self.stages = array("H")
        """The stage (an index of the summary's stage names) of each item's last failure."""

    @classmethod
    def restored(
        cls,
        size: int,
        columns: tuple[array[int], array[float], array[int], array[int]],
        keys: dict[Any, int] | None,
    ) -> ItemColumns:
        """A table from what `id_slots` and its columns held (a child process's
        reading, `antflow.runstream.summarywire`).

        Args:
            size: Its slots in use.
            columns: `status`, `seconds`, `errors` and `stages`, each of `size` entries.
            keys: Id -> slot, or None while ids are their own slots.

        Raises:
            ValueError: columns of another length, a slot or a status out of range.
        """
        if any(len(column) != size for column in columns):
            raise ValueError(f"columns of other lengths than {size} items")
        status = columns[0]
        if size and not 0 <= min(status) <= max(status) < len(STATUS_NAMES):
            raise ValueError("an item status out of range")
        if keys is not None and any(not 0 <= slot < size for slot in keys.values()):
            raise ValueError("an item slot out of range")
        table = cls()
        table._status, table.seconds, table.errors, table.stages = columns
        table._size = size
        table._keys = keys
        return table

    # ---------------------------------------------------------------- reading

    @property
    def status(self) -> array[int]:
        """Each slot's status code (`ABSENT`, `COMPLETED`...: `STATUS_NAMES` words them)."""
        self._settle()
        return self._status

    @property
    def id_slots(self) -> dict[Any, int] | None:
        """Id -> slot (None while ids are their own slots)."""
        return self._keys

    def __len__(self) -> int:
        """Items seen."""
        if self._keys is not None:
            return len(self._keys)
        return sum(1 for status in self.status if status != ABSENT)

    @property
    def size(self) -> int:
        """Slots in use: every slot below it may hold an item (`ABSENT` where none)."""
        return self._size

    @property
    def dense(self) -> bool:
        """Ids are their own slots."""
        return self._keys is None

    def slot(self, item: Any) -> int | None:
        """The slot of an item id, None when the table never saw it."""
        if self._keys is None:
            if type(item) is int and 0 <= item < self._size and self.status[item] != ABSENT:
                return item
            return None
        return self._keys.get(hashable_id(item))

    def seconds_of(self, slot: int) -> float | None:
        """The seconds an item's task attempts ran, every stage and attempt added up
        (None while one may still run: an item in flight or unfinished)."""
        if self.status[slot] not in _TIMED:
            return None
        return max(self.seconds[slot], 0.0)

    def key_list(self) -> Sequence[Any]:
        """The item id of each slot (a range while ids are their own slots; built once
        per call otherwise: ask once for many)."""
        if self._keys is None:
            return range(self._size)
        keys: list[Any] = [None] * self._size
        for key, slot in self._keys.items():
            keys[slot] = key
        return keys

    def items(self) -> Iterator[tuple[Any, int]]:
        """(id, slot) of every item seen."""
        if self._keys is not None:
            yield from self._keys.items()
            return
        for slot, status in enumerate(self.status):
            if status != ABSENT:
                yield slot, slot

    # ---------------------------------------------------------------- filling

    def apply(
        self,
        ids: Sequence[Any],
        codes: Sequence[int],
        times: Sequence[float],
        failures: Sequence[tuple[int, int, int]],
        *,
        natural: bool = False,
    ) -> None:
        """Take in the records of one batch (all of this pipeline), in order.

        Args:
            ids: Item ids, as a batch holds them.
            codes: Their codes.
            times: Their times.
            failures: (record index, error number, stage name index) of the batch's
                ``failed`` records.
            natural: Every id is known to be an int >= 0 (`Batch.natural`): spares
                checking it again.
        """
        if not ids:
            return
        if self._filling is None:
            self._filling = self._status.tolist()
            del self._status[:]
        if self._keys is None and not self._fit(ids, natural):
            self._key_by_dict()
        if self._keys is None:
            self._apply_dense(ids, codes, times)
            for index, number, stage in failures:
                self.errors[ids[index]] = number
                self.stages[ids[index]] = stage
            return
        slots = self._slots(ids)
        self._apply_dense(slots, codes, times)
        for index, number, stage in failures:
            self.errors[slots[index]] = number
            self.stages[slots[index]] = stage

    def _apply_dense(
        self, slots: Sequence[int], codes: Sequence[int], times: Sequence[float]
    ) -> None:
        # The hot loop of a comparison: a million items are several million records
        # (~120 ns each here with `_ACTIONS` and a status list, ~170 ns before: every
        # lookup and branch counts).
        assert self._filling is not None
        status, seconds = self._filling, self.seconds
        actions = _ACTIONS
        for slot, code, at in zip(slots, codes, times, strict=True):
            new, sign = actions[code & 15]
            if new >= 0:
                status[slot] = new
            if sign:
                seconds[slot] += sign * at

    def _fit(self, ids: Sequence[Any], natural: bool) -> bool:
        """Whether these ids can stay their own slots (growing the columns to hold
        them)."""
        if not natural and (set(map(type, ids)) != {int} or min(ids) < 0):
            return False
        highest = max(ids)
        if highest >= self._size:
            if highest > 4 * self._size + _DENSE_SLACK:
                return False  # sparse: a dict holds fewer slots than the largest id
            self._grow(highest + 1)
        return True

    def _grow(self, size: int) -> None:
        more = size - self._size
        if more <= 0:
            return
        capacity = len(self.stages)
        if size > capacity:
            extra = max(size, capacity * 2) - capacity
            self.stages.frombytes(bytes(2 * extra))
            self.errors.frombytes(bytes(8 * extra))
            self.seconds.frombytes(bytes(8 * extra))
            if self._filling is None:
                self._status.frombytes(bytes(extra))
            else:
                self._filling.extend([ABSENT] * extra)
        self._size = size

    def _settle(self) -> None:
        """The columns as arrays again (after batches were applied)."""
        if self._filling is None:
            return
        status = self._filling
        self._filling = None
        self._status = array("b", status)

    def _key_by_dict(self) -> None:
        """Switch to a dict of id -> slot, keeping the slots taken so far."""
        status = self._filling if self._filling is not None else self._status
        self._keys = {slot: slot for slot in range(self._size) if status[slot] != ABSENT}

    def _slots(self, ids: Sequence[Any]) -> list[int]:
        keys = self._keys
        assert keys is not None
        found: list[int] = []
        append = found.append
        for item in ids:
            slot = keys.get(item) if type(item) is not list else None
            if slot is None:
                key = hashable_id(item)
                slot = keys.get(key)
                if slot is None:
                    slot = keys[key] = self._size
                    self._grow(self._size + 1)
            append(slot)
        return found


def hashable_id(item: Any) -> Any:
    """An id as a recording gives it back, as a key: an array (a tuple id another writer
    wrote) as a tuple."""
    if type(item) is list:
        return tuple(hashable_id(part) for part in item)
    return item
