"""Retries (per task and per stage), odd task failures, cancellation, and FailedItem."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

import pytest

from antflow import (
    FailedItem,
    Pipeline,
    Stage,
    StageValidationError,
    StatusEvent,
    StatusTracker,
    TaskEvent,
)
from antflow.testing import FakeClock

if TYPE_CHECKING:
    from collections.abc import Callable


class FakeSleep:
    """Records the waits the pipeline asks for and advances the clock instead of sleeping."""

    def __init__(self, clock: FakeClock | None = None) -> None:
        self.clock = clock
        self.waits: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)
        if self.clock is not None:
            self.clock.advance(seconds)


class Recorder:
    """A StatusTracker whose callbacks record every event, in delivery order."""

    def __init__(self) -> None:
        self.status: list[StatusEvent] = []
        self.tasks: list[TaskEvent] = []
        self.tracker = StatusTracker(
            on_status_change=self.status.append,
            on_task_start=self.tasks.append,
            on_task_complete=self.tasks.append,
            on_task_retry=self.tasks.append,
            on_task_fail=self.tasks.append,
        )

    def task_story(self, item_id: Any) -> list[tuple[str, str, int]]:
        return [(e.task_name, e.event_type, e.attempt) for e in self.tasks if e.item_id == item_id]

    def statuses(self, item_id: Any) -> list[str]:
        return [e.status for e in self.status if e.item_id == item_id]


async def settle(n: int = 30) -> None:
    """Let tasks that are already ready run; never waits for time to pass."""
    for _ in range(n):
        await asyncio.sleep(0)


async def until(
    condition: Callable[[], bool], limit: int = 500, explain: Callable[[], str] | None = None
) -> None:
    """Yield to ready tasks until `condition` holds (failing after `limit` yields)."""
    for _ in range(limit):
        if condition():
            return
        await asyncio.sleep(0)
    raise AssertionError(explain() if explain else "condition never became true")


class FetchError(Exception):
    """A domain error, to check that errors keep their own class."""


# ---------------------------------------------------------------------- per-task retry


async def test_per_task_retry_events_and_waits_until_the_last_attempt_fails() -> None:
    clock = FakeClock(1000.0)
    sleep = FakeSleep(clock)
    recorder = Recorder()
    calls = 0

    async def flaky(x: int) -> int:
        nonlocal calls
        calls += 1
        clock.advance(1.5)
        raise FetchError(f"boom {calls}")

    stage = Stage("Fetch", 1, [flaky], task_attempts=3, task_wait_seconds=0.25)
    pipeline = Pipeline([stage], status_tracker=recorder.tracker, clock=clock, sleep=sleep)
    assert await pipeline.run([7]) == []

    assert calls == 3
    assert sleep.waits == [0.25, 0.25]
    assert recorder.task_story(0) == [
        ("flaky", "start", 1),
        ("flaky", "retry", 1),
        ("flaky", "start", 2),
        ("flaky", "retry", 2),
        ("flaky", "start", 3),
        ("flaky", "fail", 3),
    ]
    events = recorder.tasks
    assert [e.duration for e in events if e.event_type == "start"] == [None, None, None]
    assert [e.duration for e in events if e.event_type != "start"] == [1.5, 1.5, 1.5]
    errors = [e.error for e in events if e.event_type != "start"]
    assert all(isinstance(e, FetchError) for e in errors)
    assert [str(e) for e in errors] == ["boom 1", "boom 2", "boom 3"]
    assert all(e.error is None for e in events if e.event_type == "start")
    # The next attempt starts once the wait (on the injected clock) is over.
    assert events[2].timestamp == events[1].timestamp + 0.25
    assert {(e.stage, e.worker) for e in events} == {("Fetch", "Fetch-W0")}
    assert recorder.statuses(0) == ["queued", "in_progress", "failed"]
    failed = recorder.status[-1]
    assert failed.metadata["error"] == "boom 3"
    assert failed.metadata["error_type"] == "FetchError"


async def test_per_task_retry_events_from_the_tracker_history_match() -> None:
    clock = FakeClock(1000.0)
    recorder = Recorder()
    calls = 0

    async def flaky(x: int) -> int:
        nonlocal calls
        calls += 1
        clock.advance(2.0)
        if calls < 3:
            raise FetchError("try again")
        return x

    pipeline = Pipeline(
        [Stage("Fetch", 1, [flaky], task_attempts=4, task_wait_seconds=0.5)],
        status_tracker=recorder.tracker,
        clock=clock,
        sleep=FakeSleep(clock),
    )
    await pipeline.run([1])
    stored = [(e.event_type, e.attempt, e.duration) for e in recorder.tracker.get_task_events(0)]
    assert stored == [
        ("start", 1, None),
        ("retry", 1, 2.0),
        ("start", 2, None),
        ("retry", 2, 2.0),
        ("start", 3, None),
        ("complete", 3, 2.0),
    ]


async def test_per_task_success_on_a_later_attempt_completes_the_item() -> None:
    sleep = FakeSleep()
    recorder = Recorder()
    attempts: dict[int, int] = {}

    async def flaky(x: int) -> int:
        attempts[x] = attempts.get(x, 0) + 1
        if x == 1 and attempts[x] < 3:
            raise FetchError("not yet")
        return x * 10

    stage = Stage("Fetch", 2, [flaky], task_attempts=3, task_wait_seconds=2.0)
    pipeline = Pipeline([stage], status_tracker=recorder.tracker, sleep=sleep)
    results = await pipeline.run([0, 1, 2])

    assert [(r.id, r.value) for r in results] == [(0, 0), (1, 10), (2, 20)]
    assert sleep.waits == [2.0, 2.0]
    assert recorder.task_story(1) == [
        ("flaky", "start", 1),
        ("flaky", "retry", 1),
        ("flaky", "start", 2),
        ("flaky", "retry", 2),
        ("flaky", "start", 3),
        ("flaky", "complete", 3),
    ]
    assert recorder.statuses(1) == ["queued", "in_progress", "completed"]
    stats = pipeline.get_stats()
    assert stats.items_failed == 0
    assert stats.stage_stats["Fetch"].task_retries == 2


async def test_per_task_retry_retries_only_the_failing_task() -> None:
    sleep = FakeSleep()
    recorder = Recorder()
    first_inputs: list[int] = []
    second_inputs: list[int] = []

    async def first(x: int) -> int:
        first_inputs.append(x)
        return x + 1

    async def second(x: int) -> int:
        second_inputs.append(x)
        if len(second_inputs) == 1:
            raise FetchError("once")
        return x * 2

    stage = Stage("S", 1, [first, second], task_attempts=2, task_wait_seconds=0.1)
    pipeline = Pipeline([stage], status_tracker=recorder.tracker, sleep=sleep)
    results = await pipeline.run([5])

    assert [r.value for r in results] == [12]
    assert first_inputs == [5]
    assert second_inputs == [6, 6]
    assert sleep.waits == [0.1]
    assert recorder.task_story(0) == [
        ("first", "start", 1),
        ("first", "complete", 1),
        ("second", "start", 1),
        ("second", "retry", 1),
        ("second", "start", 2),
        ("second", "complete", 2),
    ]


async def test_single_attempt_failure_emits_fail_without_waiting() -> None:
    sleep = FakeSleep()
    recorder = Recorder()

    async def broken(x: int) -> int:
        raise FetchError("no")

    pipeline = Pipeline(
        [Stage("S", 1, [broken], task_attempts=1)], status_tracker=recorder.tracker, sleep=sleep
    )
    await pipeline.run([1])
    assert recorder.task_story(0) == [("broken", "start", 1), ("broken", "fail", 1)]
    assert sleep.waits == []


# ---------------------------------------------------------------------- per-stage retry


async def test_per_stage_retry_goes_retrying_then_back_to_in_progress() -> None:
    sleep = FakeSleep()
    recorder = Recorder()
    first_inputs: list[int] = []
    second_inputs: list[int] = []

    async def first(x: int) -> int:
        first_inputs.append(x)
        return x + 1

    async def second(x: int) -> int:
        second_inputs.append(x)
        if len(second_inputs) == 1:
            raise FetchError("stage hiccup")
        return x * 2

    stage = Stage("S", 1, [first, second], retry="per_stage", stage_attempts=3)
    pipeline = Pipeline([stage], status_tracker=recorder.tracker, sleep=sleep)
    results = await pipeline.run([10])

    assert [r.value for r in results] == [22]
    # Every task of the stage reruns from the stage's input.
    assert first_inputs == [10, 10]
    assert second_inputs == [11, 11]
    assert recorder.statuses(0) == ["queued", "in_progress", "retrying", "in_progress", "completed"]
    retrying = next(e for e in recorder.status if e.status == "retrying")
    assert retrying.stage == "S"
    assert retrying.metadata["retry"] is True
    assert retrying.metadata["attempt"] == 2
    assert "stage hiccup" in retrying.metadata["error"]
    in_progress = [e for e in recorder.status if e.status == "in_progress"]
    assert [e.metadata.get("attempt") for e in in_progress] == [1, 2]
    assert recorder.task_story(0) == [
        ("first", "start", 1),
        ("first", "complete", 1),
        ("second", "start", 1),
        ("second", "retry", 1),
        ("first", "start", 2),
        ("first", "complete", 2),
        ("second", "start", 2),
        ("second", "complete", 2),
    ]
    assert isinstance(recorder.tasks[3].error, FetchError)
    assert pipeline.get_stats().items_failed == 0


async def test_per_stage_retry_fails_after_stage_attempts() -> None:
    recorder = Recorder()
    calls = 0

    async def always(x: int) -> int:
        nonlocal calls
        calls += 1
        raise FetchError(f"attempt {calls}")

    failures: list[tuple[Any, BaseException, dict[str, Any]]] = []
    stage = Stage(
        "S",
        1,
        [always],
        retry="per_stage",
        stage_attempts=3,
        task_attempts=5,
        on_failure=lambda i, e, m: failures.append((i, e, m)),
    )
    pipeline = Pipeline([stage], status_tracker=recorder.tracker, sleep=FakeSleep())
    assert await pipeline.run(["only"]) == []

    assert calls == 3
    assert recorder.statuses(0) == [
        "queued",
        "in_progress",
        "retrying",
        "in_progress",
        "retrying",
        "in_progress",
        "failed",
    ]
    retry_attempts = [e.metadata["attempt"] for e in recorder.status if e.status == "retrying"]
    assert retry_attempts == [2, 3]
    assert recorder.task_story(0) == [
        ("always", "start", 1),
        ("always", "retry", 1),
        ("always", "start", 2),
        ("always", "retry", 2),
        ("always", "start", 3),
        ("always", "fail", 3),
    ]
    (failed,) = recorder.tracker.get_failed_items()
    assert failed.attempts == 3
    assert failed.error == "attempt 3"
    assert failures[0][0] == 0
    assert str(failures[0][1]) == "attempt 3"
    assert pipeline.get_stats().stage_stats["S"].failed_items == 1


async def test_per_stage_retry_requeues_the_item_behind_waiting_items() -> None:
    recorder = Recorder()
    gate = asyncio.Event()
    seen: list[int] = []

    async def fail_zero_once(x: int) -> int:
        seen.append(x)
        if seen == [0]:
            raise FetchError("first")
        if x == 1:
            await gate.wait()
        return x

    stage = Stage("S", 1, [fail_zero_once], retry="per_stage", stage_attempts=2)
    pipeline = Pipeline([stage], status_tracker=recorder.tracker)
    await pipeline.start()
    await pipeline.feed([0, 1])
    await until(lambda: seen == [0, 1])
    stats = pipeline.get_stats().stage_stats["S"]
    assert stats.retrying_items == 1
    assert stats.pending_items == 1
    assert stats.in_progress_items == 1
    assert [e.item_id for e in recorder.tracker.get_by_status("retrying")] == [0]
    gate.set()
    await pipeline.join()
    assert seen == [0, 1, 0]
    assert [r.value for r in pipeline.results] == [0, 1]
    assert pipeline.get_stats().stage_stats["S"].retrying_items == 0


# ---------------------------------------------------------------------- odd failures


class Doubler:
    """A callable object that forgets to be async."""

    def __call__(self, x: int) -> int:
        return x * 2


@pytest.mark.parametrize("task", [Doubler(), len, str.upper], ids=["object", "builtin", "method"])
def test_sync_callables_are_refused_at_construction(task: Any) -> None:
    # issue 9 (13): they would fail every item after all its retries.
    with pytest.raises(StageValidationError, match="await"):
        Pipeline([Stage("S", 1, [task])])


class AsyncDoubler:
    async def __call__(self, x: int) -> int:
        return x * 2


async def test_a_callable_object_with_an_async_call_is_a_task() -> None:
    assert [r.value for r in await Pipeline([Stage("S", 1, [AsyncDoubler()])]).run([2])] == [4]


@pytest.mark.parametrize("policy", ["per_task", "per_stage"])
@pytest.mark.parametrize("prefix", [False, True])
async def test_a_lambda_returning_a_non_awaitable_fails_at_once_without_retries(
    policy: str, prefix: bool
) -> None:
    # issue 9 (13): no retries, no waits, and a message that says what to do.
    async def first(x: int) -> int:
        return x

    calls: list[int] = []

    def halve(x: int) -> float:
        calls.append(x)
        return x / 2

    sleep = FakeSleep()
    tasks: list[Any] = [lambda x: halve(x)]
    if prefix:
        tasks.insert(0, first)
    pipeline = Pipeline(
        [Stage("S", 1, tasks, retry=policy, task_attempts=3, stage_attempts=3)], sleep=sleep
    )
    assert await pipeline.run([1, 2]) == []
    assert calls == [1, 2]
    assert sleep.waits == []
    failed = pipeline.get_error_summary().failed_items
    assert [f.error_type for f in failed] == ["TaskNotAwaitableError"] * 2
    assert all("'<lambda>'" in f.error and "async def" in f.error for f in failed)
    assert all(isinstance(f.exception, TypeError) for f in failed)
    assert [f.attempts for f in failed] == [1, 1]


async def two_args(a: int, b: int) -> int:
    return a + b


async def settled_run(pipeline: Pipeline, items: list[Any]) -> None:
    """Run `items` but fail fast (instead of hanging) if an item is never settled."""
    await pipeline.start()
    try:
        await pipeline.feed(items)
        await until(
            lambda: pipeline.get_stats().items_in_flight == 0,
            explain=lambda: (
                f"items never settled: {pipeline.get_stats().items_in_flight} in flight, "
                f"live workers {sorted(pipeline.get_worker_tasks())} "
                f"of {pipeline.get_worker_names()}"
            ),
        )
        await pipeline.join()
    finally:
        if pipeline.is_running:
            await pipeline.shutdown(graceful=False)


@pytest.mark.parametrize(
    ("tasks", "error_type"),
    [
        pytest.param([lambda x: 1 / x], "ZeroDivisionError", id="lambda-raises-when-called"),
        pytest.param([two_args], "TypeError", id="wrong-arity-single-task"),
        pytest.param([two_args, two_args], "TypeError", id="wrong-arity-two-tasks"),
    ],
)
async def test_task_raising_when_called_fails_the_item_not_the_worker(
    tasks: list[Any], error_type: str
) -> None:
    pipeline = Pipeline([Stage("S", 1, tasks, task_attempts=1)])
    await settled_run(pipeline, [0, 0, 0])
    assert pipeline.failed_item_ids() == [0, 1, 2]
    errors = pipeline.get_error_summary().errors_by_type
    assert dict(errors) == {error_type: 3}


class Abort(BaseException):
    """A BaseException that is neither Exception nor cancellation."""


@pytest.mark.parametrize("error_class", [Abort, GeneratorExit])
async def test_base_exception_in_a_task_fails_the_item_not_the_worker(
    error_class: type[BaseException],
) -> None:
    async def explode_on_one(x: int) -> int:
        if x == 1:
            raise error_class("stop")
        return x

    stage = Stage("S", 1, [explode_on_one], task_attempts=1)
    pipeline = Pipeline([stage])
    results = await pipeline.run([0, 1, 2, 3])
    assert [r.id for r in results] == [0, 2, 3]
    (failed,) = pipeline.get_error_summary().failed_items
    assert failed.item_id == 1
    assert failed.error_type == error_class.__name__
    assert isinstance(failed.exception, error_class)
    assert pipeline.get_worker_metrics()["S-W0"].items_processed == 3


async def test_base_exception_in_a_multi_task_stage_with_tracker_fails_the_item() -> None:
    recorder = Recorder()

    async def ok(x: int) -> int:
        return x

    async def abort(x: int) -> int:
        if x == 0:
            raise Abort("abort")
        return x

    stage = Stage("S", 1, [ok, abort], task_attempts=2, task_wait_seconds=0)
    pipeline = Pipeline([stage], status_tracker=recorder.tracker)
    results = await pipeline.run([0, 1])
    assert [r.id for r in results] == [1]
    assert recorder.statuses(0)[-1] == "failed"
    assert [e.event_type for e in recorder.tasks if e.item_id == 0][-1] == "fail"


async def test_task_raising_cancelled_error_by_itself_fails_the_item() -> None:
    recorder = Recorder()

    async def gives_up(x: int) -> int:
        if x == 1:
            raise asyncio.CancelledError
        return x

    pipeline = Pipeline(
        [Stage("S", 1, [gives_up], task_attempts=2)],
        status_tracker=recorder.tracker,
        sleep=FakeSleep(),
    )
    results = await pipeline.run([0, 1, 2])
    assert [r.id for r in results] == [0, 2]
    (failed,) = pipeline.get_error_summary().failed_items
    assert failed.item_id == 1
    assert failed.error_type == "CancelledError"
    assert recorder.task_story(1) == [
        ("gives_up", "start", 1),
        ("gives_up", "retry", 1),
        ("gives_up", "start", 2),
        ("gives_up", "fail", 2),
    ]
    assert not pipeline.is_running


async def test_task_awaiting_a_cancelled_future_fails_the_item() -> None:
    async def waits_on_cancelled(x: int) -> int:
        future: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        future.cancel()
        return await future

    pipeline = Pipeline([Stage("S", 1, [waits_on_cancelled, waits_on_cancelled], task_attempts=1)])
    assert await pipeline.run([0]) == []
    assert pipeline.failed_item_ids() == [0]


# ---------------------------------------------------------------------- cancellation


async def test_shutdown_without_grace_cancels_every_worker_and_accounts_items() -> None:
    gate = asyncio.Event()
    entered: list[int] = []
    cancelled: list[int] = []

    async def gated(x: int) -> int:
        entered.append(x)
        try:
            await gate.wait()
        except asyncio.CancelledError:
            cancelled.append(x)
            raise
        return x

    pipeline = Pipeline([Stage("A", 2, [gated]), Stage("B", 2, [gated])])
    await pipeline.start()
    await pipeline.feed(range(6))
    await until(lambda: len(entered) == 2)
    worker_tasks = pipeline.get_worker_tasks()
    assert set(worker_tasks) == {"A-W0", "A-W1", "B-W0", "B-W1"}

    await pipeline.shutdown(graceful=False)

    assert all(task.done() for task in worker_tasks.values())
    assert pipeline.get_worker_tasks() == {}
    assert not pipeline.is_running
    assert sorted(cancelled) == [0, 1]
    stats = pipeline.get_stats()
    assert stats.items_in_flight == 0
    assert stats.items_processed == 0
    assert sorted(pipeline.get_unfinished_items()) == list(range(6))
    states = pipeline.get_worker_states()
    assert all(s.status == "idle" and s.current_item_id is None for s in states.values())


async def test_cancelling_run_cancels_the_workers_and_raises_cancelled_error() -> None:
    gate = asyncio.Event()
    entered: list[int] = []

    async def gated(x: int) -> int:
        entered.append(x)
        await gate.wait()
        return x

    pipeline = Pipeline([Stage("S", 2, [gated])])
    run = asyncio.create_task(pipeline.run(range(5)))
    await until(lambda: len(entered) == 2)
    worker_tasks = pipeline.get_worker_tasks()
    assert len(worker_tasks) == 2
    run.cancel()
    with pytest.raises(asyncio.CancelledError):
        await run
    assert all(task.done() for task in worker_tasks.values())
    assert not pipeline.is_running
    assert sorted(pipeline.get_unfinished_items()) == [0, 1, 2, 3, 4]


async def test_shutdown_during_a_per_task_retry_wait_leaves_nothing_running() -> None:
    waiting = asyncio.Event()
    never = asyncio.Event()

    async def slow_sleep(seconds: float) -> None:
        waiting.set()
        await never.wait()

    async def broken(x: int) -> int:
        raise FetchError("retry me")

    pipeline = Pipeline([Stage("S", 1, [broken], task_attempts=3)], sleep=slow_sleep)
    await pipeline.start()
    await pipeline.feed([0])
    await waiting.wait()
    worker_tasks = list(pipeline.get_worker_tasks().values())
    await pipeline.shutdown(graceful=False)
    assert all(task.done() for task in worker_tasks)
    assert pipeline.get_unfinished_items() == [0]
    assert pipeline.failed_item_ids() == []


# ---------------------------------------------------------------------- FailedItem


@pytest.mark.parametrize("with_tracker", [False, True])
async def test_failed_item_keeps_the_class_name_and_the_exception_object(
    with_tracker: bool,
) -> None:
    clock = FakeClock(500.0)
    raised: list[BaseException] = []

    async def fetch(x: int) -> int:
        clock.advance(1.0)
        error = FetchError(f"cannot fetch {x}")
        raised.append(error)
        raise error

    tracker = StatusTracker() if with_tracker else None
    stage = Stage("Fetch", 1, [fetch], task_attempts=2)
    pipeline = Pipeline([stage], status_tracker=tracker, clock=clock, sleep=FakeSleep(clock))
    await pipeline.run([{"id": "page", "value": 3}])

    summary = pipeline.get_error_summary()
    assert summary.total_failed == 1
    assert dict(summary.errors_by_type) == {"FetchError": 1}
    assert dict(summary.errors_by_stage) == {"Fetch": 1}
    (failed,) = summary.failed_items
    assert isinstance(failed, FailedItem)
    assert failed.item_id == "page"
    assert failed.stage == "Fetch"
    assert failed.error == "cannot fetch 3"
    assert failed.error_type == "FetchError"
    assert failed.exception is raised[-1]
    assert failed.attempts == 2
    assert failed.timestamp == clock.now
    assert "FetchError" in str(summary)
    assert "Fetch: 1" in str(summary)


class ContextLengthError(Exception):
    """An error no retry can heal."""


@pytest.mark.parametrize("policy", ["per_task", "per_stage"])
async def test_no_retry_on_fails_those_errors_at_once(policy: str) -> None:
    # issue 14: a context-length error was retried four times in llm_batch.
    calls: list[int] = []

    async def ask(x: int) -> int:
        calls.append(x)
        if x == 1:
            raise ContextLengthError("prompt too long")
        if x == 2 and calls.count(2) == 1:
            raise ValueError("flaky")
        return x

    sleep = FakeSleep()
    stage = Stage(
        "Ask",
        1,
        [ask],
        retry=policy,
        task_attempts=3,
        stage_attempts=3,
        no_retry_on=[ContextLengthError],
    )
    pipeline = Pipeline([stage], sleep=sleep)
    assert [r.value for r in await pipeline.run([1, 2])] == [2]
    assert calls.count(1) == 1
    assert calls.count(2) == 2  # other errors are still retried
    (failed,) = pipeline.get_error_summary().failed_items
    assert (failed.error_type, failed.attempts) == ("ContextLengthError", 1)
    assert pipeline.get_dashboard_snapshot().stages[0].no_retry_on == ("ContextLengthError",)


@pytest.mark.parametrize("value", [ValueError, [ValueError, "x"], ["KeyError"]])
def test_no_retry_on_takes_exception_classes_only(value: Any) -> None:
    with pytest.raises(StageValidationError, match="no_retry_on"):
        Pipeline([Stage("S", 1, [echo_task], no_retry_on=value)])


async def echo_task(x: Any) -> Any:
    return x


def test_no_retry_on_given_a_name_says_to_give_the_class() -> None:
    with pytest.raises(StageValidationError, match=r"a class, not its name.*\[ValueError\]"):
        Pipeline([Stage("A", 1, [echo_task], no_retry_on="ValueError")])  # type: ignore[arg-type]
