"""Recordings: written losslessly, read back with seeking, safe when cut short.

The round-trip property: whatever a run does (failures, retries, pauses, shutdowns), the
recording replays to the same final counts, the same failures and, for every item, the
same timeline the live tracker has.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import antflow
from antflow import Pipeline, Stage, StatusTracker, observe
from antflow.runstream import VERSION, Event, ReprKey
from antflow.runstream.compaction import compact
from antflow.runstream.fileformat import Recording, RecordingError
from antflow.runstream.recorder import Recorder
from antflow.runstream.records import item_key
from antflow.runstream.stream import RunStream
from tests.engine.helpers import Gates, no_wait

ROOT = Path(__file__).resolve().parents[2]


class ParseError(Exception):
    pass


async def echo(x: Any) -> Any:
    return x


async def parse(x: int) -> int:
    if x % 4 == 0:
        raise ParseError(f"cannot parse {x}")
    return x


def live_timeline(tracker: StatusTracker, item_id: Any) -> list[tuple[Any, ...]]:
    out = []
    for event in tracker.get_timeline(item_id):
        if hasattr(event, "status"):
            out.append((event.status, event.stage, event.worker, None))
        else:
            out.append((event.event_type, event.stage, event.worker, event.task_name))
    return out


def replayed_timeline(events: tuple[Event, ...]) -> list[tuple[Any, ...]]:
    return [(e.kind, e.stage, e.worker, e.task) for e in events]


async def test_a_recorded_run_replays_with_its_events_errors_and_totals(tmp_path: Path) -> None:
    path = tmp_path / "run.jsonl"
    tracker = StatusTracker()
    pipeline = Pipeline(
        [Stage("Fetch", 2, [echo]), Stage("Parse", 2, [parse], task_attempts=2)],
        status_tracker=tracker,
        sleep=no_wait,
    )
    async with antflow.record(path):
        await pipeline.run(range(12))
    with Recording.open(path) as recording:
        assert recording.complete
        assert not recording.torn
        assert recording.header.format == "antflow-run"
        assert recording.header.version == VERSION
        (started,) = recording.pipelines()
        assert [s.name for s in started.stages] == ["Fetch", "Parse"]
        assert recording.end is not None
        (totals,) = recording.end.totals
        assert (totals.fed, totals.processed, totals.failed) == (12, 9, 3)
        point = recording.seek(recording.ended_at)
        assert point.snapshots[1].processed == 9
        assert sorted(e.item for e in point.failures[1]) == [0, 4, 8]
        for item_id in range(12):
            detail = recording.item(1, item_id)
            assert replayed_timeline(detail.events) == live_timeline(tracker, item_id)
        detail = recording.item(1, 4)
        assert detail.status == "failed"
        assert [e.attempt for e in detail.errors] == [1, 2]
        assert all("raise ParseError" in e.traceback for e in detail.errors)
        assert detail.errors[0].type == f"{__name__}.ParseError"
        fail = next(e for e in detail.events if e.kind == "fail")
        assert fail.error == detail.errors[1].number
        assert fail.duration is not None


async def test_bytes_per_event_stay_small(tmp_path: Path) -> None:
    path = tmp_path / "run.jsonl"
    pipeline = Pipeline([Stage(f"S{i}", 4, [echo]) for i in range(3)])
    async with antflow.record(path):
        await pipeline.run(range(2_000))
    with Recording.open(path) as recording:
        events = sum(1 for r in recording.records() if isinstance(r, Event))
    # Per stage: queued, in_progress, start, complete, completed.
    assert events == 2_000 * 3 * 5
    assert path.stat().st_size / events <= 60
    assert b'\n["R",1,"' in path.read_bytes(), "events are written in packed batches"


async def test_seeking_gives_the_state_at_that_time(tmp_path: Path) -> None:
    gates = Gates()
    clock = itertools.count(1000)

    async def gated(x: int) -> int:
        await gates.pass_through(x)
        if x == 1:
            raise ParseError("one")
        return x

    pipeline = Pipeline([Stage("A", 1, [gated], task_attempts=1)], clock=lambda: next(clock))
    stream = RunStream(clock=lambda: float(next(clock)))
    recorder = Recorder(tmp_path / "run.jsonl", stream, snapshot_every=0.0)
    stream.attach(pipeline)
    recorder.open()
    await pipeline.start()
    await pipeline.feed(range(3))
    moments = []
    for item in range(3):
        await gates.entered(item)
        recorder.flush()
        moments.append(stream.snapshot(1))
        gates.open(item)
    await pipeline.join()
    recorder.close()
    with Recording.open(tmp_path / "run.jsonl") as recording:
        for moment in moments:
            point = recording.seek(moment.at)
            assert point.snapshots[1].processed == moment.processed
            assert point.snapshots[1].failed == moment.failed
        final = recording.seek(recording.ended_at)
        assert [e.item for e in final.failures[1]] == [1]
        assert recording.seek(0.0).snapshots == {}


async def test_a_run_cut_short_is_readable_and_marked_incomplete(tmp_path: Path) -> None:
    path = tmp_path / "run.jsonl"
    pipeline = Pipeline([Stage("A", 1, [parse], task_attempts=1)])
    async with antflow.record(path):
        await pipeline.run(range(8))
    data = path.read_bytes()
    lines = data.splitlines(keepends=True)
    # Drop the end record and tear the line before it.
    torn = b"".join(lines[:-2]) + lines[-2][: len(lines[-2]) // 2]
    path.write_bytes(torn)
    with Recording.open(path) as recording:
        assert not recording.complete
        assert recording.torn
        assert recording.pipelines()
        list(recording.records())


def test_a_newer_major_version_is_refused_with_a_message_naming_it(tmp_path: Path) -> None:
    path = tmp_path / "future.jsonl"
    newer = VERSION + 1
    header = {"record": "header", "format": "antflow-run", "version": newer, "antflow": "9.0"}
    path.write_text(json.dumps(header) + "\n")
    with pytest.raises(RecordingError, match=rf"version {newer} \(written by antflow 9\.0\)"):
        Recording.open(path)


# Issue 18.7: a version "1" or 1.0 was told "version 1; this antflow reads version 1 and
# older: upgrade antflow".
@pytest.mark.parametrize(
    ("version", "shown"),
    [("1", "'1' (a str)"), (1.0, "1.0 (a float)"), (True, "True (a bool)"), (0, "0,")],
)
def test_a_version_that_is_not_a_whole_number_is_a_damaged_header(
    tmp_path: Path, version: object, shown: str
) -> None:
    path = tmp_path / "odd.jsonl"
    header = {"record": "header", "format": "antflow-run", "version": version}
    path.write_text(json.dumps(header) + "\n")
    with pytest.raises(RecordingError) as refused:
        Recording.open(path)
    message = str(refused.value)
    assert f"has a damaged header: its format version is {shown}" in message
    assert "upgrade" not in message


@pytest.mark.parametrize("content", [b"", b'{"record":"hea', b"hello\n", b"[1, 2]\n"])
def test_what_is_not_a_recording_is_refused(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "x.jsonl"
    path.write_bytes(content)
    with pytest.raises(RecordingError, match=r"recording|cut short|empty"):
        Recording.open(path)


async def test_ids_that_are_not_json_scalars_round_trip_as_reprs(tmp_path: Path) -> None:
    path = tmp_path / "run.jsonl"
    pipeline = Pipeline([Stage("A", 1, [parse], task_attempts=1)])
    async with antflow.record(path):
        await pipeline.run([{"id": ("doc", 4), "value": 4}, {"id": object, "value": 1}])
    with Recording.open(path) as recording:
        point = recording.seek(recording.ended_at)
        (failure,) = point.failures[1]
        assert failure.item == ReprKey("('doc', 4)")
        detail = recording.item(1, ReprKey("('doc', 4)"))
        assert detail.status == "failed"
        assert recording.item(1, ReprKey(repr(object))).status == "completed"


async def test_values_are_recorded_as_reprs_only_when_asked(tmp_path: Path) -> None:
    for values in (False, True):
        path = tmp_path / f"run-{values}.jsonl"
        pipeline = Pipeline([Stage("A", 1, [parse], task_attempts=1)])
        async with antflow.record(path, values=values):
            await pipeline.run([{"id": "x", "value": 4}])
        with Recording.open(path) as recording:
            (error,) = recording.item(1, "x").errors
            assert error.value == ("4" if values else None)


async def test_log_lines_and_controls_are_recorded(tmp_path: Path) -> None:
    import logging

    from antflow.runstream import LogLine, Pause, Resume
    from antflow.runstream.records import Control

    path = tmp_path / "run.jsonl"
    pipeline = Pipeline([Stage("A", 1, [echo])])
    async with antflow.record(path) as recorder:
        logging.getLogger("job").warning("half way")
        await pipeline.start()
        await recorder.stream.execute(Pause())
        await recorder.stream.execute(Resume())
        await pipeline.feed([1])
        await pipeline.join()
    with Recording.open(path) as recording:
        records = list(recording.records())
    assert any(isinstance(r, LogLine) and r.text == "half way" for r in records)
    controls = [r.result for r in records if isinstance(r, Control)]
    assert controls == ["Paused the run", "Resumed the run"]


def test_antflow_record_environment_records_an_unmodified_script(tmp_path: Path) -> None:
    script = tmp_path / "job.py"
    script.write_text(
        textwrap.dedent(
            """
            import asyncio
            from antflow import Pipeline, Stage

            async def double(x):
                if x == 3:
                    raise ValueError("three")
                return 2 * x

            async def main():
                load = Pipeline([Stage("Load", 2, [double], task_attempts=1)])
                save = Pipeline([Stage("Save", 1, [double], task_attempts=1)])
                await asyncio.gather(load.run(range(5)), save.run(range(4)))

            asyncio.run(main())
            """
        )
    )
    path = tmp_path / "run.jsonl"
    environment = {**os.environ, "ANTFLOW_RECORD": str(path), "PYTHONPATH": str(ROOT)}
    subprocess.run([sys.executable, str(script)], check=True, env=environment, timeout=60)
    with Recording.open(path) as recording:
        assert recording.complete
        assert recording.header.script == "job.py"
        assert [p.pipeline for p in recording.pipelines()] == [1, 2]
        point = recording.seek(recording.ended_at)
        assert {n: s.processed for n, s in point.snapshots.items()} == {1: 4, 2: 3}
        assert {n: [e.item for e in f] for n, f in point.failures.items()} == {1: [3], 2: [3]}
        assert "three" in recording.item(2, 3).errors[0].traceback


# ---------------------------------------------------------------------- properties


@st.composite
def runs(draw: st.DrawFn) -> dict[str, Any]:
    items = draw(st.integers(0, 25))
    return {
        "items": items,
        "workers": draw(st.integers(1, 3)),
        "policy": draw(st.sampled_from(["per_task", "per_stage"])),
        "attempts": draw(st.integers(1, 3)),
        "failing": draw(st.lists(st.integers(0, 3), min_size=items, max_size=items)),
        "stages": draw(st.integers(1, 3)),
        "pause_at": draw(st.none() | st.integers(0, 30)),
        "shutdown_at": draw(st.none() | st.integers(0, 60)),
        "graceful": draw(st.booleans()),
        "retry_failed": draw(st.booleans()),
    }


async def record_run(plan: dict[str, Any], path: Path) -> tuple[Pipeline, StatusTracker]:
    calls: dict[tuple[int, int], int] = {}

    def task(stage: int) -> Any:
        async def work(x: int) -> int:
            calls[stage, x] = calls.get((stage, x), 0) + 1
            await asyncio.sleep(0)
            if stage == 0 and calls[stage, x] <= plan["failing"][x]:
                raise ParseError(f"{x} attempt {calls[stage, x]}")
            return x

        return work

    ticks = itertools.count(1)
    tracker = StatusTracker()
    pipeline = Pipeline(
        [
            Stage(
                f"S{i}",
                plan["workers"],
                [task(i)],
                retry=plan["policy"],
                task_attempts=plan["attempts"],
                stage_attempts=plan["attempts"],
            )
            for i in range(plan["stages"])
        ],
        status_tracker=tracker,
        clock=lambda: float(next(ticks)),
        sleep=no_wait,
        cancel_grace=0.001,
    )
    stream = RunStream(clock=lambda: float(next(ticks)))
    recorder = Recorder(path, stream, snapshot_every=0.0)
    recorder.open()
    with observe(stream.attach):
        await pipeline.start()
        await pipeline.feed(range(plan["items"]))
        for step in range(60):
            if step == plan["pause_at"]:
                pipeline.pause()
                recorder.flush()
                pipeline.resume()
            if step == plan["shutdown_at"]:
                await pipeline.shutdown(graceful=plan["graceful"])
                break
            if step % 7 == 0:
                recorder.flush()
            await asyncio.sleep(0)
        await pipeline.join()
        if plan["retry_failed"] and pipeline.failed_item_ids():
            await pipeline.start()
            for item_id in pipeline.failed_item_ids():
                pipeline.retry(item_id)
            await pipeline.join()
    recorder.close()
    stream.close()
    return pipeline, tracker


SCANNED = ("batch", "error", "snapshot", "usage", "failures")
"""What a whole-run reader (`antflow.runstream.runsummary`) asks `Recording.scan` for."""


@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
@given(runs())
def test_a_recording_replays_to_what_the_run_was(
    tmp_path_factory: Any, plan: dict[str, Any]
) -> None:
    path = tmp_path_factory.mktemp("rec") / "run.jsonl"
    pipeline, tracker = asyncio.run(record_run(plan, path))
    stats = pipeline.get_stats()
    with Recording.open(path) as recording:
        assert recording.complete
        final = recording.seek(recording.ended_at)
        snap = final.snapshots[1]
        assert (snap.fed, snap.processed, snap.failed, snap.unfinished) == (
            stats.items_fed,
            stats.items_processed,
            stats.items_failed,
            stats.items_unfinished,
        )
        replayed_failures = sorted(e.item for e in final.failures.get(1, []))
        assert replayed_failures == sorted(pipeline.failed_item_ids())
        for item_id in range(stats.items_fed):
            detail = recording.item(1, item_id)
            assert replayed_timeline(detail.events) == live_timeline(tracker, item_id)
            assert len({e.number for e in detail.errors}) == len(tracker.get_errors(item_id))
        records = list(recording.records())
        scanned = list(recording.scan(SCANNED))
    # Issue 20 (Disk): its compacted form reads as the same recording, batches read from
    # their columns by a whole-run reader (a comparison) too.
    compacted = path.with_name("compacted.jsonl")
    compacted.write_bytes(path.read_bytes())
    compact(compacted, frame_bytes=1 << 10)
    with Recording.open(compacted) as recording:
        assert list(recording.records()) == records
        assert recording.seek(recording.ended_at) == final
        assert list(recording.scan(SCANNED)) == scanned
        assert not recording.damaged


def test_a_recording_cut_at_any_byte_leaves_a_readable_prefix(tmp_path: Path) -> None:
    path = tmp_path / "run.jsonl"
    plan = {
        "items": 4,
        "workers": 1,
        "policy": "per_task",
        "attempts": 2,
        "failing": [0, 2, 1, 0],
        "stages": 2,
        "pause_at": None,
        "shutdown_at": None,
        "graceful": True,
        "retry_failed": False,
    }
    asyncio.run(record_run(plan, path))
    data = path.read_bytes()
    header_end = data.index(b"\n") + 1
    cut = tmp_path / "cut.jsonl"
    for size in range(len(data) + 1):
        cut.write_bytes(data[:size])
        if size < header_end:
            with pytest.raises(RecordingError):
                Recording.open(cut)
            continue
        with Recording.open(cut) as recording:
            records = list(recording.records())
            recording.seek(recording.ended_at)
            assert recording.complete == (size == len(data))
            assert all(msgspec.json.encode(r) for r in records)


async def test_a_window_builds_only_the_newest_events(tmp_path: Path) -> None:
    path = tmp_path / "run.jsonl"
    pipeline = Pipeline([Stage("A", 1, [parse], task_attempts=1)])
    async with antflow.record(path):
        await pipeline.run(range(10))
    with Recording.open(path) as recording:
        everything = list(recording.records())
        events = [r for r in everything if isinstance(r, Event)]
        records, dropped = recording.window(recording.started_at - 1, recording.ended_at, 5)
    assert [r for r in records if isinstance(r, Event)] == events[-5:]
    assert dropped == len(events) - 5
    others = [r for r in everything if not isinstance(r, Event)]
    assert [r for r in records if not isinstance(r, Event)] == others


# ---------------------------------------------------------------------- found in review


async def test_two_recordings_of_one_run_each_get_every_event(tmp_path: Path) -> None:
    pipeline = Pipeline([Stage("A", 2, [echo])])
    async with antflow.record(tmp_path / "a.jsonl"), antflow.record(tmp_path / "b.jsonl"):
        await pipeline.run(range(300))
    for name in ("a.jsonl", "b.jsonl"):
        with Recording.open(tmp_path / name) as recording:
            done = [
                r for r in recording.records() if isinstance(r, Event) and r.kind == "completed"
            ]
        assert len(done) == 300


async def test_ids_msgspec_knows_but_the_stream_does_not_are_written_as_reprs(
    tmp_path: Path,
) -> None:
    import dataclasses
    import datetime

    @dataclasses.dataclass(frozen=True)
    class Key:
        shard: int

    ids = [datetime.datetime(2024, 1, 1), ((1, 2), 3), Key(4)]
    pipeline = Pipeline([Stage("A", 1, [parse], task_attempts=1)])
    async with antflow.record(tmp_path / "run.jsonl"):
        await pipeline.run([{"id": item_id, "value": 4} for item_id in ids])
    with Recording.open(tmp_path / "run.jsonl") as recording:
        failures = recording.seek(recording.ended_at).failures[1]
        assert sorted(e.item.repr for e in failures) == sorted(repr(i) for i in ids)
        for item_id in ids:
            assert recording.item(1, ReprKey(repr(item_id))).status == "failed"


# Issue 20 (Cost): event batches are packed as the journal holds them, ids looked at once
# as they are fed. Ids a packed batch cannot hold as they are come back as the stream
# keys them: a NaN as its repr, an int past 64 bits as itself (its batch in columns), one
# past JSON's digits as its repr.
async def test_ids_of_every_kind_come_back_as_the_stream_keys_them(tmp_path: Path) -> None:
    ids = [float("nan"), 2**70, 10**5000, -3, True, "doc-1", 2.5, None]
    pipeline = Pipeline([Stage("A", 1, [parse], task_attempts=1)])
    async with antflow.record(tmp_path / "run.jsonl"):
        await pipeline.run([{"id": item_id, "value": 4} for item_id in ids])
    keys = [item_key(item_id) for item_id in ids]
    assert keys[0] == ReprKey("nan")
    assert keys[1] == 2**70
    assert isinstance(keys[2], ReprKey)
    with Recording.open(tmp_path / "run.jsonl") as recording:
        assert not recording.damaged
        failures = recording.seek(recording.ended_at).failures[1]
        assert len(failures) == len(ids)
        for key in keys:
            assert recording.item(1, key).status == "failed", key


async def test_ids_fed_before_a_recorder_opened_are_looked_at_too(tmp_path: Path) -> None:
    gates = Gates()

    async def gated(x: int) -> int:
        await gates.pass_through(x)
        return x

    pipeline = Pipeline([Stage("A", 1, [gated])])
    stream = RunStream()
    stream.attach(pipeline)
    await pipeline.start()
    await pipeline.feed([{"id": ("doc", 1), "value": 1}, {"id": 2, "value": 2}])
    await gates.entered(1)
    recorder = Recorder(tmp_path / "run.jsonl", stream)
    recorder.open()
    gates.open_all()
    await pipeline.join()
    recorder.close()
    with Recording.open(tmp_path / "run.jsonl") as recording:
        assert not recording.damaged
        assert recording.item(1, ReprKey("('doc', 1)")).status == "completed"
        assert recording.item(1, 2).status == "completed"


async def test_seeking_sees_every_trackers_records(tmp_path: Path) -> None:
    gates = Gates()

    async def gated(x: int) -> int:
        await gates.pass_through(x)
        raise ParseError(str(x))

    first = Pipeline([Stage("A", 1, [gated], task_attempts=1)])
    second = Pipeline([Stage("B", 1, [gated], task_attempts=1)])
    stream = RunStream(follow_events=False, follow_errors=False)
    recorder = Recorder(tmp_path / "run.jsonl", stream, snapshot_every=0.0)
    recorder.open()
    with observe(stream.attach):
        runs = [asyncio.create_task(first.run([1])), asyncio.create_task(second.run([2]))]
        await gates.entered(1)
        await gates.entered(2)
        gates.open_all()
        await asyncio.gather(*runs)
    recorder.close()
    with Recording.open(tmp_path / "run.jsonl") as recording:
        point = recording.seek(recording.ended_at)
    assert {n: [e.item for e in f] for n, f in point.failures.items()} == {1: [0], 2: [0]}


async def test_items_failing_with_one_shared_exception_keep_their_own_errors(
    tmp_path: Path,
) -> None:
    shared = ParseError("token refresh failed")

    async def refresh(x: int) -> int:
        raise shared

    pipeline = Pipeline([Stage("A", 1, [refresh], task_attempts=1)])
    async with antflow.record(tmp_path / "run.jsonl"):
        await pipeline.run(range(3))
    with Recording.open(tmp_path / "run.jsonl") as recording:
        for item_id in range(3):
            detail = recording.item(1, item_id)
            (error,) = detail.errors
            assert error.item == item_id
            failed = next(e for e in detail.events if e.kind == "failed")
            assert failed.error == error.number


async def test_text_json_cannot_hold_is_escaped_not_fatal(tmp_path: Path) -> None:
    async def bad_name(x: int) -> int:
        name = b"caf\xe9".decode("utf-8", "surrogateescape")  # an undecodable file name
        raise OSError(f"cannot open {name}")

    pipeline = Pipeline([Stage("A", 1, [bad_name], task_attempts=1)])
    async with antflow.record(tmp_path / "run.jsonl"):
        await pipeline.run([1])
    with Recording.open(tmp_path / "run.jsonl") as recording:
        assert recording.complete
        (error,) = recording.item(1, 0).errors
        assert "\\udce9" in error.message


async def test_failures_stay_exact_when_one_flush_holds_thousands_of_errors(
    tmp_path: Path,
) -> None:
    pipeline = Pipeline([Stage("A", 4, [parse], task_attempts=1)])
    async with antflow.record(tmp_path / "run.jsonl"):
        await pipeline.run(range(24_000))  # 6,000 failures, well past 4,096 per flush
    with Recording.open(tmp_path / "run.jsonl") as recording:
        (failures,) = recording.seek(recording.ended_at).failures.values()
    assert len(failures) == 6_000
