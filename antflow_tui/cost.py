"""What a run costs, as the app shows it (issue 22): money and tokens in the header, per
stage, per worker and per item.

Pure functions of the records: each stage's `Usage` (cumulative, in every snapshot), and
each pipeline's `BudgetRow`. The header's part reads ``$12.40 of $20.00 · 1.2M tok ·
$0.004/item · ≈ $31 at the end``: what was spent (of the budget, when there is one), the
tokens, the cost of a completed item, and where the run's total cost is heading, from the
items it has left. Without prices the money is unknown and only tokens are shown, never
$0. Every number may come from a damaged file: one that is not finite counts as unknown.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

from rich.text import Text

from antflow.runstream.records import added_usage
from antflow_tui.formatting import fit_count, format_usd, plural
from antflow_tui.gauges import finite

if TYPE_CHECKING:
    from collections.abc import Iterable, Sequence

    from antflow.runstream.records import BudgetRow, Snapshot, Usage, WorkerRow
    from antflow_tui.accounting import RunCounts
    from antflow_tui.palette import Palette

COST_WIDTH: Final = 8
"""Cells of a cost in a table column."""
SEPARATOR: Final = " · "


def usd_cell(amount: float | None, width: int = COST_WIDTH) -> str:
    """A cost in at most `width` cells ('' when unknown): $12.40, $1,234, $1.2M."""
    shown = finite(amount)
    if shown is None:
        return ""
    text = format_usd(shown)
    if len(text) <= width:
        return text
    if abs(shown) < 1:
        return "<$0.001"  # a few tokens of a cheap model
    return "$" + fit_count(round(shown), width - 1)


def tokens_text(count: int) -> str:
    """Tokens, short: 812, 38.2k, 1.2M."""
    return fit_count(max(count, 0), 5)


def usage_cost(usage: Usage | None) -> float | None:
    """The US dollars a usage reports (None: none, or not a number)."""
    return None if usage is None else finite(usage.cost)


def per_item_words(usage: Usage | None, items: int) -> str:
    """' · $0.0035 per item' for a stage or a worker that finished `items` (''
    without a cost or an item)."""
    spent = usage_cost(usage)
    if spent is None or items <= 0:
        return ""
    return f" · {format_usd(spent / items)} per item"


def spend_words(usage: Usage | None) -> str:
    """What a run spent, for the summary: '$0.742 (102k tokens)', '102k tokens (no
    prices)', with the calls without a price ('' when nothing was reported)."""
    if usage is None:
        return ""
    tokens = f"{tokens_text(max(usage.input_tokens, 0) + max(usage.output_tokens, 0))} tokens"
    spent = usage_cost(usage)
    words = f"{tokens} (no prices)" if spent is None else f"{format_usd(spent)} ({tokens})"
    if spent is not None and usage.unpriced > 0:
        words += f", {plural(usage.unpriced, 'call')} without a price"
    return words


# ---------------------------------------------------------------------- a run's spend


def pipeline_usage(snapshot: Snapshot) -> Usage | None:
    """A pipeline's usage so far: its stages' added up (None: nothing reported)."""
    return added_usage(stage.usage for stage in snapshot.stages)


def run_usage(snapshots: Iterable[Snapshot]) -> Usage | None:
    """The run's usage so far: every pipeline's, from its latest snapshot."""
    return added_usage(pipeline_usage(snapshot) for snapshot in snapshots)


def worker_usage(workers: Iterable[WorkerRow]) -> Usage | None:
    """The usage of these workers' tasks, added up (a stage's workers: its own)."""
    return added_usage(worker.usage for worker in workers)


def run_budgets(snapshots: Iterable[Snapshot]) -> list[BudgetRow]:
    """Every Budget of the run, once (one shared by pipelines is in each one's snapshots:
    the newest wins), in the order of the pipelines that have them."""
    found: dict[int, tuple[float, BudgetRow]] = {}
    for snapshot in sorted(snapshots, key=lambda one: one.pipeline):
        row = snapshot.budget
        if row is None:
            continue
        known = found.get(row.budget)
        if known is None or snapshot.at >= known[0]:
            found[row.budget] = (snapshot.at, row)
    return [row for _, row in found.values()]


@dataclass(frozen=True, slots=True)
class RunCost:
    """What the run has spent, and where it is heading."""

    usage: Usage | None
    """Every stage's usage added up (None: nothing reported)."""
    budgets: tuple[BudgetRow, ...]
    per_item_usd: float | None = None
    """US dollars per completed item (None: no cost, or nothing completed)."""
    per_item_tokens: float | None = None
    projected_usd: float | None = None
    """The run's cost once every item left is done, at the cost per item so far (None:
    the total is not known, the run is over, or nothing is done yet)."""
    projected_tokens: float | None = None

    @property
    def spent_usd(self) -> float | None:
        return usage_cost(self.usage)

    @property
    def tokens(self) -> int:
        usage = self.usage
        return 0 if usage is None else max(usage.input_tokens, 0) + max(usage.output_tokens, 0)

    @property
    def unpriced(self) -> int:
        return 0 if self.usage is None else max(self.usage.unpriced, 0)


def run_cost(snapshots: Sequence[Snapshot], counts: RunCounts, *, over: bool) -> RunCost | None:
    """The run's cost at its latest snapshots (None: nothing reported a usage and it has
    no budget: the header says nothing of cost).

    Args:
        counts: The run's counts (items completed, and the total).
        over: The run has ended: nothing is projected.
    """
    usage = run_usage(snapshots)
    budgets = tuple(run_budgets(snapshots))
    if usage is None and not budgets:
        return None
    spent = usage_cost(usage)
    tokens = 0 if usage is None else max(usage.input_tokens, 0) + max(usage.output_tokens, 0)
    completed = counts.completed
    per_item_usd = spent / completed if spent is not None and completed > 0 else None
    per_item_tokens = tokens / completed if tokens and completed > 0 else None
    projected_usd = projected_tokens = None
    # Done earlier items (a resume) cost this run nothing: they are not to come.
    done_earlier = sum(max(snapshot.done_earlier, 0) for snapshot in snapshots)
    done = counts.done
    if not over and counts.total is not None and done > 0:
        share = max(counts.total - done_earlier, done) / done
        projected_usd = None if spent is None else spent * share
        projected_tokens = tokens * share if tokens else None
    return RunCost(
        usage=usage,
        budgets=budgets,
        per_item_usd=per_item_usd,
        per_item_tokens=per_item_tokens,
        projected_usd=projected_usd,
        projected_tokens=projected_tokens,
    )


def cost_line(cost: RunCost, width: int, palette: Palette) -> Text:
    """The header's cost part in at most `width` cells ('$12.40 of $20.00 · 1.2M tok ·
    $0.004/item · ≈ $31 at the end'), what fits: the spend first, then the tokens, the
    projection, the cost per item, calls without a price."""
    parts: list[tuple[Text, int]] = []
    spent = cost.spent_usd
    dollar_limit = next((b.usd for b in cost.budgets if finite(b.usd) is not None), None)
    token_limit = next((b.tokens for b in cost.budgets if b.tokens is not None), None)
    paused = any(budget.paused for budget in cost.budgets)
    style = palette("held") if paused else "bold"
    # What a budget limits goes first: a token budget's tokens before an unlimited spend.
    tokens_first = token_limit is not None and dollar_limit is None
    if spent is not None or dollar_limit is not None:
        money = Text(format_usd(spent or 0.0), style="" if tokens_first else style)
        if dollar_limit is not None:
            money.append(f" of {format_usd(dollar_limit)}", style="dim")
        parts.append((money, 1 if tokens_first else 0))
    limited = tokens_first or spent is None
    tokens = Text(f"{tokens_text(cost.tokens)}", style=style if limited else "")
    if token_limit is not None:
        tokens.append(f" of {tokens_text(token_limit)}", style="dim")
    tokens.append(" tok", style="dim")
    parts.append((tokens, 0 if tokens_first else 1))
    if spent is not None:
        if cost.projected_usd is not None:
            parts.append((Text(f"≈ {format_usd(cost.projected_usd)} at the end"), 2))
        if cost.per_item_usd is not None:
            parts.append((Text(f"{format_usd(cost.per_item_usd)}/item"), 3))
    else:
        if cost.projected_tokens is not None:
            ahead = tokens_text(round(cost.projected_tokens))
            parts.append((Text(f"≈ {ahead} tok at the end"), 2))
        if cost.per_item_tokens is not None:
            each = tokens_text(round(cost.per_item_tokens))
            parts.append((Text(f"{each} tok/item"), 3))
    if cost.unpriced:
        parts.append((Text(f"{plural(cost.unpriced, 'call')} without a price", "dim"), 4))
    return _fit(parts, width)


def _fit(parts: list[tuple[Text, int]], width: int) -> Text:
    """The parts in their order, leaving out the least telling (highest priority number)
    until they fit in `width` cells."""
    kept = list(parts)

    def length() -> int:
        return sum(text.cell_len for text, _ in kept) + len(SEPARATOR) * max(len(kept) - 1, 0)

    while kept and length() > width:
        kept.remove(max(kept, key=lambda part: part[1]))
    line = Text(no_wrap=True, overflow="ellipsis")
    for index, (text, _) in enumerate(kept):
        if index:
            line.append(SEPARATOR, style="dim")
        line.append_text(text)
    return line
