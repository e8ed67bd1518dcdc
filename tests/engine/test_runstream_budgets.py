"""`RaiseBudget`, the command a viewer or the app sends to raise a run's budget (issue 22):
each Budget raised once, and the notice says the limits before and after."""

from __future__ import annotations

from antflow import Budget, Pipeline, Stage
from antflow.runstream.budgets import NO_BUDGET, raise_budgets
from antflow.runstream.records import RaiseBudget


async def echo(value: int) -> int:
    return value


def pipeline(budget: Budget | None) -> Pipeline:
    return Pipeline([Stage("Ask", 1, [echo])], budget=budget)


# Issue 22: a Budget shared by two pipelines is raised once (not by twice the amount).
def test_a_shared_budget_is_raised_once() -> None:
    budget = Budget(usd=0.2, tokens=1_000)
    notice = raise_budgets([pipeline(budget), pipeline(budget)], RaiseBudget(usd=0.1, tokens=500))
    assert (budget.usd, budget.tokens) == (0.2 + 0.1, 1_500)
    # 0.2 + 0.1 is 0.30000000000000004: still said as whole cents.
    assert notice == "Budget raised: $0.20 → $0.30, 1,000 → 1,500 tokens"


def test_setting_a_limit_the_budget_has_not_and_adding_to_one_it_has_not() -> None:
    budget = Budget(tokens=1_000)
    refused = raise_budgets([pipeline(budget)], RaiseBudget(usd=5.0))
    assert refused == "The budget has no dollar limit to raise (it caps tokens): set one instead"
    assert budget.usd is None
    notice = raise_budgets([pipeline(budget)], RaiseBudget(usd=5.0, add=False))
    assert notice == "Budget raised: no dollar limit → $5.00"
    assert budget.usd == 5.0


def test_a_run_without_a_budget_or_a_raise_of_nothing() -> None:
    assert raise_budgets([pipeline(None)], RaiseBudget(usd=1.0)) == NO_BUDGET
    nothing = raise_budgets([pipeline(Budget(usd=1.0))], RaiseBudget())
    assert nothing == "Nothing to raise: give dollars, tokens or both"
