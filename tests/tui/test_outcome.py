"""Unit tests of antflow_tui.outcome: exit codes, the printed summary, and the tally."""

from __future__ import annotations

import pytest

from antflow.types import PipelineStats
from antflow_tui.outcome import (
    EXIT_INCOMPLETE,
    EXIT_OK,
    EXIT_SCRIPT_ERROR,
    RunOutcome,
    tally,
)


def outcome(**changes: object) -> RunOutcome:
    values: dict[str, object] = {
        "items": 10,
        "completed": 8,
        "failed": 0,
        "skipped": 2,
        "unfinished": 0,
        "elapsed": 4.0,
    }
    values.update(changes)
    return RunOutcome(**values)  # type: ignore[arg-type]


def stats(
    *,
    fed: int,
    processed: int = 0,
    skipped: int = 0,
    failed: int = 0,
    in_flight: int = 0,
    unfinished: int = 0,
) -> PipelineStats:
    return PipelineStats(
        items_processed=processed,
        items_failed=failed,
        items_in_flight=in_flight,
        queue_sizes={},
        items_fed=fed,
        items_skipped=skipped,
        items_unfinished=unfinished,
    )


def test_exit_codes_are_zero_one_two() -> None:
    assert (EXIT_OK, EXIT_INCOMPLETE, EXIT_SCRIPT_ERROR) == (0, 1, 2)


def test_exit_ok_when_everything_completed_or_was_skipped() -> None:
    assert outcome().exit_code == EXIT_OK


@pytest.mark.parametrize(
    "changes",
    [
        {"failed": 1, "completed": 7},
        {"unfinished": 3, "completed": 5},
        {"app_error": "a widget failed"},
    ],
)
def test_exit_incomplete(changes: dict[str, object]) -> None:
    assert outcome(**changes).exit_code == EXIT_INCOMPLETE


def test_exit_script_error_when_the_script_crashed_whatever_the_counts() -> None:
    assert outcome(crash="Traceback ...").exit_code == EXIT_SCRIPT_ERROR
    assert outcome(crash="Traceback ...", failed=3, app_error="x").exit_code == EXIT_SCRIPT_ERROR


def test_summary_contains_every_count() -> None:
    text = outcome(
        items=12_345, completed=10_000, failed=1_234, skipped=111, unfinished=1_000, elapsed=125.0
    ).summary()
    assert "items 12,345" in text
    assert "completed 10,000" in text
    assert "failed 1,234" in text
    assert "skipped 111" in text
    assert "unfinished 1,000" in text
    assert "elapsed 2m05s" in text
    # (10,000 + 1,234 + 111) / 125 s
    assert "items/s 90.8" in text
    assert "\n" not in text


def test_summary_with_no_elapsed_time_has_no_rate() -> None:
    text = outcome(elapsed=0.0).summary()
    assert "items/s –" in text


def test_tally_sums_pipelines() -> None:
    result = tally(
        [
            stats(fed=10, processed=8, skipped=2, failed=1, in_flight=1),
            stats(fed=5, processed=5),
        ],
        expected=None,
    )
    assert result == (15, 11, 1, 2, 1)


def test_tally_counts_never_fed_items_as_unfinished() -> None:
    items, completed, failed, skipped, unfinished = tally(
        [stats(fed=40, processed=30, failed=2, unfinished=8)], expected=100
    )
    assert (items, completed, failed, skipped) == (100, 30, 2, 0)
    assert unfinished == 8 + 60
    assert completed + failed + skipped + unfinished == items


def test_tally_with_more_fed_than_expected_trusts_the_feed() -> None:
    assert tally([stats(fed=12, processed=12)], expected=10) == (12, 12, 0, 0, 0)


def test_tally_of_no_pipeline() -> None:
    assert tally([], expected=None) == (0, 0, 0, 0, 0)
    assert tally([], expected=7) == (7, 0, 0, 0, 7)
