"""RunStream: live pipelines as plain records, and commands carried out on them."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import msgspec
import pytest

from antflow import Pipeline, Stage, StatusTracker, observe
from antflow.runstream import (
    ErrorRecord,
    Event,
    Pause,
    Record,
    ReprKey,
    Resume,
    Retry,
    Stop,
)
from antflow.runstream.stream import RunStream
from tests.engine.helpers import Gates, wait_until


class ParseError(Exception):
    pass


async def echo(x: Any) -> Any:
    return x


async def parse(x: Any) -> Any:
    if x % 3 == 0:
        raise ParseError(f"cannot parse {x}")
    return x


def two_stages(tracker: StatusTracker | None = None) -> Pipeline:
    return Pipeline(
        [Stage("Fetch", 2, [echo]), Stage("Parse", 1, [parse], task_attempts=2)],
        status_tracker=tracker,
        sleep=lambda _: asyncio.sleep(0),
    )


async def test_attaching_through_observe_numbers_pipelines_and_describes_stages() -> None:
    stream = RunStream(script="job.py", argv=["job.py", "-v"])
    first, second = two_stages(), Pipeline([Stage("Only", 1, [echo])])
    with observe(stream.attach):
        await first.run(range(3))
        await second.run(range(2))
        await first.run(range(1))  # a restart keeps its number
    started = stream.pipelines()
    assert [p.pipeline for p in started] == [1, 2]
    assert [s.name for s in started[0].stages] == ["Fetch", "Parse"]
    assert started[0].stages[0].workers == ("Fetch-W0", "Fetch-W1")
    assert started[0].stages[1].task_attempts == 2
    assert stream.header.script == "job.py"
    assert stream.header.argv == ("job.py", "-v")
    assert first.status_tracker is not None  # the stream gave it a bounded tracker
    assert first.status_tracker.max_history_items == 10_000


async def test_snapshot_counts_and_workers_match_the_pipeline() -> None:
    gates = Gates()

    async def gated(x: int) -> int:
        await gates.pass_through(x)
        return x

    pipeline = Pipeline([Stage("A", 2, [gated]), Stage("B", 1, [echo])])
    stream = RunStream()
    stream.attach(pipeline)
    await pipeline.start()
    await pipeline.feed(range(5))
    await gates.entered(0)
    await gates.entered(1)
    snap = stream.snapshot(1)
    assert (snap.pipeline, snap.running, snap.fed, snap.in_flight) == (1, True, 5, 5)
    assert snap.stages[0].running == 2
    assert snap.stages[0].queued == 3
    assert snap.stages[0].next_items == (2, 3, 4)
    busy = [w for w in snap.workers[0] if w.status == "busy"]
    assert sorted(w.item for w in busy) == [0, 1]
    assert all(w.holding and w.since is not None for w in busy)
    gates.open_all()
    await pipeline.join()
    snap = stream.snapshot(1)
    assert (snap.running, snap.processed, snap.in_flight) == (False, 5, 0)
    assert snap.workers[1][0].processed == 5
    # Plain data: it round-trips through JSON.
    assert msgspec.json.decode(msgspec.json.encode(snap), type=Record) == snap


async def test_events_and_errors_are_plain_records_that_refer_to_each_other() -> None:
    stream = RunStream()
    pipeline = two_stages()
    stream.attach(pipeline)
    await pipeline.run(range(4))
    events, dropped = stream.events()
    errors = stream.take_errors()
    assert dropped == 0
    # Item 0 and 3 fail Parse twice each (two attempts): four attempt errors.
    assert [(e.item, e.attempt) for e in errors] == [(0, 1), (0, 2), (3, 1), (3, 2)] or sorted(
        (e.item, e.attempt) for e in errors
    ) == [(0, 1), (0, 2), (3, 1), (3, 2)]
    assert all(isinstance(e, ErrorRecord) for e in errors)
    assert {e.type for e in errors} == {f"{__name__}.ParseError"}
    assert "cannot parse 0" in errors[0].message
    assert "raise ParseError" in errors[0].traceback
    assert [e.number for e in errors] == [1, 2, 3, 4]
    kinds = [(e.item, e.kind, e.stage) for e in events if e.item == 1]
    assert kinds == [
        (1, "queued", "Fetch"),
        (1, "in_progress", "Fetch"),
        (1, "start", "Fetch"),
        (1, "complete", "Fetch"),
        (1, "completed", "Fetch"),
        (1, "queued", "Parse"),
        (1, "in_progress", "Parse"),
        (1, "start", "Parse"),
        (1, "complete", "Parse"),
        (1, "completed", "Parse"),
    ]
    by_number = {e.number: e for e in errors}
    carrying = [e for e in events if e.error is not None]
    assert {e.kind for e in carrying} == {"retry", "fail", "failed"}
    for event in carrying:
        assert by_number[event.error].item == event.item
    assert all(isinstance(e, Event) and e.pipeline == 1 for e in events)
    # Nothing twice.
    assert stream.take_errors() == []
    assert stream.events() == ([], 0)


# Issue 17.8: 60 retried attempts (429s, resets) left nothing to see but a count: each
# stage's snapshot says what its retried attempts raised, by type.
async def test_a_snapshot_counts_retried_attempts_by_error_type() -> None:
    calls: dict[int, int] = {}

    async def flaky(x: int) -> int:
        calls[x] = calls.get(x, 0) + 1
        if x == 1 and calls[x] < 3:
            raise ConnectionResetError("reset")
        if x == 2 and calls[x] < 2:
            raise ParseError("429")
        return x

    pipeline = Pipeline(
        [Stage("Fetch", 2, [flaky], task_attempts=3), Stage("Parse", 1, [parse], task_attempts=1)],
        sleep=lambda _: asyncio.sleep(0),
    )
    stream = RunStream()
    stream.attach(pipeline)
    await pipeline.run(range(4))
    fetch, parsed = stream.snapshot(1).stages
    assert fetch.task_retries == 3
    assert fetch.retried == (("ConnectionResetError", 2), (f"{__name__}.ParseError", 1))
    assert parsed.retried == (), "final failures are not retried attempts"
    assert sum(count for _, count in fetch.retried) == fetch.task_retries


async def test_events_beyond_the_capacity_are_counted_not_built() -> None:
    stream = RunStream(event_capacity=10)
    pipeline = Pipeline([Stage("A", 1, [echo])])
    stream.attach(pipeline)
    await pipeline.run(range(50))
    events, dropped = stream.events()
    assert 10 <= len(events) <= 30
    # queued, in_progress, start, complete, completed
    assert len(events) + dropped == 50 * 5


async def test_failed_items_keep_distinct_numbers_past_the_table_of_numbers() -> None:
    # More errors than the stream remembers numbers for: a failed item whose error was
    # forgotten must not share a number (0) with others; screens cache rows by it.
    async def fails(x: int) -> int:
        raise ValueError(f"bad {x}")

    stream = RunStream()
    stream.numbers.keep = 4
    pipeline = Pipeline([Stage("A", 2, [fails], task_attempts=2, task_wait_seconds=0)])
    stream.attach(pipeline)
    await pipeline.run(range(20))
    first = stream.failures(1)
    assert len(first) == 20
    numbers = [failure.number for failure in first]
    assert 0 not in numbers
    assert len(set(numbers)) == 20
    assert [failure.number for failure in stream.failures(1)] == numbers, "stable"


async def test_failures_and_item_detail() -> None:
    stream = RunStream(values=True)
    pipeline = two_stages()
    stream.attach(pipeline)
    await pipeline.run([{"id": "doc-3", "value": 3}, {"id": "doc-4", "value": 4}])
    (failure,) = stream.failures(1)
    assert (failure.item, failure.stage, failure.attempt) == ("doc-3", "Parse", 2)
    assert failure.value == "3"
    assert failure.number == 2  # the second attempt's error
    detail = stream.item(1, "doc-3")
    assert detail.known
    assert detail.status == "failed"
    assert detail.retryable
    assert detail.location is not None
    assert detail.location.state == "failed"
    assert detail.location.value == "3"
    assert [e.attempt for e in detail.errors] == [1, 2]
    assert [e.kind for e in detail.events if e.stage == "Parse"] == [
        "queued",
        "in_progress",
        "start",
        "retry",
        "start",
        "fail",
        "failed",
    ]
    fail = next(e for e in detail.events if e.kind == "fail")
    assert fail.error == detail.errors[1].number
    assert fail.duration is not None
    assert stream.item(1, "nobody").known is False
    assert stream.item(7, "doc-3").known is False


async def test_ids_that_are_not_json_scalars_travel_as_their_repr() -> None:
    stream = RunStream()
    pipeline = Pipeline([Stage("A", 1, [parse], task_attempts=1)])
    stream.attach(pipeline)
    await pipeline.run([{"id": ("a", 1), "value": 3}])
    (failure,) = stream.failures(1)
    assert failure.item == ReprKey("('a', 1)")
    assert stream.item(1, ReprKey("('a', 1)")).status == "failed"
    # And retrying by that key finds the live id.
    assert await stream.execute(Retry(1, (ReprKey("('a', 1)"),))) == "Retrying 1 item"


async def test_commands_pause_resume_retry_and_stop() -> None:
    gates = Gates()

    async def gated(x: int) -> int:
        await gates.pass_through(x)
        return x

    stream = RunStream(stop_grace=0.0)
    pipeline = Pipeline([Stage("A", 1, [gated]), Stage("B", 1, [parse], task_attempts=1)])
    stream.attach(pipeline)
    await pipeline.start()
    assert await stream.execute(Pause(stage="A")) == "Paused stage A"
    assert pipeline.is_paused(stage="A")
    assert await stream.execute(Resume(stage="A")) == "Resumed stage A"
    assert await stream.execute(Pause(worker="B-W0")) == "Paused worker B-W0"
    assert await stream.execute(Resume(worker="B-W0")) == "Resumed worker B-W0"
    assert await stream.execute(Pause()) == "Paused the run"
    assert pipeline.paused
    await stream.execute(Resume())
    gates.open_all()
    await pipeline.feed(range(4))
    await wait_until(lambda: pipeline.get_stats().items_in_flight == 0)
    await pipeline.join()
    assert pipeline.failed_item_ids() == [0, 3]
    # Retry after the end restarts the pipeline for those items.
    assert await stream.execute(Retry(1, (0, 99))) == "Retrying 1 item"
    await wait_until(lambda: not pipeline.is_running, steps=10_000)
    assert pipeline.failed_item_ids() == [3, 0]
    # Stop: what the stop leaves is unfinished but not abandoned.
    gates.close_new()
    await pipeline.start()
    await pipeline.feed([10, 11])
    await gates.entered(10)
    assert await stream.execute(Stop(force=True)) == "Stopped the run at once"
    snap = stream.snapshot(1)
    assert snap.unfinished == 2
    assert snap.abandoned == 0
    assert snap.stopped, "a viewer's header says stopped, not finished"
    assert [s.stopped for s in stream.snapshots()] == [True]


async def test_a_scripts_own_shutdown_abandons_its_items() -> None:
    never = asyncio.Event()

    async def first_only(x: int) -> int:
        if x:
            await never.wait()
        return x

    stream = RunStream()
    pipeline = Pipeline([Stage("A", 2, [first_only])])
    stream.attach(pipeline)
    async with contextlib.aclosing(pipeline.stream(range(100))) as results:
        async for _ in results:
            break
    snap = stream.snapshot(1)
    assert snap.unfinished > 0
    assert snap.abandoned == snap.unfinished


async def test_worker_stack_shows_where_the_task_waits() -> None:
    gates = Gates()

    async def gated(x: int) -> int:
        await gates.pass_through(x)
        return x

    stream = RunStream()
    pipeline = Pipeline([Stage("A", 1, [gated])])
    stream.attach(pipeline)
    await pipeline.start()
    await pipeline.feed([1])
    await gates.entered(1)
    stack = stream.worker_stack(1, "A-W0")
    assert stack is not None
    assert any(frame.function.endswith("gated") for frame in stack.frames)
    assert stream.worker_stack(1, "nobody") is None
    gates.open_all()
    await pipeline.join()


def test_logs_are_taken_once_in_order() -> None:
    times = iter([10.0, 11.0, 12.0])
    stream = RunStream(clock=lambda: next(times))
    stream.log("hello")
    stream.log("oops", "err")
    assert [(line.at, line.text, line.stream) for line in stream.take_logs()] == [
        (11.0, "hello", "out"),
        (12.0, "oops", "err"),
    ]
    assert stream.take_logs() == []


async def test_a_tracker_shared_by_two_pipelines_attributes_events_by_stage() -> None:
    tracker = StatusTracker()
    stream = RunStream()
    first = Pipeline([Stage("Load", 1, [echo])], status_tracker=tracker)
    second = Pipeline([Stage("Save", 1, [echo])], status_tracker=tracker)
    with observe(stream.attach):
        await first.run([{"id": "a"}])
        await second.run([{"id": "b"}])
    events, _ = stream.events()
    assert {(e.item, e.pipeline) for e in events} == {("a", 1), ("b", 2)}


@pytest.mark.parametrize("values", [False, True])
async def test_values_only_when_asked(values: bool) -> None:
    stream = RunStream(values=values)
    pipeline = Pipeline([Stage("A", 1, [parse], task_attempts=1)])
    stream.attach(pipeline)
    await pipeline.run([{"id": "x", "value": 3}])
    (error,) = stream.take_errors()
    assert (error.value is not None) == values
