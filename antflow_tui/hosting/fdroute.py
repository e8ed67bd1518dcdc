"""FdRoute: descriptors 1 and 2 lead into the event log while the app owns the screen.

`print()` is caught at the Python level, but a C extension, a subprocess or `os.write`
writes to the descriptors themselves, straight over the app's panels. While a route is
open, descriptors 1 and 2 are pipes; a thread reads them and hands each line to the sink
(a thread, not the event loop: a script that blocks the loop while writing a lot would
otherwise fill the pipe and wait forever). Closing the route puts the descriptors back.
"""

from __future__ import annotations

import codecs
import fcntl
import os
import struct
import termios
import threading
from typing import TYPE_CHECKING, Final

if TYPE_CHECKING:
    from collections.abc import Callable

READ_SIZE: Final = 65_536
MAX_LINE: Final = 8_192
"""Bytes without a newline that are logged as a line of their own."""
DRAIN_SECONDS: Final = 1.0
"""How long closing waits for the readers to log what is still in the pipes."""


class FdRoute:
    """Leads descriptors 1 and 2 into `sink(line, is_error)` until `close()`.

    Args:
        sink: Gets each line (without its newline); called from a reader thread.
        fds: The descriptors to lead (1 and 2).
    """

    def __init__(self, sink: Callable[[str, bool], None], fds: tuple[int, ...] = (1, 2)) -> None:
        self._sink = sink
        self._saved: dict[int, int] = {}
        self._readers: list[threading.Thread] = []
        self._read_ends: list[int] = []
        self._handing = 0
        """Readers between reading a chunk and handing its lines to the sink."""
        for fd in fds:
            read_end, write_end = os.pipe()
            self._read_ends.append(read_end)
            self._saved[fd] = os.dup(fd)
            os.dup2(write_end, fd)
            os.close(write_end)
            reader = threading.Thread(
                target=self._read,
                args=(read_end, fd == 2),
                name=f"antflow-tui fd {fd}",
                daemon=True,
            )
            reader.start()
            self._readers.append(reader)

    @property
    def open(self) -> bool:
        return bool(self._saved)

    def caught_up(self) -> bool:
        """Every line written so far has reached the sink: the pipes are empty and no
        reader holds a chunk (what a last frame must wait for, to show everything)."""
        if self._handing:
            return False
        for fd in self._read_ends:
            try:
                waiting = struct.unpack("i", fcntl.ioctl(fd, termios.FIONREAD, b"\0" * 4))[0]
            except OSError:  # closed: nothing more can come
                continue
            if waiting:
                return False
        return True

    def restore(self) -> None:
        """Put the descriptors back (safe from any thread, and more than once)."""
        saved, self._saved = self._saved, {}
        for fd, original in saved.items():
            try:
                os.dup2(original, fd)
            finally:
                os.close(original)

    def close(self) -> None:
        """Put the descriptors back and log what is still in the pipes."""
        self.restore()
        for reader in self._readers:
            # A subprocess still holding a pipe keeps it open: do not wait for it.
            reader.join(DRAIN_SECONDS)

    def _read(self, fd: int, is_error: bool) -> None:
        decoder = codecs.getincrementaldecoder("utf-8")("replace")
        partial = ""
        try:
            while True:
                try:
                    chunk = os.read(fd, READ_SIZE)
                except OSError:
                    break
                self._handing += 1
                try:
                    text = decoder.decode(chunk, final=not chunk)
                    partial += text
                    *lines, partial = partial.split("\n")
                    if len(partial) >= MAX_LINE:
                        lines.append(partial)
                        partial = ""
                    for line in lines:
                        self._sink(line, is_error)
                finally:
                    self._handing -= 1
                if not chunk:
                    break
            if partial:
                self._sink(partial, is_error)
        finally:
            os.close(fd)
