"""The run's budget from the command line (``--budget-usd``, ``--budget-tokens``; issue 22).

One `antflow.Budget` is given to every pipeline of the run as it starts, so they are
capped together; a pipeline the script gave a budget of its own keeps it, and the event
log says whose budget applies.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from antflow.budget import Budget
from antflow.prices import current_prices

if TYPE_CHECKING:
    from antflow import Pipeline
    from antflow_tui.options import AppOptions


class RunBudget:
    """The budget ``--budget-usd`` / ``--budget-tokens`` set for the whole run.

    Args:
        usd: US dollars, at most (None: no dollar limit).
        tokens: Tokens, at most (None: no token limit).

    Raises:
        ValueError: neither limit, or one that is not a finite number above 0.
    """

    def __init__(self, usd: float | None = None, tokens: int | None = None) -> None:
        self.budget = Budget(usd=usd, tokens=tokens)
        self._told = False

    @property
    def flags(self) -> str:
        """The options as given: '--budget-usd 2 --budget-tokens 100,000'."""
        given = []
        if self.budget.usd is not None:
            given.append(f"--budget-usd {self.budget.usd:g}")
        if self.budget.tokens is not None:
            given.append(f"--budget-tokens {self.budget.tokens:,}")
        return " ".join(given)

    def apply(self, pipeline: Pipeline, name: str) -> str | None:
        """Give `pipeline` the run's budget unless it has one of its own; returns what to
        tell the user (None: nothing new).

        Args:
            name: What the log calls the pipeline ('pipeline-2').
        """
        own = pipeline.budget
        if own is self.budget:
            return None
        if own is not None:
            return (
                f"{name} has a budget of its own, set by the script ({own!r}): that one "
                f"applies to it, not {self.flags}"
            )
        pipeline.set_budget(self.budget)
        if self._told:
            return None
        self._told = True
        told = (
            f"{self.flags}: the run's pipelines share this budget; the run pauses before a "
            "call would go over it, until the budget is raised (nothing is lost)"
        )
        if self.budget.usd is not None and current_prices() is None:
            told += (
                ". No prices are given (--prices FILE, or ANTFLOW_PRICES): only calls "
                "whose tasks report cost= count in dollars"
            )
        return told


def run_budget(options: AppOptions) -> RunBudget | None:
    """The run's budget the options ask for (None: none)."""
    if options.budget_usd is None and options.budget_tokens is None:
        return None
    return RunBudget(usd=options.budget_usd, tokens=options.budget_tokens)
