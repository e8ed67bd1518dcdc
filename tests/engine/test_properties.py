"""Property test: whatever the stages, failures, skips, priorities, pauses and shutdowns,
every fed item ends in exactly one terminal state and the counts agree.

Each example runs on a fresh event loop. Fake tasks yield with ``asyncio.sleep(0)`` a
drawn number of times (no wall clock), retry waits go through an injected ``sleep``, and
the clock ticks once per reading, so timestamps are strictly ordered by recording order.
"""

from __future__ import annotations

import asyncio
import itertools
from collections import Counter
from dataclasses import dataclass
from typing import Any, Literal

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from antflow import Pipeline, Stage, StatusTracker
from tests.engine.helpers import no_wait

MAX_ITEMS = 30
MAX_STEPS = 60

PauseLevel = tuple[Literal["pipeline", "stage", "worker"], str | None]


@dataclass(frozen=True)
class StagePlan:
    workers: int
    policy: Literal["per_task", "per_stage"]
    attempts: int
    failing_attempts: tuple[int, ...]
    """Per item id: how many of its first attempts in this stage fail."""
    yields: tuple[int, ...]
    """Per item id: how many times the task yields to the loop."""
    skipped: frozenset[int]
    """Item ids that `skip_if` passes straight through this stage."""
    queue_capacity: int | None


@dataclass(frozen=True)
class Scenario:
    stages: tuple[StagePlan, ...]
    batches: tuple[int, int]
    priorities: tuple[int, int]
    pause: tuple[int, int, PauseLevel] | None
    """(pause at step, resume at step, level)."""
    shutdown: tuple[int, bool] | None
    """(shutdown at step, graceful)."""

    @property
    def total(self) -> int:
        return sum(self.batches)

    def name(self, index: int) -> str:
        return f"S{index}"


@st.composite
def scenarios(draw: st.DrawFn) -> Scenario:
    half = MAX_ITEMS // 2
    batches = (draw(st.integers(0, half)), draw(st.integers(0, half)))
    total = sum(batches)
    per_item = st.lists(st.integers(0, 3), min_size=total, max_size=total).map(tuple)
    # Mostly items that succeed at once, so most examples have completions to check.
    failures = st.lists(st.sampled_from((0, 0, 0, 1, 2, 3)), min_size=total, max_size=total).map(
        tuple
    )
    stage_count = draw(st.integers(1, 3))
    stages = tuple(
        StagePlan(
            workers=draw(st.integers(1, 3)),
            policy=draw(st.sampled_from(["per_task", "per_stage"])),
            attempts=draw(st.integers(1, 3)),
            failing_attempts=draw(failures),
            yields=draw(per_item),
            skipped=draw(st.frozensets(st.integers(0, max(total - 1, 0)), max_size=total)),
            queue_capacity=draw(st.none() | st.integers(1, 4)),
        )
        for _ in range(stage_count)
    )
    priorities = (draw(st.integers(0, 200)), draw(st.integers(0, 200)))

    pause = None
    if draw(st.booleans()):
        pause_at = draw(st.integers(0, MAX_STEPS - 1))
        resume_at = draw(st.integers(pause_at + 1, MAX_STEPS))
        kind = draw(st.sampled_from(["pipeline", "stage", "worker"]))
        stage_index = draw(st.integers(0, stage_count - 1))
        if kind == "pipeline":
            level: PauseLevel = ("pipeline", None)
        elif kind == "stage":
            level = ("stage", f"S{stage_index}")
        else:
            worker = draw(st.integers(0, stages[stage_index].workers - 1))
            level = ("worker", f"S{stage_index}-W{worker}")
        pause = (pause_at, resume_at, level)

    shutdown = None
    if draw(st.booleans()):
        shutdown = (draw(st.integers(0, MAX_STEPS)), draw(st.booleans()))
    return Scenario(stages, batches, priorities, pause, shutdown)


def build(scenario: Scenario) -> tuple[Pipeline, StatusTracker, Counter[tuple[int, int]]]:
    calls: Counter[tuple[int, int]] = Counter()

    def task_for(index: int, plan: StagePlan) -> Any:
        async def work(value: int) -> int:
            calls[index, value] += 1
            for _ in range(plan.yields[value]):
                await asyncio.sleep(0)
            if calls[index, value] <= plan.failing_attempts[value]:
                raise RuntimeError(f"S{index} fails item {value}, call {calls[index, value]}")
            return value

        return work

    stages = [
        Stage(
            scenario.name(index),
            plan.workers,
            [task_for(index, plan)],
            retry=plan.policy,
            task_attempts=plan.attempts,
            stage_attempts=plan.attempts,
            task_wait_seconds=0.5,
            skip_if=lambda value, skipped=plan.skipped: value in skipped,
            queue_capacity=plan.queue_capacity,
        )
        for index, plan in enumerate(scenario.stages)
    ]
    ticks = itertools.count(1)
    tracker = StatusTracker()
    pipeline = Pipeline(
        stages, status_tracker=tracker, clock=lambda: float(next(ticks)), sleep=no_wait
    )
    return pipeline, tracker, calls


def expected_outcome(scenario: Scenario, item_id: int) -> Literal["completed", "failed"]:
    for plan in scenario.stages:
        if item_id in plan.skipped:
            continue
        if plan.failing_attempts[item_id] >= plan.attempts:
            return "failed"
    return "completed"


def pause_kwargs(level: PauseLevel) -> dict[str, str]:
    kind, name = level
    return {} if kind == "pipeline" or name is None else {kind: name}


async def drive(scenario: Scenario) -> tuple[Pipeline, StatusTracker, Counter[tuple[int, int]]]:
    pipeline, tracker, calls = build(scenario)
    first, second = scenario.batches

    stopped = False

    async def feed_both() -> None:
        await pipeline.feed(range(first), priority=scenario.priorities[0])
        # feed() returns quietly when a shutdown interrupts it; a stopped pipeline would
        # queue a second batch for its next start(), so the producer stops here.
        if not stopped:
            await pipeline.feed(range(first, first + second), priority=scenario.priorities[1])

    await pipeline.start()
    feeder = asyncio.create_task(feed_both())
    paused = False
    for step in range(MAX_STEPS + 1):
        if scenario.pause is not None:
            pause_at, resume_at, level = scenario.pause
            if step == pause_at:
                pipeline.pause(**pause_kwargs(level))
                paused = True
            elif step == resume_at:
                pipeline.resume(**pause_kwargs(level))
                paused = False
        if scenario.shutdown is not None and step == scenario.shutdown[0]:
            await pipeline.shutdown(graceful=scenario.shutdown[1])
            stopped = True
            break
        await asyncio.sleep(0)
    if paused:
        assert scenario.pause is not None
        pipeline.resume(**pause_kwargs(scenario.pause[2]))
    await feeder
    if not stopped:
        await pipeline.join()
    return pipeline, tracker, calls


def check(scenario: Scenario, pipeline: Pipeline, tracker: StatusTracker) -> None:
    stats = pipeline.get_stats()
    completed = [r.id for r in pipeline.results]
    failed = pipeline.failed_item_ids()
    unfinished = pipeline.get_unfinished_items()
    fed = stats.items_fed
    stopped = scenario.shutdown is not None

    # Every fed id ends in exactly one terminal state.
    assert len(set(completed)) == len(completed)
    assert len(set(failed)) == len(failed)
    assert len(set(unfinished)) == len(unfinished)
    assert not set(completed) & set(failed)
    assert not set(completed) & set(unfinished)
    assert not set(failed) & set(unfinished)
    assert set(completed) | set(failed) | set(unfinished) == set(range(fed))
    assert stats.items_processed + stats.items_failed + stats.items_unfinished == fed
    assert (stats.items_processed, stats.items_failed) == (len(completed), len(failed))
    assert stats.items_unfinished == len(unfinished)
    assert stats.items_in_flight == 0
    assert not pipeline.is_running

    # Results come in input order (ids are sequence numbers here), values untouched.
    assert completed == sorted(completed)
    assert all(r.value == r.id for r in pipeline.results)

    for item_id in completed:
        assert expected_outcome(scenario, item_id) == "completed", item_id
    for item_id in failed:
        assert expected_outcome(scenario, item_id) == "failed", item_id
    if not stopped:
        assert fed == scenario.total
        assert unfinished == []

    # The tracker agrees with the pipeline.
    counts = tracker.get_stats()
    assert sum(counts.values()) == fed
    assert counts["failed"] == stats.items_failed
    assert {f.item_id for f in tracker.get_failed_items()} == set(failed)
    if not stopped:
        assert counts["completed"] + counts["skipped"] == stats.items_processed
        assert counts["queued"] == counts["in_progress"] == counts["retrying"] == 0

    for item_id in range(fed):
        history = tracker.get_history(item_id)
        stamps = [e.timestamp for e in history]
        assert stamps == sorted(stamps), item_id
        timeline_stamps = [e.timestamp for e in tracker.get_timeline(item_id)]
        assert timeline_stamps == sorted(timeline_stamps), item_id
        starts = Counter(
            (e.stage, e.metadata["attempt"]) for e in history if e.status == "in_progress"
        )
        assert all(count == 1 for count in starts.values()), (item_id, starts)
        for index, plan in enumerate(scenario.stages):
            attempts = sorted(a for stage, a in starts if stage == scenario.name(index))
            assert attempts == list(range(1, len(attempts) + 1)), (item_id, attempts)
            if plan.policy == "per_task":
                assert len(attempts) <= 1
            if item_id in plan.skipped:
                assert attempts == []
        final = history[-1].status if history else None
        if item_id in completed:
            assert final in ("completed", "skipped")
        elif item_id in failed:
            assert final == "failed"


def quiet_stage(items: int, queue_capacity: int | None) -> StagePlan:
    return StagePlan(
        workers=1,
        policy="per_task",
        attempts=1,
        failing_attempts=(0,) * items,
        yields=(0,) * items,
        skipped=frozenset(),
        queue_capacity=queue_capacity,
    )


# A feed() waiting for room when shutdown() comes to an already paused pipeline.
PAUSED_THEN_SHUT_DOWN = Scenario(
    stages=(quiet_stage(12, 1),),
    batches=(3, 9),
    priorities=(0, 0),
    pause=(0, 2, ("pipeline", None)),
    shutdown=(1, False),
)


@example(PAUSED_THEN_SHUT_DOWN)
@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(scenarios())
def test_every_fed_item_ends_in_exactly_one_terminal_state(scenario: Scenario) -> None:
    pipeline, tracker, calls = asyncio.run(drive(scenario))

    check(scenario, pipeline, tracker)
    # No stage ran an item more often than its attempts allow.
    for (index, _item_id), count in calls.items():
        assert count <= scenario.stages[index].attempts
