"""Attaching to a run served in this process (a private Unix socket under tmp_path): the
AttachSource behind the app's screens, several viewers, late viewers, commands, a server
that goes away and comes back, and a recording made while attached."""

from __future__ import annotations

import asyncio
import os
import sys
from typing import TYPE_CHECKING

import pytest

from antflow import Budget, Pipeline, Stage, serve
from antflow.runstream import Pause, RaiseBudget, Resume, Retry, SetConcurrency, Stop, wire
from antflow.runstream.fileformat import Recording
from antflow.runstream.serve import RunServer
from antflow.runstream.stream import RunStream
from antflow_tui.attach import AttachSource, Target
from antflow_tui.attach.command import detach, detached_line
from antflow_tui.source.base import Can
from antflow_tui.source.replay import ReplaySource
from antflow_tui.view import ViewBuilder
from tests.engine.helpers import FakeClock, Gates, wait_until
from tests.tui.attaching import Followed

if TYPE_CHECKING:
    from pathlib import Path


@pytest.fixture(autouse=True)
def private_runtime(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path))
    return tmp_path


async def fail_odd(x: int) -> int:
    if x % 2:
        raise ValueError(f"odd {x}")
    return x


def gated_stage(gates: Gates, workers: int = 2) -> Stage:
    async def work(x: int) -> int:
        await gates.pass_through(x)
        return await fail_odd(x)

    return Stage("A", workers, [work], task_attempts=1)


def finished(followed: Followed, processed: int, failed: int) -> bool:
    snapshot = followed.snapshot()
    return (
        snapshot is not None
        and not snapshot.running
        and snapshot.processed == processed
        and len(followed.state.failures) == failed
    )


async def test_two_viewers_follow_one_run_through_discovery() -> None:
    gates = Gates()
    async with serve():
        viewers = [Followed(AttachSource(Target(pid=os.getpid()))) for _ in range(2)]
        for viewer in viewers:
            await viewer.source.connect()
        pipeline = Pipeline([gated_stage(gates)])
        run = asyncio.create_task(pipeline.run(range(4)))
        for viewer in viewers:
            await viewer.until(lambda v: 1 in v.state.pipelines)
            assert [s.name for s in viewer.state.stage_configs(1)] == ["A"]
        gates.open_all()
        await run
        for viewer in viewers:
            await viewer.until(lambda v: finished(v, 2, 2))
            assert viewer.failed_items() == [1, 3]
            assert viewer.state.status is not None
            assert viewer.state.status.title == os.path.basename(sys.argv[0])
            kinds = {entry.event.kind for entry in viewer.log if entry.event is not None}
            assert {"in_progress", "completed", "failed"} <= kinds
            await viewer.source.close()


async def test_a_late_viewer_sees_the_failures_from_before_it_joined() -> None:
    async with serve():
        pipeline = Pipeline([Stage("A", 2, [fail_odd], task_attempts=1)])
        await pipeline.run(range(6))
        late = Followed(AttachSource(Target(pid=os.getpid())))
        await late.source.connect()
        await late.until(lambda v: finished(v, 3, 3))
        assert late.failed_items() == [1, 3, 5]
        # The failure list comes without tracebacks; the item's story brings them.
        assert {f.message for f in late.state.failures} == {"odd 1", "odd 3", "odd 5"}
        detail = await late.source.item(1, 3)
        assert detail.status == "failed"
        assert detail.errors
        assert "odd 3" in detail.errors[-1].traceback
        await late.source.close()


async def test_a_late_viewer_draws_trends_from_before_it_joined(tmp_path: Path) -> None:
    clock = FakeClock(1_000.0)
    gates = Gates()

    async def gated(x: int) -> int:
        await gates.pass_through(x)
        return x

    stream = RunStream(clock=clock, follow_events=False)
    pipeline = Pipeline([Stage("A", 1, [gated])], clock=clock)
    stream.attach(pipeline)
    server = RunServer(stream, address=f"unix:{tmp_path}/job.sock", token="secret")
    await server.start()
    run = asyncio.create_task(pipeline.run(range(8)))
    for x in range(6):
        await gates.entered(x)
        server._keep_history()  # the pump does this every few seconds
        clock.advance(2.0)
        gates.open(x)
    late = Followed(AttachSource(Target(address=server.address, token="secret")))
    await late.source.connect()
    await late.until(lambda v: v.state.history.trend(1, "A") is not None)
    trend = late.state.history.trend(1, "A")
    assert trend is not None
    # Ten seconds of the run before the viewer came: one item every two seconds.
    assert trend.finished.span >= 10.0
    assert trend.finished.samples()[-3:] == [0.5, 0.5, 0.5]
    # The header's rate starts from that, not from nothing (it read 0.20/s for 1.24/s).
    assert late.state.history_rate == pytest.approx(0.5)
    header = ViewBuilder().build(late.state, 1, 120).header
    assert "0.50/s" in "".join(line.plain for line in header)
    gates.open_all()
    await run
    await late.source.close()
    await server.close()


async def test_pause_and_retry_through_the_socket_change_the_engine() -> None:
    gates = Gates()
    async with serve():
        pipeline = Pipeline([gated_stage(gates, workers=1)])
        await pipeline.start()
        viewer = Followed(AttachSource(Target(pid=os.getpid())))
        watcher = Followed(AttachSource(Target(pid=os.getpid(), read_only=True)))
        for one in (viewer, watcher):
            await one.source.connect()
            await one.until(lambda v: v.state.status is not None)
        assert viewer.source.capabilities() >= {Can.PAUSE, Can.RETRY, Can.STACKS, Can.STOP_JOB}
        assert viewer.source.stop_allowed
        assert watcher.source.capabilities() == {Can.STACKS, Can.DETACH}
        assert not watcher.source.stop_allowed
        assert "read-only" in await watcher.source.send(Pause())
        assert "read-only" in await watcher.source.send(Stop())
        assert not pipeline.paused

        assert await viewer.source.send(Pause(stage="A")) == "Paused stage A"
        assert pipeline.is_paused(stage="A")
        await viewer.until(lambda v: v.snapshot() is not None and v.snapshot().stages[0].paused)
        assert await viewer.source.send(Resume(stage="A")) == "Resumed stage A"
        assert not pipeline.is_paused(stage="A")

        gates.open_all()
        await pipeline.feed([{"id": "one", "value": 1}])
        await wait_until(lambda: pipeline.failed_item_ids() == ["one"], steps=10_000)
        await viewer.until(lambda v: v.failed_items() == ["one"])
        gates.close_new()
        assert await viewer.source.send(Retry(1, ("one",))) == "Retrying 1 item"
        await gates.entered(1)
        await wait_until(lambda: gates.entered_keys.count(1) == 2)
        assert pipeline.failed_item_ids() == []
        await viewer.until(lambda v: v.failed_items() == [])
        # Both viewers saw the controls, whoever gave them.
        await watcher.until(lambda v: any("Retrying 1 item" in line for line in v.lines()))
        gates.open_all()
        await pipeline.join()
        for one in (viewer, watcher):
            await one.source.close()


async def test_a_killed_server_shows_disconnected_and_the_viewer_attaches_again(
    tmp_path: Path,
) -> None:
    address = f"unix:{tmp_path}/job.sock"
    stream = RunStream(script="job.py")
    server = RunServer(stream, address=address, token="secret")
    await server.start()
    pipeline = Pipeline([Stage("A", 1, [fail_odd], task_attempts=1)])
    stream.attach(pipeline)
    await pipeline.run(range(3))
    viewer = Followed(AttachSource(Target(address=address, token="secret"), retry_every=0.01))
    await viewer.source.connect()
    await viewer.until(lambda v: finished(v, 2, 1))

    await server.close()
    await viewer.until(lambda v: "Disconnected" in v.source.notice)
    assert not viewer.source.connected
    assert "has ended" in viewer.source.notice
    assert viewer.state.status is not None
    assert viewer.state.status.ended
    # The last state stays: counts, failures, pipelines.
    assert finished(viewer, 2, 1)
    assert viewer.source.capabilities() == {Can.DETACH}
    assert (await viewer.source.item(1, 1)).status == "failed"

    # The same run is back (the same process serving again): attached again, no reset.
    again = RunServer(stream, address=address, token="secret")
    await again.start()
    await viewer.until(lambda v: v.source.connected and v.source.connections == 2)
    await viewer.until(lambda v: finished(v, 2, 1) and not v.source.notice)
    assert viewer.source.runs == 1
    assert not any(frame.reset for frame in viewer.frames)
    assert any("Attached again" in line for line in viewer.lines())
    await again.close()
    await viewer.until(lambda v: not v.source.connected)

    # A new run at that address: shown as a new run, from its start.
    stream.close()
    new_stream = RunStream(script="job.py")
    third = RunServer(new_stream, address=address, token="secret")
    await third.start()
    await viewer.until(lambda v: v.source.runs == 2 and v.state.pipelines == {})
    assert viewer.frames[-1].reset or any(frame.reset for frame in viewer.frames)
    assert viewer.state.failures == []
    second = Pipeline([Stage("B", 1, [fail_odd], task_attempts=1)])
    new_stream.attach(second)
    await second.run([2, 4])
    await viewer.until(lambda v: v.snapshot() is not None and v.snapshot().processed == 2)
    assert [s.name for s in viewer.state.stage_configs(1)] == ["B"]
    await viewer.source.close()
    await third.close()
    new_stream.close()


async def test_a_viewer_refused_a_wrong_token_says_why(tmp_path: Path) -> None:
    from antflow.runstream.client import AttachError

    async with serve(f"unix:{tmp_path}/job.sock"):
        source = AttachSource(Target(address=f"unix:{tmp_path}/job.sock", token="wrong"))
        with pytest.raises(AttachError, match="bad token"):
            await source.connect()


async def test_a_recording_made_while_attached_replays(tmp_path: Path) -> None:
    record = tmp_path / "attached.jsonl"
    async with serve():
        early = Pipeline([Stage("A", 1, [fail_odd], task_attempts=1)])
        await early.run([1, 2])  # a failure before the viewer attached
        viewer = Followed(AttachSource(Target(pid=os.getpid()), record=record))
        await viewer.source.connect()
        await viewer.until(lambda v: finished(v, 1, 1))
        later = Pipeline([Stage("B", 2, [fail_odd], task_attempts=2, task_wait_seconds=0)])
        await later.run(range(10, 16))
        await viewer.until(
            lambda v: (
                v.snapshot(2) is not None
                and not v.snapshot(2).running
                and v.snapshot(2).processed == 3
                and len(v.state.failures) == 4
            )
        )
        await viewer.source.close()
    assert viewer.source.recordings == [record]
    recording = Recording.open(record)
    assert recording.complete
    assert [p.pipeline for p in recording.pipelines()] == [1, 2]
    replay = ReplaySource(recording, at=recording.ended_at)
    frame = replay.next_frame(0.0)
    assert frame is not None
    assert frame.failures is not None
    failed = sorted((f.pipeline, f.item) for fs in frame.failures.values() for f in fs)
    # Ids are feed-order numbers: values 1; 11, 13 and 15 failed.
    assert failed == [(1, 0), (2, 1), (2, 3), (2, 5)]
    assert frame.snapshots[2].processed == 3
    story = await replay.item(2, 3)
    kinds = [event.kind for event in story.events]
    assert kinds[0] == "queued"
    assert "retry" in kinds
    assert kinds[-1] == "failed"
    assert "odd 13" in story.errors[-1].traceback
    # The failure from before the viewer attached keeps its traceback too.
    early_story = await replay.item(1, 0)
    assert any("odd 1" in error.traceback for error in early_story.errors)
    # Seeking back to the middle of the second pipeline's run.
    replay.seek(recording.started_at)
    assert replay.next_frame(0.0) is not None
    recording.close()


async def test_failed_items_stay_exact_when_events_are_dropped(tmp_path: Path) -> None:
    # A flood: the server keeps 5 events a tick, so most never reach the viewer; the
    # failed items come again as a whole instead.
    stream = RunStream(script="flood.py", event_capacity=5)
    server = RunServer(stream, address=f"unix:{tmp_path}/job.sock", token="secret")
    await server.start()
    viewer = Followed(AttachSource(Target(address=server.address, token="secret")))
    await viewer.source.connect()
    await viewer.until(lambda v: v.state.status is not None)
    pipeline = Pipeline([Stage("A", 4, [fail_odd], task_attempts=1)])
    stream.attach(pipeline)
    await pipeline.run(range(400))
    await viewer.until(lambda v: finished(v, 200, 200))
    assert viewer.failed_items() == sorted(pipeline.failed_item_ids())
    assert sum(frame.dropped for frame in viewer.frames) > 0
    await viewer.source.close()
    await server.close()
    stream.close()


# Issue 17.2: the viewer toasted "The connection closed before the job answered." while
# the stop had succeeded: a job that ends with its stop may close before it answers.
async def test_a_stop_whose_answer_is_lost_with_the_job_reads_as_done(tmp_path: Path) -> None:
    header = RunStream(script="job.py").header

    async def job_that_ends_with_its_stop(
        reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        await reader.readline()  # hello
        welcome = wire.Welcome(scopes=(wire.READ, wire.CONTROL), pid=4242, script="job.py")
        writer.write(wire.line(welcome) + wire.line(header))
        await writer.drain()
        await reader.readline()  # the stop: the job ends, its answer unsent
        writer.close()

    path = tmp_path / "job.sock"
    server = await asyncio.start_unix_server(job_that_ends_with_its_stop, path=str(path))
    viewer = Followed(AttachSource(Target(address=f"unix:{path}", token="t")))
    await viewer.source.connect()
    await viewer.until(lambda v: v.source.stop_allowed)
    assert await viewer.source.send(Stop()) == "Stopped job.py (pid 4242): it has ended."
    await viewer.source.close()
    server.close()


# Issue 19 (found trying attach): a plain `q` printed "its connection had dropped while it
# ran": the line was made after closing the connection.
async def test_detaching_from_a_running_job_says_it_goes_on(tmp_path: Path) -> None:
    stream = RunStream(script="job.py")
    server = RunServer(stream, address=f"unix:{tmp_path}/job.sock", token="secret")
    await server.start()
    pipeline = Pipeline([Stage("A", 1, [fail_odd])])
    stream.attach(pipeline)
    await pipeline.start()
    viewer = Followed(AttachSource(Target(address=server.address, token="secret")))
    await viewer.source.connect()
    await viewer.until(lambda v: v.state.status is not None)
    said = await detach(viewer.source)
    assert said == f"Detached from job.py (pid {os.getpid()}); the job goes on."
    assert not viewer.source.connected
    await pipeline.shutdown()
    await server.close()


# Issue 17.9: `q` after the job ended printed "Detached …; the job goes on".
def test_what_quitting_says_of_the_job() -> None:
    source = AttachSource(Target(pid=4242))
    source.target.script = "job.py"
    source.pid = 4242
    source.connected = True
    assert detached_line(source) == "Detached from job.py (pid 4242); the job goes on."
    source.ended_at = 1.0
    assert detached_line(source) == (
        "Detached from job.py (pid 4242): its run has ended (the process is still there)."
    )
    source.connected = False
    assert detached_line(source) == "Detached from job.py (pid 4242): the job has ended."
    source.ended_at = None
    assert detached_line(source) == (
        "Detached from job.py (pid 4242): its connection had dropped while it ran."
    )


# Issue 21: an attached viewer changes a stage's concurrency with the control token (the
# engine's limit moves, and every viewer's snapshots show it); one with the read token is
# refused, and its keys are not offered.
async def test_set_concurrency_through_the_socket_needs_the_control_token() -> None:
    gates = Gates()
    async with serve():
        pipeline = Pipeline([gated_stage(gates, workers=4)])
        await pipeline.start()
        viewer = Followed(AttachSource(Target(pid=os.getpid())))
        watcher = Followed(AttachSource(Target(pid=os.getpid(), read_only=True)))
        for one in (viewer, watcher):
            await one.source.connect()
            await one.until(lambda v: v.state.status is not None)
        assert Can.CONCURRENCY in viewer.source.capabilities()
        assert Can.CONCURRENCY not in watcher.source.capabilities()

        refused = await watcher.source.send(SetConcurrency(pipeline=1, stage="A", limit=1))
        assert "read-only" in refused
        assert pipeline.get_limit_snapshot().stages[0].max_concurrency == 4

        notice = await viewer.source.send(SetConcurrency(pipeline=1, stage="A", limit=2))
        assert notice == "A: at most 2 calls at once (of 4 workers)"
        assert pipeline.get_limit_snapshot().stages[0].max_concurrency == 2

        def limited(followed: Followed) -> bool:
            snapshot = followed.snapshot()
            limits = None if snapshot is None else snapshot.stages[0].limits
            return limits is not None and limits.max_concurrency == 2

        await viewer.until(limited)
        await watcher.until(limited)
        # Out of bounds, the engine's own words come back, and nothing changes.
        beyond = await viewer.source.send(SetConcurrency(pipeline=1, stage="A", limit=9))
        assert "from 1 to 4, got 9" in beyond
        assert pipeline.get_limit_snapshot().stages[0].max_concurrency == 2
        gates.open_all()
        await pipeline.join()
        for one in (viewer, watcher):
            await one.source.close()


# Issue 22: an attached viewer raises the job's budget with the control token (every
# viewer's snapshots show the new limit); one with the read token is refused, and B is
# not offered to it.
async def test_raise_budget_through_the_socket_needs_the_control_token() -> None:
    gates = Gates()
    budget = Budget(tokens=1_000)
    async with serve():
        pipeline = Pipeline([gated_stage(gates, workers=2)], budget=budget)
        await pipeline.start()
        viewer = Followed(AttachSource(Target(pid=os.getpid())))
        watcher = Followed(AttachSource(Target(pid=os.getpid(), read_only=True)))
        for one in (viewer, watcher):
            await one.source.connect()
            await one.until(lambda v: v.state.status is not None)
        assert Can.BUDGET in viewer.source.capabilities()
        assert Can.BUDGET not in watcher.source.capabilities()

        refused = await watcher.source.send(RaiseBudget(tokens=500))
        assert "read-only" in refused
        assert budget.tokens == 1_000

        notice = await viewer.source.send(RaiseBudget(tokens=500))
        assert "1,500" in notice
        assert budget.tokens == 1_500

        def raised(followed: Followed) -> bool:
            snapshot = followed.snapshot()
            row = None if snapshot is None else snapshot.budget
            return row is not None and row.tokens == 1_500

        await viewer.until(raised)
        await watcher.until(raised)
        gates.open_all()
        await pipeline.join()
        for one in (viewer, watcher):
            await one.source.close()
