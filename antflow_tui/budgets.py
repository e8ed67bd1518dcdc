"""A run's budget as the app shows it and raises it (issue 22): the banner while the run is
paused by its budget, the budget in words, and what the user typed to raise it.

Pure functions of `BudgetRow` records (live, replayed or attached alike).
"""

from __future__ import annotations

import math
import re
from typing import TYPE_CHECKING, Final

from antflow.runstream.records import RaiseBudget
from antflow_tui.cost import tokens_text
from antflow_tui.formatting import format_usd, plural
from antflow_tui.gauges import finite
from antflow_tui.safe_text import clean

if TYPE_CHECKING:
    from collections.abc import Sequence

    from antflow.runstream.records import BudgetRow

REASON_WIDTH: Final = 200
"""Characters of the engine's reason a banner shows."""
RAISE_HINT: Final = "+5 adds $5 · 20 sets $20 · +500k tok adds tokens · 2M tok sets tokens"
_PART = re.compile(
    r"^(?P<plus>\+)?\s*(?P<dollar>\$)?\s*(?P<number>\d[\d_]*(?:\.\d*)?|\.\d+)\s*"
    r"(?P<scale>[kKmMgG])?\s*(?P<unit>\$|usd|dollars?|tok|tokens?)?$",
    re.IGNORECASE,
)
_SCALES: Final = {"k": 1e3, "m": 1e6, "g": 1e9}


def paused_budget(budgets: Sequence[BudgetRow]) -> BudgetRow | None:
    """The budget the run is paused by, if any (the first, when several are)."""
    return next((budget for budget in budgets if budget.paused), None)


def budget_words(budget: BudgetRow) -> str:
    """'$0.0981 of $0.10 spent · $0.004 held by 2 calls running · 38,120 tokens (no token
    limit) · 3 calls without a price'."""
    parts = []
    limit = finite(budget.usd)
    spent = finite(budget.spent_usd) or 0.0
    if limit is not None:
        parts.append(f"{format_usd(spent)} of {format_usd(limit)} spent")
    elif spent:
        parts.append(f"{format_usd(spent)} spent (no dollar limit)")
    held = finite(budget.reserved_usd) or 0.0
    if held > 0 and budget.running > 0:
        parts.append(f"{format_usd(held)} held by {plural(budget.running, 'call')} running")
    tokens = max(budget.spent_tokens, 0)
    if budget.tokens is not None:
        parts.append(f"{tokens:,} of {budget.tokens:,} tokens spent")
    else:
        parts.append(f"{tokens:,} tokens (no token limit)")
    if budget.unpriced > 0 and limit is not None:
        parts.append(f"{plural(budget.unpriced, 'call')} without a price (not counted in $)")
    return " · ".join(parts)


def budget_banner(budgets: Sequence[BudgetRow], *, raise_key: str | None) -> str:
    """The banner while the run is paused by its budget ('' when it is not, or only holds
    calls for a moment while calls running may give some back).

    Args:
        raise_key: The key that raises the budget here (None: this source cannot raise
            it, a replay or a read-only viewer).
    """
    budget = paused_budget(budgets)
    if budget is None:
        return ""
    why = clean(budget.reason, REASON_WIDTH) if budget.reason else budget_words(budget)
    waiting = max(budget.waiting, 0)
    calls = f" ({plural(waiting, 'call')} waiting)" if waiting else ""
    # The key first: a narrow screen cuts the banner's end, not what to do.
    how = "" if raise_key is None else f" ({raise_key} raises it, nothing lost)"
    return f"Paused by its budget{how}: {why}{calls}"


def limit_kind(budgets: Sequence[BudgetRow]) -> str:
    """What a number typed alone raises: dollars, unless the run's budget caps only tokens."""
    if budgets and all(budget.usd is None for budget in budgets):
        return "tokens"
    return "usd"


def parse_raise(text: str, budgets: Sequence[BudgetRow]) -> RaiseBudget:
    """What the user typed to raise the budget, as the command to send.

    ``+5`` adds $5, ``20`` sets $20, ``+500k tok`` adds tokens, ``2M tokens`` sets them;
    ``$`` or ``usd`` says dollars; a number alone is dollars unless the budget caps only
    tokens. Dollars and tokens together: ``+5, +1M tok`` (both raises or both totals).

    Raises:
        ValueError: what was wrong with the text, and what to type instead.
    """
    pieces = [piece.strip() for piece in re.split(r",|\band\b", text) if piece.strip()]
    if not pieces:
        raise ValueError(f"Type an amount: {RAISE_HINT}")
    usd: float | None = None
    tokens: int | None = None
    adds: set[bool] = set()
    default = limit_kind(budgets)
    for piece in pieces:
        found = _PART.match(piece)
        if found is None:
            raise ValueError(f"{clean(piece, 40)!r} is not an amount: {RAISE_HINT}")
        value = float(found["number"].replace("_", "")) * _SCALES.get(
            (found["scale"] or "").lower(), 1.0
        )
        unit = (found["unit"] or "").lower()
        kind = "usd" if found["dollar"] or unit in ("$", "usd", "dollar", "dollars") else ""
        kind = kind or ("tokens" if unit.startswith("tok") else default)
        if not math.isfinite(value) or value <= 0:
            raise ValueError(f"{clean(piece, 40)!r}: give an amount above 0")
        adds.add(bool(found["plus"]))
        if kind == "usd":
            if usd is not None:
                raise ValueError("Dollars given twice: give one amount of each")
            usd = value
        else:
            if tokens is not None:
                raise ValueError("Tokens given twice: give one amount of each")
            tokens = math.floor(value)
            if tokens < 1:
                raise ValueError(f"{clean(piece, 40)!r}: tokens come whole, at least 1")
    if len(adds) > 1:
        raise ValueError("Give both as raises (+5, +1M tok) or both as totals (20, 3M tok)")
    return RaiseBudget(usd=usd, tokens=tokens, add=adds.pop())


def raise_words(command: RaiseBudget) -> str:
    """What a raise asks for, in words: 'add $5.00 and 500k tokens', 'set $20.00'."""
    parts = []
    if command.usd is not None:
        parts.append(format_usd(command.usd))
    if command.tokens is not None:
        parts.append(f"{tokens_text(command.tokens)} tokens")
    verb = "add" if command.add else "set the budget to"
    return f"{verb} {' and '.join(parts)}"
