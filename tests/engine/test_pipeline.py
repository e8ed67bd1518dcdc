"""Pipeline: ids, ordering, feeding, backpressure, hooks, queries, builders, stream, dashboards."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import TYPE_CHECKING, Any

import pytest

import antflow
from antflow import (
    DashboardSnapshot,
    ErrorSummary,
    Pipeline,
    PipelineError,
    PipelineResult,
    Stage,
    StatusTracker,
    WorkerMetrics,
    WorkerState,
    set_task_status,
)
from antflow.testing import FakeClock
from antflow.types import StageInfo

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Callable


async def settle(n: int = 30) -> None:
    """Let tasks that are already ready run; never waits for time to pass."""
    for _ in range(n):
        await asyncio.sleep(0)


async def until(condition: Callable[[], bool], limit: int = 500) -> None:
    """Yield to ready tasks until `condition` holds (failing after `limit` yields)."""
    for _ in range(limit):
        if condition():
            return
        await asyncio.sleep(0)
    raise AssertionError("condition never became true")


async def echo(x: Any) -> Any:
    return x


async def double(x: int) -> int:
    return x * 2


async def increment(x: int) -> int:
    return x + 1


async def fail_odd(x: int) -> int:
    if x % 2:
        raise ValueError(f"odd {x}")
    return x


class Gate:
    """Holds every task that awaits `wait` until `open()`; counts who is inside."""

    def __init__(self) -> None:
        self._event = asyncio.Event()
        self.entered: list[Any] = []

    async def wait(self, item: Any) -> Any:
        self.entered.append(item)
        await self._event.wait()
        return item

    def open(self) -> None:
        self._event.set()


# ---------------------------------------------------------------------- item ids


async def test_dict_item_with_id_keeps_that_id_and_passes_the_dict() -> None:
    seen: list[Any] = []

    async def record(x: Any) -> Any:
        seen.append(x)
        return "done"

    items = [{"id": "a", "url": "u1"}, {"id": "b", "url": "u2"}]
    results = await Pipeline([Stage("S", 1, [record])]).run(items)
    assert [r.id for r in results] == ["a", "b"]
    assert seen == items
    assert [r.value for r in results] == ["done", "done"]


async def test_dict_item_with_id_and_value_passes_the_value() -> None:
    seen: list[Any] = []

    async def record(x: Any) -> Any:
        seen.append(x)
        return x * 10

    items = [{"id": "a", "value": 1}, {"id": "b", "value": 2}]
    results = await Pipeline([Stage("S", 1, [record])]).run(items)
    assert seen == [1, 2]
    assert [(r.id, r.value) for r in results] == [("a", 10), ("b", 20)]


async def test_plain_items_get_sequence_ids_continuing_across_feeds() -> None:
    pipeline = Pipeline([Stage("S", 2, [echo])])
    await pipeline.start()
    await pipeline.feed(["x", "y"])
    await pipeline.feed(["z"])
    await pipeline.feed([("t", 1)])
    await pipeline.join()
    assert [(r.id, r.value) for r in pipeline.results] == [
        (0, "x"),
        (1, "y"),
        (2, "z"),
        (3, ("t", 1)),
    ]
    assert [r.sequence_id for r in pipeline.results] == [0, 1, 2, 3]


async def test_dict_without_id_gets_a_sequence_id() -> None:
    results = await Pipeline([Stage("S", 1, [echo])]).run([{"value": 5}])
    assert results[0].id == 0
    assert results[0].value == {"value": 5}


# ---------------------------------------------------------------------- results


async def test_results_are_in_input_order_when_tasks_finish_in_reverse() -> None:
    items = list(range(5))
    gates = {i: asyncio.Event() for i in items}
    started: list[int] = []
    finished: list[int] = []

    async def gated(x: int) -> int:
        started.append(x)
        await gates[x].wait()
        finished.append(x)
        return x * 100

    pipeline = Pipeline([Stage("S", len(items), [gated])])
    run = asyncio.create_task(pipeline.run(items))
    await until(lambda: len(started) == len(items))
    for i in reversed(items):
        gates[i].set()
        await until(lambda i=i: i in finished)
    results = await run
    assert finished == list(reversed(items))
    assert [r.id for r in results] == items
    assert [r.value for r in results] == [i * 100 for i in items]
    assert pipeline.results == results


async def test_run_returns_only_successes() -> None:
    pipeline = Pipeline([Stage("S", 2, [fail_odd], task_attempts=1)])
    results = await pipeline.run(range(6))
    assert [r.id for r in results] == [0, 2, 4]
    assert all(r.is_success for r in results)
    stats = pipeline.get_stats()
    assert stats.items_processed == 3
    assert stats.items_failed == 3
    assert stats.items_in_flight == 0


async def test_collect_results_false_keeps_nothing_but_counts() -> None:
    pipeline = Pipeline([Stage("S", 2, [double])], collect_results=False)
    assert await pipeline.run(range(4)) == []
    assert pipeline.results == []
    assert pipeline.get_stats().items_processed == 4


async def test_multiple_tasks_in_a_stage_chain_their_outputs() -> None:
    async def to_text(x: int) -> str:
        return f"<{x}>"

    pipeline = Pipeline([Stage("S", 1, [increment, double, to_text])])
    results = await pipeline.run([1, 5])
    assert [r.value for r in results] == ["<4>", "<12>"]


async def test_stages_chain_outputs_into_the_next_stage() -> None:
    pipeline = Pipeline([Stage("A", 1, [increment]), Stage("B", 2, [double])])
    results = await pipeline.run([1, 2, 3])
    assert [r.value for r in results] == [4, 6, 8]


# ---------------------------------------------------------------------- feeding


async def test_feed_into_a_target_stage_skips_earlier_stages() -> None:
    async def tag_a(x: str) -> str:
        return x + "A"

    async def tag_b(x: str) -> str:
        return x + "B"

    pipeline = Pipeline([Stage("A", 1, [tag_a]), Stage("B", 1, [tag_b])])
    await pipeline.start()
    await pipeline.feed(["x"])
    await pipeline.feed(["y"], target_stage="B")
    await pipeline.join()
    assert [r.value for r in pipeline.results] == ["xAB", "yB"]


async def test_feed_to_unknown_stage_raises_value_error() -> None:
    pipeline = Pipeline([Stage("A", 1, [echo])])
    with pytest.raises(ValueError, match="'Nope'"):
        await pipeline.feed([1], target_stage="Nope")

    async def agen() -> AsyncIterator[int]:
        yield 1

    with pytest.raises(ValueError, match="'Nope'"):
        await pipeline.feed_async(agen(), target_stage="Nope")
    assert pipeline.get_stats().items_fed == 0


async def test_feed_async_from_an_async_generator() -> None:
    async def numbers() -> AsyncIterator[int]:
        for i in range(5):
            yield i
            await asyncio.sleep(0)

    pipeline = Pipeline([Stage("S", 2, [double])])
    await pipeline.start()
    await pipeline.feed_async(numbers())
    await pipeline.join()
    assert [(r.id, r.value) for r in pipeline.results] == [(i, i * 2) for i in range(5)]


async def test_feed_rejects_an_async_iterable() -> None:
    async def numbers() -> AsyncIterator[int]:
        yield 1

    pipeline = Pipeline([Stage("S", 1, [echo])])
    generator = numbers()
    with pytest.raises(TypeError, match="feed_async"):
        await pipeline.feed(generator)  # type: ignore[arg-type]
    await generator.aclose()


async def test_lower_priority_runs_first_and_ties_keep_feed_order() -> None:
    order: list[str] = []

    async def record(x: str) -> str:
        order.append(x)
        return x

    pipeline = Pipeline([Stage("S", 1, [record])])
    await pipeline.feed(["a", "b"], priority=100)
    await pipeline.feed(["c", "d"], priority=1)
    await pipeline.feed(["e"], priority=50)
    await pipeline.feed(["f"], priority=1)
    await pipeline.start()
    await pipeline.join()
    assert order == ["c", "d", "f", "e", "a", "b"]
    # Results stay in input (feed) order whatever order they ran in.
    assert [r.value for r in pipeline.results] == ["a", "b", "c", "d", "e", "f"]


async def test_backpressure_feed_waits_while_the_queue_is_full() -> None:
    gate = Gate()
    pipeline = Pipeline([Stage("S", 1, [gate.wait], queue_capacity=2)])
    await pipeline.start()
    feeder = asyncio.create_task(pipeline.feed(range(6)))
    await settle()
    stats = pipeline.get_stats()
    assert gate.entered == [0]
    assert stats.stage_stats["S"].pending_items == 2
    assert stats.items_fed == 3
    assert not feeder.done()
    await settle()
    assert pipeline.get_stats().items_fed == 3
    gate.open()
    await feeder
    await pipeline.join()
    assert [r.value for r in pipeline.results] == list(range(6))


async def test_backpressure_between_stages_respects_downstream_capacity() -> None:
    gate = Gate()
    pipeline = Pipeline([Stage("A", 4, [echo]), Stage("B", 1, [gate.wait], queue_capacity=1)])
    await pipeline.start()
    await pipeline.feed(range(6))
    await settle(60)
    stats = pipeline.get_stats()
    assert gate.entered == [0]
    assert stats.stage_stats["B"].pending_items == 1
    gate.open()
    await pipeline.join()
    assert [r.value for r in pipeline.results] == list(range(6))


async def test_feed_before_start_beyond_capacity_raises_instead_of_hanging() -> None:
    pipeline = Pipeline([Stage("Fetch", 1, [echo], queue_capacity=3)])
    with pytest.raises(PipelineError) as caught:
        await pipeline.feed(range(5))
    message = str(caught.value)
    assert "'Fetch'" in message
    assert "3" in message
    assert "start()" in message
    # What fit is still queued, and runs once the pipeline starts.
    assert pipeline.get_stats().items_fed == 3
    await pipeline.start()
    await pipeline.join()
    assert [r.value for r in pipeline.results] == [0, 1, 2]


async def test_join_waits_for_items_fed_while_it_waits() -> None:
    gate = Gate()
    pipeline = Pipeline([Stage("S", 1, [gate.wait])])
    await pipeline.start()
    await pipeline.feed([1])
    joiner = asyncio.create_task(pipeline.join())
    await settle()
    assert not joiner.done()
    await pipeline.feed([2])
    gate.open()
    await joiner
    assert not pipeline.is_running
    assert [r.value for r in pipeline.results] == [1, 2]


async def test_start_twice_raises() -> None:
    pipeline = Pipeline([Stage("S", 1, [echo])])
    await pipeline.start()
    with pytest.raises(PipelineError, match="already running"):
        await pipeline.start()
    await pipeline.join()


# ---------------------------------------------------------------------- stage options


@pytest.mark.parametrize(
    ("item", "expected"),
    [((1, 2), "1-2-0"), ([3, 4, 5], "3-4-5"), ({"a": 6, "b": 7}, "6-7-0")],
)
async def test_unpack_args_spreads_tuples_lists_and_dicts(item: Any, expected: str) -> None:
    async def join_args(a: int, b: int, c: int = 0) -> str:
        return f"{a}-{b}-{c}"

    results = await Pipeline([Stage("S", 1, [join_args], unpack_args=True)]).run([item])
    assert [r.value for r in results] == [expected]


async def test_unpack_args_passes_other_values_whole() -> None:
    results = await Pipeline([Stage("S", 1, [double], unpack_args=True)]).run([4])
    assert [r.value for r in results] == [8]


async def test_task_concurrency_limit_is_shared_by_all_workers_of_a_stage() -> None:
    gate = Gate()
    running = 0
    peak = 0

    async def limited(x: int) -> int:
        nonlocal running, peak
        running += 1
        peak = max(peak, running)
        try:
            return await gate.wait(x)
        finally:
            running -= 1

    stage = Stage("S", 4, [echo, limited], task_concurrency_limits={"limited": 2})
    pipeline = Pipeline([stage])
    await pipeline.start()
    await pipeline.feed(range(8))
    await settle(60)
    assert pipeline.get_stats().stage_stats["S"].in_progress_items == 4
    assert running == 2
    assert len(gate.entered) == 2
    gate.open()
    await pipeline.join()
    assert peak == 2
    assert [r.value for r in pipeline.results] == list(range(8))


async def test_skip_if_passes_the_value_through_unchanged() -> None:
    seen_by_b: list[int] = []

    async def record(x: int) -> int:
        seen_by_b.append(x)
        return x + 1

    stages = [
        Stage("A", 1, [lambda x: double(x * 5)], skip_if=lambda v: v % 2 == 0),
        Stage("B", 1, [record]),
    ]
    pipeline = Pipeline(stages)
    results = await pipeline.run(range(5))
    assert [r.value for r in results] == [1, 11, 3, 31, 5]
    assert seen_by_b == [0, 10, 2, 30, 4]
    stats = pipeline.get_stats().stage_stats
    assert stats["A"].skipped_items == 3
    assert stats["A"].completed_items == 2
    assert stats["B"].skipped_items == 0
    assert stats["B"].completed_items == 5


async def test_skip_in_the_last_stage_counts_as_processed_and_skipped() -> None:
    tracker = StatusTracker()
    pipeline = Pipeline([Stage("S", 1, [double], skip_if=lambda v: v > 1)], status_tracker=tracker)
    results = await pipeline.run([1, 2, 3])
    assert [r.value for r in results] == [2, 2, 3]
    stats = pipeline.get_stats()
    assert stats.items_processed == 3
    assert stats.items_skipped == 2
    assert tracker.get_status(1) is not None
    assert tracker.get_status(1).status == "skipped"  # type: ignore[union-attr]
    assert tracker.get_status(0).status == "completed"  # type: ignore[union-attr]


async def test_raising_skip_if_fails_that_item_with_its_error() -> None:
    def picky(v: int) -> bool:
        if v == 2:
            raise LookupError("cannot decide on 2")
        return False

    pipeline = Pipeline([Stage("S", 1, [double], skip_if=picky)])
    results = await pipeline.run(range(4))
    assert [r.id for r in results] == [0, 1, 3]
    summary = pipeline.get_error_summary()
    assert summary.total_failed == 1
    assert dict(summary.errors_by_type) == {"LookupError": 1}
    assert summary.failed_items[0].item_id == 2
    assert summary.failed_items[0].stage == "S"
    assert "cannot decide on 2" in summary.failed_items[0].error


async def test_async_skip_if_is_awaited() -> None:
    async def skip_big(v: int) -> bool:
        return v > 2

    results = await Pipeline([Stage("S", 1, [double], skip_if=skip_big)]).run([1, 3])
    assert [r.value for r in results] == [2, 3]


# ---------------------------------------------------------------------- hooks


async def test_sync_hooks_get_item_id_result_or_error_and_metadata() -> None:
    boom = ValueError("odd 1")

    async def fail_one(x: int) -> int:
        if x == 1:
            raise boom
        return x * 3

    successes: list[tuple[Any, Any, dict[str, Any]]] = []
    failures: list[tuple[Any, BaseException, dict[str, Any]]] = []
    stage = Stage(
        "S",
        1,
        [fail_one],
        task_attempts=1,
        on_success=lambda i, r, m: successes.append((i, r, m)),
        on_failure=lambda i, e, m: failures.append((i, e, m)),
    )
    results = await Pipeline([stage]).run([{"id": "a", "value": 0}, {"id": "b", "value": 1}])
    assert [r.id for r in results] == ["a"]
    assert [(i, r) for i, r, _ in successes] == [("a", 0)]
    assert successes[0][2]["stage"] == "S"
    assert successes[0][2]["worker"] == "S-W0"
    assert len(failures) == 1
    item_id, error, metadata = failures[0]
    assert item_id == "b"
    assert error is boom
    assert metadata["stage"] == "S"
    assert metadata["attempts"] == 1


async def test_async_hooks_are_awaited_before_run_returns() -> None:
    successes: list[Any] = []
    failures: list[Any] = []

    async def on_success(item_id: Any, result: Any, metadata: dict[str, Any]) -> None:
        await asyncio.sleep(0)
        successes.append((item_id, result))

    async def on_failure(item_id: Any, error: BaseException, metadata: dict[str, Any]) -> None:
        await asyncio.sleep(0)
        failures.append((item_id, type(error).__name__))

    stage = Stage("S", 2, [fail_odd], task_attempts=1, on_success=on_success, on_failure=on_failure)
    await Pipeline([stage]).run(range(4))
    assert sorted(successes) == [(0, 0), (2, 2)]
    assert sorted(failures) == [(1, "ValueError"), (3, "ValueError")]


async def test_on_success_of_a_middle_stage_sees_that_stages_output() -> None:
    calls: list[tuple[Any, Any]] = []
    stages = [
        Stage("A", 1, [double], on_success=lambda i, r, m: calls.append((m["stage"], r))),
        Stage("B", 1, [increment], on_success=lambda i, r, m: calls.append((m["stage"], r))),
    ]
    await Pipeline(stages).run([5])
    assert calls == [("A", 10), ("B", 11)]


async def test_raising_on_success_is_logged_and_keeps_the_item(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.ERROR, logger="antflow")

    def explode(item_id: Any, result: Any, metadata: dict[str, Any]) -> None:
        raise RuntimeError("hook broke")

    pipeline = Pipeline([Stage("S", 1, [double], on_success=explode), Stage("T", 1, [echo])])
    results = await pipeline.run([1, 2])
    assert [r.value for r in results] == [2, 4]
    assert pipeline.get_stats().items_failed == 0
    hook_logs = [r for r in caplog.records if "on_success" in r.getMessage()]
    assert len(hook_logs) == 2
    assert all(r.exc_info and r.exc_info[0] is RuntimeError for r in hook_logs)
    assert all(r.name.startswith("antflow") for r in hook_logs)


async def test_raising_async_on_failure_is_logged_and_the_item_stays_failed(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.ERROR, logger="antflow")

    async def explode(item_id: Any, error: BaseException, metadata: dict[str, Any]) -> None:
        raise RuntimeError("hook broke")

    pipeline = Pipeline([Stage("S", 1, [fail_odd], task_attempts=1, on_failure=explode)])
    results = await pipeline.run(range(4))
    assert [r.id for r in results] == [0, 2]
    assert pipeline.failed_item_ids() == [1, 3]
    assert pipeline.get_stats().items_failed == 2
    hook_logs = [r for r in caplog.records if "on_failure" in r.getMessage()]
    assert len(hook_logs) == 2


# ---------------------------------------------------------------------- worker queries


async def test_set_task_status_shows_while_the_task_runs_and_clears_after() -> None:
    gate = Gate()

    async def busy(x: int) -> int:
        set_task_status(f"downloading {x}")
        return await gate.wait(x)

    pipeline = Pipeline([Stage("S", 1, [busy])])
    await pipeline.start()
    await pipeline.feed([7])
    await until(lambda: gate.entered == [7])
    state = pipeline.get_worker_states()["S-W0"]
    assert state.current_task == "downloading 7"
    assert state.status == "busy"
    assert state.current_item_id == 0
    gate.open()
    await pipeline.join()
    state = pipeline.get_worker_states()["S-W0"]
    assert state.current_task is None
    assert state.status == "idle"
    assert state.current_item_id is None


def test_set_task_status_outside_a_worker_does_nothing() -> None:
    set_task_status("nobody listens")


def test_get_worker_names_has_the_seeds_shape() -> None:
    pipeline = Pipeline(
        [
            Stage(name="Fetch", workers=3, tasks=[echo]),
            Stage(name="Process", workers=2, tasks=[echo]),
        ]
    )
    assert pipeline.get_worker_names() == {
        "Fetch": ["Fetch-W0", "Fetch-W1", "Fetch-W2"],
        "Process": ["Process-W0", "Process-W1"],
    }


def test_worker_states_and_metrics_before_start() -> None:
    pipeline = Pipeline([Stage("Fetch", 2, [echo])])
    states = pipeline.get_worker_states()
    assert list(states) == ["Fetch-W0", "Fetch-W1"]
    assert states["Fetch-W0"] == WorkerState(worker_name="Fetch-W0", stage="Fetch", status="idle")
    metrics = pipeline.get_worker_metrics()
    assert metrics["Fetch-W1"] == WorkerMetrics(worker_name="Fetch-W1", stage="Fetch")
    assert metrics["Fetch-W1"].avg_processing_time == 0.0


async def test_worker_metrics_with_a_fake_clock_are_exact() -> None:
    clock = FakeClock(1000.0)
    durations = {0: 1.0, 1: 2.0, 2: 6.0}

    async def timed(x: int) -> int:
        clock.advance(durations[x])
        if x == 2:
            raise ValueError("two")
        return x

    pipeline = Pipeline([Stage("S", 1, [timed], task_attempts=1)], clock=clock)
    await pipeline.run([0, 1, 2])
    metrics = pipeline.get_worker_metrics()["S-W0"]
    assert metrics.items_processed == 2
    assert metrics.items_failed == 1
    assert metrics.total_processing_time == 9.0
    assert metrics.avg_processing_time == 3.0
    assert metrics.last_active == clock.now
    assert metrics.recent_items == (0, 1, 2)
    assert pipeline.get_stats().stage_stats["S"].task_seconds == 9.0


async def test_worker_state_while_busy_uses_the_injected_clock() -> None:
    clock = FakeClock(50.0)
    gate = Gate()
    pipeline = Pipeline([Stage("S", 2, [gate.wait])], clock=clock)
    await pipeline.start()
    await pipeline.feed(["x"])
    await until(lambda: gate.entered == ["x"])
    clock.advance(3.0)
    states = pipeline.get_worker_states()
    busy = [s for s in states.values() if s.status == "busy"]
    assert len(busy) == 1
    assert busy[0].current_item_id == 0
    assert busy[0].processing_since == 50.0
    assert busy[0].stage == "S"
    gate.open()
    await pipeline.join()


async def test_dashboard_snapshot_fields_during_a_run() -> None:
    clock = FakeClock(10.0)
    gate = Gate()
    stage = Stage("S", 1, [gate.wait], queue_capacity=5, task_attempts=2)
    pipeline = Pipeline([stage, Stage("T", 2, [echo])], clock=clock)
    await pipeline.start()
    await pipeline.feed(range(4))
    await until(lambda: gate.entered == [0])
    snapshot = pipeline.get_dashboard_snapshot()
    assert isinstance(snapshot, DashboardSnapshot)
    assert snapshot.timestamp == 10.0
    assert snapshot.running is True
    assert snapshot.paused is False
    assert snapshot.stopping is False
    assert snapshot.total_items is None
    assert set(snapshot.worker_states) == {"S-W0", "T-W0", "T-W1"}
    assert set(snapshot.worker_metrics) == {"S-W0", "T-W0", "T-W1"}
    assert snapshot.worker_states["S-W0"].status == "busy"
    assert snapshot.worker_states["S-W0"].current_item_id == 0
    stats = snapshot.pipeline_stats
    assert stats.items_in_flight == 4
    assert stats.items_fed == 4
    assert stats.items_processed == 0
    assert dict(stats.queue_sizes) == {"S": 3, "T": 0}
    assert list(stats.stage_stats) == ["S", "T"]
    assert stats.stage_stats["S"].pending_items == 3
    assert stats.stage_stats["S"].in_progress_items == 1
    assert stats.stage_stats["S"].busy_workers == 1
    assert stats.stage_stats["S"].queue_capacity == 5
    assert dict(snapshot.queued_ids) == {"S": (1, 2, 3), "T": ()}
    assert snapshot.stages[0] == StageInfo(
        name="S",
        workers=1,
        task_names=("wait",),
        retry="per_task",
        task_attempts=2,
        task_wait_seconds=1.0,
        stage_attempts=3,
        task_concurrency_limits={},
        queue_capacity=5,
        worker_names=("S-W0",),
    )
    gate.open()
    await pipeline.join()
    final = pipeline.get_dashboard_snapshot()
    assert final.running is False
    assert final.pipeline_stats.items_processed == 4
    assert final.pipeline_stats.items_in_flight == 0
    assert final.pipeline_stats.stage_stats["T"].completed_items == 4


def test_error_summary_without_failures_reads_no_errors() -> None:
    summary = Pipeline([Stage("S", 1, [echo])]).get_error_summary()
    assert summary.total_failed == 0
    assert str(summary) == "No errors occurred"


# ---------------------------------------------------------------------- builder and quick


async def test_builder_builds_the_described_pipeline() -> None:
    tracker = StatusTracker()

    async def skip_nothing(v: Any) -> bool:
        return False

    pipeline = (
        Pipeline.create()
        .add("Fetch", increment, double, workers=3, retries=2)
        .add("Save", echo, retry_policy="per_stage", retries=4, skip_if=skip_nothing)
        .with_tracker(tracker)
        .collect_results(False)
        .build()
    )
    assert isinstance(pipeline, Pipeline)
    fetch, save = pipeline.stages
    assert (fetch.name, fetch.workers, list(fetch.tasks)) == ("Fetch", 3, [increment, double])
    assert (fetch.retry, fetch.task_attempts) == ("per_task", 2)
    assert (save.name, save.workers, save.retry, save.stage_attempts) == (
        "Save",
        1,
        "per_stage",
        4,
    )
    assert save.skip_if is skip_nothing
    assert pipeline.status_tracker is tracker
    assert pipeline.collect_results is False
    assert await pipeline.run([1]) == []
    assert tracker.get_status(0).status == "completed"  # type: ignore[union-attr]


async def test_builder_run_returns_results() -> None:
    results = await Pipeline.create().add("A", increment).add("B", double, workers=2).run([1, 2])
    assert [r.value for r in results] == [4, 6]


def test_builder_add_without_tasks_raises() -> None:
    with pytest.raises(PipelineError, match="'Fetch'"):
        Pipeline.create().add("Fetch")


def test_builder_build_validates_stages() -> None:
    with pytest.raises(antflow.StageValidationError, match="'Fetch'"):
        Pipeline.create().add("Fetch", echo, workers=0).build()


async def test_quick_with_one_task_runs_one_stage() -> None:
    started: list[Pipeline] = []
    with antflow.observe(started.append):
        results = await Pipeline.quick([1, 2, 3], double, workers=2, retries=4)
    assert [(r.id, r.value) for r in results] == [(0, 2), (1, 4), (2, 6)]
    (pipeline,) = started
    assert pipeline.get_worker_names() == {"double": ["double-W0", "double-W1"]}
    assert pipeline.stages[0].task_attempts == 4


async def test_quick_with_a_list_runs_one_stage_per_task() -> None:
    started: list[Pipeline] = []
    with antflow.observe(started.append):
        results = await Pipeline.quick([1, 2], [increment, double, increment], workers=1)
    assert [r.value for r in results] == [5, 7]
    (pipeline,) = started
    assert len(pipeline.stages) == 3
    assert [list(s.tasks) for s in pipeline.stages] == [[increment], [double], [increment]]
    assert len(set(pipeline.get_worker_names())) == 3


async def test_quick_returns_only_successes() -> None:
    results = await Pipeline.quick(range(4), fail_odd, retries=1)
    assert [r.id for r in results] == [0, 2]


# ---------------------------------------------------------------------- stream


async def test_stream_yields_every_item_including_failures() -> None:
    pipeline = Pipeline([Stage("S", 2, [fail_odd], task_attempts=1)])
    seen: list[PipelineResult] = [r async for r in pipeline.stream(range(5))]
    assert sorted(r.id for r in seen) == [0, 1, 2, 3, 4]
    by_id = {r.id: r for r in seen}
    for i in (0, 2, 4):
        assert by_id[i].is_success
        assert by_id[i].value == i
    for i in (1, 3):
        assert not by_id[i].is_success
        assert isinstance(by_id[i].error, ValueError)
        assert str(by_id[i].error) == f"odd {i}"
    assert pipeline.results == []
    assert pipeline.collect_results is True
    assert not pipeline.is_running


async def test_stream_yields_in_completion_order() -> None:
    gates = {i: asyncio.Event() for i in range(3)}

    async def gated(x: int) -> int:
        await gates[x].wait()
        return x

    pipeline = Pipeline([Stage("S", 3, [gated])])
    order: list[int] = []
    async with contextlib.aclosing(pipeline.stream(range(3))) as results:
        for i in (2, 0, 1):
            gates[i].set()
            order.append((await anext(results)).id)
    assert order == [2, 0, 1]


async def test_breaking_out_of_stream_shuts_down_and_accounts_every_item() -> None:
    gate = Gate()

    async def first_is_fast(x: int) -> int:
        if x == 0:
            return x
        return await gate.wait(x)

    pipeline = Pipeline([Stage("S", 2, [first_is_fast])])
    received: list[PipelineResult] = []
    async with contextlib.aclosing(pipeline.stream(range(6))) as results:
        async for result in results:
            received.append(result)
            break
    assert [r.id for r in received] == [0]
    assert not pipeline.is_running
    assert pipeline.get_worker_tasks() == {}
    stats = pipeline.get_stats()
    unfinished = pipeline.get_unfinished_items()
    assert stats.items_fed == 6
    assert stats.items_in_flight == 0
    assert stats.items_processed + stats.items_failed + len(unfinished) == 6
    assert stats.items_processed == 1
    assert sorted(unfinished) == [1, 2, 3, 4, 5]
    assert stats.items_unfinished == 5


async def test_breaking_out_of_stream_while_feed_waits_for_room_accounts_fed_items() -> None:
    gate = Gate()

    async def first_is_fast(x: int) -> int:
        if x == 0:
            return x
        return await gate.wait(x)

    pipeline = Pipeline([Stage("S", 1, [first_is_fast], queue_capacity=2)])
    async with contextlib.aclosing(pipeline.stream(range(20))) as results:
        first = await anext(results)
        await until(lambda: gate.entered == [1])
    assert first.id == 0
    assert not pipeline.is_running
    assert pipeline.get_worker_tasks() == {}
    stats = pipeline.get_stats()
    unfinished = pipeline.get_unfinished_items()
    # Feeding stopped at the full queue: items never fed are not the pipeline's.
    assert stats.items_fed < 20
    assert stats.items_processed == 1
    assert stats.items_in_flight == 0
    assert len(unfinished) == len(set(unfinished)) == stats.items_fed - 1
    assert sorted(unfinished) == list(range(1, stats.items_fed))


async def test_stream_with_a_multi_stage_pipeline_yields_final_values() -> None:
    pipeline = Pipeline([Stage("A", 2, [increment]), Stage("B", 2, [double])])
    values = sorted([r.value async for r in pipeline.stream([1, 2, 3])])
    assert values == [4, 6, 8]


# ---------------------------------------------------------------------- context manager


async def test_async_with_runs_and_stops_the_pipeline() -> None:
    async with Pipeline([Stage("S", 2, [double])]) as pipeline:
        results = await pipeline.run([1, 2])
    assert [r.value for r in results] == [2, 4]
    assert not pipeline.is_running


async def test_async_with_exit_on_error_cancels_and_accounts_every_item() -> None:
    gate = Gate()
    pipeline = Pipeline([Stage("S", 1, [gate.wait])])

    async def user_code() -> None:
        async with pipeline:
            await pipeline.start()
            await pipeline.feed(range(3))
            await until(lambda: gate.entered == [0])
            raise RuntimeError("user code failed")

    with pytest.raises(RuntimeError, match="user code failed"):
        await user_code()
    assert not pipeline.is_running
    assert pipeline.get_worker_tasks() == {}
    assert sorted(pipeline.get_unfinished_items()) == [0, 1, 2]
    assert pipeline.get_stats().items_in_flight == 0


async def test_async_with_clean_exit_lets_the_running_item_finish() -> None:
    gate = Gate()
    pipeline = Pipeline([Stage("S", 1, [gate.wait])])
    async with pipeline:
        await pipeline.start()
        await pipeline.feed(range(3))
        await until(lambda: gate.entered == [0])
        asyncio.get_running_loop().call_soon(gate.open)
    assert not pipeline.is_running
    assert [r.id for r in pipeline.results] == [0]
    assert pipeline.get_unfinished_items() == [1, 2]
    assert gate.entered == [0]


# ---------------------------------------------------------------------- dashboards


async def test_progress_and_dashboard_together_raise_value_error() -> None:
    pipeline = Pipeline([Stage("S", 1, [echo])])
    with pytest.raises(ValueError, match="progress"):
        await pipeline.run([1], progress=True, dashboard="compact")
    assert not pipeline.is_running
    assert pipeline.get_stats().items_fed == 0


async def test_unknown_dashboard_name_raises_value_error() -> None:
    pipeline = Pipeline([Stage("S", 1, [echo])])
    with pytest.raises(ValueError, match="'fancy'"):
        await pipeline.run([1], dashboard="fancy")  # type: ignore[arg-type]
    assert not pipeline.is_running


class RecordingDashboard:
    """Records every call the pipeline makes, in order."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, Any]] = []

    def on_start(self, pipeline: Pipeline, total_items: int) -> None:
        self.calls.append(("on_start", (pipeline, total_items)))

    def on_update(self, snapshot: DashboardSnapshot) -> None:
        self.calls.append(("on_update", snapshot))

    def on_finish(self, results: list[PipelineResult], summary: ErrorSummary) -> None:
        self.calls.append(("on_finish", (results, summary)))


async def test_custom_dashboard_gets_start_updates_and_finish_in_order() -> None:
    dashboard = RecordingDashboard()
    assert isinstance(dashboard, antflow.DashboardProtocol)
    pipeline = Pipeline([Stage("S", 2, [fail_odd], task_attempts=1)])
    results = await pipeline.run(
        range(4), custom_dashboard=dashboard, dashboard_update_interval=60.0
    )
    names = [name for name, _ in dashboard.calls]
    assert names[0] == "on_start"
    assert names[-1] == "on_finish"
    assert names.count("on_start") == 1
    assert names.count("on_finish") == 1
    assert names.count("on_update") >= 1
    assert dashboard.calls[0][1] == (pipeline, 4)
    finish_results, summary = dashboard.calls[-1][1]
    assert finish_results == results
    assert summary.total_failed == 2
    last_update = [arg for name, arg in dashboard.calls if name == "on_update"][-1]
    assert last_update.pipeline_stats.items_processed == 2
    assert last_update.pipeline_stats.items_failed == 2
    assert last_update.total_items == 4


async def test_dashboard_raising_in_on_update_does_not_stop_the_run(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.ERROR, logger="antflow")

    class Broken(RecordingDashboard):
        def on_update(self, snapshot: DashboardSnapshot) -> None:
            super().on_update(snapshot)
            raise RuntimeError("cannot draw")

    dashboard = Broken()
    results = await Pipeline([Stage("S", 2, [double])]).run(
        range(3), custom_dashboard=dashboard, dashboard_update_interval=60.0
    )
    assert [r.value for r in results] == [0, 2, 4]
    assert [name for name, _ in dashboard.calls][-1] == "on_finish"
    assert any("on_update" in r.getMessage() for r in caplog.records)


async def test_dashboard_methods_are_not_called_after_finish() -> None:
    dashboard = RecordingDashboard()
    pipeline = Pipeline([Stage("S", 1, [echo])])
    await pipeline.run([1], custom_dashboard=dashboard, dashboard_update_interval=0.001)
    calls_at_finish = len(dashboard.calls)
    await settle()
    assert len(dashboard.calls) == calls_at_finish
    await pipeline.run([2])
    assert len(dashboard.calls) == calls_at_finish


async def test_a_slow_stream_reader_never_blocks_workers_nor_hangs_the_end() -> None:
    """Regression: results wait in the stream for its reader, never in a worker, so counts
    agree everywhere and the stream ends even when the reader lags far behind."""

    async def half_fail(value: int) -> int:
        if value % 2:
            raise ValueError(value)
        return value

    tracker = StatusTracker()
    pipeline = Pipeline([Stage("A", 4, [half_fail], task_attempts=1)], status_tracker=tracker)
    seen = 0
    async for _result in pipeline.stream(range(3_000)):
        seen += 1
        if seen % 500 == 0:
            for _ in range(50):
                await asyncio.sleep(0)
    stats = pipeline.get_stats()
    assert seen == 3_000
    assert (stats.items_processed, stats.items_failed, stats.items_unfinished) == (1_500, 1_500, 0)
    assert tracker.get_stats()["completed"] == 1_500
    assert tracker.get_stats()["failed"] == 1_500
