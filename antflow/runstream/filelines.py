"""A recording's lines: the kinds only files hold, and reading lines back safely.

Every file read back may be damaged or hostile (a disk, an editor, an attacker): a line
cut, dropped, repeated or swapped, a flipped byte, a number out of range, a value of the
wrong type, arrays nested thousands deep, one line of gigabytes. Reading goes through
`Lines` (which never holds more than `LINE_LIMIT` bytes of a line) and `record_of` /
`batch_of` (which return None for a line that is not what it should be), so a damaged
line costs what it held and the rest of the file reads on.
"""

from __future__ import annotations

import math
import sys
from array import array
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, Any, BinaryIO, Final, cast

import msgspec

from antflow.runstream.records import ErrorRecord, Record, ReprKey

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    from antflow.runstream.compactfile import RecordingBytes

BATCH_TAG: Final = "E"
"""An event batch in columns: item ids, codes, times (float64, base64)."""
PACKED_TAG: Final = "R"
"""An event batch as the recorder takes it: (item id, code, time) per record, one flat
MessagePack array (base64)."""
LINE_LIMIT: Final = 64 << 20
"""Longest line a reader takes (bytes): a longer one is passed over as damaged, never
held. The recorder writes none near it (`antflow.runstream.records.MESSAGE_LIMIT` and
friends bound what a line holds)."""


class Names(msgspec.Struct, frozen=True, tag="names", tag_field="record"):
    """One tracker's name tables (index 0 stands for none), re-written when they grow."""

    scope: int
    """Which tracker of the run: event batches of this scope use these names."""
    stages: tuple[str | None, ...]
    workers: tuple[str | None, ...]
    tasks: tuple[str | None, ...]
    next_stage: dict[int, int]
    """Stage id -> the id of the stage after it (for merged hand-off records)."""
    pipelines: tuple[int, ...]
    """The pipelines using this tracker."""


class FailureCheckpoint(msgspec.Struct, frozen=True, tag="failures", tag_field="record"):
    """Every item failed in a pipeline at `at` (tracebacks left out: see its error record)."""

    pipeline: int
    at: float
    failures: tuple[ErrorRecord, ...]


WireKey = int | float | str | bool | None | ReprKey | list[Any]


class Outcomes(msgspec.Struct, frozen=True, tag="outcomes", tag_field="record"):
    """What items gave, kept for a resume: the results of items that completed (left
    the last stage; `stage` None), or the outputs of a durable stage (`stage` names it),
    in the order they came. Written with the event batches of the same flush, and before
    them, so an item whose completion a batch shows is in an outcomes line too."""

    pipeline: int
    stage: str | None
    ids: list[WireKey]
    """Item ids, as event batches write them."""
    values: list[msgspec.Raw]
    """Each item's result (or output) as JSON, undecoded until used; null where
    `unstored` says there is none."""
    unstored: list[int] = []
    """Indexes of the items whose value was not stored: not JSON, or over the bound."""


FileRecord = Record | Names | FailureCheckpoint | Outcomes
OUTCOMES_PREFIX: Final = b'{"record":"outcomes",'
"""How an outcomes line starts: a reader looking for other records passes it over
without decoding its values."""
RawBatch = tuple[
    str, int, list[WireKey], list[Annotated[int, msgspec.Meta(ge=0)]], bytes, list[tuple[int, int]]
]
"""An event batch line as decoded: codes are checked non-negative while decoding (a
`min` over them was a tenth of a comparison's reading)."""
RawPacked = tuple[str, int, bytes, list[tuple[int, int]]]
PackedWord = int | float | str | bool | None | ReprKey | list[Any]
"""A word of a packed batch: an item id, a code or a time."""

NaturalBatch = tuple[
    str,
    int,
    list[Annotated[int, msgspec.Meta(ge=0)]],
    list[Annotated[int, msgspec.Meta(ge=0)]],
    bytes,
    list[tuple[int, int]],
]
"""An event batch line whose ids are all ints >= 0 (``run(range(n))``, row numbers): tried
first, it spares a comparison checking every id's type and sign again (~10% of its
reading)."""

_decode_record = msgspec.json.Decoder(FileRecord).decode
_decode_batch = msgspec.json.Decoder(RawBatch).decode
_decode_natural_batch = msgspec.json.Decoder(NaturalBatch).decode
_decode_packed = msgspec.json.Decoder(RawPacked).decode
_unpack_words = msgspec.msgpack.Decoder(list[PackedWord]).decode
_unpack_columns = msgspec.msgpack.Decoder(tuple[list[PackedWord], list[PackedWord], bytes]).decode
"""A compacted packed batch's columns: ids, codes, times (`antflow.runstream.compactfile`)."""
_pack = msgspec.msgpack.Encoder().encode
_encode = msgspec.json.Encoder().encode
_UNREADABLE: Final = (msgspec.DecodeError, RecursionError, ValueError, OverflowError)
"""What decoding a damaged line raises: bad JSON or shape (a `ValidationError` is a
`DecodeError`), nesting deeper than the interpreter's stack, numbers out of range."""


def encode_record(record: FileRecord) -> bytes:
    """One line for a typed record (with its newline)."""
    return _encode(record) + b"\n"


def encode_packed(scope: int, words: list[Any], numbered: list[tuple[int, int]]) -> bytes:
    """One packed event batch line: `words` is (item id, code, time) per record, flat, the
    ids already as a recording keeps them (`antflow.runstream.records.item_key`).

    Raises:
        OverflowError: an id is an int MessagePack has no room for (past 64 bits).
        TypeError: an id of a type no recording holds.
    """
    return _encode([PACKED_TAG, scope, _pack(words), numbered]) + b"\n"


def record_of(line: bytes) -> FileRecord | None:
    """The typed record a line holds (None: a damaged line, or an event batch)."""
    if line.startswith(b"["):
        return None
    try:
        return _decode_record(line)
    except _UNREADABLE:
        return None


@dataclass(frozen=True, slots=True)
class Batch:
    """An event batch line, checked: its columns are as long as each other."""

    scope: int
    ids: list[Any]
    codes: list[int]
    times: array[float]
    errors: dict[int, int]
    """Record index -> the number of the error record it carries."""
    natural: bool = False
    """Every id is an int >= 0 (False: not known)."""


def batch_of(line: bytes) -> Batch | None:
    """The event batch a line holds (None: not one, or a damaged one: columns of other
    lengths, codes or times out of range, an id no recorder writes)."""
    if not line.startswith(b"["):
        return None
    if line.startswith(b'["R"'):
        return _packed_batch(line)
    natural = True
    ids: list[Any]
    try:
        tag, scope, ids, codes, raw_times, numbered = _decode_natural_batch(line)
    except _UNREADABLE:
        # Another id (a string, a tuple, a negative int) or a damaged line: the general
        # decoder tells (a failed attempt stops at the first such id).
        natural = False
        try:
            tag, scope, ids, codes, raw_times, numbered = _decode_batch(line)
        except _UNREADABLE:
            return None
    if tag != BATCH_TAG or len(raw_times) != 8 * len(ids) or len(codes) != len(ids):
        return None
    return _checked(scope, ids, codes, floats(raw_times), numbered, natural=natural)


def packed_mention(item: Any) -> Callable[[bytes], bool]:
    """A fast test of whether a packed batch line may hold `item` (its id's MessagePack
    bytes appear in the batch's words): False means it does not."""
    try:
        word = _pack(item)
    except (OverflowError, TypeError):
        return lambda line: True

    def mentions(line: bytes) -> bool:
        try:
            _, _, packed, _ = _decode_packed(line)
        except _UNREADABLE:
            return True  # damaged: the decoder says so
        return word in packed

    return mentions


def _packed_batch(line: bytes) -> Batch | None:
    try:
        tag, scope, packed, numbered = _decode_packed(line)
        words = _unpack_words(packed)
    except _UNREADABLE:
        return None
    if tag != PACKED_TAG or len(words) % 3:
        return None
    codes = words[1::3]
    raw_times = words[2::3]
    if not set(map(type, codes)) <= {int} or not set(map(type, raw_times)) <= {float}:
        return None
    ids = words[0::3]
    # A float id is finite as written (a NaN is written as its repr).
    if float in set(map(type, ids)) and not math.isfinite(
        sum(item for item in ids if type(item) is float)
    ):
        return None
    return _checked(
        scope, ids, cast("list[int]", codes), array("d", cast("list[float]", raw_times)), numbered
    )


def batch_from_columns(skeleton: bytes, column: bytes) -> Batch | None:
    """The packed event batch a compacted file stores as `skeleton` (its line without its
    words) and `column` (its words in columns: ids, codes, float64 times), as `batch_of`
    gives it from the line rebuilt (None: damaged)."""
    try:
        tag, scope, words, numbered = _decode_packed(skeleton)
        ids, codes, raw_times = _unpack_columns(column)
    except _UNREADABLE:
        return None
    if tag != PACKED_TAG or words or len(codes) != len(ids) or len(raw_times) != 8 * len(ids):
        return None
    if not set(map(type, codes)) <= {int}:
        return None
    # A float id is finite as written (a NaN is written as its repr).
    if float in set(map(type, ids)) and not math.isfinite(
        sum(item for item in ids if type(item) is float)
    ):
        return None
    return _checked(scope, ids, cast("list[int]", codes), floats(raw_times), numbered)


def _checked(
    scope: int,
    ids: list[Any],
    codes: list[int],
    times: array[float],
    numbered: Any,
    *,
    natural: bool = False,
) -> Batch | None:
    # One sum tells whether every time is finite (a NaN or an infinity carries through).
    if not math.isfinite(sum(times)):
        return None
    # Tuple ids are rare: one pass in C over the types spares a Python loop over the ids
    # (a third of the time a comparison spent reading a batch of int ids).
    if (
        not natural
        and list in set(map(type, ids))
        and not all(_hashable(item) for item in ids if type(item) is list)
    ):
        return None
    return Batch(scope, ids, codes, times, dict(numbered), natural)


def _hashable(item: list[Any]) -> bool:
    """A tuple id is an array of scalars and arrays (no objects)."""
    try:
        hash(tuple(item))
    except TypeError:
        return False
    return True


def floats(data: bytes) -> array[float]:
    """Little-endian float64s (a batch's times column)."""
    values = array("d")
    values.frombytes(data)
    if sys.byteorder != "little":
        values.byteswap()
    return values


class Lines:
    """A file's lines from an offset, each whole and at most `LINE_LIMIT` bytes.

    A longer line is passed over (read through in pieces, never held) and counted in
    `too_long`; a last line without its newline (a killed writer's) ends the lines and
    sets `torn`. `offset` is where the line last given starts.
    """

    def __init__(
        self,
        handle: RecordingBytes | BinaryIO,
        offset: int,
        limit: int | None = None,
        on_too_long: Callable[[], None] | None = None,
    ) -> None:
        self._handle = handle
        self._limit = LINE_LIMIT if limit is None else limit
        self._on_too_long = on_too_long
        self.offset = offset
        self.next_offset = offset
        self.torn = False
        self.too_long = 0
        handle.seek(offset)

    def __iter__(self) -> Iterator[bytes]:
        readline = self._handle.readline
        limit = self._limit
        while True:
            line = readline(limit)
            if not line:
                return
            self.offset = self.next_offset
            self.next_offset += len(line)
            if line.endswith(b"\n"):
                yield line
                continue
            if len(line) < limit:
                self.torn = True
                return
            self.too_long += 1
            if self._on_too_long is not None:
                self._on_too_long()
            while not line.endswith(b"\n"):
                line = readline(limit)
                if not line:
                    self.torn = True
                    return
                self.next_offset += len(line)
