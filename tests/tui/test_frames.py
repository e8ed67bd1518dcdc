"""One reducer for every source fed by records (`antflow_tui.source.frames`): the same
recorded run, replayed from its file and followed over a socket as a served job's, comes
to the same state: the same failed items, counts, snapshots and item stories."""

from __future__ import annotations

import asyncio
import contextlib
from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import pytest

from antflow import Pipeline, Stage
from antflow.runstream import wire
from antflow.runstream.fileformat import Recording
from antflow.runstream.recorder import Recorder
from antflow.runstream.records import End, ErrorRecord, Event, Header, Retry, item_key
from antflow.runstream.stream import RunStream
from antflow_tui.attach import AttachSource, Target
from antflow_tui.source.base import ANY_ITEM
from antflow_tui.source.frames import RecordFrames
from antflow_tui.source.replay import FAR_SECONDS, ReplaySource
from antflow_tui.source.state import RunState
from tests.engine.helpers import FakeClock, wait_until
from tests.tui.attaching import Followed
from tests.tui.recorded import recording

if TYPE_CHECKING:
    from collections.abc import AsyncIterator
    from pathlib import Path

    import msgspec

    from antflow.runstream.records import ItemDetail, ItemKey, Record

RECORDINGS = ("failures", "varied", "two_pipelines")


@dataclass
class ServedRecording:
    """A fake job: a Unix socket that speaks the attach protocol, sending a recording's
    records as a server sends a run's (events in batches) and answering item requests
    from the file."""

    opened: Recording
    path: Path
    requests: list[Any] = field(default_factory=list)

    @property
    def address(self) -> str:
        return f"unix:{self.path}"

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        hello = wire.decode_from_viewer(await reader.readline())
        assert isinstance(hello, wire.Hello)
        header = self.opened.header
        send = [wire.Welcome(scopes=(wire.READ,), pid=4242, script=header.script), header]
        send.extend(self._as_sent(self.opened.records()))
        writer.write(b"".join(wire.line(message) for message in send))
        await writer.drain()
        while line := await reader.readline():
            request = wire.decode_from_viewer(line)
            self.requests.append(request)
            if isinstance(request, wire.ItemRequest):
                detail = self.opened.item(request.pipeline, request.item)
                writer.write(wire.line(wire.Reply(request.id, detail=detail)))
            elif isinstance(request, wire.StackRequest):
                writer.write(wire.line(wire.Reply(request.id)))
            await writer.drain()
        writer.close()

    @staticmethod
    def _as_sent(records: Any) -> list[msgspec.Struct]:
        """Consecutive events as one batch each, as a server's pump sends them; a
        recording's end is the file's, not the wire's."""
        sent: list[msgspec.Struct] = []
        batch: list[Event] = []
        for record in records:
            if isinstance(record, Event):
                batch.append(record)
                continue
            if batch:
                sent.append(wire.Events(tuple(batch)))
                batch = []
            if not isinstance(record, End | Header):
                sent.append(record)
        if batch:
            sent.append(wire.Events(tuple(batch)))
        return sent


@contextlib.asynccontextmanager
async def served(run: str | Recording, folder: Path) -> AsyncIterator[ServedRecording]:
    job = ServedRecording(_opened(run), folder / "job.sock")
    server = await asyncio.start_unix_server(job.handle, path=str(job.path))
    try:
        yield job
    finally:
        server.close()


def _opened(run: str | Recording) -> Recording:
    return recording(run) if isinstance(run, str) else run


def replayed_at_the_end(run: str | Recording) -> tuple[ReplaySource, RunState]:
    """Opened on the run's last moment (its state from the file's seek points)."""
    opened = _opened(run)
    source = ReplaySource(opened, at=opened.ended_at)
    state = RunState()
    frame = source.next_frame(0.0)
    assert frame is not None
    state.apply(frame)
    return source, state


def replayed_through(run: str | Recording) -> tuple[ReplaySource, RunState]:
    """Played from the start to the end in steps short of a jump (every record applied)."""
    opened = _opened(run)
    source = ReplaySource(opened)
    state = RunState()
    now = 0.0
    while True:
        frame = source.next_frame(now)
        if frame is not None:
            state.apply(frame)
        if source.position >= source.end:
            return source, state
        source.seek(min(source.position + FAR_SECONDS / 4, source.end))
        now += 1.0


async def attached_to(job: ServedRecording, until_like: RunState) -> Followed:
    """Follow the job until the snapshots it sent are all in (the records come in order:
    the last snapshot of each pipeline comes after everything before it)."""
    source = AttachSource(Target(address=job.address, token="secret"), interval=0.05)
    followed = Followed(source)
    await source.connect()
    await followed.until(lambda f: f.state.snapshots == until_like.snapshots)
    await followed.until(lambda f: _failures(f.state) == _failures(until_like))
    return followed


def _failures(state: RunState) -> list[tuple[Any, ...]]:
    return [_failure(error) for error in state.failures]


def _failure(error: ErrorRecord) -> tuple[Any, ...]:
    return (
        error.pipeline,
        error.item,
        error.stage,
        error.type,
        error.message,
        error.attempt,
        error.number,
    )


def _story(detail: ItemDetail) -> tuple[Any, ...]:
    """What the item screen tells of an item's story (where it stands now is the live
    job's to say: a recording's file tells the story, not the place)."""
    return (
        detail.pipeline,
        detail.known,
        detail.status,
        detail.stage,
        detail.events,
        tuple(_failure(error) for error in detail.errors),
        detail.also_in,
    )


def _items(opened: Recording) -> list[tuple[int, ItemKey]]:
    seen: dict[tuple[int, Any], None] = {}
    for record in opened.records():
        if isinstance(record, Event):
            seen.setdefault((record.pipeline, record.item), None)
    return list(seen)


# Issue 19.3: replay and attach each kept their own failures, error memory, story cache and
# export in front of RunState, and had drifted: replay corrected a failure's attempt number,
# attach did not; attach normalised keys and moved a re-failed item last, replay did not.
@pytest.mark.parametrize("name", RECORDINGS)
@pytest.mark.parametrize("replay", [replayed_at_the_end, replayed_through])
async def test_a_run_replayed_and_attached_to_comes_to_one_state(
    name: str, replay: Any, tmp_path: Path
) -> None:
    source, state = replay(name)
    assert state.failures or name == "two_pipelines", "a run with failures compares them"
    async with served(name, tmp_path) as job:
        followed = await attached_to(job, until_like=state)
        attached = followed.state
        assert attached.pipelines == state.pipelines
        assert attached.snapshots == state.snapshots
        assert _failures(attached) == _failures(state)
        assert attached.failure_counts == state.failure_counts
        assert attached.counts() == state.counts()
        for pipeline, item in _items(recording(name)):
            replayed = await source.item(pipeline, item)
            told = await followed.source.item(pipeline, item)
            assert _story(told) == _story(replayed), (pipeline, item)
        newest = await followed.source.item(ANY_ITEM, _items(recording(name))[-1][1])
        assert newest.known
        await followed.source.close()


async def test_the_exports_of_both_are_the_same(tmp_path: Path) -> None:
    source, state = replayed_through("failures")
    async with served("failures", tmp_path) as job:
        followed = await attached_to(job, until_like=state)
        replayed, attached = tmp_path / "replayed.jsonl", tmp_path / "attached.jsonl"
        assert source.export(replayed, state) == 2
        assert followed.source.export(attached, followed.state) == 2
        assert replayed.read_text() == attached.read_text()
        await followed.source.close()


# ---------------------------------------------------------------------- the reducer


def _error(number: int, item: Any, attempt: int) -> ErrorRecord:
    return ErrorRecord(number, 1, float(number), item, "Fetch", "fetch", attempt, "E", "m", "")


def _event(kind: str, item: Any, at: float, **fields: Any) -> Record:
    return Event(pipeline=1, at=at, item=item, kind=kind, stage="Fetch", **fields)  # type: ignore[arg-type]


def test_a_failure_takes_the_attempt_its_event_counts() -> None:
    records = RecordFrames()
    records.take([_error(1, "a", 1), _event("failed", "a", 1.0, error=1, attempt=3)])
    (failure,) = records.failures[1].values()
    assert failure.attempt == 3
    assert failure.number == 1


def test_an_item_failed_again_goes_last_and_keys_read_back_as_arrays_match() -> None:
    records = RecordFrames()
    records.take(
        [
            _error(1, [1, 2], 1),
            _event("failed", [1, 2], 1.0, error=1),
            _error(2, "b", 1),
            _event("failed", "b", 2.0, error=2),
            _event("queued", (1, 2), 3.0),
            _error(3, [1, 2], 1),
            _event("failed", [1, 2], 4.0, error=3),
        ]
    )
    assert [error.number for error in records.failures[1].values()] == [2, 3]


def test_a_failure_whose_error_was_not_seen_names_where_and_when() -> None:
    records = RecordFrames()
    changed = records.take([_event("failed", "a", 5.0, attempt=2, error=99)])
    assert changed == {1}
    (failure,) = records.failures[1].values()
    assert (failure.number, failure.at, failure.stage, failure.attempt) == (0, 5.0, "Fetch", 2)


async def recorded_retries(path: Path) -> None:
    """A run whose items have tuple ids (their repr as keys), two of which fail, each on
    its second try at the stage; both are retried: one completes, the other fails again."""
    clock = FakeClock(1_000.0)
    calls: Counter[str] = Counter()

    async def work(value: str) -> str:
        calls[value] += 1
        clock.advance(0.25)
        if value == "b" or (value == "d" and calls[value] <= 2):
            raise ValueError(f"bad {value} ({calls[value]})")
        return value

    stream = RunStream(clock=clock, follow_events=False)
    recorder = Recorder(path, stream, flush_every=3_600.0)  # writes only when told
    recorder.open()
    stage = Stage("A", 1, [work], retry="per_stage", stage_attempts=2, task_wait_seconds=0.0)
    pipeline = Pipeline([stage], clock=clock)
    stream.attach(pipeline)
    await pipeline.run([{"id": (1, n), "value": value} for n, value in enumerate("abcd")])
    recorder.flush(snapshot=True)
    clock.advance(1.0)
    retried = (item_key((1, 1)), item_key((1, 3)))
    assert await stream.execute(Retry(1, retried)) == "Retrying 2 items"
    await wait_until(lambda: calls["b"] == 4 and calls["d"] == 3 and not pipeline.is_running)
    clock.advance(1.0)
    recorder.flush(snapshot=True)
    recorder.close("finished")


@pytest.mark.parametrize("replay", [replayed_at_the_end, replayed_through])
async def test_retried_failures_with_tuple_ids_are_followed_alike(
    replay: Any, tmp_path: Path
) -> None:
    await recorded_retries(tmp_path / "retries.jsonl")
    opened = Recording.open(tmp_path / "retries.jsonl")
    source, state = replay(opened)
    failed = [(f.item, f.attempt) for f in state.failures]
    assert failed == [(item_key((1, 1)), 2)]
    async with served(opened, tmp_path) as job:
        followed = await attached_to(job, until_like=state)
        assert _failures(followed.state) == _failures(state)
        assert followed.state.counts() == state.counts()
        for pipeline, item in _items(opened):
            replayed = await source.item(pipeline, item)
            told = await followed.source.item(pipeline, item)
            assert _story(told) == _story(replayed), (pipeline, item)
        await followed.source.close()
