"""Trace export: the slices of a recorded run, checked against the recording."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import antflow
from antflow import Pipeline, Stage
from antflow.runstream import Event
from antflow.runstream.fileformat import Recording
from antflow.runstream.trace import write_trace
from tests.engine.helpers import no_wait

if TYPE_CHECKING:
    from pathlib import Path


async def flaky(x: int) -> int:
    flaky.calls[x] = flaky.calls.get(x, 0) + 1  # type: ignore[attr-defined]
    if x == 2 and flaky.calls[x] == 1:  # type: ignore[attr-defined]
        raise ValueError("first try")
    if x == 3:
        raise KeyError("never")
    return x


flaky.calls = {}  # type: ignore[attr-defined]


async def test_every_task_attempt_is_one_slice_on_its_workers_lane(tmp_path: Path) -> None:
    path = tmp_path / "run.jsonl"
    pipeline = Pipeline(
        [Stage("Load", 2, [flaky], task_attempts=2), Stage("Save", 1, [flaky])], sleep=no_wait
    )
    async with antflow.record(path):
        await pipeline.run(range(4))
    out = tmp_path / "trace.json"
    with Recording.open(path) as recording:
        slices = write_trace(recording, out)
        attempts = [
            e
            for e in recording.records()
            if isinstance(e, Event) and e.kind in ("complete", "retry", "fail")
        ]
    trace = json.loads(out.read_text())
    events: list[dict[str, Any]] = trace["traceEvents"]
    complete = [e for e in events if e["ph"] == "X"]
    assert slices == len(complete) == len(attempts)
    lanes = {e["tid"]: e["args"]["name"] for e in events if e["name"] == "thread_name"}
    assert set(lanes.values()) == {"Load-W0", "Load-W1", "Save-W0"}
    for event in complete:
        assert event["dur"] >= 0
        assert lanes[event["tid"]].startswith(event["cat"])
    outcomes = sorted((e["args"]["item"], e["cat"], e["args"]["outcome"]) for e in complete)
    assert (2, "Load", "retry") in outcomes
    assert (3, "Load", "fail") in outcomes
    failed = next(e for e in complete if e["args"]["outcome"] == "fail")
    assert failed["cname"] == "terrible"
    assert "KeyError" in failed["args"]["error"]
