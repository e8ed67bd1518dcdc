"""Compacting a recording whose run has ended: the same bytes, a tenth of the disk.

`compact(path)` rewrites a recording in place as a compacted one
(`antflow.runstream.compactfile`: independent compressed frames of its lines, read back
byte for byte): it writes the compacted file beside it (created exclusively, not following
links), flushes it to the disk, and renames it over the recording. A crash or a full disk
meanwhile leaves the recording as it was (and, at worst, a ``.NAME.compacting-*`` file that
the next compaction of that recording removes).

It compacts only a recording nobody writes any more: one with an end record (its run
closed it), or, with ``unfinished=True``, one whose writer the caller knows is gone (a
crashed run: the history tells by its process). A recording that grows while it is read
is left alone.

`compact_later(path)` does it on a thread, for a recorder closing its file: the run's end
does not wait, and a process exiting waits for it at most `EXIT_WAIT` seconds (a
compaction cut short leaves the recording as it was, to be compacted another time).
"""

from __future__ import annotations

import atexit
import contextlib
import errno
import logging
import os
import secrets
import stat
import threading
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, BinaryIO, Final

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

from antflow.runstream.compactfile import (
    FRAME_BYTES,
    LEVEL,
    MAGIC,
    MAX_FRAME_RAW,
    frame_head,
    frame_payload,
    is_compacted,
    next_outcomes_line,
)
from antflow.runstream.filelines import OUTCOMES_PREFIX

logger = logging.getLogger(__name__)

OUTCOMES_APART: Final = 64 << 10
"""A run of outcomes lines this long or longer gets a frame of its own."""
HEADER_LIMIT: Final = 1 << 20
"""Longest header line (as `antflow.runstream.fileformat` reads it)."""
END_PROBE: Final = 1 << 16
"""Bytes of a recording's end read to find its end record."""
STALE_AFTER: Final = 3600.0
"""Seconds after which a leftover ``.compacting-`` file of a recording is removed."""
EXIT_WAIT: Final = 10.0
"""Seconds an exiting process waits for its compactions to finish."""
_TEMPORARY: Final = ".compacting-"
_NOFOLLOW: Final = getattr(os, "O_NOFOLLOW", 0)
_NONBLOCK: Final = getattr(os, "O_NONBLOCK", 0)


class CompactionError(Exception):
    """A recording could not be compacted; the message says why. The recording is as it
    was."""


@dataclass(frozen=True, slots=True)
class Compacted:
    """What `compact` did."""

    path: str
    before: int
    """Bytes on disk before."""
    after: int
    """Bytes on disk after (`before` when it was compacted already)."""
    seconds: float
    already: bool = False
    """The recording was compacted already: nothing was written."""


def compact(
    path: str | Path,
    *,
    unfinished: bool = False,
    level: int = LEVEL,
    frame_bytes: int = FRAME_BYTES,
) -> Compacted:
    """Compact the recording at `path` in place (see the module docstring).

    Args:
        path: A recording file.
        unfinished: Compact it without an end record too: its writer is known to be gone
            (a crashed run). Never pass it for a recording a live process may write.
        level: zlib's level, 1 (fastest) to 9.
        frame_bytes: About how many bytes of lines a frame holds (smaller frames: a read
            decompresses less, the file compresses a little less).

    Raises:
        CompactionError: not a recording, one still being written (no end record, or it
            grew while read), or the compacted file could not be written.
    """
    began = time.perf_counter()
    where = os.fspath(path)
    try:
        # Not blocking: a FIFO put in a recording's place must not hang its compaction.
        descriptor = os.open(where, os.O_RDONLY | _NOFOLLOW | _NONBLOCK)
    except OSError as error:
        raise CompactionError(f"cannot open {where}: {error.strerror}") from None
    if not stat.S_ISREG(os.fstat(descriptor).st_mode):
        os.close(descriptor)
        raise CompactionError(f"{where} is not a file")
    try:
        with os.fdopen(descriptor, "rb") as source:
            return _compact(where, source, unfinished, level, frame_bytes, began)
    except OSError as error:
        raise CompactionError(f"cannot compact {where}: {_why(error)}") from None


def compact_later(path: str | Path, *, unfinished: bool = False) -> threading.Thread:
    """Compact `path` on a thread of its own (a failure is logged, never raised)."""
    thread = threading.Thread(
        target=_compact_logged,
        args=(os.fspath(path), unfinished),
        name="antflow compaction",
        daemon=True,
    )
    with _running_lock:
        _running.add(thread)
    thread.start()
    return thread


def _compact_logged(path: str, unfinished: bool) -> None:
    try:
        done = compact(path, unfinished=unfinished)
        logger.debug(
            "compacted %s: %d -> %d bytes in %.2f s", path, done.before, done.after, done.seconds
        )
    except CompactionError as error:
        logger.warning("recording kept as it is: %s", error)
    except Exception:
        logger.exception("compacting %s failed; the recording is kept as it is", path)
    finally:
        with _running_lock:
            _running.discard(threading.current_thread())


_running: set[threading.Thread] = set()
_running_lock = threading.Lock()


@atexit.register
def _wait_for_compactions() -> None:
    deadline = time.monotonic() + EXIT_WAIT
    with _running_lock:
        threads = list(_running)
    for thread in threads:
        thread.join(max(deadline - time.monotonic(), 0.0))


# ---------------------------------------------------------------- compacting


def _compact(
    where: str, source: BinaryIO, unfinished: bool, level: int, frame_bytes: int, began: float
) -> Compacted:
    fileno = source.fileno()
    status = os.fstat(fileno)
    first = source.readline(HEADER_LIMIT + 1)
    if not first.endswith(b"\n") or b'"format":"antflow-run"' not in first:
        raise CompactionError(f"{where} is not an antflow recording")
    if source.read(len(MAGIC)) == MAGIC:
        return Compacted(where, status.st_size, status.st_size, 0.0, already=True)
    if not unfinished and not _ends_cleanly(fileno, status.st_size):
        raise CompactionError(
            f"{where} has no end record: its run is still recording, or crashed (compact a "
            f"crashed run with unfinished=True once its process is gone)"
        )
    folder, name = os.path.split(where)
    _remove_stale(folder or ".", name)
    temporary = os.path.join(folder, f".{name}{_TEMPORARY}{secrets.token_hex(4)}")
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | _NOFOLLOW
    out = os.open(temporary, flags, status.st_mode & 0o777)
    try:
        with os.fdopen(out, "wb") as target:
            target.write(first)
            target.write(MAGIC)
            source.seek(len(first))
            for data, outcomes in _outcomes_apart(_frames(source, frame_bytes)):
                payload = frame_payload(data, level)
                target.write(frame_head(len(payload), len(data), outcomes=outcomes))
                target.write(payload)
            target.flush()
            os.fsync(target.fileno())
            after = target.tell()
        now = os.fstat(fileno)
        if (now.st_size, now.st_mtime_ns) != (status.st_size, status.st_mtime_ns):
            raise CompactionError(f"{where} was written to while it was compacted: kept as it is")
        os.replace(temporary, where)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise
    _sync_folder(folder or ".")
    return Compacted(where, status.st_size, after, time.perf_counter() - began)


def _frames(source: BinaryIO, size: int) -> Iterator[bytes]:
    """The recording's bytes after its header, in runs of whole lines of about `size`
    bytes (a line longer than `MAX_FRAME_RAW` is cut: only a damaged file has one)."""
    carry = b""
    while True:
        chunk = source.read(size)
        data = carry + chunk
        if not chunk:
            while len(data) > MAX_FRAME_RAW:
                cut = data.rfind(b"\n", 0, MAX_FRAME_RAW) + 1 or MAX_FRAME_RAW
                yield data[:cut]
                data = data[cut:]
            if data:
                yield data
            return
        cut = data.rfind(b"\n", 0, MAX_FRAME_RAW) + 1
        if cut == 0 and len(data) < MAX_FRAME_RAW:
            carry = data
            continue
        if cut == 0:
            cut = min(len(data), MAX_FRAME_RAW)  # no reader takes a frame longer
        yield data[:cut]
        carry = data[cut:]


def _outcomes_apart(frames: Iterator[bytes]) -> Iterator[tuple[bytes, bool]]:
    """Each frame's lines, and whether an outcomes line is among them; a run of outcomes
    lines of `OUTCOMES_APART` bytes or more is cut into a frame of its own, so a resume
    of a big run decompresses little else (a slow run's small ones stay where they are:
    cutting every flush in two cost it two thirds more bytes)."""
    for data in frames:
        at = 0
        while at < len(data):
            start = next_outcomes_line(data, at)
            if start < 0:
                yield data[at:], False
                break
            end = start
            while end < len(data) and data.startswith(OUTCOMES_PREFIX, end):
                newline = data.find(b"\n", end)
                end = len(data) if newline < 0 else newline + 1
            if end - start < OUTCOMES_APART:
                # Small: the frame keeps it, and says it holds outcomes.
                yield data[at:], True
                break
            if start > at:
                yield data[at:start], False
            yield data[start:end], True
            at = end


def _ends_cleanly(fileno: int, size: int) -> bool:
    """Whether the file's last line is an end record."""
    tail = os.pread(fileno, END_PROBE, max(size - END_PROBE, 0))
    if not tail.endswith(b"\n"):
        return False
    last = tail[tail.rfind(b"\n", 0, len(tail) - 1) + 1 :]
    return last.startswith(b'{"record":"end"')


def _remove_stale(folder: str, name: str) -> None:
    prefix = f".{name}{_TEMPORARY}"
    now = time.time()
    with contextlib.suppress(OSError), os.scandir(folder) as entries:
        for entry in entries:
            if not entry.name.startswith(prefix):
                continue
            with contextlib.suppress(OSError):
                if now - entry.stat(follow_symlinks=False).st_mtime > STALE_AFTER:
                    os.unlink(entry.path)


def _sync_folder(folder: str) -> None:
    """The rename on the disk too (where the system lets a folder be opened)."""
    with contextlib.suppress(OSError):
        descriptor = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(descriptor)
        finally:
            os.close(descriptor)


def _why(error: OSError) -> str:
    if error.errno == errno.ENOSPC:
        return "the disk is full"
    return error.strerror or str(error)


__all__ = ["Compacted", "CompactionError", "compact", "compact_later", "is_compacted"]
