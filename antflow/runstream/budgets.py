"""The `RaiseBudget` command carried out on live pipelines (issue 22).

A run paused by its budget goes on when the budget is raised: from the app's key, an
attached viewer's (with the control token), or code (``pipeline.budget.raise_to``).
Pipelines sharing one `antflow.Budget` are raised once, together.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from antflow.budget import Budget

if TYPE_CHECKING:
    from collections.abc import Iterable

    from antflow.pipeline import Pipeline
    from antflow.runstream.records import RaiseBudget

NO_BUDGET = "No budget to raise: the run has none"


def raise_budgets(pipelines: Iterable[Pipeline], command: RaiseBudget) -> str:
    """Raise the budget of each of `pipelines` as `command` asks (each Budget once);
    returns the notice to show: the limits before and after, or why nothing changed."""
    budgets: dict[int, Budget] = {}
    for pipeline in pipelines:
        budget = pipeline.budget
        if isinstance(budget, Budget):
            budgets.setdefault(id(budget), budget)
    if not budgets:
        return NO_BUDGET
    if command.usd is None and command.tokens is None:
        return "Nothing to raise: give dollars, tokens or both"
    said = []
    for budget in budgets.values():
        before = (budget.usd, budget.tokens)
        problem = _missing_limit(budget, command)
        if problem:
            said.append(problem)
            continue
        try:
            if command.add:
                budget.raise_by(usd=command.usd, tokens=command.tokens)
            else:
                budget.raise_to(usd=command.usd, tokens=command.tokens)
        except ValueError as error:
            said.append(str(error))
            continue
        said.append(f"Budget raised: {_change(before, (budget.usd, budget.tokens))}")
    return "; ".join(said)


def _missing_limit(budget: Budget, command: RaiseBudget) -> str:
    """Why `command` cannot add to `budget` ('' when it can): adding to a limit the budget
    has not would make one up; setting one adds it."""
    if not command.add:
        return ""
    if command.usd is not None and budget.usd is None:
        return "The budget has no dollar limit to raise (it caps tokens): set one instead"
    if command.tokens is not None and budget.tokens is None:
        return "The budget has no token limit to raise (it caps dollars): set one instead"
    return ""


def _change(before: tuple[float | None, int | None], after: tuple[float | None, int | None]) -> str:
    parts = []
    if before[0] != after[0]:
        parts.append(f"{_usd(before[0])} → {_usd(after[0])}")
    if before[1] != after[1]:
        parts.append(f"{_tokens(before[1])} → {_tokens(after[1])} tokens")
    return ", ".join(parts) or "unchanged"


def _usd(amount: float | None) -> str:
    if amount is None:
        return "no dollar limit"
    # A raise by $0.05 of $0.10 is 0.15000000000000002: a limit is whole cents to 1e-9.
    whole_cents = abs(round(amount, 2) - amount) < 1e-9
    return f"${amount:,.2f}" if whole_cents else f"${amount:,.4f}"


def _tokens(count: int | None) -> str:
    return "no limit" if count is None else f"{count:,}"
