"""The terminal the app draws on: its own descriptor, the stop key seen by the input
thread, and a way to give the terminal back from any thread.

`TerminalDriver` is Textual's Linux driver with three changes:

- it draws on a duplicate of the terminal's descriptor, so descriptors 1 and 2 can be led
  into the event log (`fdroute`) without the app's own output going with them;
- a write to a terminal that has gone (SIGHUP, a dropped ssh) is dropped instead of
  killing the writer thread, which would leave the app waiting on its full queue forever;
- its input thread tells `key_watch` about each stop-key press, so the watchdog can count
  them while the event loop is blocked and cannot;
- it asks its own descriptor for the terminal's size: Textual asks descriptor 1, which is a
  pipe while it is led into the event log, and would take every resize for 80x24.
"""

from __future__ import annotations

import contextlib
import io
import os
import sys
import termios
from typing import TYPE_CHECKING, Any, ClassVar, Final

from textual import events
from textual.drivers.linux_driver import LinuxDriver

if TYPE_CHECKING:
    from collections.abc import Callable

    from textual.app import App
    from textual.message import Message

RESTORE: Final = (
    "\x1b[<u"  # kitty keyboard protocol off (before leaving the alternate screen)
    "\x1b[?1000l\x1b[?1003l\x1b[?1015l\x1b[?1006l\x1b[?1016l"  # mouse reporting off
    "\x1b[?2004l"  # bracketed paste off
    "\x1b[?1004l"  # focus events off
    "\x1b[?2048l"  # in-band resize off
    "\x1b[?7h"  # line wrap on
    "\x1b[0m"  # plain text
    "\x1b[?1049l"  # main screen
    "\x1b[?25h"  # cursor shown
)
"""Everything Textual's application mode turns on, turned off, in one write."""


class TerminalFile(io.TextIOBase):
    """Text written to a terminal descriptor; once the terminal has gone, writes are
    dropped (the first failure is kept in `broken`)."""

    def __init__(self, fd: int) -> None:
        super().__init__()
        self.fd = fd
        self.broken: OSError | None = None

    def writable(self) -> bool:
        return True

    def isatty(self) -> bool:
        return True

    def fileno(self) -> int:
        return self.fd

    def write(self, text: str) -> int:
        if self.broken is None:
            data = text.encode("utf-8", "replace")
            try:
                while data:
                    data = data[os.write(self.fd, data) :]
            except OSError as error:
                self.broken = error
        return len(text)

    def flush(self) -> None:
        return


class TerminalDriver(LinuxDriver):
    """Textual's Linux driver, changed as the module docstring says."""

    key_watch: ClassVar[Callable[[str], None] | None] = None
    """Told of every key the input thread reads (set by the app before it runs)."""
    terminal: ClassVar[TerminalFile | None] = None
    """Where the driver draws (set by the app before it runs)."""

    def __init__(self, app: App[Any], **kwargs: Any) -> None:
        super().__init__(app, **kwargs)
        if self.terminal is not None:
            # Textual types it as a TextIOWrapper; the driver only writes and flushes it.
            self._file = self.terminal  # type: ignore[assignment]

    def _get_terminal_size(self) -> tuple[int, int]:
        terminal = self.terminal
        if terminal is not None:
            try:
                size = os.get_terminal_size(terminal.fd)
            except OSError:
                pass  # not a terminal after all: Textual's own lookup
            else:
                if size.columns and size.lines:
                    return size.columns, size.lines
        return super()._get_terminal_size()

    def process_message(self, message: Message) -> None:
        watch = TerminalDriver.key_watch
        if watch is not None and isinstance(message, events.Key):
            watch(message.key)
        super().process_message(message)


def open_terminal() -> TerminalFile:
    """A duplicate of the terminal the app is about to draw on (stderr, as Textual)."""
    stream = sys.__stderr__
    fd = stream.fileno() if stream is not None else 2
    return TerminalFile(os.dup(fd))


def restore_terminal(terminal: TerminalFile | None, attrs: list[Any] | None) -> None:
    """Give the terminal back, from any thread, whatever state the app left it in: line
    mode and echo (`attrs`, saved before the app started), the main screen, the cursor,
    no mouse reporting."""
    if attrs is not None:
        with contextlib.suppress(termios.error, OSError, ValueError):
            termios.tcsetattr(sys.__stdin__.fileno(), termios.TCSANOW, attrs)  # type: ignore[union-attr]
    if terminal is not None:
        terminal.write(RESTORE)


def terminal_attrs() -> list[Any] | None:
    """The terminal's settings now (None when stdin is not a terminal)."""
    try:
        return termios.tcgetattr(sys.__stdin__.fileno())  # type: ignore[union-attr]
    except (termios.error, OSError, ValueError, AttributeError):
        return None
