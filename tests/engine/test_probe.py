"""The monitor surface (antflow.probe): one projection, one id mapping, one numbering."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

import pytest

from antflow import Pipeline, Stage, observe
from antflow.runstream import convert
from antflow.runstream.fileformat import Recording
from antflow.runstream.recorder import Recorder
from antflow.runstream.records import ErrorRecord, ReprKey, item_key
from antflow.runstream.stream import RunStream
from tests.engine.helpers import Gates

if TYPE_CHECKING:
    from pathlib import Path


async def fails_on_tuples(value: Any) -> Any:
    if isinstance(value, tuple):
        raise ValueError(f"no tuples: {value!r}")
    return value


# Issue 19.1: convert.snapshot and get_dashboard_snapshot each projected a stage; both are
# now made of the probe's stage views.
async def test_the_dashboard_and_the_stream_snapshot_show_the_same_stage() -> None:
    gates = Gates()

    async def gated(value: int) -> int:
        await gates.pass_through(value)
        return value

    pipeline = Pipeline([Stage("A", 2, [gated]), Stage("B", 1, [gated])])
    await pipeline.start()
    await pipeline.feed([1, 2, 3, 4])
    await gates.entered(1)
    await gates.entered(2)
    dashboard = pipeline.get_dashboard_snapshot()
    stream = convert.snapshot(pipeline.probe, 1)
    for name, row in zip(("A", "B"), stream.stages, strict=True):
        stats = dashboard.pipeline_stats.stage_stats[name]
        assert (row.queued, row.running, row.done) == (
            stats.pending_items,
            stats.in_progress_items,
            stats.completed_items,
        )
    assert stream.stages[0].next_items == tuple(dashboard.queued_ids["A"]) == (2, 3)
    worker = dashboard.worker_states["A-W0"]
    assert stream.workers[0][0].item == worker.current_item_id == 0
    assert stream.workers[0][0].since == worker.processing_since
    assert (
        (stream.fed, stream.in_flight)
        == (4, 4)
        == (
            dashboard.pipeline_stats.items_fed,
            dashboard.pipeline_stats.items_in_flight,
        )
    )
    gates.open_all()
    await pipeline.join()


# Issue 19.1: the key -> id mapping was written twice (stream.py and live/source.py) and
# each searched a different set of ids; one mapping searches failed, unfinished and
# tracked items.
async def test_a_repr_key_resolves_to_the_failed_or_unfinished_tuple_id() -> None:
    stream = RunStream()
    pipeline = Pipeline([Stage("S", 1, [fails_on_tuples], task_attempts=1)])
    stream.attach(pipeline)
    await pipeline.run([{"id": ("a", 1), "value": ("x",)}])
    key = item_key(("a", 1))
    assert isinstance(key, ReprKey)
    assert stream.live_id(1, key) == ("a", 1)
    assert pipeline.probe.live_id(ReprKey("('nobody', 2)")) == ReprKey("('nobody', 2)")
    assert stream.live_id(1, 7) == 7, "a JSON scalar is its own id"
    assert stream.live_id(9, key) is key, "an unknown pipeline: the key itself"

    left = Pipeline([Stage("S", 1, [fails_on_tuples])])
    await left.feed([{"id": ("b", 2), "value": 1}])
    await left.shutdown()
    assert left.get_unfinished_items() == [("b", 2)]
    assert left.probe.live_id(item_key(("b", 2))) == ("b", 2)


# Issue 19.1: errors were numbered twice (stream.py and recorder.py): the app and its
# recording could call one error by two numbers.
async def test_the_stream_and_its_recording_number_an_error_alike(tmp_path: Path) -> None:
    path = tmp_path / "run.jsonl"
    stream = RunStream()
    recorder = Recorder(path, stream, flush_every=3_600.0)
    recorder.open()
    pipeline = Pipeline([Stage("S", 1, [fails_on_tuples], task_attempts=1)])
    with observe(stream.attach):
        await pipeline.run([1, (2,), 3, (4,)])
        recorder.flush()  # the recorder numbers first here...
        taken = stream.take_errors()  # ...and the stream finds the same numbers
        recorder.close()
    with Recording.open(path) as recording:
        recorded = [r for r in recording.records() if isinstance(r, ErrorRecord)]
    assert [(e.item, e.number) for e in taken] == [(e.item, e.number) for e in recorded]
    assert [e.number for e in taken] == [1, 2]
    failures = stream.failures(1)
    assert [f.number for f in failures] == [1, 2]


# Issue 20.1: what a kept run stores comes through two probe events: each completed
# item with its result, each item out of a stage with its output. A listener that raises
# is logged and detached; the run goes on.
async def test_completed_and_stage_output_listeners_are_told_and_detached_on_error(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def double(value: int) -> int:
        return value * 2

    pipeline = Pipeline(
        [Stage("A", 1, [double], skip_if=lambda v: v == 3), Stage("B", 1, [double])]
    )
    completed: list[tuple[Any, Any]] = []
    outputs: list[tuple[Any, Any]] = []
    stop_completed = pipeline.probe.on_completed(lambda i, v: completed.append((i, v)))
    pipeline.probe.on_stage_output("A", lambda i, v: outputs.append((i, v)))

    def broken(item_id: Any, value: Any) -> None:
        raise RuntimeError("a broken listener")

    pipeline.probe.on_completed(broken)
    pipeline.probe.on_stage_output("B", broken)
    with caplog.at_level(logging.ERROR):
        results = await pipeline.run([1, 2, 3])
    assert [r.value for r in results] == [4, 8, 6]
    assert sorted(completed) == [(0, 4), (1, 8), (2, 6)]
    assert sorted(outputs) == [(0, 2), (1, 4), (2, 3)]  # a skipped item's output: its input
    said = sorted(r.getMessage() for r in caplog.records)
    assert said == [
        "an on_completed listener raised; it is detached",
        "an on_stage_output listener of stage 'B' raised; it is detached",
    ]
    stop_completed()
    assert pipeline._completed_listeners is None
    with pytest.raises(ValueError, match="Stage 'C' not found"):
        pipeline.probe.on_stage_output("C", broken)
