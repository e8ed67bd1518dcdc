"""Unit tests of antflow_tui.outcome: exit codes and the printed summary."""

from __future__ import annotations

import pytest

from antflow_tui.accounting import RunCounts
from antflow_tui.outcome import (
    EXIT_INCOMPLETE,
    EXIT_OK,
    EXIT_SCRIPT_ERROR,
    RunOutcome,
)


def counts(**changes: int | None) -> RunCounts:
    values: dict[str, int | None] = {
        "completed": 8,
        "failed": 0,
        "skipped": 2,
        "in_flight": 0,
        "unfinished": 0,
        "abandoned": 0,
        "not_fed": 0,
        "total": 10,
    }
    values.update(changes)
    return RunCounts(**values)  # type: ignore[arg-type]


def outcome(counted: RunCounts | None = None, **changes: object) -> RunOutcome:
    return RunOutcome(counts=counted or counts(), elapsed=4.0, **changes)  # type: ignore[arg-type]


def test_exit_codes_are_zero_one_two() -> None:
    assert (EXIT_OK, EXIT_INCOMPLETE, EXIT_SCRIPT_ERROR) == (0, 1, 2)


def test_exit_ok_when_everything_completed_or_was_skipped() -> None:
    assert outcome().exit_code == EXIT_OK


def test_exit_ok_when_the_script_abandoned_items_itself() -> None:
    """Regression (issue 10): leaving stream() early is supported; plain python exits 0."""
    assert outcome(counts(completed=3, skipped=0, abandoned=7)).exit_code == EXIT_OK


def test_exit_ok_when_the_script_called_sys_exit_zero_at_the_end() -> None:
    assert outcome(script_exit=0).exit_code == EXIT_OK


@pytest.mark.parametrize(
    "counted",
    [
        counts(failed=1, completed=7),
        counts(unfinished=3, completed=5),
        counts(not_fed=4, completed=4),
        counts(in_flight=2, completed=6),
    ],
)
def test_exit_incomplete_when_anything_failed_or_was_left(counted: RunCounts) -> None:
    assert outcome(counted).exit_code == EXIT_INCOMPLETE


@pytest.mark.parametrize(
    "changes",
    [
        {"app_error": "a widget failed"},
        {"stopped_by": "SIGTERM"},
        {"script_exit": 3},
        {"script_exit": "could not log in"},
    ],
)
def test_exit_incomplete_when_the_run_or_the_script_did_not_end_normally(
    changes: dict[str, object],
) -> None:
    """Regression (issue 10): sys.exit(3) made the app exit 3."""
    assert outcome(**changes).exit_code == EXIT_INCOMPLETE


def test_sys_exit_zero_with_items_left_is_incomplete() -> None:
    """Regression (issue 10): sys.exit(0) mid-run exited 0 with 22 items unfinished."""
    assert outcome(counts(unfinished=22, completed=0), script_exit=0).exit_code == 1


def test_exit_script_error_when_the_script_crashed_whatever_the_counts() -> None:
    assert outcome(crash="Traceback ...").exit_code == EXIT_SCRIPT_ERROR
    assert outcome(counts(failed=3), crash="x", app_error="y").exit_code == EXIT_SCRIPT_ERROR


def test_summary_contains_every_count() -> None:
    text = RunOutcome(
        counts=counts(
            completed=10_000,
            failed=1_234,
            skipped=111,
            unfinished=1_000,
            abandoned=5,
            not_fed=20,
            total=12_370,
        ),
        elapsed=125.0,
    ).summary()
    assert text.startswith(
        "items 12,370  completed 10,000  failed 1,234  skipped 111  unfinished 1,000  "
        "abandoned by the script 5  not fed 20  elapsed 2m05s"
    )
    # (10,000 + 1,234 + 111) / 125 s
    assert text.endswith("items/s 90.8")
    assert "\n" not in text


def test_summary_leaves_out_abandoned_and_not_fed_when_there_are_none() -> None:
    text = outcome().summary()
    assert "items 10  completed 8  failed 0  skipped 2  unfinished 0  elapsed" in text
    assert "abandoned" not in text
    assert "not fed" not in text


def test_summary_counts_items_still_in_flight_as_unfinished() -> None:
    assert "unfinished 5" in outcome(counts(unfinished=3, in_flight=2)).summary()


def test_summary_shows_the_scripts_exit_code_and_what_stopped_the_run() -> None:
    assert outcome(script_exit=3).summary().endswith("script exit code 3")
    assert (
        outcome(script_exit="bad [red]x[/red]\x1b[2J")
        .summary()
        .endswith("script exit 'bad [red]x[/red]\\\\x1b[2J'")
    )
    assert outcome(stopped_by="SIGHUP").summary().endswith("stopped by SIGHUP")


def test_summary_with_no_elapsed_time_has_no_rate() -> None:
    text = RunOutcome(counts=counts(), elapsed=0.0).summary()
    assert "items/s –" in text
