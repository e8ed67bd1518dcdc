"""Rate limits, concurrency and usage as the app shows them (issue 21).

Pure functions of the records (`LimitRow`, `StageLimits`, `Usage` in
`antflow.runstream.records`) and the source's clock: a gauge line per `RateLimit` for the
main screen (``fake-llm  tokens 212k/300k/min ▕██████▁▁▏  calls 4/s  429s 4/min  cool-down
0.6s``), the words for a stage's concurrency and a worker waiting its turn, and tokens
used. A cool-down is recorded as the moment it ends, so a replay counts it down between
snapshots as the live app does. Every number may come from a damaged file: a value that is
not finite shows as unknown, never as a traceback.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

from rich.text import Text

from antflow_tui.formatting import fit_count, format_duration, format_usd, plural
from antflow_tui.palette import DEFAULT, Palette
from antflow_tui.safe_text import clean

if TYPE_CHECKING:
    from collections.abc import Iterable, Sequence

    from antflow.runstream.records import LimitRow, Snapshot, StageConfig, StageLimits, Usage

GAUGE_WIDTH: Final = 8
"""Cells of a gauge's bar."""
FULL_SHARE: Final = 0.9
"""A gauge this full is drawn in the warning colour: the limit, not the work, sets the pace."""
MAX_LIMIT_LINES: Final = 2
"""Limits the main screen shows a line each for; more are counted on the last line."""
NAME_WIDTH: Final = 24
"""Characters of a limit's name a gauge line shows."""
CONCURRENCY: Final = "concurrency"
"""`WorkerRow.waiting_for` while a worker waits for room under its stage's concurrency
(``antflow._throttle.CONCURRENCY``)."""
COOL_DOWN: Final = "cool-down"
"""`WorkerRow.waiting_for` while a worker waits out a rate-limit answer."""
BUDGET: Final = "budget"
"""`WorkerRow.waiting_for` while a worker's call waits for the run's budget
(``antflow.budget.BUDGET``)."""


def finite(value: float | None) -> float | None:
    """`value` if it is a finite number (a damaged file may hold anything), else None."""
    if value is None or isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) else None


def cooldown_left(until: float | None, now: float) -> float:
    """Seconds of cool-down left at `now` (0: none)."""
    end = finite(until)
    return 0.0 if end is None else max(end - now, 0.0)


def cap_text(cap: float) -> str:
    """A cap as set: 300k, 50, 0.5."""
    if cap >= 1_000:
        return fit_count(round(cap), 4)
    return f"{cap:g}"


def gauge_bar(used: float, cap: float, width: int = GAUGE_WIDTH) -> str:
    """How much of `cap` `used` is, in `width` cells between ▕ and ▏ ('▕██████▁▁▏')."""
    if cap <= 0:
        return "▕" + "▁" * width + "▏"
    share = min(max(used / cap, 0.0), 1.0)
    full = round(share * width)
    if used > 0 and full == 0:
        full = 1  # something used shows, however little
    return "▕" + "█" * full + "▁" * (width - full) + "▏"


def seconds_left(seconds: float) -> str:
    """A countdown: 0.6s, 12.0s, 2m05s."""
    return f"{seconds:.1f}s" if seconds < 59.95 else format_duration(seconds)


@dataclass(frozen=True, slots=True)
class _Part:
    text: Text
    priority: int
    """Lower stays longer when the line is too narrow."""


def limit_line(row: LimitRow, now: float, width: int = 200, palette: Palette = DEFAULT) -> Text:
    """One RateLimit as a line: each cap it has with what was used of it (with a gauge),
    calls per second when they are not capped, 429s over the last minute, the cool-down
    left and the calls waiting; what does not fit in `width` cells is left out, least
    telling first."""
    parts: list[_Part] = []
    gauges = _gauges(row)
    for index, (label, used, cap, per) in enumerate(gauges):
        text = Text(f"{label} ")
        shown_used = fit_count(round(used), 4) if used >= 1_000 else f"{used:g}"
        text.append(f"{shown_used}/{cap_text(cap)}/{per} ", style="bold")
        style = palette("gauge-full") if used >= FULL_SHARE * cap else palette("gauge")
        text.append(gauge_bar(used, cap), style=style)
        parts.append(_Part(text, 1 if index == 0 else 4))
    if not any(label == "calls" for label, *_ in gauges):
        parts.append(_Part(Text(f"calls {max(row.calls_last_second, 0):,}/s"), 5))
    refused = max(row.rate_limited_last_minute, 0)
    rejected = Text("429s ")
    rejected.append(f"{refused:,}/min", style=palette("status-retry") if refused else "dim")
    parts.append(_Part(rejected, 3))
    left = cooldown_left(row.cooldown_until, now)
    if left > 0:
        parts.append(_Part(Text(f"cool-down {seconds_left(left)}", style=palette("held")), 2))
    if row.waiting > 0:
        parts.append(_Part(Text(f"{row.waiting:,} waiting", style="dim"), 6))
    name = Text(clean(row.name, NAME_WIDTH), style="bold")
    name.stylize(palette("stage"))
    return _fit(name, parts, width)


def _gauges(row: LimitRow) -> list[tuple[str, float, float, str]]:
    """(label, used, cap, per) of each cap the limit has, tokens first (the budget an
    LLM batch runs into)."""
    found = []
    for label, used, cap, per in (
        ("tokens", row.tokens_last_minute, row.tokens_per_minute, "min"),
        ("calls", row.calls_last_second, row.per_second, "s"),
        ("calls", row.calls_last_minute, row.per_minute, "min"),
    ):
        shown_cap = finite(cap)
        if shown_cap is not None and shown_cap > 0:
            found.append((label, float(max(used, 0)), shown_cap, per))
    return found


def _fit(name: Text, parts: Sequence[_Part], width: int) -> Text:
    kept = list(parts)
    gap = "  "

    def length() -> int:
        return name.cell_len + sum(len(gap) + part.text.cell_len for part in kept)

    while kept and length() > width:
        kept.remove(max(kept, key=lambda part: (part.priority, parts.index(part))))
    line = name.copy()
    for part in kept:
        line.append(gap)
        line.append_text(part.text)
    line.truncate(max(width, 1), overflow="ellipsis")
    return line


def newest_limits(snapshots: Iterable[Snapshot]) -> list[LimitRow]:
    """Every RateLimit of the run, once (a limit shared by pipelines is in each one's
    snapshots: the newest wins), in the order they first appear."""
    found: dict[str, tuple[float, LimitRow]] = {}
    for snapshot in sorted(snapshots, key=lambda one: one.pipeline):
        for row in snapshot.limits:
            known = found.get(row.name)
            if known is None or snapshot.at >= known[0]:
                found[row.name] = (snapshot.at, row)
    return [row for _, row in found.values()]


def limit_lines(
    snapshots: Iterable[Snapshot], now: float, width: int, palette: Palette = DEFAULT
) -> list[Text]:
    """The main screen's limit lines: one per RateLimit, at most `MAX_LIMIT_LINES` (the
    last says how many more the stage screens show)."""
    rows = newest_limits(snapshots)
    if len(rows) <= MAX_LIMIT_LINES:
        return [limit_line(row, now, width, palette) for row in rows]
    shown = rows[: MAX_LIMIT_LINES - 1]
    rest = len(rows) - len(shown)
    more = Text(f"+{rest} more rate limits: each stage's screen (enter) shows its own", "dim")
    return [*(limit_line(row, now, width, palette) for row in shown), more]


# ---------------------------------------------------------------------- stages


def concurrency_text(limits: StageLimits | None) -> str:
    """'13/24': the calls a stage lets run at once now, of the most it may ('' when it
    has no limits)."""
    if limits is None:
        return ""
    return f"{max(limits.concurrency, 0)}/{max(limits.max_concurrency, 0)}"


def concurrency_words(limits: StageLimits | None, workers: int) -> str:
    """'13 of 24 at once, adaptive (11 in flight)'; without limits, its workers."""
    if limits is None:
        return f"{workers:,} at once (its workers)"
    words = f"{max(limits.concurrency, 0):,} of {max(limits.max_concurrency, 0):,} at once"
    if limits.adaptive:
        words += ", adaptive"
    if limits.max_concurrency < workers:
        words += f" (set by hand; {workers:,} workers)"
    return words


def next_concurrency(limits: StageLimits | None, workers: int, change: int) -> int:
    """The concurrency `-` (change -1) or `+` (+1) asks for: fewer than run now, or more
    than the most allowed now (an adaptive stage's own level stays its to find)."""
    if limits is None:
        current = highest = workers
    else:
        highest = limits.max_concurrency
        current = min(limits.concurrency, highest)
    return current - 1 if change < 0 else highest + 1


def waiting_words(
    waiting_for: str, config: StageConfig | None, limits: StageLimits | None, now: float
) -> str:
    """What a worker holding an item waits for, in words: a task's concurrency slot, its
    stage's concurrency, a rate limit, the cool-down after a 429, or the run's budget."""
    name = clean(waiting_for, 40)
    if config is not None and waiting_for in config.concurrency_limits:
        return f"waiting for a {name} slot"
    if limits is not None and limits.limit is not None and waiting_for == limits.limit:
        return f"waiting for rate limit {name}"
    if waiting_for == COOL_DOWN:
        left = 0.0 if limits is None else cooldown_left(limits.cooldown_until, now)
        return (
            f"cooling down after a 429 ({seconds_left(left)} left)"
            if left
            else ("cooling down after a 429")
        )
    if waiting_for == BUDGET:
        return "waiting for the budget"
    if waiting_for == CONCURRENCY:
        if limits is None:
            return "waiting its turn (concurrency)"
        return f"waiting its turn (concurrency {concurrency_text(limits)})"
    # A task's slot (before issue 21 the only thing a worker waited for: recordings of
    # then say a task's name).
    return f"waiting for a {name} slot"


# ---------------------------------------------------------------------- usage


def usage_words(usage: Usage | None) -> str:
    """'1.2M tokens (900k in, 300k out) · $0.42 · fake-model-1 · 12 calls' ('' for none);
    prompt tokens read from a cache and calls without a price are said (issue 22)."""
    if usage is None:
        return ""
    given, taken = max(usage.input_tokens, 0), max(usage.output_tokens, 0)
    cached = min(max(usage.cached_input_tokens, 0), given)
    of_them = f", {_tokens(cached)} of them cached" if cached else ""
    words = f"{_tokens(given + taken)} tokens ({_tokens(given)} in{of_them}, {_tokens(taken)} out)"
    cost = finite(usage.cost)
    if cost is not None:
        words += f" · {format_usd(cost)}"
    if usage.model:
        words += f" · {clean(usage.model, 60)}"
    if usage.reports > 1:
        words += f" · {plural(usage.reports, 'call')}"
    if usage.unpriced > 0:
        words += f" · {plural(usage.unpriced, 'call')} without a price"
    return words


def tokens_cell(usage: Usage | None) -> str:
    """A stage's tokens in a table cell: 1.2M ('' when it reported none)."""
    if usage is None:
        return ""
    return _tokens(max(usage.input_tokens, 0) + max(usage.output_tokens, 0))


def _tokens(count: int) -> str:
    return fit_count(count, 5)
