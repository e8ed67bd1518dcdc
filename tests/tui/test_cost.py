"""What a run costs, as the app words it (issue 22): dollars, the header's cost part, the
budget banner, and what a user types to raise the budget. Pure functions of records."""

from __future__ import annotations

import math

import pytest

from antflow.runstream.records import BudgetRow, RaiseBudget, Snapshot, StageRow, Usage
from antflow_tui.accounting import RunCounts
from antflow_tui.budgets import budget_banner, budget_words, limit_kind, parse_raise, raise_words
from antflow_tui.cost import cost_line, run_budgets, run_cost, spend_words, usd_cell
from antflow_tui.formatting import format_usd
from antflow_tui.outcome import RunOutcome
from antflow_tui.palette import DEFAULT

USAGE = Usage(input_tokens=900_000, output_tokens=300_000, cost=12.4, model="m", reports=3_000)


def snap(
    pipeline: int = 1,
    *,
    at: float = 10.0,
    usage: Usage | None = USAGE,
    budget: BudgetRow | None = None,
    done_earlier: int = 0,
) -> Snapshot:
    return Snapshot(
        pipeline=pipeline,
        at=at,
        running=True,
        paused=False,
        stopping=False,
        fed=0,
        processed=0,
        failed=0,
        in_flight=0,
        unfinished=0,
        stages=(StageRow(0, 0, 0, 0, usage=usage),),
        budget=budget,
        done_earlier=done_earlier,
    )


def counts(completed: int, total: int | None = None, *, failed: int = 0) -> RunCounts:
    return RunCounts(
        completed=completed,
        failed=failed,
        skipped=0,
        in_flight=0,
        unfinished=0,
        abandoned=0,
        not_fed=0,
        total=total,
    )


# ---------------------------------------------------------------------- dollars


@pytest.mark.parametrize(
    ("amount", "shown"),
    [
        (0.0, "$0"),
        (12.4, "$12.40"),
        (1234.5, "$1,234"),
        (0.42, "$0.42"),
        # Issue 22: a spend near a $0.10 budget keeps its digits (not "$0.10 of $0.10").
        (0.0981, "$0.0981"),
        (0.0042, "$0.0042"),
        (0.19999, "$0.20"),
        (-0.5, "-$0.50"),
    ],
)
def test_format_usd_keeps_the_digits_that_tell(amount: float, shown: str) -> None:
    assert format_usd(amount) == shown


def test_usd_cell_fits_its_width_and_says_nothing_unknown() -> None:
    assert usd_cell(None) == ""
    assert usd_cell(math.nan) == ""  # a damaged file's number
    assert usd_cell(12.4) == "$12.40"
    assert len(usd_cell(123_456_789.0)) <= 8
    assert usd_cell(0.000_012_34) == "<$0.001"  # a few tokens of a cheap model


# ---------------------------------------------------------------------- the header


# Issue 22: the header reads '$12.40 · 1.2M tok · $0.004/item · ≈ $31 at the end'.
def test_the_header_says_spend_tokens_per_item_and_where_the_run_is_heading() -> None:
    cost = run_cost([snap()], counts(1_000, total=2_500), over=False)
    assert cost is not None
    assert cost.per_item_usd == pytest.approx(0.0124)
    assert cost.projected_usd == pytest.approx(31.0)
    line = cost_line(cost, 200, DEFAULT).plain
    assert line == "$12.40 · 1.2M tok · ≈ $31.00 at the end · $0.0124/item"


# Issue 22: a narrow header keeps the spend, then the tokens, dropping the rest.
def test_the_cost_part_drops_the_least_telling_first_to_fit() -> None:
    cost = run_cost([snap()], counts(1_000, total=2_500), over=False)
    assert cost is not None
    assert cost_line(cost, 30, DEFAULT).plain == "$12.40 · 1.2M tok"
    assert cost_line(cost, 8, DEFAULT).plain == "$12.40"
    assert cost_line(cost, 3, DEFAULT).plain == ""


# Issue 22: without prices the money is unknown: tokens are shown, never $0.
def test_without_prices_the_header_shows_tokens_only() -> None:
    unpriced = Usage(input_tokens=1_000, output_tokens=500, reports=10, unpriced=10)
    cost = run_cost([snap(usage=unpriced)], counts(10, total=20), over=False)
    assert cost is not None
    assert cost.spent_usd is None
    line = cost_line(cost, 200, DEFAULT).plain
    assert "$" not in line
    assert line.startswith("1,500 tok · ≈ 3,000 tok at the end · 150 tok/item")
    assert line.endswith("10 calls without a price")


def test_a_run_without_usage_or_budget_has_no_cost_part_and_an_ended_run_projects_nothing() -> None:
    assert run_cost([snap(usage=None)], counts(3), over=False) is None
    ended = run_cost([snap()], counts(1_000, total=2_500), over=True)
    assert ended is not None
    assert ended.projected_usd is None


# Issue 22 with issue 20: items a resumed run had done cost it nothing: not projected.
def test_the_projection_leaves_out_items_done_by_an_earlier_run() -> None:
    cost = run_cost([snap(done_earlier=1_500)], counts(500, total=2_500), over=False)
    assert cost is not None
    assert cost.projected_usd == pytest.approx(12.4 * 1_000 / 500)


def test_a_budget_shows_its_limit_and_a_pause_colours_the_spend() -> None:
    budget = BudgetRow(budget=1, usd=20.0, spent_usd=12.4, paused=True, waiting=2)
    cost = run_cost([snap(budget=budget)], counts(1_000), over=False)
    assert cost is not None
    line = cost_line(cost, 200, DEFAULT)
    assert line.plain.startswith("$12.40 of $20.00 · 1.2M tok")
    assert any(span.style == DEFAULT("held") for span in line.spans)


# Issue 22: a token budget's tokens are what a narrow header keeps.
def test_a_token_budget_keeps_its_tokens_first() -> None:
    budget = BudgetRow(budget=1, tokens=450, spent_tokens=450, paused=True)
    usage = Usage(input_tokens=300, output_tokens=150, cost=0.03, reports=3)
    cost = run_cost([snap(usage=usage, budget=budget)], counts(3), over=False)
    assert cost is not None
    assert cost_line(cost, 16, DEFAULT).plain == "450 of 450 tok"
    assert cost_line(cost, 200, DEFAULT).plain.startswith("$0.03 · 450 of 450 tok")


# Issue 22: one Budget shared by two pipelines is one budget (the newest snapshot wins).
def test_a_budget_shared_by_pipelines_counts_once() -> None:
    older = BudgetRow(budget=7, usd=5.0, spent_usd=1.0)
    newer = BudgetRow(budget=7, usd=5.0, spent_usd=2.0)
    other = BudgetRow(budget=8, tokens=1_000)
    found = run_budgets([snap(1, at=5.0, budget=older), snap(2, at=6.0, budget=newer)])
    assert found == [newer]
    assert len(run_budgets([snap(1, budget=older), snap(2, budget=other)])) == 2


# ---------------------------------------------------------------------- the banner


# Issue 22: paused by its budget, the banner says what was spent, of what, why, and the
# key that raises it (where the source can).
def test_the_banner_says_why_and_the_key_that_raises() -> None:
    paused = BudgetRow(
        budget=1,
        usd=0.2,
        spent_usd=0.1926,
        paused=True,
        waiting=24,
        reason="$0.1926 of $0.20 spent; the next call may cost $0.0211",
    )
    # The key first: a narrow screen cuts the banner's end, not what to do.
    assert budget_banner([paused], raise_key="B") == (
        "Paused by its budget (B raises it, nothing lost): $0.1926 of $0.20 spent; the next "
        "call may cost $0.0211 (24 calls waiting)"
    )
    # A replay, or a read-only viewer: what happened, no key.
    assert budget_banner([paused], raise_key=None) == (
        "Paused by its budget: $0.1926 of $0.20 spent; the next call may cost $0.0211 "
        "(24 calls waiting)"
    )
    # Held back a moment while calls running may give some back: no banner.
    held = BudgetRow(budget=1, usd=0.2, spent_usd=0.19, waiting=3, running=2)
    assert budget_banner([held], raise_key="B") == ""


def test_the_banner_shows_a_reason_literally() -> None:
    paused = BudgetRow(budget=1, tokens=10, paused=True, reason="[red]x[/red]\x1b[2J spent")
    banner = budget_banner([paused], raise_key=None)
    assert "[red]x[/red]" in banner
    assert "\x1b" not in banner


def test_budget_words_say_limits_spend_holds_and_unpriced_calls() -> None:
    budget = BudgetRow(
        budget=1,
        usd=0.1,
        spent_usd=0.0981,
        reserved_usd=0.004,
        running=2,
        spent_tokens=38_120,
        unpriced=3,
    )
    assert budget_words(budget) == (
        "$0.0981 of $0.10 spent · $0.004 held by 2 calls running · 38,120 tokens (no token "
        "limit) · 3 calls without a price (not counted in $)"
    )
    assert budget_words(BudgetRow(budget=1, tokens=1_000, spent_tokens=900)) == (
        "900 of 1,000 tokens spent"
    )


# ---------------------------------------------------------------------- raising


USD = [BudgetRow(budget=1, usd=1.0)]
TOKENS = [BudgetRow(budget=1, tokens=1_000)]


@pytest.mark.parametrize(
    ("typed", "budgets", "command"),
    [
        ("+5", USD, RaiseBudget(usd=5.0, add=True)),
        ("20", USD, RaiseBudget(usd=20.0, add=False)),
        ("$2.50", USD, RaiseBudget(usd=2.5, add=False)),
        ("+0.3 usd", USD, RaiseBudget(usd=0.3, add=True)),
        ("+500k tok", USD, RaiseBudget(tokens=500_000, add=True)),
        ("2M tokens", USD, RaiseBudget(tokens=2_000_000, add=False)),
        # A number alone raises tokens when the budget caps only tokens.
        ("+1k", TOKENS, RaiseBudget(tokens=1_000, add=True)),
        ("+5, +1M tok", USD, RaiseBudget(usd=5.0, tokens=1_000_000, add=True)),
    ],
)
def test_what_a_user_types_to_raise_the_budget(
    typed: str, budgets: list[BudgetRow], command: RaiseBudget
) -> None:
    assert parse_raise(typed, budgets) == command


@pytest.mark.parametrize(
    ("typed", "said"),
    [
        ("", "Type an amount"),
        ("lots", "'lots' is not an amount"),
        ("+0", "give an amount above 0"),
        ("+5, +6", "Dollars given twice"),
        ("+5, 1M tok", "both as raises"),
    ],
)
def test_a_raise_typed_wrong_says_what_to_type(typed: str, said: str) -> None:
    with pytest.raises(ValueError, match=said):
        parse_raise(typed, USD)


def test_raise_words_and_what_a_number_alone_raises() -> None:
    assert raise_words(RaiseBudget(usd=5.0, tokens=500_000)) == "add $5.00 and 500k tokens"
    assert raise_words(RaiseBudget(usd=20.0, add=False)) == "set the budget to $20.00"
    assert limit_kind(USD) == "usd"
    assert limit_kind(TOKENS) == "tokens"
    assert limit_kind([]) == "usd"


# ---------------------------------------------------------------------- the summary


def test_the_summary_says_the_spend_and_a_stop_while_paused_by_the_budget() -> None:
    assert spend_words(None) == ""
    assert spend_words(USAGE) == "$12.40 (1.2M tokens)"
    assert spend_words(Usage(input_tokens=10, output_tokens=2, unpriced=1)) == (
        "12 tokens (no prices)"
    )
    outcome = RunOutcome(
        counts(3, total=10),
        elapsed=4.0,
        spend="$0.494 (67.2k tokens)",
        budget_pause="$0.4941 of $0.50 spent",
    )
    line = outcome.summary()
    assert "cost $0.494 (67.2k tokens)" in line
    assert "stopped while paused by its budget ($0.4941 of $0.50 spent)" in line
