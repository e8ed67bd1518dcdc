"""Keep the script's own output off the screen behind the app: into the event log.

While the app runs, `sys.stdout` and `sys.stderr` are `LineWriter`s: `print("got", n)`
writes four pieces, and the log gets the one line they make. Logging handlers the script
set up before the app started (``logging.basicConfig()`` at import) hold the real terminal
streams, so their streams are swapped for a `LineWriter` too, and swapped back afterwards
(the script's formats and levels stay); each line they write carries its record's level.
Records no handler takes (a script that never set logging up) would go to stderr through
`logging.lastResort`: they come with their level too. `sys.stdin` is an `OwnedStdin`: the terminal's
keys belong to the app, so a script's ``input()`` gets `StdinOwnedError` at once instead
of hanging behind a screen it cannot draw on.
"""

from __future__ import annotations

import io
import logging
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Final, TextIO

from antflow._safe import safe_str

LineSink = Callable[[str, bool], None]
LevelSink = Callable[[str, str], None]
"""Gets each line a logging handler wrote, with its record's level name."""

MAX_LINE: Final = 8_192
"""A piece of output this long without a newline is logged as a line of its own."""


class StdinOwnedError(EOFError):
    """The script read from stdin while antflow-tui owns the terminal.

    An EOFError, so a script that reads "until there is no more input" just stops.
    """


STDIN_MESSAGE: Final = (
    "stdin is owned by antflow-tui: a script running under it cannot read the terminal "
    "(input(), sys.stdin). Pass answers another way (an argument, an environment "
    "variable, a file), or run the script with python to answer its prompts."
)


class LineWriter(io.TextIOBase):
    """A text stream that hands whole lines to `sink(line, is_error)`.

    Args:
        sink: Gets each finished line (without its newline).
        error: Lines are the script's errors (stderr).
        tty: What `isatty()` says. True lets a script's Rich console keep its colours,
            which the event log shows (see `safe_text.ansi_text`).
        fileno: The descriptor `fileno()` returns (None: it has none).
    """

    def __init__(
        self, sink: LineSink, *, error: bool, tty: bool = False, fileno: int | None = None
    ) -> None:
        super().__init__()
        self._sink = sink
        self._error = error
        self._tty = tty
        self._fileno = fileno
        self._partial = ""
        # Threads print too (logging from a thread pool); the partial line is shared.
        self._lock = threading.Lock()

    @property
    def encoding(self) -> str:  # type: ignore[override]
        return "utf-8"

    @property
    def errors(self) -> str:  # type: ignore[override]
        return "replace"

    def writable(self) -> bool:
        return True

    def isatty(self) -> bool:
        return self._tty

    def fileno(self) -> int:
        if self._fileno is None:
            raise io.UnsupportedOperation("fileno")
        return self._fileno

    def write(self, text: str) -> int:
        if not isinstance(text, str):
            text = safe_str(text)
        with self._lock:
            self._partial += text
            if "\n" not in self._partial and len(self._partial) < MAX_LINE:
                return len(text)
            *lines, self._partial = self._partial.split("\n")
            if len(self._partial) >= MAX_LINE:
                lines.append(self._partial)
                self._partial = ""
        for line in lines:
            self._sink(line, self._error)
        return len(text)

    def flush(self) -> None:
        # A flush does not end a line: print(x, end="", flush=True) pieces stay one line.
        return

    def finish(self) -> None:
        """Hand over what is left of an unfinished line (the app is closing)."""
        with self._lock:
            partial, self._partial = self._partial, ""
        if partial:
            self._sink(partial, self._error)


class OwnedStdin(io.TextIOBase):
    """`sys.stdin` while the app owns the terminal: reading raises `StdinOwnedError`.

    Args:
        refused: Called before raising (the app logs it and shows the pending prompt).
    """

    def __init__(self, refused: Callable[[], None]) -> None:
        super().__init__()
        self._refused = refused

    def readable(self) -> bool:
        return True

    def isatty(self) -> bool:
        return False

    def fileno(self) -> int:
        raise io.UnsupportedOperation("fileno")

    def _refuse(self) -> str:
        self._refused()
        raise StdinOwnedError(STDIN_MESSAGE)

    def read(self, size: int | None = -1) -> str:
        return self._refuse()

    def readline(self, size: int | None = -1) -> str:  # type: ignore[override]
        return self._refuse()

    def readlines(self, hint: int | None = -1) -> list[str]:  # type: ignore[override]
        self._refuse()
        return []


def _terminal_streams() -> set[int]:
    streams = {sys.__stdout__, sys.__stderr__, sys.stdout, sys.stderr}
    return {id(stream) for stream in streams if stream is not None}


class _RecordLevel(logging.Filter):
    """Notes the level of the record a handler is about to write (per thread: the filter
    and the write happen in the thread that logs)."""

    def __init__(self) -> None:
        super().__init__()
        self.local = threading.local()

    def filter(self, record: logging.LogRecord) -> bool:
        self.local.level = record.levelname
        return True

    def level(self, is_error: bool) -> str:
        return getattr(self.local, "level", None) or ("ERROR" if is_error else "INFO")


def _levelled(sink: LevelSink, noted: _RecordLevel, *, error: bool) -> LineWriter:
    def write(line: str, is_error: bool) -> None:
        sink(line, noted.level(is_error))

    return LineWriter(write, error=error)


@contextmanager
def logging_into(sink: LineSink, levelled: LevelSink | None = None) -> Iterator[None]:
    """While inside, logging handlers that write to the terminal write to `sink` instead
    (to `levelled`, with each record's level, when given), and so do records no handler
    takes (`logging.lastResort`)."""
    terminal = _terminal_streams()
    swapped: list[tuple[logging.StreamHandler[TextIO], TextIO, _RecordLevel | None]] = []
    loggers = [logging.getLogger()] + [
        logger
        for logger in logging.Logger.manager.loggerDict.values()
        if isinstance(logger, logging.Logger)
    ]
    for logger in loggers:
        for handler in logger.handlers:
            if isinstance(handler, logging.StreamHandler) and id(handler.stream) in terminal:
                error = handler.stream in (sys.__stderr__, sys.stderr)
                noted = None
                if levelled is None:
                    writer = LineWriter(sink, error=error)
                else:
                    noted = _RecordLevel()
                    handler.addFilter(noted)
                    writer = _levelled(levelled, noted, error=error)
                previous = handler.setStream(writer)
                if previous is not None:
                    swapped.append((handler, previous, noted))
                elif noted is not None:
                    handler.removeFilter(noted)
    last_resort = logging.lastResort
    if levelled is not None and last_resort is not None:
        noted = _RecordLevel()
        fallback: logging.Handler = logging.StreamHandler(_levelled(levelled, noted, error=True))
        fallback.setLevel(last_resort.level)
        fallback.addFilter(noted)
        logging.lastResort = fallback
    try:
        yield
    finally:
        logging.lastResort = last_resort
        for handler, stream, noted in swapped:
            handler.setStream(stream)
            if noted is not None:
                handler.removeFilter(noted)


@contextmanager
def script_streams(
    sink: LineSink, refused: Callable[[], None], *, routed_fds: bool = False
) -> Iterator[LineWriter]:
    """While inside, `sys.stdout`/`sys.stderr` write lines to `sink` and `sys.stdin`
    refuses to be read (see the module docstring). Yields the stdout writer (a prompt
    waiting in it is shown when stdin is refused).

    Args:
        routed_fds: Descriptors 1 and 2 lead to the event log too (`fdroute`), so the
            streams can give them as their `fileno()` (a subprocess writing there).
    """
    saved = sys.stdout, sys.stderr, sys.stdin
    stdout = LineWriter(sink, error=False, tty=True, fileno=1 if routed_fds else None)
    stderr = LineWriter(sink, error=True, tty=True, fileno=2 if routed_fds else None)
    stdin = OwnedStdin(refused)
    sys.stdout, sys.stderr, sys.stdin = stdout, stderr, stdin
    try:
        yield stdout
    finally:
        stdout.finish()
        stderr.finish()
        # Textual may have put its own redirection back first (it restores the real
        # streams as its app ends): only what is still ours is given back.
        for name, mine, before in zip(
            ("stdout", "stderr", "stdin"), (stdout, stderr, stdin), saved, strict=True
        ):
            if getattr(sys, name) is mine:
                setattr(sys, name, before)
