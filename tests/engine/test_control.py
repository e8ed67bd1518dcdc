"""Control of a running pipeline: pause/resume, shutdown, retrying an item, observe, monitors."""

from __future__ import annotations

import asyncio
import logging
import pickle
from collections import Counter
from typing import TYPE_CHECKING, Any

import pytest

from antflow import (
    DashboardSnapshot,
    ErrorSummary,
    Pipeline,
    PipelineError,
    PipelineResult,
    PipelineStopped,
    Stage,
    StatusTracker,
    observe,
)
from tests.engine.helpers import Gates, settle, wait_until

if TYPE_CHECKING:
    from collections.abc import Mapping

    from antflow import WorkerState


class QuotaError(Exception):
    """What the fake tasks raise."""


async def identity(value: Any) -> Any:
    return value


def gated_stage(name: str, workers: int, gates: Gates, **options: Any) -> Stage:
    async def gated(value: Any) -> Any:
        await gates.pass_through(value)
        return value

    return Stage(name, workers, [gated], **options)


def worker_of(pipeline: Pipeline, item_id: Any) -> str:
    """The worker currently running `item_id`."""
    names = [
        name
        for name, state in pipeline.get_worker_states().items()
        if state.current_item_id == item_id
    ]
    assert len(names) == 1, pipeline.get_worker_states()
    return names[0]


def states(pipeline: Pipeline) -> Mapping[str, WorkerState]:
    return pipeline.get_dashboard_snapshot().worker_states


def assert_accounted(pipeline: Pipeline) -> None:
    """Every fed item ended in exactly one terminal state and nothing is in flight."""
    stats = pipeline.get_stats()
    assert stats.items_in_flight == 0
    assert stats.items_fed == stats.items_processed + stats.items_failed + stats.items_unfinished
    assert len(pipeline.get_unfinished_items()) == stats.items_unfinished
    assert not pipeline.is_running


# ---------------------------------------------------------------------- pause / resume


async def test_pausing_the_pipeline_lets_busy_workers_finish_then_holds_them() -> None:
    gates = Gates()
    tracker = StatusTracker()
    pipeline = Pipeline([gated_stage("A", 2, gates)], status_tracker=tracker)
    await pipeline.start()
    await pipeline.feed(range(6))
    await gates.entered(0)
    await gates.entered(1)

    pipeline.pause()

    snapshot = pipeline.get_dashboard_snapshot()
    assert snapshot.paused
    assert pipeline.is_paused()
    assert pipeline.paused
    # "Pausing…": still busy with the item they hold, but flagged.
    assert {(s.status, s.paused) for s in snapshot.worker_states.values()} == {("busy", True)}

    gates.open(0)
    gates.open(1)
    await wait_until(lambda: pipeline.get_stats().items_processed == 2)
    await settle()

    assert {(s.status, s.paused) for s in states(pipeline).values()} == {("paused", True)}
    assert all(s.current_item_id is None for s in states(pipeline).values())
    assert gates.entered_keys == [0, 1]
    assert pipeline.get_stats().stage_stats["A"].pending_items == 4
    assert tracker.get_stats()["queued"] == 4

    pipeline.resume()
    gates.open_all()
    await pipeline.join()

    assert not pipeline.get_dashboard_snapshot().paused
    assert [r.id for r in pipeline.results] == list(range(6))
    assert Counter(gates.entered_keys) == dict.fromkeys(range(6), 1)
    assert tracker.get_stats()["completed"] == 6
    for item_id in range(6):
        history = [e.status for e in tracker.get_history(item_id)]
        assert history == ["queued", "in_progress", "completed"]


async def test_pausing_one_stage_holds_only_that_stage() -> None:
    tracker = StatusTracker()
    pipeline = Pipeline(
        [Stage("A", 2, [identity]), Stage("B", 2, [identity])], status_tracker=tracker
    )
    await pipeline.start()

    pipeline.pause(stage="B")
    await pipeline.feed(range(5))
    await wait_until(lambda: pipeline.get_stats().stage_stats["A"].completed_items == 5)
    await wait_until(lambda: all(states(pipeline)[w].status == "paused" for w in ("B-W0", "B-W1")))

    snapshot = pipeline.get_dashboard_snapshot()
    assert not snapshot.paused
    assert snapshot.pipeline_stats.stage_stats["B"].paused
    assert not snapshot.pipeline_stats.stage_stats["A"].paused
    assert pipeline.is_paused(stage="B")
    assert not pipeline.is_paused(stage="A")
    assert not pipeline.is_paused()
    assert all(snapshot.worker_states[w].paused for w in ("B-W0", "B-W1"))
    assert not any(snapshot.worker_states[w].paused for w in ("A-W0", "A-W1"))
    assert snapshot.pipeline_stats.stage_stats["B"].pending_items == 5
    assert snapshot.pipeline_stats.stage_stats["B"].completed_items == 0
    assert snapshot.queued_ids["B"] == (0, 1, 2, 3, 4)
    assert tracker.get_by_status("in_progress") == []

    pipeline.resume(stage="B")
    await pipeline.join()

    assert [r.id for r in pipeline.results] == list(range(5))
    for item_id in range(5):
        in_progress = [e.stage for e in tracker.get_history(item_id) if e.status == "in_progress"]
        assert in_progress == ["A", "B"]


async def test_an_idle_worker_shows_paused_as_soon_as_it_is_paused() -> None:
    pipeline = Pipeline([Stage("A", 2, [identity])])
    await pipeline.start()
    await settle()

    pipeline.pause(worker="A-W1")
    await settle()

    worker_states = states(pipeline)
    assert (worker_states["A-W1"].status, worker_states["A-W1"].paused) == ("paused", True)
    assert (worker_states["A-W0"].status, worker_states["A-W0"].paused) == ("idle", False)

    pipeline.resume(worker="A-W1")
    await pipeline.join()


async def test_a_paused_worker_finishes_its_item_then_takes_no_new_one() -> None:
    gates = Gates()
    pipeline = Pipeline([gated_stage("A", 2, gates)])
    await pipeline.start()
    await pipeline.feed(range(6))
    await gates.entered(0)
    await gates.entered(1)
    paused_worker = worker_of(pipeline, 1)
    other_worker = worker_of(pipeline, 0)

    pipeline.pause(worker=paused_worker)

    assert pipeline.is_paused(worker=paused_worker)
    assert not pipeline.is_paused(worker=other_worker)
    assert not pipeline.is_paused()
    busy = states(pipeline)[paused_worker]
    assert (busy.status, busy.paused, busy.current_item_id) == ("busy", True, 1)
    assert not states(pipeline)[other_worker].paused

    gates.open(1)
    await wait_until(lambda: pipeline.get_stats().items_processed == 1)
    await settle()

    held = states(pipeline)[paused_worker]
    assert (held.status, held.paused, held.current_item_id) == ("paused", True, None)
    assert gates.entered_keys == [0, 1]

    gates.open_all()
    await wait_until(lambda: pipeline.get_stats().items_processed == 6)

    metrics = pipeline.get_worker_metrics()
    assert metrics[paused_worker].items_processed == 1
    assert metrics[other_worker].items_processed == 5

    pipeline.resume(worker=paused_worker)
    await settle()
    assert states(pipeline)[paused_worker].status == "idle"
    gates.close_new()
    await pipeline.feed([10, 11])
    await gates.entered(10)
    await gates.entered(11)
    # Both workers took one (ids 6 and 7): the resumed worker takes items again.
    assert {worker_of(pipeline, 6), worker_of(pipeline, 7)} == {paused_worker, other_worker}

    gates.open_all()
    await pipeline.join()
    assert sorted(r.value for r in pipeline.results) == [0, 1, 2, 3, 4, 5, 10, 11]


@pytest.mark.parametrize(
    ("method", "kwargs"),
    [
        ("pause", {"stage": "Nope"}),
        ("resume", {"stage": "Nope"}),
        ("pause", {"worker": "A-W9"}),
        ("resume", {"worker": "Nope-W0"}),
        ("is_paused", {"stage": "Nope"}),
        ("is_paused", {"worker": "A-W9"}),
        ("pause", {"stage": "A", "worker": "A-W0"}),
    ],
)
async def test_unknown_stage_or_worker_names_raise_value_error(
    method: str, kwargs: dict[str, str]
) -> None:
    pipeline = Pipeline([Stage("A", 1, [identity])])

    with pytest.raises(ValueError, match=r"Nope|A-W9|not both"):
        getattr(pipeline, method)(**kwargs)

    assert not pipeline.is_paused()
    assert not pipeline.is_paused(stage="A")


async def test_repeated_pauses_lose_and_duplicate_nothing() -> None:
    calls: Counter[tuple[str, int]] = Counter()

    def counting(stage: str) -> Any:
        async def task(value: int) -> int:
            calls[stage, value] += 1
            await asyncio.sleep(0)
            return value

        return task

    tracker = StatusTracker()
    pipeline = Pipeline(
        [Stage(name, 2, [counting(name)], queue_capacity=3) for name in ("A", "B", "C")],
        status_tracker=tracker,
    )
    await pipeline.start()
    feeder = asyncio.create_task(pipeline.feed(range(40)))
    levels: list[dict[str, str]] = [{}, {"stage": "B"}, {"worker": "C-W0"}, {"stage": "A"}]
    for step in range(24):
        level = levels[step % len(levels)]
        pipeline.pause(**level)
        await settle(3)
        pipeline.resume(**level)
        await settle(2)
    await feeder
    await pipeline.join()

    assert [r.id for r in pipeline.results] == list(range(40))
    assert calls == {(stage, i): 1 for stage in ("A", "B", "C") for i in range(40)}
    assert tracker.get_stats()["completed"] == 40
    for item_id in range(40):
        in_progress = [e.stage for e in tracker.get_history(item_id) if e.status == "in_progress"]
        assert in_progress == ["A", "B", "C"]
    assert_accounted(pipeline)


# ---------------------------------------------------------------------- shutdown


@pytest.mark.parametrize("graceful", [True, False])
async def test_shutdown_with_a_paused_full_downstream_stage_does_not_deadlock(
    graceful: bool,
) -> None:
    pipeline = Pipeline([Stage("A", 1, [identity]), Stage("B", 1, [identity], queue_capacity=1)])
    await pipeline.start()
    pipeline.pause(stage="B")
    feeder = asyncio.create_task(pipeline.feed(range(6)))
    # A hands its first item to B, then waits for room in B's full queue.
    await wait_until(lambda: pipeline.get_stats().stage_stats["A"].completed_items == 2)
    await settle()
    assert pipeline.get_stats().stage_stats["B"].pending_items == 1

    # A timeout guard only: a deadlock fails here instead of hanging the run.
    await asyncio.wait_for(pipeline.shutdown(graceful=graceful), timeout=10)
    await asyncio.wait_for(feeder, timeout=10)

    assert_accounted(pipeline)
    assert pipeline.get_stats().items_processed == 0
    assert sorted(pipeline.get_unfinished_items()) == sorted(range(pipeline.get_stats().items_fed))


@pytest.mark.parametrize("graceful", [True, False])
async def test_shutdown_of_a_paused_pipeline_stops_a_feed_waiting_for_room(
    graceful: bool,
) -> None:
    pipeline = Pipeline([Stage("A", 1, [identity], queue_capacity=2)])
    await pipeline.start()
    pipeline.pause()
    feeder = asyncio.create_task(pipeline.feed(range(5)))
    await wait_until(lambda: pipeline.get_stats().items_fed == 2)
    await settle()
    assert not feeder.done()

    await asyncio.wait_for(pipeline.shutdown(graceful=graceful), timeout=10)
    # The feeder is told its items were not fed, rather than returning as if they were.
    with pytest.raises(PipelineError, match="not fed"):
        await asyncio.wait_for(feeder, timeout=10)
    await settle()

    assert pipeline.get_stats().items_fed == 2
    assert sorted(pipeline.get_unfinished_items()) == [0, 1]
    assert_accounted(pipeline)


async def test_graceful_shutdown_finishes_running_items_and_lists_queued_ones() -> None:
    gates = Gates()
    tracker = StatusTracker()
    pipeline = Pipeline([gated_stage("A", 2, gates)], status_tracker=tracker)
    await pipeline.start()
    await pipeline.feed(range(5))
    await gates.entered(0)
    await gates.entered(1)

    stopping = asyncio.create_task(pipeline.shutdown(graceful=True))
    await settle()

    assert not stopping.done()
    assert pipeline.get_dashboard_snapshot().stopping
    # A shutdown holds the workers but is not a pause: none of them reads as paused.
    assert not any(s.paused for s in states(pipeline).values())

    gates.open(0)
    gates.open(1)
    await stopping

    assert gates.entered_keys == [0, 1]
    assert [r.id for r in pipeline.results] == [0, 1]
    assert pipeline.get_unfinished_items() == [2, 3, 4]
    assert pipeline.get_stats().items_unfinished == 3
    assert not pipeline.get_dashboard_snapshot().stopping
    assert not pipeline.get_dashboard_snapshot().running
    assert tracker.get_stats()["completed"] == 2
    assert_accounted(pipeline)


async def test_forced_shutdown_cancels_running_items_and_lists_them() -> None:
    gates = Gates()
    cancelled: list[Any] = []

    async def never_released(value: int) -> int:
        try:
            await gates.pass_through(value)
        except asyncio.CancelledError:
            cancelled.append(value)
            raise
        return value

    pipeline = Pipeline([Stage("A", 2, [never_released])])
    await pipeline.start()
    await pipeline.feed(range(5))
    await gates.entered(0)
    await gates.entered(1)

    await pipeline.shutdown(graceful=False)

    assert sorted(cancelled) == [0, 1]
    assert sorted(pipeline.get_unfinished_items()) == [0, 1, 2, 3, 4]
    assert pipeline.results == []
    assert pipeline.get_worker_tasks() == {}
    assert all(s.status != "busy" for s in states(pipeline).values())
    assert_accounted(pipeline)


async def test_graceful_shutdown_with_grace_cancels_a_task_that_never_finishes() -> None:
    cancelled = asyncio.Event()

    async def hangs(value: int) -> int:
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            cancelled.set()
            raise
        return value

    pipeline = Pipeline([Stage("A", 1, [hangs])])
    await pipeline.start()
    await pipeline.feed(range(3))
    await wait_until(lambda: pipeline.get_stats().stage_stats["A"].in_progress_items == 1)

    # A timeout guard, not synchronisation: the tiny grace must expire.
    await asyncio.wait_for(pipeline.shutdown(graceful=True, grace=0.01), timeout=10)

    assert cancelled.is_set()
    assert sorted(pipeline.get_unfinished_items()) == [0, 1, 2]
    assert_accounted(pipeline)


async def test_shutdown_makes_an_awaiting_run_return_with_what_finished() -> None:
    gates = Gates()

    async def mixed(value: int) -> int:
        if value == 0:
            raise QuotaError("zero")
        if value == 2:
            await gates.pass_through(value)
        return value

    pipeline = Pipeline([Stage("A", 1, [mixed], task_attempts=1)])
    running = asyncio.create_task(pipeline.run(range(5)))
    await gates.entered(2)
    assert pipeline.is_running

    await pipeline.shutdown(graceful=False)
    results = await asyncio.wait_for(running, timeout=10)

    assert [r.id for r in results] == [1]
    stats = pipeline.get_stats()
    assert (stats.items_fed, stats.items_processed, stats.items_failed) == (5, 1, 1)
    assert sorted(pipeline.get_unfinished_items()) == [2, 3, 4]
    assert pipeline.failed_item_ids() == [0]
    assert_accounted(pipeline)


async def test_a_forced_shutdown_overrides_a_waiting_graceful_one() -> None:
    gates = Gates()
    pipeline = Pipeline([gated_stage("A", 1, gates)])
    await pipeline.start()
    await pipeline.feed(range(3))
    await gates.entered(0)
    graceful = asyncio.create_task(pipeline.shutdown(graceful=True))
    await settle()
    assert not graceful.done()

    await asyncio.wait_for(pipeline.shutdown(graceful=False), timeout=10)
    await asyncio.wait_for(graceful, timeout=10)

    assert sorted(pipeline.get_unfinished_items()) == [0, 1, 2]
    assert pipeline.results == []
    assert_accounted(pipeline)


async def test_join_after_shutdown_returns_and_feed_after_shutdown_feeds_nothing() -> None:
    gates = Gates()
    pipeline = Pipeline([gated_stage("A", 1, gates)])
    await pipeline.start()
    await pipeline.feed(range(2))
    await gates.entered(0)

    await pipeline.shutdown(graceful=False)
    await asyncio.wait_for(pipeline.join(), timeout=10)

    assert sorted(pipeline.get_unfinished_items()) == [0, 1]
    assert_accounted(pipeline)


# Issue 17.2: a stop from outside the script (a viewer's X) looked like success: run()
# returned and an unchanged script exited 0. It reaches the script as ctrl+c would.
async def test_a_stop_from_outside_makes_run_raise_naming_who_stopped_it() -> None:
    gates = Gates()
    pipeline = Pipeline([gated_stage("A", 1, gates)])
    running = asyncio.create_task(pipeline.run(range(5)))
    await gates.entered(0)

    await pipeline.shutdown(graceful=False, by="a viewer (antflow-tui attach, pid 42)")

    with pytest.raises(PipelineStopped) as stopped:
        await asyncio.wait_for(running, timeout=10)
    assert stopped.value.by == "a viewer (antflow-tui attach, pid 42)"
    assert stopped.value.unfinished == 5
    assert str(stopped.value) == (
        "stopped by a viewer (antflow-tui attach, pid 42) before the run finished: "
        "5 items unfinished"
    )
    assert sorted(pipeline.get_unfinished_items()) == [0, 1, 2, 3, 4]
    assert_accounted(pipeline)
    # It crosses processes whole (an offloaded job's error, a recording's).
    again = pickle.loads(pickle.dumps(stopped.value))
    assert (again.by, again.unfinished, str(again)) == (
        "a viewer (antflow-tui attach, pid 42)",
        5,
        str(stopped.value),
    )


async def test_a_stop_from_outside_makes_join_and_stream_raise_too() -> None:
    gates = Gates()
    pipeline = Pipeline([gated_stage("A", 1, gates)])
    await pipeline.start()
    await pipeline.feed(range(3))
    await gates.entered(0)
    joining = asyncio.create_task(pipeline.join())
    await settle()
    await pipeline.shutdown(graceful=False, by="a monitor")
    with pytest.raises(PipelineStopped, match=r"stopped by a monitor .* 3 items unfinished"):
        await asyncio.wait_for(joining, timeout=10)
    # Asked again after the stop, join() says so again (until the next start).
    with pytest.raises(PipelineStopped):
        await pipeline.join()

    gates = Gates()
    streamed = Pipeline([gated_stage("A", 1, gates)])
    seen: list[Any] = []

    async def consume() -> None:
        # One at a time: what came before the stop is kept when stream() raises.
        async for result in streamed.stream(range(4)):
            seen.append(result.id)  # noqa: PERF401

    consuming = asyncio.create_task(consume())
    gates.open(0)
    await gates.entered(1)
    await streamed.shutdown(graceful=False, by="a viewer (pid 7)")
    with pytest.raises(PipelineStopped, match="a viewer \\(pid 7\\)"):
        await asyncio.wait_for(consuming, timeout=10)
    assert seen == [0]
    assert not streamed.is_running


async def test_the_scripts_own_shutdown_raises_nothing_and_a_new_run_starts_clean() -> None:
    gates = Gates()
    pipeline = Pipeline([gated_stage("A", 1, gates)])
    running = asyncio.create_task(pipeline.run(range(2)))
    await gates.entered(0)
    await pipeline.shutdown(graceful=False, by="a viewer")
    with pytest.raises(PipelineStopped):
        await running
    gates.open_all()
    assert [r.id for r in await pipeline.run(range(2, 4))] == [2, 3]
    gates.close_new()
    running = asyncio.create_task(pipeline.run(range(4, 6)))
    await gates.entered(4)
    await pipeline.shutdown(graceful=False)  # the script's own: run() just returns
    assert await asyncio.wait_for(running, timeout=10) == []


# ---------------------------------------------------------------------- retry an item


def two_stage_with_failing_second(
    healthy: asyncio.Event, seen_by_second: list[Any], calls_first: Counter[Any]
) -> Pipeline:
    async def first(value: int) -> str:
        calls_first[value] += 1
        return f"prepared-{value}"

    async def second(value: str) -> str:
        seen_by_second.append(value)
        if value == "prepared-1" and not healthy.is_set():
            raise QuotaError("not yet")
        return value.upper()

    return Pipeline(
        [Stage("Prepare", 1, [first]), Stage("Send", 2, [second], task_attempts=1)],
        status_tracker=StatusTracker(),
    )


async def test_retry_feeds_the_failed_stage_its_original_input_again() -> None:
    healthy = asyncio.Event()
    seen: list[Any] = []
    calls_first: Counter[Any] = Counter()
    pipeline = two_stage_with_failing_second(healthy, seen, calls_first)
    tracker = pipeline.status_tracker
    assert tracker is not None
    await pipeline.start()
    await pipeline.feed(range(3))
    await wait_until(lambda: pipeline.get_stats().items_processed == 2)
    await wait_until(lambda: pipeline.failed_item_ids() == [1])

    assert pipeline.get_failed_input(1) == ("Send", "prepared-1")
    assert pipeline.get_stats().items_failed == 1
    assert pipeline.get_stats().stage_stats["Send"].failed_items == 1
    assert tracker.get_stats()["failed"] == 1

    healthy.set()
    pipeline.retry(1)
    await wait_until(lambda: pipeline.get_stats().items_processed == 3)
    await pipeline.join()

    assert seen.count("prepared-1") == 2
    assert calls_first == {0: 1, 1: 1, 2: 1}
    assert [(r.id, r.value) for r in pipeline.results] == [
        (0, "PREPARED-0"),
        (1, "PREPARED-1"),
        (2, "PREPARED-2"),
    ]
    stats = pipeline.get_stats()
    assert (stats.items_fed, stats.items_processed, stats.items_failed) == (3, 3, 0)
    assert stats.stage_stats["Send"].failed_items == 0
    assert stats.stage_stats["Send"].completed_items == 4 - 1
    assert pipeline.failed_item_ids() == []
    assert tracker.get_stats()["failed"] == 0
    assert tracker.get_stats()["completed"] == 3
    assert pipeline.get_error_summary().total_failed == 0
    with pytest.raises(KeyError):
        pipeline.get_failed_input(1)
    history = [(e.stage, e.status) for e in tracker.get_history(1)]
    assert history == [
        ("Prepare", "queued"),
        ("Prepare", "in_progress"),
        ("Prepare", "completed"),
        ("Send", "queued"),
        ("Send", "in_progress"),
        ("Send", "failed"),
        ("Send", "queued"),
        ("Send", "in_progress"),
        ("Send", "completed"),
    ]
    assert_accounted(pipeline)


async def test_an_item_that_fails_again_after_retry_counts_once() -> None:
    healthy = asyncio.Event()
    seen: list[Any] = []
    pipeline = two_stage_with_failing_second(healthy, seen, Counter())
    tracker = pipeline.status_tracker
    assert tracker is not None
    await pipeline.start()
    await pipeline.feed(range(3))
    await wait_until(lambda: pipeline.failed_item_ids() == [1])

    pipeline.retry(1)
    await wait_until(lambda: seen.count("prepared-1") == 2)
    await wait_until(lambda: pipeline.failed_item_ids() == [1])
    await pipeline.join()

    stats = pipeline.get_stats()
    assert (stats.items_processed, stats.items_failed) == (2, 1)
    assert stats.stage_stats["Send"].failed_items == 1
    assert tracker.get_stats()["failed"] == 1
    summary = pipeline.get_error_summary()
    assert (summary.total_failed, dict(summary.errors_by_stage)) == (1, {"Send": 1})
    assert [f.item_id for f in tracker.get_failed_items()] == [1]
    assert_accounted(pipeline)


async def test_retry_of_an_item_that_has_not_failed_raises() -> None:
    gates = Gates()
    pipeline = Pipeline([gated_stage("A", 1, gates)])
    await pipeline.start()
    await pipeline.feed(["x", "y"])
    await gates.entered("x")

    with pytest.raises(PipelineError):
        pipeline.retry(0)  # running
    with pytest.raises(PipelineError):
        pipeline.retry(1)  # queued
    with pytest.raises(PipelineError):
        pipeline.retry("never fed")

    gates.open_all()
    await pipeline.join()
    with pytest.raises(PipelineError):
        pipeline.retry(0)  # completed
    assert pipeline.get_stats().items_processed == 2


async def test_retry_when_the_pipeline_is_not_running_raises() -> None:
    async def fails(value: int) -> int:
        raise QuotaError("always")

    pipeline = Pipeline([Stage("A", 1, [fails], task_attempts=1)])
    await pipeline.run(["x"])
    assert pipeline.failed_item_ids() == [0]

    with pytest.raises(PipelineError, match="not running"):
        pipeline.retry(0)

    assert pipeline.failed_item_ids() == [0]
    assert pipeline.get_stats().items_failed == 1


# ---------------------------------------------------------------------- observe


async def test_observe_reports_pipelines_started_inside_the_block_and_its_tasks() -> None:
    seen: list[Pipeline] = []
    before = Pipeline([Stage("A", 1, [identity])])
    inside = Pipeline([Stage("A", 1, [identity])])
    in_task = Pipeline([Stage("A", 1, [identity])])
    in_outer_task = Pipeline([Stage("A", 1, [identity])])
    after = Pipeline([Stage("A", 1, [identity])])
    go = asyncio.Event()

    async def run_later(pipeline: Pipeline) -> list[PipelineResult]:
        await go.wait()
        return await pipeline.run([1])

    await before.run([1])
    # Created before the block: its context has no observer, even if it runs during it.
    outer_task = asyncio.create_task(run_later(in_outer_task))
    with observe(seen.append):
        await inside.run([1])
        inner_task = asyncio.create_task(in_task.run([1]))
        go.set()
        await inner_task
        await outer_task
    await after.run([1])

    assert seen == [inside, in_task]


async def test_an_observer_that_raises_is_logged_and_the_pipeline_runs(
    caplog: pytest.LogCaptureFixture,
) -> None:
    def broken_observer(pipeline: Pipeline) -> None:
        raise RuntimeError("observer broke")

    seen: list[Pipeline] = []
    pipeline = Pipeline([Stage("A", 2, [identity])])

    with (
        caplog.at_level(logging.ERROR, logger="antflow"),
        observe(broken_observer),
        observe(seen.append),
    ):
        results = await pipeline.run(range(4))

    assert [r.id for r in results] == [0, 1, 2, 3]
    assert seen == [pipeline]
    assert any(
        r.name.startswith("antflow") and r.exc_info and isinstance(r.exc_info[1], RuntimeError)
        for r in caplog.records
    )


class RecordingDashboard:
    """A custom dashboard that records what it is told."""

    def __init__(self) -> None:
        self.calls: list[str] = []
        self.started_with: tuple[Pipeline, int] | None = None
        self.last_snapshot: DashboardSnapshot | None = None
        self.finished_with: tuple[list[PipelineResult], ErrorSummary] | None = None

    def on_start(self, pipeline: Pipeline, total_items: int) -> None:
        self.calls.append("on_start")
        self.started_with = (pipeline, total_items)

    def on_update(self, snapshot: DashboardSnapshot) -> None:
        self.calls.append("on_update")
        self.last_snapshot = snapshot

    def on_finish(self, results: list[PipelineResult], summary: ErrorSummary) -> None:
        self.calls.append("on_finish")
        self.finished_with = (results, summary)


def assert_driven_once(dashboard: RecordingDashboard) -> None:
    assert dashboard.calls[0] == "on_start"
    assert dashboard.calls[-1] == "on_finish"
    assert dashboard.calls.count("on_start") == 1
    assert dashboard.calls.count("on_finish") == 1
    assert "on_update" in dashboard.calls


async def test_builtin_displays_draw_without_an_observer(
    capsys: pytest.CaptureFixture[str],
) -> None:
    # The control for the suppression test below: these displays do draw here.
    await Pipeline([Stage("A", 1, [identity])]).run(range(3), dashboard="full")
    await Pipeline([Stage("A", 1, [identity])]).run(range(3), progress=True)

    captured = capsys.readouterr()
    assert captured.out.strip()
    assert captured.err.strip()


async def test_observe_suppressing_displays_silences_builtin_dashboards_only(
    capsys: pytest.CaptureFixture[str],
) -> None:
    custom = RecordingDashboard()
    seen: list[Pipeline] = []

    with observe(seen.append, suppress_displays=True):
        full = await Pipeline([Stage("A", 1, [identity])]).run(range(3), dashboard="full")
        progress = await Pipeline([Stage("A", 1, [identity])]).run(range(3), progress=True)
        mine = await Pipeline([Stage("A", 1, [identity])]).run(range(3), custom_dashboard=custom)

    captured = capsys.readouterr()
    assert (captured.out, captured.err) == ("", "")
    assert [len(full), len(progress), len(mine)] == [3, 3, 3]
    assert len(seen) == 3
    assert_driven_once(custom)
    assert custom.finished_with is not None
    assert [r.id for r in custom.finished_with[0]] == [0, 1, 2]


# ---------------------------------------------------------------------- add_monitor


async def test_add_monitor_drives_a_display_around_start_feed_join() -> None:
    gates = Gates()
    display = RecordingDashboard()
    pipeline = Pipeline([gated_stage("A", 1, gates)])
    detach = pipeline.add_monitor(display, interval=0.01)

    await pipeline.start()
    assert pipeline.is_running
    assert display.calls[0] == "on_start"
    assert display.started_with is not None
    assert display.started_with[0] is pipeline
    await pipeline.feed(range(3))
    await gates.entered(0)
    assert "on_finish" not in display.calls

    gates.open_all()
    await pipeline.join()

    assert not pipeline.is_running
    assert_driven_once(display)
    assert display.last_snapshot is not None
    assert display.last_snapshot.pipeline_stats.items_processed == 3
    assert display.finished_with is not None
    assert [r.id for r in display.finished_with[0]] == [0, 1, 2]
    assert display.finished_with[1].total_failed == 0

    detach()
    calls_before = len(display.calls)
    await pipeline.run([7])
    assert len(display.calls) == calls_before


async def test_a_monitor_added_by_an_observer_sees_the_run() -> None:
    display = RecordingDashboard()

    def attach(pipeline: Pipeline) -> None:
        pipeline.add_monitor(display, interval=0.01)

    with observe(attach):
        results = await Pipeline([Stage("A", 2, [identity])]).run(range(4))

    assert len(results) == 4
    assert_driven_once(display)
    assert display.last_snapshot is not None
    assert display.last_snapshot.pipeline_stats.items_processed == 4


async def test_a_forced_shutdown_while_workers_yield_loses_no_item() -> None:
    """Regression: a worker yields to the loop every 32 items taken back to back; a cancel
    at that moment must not catch an item in its hands, unrecorded."""

    async def noop(value: int) -> int:
        return value

    for rounds in range(1, 80, 3):
        pipeline = Pipeline([Stage("A", 1, [noop], queue_capacity=5_000)])
        await pipeline.start()
        await pipeline.feed(range(2_000))
        for _ in range(rounds):
            await asyncio.sleep(0)
        await pipeline.shutdown(graceful=False)
        stats = pipeline.get_stats()
        assert stats.items_in_flight == 0
        assert stats.items_processed + stats.items_unfinished == stats.items_fed == 2_000


async def test_worker_waiting_on_a_concurrency_slot_says_so() -> None:
    # issue 10: a worker waiting for a task_concurrency_limits slot must not look like
    # one running the task.
    gate = asyncio.Event()
    started: list[int] = []

    async def limited(x: int) -> int:
        started.append(x)
        await gate.wait()
        return x

    async def first(x: int) -> int:
        return x

    pipeline = Pipeline([Stage("S", 2, [first, limited], task_concurrency_limits={"limited": 1})])
    run = asyncio.create_task(pipeline.run([1, 2]))
    await wait_until(lambda: any(s.waiting_for for s in pipeline.get_worker_states().values()))
    states = pipeline.get_worker_states()
    waiting = [s for s in states.values() if s.waiting_for == "limited"]
    assert len(waiting) == 1
    assert waiting[0].status == "busy"
    gate.set()
    await run
    assert all(s.waiting_for is None for s in pipeline.get_worker_states().values())


async def test_a_task_reports_its_progress_until_the_item_is_done() -> None:
    # issue 14: per-task progress, beside set_task_status.
    from antflow import set_task_progress

    gate = asyncio.Event()

    async def stream_tokens(x: int) -> int:
        set_task_progress(3, 10)
        await gate.wait()
        return x

    pipeline = Pipeline([Stage("LLM", 1, [stream_tokens])])
    run = asyncio.create_task(pipeline.run([1]))
    await wait_until(lambda: pipeline.get_worker_states()["LLM-W0"].progress is not None)
    assert pipeline.get_worker_states()["LLM-W0"].progress == (3.0, 10.0)
    gate.set()
    await run
    assert pipeline.get_worker_states()["LLM-W0"].progress is None
    set_task_progress(1)  # outside a worker: nothing happens


@pytest.mark.parametrize(
    ("reported", "kept"),
    [
        ((float("nan"), 10), None),
        ((float("inf"), None), None),
        (("lots", None), None),
        ((None, None), None),
        ((5, float("nan")), (5.0, None)),
        ((5, 0), (5.0, None)),
        ((5, -3), (5.0, None)),
        ((-2, 10), (0.0, 10.0)),
        ((7, "10"), (7.0, None)),
    ],
)
async def test_progress_that_is_not_a_finite_number_never_fails_the_task(
    reported: tuple[object, object], kept: tuple[float, float | None] | None
) -> None:
    from antflow import set_task_progress

    gate = asyncio.Event()

    async def reports(x: int) -> int:
        set_task_progress(*reported)  # type: ignore[arg-type]
        await gate.wait()
        return x

    pipeline = Pipeline([Stage("LLM", 1, [reports])])
    run = asyncio.create_task(pipeline.run([1]))
    await wait_until(lambda: pipeline.get_worker_states()["LLM-W0"].status == "busy")
    assert pipeline.get_worker_states()["LLM-W0"].progress == kept
    gate.set()
    await run
    assert pipeline.get_stats().items_processed == 1
    assert pipeline.get_stats().items_failed == 0
