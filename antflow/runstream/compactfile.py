"""A compacted recording: the same bytes as the recording it was made from, compressed.

A recording that has ended is compacted (`antflow.runstream.compaction`) into:

- its header line, verbatim (so whatever reads a recording's first line reads it still);
- `MAGIC`, a line no JSON line can be (it starts with a NUL byte);
- frames, each the next whole lines of the recording (about `FRAME_BYTES` of them),
  compressed on their own: a 16-byte head (`FRAME_MAGIC`, the stored length, the
  uncompressed length, a CRC-32 of those twelve bytes) and the stored bytes. A frame
  holding an outcomes line (a kept run's results, read by a resume) says so in its head
  (`OUTCOMES_FRAME_MAGIC`), and a long run of them has frames of its own, so a resume
  decompresses those frames alone.

Reading one back (`open_bytes`) gives the recording's bytes as they were, offset for
offset: the end record's seek index, and every offset a reader keeps, stays valid, and
`antflow.runstream.fileformat` reads a compacted file as it reads any other. Frames are
independent, so a seek decompresses only the frames it reads.

Packed event batches (``["R", scope, "<base64>", ...]``, most of a recording) are stored
in columns: item ids, codes, and times as raw float64s, which compress to 20 bytes an
item where the lines as they are take 52 (benchmarks/record.py, docs/recording.md).
Reading rebuilds each line from its columns exactly; a line whose rebuild would differ
is stored as it is.

A damaged compacted file reads as far as it can: a frame whose head does not check ends
the file there (a readable prefix, `damaged`); a frame that does not decompress, or whose
lines do not rebuild to their length, reads as one blank line of its length, which a
reader passes over as a damaged line (the offsets after it stay right).
"""

from __future__ import annotations

import binascii
import bisect
import os
import re
import struct
import sys
import zlib
from array import array
from typing import TYPE_CHECKING, Any, BinaryIO, Final, NamedTuple, Protocol

import msgspec

from antflow.runstream.filelines import OUTCOMES_PREFIX

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

MAGIC: Final = b"\x00antflow-compacted 1\n"
"""What follows the header line in a compacted file (never a JSON line: a NUL first)."""
FRAME_MAGIC: Final = b"AFZ1"
OUTCOMES_FRAME_MAGIC: Final = b"AFZO"
"""The magic of a frame holding an outcomes line (a kept run's results, for a resume): a
resume reads these frames and no other (`FramedFile.outcome_lines`)."""
FRAME_HEAD: Final = struct.Struct("<4sIII")
"""A frame's head: magic, stored length, uncompressed length, CRC-32 of the twelve bytes
before it."""
FRAME_BYTES: Final = 2 << 20
"""Lines a frame holds, about (uncompressed): a seek decompresses one or a few."""
MAX_FRAME_RAW: Final = 96 << 20
"""Largest uncompressed frame read back: a frame holds whole lines, and a line is at most
`antflow.runstream.filelines.LINE_LIMIT` (64 MB) read back."""
LEVEL: Final = 1
"""zlib's compression level (see docs/recording.md for the figures that chose it)."""

_PACKED: Final = re.compile(rb'\["R",\d{1,19},"([A-Za-z0-9+/]*={0,2})",')
"""A packed event batch line's start, and its base64 words."""
_ENTRY: Final = struct.Struct("<III")
"""A rebuilt line's entry: where its base64 goes in the skeleton, the base64's length,
its columns' length."""
_COUNT: Final = struct.Struct("<I")
_pack = msgspec.msgpack.Encoder().encode
_unpack = msgspec.msgpack.Decoder().decode
_UNPACKABLE: Final = (msgspec.DecodeError, ValueError, TypeError, OverflowError, RecursionError)


class RecordingBytes(Protocol):
    """A recording's bytes as a reader sees them (a plain file, or a compacted one)."""

    def readline(self, size: int = -1, /) -> bytes: ...
    def read(self, size: int = -1, /) -> bytes: ...
    def seek(self, offset: int, whence: int = 0, /) -> int: ...
    def tell(self) -> int: ...
    def pread(self, size: int, offset: int) -> bytes:
        """`size` bytes at `offset` (fewer at the end), the position left alone."""
        ...

    @property
    def size(self) -> int:
        """The recording's length (uncompressed)."""
        ...

    @property
    def damaged(self) -> bool:
        """A compacted file's frame could not be read (its bytes read as blank)."""
        ...

    def close(self) -> None: ...


class SplitFrame(NamedTuple):
    """A frame's lines without its packed batches' words, and their columns."""

    skeleton: bytes
    columns: list[tuple[int, int, bytes]]
    """(where the words go in `skeleton`, the words' length, their columns) of each."""


def open_bytes(path: str | Path, header_limit: int) -> RecordingBytes:
    """The bytes of the recording at `path`, compacted or not.

    Raises:
        OSError: it cannot be opened or read.
    """
    handle = open(path, "rb")  # noqa: SIM115 - closed by the object returned
    try:
        first = handle.readline(header_limit + 1)
        if first.endswith(b"\n") and handle.read(len(MAGIC)) == MAGIC:
            return FramedFile(handle, first)
        handle.seek(0)
        return PlainFile(handle)
    except BaseException:
        handle.close()
        raise


def is_compacted(path: str | Path, header_limit: int = 1 << 20) -> bool:
    """Whether the file at `path` is a compacted recording (False when it cannot be read)."""
    try:
        with open(path, "rb") as handle:
            first = handle.readline(header_limit + 1)
            return first.endswith(b"\n") and handle.read(len(MAGIC)) == MAGIC
    except OSError:
        return False


class PlainFile:
    """A recording file as it was written (JSON Lines)."""

    damaged = False

    def __init__(self, handle: BinaryIO) -> None:
        self._handle = handle
        # The reader's hot loop calls these: the file's own methods, no layer between.
        self.readline = handle.readline
        self.read = handle.read
        self.seek = handle.seek
        self.tell = handle.tell
        self.fileno = handle.fileno

    def pread(self, size: int, offset: int) -> bytes:
        return os.pread(self._handle.fileno(), size, offset)

    @property
    def size(self) -> int:
        return os.fstat(self._handle.fileno()).st_size

    def close(self) -> None:
        self._handle.close()


class FramedFile:
    """A compacted recording, read as the bytes it was made from (see the module)."""

    def __init__(self, handle: BinaryIO, header: bytes) -> None:
        self._handle = handle
        self._header = header
        self.damaged = False
        self._starts: list[int] = []
        """Each frame's first offset (in the recording's bytes)."""
        self._frames: list[tuple[int, int, int]] = []
        """Each frame's stored bytes' file offset, stored length, uncompressed length."""
        self._outcome_frames: list[int] = []
        """The frames holding an outcomes line (`OUTCOMES_FRAME_MAGIC`)."""
        self._index_frames(len(header) + len(MAGIC))
        last = self._frames[-1] if self._frames else None
        self._size = self._starts[-1] + last[2] if last else len(header)
        self._position = 0
        self._cached = -1
        self._cached_bytes = b""

    def _index_frames(self, offset: int) -> None:
        fileno = self._handle.fileno()
        end = os.fstat(fileno).st_size
        start = len(self._header)
        while offset < end:
            head = os.pread(fileno, FRAME_HEAD.size, offset)
            if len(head) < FRAME_HEAD.size:
                self.damaged = True
                return
            magic, stored, raw, check = FRAME_HEAD.unpack(head)
            if (
                magic not in (FRAME_MAGIC, OUTCOMES_FRAME_MAGIC)
                or check != zlib.crc32(head[:12])
                or raw > MAX_FRAME_RAW
                or offset + FRAME_HEAD.size + stored > end
            ):
                self.damaged = True  # a cut or overwritten frame: the file ends before it
                return
            if magic == OUTCOMES_FRAME_MAGIC:
                self._outcome_frames.append(len(self._frames))
            self._starts.append(start)
            self._frames.append((offset + FRAME_HEAD.size, stored, raw))
            start += raw
            offset += FRAME_HEAD.size + stored

    # ---------------------------------------------------------------- reading

    @property
    def size(self) -> int:
        return self._size

    def tell(self) -> int:
        return self._position

    def seek(self, offset: int, whence: int = os.SEEK_SET) -> int:
        if whence == os.SEEK_CUR:
            offset += self._position
        elif whence == os.SEEK_END:
            offset += self._size
        if offset < 0:
            raise OSError(22, "negative seek position")
        self._position = offset
        return offset

    def pread(self, size: int, offset: int) -> bytes:
        kept = self._position
        try:
            self._position = max(offset, 0)
            return self.read(size)
        finally:
            self._position = kept

    def read(self, size: int = -1) -> bytes:
        end = self._size if size < 0 else min(self._size, self._position + size)
        parts = []
        while self._position < end:
            chunk, at = self._chunk_at(self._position)
            piece = chunk[at : at + end - self._position]
            parts.append(piece)
            self._position += len(piece)
        return b"".join(parts)

    def readline(self, size: int = -1) -> bytes:
        parts = []
        wanted = size if size >= 0 else self._size
        while wanted > 0 and self._position < self._size:
            chunk, at = self._chunk_at(self._position)
            stop = chunk.find(b"\n", at, at + wanted)
            stop = min(len(chunk), at + wanted) if stop < 0 else stop + 1
            piece = chunk[at:stop]
            parts.append(piece)
            self._position += len(piece)
            wanted -= len(piece)
            if piece.endswith(b"\n"):
                break
        return b"".join(parts)

    def close(self) -> None:
        self._cached_bytes = b""
        self._handle.close()

    def split_frames(self) -> Iterator[SplitFrame | None]:
        """Each frame as its skeleton and its packed batches' columns, not rebuilt (None: a
        frame that does not decompress, `damaged`): a whole-run reader builds batches from
        the columns as they are (`antflow.runstream.filelines.batch_from_columns`),
        sparing the rebuild and its decoding again, a third of reading a compacted run."""
        for where, stored, raw in self._frames:
            body = _inflated(os.pread(self._handle.fileno(), stored, where), raw)
            table = None if body is None else _table(body)
            if body is None or table is None:
                self.damaged = True
                yield None
                continue
            table_end, skeleton_end, entries = table
            skeleton = body[table_end:skeleton_end]
            columns: list[tuple[int, int, bytes]] = []
            at = skeleton_end
            last = 0
            for position, length, size in entries:
                if not last <= position <= len(skeleton):
                    self.damaged = True
                    break
                columns.append((position, length, body[at : at + size]))
                at += size
                last = position
            yield SplitFrame(skeleton, columns)

    def outcome_lines(self) -> Iterator[bytes]:
        """Each outcomes line, in file order, from the frames that hold one, searched
        without rebuilding their event batches: a resume of a compacted 1M-item run
        decompresses a fraction of it. A frame that does not decompress is passed over
        (`damaged`)."""
        for index in self._outcome_frames:
            where, stored, raw = self._frames[index]
            skeleton = frame_skeleton(os.pread(self._handle.fileno(), stored, where), raw)
            if skeleton is None:
                self.damaged = True
                continue
            at = next_outcomes_line(skeleton, 0)
            while at >= 0:
                end = skeleton.find(b"\n", at)
                if end < 0:
                    break  # a frame holds whole lines: damaged
                yield skeleton[at : end + 1]
                at = next_outcomes_line(skeleton, end + 1)

    def _chunk_at(self, offset: int) -> tuple[bytes, int]:
        """The bytes holding `offset` (the header, or a frame's), and where in them."""
        header = len(self._header)
        if offset < header:
            return self._header, offset
        index = bisect.bisect_right(self._starts, offset) - 1
        if index != self._cached:
            self._cached_bytes = self._frame(index)
            self._cached = index
        return self._cached_bytes, offset - self._starts[index]

    def _frame(self, index: int) -> bytes:
        where, stored, raw = self._frames[index]
        payload = os.pread(self._handle.fileno(), stored, where)
        data = frame_bytes(payload, raw)
        if data is None:
            self.damaged = True
            return blank(raw)
        return data


def next_outcomes_line(data: bytes, at: int) -> int:
    """Where the next outcomes line at or after `at` (a line's start) begins, or -1."""
    if data.startswith(OUTCOMES_PREFIX, at):
        return at
    found = data.find(b"\n" + OUTCOMES_PREFIX, at)
    return found + 1 if found >= 0 else -1


def frame_head(stored: int, raw: int, *, outcomes: bool = False) -> bytes:
    """A frame's head, for `stored` bytes holding `raw` bytes of lines (`outcomes`: an
    outcomes line among them)."""
    magic = OUTCOMES_FRAME_MAGIC if outcomes else FRAME_MAGIC
    start = magic + stored.to_bytes(4, "little") + raw.to_bytes(4, "little")
    return start + zlib.crc32(start).to_bytes(4, "little")


def blank(length: int) -> bytes:
    """What an unreadable frame reads as: one blank line of its length."""
    return b" " * (length - 1) + b"\n" if length else b""


# ---------------------------------------------------------------- a frame's stored bytes


def frame_payload(data: bytes, level: int = LEVEL) -> bytes:
    """A frame's stored bytes for `data` (whole lines): `frame_body`, then zlib (which
    lets go of the GIL while it compresses)."""
    return zlib.compress(frame_body(data), level)


def frame_body(data: bytes) -> bytes:
    """What a frame compresses for `data` (whole lines): a table of the packed batches'
    places, the lines without those batches' base64 words, then the words in columns."""
    entries: list[bytes] = []
    skeleton: list[bytes] = []
    columns: list[bytes] = []
    kept = 0
    at = 0
    for start, end in _packed_words(data):
        column = _columns(data[start:end])
        if column is None:
            continue
        skeleton.append(data[at:start])
        kept += start - at
        entries.append(_ENTRY.pack(kept, end - start, len(column)))
        columns.append(column)
        at = end
    skeleton.append(data[at:])
    return b"".join([_COUNT.pack(len(entries)), *entries, *skeleton, *columns])


def frame_skeleton(payload: bytes, raw: int) -> bytes | None:
    """A frame's lines without its packed batches' words (None: damaged): every other line
    is there whole, and each newline is a line's end."""
    body = _inflated(payload, raw)
    table = None if body is None else _table(body)
    if body is None or table is None:
        return None
    table_end, skeleton_end, _ = table
    return body[table_end:skeleton_end]


def _inflated(payload: bytes, raw: int) -> bytes | None:
    try:
        inflater = zlib.decompressobj()
        # Columns are shorter than the base64 they stand for: the stored body is at most
        # the lines and an entry per line of at least its size.
        body = inflater.decompress(payload, 2 * raw + _COUNT.size)
    except zlib.error:
        return None
    if not inflater.eof or len(body) < _COUNT.size:
        return None
    return body


def _table(body: bytes) -> tuple[int, int, list[tuple[int, int, int]]] | None:
    """Where a frame body's table and skeleton end, and its entries (None: damaged)."""
    (count,) = _COUNT.unpack_from(body)
    table_end = _COUNT.size + count * _ENTRY.size
    if table_end > len(body):
        return None
    entries = [_ENTRY.unpack_from(body, _COUNT.size + i * _ENTRY.size) for i in range(count)]
    skeleton_end = len(body) - sum(size for _, _, size in entries)
    if skeleton_end < table_end:
        return None
    return table_end, skeleton_end, entries


def frame_bytes(payload: bytes, raw: int) -> bytes | None:
    """A frame's lines from its stored bytes (None: damaged), at most `raw` bytes."""
    body = _inflated(payload, raw)
    if body is None:
        return None
    table = _table(body)
    if table is None:
        return None
    table_end, skeleton_end, entries = table
    skeleton = memoryview(body)[table_end:skeleton_end]
    parts: list[bytes | memoryview] = []
    at = 0
    column = skeleton_end
    for position, length, size in entries:
        if not at <= position <= len(skeleton):
            return None
        text = _rebuilt(body[column : column + size])
        if text is None or len(text) != length:
            return None
        parts.append(skeleton[at:position])
        parts.append(text)
        at = position
        column += size
    parts.append(skeleton[at:])
    data = b"".join(parts)
    return data if len(data) == raw else None


def _packed_words(data: bytes) -> Iterator[tuple[int, int]]:
    """Where each packed batch line's base64 words are in `data` (whole lines)."""
    at = 0 if data.startswith(b'["R",') else data.find(b'\n["R",') + 1
    while at > 0 or (at == 0 and data.startswith(b'["R",')):
        found = _PACKED.match(data, at)
        if found is not None:
            yield found.span(1)
        at = data.find(b'\n["R",', at + 1) + 1
        if at == 0:
            return


def _columns(text: bytes) -> bytes | None:
    """A packed batch's base64 words as columns (one MessagePack array: the ids, the
    codes, the times as little-endian float64s), or None when rebuilding them would not
    give `text` back."""
    try:
        packed = binascii.a2b_base64(text, strict_mode=True)
        words = _unpack(packed)
    except (binascii.Error, *_UNPACKABLE):
        return None
    if type(words) is not list or len(words) % 3:
        return None
    # The rebuild packs the same words again: it gives `text` back when packing is
    # canonical (smallest forms, as msgspec writes) and the base64 is.
    if _pack(words) != packed or binascii.b2a_base64(packed, newline=False) != text:
        return None
    raw_times = words[2::3]
    if not set(map(type, raw_times)) <= {float}:
        return None
    # Times as raw float64s: MessagePack's big-endian floats behind a marker byte each
    # compress to a fifth more.
    times = array("d", raw_times)
    if sys.byteorder != "little":
        times.byteswap()
    return _pack([words[0::3], words[1::3], times.tobytes()])


def _rebuilt(column: bytes) -> bytes | None:
    """A packed batch's base64 words from its columns (None: damaged columns)."""
    try:
        columns = _unpack(column)
    except _UNPACKABLE:
        return None
    if type(columns) is not list or len(columns) != 3:
        return None
    ids, codes, raw_times = columns
    if not (type(ids) is type(codes) is list) or type(raw_times) is not bytes:
        return None
    if not len(ids) == len(codes) == len(raw_times) // 8 or len(raw_times) % 8:
        return None
    times = array("d")
    times.frombytes(raw_times)
    if sys.byteorder != "little":
        times.byteswap()
    flat: list[Any] = [None] * (3 * len(ids))
    flat[0::3] = ids
    flat[1::3] = codes
    flat[2::3] = times.tolist()
    try:
        return binascii.b2a_base64(_pack(flat), newline=False)
    except _UNPACKABLE:
        return None
