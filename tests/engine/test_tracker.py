"""StatusTracker: statuses, queries, histories, task events, callbacks, errors, bounded mode."""

from __future__ import annotations

import asyncio
import gc
import logging
import tracemalloc
from collections import Counter
from typing import Any

import pytest

from antflow import (
    ErrorSummary,
    FailedItem,
    Pipeline,
    Stage,
    StatusEvent,
    StatusTracker,
    TaskEvent,
)
from antflow._delivery import BACKLOG_LIMIT
from tests.engine.helpers import FakeClock, Gates, no_wait, settle, wait_until

ALL_STATUSES = (
    "queued",
    "in_progress",
    "completed",
    "failed",
    "retrying",
    "skipped",
    "unfinished",
    # Issue 20: items a resumed run counts done earlier.
    "done_earlier",
)
TERMINAL = ("completed", "failed", "retrying")


class QuotaError(Exception):
    """A user-defined error, so grouping by class name is not grouping by builtins."""


async def identity(value: Any) -> Any:
    return value


async def double(value: Any) -> Any:
    return value * 2


def statuses(tracker: StatusTracker, item_id: Any) -> list[tuple[str | None, str]]:
    return [(e.stage, e.status) for e in tracker.get_history(item_id)]


def assert_stage_attempts_paired(history: list[StatusEvent]) -> None:
    """Each in_progress in a stage is followed by exactly one terminal event before the
    next in_progress of that stage, and no terminal event comes without one."""
    open_attempt: dict[str | None, bool] = {}
    for event in history:
        if event.status == "in_progress":
            assert not open_attempt.get(event.stage), f"two in_progress in a row: {history}"
            open_attempt[event.stage] = True
        elif event.status in TERMINAL:
            assert open_attempt.get(event.stage), f"{event.status} without in_progress"
            open_attempt[event.stage] = False
    assert not any(open_attempt.values()), f"an attempt never ended: {history}"


# ---------------------------------------------------------------------- statuses


async def test_each_stage_goes_queued_in_progress_completed() -> None:
    tracker = StatusTracker()
    pipeline = Pipeline(
        [Stage("A", 2, [double]), Stage("B", 2, [double]), Stage("C", 1, [identity])],
        status_tracker=tracker,
    )

    results = await pipeline.run(range(5))

    assert [r.value for r in results] == [0, 4, 8, 12, 16]
    for item_id in range(5):
        assert statuses(tracker, item_id) == [
            (stage, status)
            for stage in ("A", "B", "C")
            for status in ("queued", "in_progress", "completed")
        ]


async def test_one_in_progress_and_one_terminal_event_per_stage_attempt() -> None:
    failures: Counter[tuple[str, int]] = Counter()

    async def flaky_stage(value: int) -> int:
        failures["stage", value] += 1
        if value % 2 and failures["stage", value] < 3:
            raise QuotaError(f"stage attempt {failures['stage', value]}")
        return value

    async def flaky_task(value: int) -> int:
        failures["task", value] += 1
        if value % 3 == 0 and failures["task", value] < 2:
            raise QuotaError("task attempt")
        return value

    async def always_fails(value: int) -> int:
        if value == 4:
            raise QuotaError("never")
        return value

    tracker = StatusTracker()
    pipeline = Pipeline(
        [
            Stage("PerStage", 2, [flaky_stage], retry="per_stage", stage_attempts=3),
            Stage("PerTask", 2, [flaky_task], task_attempts=2, task_wait_seconds=0),
            Stage("Last", 1, [always_fails], retry="per_stage", stage_attempts=2),
        ],
        status_tracker=tracker,
    )

    results = await pipeline.run(range(6))

    assert [r.id for r in results] == [0, 1, 2, 3, 5]
    for item_id in range(6):
        history = tracker.get_history(item_id)
        assert_stage_attempts_paired(history)
        in_progress = Counter(e.stage for e in history if e.status == "in_progress")
        expected_per_stage = 3 if item_id % 2 else 1
        # Per-task retries stay inside one stage attempt; per-stage retries do not.
        expected_last = 2 if item_id == 4 else 1
        assert in_progress == {"PerStage": expected_per_stage, "PerTask": 1, "Last": expected_last}
    retrying = [e for e in tracker.get_history(1) if e.status == "retrying"]
    assert [e.metadata["attempt"] for e in retrying] == [2, 3]
    assert all(e.metadata["retry"] is True for e in retrying)
    assert [e.metadata["error"] for e in retrying] == ["stage attempt 1", "stage attempt 2"]
    assert tracker.get_status(4).status == "failed"  # type: ignore[union-attr]


async def test_a_skipped_stage_goes_queued_then_skipped_without_in_progress() -> None:
    seen_by_b: list[int] = []

    async def record(value: int) -> int:
        seen_by_b.append(value)
        return value + 100

    tracker = StatusTracker()
    pipeline = Pipeline(
        [
            Stage("A", 1, [double], skip_if=lambda v: v % 2 == 0),
            Stage("B", 1, [record]),
            Stage("C", 1, [identity], skip_if=lambda v: v > 105),
        ],
        status_tracker=tracker,
    )

    results = await pipeline.run([1, 2, 3, 4])

    # 2 and 4 pass A unchanged; C skips only 106 (the input 3, doubled, plus 100).
    assert seen_by_b == [2, 2, 6, 4]
    assert [r.value for r in results] == [102, 102, 106, 104]
    assert statuses(tracker, 1) == [
        ("A", "queued"),
        ("A", "skipped"),
        ("B", "queued"),
        ("B", "in_progress"),
        ("B", "completed"),
        ("C", "queued"),
        ("C", "in_progress"),
        ("C", "completed"),
    ]
    assert statuses(tracker, 2)[-2:] == [("C", "queued"), ("C", "skipped")]
    assert tracker.get_stats()["skipped"] == 1
    assert tracker.get_stats()["completed"] == 3
    assert pipeline.get_stats().items_skipped == 1


# ---------------------------------------------------------------------- queries


async def test_get_status_get_by_status_and_get_stats_while_running() -> None:
    gates = Gates()

    async def gated(value: int) -> int:
        await gates.pass_through(value)
        return value

    tracker = StatusTracker()
    pipeline = Pipeline([Stage("A", 1, [gated])], status_tracker=tracker)
    await pipeline.start()
    await pipeline.feed(range(3))
    await gates.entered(0)

    assert tracker.get_stats() == {
        "queued": 2,
        "in_progress": 1,
        "completed": 0,
        "failed": 0,
        "retrying": 0,
        "skipped": 0,
        "unfinished": 0,
        "done_earlier": 0,
    }
    current = tracker.get_status(0)
    assert current is not None
    assert (current.status, current.stage, current.worker) == ("in_progress", "A", "A-W0")
    assert tracker.get_status(1).status == "queued"  # type: ignore[union-attr]
    assert tracker.get_status("never fed") is None
    assert sorted(e.item_id for e in tracker.get_by_status("queued")) == [1, 2]
    assert [e.item_id for e in tracker.get_by_status("in_progress")] == [0]
    assert tracker.get_by_status("completed") == []

    gates.open_all()
    await pipeline.join()

    assert sorted(e.item_id for e in tracker.get_by_status("completed")) == [0, 1, 2]
    assert all(e.status == "completed" for e in tracker.get_by_status("completed"))
    assert tracker.get_stats() == dict.fromkeys(ALL_STATUSES, 0) | {"completed": 3}


async def test_get_stats_has_every_status_key_before_any_item() -> None:
    tracker = StatusTracker()

    assert tracker.get_stats() == dict.fromkeys(ALL_STATUSES, 0)


async def test_get_stats_counts_every_terminal_kind() -> None:
    async def fail_odd(value: int) -> int:
        if value % 2:
            raise QuotaError("odd")
        return value

    tracker = StatusTracker()
    pipeline = Pipeline(
        [Stage("A", 2, [fail_odd], task_attempts=1, skip_if=lambda v: v == 4)],
        status_tracker=tracker,
    )

    await pipeline.run(range(6))

    assert tracker.get_stats() == {
        "queued": 0,
        "in_progress": 0,
        "completed": 2,
        "failed": 3,
        "retrying": 0,
        "skipped": 1,
        "unfinished": 0,
        "done_earlier": 0,
    }


async def test_get_by_status_rejects_an_unknown_status() -> None:
    with pytest.raises(ValueError, match="bogus"):
        StatusTracker().get_by_status("bogus")  # type: ignore[arg-type]


async def test_history_has_status_events_only_in_chronological_order() -> None:
    tracker = StatusTracker()

    async def two_awaits(value: int) -> int:
        await asyncio.sleep(0)
        await asyncio.sleep(0)
        return value

    pipeline = Pipeline(
        [Stage("A", 3, [two_awaits, identity]), Stage("B", 2, [two_awaits])],
        status_tracker=tracker,
    )

    await pipeline.run(range(30))

    for item_id in range(30):
        history = tracker.get_history(item_id)
        assert history, item_id
        assert all(isinstance(e, StatusEvent) for e in history)
        assert all(e.item_id == item_id for e in history)
        stamps = [e.timestamp for e in history]
        assert stamps == sorted(stamps)
        timeline = tracker.get_timeline(item_id)
        assert [e for e in timeline if isinstance(e, StatusEvent)] == history
        timeline_stamps = [e.timestamp for e in timeline]
        assert timeline_stamps == sorted(timeline_stamps)
    assert tracker.get_history("unknown") == []
    assert tracker.get_timeline("unknown") == []


async def test_timeline_merges_task_events_with_exact_durations() -> None:
    clock = FakeClock(100.0)
    attempts: Counter[int] = Counter()

    async def fetch(value: int) -> int:
        clock.advance(2.0)
        return value

    async def parse(value: int) -> int:
        attempts[value] += 1
        clock.advance(0.5)
        if attempts[value] < 3:
            raise QuotaError(f"parse attempt {attempts[value]}")
        return value

    tracker = StatusTracker()
    pipeline = Pipeline(
        [Stage("S", 1, [fetch, parse], task_attempts=3, task_wait_seconds=7.0)],
        status_tracker=tracker,
        clock=clock,
        sleep=no_wait,
    )

    await pipeline.run([1])

    timeline = tracker.get_timeline(0)
    described = [
        (e.status, e.timestamp)
        if isinstance(e, StatusEvent)
        else (e.task_name, e.event_type, e.attempt, e.timestamp, e.duration)
        for e in timeline
    ]
    assert described == [
        ("queued", 100.0),
        ("in_progress", 100.0),
        ("fetch", "start", 1, 100.0, None),
        ("fetch", "complete", 1, 102.0, 2.0),
        ("parse", "start", 1, 102.0, None),
        ("parse", "retry", 1, 102.5, 0.5),
        ("parse", "start", 2, 102.5, None),
        ("parse", "retry", 2, 103.0, 0.5),
        ("parse", "start", 3, 103.0, None),
        ("parse", "complete", 3, 103.5, 0.5),
        ("completed", 103.5),
    ]
    task_events = tracker.get_task_events(0)
    assert task_events == [e for e in timeline if isinstance(e, TaskEvent)]
    retries = [e for e in task_events if e.event_type == "retry"]
    assert [str(e.error) for e in retries] == ["parse attempt 1", "parse attempt 2"]
    assert all(isinstance(e.error, QuotaError) for e in retries)
    assert all(e.error is None for e in task_events if e.event_type != "retry")
    assert {(e.stage, e.worker) for e in task_events} == {("S", "S-W0")}


async def test_a_task_that_fails_every_attempt_ends_with_a_fail_event() -> None:
    clock = FakeClock()

    async def broken(value: int) -> int:
        clock.advance(1.25)
        raise QuotaError("no quota")

    tracker = StatusTracker()
    pipeline = Pipeline(
        [Stage("S", 1, [broken], task_attempts=3, task_wait_seconds=1.0)],
        status_tracker=tracker,
        clock=clock,
        sleep=no_wait,
    )

    await pipeline.run(["x"])

    events = [(e.event_type, e.attempt, e.duration) for e in tracker.get_task_events(0)]
    assert events == [
        ("start", 1, None),
        ("retry", 1, 1.25),
        ("start", 2, None),
        ("retry", 2, 1.25),
        ("start", 3, None),
        ("fail", 3, 1.25),
    ]
    failed = tracker.get_history(0)[-1]
    assert failed.status == "failed"
    assert failed.timestamp == 3.75
    assert failed.metadata["error"] == "no quota"
    assert failed.metadata["error_type"] == "QuotaError"


async def test_status_event_worker_id_parses_the_worker_index() -> None:
    event = StatusEvent(
        item_id=1, stage="Fetch", status="in_progress", worker="Fetch-W2", timestamp=0.0
    )
    queued = StatusEvent(item_id=1, stage="Fetch", status="queued", worker=None, timestamp=0.0)
    big = StatusEvent(item_id=1, stage="A-W1", status="completed", worker="A-W1-W13", timestamp=0)

    assert event.worker_id == 2
    assert queued.worker_id is None
    assert big.worker_id == 13


async def test_worker_ids_of_a_real_run_match_the_worker_names() -> None:
    tracker = StatusTracker()
    pipeline = Pipeline([Stage("Fetch", 3, [identity])], status_tracker=tracker)

    await pipeline.run(range(9))

    for item_id in range(9):
        started = tracker.get_history(item_id)[1]
        assert started.status == "in_progress"
        assert started.worker == f"Fetch-W{started.worker_id}"
        assert started.worker_id in (0, 1, 2)


# ---------------------------------------------------------------------- callbacks


def expected_callback_counts(items: int, stages: int) -> dict[str, int]:
    return {
        "status": items * stages * 3,
        "start": items * stages,
        "complete": items * stages,
    }


async def test_async_and_sync_callbacks_all_fire_before_run_returns() -> None:
    seen: Counter[str] = Counter()

    async def on_status(event: StatusEvent) -> None:
        await asyncio.sleep(0)
        seen["status"] += 1

    def on_start(event: TaskEvent) -> None:
        seen["start"] += 1

    async def on_complete(event: TaskEvent) -> None:
        seen["complete"] += 1

    def on_retry(event: TaskEvent) -> None:
        seen["retry"] += 1

    async def on_fail(event: TaskEvent) -> None:
        await asyncio.sleep(0)
        seen["fail"] += 1

    attempts: Counter[int] = Counter()

    async def flaky(value: int) -> int:
        attempts[value] += 1
        if value == 0 or (value == 1 and attempts[value] == 1):
            raise QuotaError("flaky")
        return value

    tracker = StatusTracker(
        on_status_change=on_status,
        on_task_start=on_start,
        on_task_complete=on_complete,
        on_task_retry=on_retry,
        on_task_fail=on_fail,
    )
    pipeline = Pipeline(
        [Stage("A", 2, [flaky], task_attempts=2, task_wait_seconds=0)], status_tracker=tracker
    )

    results = await pipeline.run(range(4))

    # Item 0 fails both attempts, item 1 fails once; counts are taken right at return.
    assert [r.id for r in results] == [1, 2, 3]
    assert dict(seen) == {"status": 12, "start": 6, "complete": 3, "retry": 2, "fail": 1}


async def test_callbacks_assigned_after_construction_fire() -> None:
    tracker = StatusTracker()
    statuses_seen: list[str] = []
    tasks_seen: list[str] = []
    tracker.on_status_change = lambda event: statuses_seen.append(event.status)

    async def on_task_start(event: TaskEvent) -> None:
        tasks_seen.append(event.task_name)

    tracker.on_task_start = on_task_start
    pipeline = Pipeline([Stage("A", 1, [double])], status_tracker=tracker)

    await pipeline.run([1, 2])

    assert Counter(statuses_seen) == {"queued": 2, "in_progress": 2, "completed": 2}
    assert tasks_seen == ["double", "double"]


async def test_assigning_a_non_callable_callback_raises() -> None:
    tracker = StatusTracker()

    with pytest.raises(TypeError, match="on_task_fail"):
        tracker.on_task_fail = 42  # type: ignore[assignment]


async def test_callbacks_run_in_event_order_even_when_they_await() -> None:
    ticks = iter(range(1, 1_000_000))
    tick_clock = lambda: float(next(ticks))  # noqa: E731 - strictly increasing readings
    received: list[tuple[float, str, Any]] = []

    async def slow_to_record(event: StatusEvent) -> None:
        for _ in range(3):
            await asyncio.sleep(0)
        received.append((event.timestamp, event.status, event.item_id))

    async def yielding(value: int) -> int:
        for _ in range(value % 3):
            await asyncio.sleep(0)
        return value

    tracker = StatusTracker(on_status_change=slow_to_record)
    pipeline = Pipeline(
        [Stage("A", 3, [yielding]), Stage("B", 2, [yielding])],
        status_tracker=tracker,
        clock=tick_clock,
    )

    await pipeline.run(range(12))

    assert len(received) == 12 * 6
    stamps = [stamp for stamp, _, _ in received]
    assert stamps == sorted(stamps)
    for item_id in range(12):
        mine = [(stamp, status) for stamp, status, i in received if i == item_id]
        assert mine == [(e.timestamp, e.status) for e in tracker.get_history(item_id)]


async def test_a_slow_callback_does_not_block_the_workers() -> None:
    release = asyncio.Event()
    delivered: list[StatusEvent] = []

    async def stuck(event: StatusEvent) -> None:
        await release.wait()
        delivered.append(event)

    tracker = StatusTracker(on_status_change=stuck)
    pipeline = Pipeline(
        [Stage("A", 2, [identity]), Stage("B", 2, [identity])], status_tracker=tracker
    )
    await pipeline.start()
    await pipeline.feed(range(50))

    await wait_until(lambda: pipeline.get_stats().items_processed == 50)
    assert delivered == []
    assert tracker.get_stats()["completed"] == 50

    release.set()
    await pipeline.join()

    assert len(delivered) == 50 * 6
    assert pipeline.results[-1].id == 49


async def test_a_stuck_callback_holds_workers_only_past_the_backlog_limit() -> None:
    release = asyncio.Event()
    delivered = 0

    async def stuck(event: StatusEvent) -> None:
        nonlocal delivered
        await release.wait()
        delivered += 1

    # Three status events per item: enough items to pass the backlog limit.
    items = BACKLOG_LIMIT // 3 + 1_000
    tracker = StatusTracker(on_status_change=stuck)
    pipeline = Pipeline([Stage("A", 1, [identity], queue_capacity=10)], status_tracker=tracker)
    await pipeline.start()
    feeder = asyncio.create_task(pipeline.feed(range(items)))

    previous = -1
    for _ in range(1_000):
        processed = pipeline.get_stats().items_processed
        if processed == previous:
            break
        previous = processed
        await settle(50)

    # Items waiting in the queue have their "queued" event pending too.
    assert BACKLOG_LIMIT // 3 - 10 <= previous < items
    assert delivered == 0

    release.set()
    await feeder
    await pipeline.join()

    assert pipeline.get_stats().items_processed == items
    assert delivered == items * 3


@pytest.mark.parametrize("is_async", [True, False])
async def test_a_raising_callback_is_logged_and_the_run_completes(
    is_async: bool, caplog: pytest.LogCaptureFixture
) -> None:
    calls = 0

    def explode(event: TaskEvent) -> None:
        nonlocal calls
        calls += 1
        raise RuntimeError("callback broke")

    async def explode_async(event: TaskEvent) -> None:
        explode(event)

    tracker = StatusTracker(on_task_complete=explode_async if is_async else explode)
    pipeline = Pipeline([Stage("A", 2, [double])], status_tracker=tracker)

    with caplog.at_level(logging.ERROR, logger="antflow.tracker"):
        results = await pipeline.run(range(8))

    assert [r.value for r in results] == [0, 2, 4, 6, 8, 10, 12, 14]
    assert calls == 8
    tracker_records = [r for r in caplog.records if r.name == "antflow.tracker"]
    assert tracker_records
    assert any(r.exc_info and isinstance(r.exc_info[1], RuntimeError) for r in tracker_records)
    assert tracker.get_stats()["completed"] == 8


async def test_add_listener_chains_onto_user_callbacks_and_detaches() -> None:
    user_seen: list[tuple[Any, str]] = []
    listener_seen: list[Any] = []
    tracker = StatusTracker(on_status_change=lambda e: user_seen.append((e.item_id, e.status)))
    detach = tracker.add_listener(listener_seen.append)
    pipeline = Pipeline([Stage("A", 1, [identity])], status_tracker=tracker)

    await pipeline.run(range(2))

    status_events = [e for e in listener_seen if isinstance(e, StatusEvent)]
    task_events = [e for e in listener_seen if isinstance(e, TaskEvent)]
    assert [(e.item_id, e.status) for e in status_events] == user_seen
    assert len(user_seen) == 6
    assert [e.event_type for e in task_events] == ["start", "complete"] * 2

    detach()
    before = len(listener_seen)
    await Pipeline([Stage("A", 1, [identity])], status_tracker=tracker).run(["again"])

    assert len(listener_seen) == before
    assert len(user_seen) == 9
    detach()  # a second call is harmless


async def test_a_raising_listener_is_logged_and_detached(caplog: pytest.LogCaptureFixture) -> None:
    calls = 0
    good: list[Any] = []

    def bad_listener(event: Any) -> None:
        nonlocal calls
        calls += 1
        raise ValueError("listener broke")

    tracker = StatusTracker()
    tracker.add_listener(bad_listener)
    tracker.add_listener(good.append)
    pipeline = Pipeline([Stage("A", 2, [identity])], status_tracker=tracker)

    with caplog.at_level(logging.ERROR, logger="antflow.tracker"):
        results = await pipeline.run(range(5))

    assert len(results) == 5
    assert calls == 1
    assert len(good) == 5 * 5  # queued, in_progress, start, complete, completed
    assert any(
        r.name == "antflow.tracker" and r.exc_info and isinstance(r.exc_info[1], ValueError)
        for r in caplog.records
    )


# ---------------------------------------------------------------------- errors


async def test_error_summary_groups_by_class_name_and_stage() -> None:
    clock = FakeClock(50.0)
    raised: dict[int, BaseException] = {}

    async def check(value: int) -> int:
        if value == 1:
            # The message looks like another type: the summary must not parse it.
            raised[value] = ValueError("KeyError: looks like a KeyError")
            raise raised[value]
        return value

    async def charge_the_card(value: int) -> int:
        clock.advance(1.0)
        if value in (2, 3):
            raised[value] = QuotaError(f"quota for {value}")
            raise raised[value]
        return value

    tracker = StatusTracker()
    pipeline = Pipeline(
        [
            Stage("Check", 1, [check], task_attempts=1),
            Stage("Charge", 1, [charge_the_card], task_attempts=2, task_wait_seconds=0),
        ],
        status_tracker=tracker,
        clock=clock,
    )

    results = await pipeline.run(range(5))

    assert [r.id for r in results] == [0, 4]
    summary = tracker.get_error_summary()
    assert summary.total_failed == 3
    assert dict(summary.errors_by_type) == {"ValueError": 1, "QuotaError": 2}
    assert dict(summary.errors_by_stage) == {"Check": 1, "Charge": 2}
    by_id = {item.item_id: item for item in summary.failed_items}
    assert set(by_id) == {1, 2, 3}
    first = by_id[1]
    assert isinstance(first, FailedItem)
    assert (first.error, first.error_type, first.stage, first.attempts) == (
        "KeyError: looks like a KeyError",
        "ValueError",
        "Check",
        1,
    )
    quota = by_id[2]
    assert (quota.error, quota.error_type, quota.stage, quota.attempts) == (
        "quota for 2",
        "QuotaError",
        "Charge",
        2,
    )
    assert quota.timestamp == tracker.get_history(2)[-1].timestamp
    for item_id, item in by_id.items():
        assert item.exception is raised[item_id]
    assert "charge_the_card" in quota.traceback
    assert "QuotaError: quota for 2" in quota.traceback
    assert "in check" in first.traceback
    assert tracker.get_failed_items() == list(summary.failed_items)
    assert pipeline.get_error_summary().total_failed == 3


async def test_error_summary_str() -> None:
    assert str(StatusTracker().get_error_summary()) == "No errors occurred"
    assert str(ErrorSummary(0, {}, {})) == "No errors occurred"

    async def fail_some(value: int) -> int:
        if value < 2:
            raise QuotaError("q")
        if value == 2:
            raise KeyError("k")
        return value

    tracker = StatusTracker()
    pipeline = Pipeline(
        [Stage("Only", 1, [identity]), Stage("Picky", 1, [fail_some], task_attempts=1)],
        status_tracker=tracker,
    )
    await pipeline.run(range(4))

    text = str(tracker.get_error_summary())
    assert text != "No errors occurred"
    assert "3" in text.splitlines()[0]
    lines = [line.strip() for line in text.splitlines()]
    assert "QuotaError: 2" in lines
    assert "KeyError: 1" in lines
    assert "Picky: 3" in lines


async def test_a_run_without_failures_has_an_empty_error_summary() -> None:
    tracker = StatusTracker()
    await Pipeline([Stage("A", 1, [identity])], status_tracker=tracker).run(range(3))

    summary = tracker.get_error_summary()
    assert summary.total_failed == 0
    assert str(summary) == "No errors occurred"
    assert tracker.get_failed_items() == []


@pytest.mark.parametrize("policy", ["per_task", "per_stage"])
async def test_get_errors_has_one_entry_per_failed_attempt(policy: str) -> None:
    attempts: Counter[int] = Counter()

    async def unreliable_lookup(value: int) -> int:
        attempts[value] += 1
        if value == 0 or attempts[value] == 1:
            raise QuotaError(f"attempt {attempts[value]}")
        return value

    tracker = StatusTracker()
    pipeline = Pipeline(
        [
            Stage(
                "A",
                1,
                [unreliable_lookup],
                retry=policy,
                task_attempts=3,
                stage_attempts=3,
                task_wait_seconds=5,
            )
        ],
        status_tracker=tracker,
        sleep=no_wait,
    )

    await pipeline.run(range(2))

    errors = tracker.get_errors(0)
    assert [str(e.exception) for e in errors] == ["attempt 1", "attempt 2", "attempt 3"]
    assert all(isinstance(e.exception, QuotaError) for e in errors)
    assert all("unreliable_lookup" in e.traceback for e in errors)
    assert [str(e.exception) for e in tracker.get_errors(1)] == ["attempt 1"]
    assert tracker.get_status(1).status == "completed"  # type: ignore[union-attr]
    assert tracker.get_errors("unknown") == []


# ---------------------------------------------------------------------- bounded history


async def test_bounded_history_keeps_exact_counts_and_evicts_oldest_completed_first() -> None:
    async def fail_every_tenth(value: int) -> int:
        if value % 10 == 9:
            raise QuotaError("tenth")
        return value

    tracker = StatusTracker(max_history_items=5)
    pipeline = Pipeline(
        [Stage("A", 1, [fail_every_tenth], task_attempts=1)], status_tracker=tracker
    )

    results = await pipeline.run(range(100))

    completed_ids = [r.id for r in results]
    failed_ids = [i for i in range(100) if i % 10 == 9]
    assert len(completed_ids) == 90
    assert tracker.get_stats()["completed"] == 90
    assert tracker.get_stats()["failed"] == 10
    assert tracker.evicted_items == 85
    # One worker finishes items in feed order, so the newest five are the last five.
    kept = [i for i in completed_ids if tracker.has_history(i)]
    assert kept == completed_ids[-5:]
    assert all(tracker.has_history(i) for i in failed_ids)
    assert tracker.get_history(completed_ids[0]) == []
    assert tracker.get_history(99)[-1].status == "failed"
    assert tracker.items_in_history == 5 + 10
    assert tracker.get_error_summary().total_failed == 10


async def test_bounded_history_never_evicts_items_still_in_flight() -> None:
    gates = Gates()

    async def gate_the_first(value: int) -> int:
        if value < 2:
            await gates.pass_through(value)
        return value

    tracker = StatusTracker(max_history_items=3)
    violations: list[tuple[int, int]] = []

    def check_bound(event: Any) -> None:
        stats = tracker.get_stats()
        in_flight = pipeline.get_stats().items_in_flight
        bound = 3 + stats["failed"] + in_flight
        if tracker.items_in_history > bound:
            violations.append((tracker.items_in_history, bound))

    tracker.add_listener(check_bound)
    pipeline = Pipeline(
        [Stage("A", 3, [gate_the_first]), Stage("B", 2, [identity])], status_tracker=tracker
    )
    await pipeline.start()
    await pipeline.feed(range(60))
    await wait_until(lambda: pipeline.get_stats().items_processed == 58)

    assert tracker.has_history(0)
    assert tracker.has_history(1)
    assert tracker.get_status(0).status == "in_progress"  # type: ignore[union-attr]
    assert tracker.evicted_items == 55
    assert tracker.items_in_history == 3 + 2

    gates.open_all()
    await pipeline.join()

    assert violations == []
    assert tracker.get_stats()["completed"] == 60
    assert tracker.evicted_items == 57
    assert tracker.items_in_history == 3
    assert [r.id for r in pipeline.results] == list(range(60))


async def test_bounded_history_of_zero_keeps_only_failures() -> None:
    async def fail_three(value: int) -> int:
        if value == 3:
            raise QuotaError("three")
        return value

    tracker = StatusTracker(max_history_items=0)
    pipeline = Pipeline([Stage("A", 2, [fail_three], task_attempts=1)], status_tracker=tracker)

    await pipeline.run(range(10))

    assert tracker.items_in_history == 1
    assert tracker.has_history(3)
    assert tracker.evicted_items == 9
    assert tracker.get_stats()["completed"] == 9


async def test_max_history_items_must_be_a_non_negative_int() -> None:
    with pytest.raises(ValueError, match="max_history_items"):
        StatusTracker(max_history_items=-1)


async def test_full_history_costs_under_600_bytes_per_item() -> None:
    items = 20_000

    async def no_op(value: int) -> int:
        return value

    tracker = StatusTracker()
    pipeline = Pipeline(
        [Stage(name, 10, [no_op]) for name in ("A", "B", "C")],
        collect_results=False,
        status_tracker=tracker,
    )
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        await pipeline.run(range(items))
        gc.collect()
        after = tracemalloc.get_traced_memory()[0]
    finally:
        tracemalloc.stop()

    assert tracker.get_stats()["completed"] == items
    assert tracker.items_in_history == items
    assert len(tracker.get_history(items - 1)) == 9
    per_item = (after - before) / items
    assert per_item < 600, f"{per_item:.0f} bytes per item"


# ---------------------------------------------------------------------- retry of an item


async def test_a_retried_item_continues_its_history_and_leaves_the_failed_list() -> None:
    healthy = asyncio.Event()

    async def until_healthy(value: int) -> int:
        if not healthy.is_set():
            raise QuotaError("not yet")
        return value

    tracker = StatusTracker()
    pipeline = Pipeline([Stage("A", 1, [until_healthy], task_attempts=1)], status_tracker=tracker)
    await pipeline.start()
    await pipeline.feed(["x"])
    await wait_until(lambda: pipeline.failed_item_ids() == [0])

    assert [f.item_id for f in tracker.get_failed_items()] == [0]
    assert tracker.get_stats()["failed"] == 1
    assert tracker.get_error_summary().errors_by_type == {"QuotaError": 1}

    healthy.set()
    pipeline.retry(0)
    await wait_until(lambda: pipeline.get_stats().items_processed == 1)
    await pipeline.join()

    assert statuses(tracker, 0) == [
        ("A", "queued"),
        ("A", "in_progress"),
        ("A", "failed"),
        ("A", "queued"),
        ("A", "in_progress"),
        ("A", "completed"),
    ]
    assert tracker.get_failed_items() == []
    assert tracker.get_stats() == dict.fromkeys(ALL_STATUSES, 0) | {"completed": 1}
    summary = tracker.get_error_summary()
    assert (summary.total_failed, dict(summary.errors_by_type)) == (0, {})
    assert dict(summary.errors_by_stage) == {}
    assert [r.value for r in pipeline.results] == ["x"]
    # The failed attempt stays in the item's story.
    assert {str(e.exception) for e in tracker.get_errors(0)} == {"not yet"}
