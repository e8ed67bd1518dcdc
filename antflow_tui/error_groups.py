"""Error groups: failures of one type whose messages differ only in numbers, ids, URLs or
hex, counted as one ("300 × ParseError: unexpected tag at line <n>").

Pure functions over error records. A group is keyed by the error type and the message's
first line with the varying parts masked (`normalise_message`, the engine's
`antflow.runstream.grouping`, which a comparison of two runs groups by too), so "timeout
after 3.1s on https://a/1" and "timeout after 8s on https://b/2" fall together.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

from rich.text import Text

from antflow.runstream.grouping import MESSAGE_LENGTH, error_key
from antflow.runstream.grouping import GroupKey as GroupKey
from antflow.runstream.grouping import normalise_message as normalise_message
from antflow_tui.formatting import format_clock, format_count
from antflow_tui.palette import DEFAULT, Palette
from antflow_tui.safe_text import literal
from antflow_tui.source.state import short_type

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Sequence

    from antflow.runstream.records import ErrorRecord, ItemKey


def group_key(failure: ErrorRecord) -> GroupKey:
    return error_key(failure.type, failure.message)


class GroupKeys:
    """Each failure's group key, masked once per failure rather than on every change of
    the list (a message cache thrashes when every message differs). Holds the failures
    of the latest `update` only, so it is bounded by what the panel holds."""

    __slots__ = ("_known",)

    def __init__(self) -> None:
        self._known: dict[int, tuple[ErrorRecord, GroupKey]] = {}

    def update(self, failures: Iterable[ErrorRecord]) -> None:
        known = self._known
        fresh: dict[int, tuple[ErrorRecord, GroupKey]] = {}
        for failure in failures:
            held = known.get(id(failure))
            if held is None or held[0] is not failure:
                held = (failure, group_key(failure))
            fresh[id(failure)] = held
        self._known = fresh

    def __call__(self, failure: ErrorRecord) -> GroupKey:
        held = self._known.get(id(failure))
        return held[1] if held is not None and held[0] is failure else group_key(failure)


@dataclass(frozen=True, slots=True)
class ErrorGroup:
    """Failed items whose errors share a type and a normalised message."""

    key: GroupKey
    count: int
    first_seen: float
    last_seen: float
    stages: tuple[str, ...]
    """The stages they failed in, in the order first seen."""
    items: tuple[tuple[int, ItemKey], ...]
    """(pipeline, item) of each, oldest first."""
    example: str
    """One of the messages as it was (the newest)."""
    retried: bool = False
    """Errors of attempts tried again (no item failed for them), not final failures."""

    @property
    def type(self) -> str:
        return self.key[0]

    @property
    def pattern(self) -> str:
        return self.key[1]


def group_failures(
    failures: Iterable[ErrorRecord],
    key_of: Callable[[ErrorRecord], GroupKey] = group_key,
    *,
    retried: bool = False,
) -> list[ErrorGroup]:
    """Failures grouped, the biggest group first (then the newest); `retried`: they are
    errors of attempts tried again."""
    counts: Counter[GroupKey] = Counter()
    first: dict[GroupKey, float] = {}
    last: dict[GroupKey, float] = {}
    stages: dict[GroupKey, dict[str, None]] = {}
    items: dict[GroupKey, list[tuple[int, ItemKey]]] = {}
    example: dict[GroupKey, str] = {}
    for failure in failures:
        key = key_of(failure)
        counts[key] += 1
        if key not in first or failure.at < first[key]:
            first[key] = failure.at
        if key not in last or failure.at >= last[key]:
            last[key] = failure.at
            example[key] = failure.message
        stages.setdefault(key, {})[failure.stage] = None
        items.setdefault(key, []).append((failure.pipeline, failure.item))
    groups = [
        ErrorGroup(
            key=key,
            count=count,
            first_seen=first[key],
            last_seen=last[key],
            stages=tuple(stages[key]),
            items=tuple(items[key]),
            example=example[key],
            retried=retried,
        )
        for key, count in counts.items()
    ]
    groups.sort(key=lambda group: (-group.count, -group.last_seen))
    return groups


def in_group(failures: Sequence[ErrorRecord], key: GroupKey) -> list[ErrorRecord]:
    """The failures of one group, in their order."""
    return [failure for failure in failures if group_key(failure) == key]


def type_counts(failures: Iterable[ErrorRecord]) -> dict[str, int]:
    """Failures by error type (qualified names)."""
    return dict(Counter(failure.type for failure in failures))


# ---------------------------------------------------------------------- sorting


def failure_sort_key(failure: ErrorRecord, column: str) -> tuple[object, ...]:
    """What a failed item sorts by in a column of the error list."""
    if column == "item":
        return (_item_order(failure.item),)
    if column == "stage":
        return (failure.stage.casefold(), failure.at)
    if column == "error":
        return (short_type(failure.type).casefold(), failure.at)
    if column == "message":
        # The part a row can show: whole messages may be huge (a response body).
        return (failure.message[:MESSAGE_LENGTH].casefold(), failure.at)
    if column == "tries":
        return (failure.attempt, failure.at)
    return (failure.at, failure.number)


def group_sort_key(group: ErrorGroup, column: str) -> tuple[object, ...]:
    """What a group sorts by in a column of the groups list."""
    if column == "error":
        return (short_type(group.type).casefold(), group.count)
    if column == "message":
        return (group.pattern.casefold(), group.count)
    if column == "stages":
        return (", ".join(group.stages).casefold(), group.count)
    if column == "first":
        return (group.first_seen,)
    if column == "last":
        return (group.last_seen,)
    return (group.count, group.last_seen)


def _item_order(item: ItemKey) -> tuple[int, float, str]:
    """Numbers in numeric order before every other id, in text order."""
    if isinstance(item, bool) or not isinstance(item, int | float):
        return (1, 0.0, str(item))
    return (0, float(item), "")


# ---------------------------------------------------------------------- rows

GROUP_COLUMNS: Final = (
    ("count", "Count"),
    ("error", "Error"),
    ("message", "Message"),
    ("stages", "Stages"),
    ("first", "First"),
    ("last", "Last"),
)
"""The groups list's column keys and headings."""


def group_cells(group: ErrorGroup, started: float, palette: Palette = DEFAULT) -> list[Text]:
    """One group's cells, in `GROUP_COLUMNS` order; times are into the run."""
    error = literal(short_type(group.type), "", 24)
    error.stylize(palette("error-type"))
    count = Text(format_count(group.count), style="bold", justify="right")
    if group.retried:
        # Attempts tried again, not failed items: marked as the stage table marks them.
        count = Text(f"↻{format_count(group.count)}", style=palette.status("retrying"))
        count.justify = "right"
    return [
        count,
        error,
        Text(group.pattern or "(no message)", no_wrap=True, overflow="ellipsis"),
        literal(", ".join(group.stages), "", 40),
        Text(format_clock(group.first_seen - started), style="dim"),
        Text(format_clock(group.last_seen - started)),
    ]
