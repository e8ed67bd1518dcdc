"""Rate limits, concurrency and usage in the run stream: snapshots carry them, a
`SetConcurrency` command changes a stage's concurrency, recordings keep each item's usage,
and a retry goes through the stage's limits again.

Issue 21 ("In the app"): what the app shows of limits is recorded, replayed and sent to
viewers, so it travels as records; this checks the records, in virtual time.
"""

from __future__ import annotations

import asyncio
import itertools
from pathlib import Path
from typing import TYPE_CHECKING, Any

import msgspec
import pytest

from antflow import Pipeline, RateLimit, Stage, observe, set_task_usage
from antflow.runstream.fileformat import Recording
from antflow.runstream.recorder import Recorder
from antflow.runstream.records import (
    Control,
    ItemUsage,
    Retry,
    SetConcurrency,
    Snapshot,
    StageLimits,
    Usage,
)
from antflow.runstream.stream import RunStream
from tests.fake_api import TooManyRequests

if TYPE_CHECKING:
    from tests.vtime import VirtualTime

RECORDINGS = Path(__file__).resolve().parents[1] / "tui" / "recordings"


def _limited_pipeline(clock: Any, ask: Any, limit: RateLimit) -> Pipeline:
    return Pipeline(
        [
            Stage("Prepare", 2, [_echo]),
            Stage("Ask", 6, [ask], rate_limit=limit, adaptive=True, task_timeout=30.0),
        ],
        clock=clock,
    )


async def _echo(value: Any) -> Any:
    return value


# Issue 21: a snapshot carries each RateLimit (used against its caps, 429s, the end of
# its cool-down) and, per stage, the concurrency, rate-limited retries, timeouts and
# usage; a stage without limits carries none.
def test_a_snapshot_carries_the_limits_and_the_stages_usage(vtime: VirtualTime) -> None:
    limit = RateLimit(per_second=4, tokens_per_minute=10_000, name="llm", estimate=lambda v: 50)
    refused: list[float] = []
    taken: list[Snapshot] = []
    told = asyncio.Event()

    async def ask(value: int) -> int:
        await asyncio.sleep(0.5)
        if value == 3 and not refused:
            refused.append(asyncio.get_running_loop().time())
            told.set()
            raise TooManyRequests({"retry-after": "2"})
        set_task_usage(input_tokens=30, output_tokens=10, cost=0.5, model="m-1")
        return value

    async def main() -> None:
        loop = asyncio.get_running_loop()
        stream = RunStream(clock=loop.time)
        pipeline = _limited_pipeline(loop.time, ask, limit)
        stream.attach(pipeline)
        await pipeline.start()
        await pipeline.feed(range(8))
        await told.wait()
        await asyncio.sleep(0.5)  # within the 2 s of cool-down
        taken.append(stream.snapshot(1))
        await pipeline.join()
        taken.append(stream.snapshot(1))

    vtime.run(main())

    during, after = taken
    (row,) = during.limits
    assert (row.name, row.per_second, row.tokens_per_minute) == ("llm", 4, 10_000)
    assert row.stages == ("Ask",)
    assert row.rate_limited_last_minute == 1
    assert row.cooldown_until == pytest.approx(refused[0] + 2.0)
    assert row.calls_last_minute >= 4
    prepare, ask_row = during.stages
    assert prepare.limits is None
    assert prepare.usage is None
    assert ask_row.limits is not None
    assert ask_row.limits.adaptive
    assert ask_row.limits.limit == "llm"
    assert ask_row.limits.task_timeout == 30.0
    assert ask_row.limits.max_concurrency == 6
    assert ask_row.limits.rate_limited_retries == 1
    assert ask_row.limits.cooldown_until == row.cooldown_until
    assert after.stages[1].usage == Usage(
        input_tokens=240, output_tokens=80, cost=4.0, model="m-1", reports=8
    )
    assert after.limits[0].cooldown_until is None  # it is over by the end
    # What a file or a socket carries comes back the same.
    assert msgspec.json.decode(msgspec.json.encode(during), type=Snapshot) == during


# Issue 21: old recordings (made before limits) still decode: their snapshots hold no
# limits and their stages none either.
def test_a_recording_made_before_limits_reads_as_holding_none() -> None:
    with Recording.open(RECORDINGS / "mid_run.jsonl") as recording:
        point = recording.seek(recording.ended_at)
    (snapshot,) = point.snapshots.values()
    assert snapshot.limits == ()
    assert all(stage.limits is None and stage.usage is None for stage in snapshot.stages)


# Issue 21: SetConcurrency, carried out by the run stream (from the app or a viewer),
# changes the stage's concurrency through the engine, says so, and is bounded.
def test_set_concurrency_commands_change_the_stage_and_say_so(vtime: VirtualTime) -> None:
    notices: list[str] = []
    seen: list[StageLimits | None] = []
    controls: list[Any] = []

    async def main() -> None:
        gate = asyncio.Event()

        async def hold(value: int) -> int:
            await gate.wait()
            return value

        loop = asyncio.get_running_loop()
        stream = RunStream(clock=loop.time)
        stream.on_record.append(controls.append)
        pipeline = Pipeline([Stage("Fetch", 4, [hold])], clock=loop.time)
        stream.attach(pipeline)
        await pipeline.start()
        await pipeline.feed(range(10))
        await asyncio.sleep(0)
        commands = (
            SetConcurrency(pipeline=1, stage="Fetch", limit=2),
            SetConcurrency(pipeline=1, stage="Fetch", limit=5),
            SetConcurrency(pipeline=1, stage="Nope", limit=2),
            SetConcurrency(pipeline=7, stage="Fetch", limit=2),
        )
        notices.extend([await stream.execute(command) for command in commands])
        seen.append(stream.snapshot(1).stages[0].limits)
        gate.set()
        await pipeline.join()

    vtime.run(main())

    assert notices[0] == "Fetch: at most 2 calls at once (of 4 workers)"
    assert "must be an int from 1 to 4, got 5" in notices[1]
    assert notices[2] == "No stage named Nope"
    assert notices[3] == "No pipeline 7"
    assert seen[0] is not None
    assert (seen[0].concurrency, seen[0].max_concurrency) == (2, 2)
    # Recorded as a control, as pause and retry are.
    assert [c.result for c in controls if isinstance(c, Control)] == notices


# Issue 21: "Retry all" goes through the same limits: retried items enter the stage
# whose RateLimit paces them, and the limit counts their calls.
def test_retried_items_are_paced_by_the_stages_rate_limit(vtime: VirtualTime) -> None:
    limit = RateLimit(per_second=2, name="api")
    calls: list[tuple[float, int]] = []
    failing = True
    counted: list[int] = []

    async def ask(value: int) -> int:
        calls.append((asyncio.get_running_loop().time(), value))
        if failing:
            raise ConnectionError("down")
        return value

    async def main() -> None:
        nonlocal failing
        loop = asyncio.get_running_loop()
        stream = RunStream(clock=loop.time)
        pipeline = Pipeline(
            [Stage("Ask", 8, [ask], rate_limit=limit, task_attempts=1)], clock=loop.time
        )
        stream.attach(pipeline)
        await pipeline.run(range(6))
        assert pipeline.get_stats().items_failed == 6
        failing = False
        await asyncio.sleep(120)  # the first calls leave the limit's minute
        failed = tuple(error.item for error in stream.failures(1))
        assert await stream.execute(Retry(pipeline=1, items=failed)) == "Retrying 6 items"
        await asyncio.sleep(0.1)
        counted.append(stream.snapshot(1).limits[0].calls_last_second)
        await pipeline.join()

    vtime.run(main())

    retried = [at for at, _ in calls[6:]]
    assert len(retried) == 6
    gaps = [later - earlier for earlier, later in itertools.pairwise(retried)]
    assert min(gaps) == pytest.approx(0.5)  # 2 per second, as the first round was
    assert counted == [1]


# Issue 21: a recording keeps what each item reported with set_task_usage, and the
# item's recorded story carries it.
def test_a_recording_keeps_each_items_usage(vtime: VirtualTime, tmp_path: Path) -> None:
    path = tmp_path / "run.jsonl"
    live: list[Usage | None] = []

    async def ask(value: int) -> int:
        await asyncio.sleep(0.1)
        set_task_usage(input_tokens=100 + value, output_tokens=7, model="m-2")
        if value == 2:
            set_task_usage(input_tokens=1, output_tokens=1, cost=0.25)  # a second call
        return value

    async def main() -> None:
        loop = asyncio.get_running_loop()
        stream = RunStream(clock=loop.time)
        recorder = Recorder(path, stream)
        recorder.open()
        with observe(stream.attach):
            await Pipeline([Stage("Ask", 2, [ask]), Stage("Keep", 1, [_echo])]).run(range(4))
        live.append(stream.item(1, 2).usage)  # what an item screen (or a viewer) reads
        recorder.close()

    vtime.run(main())

    lines = [msgspec.json.decode(line) for line in path.read_bytes().splitlines()]
    usage_lines = [
        line for line in lines if isinstance(line, dict) and line.get("record") == "usage"
    ]
    assert sorted(line["item"] for line in usage_lines) == [0, 1, 2, 3]
    with Recording.open(path) as recording:
        story = recording.item(1, 2)
        other = recording.item(1, 0)
        records = [r for r in recording.records() if isinstance(r, ItemUsage)]
    # Issue 22: the report without a cost (no price for m-2) is counted as unpriced.
    assert story.usage == Usage(
        input_tokens=103, output_tokens=8, cost=0.25, model="m-2", reports=2, unpriced=1
    )
    assert live == [story.usage]
    assert other.usage == Usage(
        input_tokens=100, output_tokens=7, model="m-2", reports=1, unpriced=1
    )
    assert len(records) == 4
