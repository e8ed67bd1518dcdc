"""Unit tests of antflow_tui.accounting: one count per item, the same for every reader."""

from __future__ import annotations

from antflow.runstream.records import Snapshot
from antflow_tui.accounting import RunCounts, run_counts


def snap(
    *,
    fed: int,
    processed: int = 0,
    skipped: int = 0,
    failed: int = 0,
    in_flight: int = 0,
    unfinished: int = 0,
    abandoned: int = 0,
    total: int | None = None,
    running: bool = True,
    stopped: bool = False,
    done_earlier: int = 0,
) -> Snapshot:
    """A pipeline's snapshot with these counts (`stopped`: a Stop command stopped it)."""
    return Snapshot(
        pipeline=1,
        at=0.0,
        running=running,
        paused=False,
        stopping=False,
        fed=fed,
        processed=processed,
        failed=failed,
        in_flight=in_flight,
        unfinished=unfinished,
        skipped=skipped,
        total_items=total,
        abandoned=abandoned,
        stopped=stopped,
        done_earlier=done_earlier,
    )


def every_item_counted_once(counts: RunCounts) -> None:
    assert (
        counts.completed
        + counts.failed
        + counts.skipped
        + counts.in_flight
        + counts.unfinished
        + counts.abandoned
        + counts.not_fed
        + counts.done_earlier
        == counts.items
    )


def test_sums_pipelines() -> None:
    counts = run_counts(
        [
            snap(fed=10, processed=8, skipped=2, failed=1, in_flight=1),
            snap(fed=5, processed=5),
        ],
        known_total=None,
    )
    assert (counts.completed, counts.skipped, counts.failed, counts.in_flight) == (11, 2, 1, 1)
    assert counts.items == 15
    assert counts.total is None
    every_item_counted_once(counts)


def test_items_never_fed_are_not_fed_not_unfinished() -> None:
    """Regression (issue 10): the header said unfinished 86, the summary 261 (it counted
    the items never fed as unfinished), the export 86."""
    counts = run_counts([snap(fed=40, processed=30, failed=2, unfinished=8)], known_total=100)
    assert (counts.unfinished, counts.not_fed, counts.items) == (8, 60, 100)
    every_item_counted_once(counts)


def test_the_scripts_own_shutdown_left_items_abandoned() -> None:
    counts = run_counts([snap(fed=10, processed=4, unfinished=6, abandoned=6)], known_total=None)
    assert (counts.abandoned, counts.unfinished) == (6, 0)
    every_item_counted_once(counts)


def test_abandoned_never_exceeds_unfinished() -> None:
    counts = run_counts([snap(fed=10, processed=8, unfinished=2, abandoned=5)], known_total=None)
    assert (counts.abandoned, counts.unfinished) == (2, 0)


def test_an_emergency_end_counts_items_in_flight_as_unfinished() -> None:
    counts = run_counts(
        [snap(fed=10, processed=4, in_flight=6)],
        known_total=20,
        in_flight_unfinished=True,
    )
    assert (counts.in_flight, counts.unfinished, counts.not_fed) == (0, 6, 10)
    every_item_counted_once(counts)


def test_pipelines_own_totals_count_when_every_one_knows_its_total() -> None:
    known = run_counts(
        [snap(fed=3, total=5), snap(fed=2, total=4)],
        known_total=None,
    )
    assert (known.total, known.not_fed) == (9, 4)
    unknown = run_counts([snap(fed=3, total=5), snap(fed=2)], known_total=None)
    assert (unknown.total, unknown.not_fed) == (None, 0)


def test_items_a_script_stopped_feeding_itself_are_abandoned_not_unfed() -> None:
    """Leaving stream() early: the stream never fed the rest, by the script's choice."""
    left = snap(fed=20, processed=20, total=50, running=False)
    counts = run_counts([left], known_total=None)
    assert (counts.abandoned, counts.not_fed, counts.items) == (30, 0, 50)
    stopped = snap(fed=20, processed=20, total=50, running=False, stopped=True)
    assert run_counts([stopped], known_total=None).not_fed == 30
    still_going = snap(fed=20, processed=20, total=50)
    assert run_counts([still_going], known_total=None).not_fed == 30


def test_more_fed_than_expected_trusts_the_feed() -> None:
    counts = run_counts([snap(fed=12, processed=12)], known_total=10)
    assert (counts.items, counts.not_fed) == (12, 0)


def test_no_pipeline() -> None:
    assert run_counts([], known_total=None).items == 0
    counts = run_counts([], known_total=7)
    assert (counts.items, counts.not_fed) == (7, 7)


def test_done_and_fraction() -> None:
    counts = run_counts(
        [snap(fed=10, processed=6, skipped=1, failed=2, in_flight=2)],
        known_total=20,
    )
    assert counts.done == 8
    assert counts.fraction == 0.4
    assert RunCounts(0, 0, 0, 0, 0, 0, 0, None).fraction is None
    assert RunCounts(15, 0, 0, 0, 0, 0, 0, 10).fraction == 1.0


# Issue 17.9: "in flight 88" said nothing; the header shows what runs and what waits apart.
def test_in_flight_splits_into_running_and_queued() -> None:
    from antflow.runstream.records import StageRow

    rows = (StageRow(queued=20, running=3, done=0, failed=0), StageRow(9, 2, 0, 0))
    one = Snapshot(
        pipeline=1,
        at=0.0,
        running=True,
        paused=False,
        stopping=False,
        fed=40,
        processed=6,
        failed=0,
        in_flight=34,
        unfinished=0,
        stages=rows,
    )
    counts = run_counts([one, snap(fed=2, in_flight=2)], known_total=None)
    assert (counts.in_flight, counts.running, counts.queued) == (36, 5, 31)
    over = run_counts([one], known_total=None, in_flight_unfinished=True)
    assert (over.in_flight, over.running, over.queued) == (0, 0, 0)


# Issue 20.2: items done earlier are their own count: total = fed + done earlier + not fed.
def test_a_resumed_run_counts_items_done_earlier_apart() -> None:
    # 100 items: 60 completed by the run resumed (not fed again), 30 fed and done, 10 to come.
    counts = run_counts([snap(fed=30, processed=30, done_earlier=60, total=100)], known_total=None)
    assert counts.done_earlier == 60
    assert counts.completed == 30
    assert counts.not_fed == 10
    assert counts.abandoned == 0
    assert counts.items == 100
    assert counts.done == 30  # the rate counts this run's own
    assert counts.done_overall == 90
    assert counts.fraction == 0.9
    every_item_counted_once(counts)


# Issue 20.2: once over, the done earlier items are not "abandoned" (the header showed it).
def test_a_finished_resumed_run_abandons_nothing() -> None:
    counts = run_counts(
        [snap(fed=40, processed=40, done_earlier=60, total=100, running=False)],
        known_total=None,
    )
    assert (counts.abandoned, counts.not_fed, counts.done_earlier) == (0, 0, 60)
    every_item_counted_once(counts)


# Issue 20.2: the app's own total (a script's `items`) counts them too.
def test_a_known_total_leaves_done_earlier_out_of_not_fed() -> None:
    counts = run_counts([snap(fed=5, processed=5, done_earlier=3)], known_total=10)
    assert (counts.not_fed, counts.done_earlier, counts.items) == (2, 3, 10)
    every_item_counted_once(counts)
