"""Filters typed after `/`: free text plus ``status:``, ``stage:``, ``item:``, ``error:``,
``worker:`` and ``level:``.

Every term must match (AND). Free text matches anywhere in what the row shows, ignoring
case; ``item:`` matches the item id exactly; ``level:warning`` keeps lines at that level
and above (`antflow_tui.levels`); the other qualifiers match a part of the field, ignoring
case. Pure: rows are described by `Facts`, not by widgets.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass, field
from typing import Final

from antflow_tui.levels import INFO, parse_level

QUALIFIERS: Final = ("status", "stage", "item", "error", "worker", "level")


@dataclass(frozen=True, slots=True)
class Facts:
    """What a row says about itself, for matching."""

    text: str = ""
    """Everything the row shows, as plain text."""
    status: str = ""
    stage: str = ""
    item: str = ""
    error: str = ""
    worker: str = ""
    level: int = INFO
    """Its log level (`antflow_tui.levels`)."""


@dataclass(frozen=True, slots=True)
class Filter:
    """A parsed filter."""

    source: str = ""
    words: tuple[str, ...] = ()
    fields: tuple[tuple[str, str], ...] = field(default=())
    min_level: int | None = None
    """``level:``: only rows at this level or above."""

    @property
    def empty(self) -> bool:
        return not self.words and not self.fields and self.min_level is None

    def matches(self, facts: Facts) -> bool:
        if self.min_level is not None and facts.level < self.min_level:
            return False
        text = facts.text.lower()
        if any(word not in text for word in self.words):
            return False
        for name, wanted in self.fields:
            value: str = getattr(facts, name)
            if name == "item":
                if value != wanted:
                    return False
            elif wanted.lower() not in value.lower():
                return False
        return True


class FilterError(ValueError):
    """The filter text cannot be parsed; the message says why."""


def parse_filter(source: str) -> Filter:
    """Parse what the user typed.

    Raises:
        FilterError: unbalanced quotes, or a qualifier without a value.
    """
    try:
        tokens = shlex.split(source)
    except ValueError as error:
        raise FilterError(f"cannot read the filter: {error}") from None
    words: list[str] = []
    fields: list[tuple[str, str]] = []
    min_level: int | None = None
    for token in tokens:
        name, colon, value = token.partition(":")
        # Only the known qualifiers are qualifiers: "http://x" or "a:b" are words.
        if colon and name in QUALIFIERS:
            if not value:
                raise FilterError(f"{name}: needs a value, as in {name}:something")
            if name == "level":
                try:
                    min_level = parse_level(value)
                except ValueError as error:
                    raise FilterError(str(error)) from None
            else:
                fields.append((name, value))
        else:
            words.append(token.lower())
    return Filter(
        source=source.strip(), words=tuple(words), fields=tuple(fields), min_level=min_level
    )
