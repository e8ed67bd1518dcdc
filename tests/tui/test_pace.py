"""Unit tests of antflow_tui.pace on hand-built stages: the run's rate and ETA from what its
bottleneck can do."""

from __future__ import annotations

import dataclasses

import msgspec
import pytest

from antflow_tui.pace import Pace, pipeline_pace, run_pace
from tests.tui.test_present import NOW, stage


# Issue 17.9: early in a run the header said 4.88/s (items through the whole pipeline, the
# last stages still filling) next to a stage at 13.2/s. The pace is the bottleneck's.
def test_the_rate_is_the_bottlenecks_capacity_not_what_finished_the_run() -> None:
    views = [
        # 4 workers at 0.3 s an item: 13.3/s.
        stage("Fetch", completed=40, workers=4, busy=4, running=4, pending=20, task_seconds=12.0),
        # 2 workers at 0.2 s: 10/s, the least: the bottleneck.
        stage("Parse", completed=6, workers=2, busy=2, running=2, pending=20, task_seconds=1.2),
        # Has barely begun (the pipeline is filling), though it could do 20/s.
        stage("Save", completed=1, workers=1, busy=1, running=1, task_seconds=0.05),
    ]
    pace = pipeline_pace(views, now=NOW, not_fed=100)
    assert pace.limit == "Parse"
    assert pace.rate == pytest.approx(10.0)
    # Parse must still finish its 22 and the 124 before it (every Fetch item passes).
    assert pace.eta == pytest.approx((22 + 24 + 100) / 10.0)


def test_items_failing_early_leave_less_for_later_stages() -> None:
    views = [
        # Half of what Fetch finishes fails: Parse sees half of the run's items.
        stage("Fetch", completed=10, failed=10, workers=10, busy=10, running=10, task_seconds=2.0),
        stage("Parse", completed=10, workers=1, busy=1, running=1, task_seconds=2.0),  # 5/s
    ]
    pace = pipeline_pace(views, now=NOW, not_fed=80)
    assert pace.limit == "Parse"
    assert pace.rate == pytest.approx(10.0), "5 Parse items a second are 10 of the run's"
    assert pace.eta == pytest.approx(((10 + 80) / 2 + 1) / 5.0)


def test_a_stage_seen_holding_the_run_back_sets_the_rate() -> None:
    views = [
        stage(
            "Fetch", completed=10, workers=2, busy=2, running=2, pending=20, task_seconds=4.0
        ),  # 5/s
        stage("Parse", completed=10, workers=1, busy=1, running=1, task_seconds=1.0),  # 10/s
    ]
    assert pipeline_pace(views, now=NOW).limit == "Fetch"
    pace = pipeline_pace(views, now=NOW, bottleneck="Parse")
    assert (pace.limit, pace.rate) == ("Parse", pytest.approx(10.0))


# Issue 17.9: the ETA said 204 ms while an item had hung for 7 s.
def test_an_item_running_far_past_its_stages_average_holds_the_eta() -> None:
    (fetch,) = [
        stage("Fetch", completed=99, workers=1, busy=1, running=1, task_seconds=19.8)
    ]  # 0.2 s
    hung = dataclasses.replace(
        fetch, workers=(msgspec.structs.replace(fetch.workers[0], since=NOW - 7.0),)
    )
    assert pipeline_pace([hung], now=NOW).eta == pytest.approx(7.0)
    # One running as long as usual is no reason to wait longer.
    usual = dataclasses.replace(
        fetch, workers=(msgspec.structs.replace(fetch.workers[0], since=NOW - 0.3),)
    )
    assert pipeline_pace([usual], now=NOW).eta == pytest.approx(0.2)


def test_a_slow_feed_sets_the_pace_when_the_first_stage_waits_for_items() -> None:
    starved = [stage("Fetch", completed=10, workers=4, busy=1, running=1, task_seconds=1.0)]  # 40/s
    pace = pipeline_pace(starved, now=NOW, not_fed=50, feed_rate=2.0)
    assert (pace.limit, pace.rate, pace.eta) == ("feed", 2.0, pytest.approx(25.0))
    # A feed waiting for room (backpressure) goes at the stages' pace: they set it.
    full = [
        stage("Fetch", completed=10, workers=4, busy=4, running=4, pending=20, task_seconds=1.0)
    ]
    pace = pipeline_pace(full, now=NOW, not_fed=50, feed_rate=2.0)
    assert (pace.limit, pace.rate) == ("Fetch", pytest.approx(40.0))


def test_nothing_is_known_before_a_stage_has_finished_an_item() -> None:
    views = [stage("Fetch", workers=2, busy=2, running=2, pending=5)]
    assert pipeline_pace(views, now=NOW) == Pace(rate=None, eta=None, limit=None)


def test_pipelines_side_by_side_add_their_rates_and_the_last_sets_the_eta() -> None:
    assert run_pace([Pace(4.0, 10.0, "A"), Pace(6.0, 30.0, "B")]) == Pace(10.0, 30.0)
    assert run_pace([Pace(4.0, 10.0, "A")]) == Pace(4.0, 10.0, "A")
    assert run_pace([Pace(None, None), Pace(2.0, None)]) == Pace(2.0, None)


def test_workers_hung_far_past_the_average_do_not_count_as_capacity() -> None:
    (parse,) = [stage("Parse", completed=20, workers=2, busy=2, running=2, task_seconds=4.0)]
    one_hung = (msgspec.structs.replace(parse.workers[0], since=NOW - 30.0), parse.workers[1])
    pace = pipeline_pace([dataclasses.replace(parse, workers=one_hung)], now=NOW, not_fed=10)
    assert pace.rate == pytest.approx(5.0), "one worker left, at 0.2 s an item"
    assert pace.eta == pytest.approx(30.0), "the hung item, as long again"
    both = tuple(msgspec.structs.replace(w, since=NOW - 30.0) for w in parse.workers)
    pace = pipeline_pace([dataclasses.replace(parse, workers=both)], now=NOW, not_fed=10)
    assert pace.rate == 0.0
    assert pace.eta is None, "ten items wait behind two hung ones"
