"""BudgetScreen (`B`): how much to raise the run's budget by, or to, in $ or tokens."""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

from textual import on
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Input, Static

from antflow.runstream.records import RaiseBudget
from antflow_tui.budgets import RAISE_HINT, budget_words, limit_kind, parse_raise
from antflow_tui.keys import bindings
from antflow_tui.safe_text import clean

if TYPE_CHECKING:
    from collections.abc import Sequence

    from textual.app import ComposeResult
    from textual.binding import BindingType

    from antflow.runstream.records import BudgetRow


class BudgetScreen(ModalScreen[RaiseBudget | None]):
    """Ask how much to raise the budget; dismisses with the command (None: cancelled).

    Args:
        budgets: The run's budgets as last seen (what the dialog says they stand at).
    """

    BINDINGS: ClassVar[list[BindingType]] = bindings("budget")

    DEFAULT_CSS = """
    BudgetScreen {
        align: center middle;
    }
    BudgetScreen > Vertical {
        width: 90;
        max-width: 95%;
        height: auto;
        border: thick $accent;
        background: $surface;
        padding: 0 1;
    }
    BudgetScreen #budget-error {
        color: $error;
    }
    """

    def __init__(self, budgets: Sequence[BudgetRow]) -> None:
        super().__init__()
        self._budgets = tuple(budgets)

    def compose(self) -> ComposeResult:
        several = len(self._budgets) > 1
        with Vertical():
            for number, budget in enumerate(self._budgets, 1):
                prefix = f"Budget {number}: " if several else "Now: "
                yield Static(prefix + budget_words(budget), markup=False)
                if budget.paused and budget.reason:
                    yield Static(f"Paused: {clean(budget.reason, 300)}", markup=False)
            unit = "$" if limit_kind(self._budgets) == "usd" else "tokens"
            yield Static(
                f"Raise it by (+) or to an amount, in {unit} unless said (enter raises, esc "
                "cancels):",
                markup=False,
            )
            yield Static("", id="budget-error", markup=False)
            yield Input(id="budget-input", placeholder=RAISE_HINT)

    def on_mount(self) -> None:
        self.query_one(Vertical).border_title = "Raise budget"
        self.query_one("#budget-error", Static).display = False
        self.query_one(Input).focus()

    @on(Input.Submitted)
    def _submitted(self, event: Input.Submitted) -> None:
        try:
            command = parse_raise(event.value, self._budgets)
        except ValueError as error:
            shown = self.query_one("#budget-error", Static)
            shown.update(str(error))
            shown.display = True
            return
        self.dismiss(command)
