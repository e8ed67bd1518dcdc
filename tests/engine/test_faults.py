"""Faults: nothing lost, nothing counted twice, nothing hangs, whatever user code does.

Regression tests for issue 9, one (or a few) per case it lists. Fake tasks wait on
`asyncio.Event`s; the few waits bounded by seconds (a shutdown's grace, the cancel grace)
are the engine's own timeouts under test, set short.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import subprocess
import sys
from typing import TYPE_CHECKING, Any

import pytest

from antflow import (
    DashboardSnapshot,
    Pipeline,
    PipelineError,
    PipelineResult,
    Stage,
    StageValidationError,
    StatusTracker,
)
from antflow.display import ProgressDisplay
from antflow.display.rich_dashboards import CompactDashboard, DetailedDashboard, FullDashboard
from antflow.types import ErrorSummary
from tests.engine.helpers import Gates, settle, wait_until

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path


def assert_accounted(pipeline: Pipeline, tracker: StatusTracker | None = None) -> None:
    """Every fed item in exactly one terminal state; tracker and pipeline agree."""
    stats = pipeline.get_stats()
    completed = {r.id for r in pipeline.results}
    failed = set(pipeline.failed_item_ids())
    unfinished = set(pipeline.get_unfinished_items())
    assert stats.items_in_flight == 0
    assert not (completed & failed)
    assert not (completed & unfinished)
    assert not (failed & unfinished)
    assert stats.items_failed == len(failed)
    assert stats.items_unfinished == len(unfinished)
    assert stats.items_processed + stats.items_failed + stats.items_unfinished == stats.items_fed
    assert not pipeline.is_running
    assert pipeline.get_worker_tasks() == {}
    if tracker is not None:
        counts = tracker.get_stats()
        assert counts["failed"] == stats.items_failed
        assert counts["unfinished"] == stats.items_unfinished
        assert counts["completed"] + counts["skipped"] == stats.items_processed
        assert counts["queued"] == counts["in_progress"] == counts["retrying"] == 0


async def bad(x: Any) -> Any:
    raise ValueError(f"bad {x}")


async def echo(x: Any) -> Any:
    return x


# ---------------------------------------------------------------- 1. failed and unfinished


@pytest.mark.parametrize("how", ["shutdown", "cancel run"])
async def test_a_forced_stop_during_an_on_failure_hook_counts_the_item_once(how: str) -> None:
    hook_entered = asyncio.Event()

    async def slow_hook(item_id: Any, error: BaseException, meta: dict[str, Any]) -> None:
        hook_entered.set()
        await asyncio.Event().wait()

    tracker = StatusTracker()
    pipeline = Pipeline(
        [Stage("A", 1, [bad], task_attempts=1, on_failure=slow_hook)], status_tracker=tracker
    )
    run = asyncio.create_task(pipeline.run([0]))
    await hook_entered.wait()
    if how == "shutdown":
        await pipeline.shutdown(graceful=False)
        assert await run == []
    else:
        run.cancel()
        with pytest.raises(asyncio.CancelledError):
            await run
    assert pipeline.failed_item_ids() == [0]
    assert pipeline.get_unfinished_items() == []
    assert pipeline.get_stats().items_in_flight == 0
    assert_accounted(pipeline, tracker)


async def test_a_graceful_stop_lets_a_running_on_failure_hook_finish() -> None:
    release = asyncio.Event()
    finished: list[Any] = []

    async def hook(item_id: Any, error: BaseException, meta: dict[str, Any]) -> None:
        await release.wait()
        finished.append(item_id)

    pipeline = Pipeline([Stage("A", 1, [bad], task_attempts=1, on_failure=hook)])
    run = asyncio.create_task(pipeline.run([0]))
    await wait_until(lambda: pipeline.failed_item_ids() == [0])
    stop = asyncio.create_task(pipeline.shutdown())
    await settle()
    assert not stop.done()
    release.set()
    await stop
    await run
    assert finished == [0]
    assert_accounted(pipeline)


# ---------------------------------------------------------------- 2. duplicate ids


async def test_a_batch_repeating_an_id_is_refused_before_anything_runs() -> None:
    tracker = StatusTracker()
    pipeline = Pipeline([Stage("A", 1, [bad], task_attempts=1)], status_tracker=tracker)
    with pytest.raises(PipelineError, match="'x'"):
        await pipeline.run([{"id": "x", "value": i} for i in range(5)])
    assert pipeline.get_stats().items_fed == 0
    assert not pipeline.is_running
    assert tracker.get_stats()["queued"] == 0


async def test_feeding_an_id_still_in_flight_is_refused_and_not_counted() -> None:
    gate = asyncio.Event()

    async def wait(x: Any) -> Any:
        await gate.wait()
        return x

    pipeline = Pipeline([Stage("A", 2, [wait])])
    await pipeline.start()
    await pipeline.feed([{"id": "x", "value": 1}])
    with pytest.raises(PipelineError, match=r"'x'.*in flight"):
        await pipeline.feed([{"id": "y", "value": 2}, {"id": "x", "value": 3}])
    # The list was checked whole: 'y' was not fed either.
    assert pipeline.get_stats().items_fed == 1
    gate.set()
    await pipeline.join()
    assert [(r.id, r.value) for r in pipeline.results] == [("x", 1)]
    assert_accounted(pipeline)


async def test_feeding_the_id_of_a_failed_item_is_refused_with_a_pointer_to_retry() -> None:
    pipeline = Pipeline([Stage("A", 1, [bad], task_attempts=1)])
    await pipeline.run([{"id": "x", "value": 1}])
    await pipeline.start()
    with pytest.raises(PipelineError, match=r"'x'.*retry"):
        await pipeline.feed([{"id": "x", "value": 2}])
    await pipeline.join()
    assert pipeline.failed_item_ids() == ["x"]
    assert pipeline.get_stats().items_fed == 1


async def test_a_finished_id_may_be_fed_again() -> None:
    pipeline = Pipeline([Stage("A", 1, [echo])])
    assert [r.value for r in await pipeline.run([{"id": "x", "value": 1}])] == [1]
    assert [r.value for r in await pipeline.run([{"id": "x", "value": 2}])] == [2]


async def test_an_id_fed_through_a_generator_is_refused_at_the_repeat() -> None:
    pipeline = Pipeline([Stage("A", 1, [echo])])
    await pipeline.start()
    with pytest.raises(PipelineError, match="'x'"):
        await pipeline.feed(item for item in [{"id": "x"}, {"id": "x"}])
    await pipeline.join()
    assert pipeline.get_stats().items_fed == 1
    assert_accounted(pipeline)


@pytest.mark.parametrize("with_tracker", [False, True])
async def test_automatic_ids_never_collide_with_explicit_ones(with_tracker: bool) -> None:
    tracker = StatusTracker() if with_tracker else None
    pipeline = Pipeline([Stage("A", 1, [bad], task_attempts=1)], status_tracker=tracker)
    await pipeline.run([{"id": 1, "value": "a"}, "b", {"id": 3, "value": "c"}, "d", "e"])
    failed = pipeline.failed_item_ids()
    assert len(failed) == len(set(failed)) == 5
    assert 1 in failed
    assert 3 in failed
    assert pipeline.get_stats().items_failed == 5
    if tracker is not None:
        assert len(tracker.get_failed_items()) == 5
        assert tracker.get_error_summary().total_failed == 5
        assert_accounted(pipeline, tracker)


# Issue 18.15: "b" got the automatic number 1, then the explicit id 1 stopped the feeding
# half-way with PipelineError, part of the list fed and counted.
@pytest.mark.parametrize("how", ["feed", "run", "stream"])
async def test_automatic_numbers_skip_explicit_ids_later_in_the_same_list(how: str) -> None:
    pipeline = Pipeline([Stage("A", 1, [echo])])
    items: list[Any] = ["a", "b", {"id": 1, "value": "c"}]
    if how == "stream":
        # Past one chunk of the stream's feeding, so the explicit id comes in a later feed.
        items = [f"v{n}" for n in range(70)] + [{"id": 1, "value": "c"}, {"id": 69, "value": "d"}]
        results = [result async for result in pipeline.stream(items)]
    elif how == "run":
        results = await pipeline.run(items)
    else:
        await pipeline.start()
        await pipeline.feed(items)
        await pipeline.join()
        results = pipeline.results
    ids = [result.id for result in results]
    assert len(ids) == len(set(ids)) == len(items)
    assert {1: "c"}.items() <= {r.id: r.value for r in results}.items()
    assert pipeline.get_stats().items_fed == len(items)
    assert_accounted(pipeline)


async def test_a_list_that_cannot_fit_before_start_is_refused_whole() -> None:
    pipeline = Pipeline([Stage("A", 1, [echo], queue_capacity=2)])
    with pytest.raises(PipelineError, match="would wait forever"):
        await pipeline.feed(["a", "b", "c"])
    assert pipeline.get_stats().items_fed == 0
    await pipeline.feed(["a", "b"])
    await pipeline.start()
    await pipeline.join()
    assert [r.value for r in pipeline.results] == ["a", "b"]


# Issue 18.15: an error out of the stream's feeding left the pipeline running for good.
async def test_an_error_out_of_stream_never_leaves_the_pipeline_running() -> None:
    gates = Gates()

    async def held(x: Any) -> Any:
        await gates.pass_through(x)
        return x

    pipeline = Pipeline([Stage("A", 1, [held], queue_capacity=1), Stage("B", 2, [held])])
    # "x" comes in the stream's second chunk, after someone else has fed it (into B,
    # where it stays held).
    items = [*range(70), {"id": "x", "value": "late"}]
    seen: list[Any] = []

    async def consume() -> None:
        # A loop, not extend(): the results seen before the error count.
        async for result in pipeline.stream(items):
            seen.append(result.value)  # noqa: PERF401

    consumer = asyncio.create_task(consume())
    await gates.entered(0)
    await pipeline.feed([{"id": "x", "value": "early"}], target_stage="B")
    for value in range(70):
        gates.open(value)
    with pytest.raises(PipelineError, match="item id 'x' is already in the pipeline"):
        await consumer
    assert not pipeline.is_running
    assert pipeline.get_worker_tasks() == {}
    assert "late" not in seen
    assert_accounted(pipeline)


async def test_an_explicit_id_equal_to_a_live_automatic_one_is_refused() -> None:
    gate = asyncio.Event()

    async def wait(x: Any) -> Any:
        await gate.wait()
        return x

    pipeline = Pipeline([Stage("A", 1, [wait])])
    await pipeline.start()
    await pipeline.feed(["first"])
    with pytest.raises(PipelineError, match="0"):
        await pipeline.feed([{"id": 0, "value": "second"}])
    gate.set()
    await pipeline.join()
    assert [r.value for r in pipeline.results] == ["first"]


async def test_feeding_an_unfinished_id_again_resumes_it() -> None:
    gate = asyncio.Event()

    async def wait(x: Any) -> Any:
        await gate.wait()
        return x

    tracker = StatusTracker()
    pipeline = Pipeline([Stage("A", 1, [wait])], status_tracker=tracker)
    await pipeline.start()
    await pipeline.feed([{"id": "a", "value": 1}, {"id": "b", "value": 2}])
    await pipeline.shutdown(graceful=False)
    assert pipeline.get_unfinished_items() == ["a", "b"]
    assert tracker.get_stats()["unfinished"] == 2
    gate.set()
    await pipeline.run([{"id": "a", "value": 1}])
    assert pipeline.get_unfinished_items() == ["b"]
    assert_accounted(pipeline, tracker)


# ---------------------------------------------------------------- 3. feed after shutdown


async def test_feed_after_shutdown_raises_and_counts_nothing() -> None:
    pipeline = Pipeline([Stage("A", 1, [echo])])
    await pipeline.start()
    await pipeline.shutdown()
    for feed in (pipeline.feed([1, 2]), pipeline.feed_async(_aiter([1]))):
        with pytest.raises(PipelineError, match="shut down"):
            await feed
    stats = pipeline.get_stats()
    assert (stats.items_fed, stats.items_in_flight) == (0, 0)
    # A new start() makes it usable again.
    assert [r.value for r in await pipeline.run([5])] == [5]


async def _aiter(items: list[Any]) -> Any:
    for item in items:
        yield item


# ---------------------------------------------------------------- 4. unhashable ids


@pytest.mark.parametrize("with_tracker", [False, True])
async def test_an_unhashable_id_is_refused_at_feed_with_nothing_counted(
    with_tracker: bool,
) -> None:
    tracker = StatusTracker() if with_tracker else None
    pipeline = Pipeline([Stage("A", 1, [bad], task_attempts=1)], status_tracker=tracker)
    with pytest.raises(PipelineError, match=r"\['a'\].*hashable"):
        await pipeline.run([{"id": ["a"], "value": 1}])
    await pipeline.start()
    with pytest.raises(PipelineError, match="hashable"):
        await pipeline.feed(iter([{"id": {"k": 1}, "value": 1}]))
    await pipeline.join()
    assert pipeline.get_stats().items_fed == 0
    assert_accounted(pipeline, tracker)


# ---------------------------------------------------------------- 5. shutdown from inside


@pytest.mark.parametrize("graceful", [True, False])
async def test_shutdown_from_an_on_failure_hook_stops_the_run(graceful: bool) -> None:
    pipeline: Pipeline

    async def stop_on_first_error(item_id: Any, error: BaseException, meta: Any) -> None:
        await pipeline.shutdown(graceful=graceful)

    tracker = StatusTracker()
    pipeline = Pipeline(
        [Stage("A", 1, [bad], task_attempts=1, on_failure=stop_on_first_error)],
        status_tracker=tracker,
    )
    assert await pipeline.run(range(10)) == []
    assert pipeline.failed_item_ids() == [0]
    assert len(pipeline.get_unfinished_items()) == 9
    assert_accounted(pipeline, tracker)


@pytest.mark.parametrize("graceful", [True, False])
async def test_shutdown_from_a_task_stops_the_run(graceful: bool) -> None:
    pipeline: Pipeline

    async def task(x: int) -> int:
        if x == 3:
            await pipeline.shutdown(graceful=graceful)
        return x

    pipeline = Pipeline([Stage("A", 1, [task]), Stage("B", 1, [echo])])
    await pipeline.run(range(10))
    assert pipeline.get_stats().items_processed < 10
    assert_accounted(pipeline)


@pytest.mark.parametrize("graceful", [True, False])
async def test_shutdown_from_a_tracker_callback_stops_the_run(graceful: bool) -> None:
    pipeline: Pipeline

    async def on_fail(event: Any) -> None:
        await pipeline.shutdown(graceful=graceful)

    tracker = StatusTracker(on_task_fail=on_fail)
    pipeline = Pipeline([Stage("A", 2, [bad], task_attempts=1)], status_tracker=tracker)
    await pipeline.run(range(50))
    assert pipeline.get_stats().items_failed >= 1
    assert_accounted(pipeline, tracker)


async def test_shutdown_from_a_dashboard_stops_the_run() -> None:
    pipeline: Pipeline
    gate = asyncio.Event()

    async def wait(x: int) -> int:
        await gate.wait()
        return x

    class Stopper:
        def on_start(self, pipeline: Pipeline, total: int) -> None:
            pass

        async def on_update(self, snapshot: DashboardSnapshot) -> None:
            if snapshot.pipeline_stats.stage_stats["A"].busy_workers:
                await pipeline.shutdown(graceful=False)

        async def on_finish(self, results: Any, summary: Any) -> None:
            await pipeline.shutdown()

    pipeline = Pipeline([Stage("A", 1, [wait])])
    await pipeline.run(range(3), custom_dashboard=Stopper(), dashboard_update_interval=0.001)
    assert pipeline.get_unfinished_items() == [0, 1, 2]
    assert_accounted(pipeline)


async def test_join_from_inside_is_refused_instead_of_waiting_for_itself() -> None:
    pipeline: Pipeline
    errors: list[BaseException] = []

    async def task(x: int) -> int:
        try:
            await pipeline.join()
        except PipelineError as error:
            errors.append(error)
        return x

    pipeline = Pipeline([Stage("A", 1, [task])])
    assert [r.value for r in await pipeline.run([1])] == [1]
    assert "inside the pipeline" in str(errors[0])


# ---------------------------------------------------------------- 6. tasks ignoring cancel


async def test_a_forced_shutdown_gives_up_on_a_task_that_swallows_cancellation(
    caplog: pytest.LogCaptureFixture,
) -> None:
    entered = asyncio.Event()
    let_go = asyncio.Event()
    returned = asyncio.Event()

    async def stubborn(x: int) -> int:
        entered.set()
        while not let_go.is_set():
            try:
                await let_go.wait()
            except asyncio.CancelledError:
                continue
        returned.set()
        return x

    tracker = StatusTracker()
    pipeline = Pipeline(
        [Stage("A", 1, [stubborn]), Stage("B", 1, [echo])],
        status_tracker=tracker,
        cancel_grace=0.05,
    )
    await pipeline.start()
    await pipeline.feed([7, 8])
    await entered.wait()
    try:
        await _stop_and_check(pipeline, tracker, caplog, let_go, returned)
    finally:
        let_go.set()  # never leave a task the test loop could not close


async def _stop_and_check(
    pipeline: Pipeline,
    tracker: StatusTracker,
    caplog: pytest.LogCaptureFixture,
    let_go: asyncio.Event,
    returned: asyncio.Event,
) -> None:
    with caplog.at_level(logging.WARNING, logger="antflow.pipeline"):
        await pipeline.shutdown(graceful=False)
    assert "stubborn" in caplog.text
    assert "A-W0" in caplog.text
    assert pipeline.get_unfinished_items() == [0, 1]
    assert_accounted(pipeline, tracker)

    # When the stubborn task finally returns, nothing it does is counted.
    let_go.set()
    await returned.wait()
    await settle()
    assert pipeline.results == []
    assert pipeline.get_unfinished_items() == [0, 1]
    assert_accounted(pipeline, tracker)
    # And the pipeline runs again, with fresh workers.
    assert [r.value for r in await pipeline.run([1])] == [1]


# ---------------------------------------------------------------- 7. observer code raising


@pytest.mark.parametrize("error", [asyncio.CancelledError, GeneratorExit])
@pytest.mark.parametrize("hook", ["on_success", "on_failure"])
async def test_a_hook_raising_a_base_exception_never_kills_its_worker(
    error: type[BaseException], hook: str
) -> None:
    async def raising_hook(item_id: Any, value: Any, meta: Any) -> None:
        raise error()

    task = echo if hook == "on_success" else bad
    stage = Stage("A", 1, [task], task_attempts=1, **{hook: raising_hook})
    pipeline = Pipeline([stage, Stage("B", 1, [echo])])
    results = await pipeline.run(range(4))
    if hook == "on_success":
        assert [r.id for r in results] == [0, 1, 2, 3]
    else:
        assert pipeline.failed_item_ids() == [0, 1, 2, 3]
    assert_accounted(pipeline)


@pytest.mark.parametrize("method", ["on_start", "on_update", "on_finish"])
async def test_a_dashboard_raising_cancelled_error_never_stops_the_run(method: str) -> None:
    class Hostile:
        def on_start(self, pipeline: Pipeline, total: int) -> None:
            if method == "on_start":
                raise asyncio.CancelledError

        def on_update(self, snapshot: DashboardSnapshot) -> None:
            if method == "on_update":
                raise asyncio.CancelledError

        def on_finish(self, results: list[PipelineResult], summary: ErrorSummary) -> None:
            if method == "on_finish":
                raise GeneratorExit

    pipeline = Pipeline([Stage("A", 2, [echo])])
    results = await pipeline.run(range(5), custom_dashboard=Hostile())
    assert [r.id for r in results] == [0, 1, 2, 3, 4]
    assert_accounted(pipeline)


async def test_a_tracker_callback_raising_cancelled_error_keeps_delivering() -> None:
    seen: list[Any] = []

    async def callback(event: Any) -> None:
        seen.append(event.item_id)
        if event.item_id == 0:
            raise asyncio.CancelledError

    tracker = StatusTracker(on_task_complete=callback)
    pipeline = Pipeline([Stage("A", 1, [echo])], status_tracker=tracker)
    await pipeline.run(range(3))
    assert seen == [0, 1, 2]


async def test_a_listener_raising_generator_exit_is_detached_not_fatal() -> None:
    tracker = StatusTracker()

    def listener(event: Any) -> None:
        raise GeneratorExit

    tracker.add_listener(listener)
    pipeline = Pipeline([Stage("A", 1, [echo])], status_tracker=tracker)
    assert len(await pipeline.run(range(3))) == 3


async def test_start_never_leaks_workers_when_a_dashboard_is_really_cancelled() -> None:
    started = asyncio.Event()

    class SlowStart:
        async def on_start(self, pipeline: Pipeline, total: int) -> None:
            started.set()
            await asyncio.Event().wait()

        def on_update(self, snapshot: DashboardSnapshot) -> None:
            pass

        def on_finish(self, results: Any, summary: Any) -> None:
            pass

    pipeline = Pipeline([Stage("A", 2, [echo])])
    run = asyncio.create_task(pipeline.run(range(3), custom_dashboard=SlowStart()))
    await started.wait()
    run.cancel()
    with pytest.raises(asyncio.CancelledError):
        await run
    assert not pipeline.is_running
    assert pipeline.get_worker_tasks() == {}


# ---------------------------------------------------------------- 8. no spurious cancel


async def test_a_graceful_shutdown_with_grace_during_join_does_not_cancel_run() -> None:
    hook_entered = asyncio.Event()

    async def hook(item_id: Any, error: BaseException, meta: Any) -> None:
        hook_entered.set()
        await asyncio.Event().wait()

    pipeline = Pipeline([Stage("A", 1, [bad], task_attempts=1, on_failure=hook)])
    run = asyncio.create_task(pipeline.run([0]))
    await hook_entered.wait()
    # run() is now in join(), waiting for the worker held by the hook.
    await pipeline.shutdown(grace=0.05)
    assert await run == []
    assert pipeline.failed_item_ids() == [0]
    assert_accounted(pipeline)


# ---------------------------------------------------------------- 9. unfinished status


async def test_unfinished_items_have_a_terminal_status_in_the_tracker() -> None:
    gate = asyncio.Event()
    entered = asyncio.Event()

    async def wait(x: int) -> int:
        entered.set()
        await gate.wait()
        return x

    tracker = StatusTracker()
    pipeline = Pipeline(
        [Stage("A", 2, [echo]), Stage("B", 1, [wait], queue_capacity=10)],
        status_tracker=tracker,
    )
    await pipeline.start()
    await pipeline.feed(range(4))
    await entered.wait()
    await settle()
    await pipeline.shutdown(graceful=False)
    # Items that completed stage A and waited in B's queue are not "completed".
    assert tracker.get_stats()["completed"] == pipeline.get_stats().items_processed == 0
    assert tracker.get_stats()["unfinished"] == 4
    assert {e.item_id for e in tracker.get_by_status("unfinished")} == {0, 1, 2, 3}
    assert tracker.get_status(0).status == "unfinished"
    assert_accounted(pipeline, tracker)


# ---------------------------------------------------------------- 10. run() per run


async def test_a_second_run_returns_only_its_own_results() -> None:
    pipeline = Pipeline([Stage("A", 1, [echo])])
    assert [r.value for r in await pipeline.run(["a", "b"])] == ["a", "b"]
    assert [r.value for r in await pipeline.run(["c"])] == ["c"]
    assert [r.value for r in pipeline.results] == ["a", "b", "c"]


# ---------------------------------------------------------------- 11. a new event loop


def test_a_pipeline_with_concurrency_limits_runs_on_a_second_event_loop() -> None:
    async def limited(x: int) -> int:
        await asyncio.sleep(0)
        return x

    pipeline = Pipeline([Stage("A", 3, [limited], task_concurrency_limits={"limited": 1})])
    for _ in range(2):
        results = asyncio.run(pipeline.run(range(6)))
        assert [r.value for r in results] == list(range(6))
        assert pipeline.failed_item_ids() == []


def test_a_tracker_with_callbacks_delivers_on_a_second_event_loop() -> None:
    seen: list[Any] = []

    async def callback(event: Any) -> None:
        seen.append(event.item_id)

    tracker = StatusTracker(on_task_complete=callback)
    pipeline = Pipeline([Stage("A", 1, [echo])], status_tracker=tracker)
    asyncio.run(pipeline.run([1]))
    asyncio.run(pipeline.run([2]))
    assert seen == [0, 1]


# ---------------------------------------------------------------- 12. interrupts propagate


@pytest.mark.parametrize("error", [KeyboardInterrupt, SystemExit])
def test_keyboard_interrupt_or_system_exit_in_a_task_stops_the_run(
    error: type[BaseException],
) -> None:
    calls: list[int] = []
    pipeline = Pipeline([Stage("A", 1, [echo]), Stage("B", 1, [echo])])

    async def task(x: int) -> int:
        calls.append(x)
        if x == 2:
            raise error
        return x

    pipeline = Pipeline([Stage("A", 1, [task], task_attempts=3), Stage("B", 1, [echo])])
    with pytest.raises(error):
        asyncio.run(pipeline.run(range(6)))
    assert calls.count(2) == 1  # not retried
    assert pipeline.failed_item_ids() == []
    assert 2 in pipeline.get_unfinished_items()
    assert_accounted(pipeline)


INTERRUPTED_SCRIPT = """\
import asyncio, sys
from antflow import Pipeline, Stage, StatusTracker

async def task(x):
    await asyncio.sleep(0)
    if x == 3:
        raise KeyboardInterrupt
    return x

async def main(how):
    stages = [Stage("A", 2, [task]), Stage("B", 2, [task])]
    pipeline = Pipeline(stages, status_tracker=StatusTracker())
    if how == "run":
        await pipeline.run(range(10))
    elif how == "stream":
        async for _ in pipeline.stream(range(10)):
            pass
    elif how == "join":
        await pipeline.start()
        await pipeline.feed(range(10))
        await pipeline.join()
    else:
        async with pipeline:
            await pipeline.start()
            await pipeline.feed(range(10))
            await pipeline.join()

asyncio.run(main(sys.argv[1]))
"""


# Issue 18.16: a KeyboardInterrupt raised in a task left asyncio's complaints on stderr at
# exit ("coroutine 'Pipeline._stop' was never awaited", "Task exception was never
# retrieved"): only the interrupt's own traceback may be there.
@pytest.mark.parametrize("how", ["run", "stream", "join", "async with"])
def test_a_keyboard_interrupt_in_a_task_leaves_no_asyncio_complaint_at_exit(
    tmp_path: Path, how: str
) -> None:
    script = tmp_path / "interrupted.py"
    script.write_text(INTERRUPTED_SCRIPT, encoding="utf-8")
    done = subprocess.run(
        [sys.executable, "-X", "dev", str(script), how],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode != 0
    assert done.stderr.rstrip().endswith("KeyboardInterrupt"), done.stderr
    for complaint in ("never awaited", "never retrieved", "was destroyed", "Warning"):
        assert complaint not in done.stderr, done.stderr


# ---------------------------------------------------------------- AntFlow compatibility


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: Pipeline([]), "Pipeline must have at least one stage"),
        (lambda: Pipeline([Stage("A", 1, [echo], retry="x")]), "Invalid retry policy"),
        (lambda: Pipeline([Stage("A", 0, [echo])]), "must have at least 1 worker"),
        (lambda: Pipeline([Stage("A", 1, [])]), "must have at least one task"),
    ],
)
def test_validation_messages_match_antflow(make: Callable[[], Any], message: str) -> None:
    with pytest.raises((PipelineError, StageValidationError), match=message):
        make()


async def test_progress_and_dashboard_together_say_cannot_use_both() -> None:
    with pytest.raises(ValueError, match="Cannot use both"):
        await Pipeline([Stage("A", 1, [echo])]).run([1], progress=True, dashboard="compact")


async def test_an_unknown_target_stage_is_not_found_and_the_stages_are_listed() -> None:
    pipeline = Pipeline([Stage("Fetch", 1, [echo]), Stage("Save", 1, [echo])])
    with pytest.raises(ValueError, match=r"'Parse' not found.*'Fetch', 'Save'"):
        await pipeline.feed([1], target_stage="Parse")


def test_progress_display_has_antflow_attributes() -> None:
    display = ProgressDisplay(total=100)
    assert display.total == 100
    assert display.width == 30
    assert display.start_time is None


@pytest.mark.parametrize("cls", [CompactDashboard, DetailedDashboard, FullDashboard])
def test_rich_dashboards_accept_refresh_rate_and_expose_total(cls: Any) -> None:
    assert cls().refresh_rate == 4.0
    dashboard = cls(refresh_rate=10.0)
    assert dashboard.refresh_rate == 10.0
    assert dashboard.total == 0


def test_error_summary_says_how_many_failed_items() -> None:
    summary = ErrorSummary(3, {"ValueError": 3}, {"A": 3})
    assert "3 failed items" in str(summary)


async def test_items_fed_before_start_are_tracked() -> None:
    # Found while reviewing: with a tracker, feed() before start() raised AttributeError
    # from the engine (the stages were bound to the tracker only at start).
    tracker = StatusTracker()
    pipeline = Pipeline([Stage("A", 1, [echo], queue_capacity=5)], status_tracker=tracker)
    await pipeline.feed([1, 2])
    assert tracker.get_stats()["queued"] == 2
    await pipeline.start()
    await pipeline.join()
    assert [r.value for r in pipeline.results] == [1, 2]
    assert_accounted(pipeline, tracker)


# ---------------------------------------------------------------- found in review


async def test_items_fed_before_an_observer_gives_the_tracker_at_start_are_tracked() -> None:
    tracker = StatusTracker()
    pipeline = Pipeline([Stage("A", 1, [echo], queue_capacity=5)])
    await pipeline.feed([1, 2])

    def give_tracker(started: Pipeline) -> None:
        started.status_tracker = tracker

    from antflow import observe

    with observe(give_tracker):
        await pipeline.start()
    await pipeline.join()
    assert [r.value for r in pipeline.results] == [1, 2]
    assert_accounted(pipeline, tracker)


async def test_a_refused_second_run_or_stream_leaves_the_first_alone() -> None:
    gate = asyncio.Event()

    async def wait(x: int) -> int:
        await gate.wait()
        return x

    pipeline = Pipeline([Stage("A", 2, [wait])])
    first = asyncio.create_task(pipeline.run(range(20)))
    await wait_until(lambda: pipeline.is_running)
    with pytest.raises(PipelineError, match="already running"):
        await pipeline.run([99])
    with pytest.raises(PipelineError, match="already running"):
        async for _ in pipeline.stream([99]):
            pass
    gate.set()
    assert len(await first) == 20
    assert_accounted(pipeline)


async def test_a_worker_given_up_during_a_retry_wait_runs_no_more_attempts() -> None:
    calls: list[int] = []
    wait_started = asyncio.Event()
    let_go = asyncio.Event()

    async def stubborn(x: int) -> int:
        calls.append(x)
        with contextlib.suppress(asyncio.CancelledError):  # swallowed
            await asyncio.Event().wait()
        raise ValueError("then fails")

    async def slow_sleep(seconds: float) -> None:
        wait_started.set()
        await let_go.wait()

    pipeline = Pipeline(
        [Stage("A", 1, [stubborn], task_attempts=3)], sleep=slow_sleep, cancel_grace=0.01
    )
    await pipeline.start()
    await pipeline.feed([7])
    await wait_until(lambda: calls == [7])
    stop = asyncio.create_task(pipeline.shutdown(graceful=False))
    await wait_started.wait()
    await stop
    let_go.set()
    await settle(50)
    assert calls == [7]
    assert pipeline.get_unfinished_items() == [0]
    assert_accounted(pipeline)


async def test_shutdown_awaited_from_a_task_a_worker_started_does_not_deadlock() -> None:
    pipeline: Pipeline

    async def task(x: int) -> int:
        if x == 2:
            await asyncio.gather(pipeline.shutdown())
        return x

    pipeline = Pipeline([Stage("A", 1, [task])])
    await asyncio.wait_for(pipeline.run(range(6)), 10)
    assert_accounted(pipeline)


async def test_the_first_explicit_batch_is_checked_whole_against_live_numbers() -> None:
    gate = asyncio.Event()

    async def wait(x: Any) -> Any:
        await gate.wait()
        return x

    pipeline = Pipeline([Stage("A", 1, [wait])])
    await pipeline.start()
    await pipeline.feed(["plain"])
    with pytest.raises(PipelineError, match="0"):
        await pipeline.feed([{"id": "new", "value": 1}, {"id": 0, "value": 2}])
    assert pipeline.get_stats().items_fed == 1
    gate.set()
    await pipeline.join()


async def test_shutdown_from_a_dashboards_on_start_lets_run_return() -> None:
    pipeline: Pipeline

    class Stopper:
        async def on_start(self, started: Pipeline, total: int) -> None:
            await pipeline.shutdown()

        def on_update(self, snapshot: Any) -> None:
            pass

        def on_finish(self, results: Any, summary: Any) -> None:
            pass

    pipeline = Pipeline([Stage("A", 1, [echo])])
    assert await pipeline.run(range(3), custom_dashboard=Stopper()) == []
    assert pipeline.get_stats().items_fed == 0
    assert_accounted(pipeline)
