"""Log levels of the event log's lines: the script's logging levels, and the same scale for
its prints and the run's events, so ``/level:warning`` means "warnings and worse" for every
line.

Printed lines are INFO, lines written to stderr ERROR (tracebacks land there); an item
that failed is an ERROR, a retry a WARNING, every other event INFO.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Final

if TYPE_CHECKING:
    from collections.abc import Mapping

    from antflow.runstream.records import EventKind

DEBUG: Final = 10
INFO: Final = 20
WARNING: Final = 30
ERROR: Final = 40
CRITICAL: Final = 50

KEPT: Final = WARNING
"""Lines at this level and above are kept apart from the routine ones (see `EventLog`)."""

NAMES: Final[Mapping[str, int]] = {
    "debug": DEBUG,
    "info": INFO,
    "warning": WARNING,
    "warn": WARNING,
    "error": ERROR,
    "err": ERROR,
    "critical": CRITICAL,
    "fatal": CRITICAL,
}
"""Level names a filter accepts (any case)."""

_STREAMS: Final[Mapping[str, int]] = {"out": INFO, "control": INFO, "err": ERROR}

_EVENTS: Final[Mapping[str, int]] = {
    "failed": ERROR,
    "retrying": WARNING,
    "retry": WARNING,
    "fail": WARNING,
    "unfinished": WARNING,
}
"""Events above INFO: a failed item, and what may lead to one (a task attempt that failed,
a retry, an item left unfinished)."""


def line_level(stream: str) -> int:
    """The level of a script's line by its `LogLine.stream`: ``out``, ``err`` or a logging
    level name (custom levels count as INFO unless they say ``Level 35``)."""
    known = _STREAMS.get(stream)
    if known is not None:
        return known
    named = NAMES.get(stream.lower())
    if named is not None:
        return named
    if stream.startswith("Level "):
        number = stream[6:]
        if number.isdigit():
            return int(number)
    return INFO


def event_level(kind: EventKind | str) -> int:
    """The level of an event of this kind."""
    return _EVENTS.get(kind, INFO)


def parse_level(text: str) -> int:
    """``error`` -> 40; a number is taken as it is.

    Raises:
        ValueError: not a level name or number.
    """
    name = text.strip().lower()
    if name.isdigit():
        return int(name)
    if name not in NAMES:
        known = ", ".join(("debug", "info", "warning", "error", "critical"))
        raise ValueError(f"level:{text} is not a level; use one of {known}")
    return NAMES[name]


def level_name(level: int) -> str:
    """40 -> 'ERROR' (the nearest name at or below it)."""
    for name, value in (
        ("CRITICAL", CRITICAL),
        ("ERROR", ERROR),
        ("WARNING", WARNING),
        ("INFO", INFO),
    ):
        if level >= value:
            return name
    return "DEBUG"
