"""Keep the script's own output off the screen behind the app: into the event log.

`print()` is captured by Textual and handed to the app as Print events. Logging handlers
the script set up before the app started (``logging.basicConfig()`` at import) hold the
real terminal streams, so while the app runs their streams are swapped for a writer that
feeds the event log, and swapped back afterwards. The script's formats and levels stay.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TextIO

LineSink = Callable[[str, bool], None]


class LineWriter:
    """A file-like that turns writes into whole lines for `sink(line, is_error)`."""

    def __init__(self, sink: LineSink, *, error: bool) -> None:
        self._sink = sink
        self._error = error
        self._partial = ""

    def write(self, text: str) -> int:
        if not isinstance(text, str):
            text = str(text)
        self._partial += text
        if "\n" in self._partial:
            *lines, self._partial = self._partial.split("\n")
            for line in lines:
                self._sink(line, self._error)
        return len(text)

    def flush(self) -> None:
        if self._partial:
            self._sink(self._partial, self._error)
            self._partial = ""

    def isatty(self) -> bool:
        return False


def _terminal_streams() -> set[int]:
    streams = {sys.__stdout__, sys.__stderr__, sys.stdout, sys.stderr}
    return {id(stream) for stream in streams if stream is not None}


@contextmanager
def logging_into(sink: LineSink) -> Iterator[None]:
    """While inside, logging handlers that write to the terminal write to `sink` instead."""
    terminal = _terminal_streams()
    swapped: list[tuple[logging.StreamHandler[TextIO], TextIO]] = []
    loggers = [logging.getLogger()] + [
        logger
        for logger in logging.Logger.manager.loggerDict.values()
        if isinstance(logger, logging.Logger)
    ]
    for logger in loggers:
        for handler in logger.handlers:
            if isinstance(handler, logging.StreamHandler) and id(handler.stream) in terminal:
                writer = LineWriter(sink, error=handler.stream in (sys.__stderr__, sys.stderr))
                previous = handler.setStream(writer)  # type: ignore[arg-type]
                if previous is not None:
                    swapped.append((handler, previous))
    try:
        yield
    finally:
        for handler, stream in swapped:
            handler.setStream(stream)
