"""ErrorNumbers: the run's one numbering of errors (`ErrorRecord.number`).

Events refer to an error by its number; the run stream numbers the errors it hands to a
monitor, and a recorder of the same stream the errors it writes down, from this one
table, so an error has the same number in the app, in a recording and on a socket.

An exception is known by ``(id(exception), item key)``: items may share an exception
object (a failed shared future), and the key (`item_key`) is hashable for any id. The
exception itself is kept beside its number, so its id is not reused while the number is
remembered; at most `keep` numbers are (`trim`), oldest first.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Final

from antflow.runstream.records import item_key

if TYPE_CHECKING:
    from antflow.probe import Failure

KEEP: Final = 4_096
"""Exceptions whose numbers are remembered, so events decoded later can refer to them."""


class ErrorNumbers:
    """Numbers errors from 1, once each.

    Args:
        keep: How many numbers `trim` keeps (the newest).
    """

    def __init__(self, keep: int = KEEP) -> None:
        self.keep = keep
        self._count = 0
        self._numbers: dict[tuple[int, Any], tuple[BaseException, int]] = {}
        self._failures: dict[int, dict[int, tuple[object, int]]] = {}
        """Per pipeline, the number each failed item's record was given (see `failed`)."""

    def number_of(self, error: BaseException, item_id: Any = None) -> int | None:
        """The number given to an item's exception, if it was numbered (and kept)."""
        known = self._numbers.get((id(error), item_key(item_id)))
        return known[1] if known is not None and known[0] is error else None

    def number(self, error: BaseException, item_id: Any = None) -> int:
        """The item's exception's number: the one it has, else the next."""
        key = (id(error), item_key(item_id))
        known = self._numbers.get(key)
        if known is not None and known[0] is error:
            return known[1]
        number = self.fresh()
        self._numbers[key] = (error, number)
        return number

    def fresh(self) -> int:
        """The next number, for an error nobody numbered (no table entry)."""
        self._count += 1
        return self._count

    def failed(self, pipeline: int, failures: list[Failure]) -> list[int]:
        """The number of each failed item's final error, in order. Each failed item
        keeps its number while it stays failed, even once its error has left the
        bounded table (a run with more errors than it keeps)."""
        known = self._failures.get(pipeline, {})
        kept: dict[int, tuple[object, int]] = {}
        numbers = []
        for failure in failures:
            held = known.get(id(failure.token))
            if held is not None and held[0] is failure.token:
                number = held[1]
            else:
                found = self.number_of(failure.error, failure.item_id)
                number = found if found is not None else self.fresh()
            kept[id(failure.token)] = (failure.token, number)
            numbers.append(number)
        self._failures[pipeline] = kept
        return numbers

    def trim(self) -> None:
        """Forget all but the newest `keep` numbers."""
        numbers = self._numbers
        while len(numbers) > self.keep:
            del numbers[next(iter(numbers))]

    def clear(self) -> None:
        """Forget every number (the count goes on)."""
        self._numbers.clear()
        self._failures.clear()
