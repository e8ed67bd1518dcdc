"""Unit tests of antflow_tui.source.state: frames in, the one state every screen reads out."""

from __future__ import annotations

from typing import Any

from antflow.runstream.records import (
    ErrorRecord,
    Event,
    LogLine,
    PipelineStarted,
    Snapshot,
    StageConfig,
)
from antflow_tui.source.base import Frame, RunStatus
from antflow_tui.source.state import RunState, short_type

NOW = 1_700_000_000.0


def status(**changes: Any) -> RunStatus:
    return RunStatus(**{"title": "etl.py", "now": NOW, "started_at": NOW - 10, **changes})


def started(number: int, name: str = "") -> PipelineStarted:
    stage = StageConfig("S", ("S-W0",), ("t",), "per_task", 1, 0.0, 1, 10)
    return PipelineStarted(pipeline=number, at=NOW, stages=(stage,), name=name)


def snapshot(
    number: int, *, fed: int = 0, processed: int = 0, failed: int = 0, **more: Any
) -> Snapshot:
    return Snapshot(
        pipeline=number, at=NOW, running=True, paused=False, stopping=False, fed=fed,
        processed=processed, failed=failed, in_flight=fed - processed - failed, unfinished=0,
        **more,
    )  # fmt: skip


def error(
    number: int, item: Any, *, pipeline: int = 1, at: float = NOW, kind: str = "ValueError"
) -> ErrorRecord:
    return ErrorRecord(
        number=number, pipeline=pipeline, at=at, item=item, stage="S", task="t", attempt=1,
        type=kind, message="bad", traceback="Traceback...",
    )  # fmt: skip


def frame(**changes: Any) -> Frame:
    values: dict[str, Any] = {"status": status(), "pipelines": (started(1),), "snapshots": {}}
    values.update(changes)
    return Frame(**values)


def test_snapshots_are_the_latest_per_pipeline_and_kept_until_replaced() -> None:
    state = RunState()
    state.apply(frame(pipelines=(started(1), started(2)), snapshots={1: snapshot(1, fed=3)}))
    state.apply(frame(snapshots={2: snapshot(2, fed=5)}))
    assert {n: s.fed for n, s in state.snapshots.items()} == {1: 3, 2: 5}
    state.apply(frame(snapshots={1: snapshot(1, fed=4)}))
    assert state.snapshots[1].fed == 4
    assert state.newest == 2


def test_failures_of_every_pipeline_are_merged_oldest_first_and_counted_once() -> None:
    state = RunState()
    first = (error(1, "a", at=NOW + 2), error(2, "b", at=NOW + 5, kind="scrape.ParseError"))
    second = (error(3, "a", pipeline=2, at=NOW + 3),)
    state.apply(frame(failures={1: first, 2: second}))
    assert [(f.pipeline, f.item) for f in state.failures] == [(1, "a"), (2, "a"), (1, "b")]
    assert state.failure_counts == {"ValueError": 2, "scrape.ParseError": 1}
    assert state.failures_of(2) == second
    shown = state.failures
    state.apply(frame(failures=None))
    assert state.failures is shown, "no change: the same list (panels skip their rebuild)"
    state.apply(frame(failures={1: ()}))
    assert [f.item for f in state.failures] == ["a"]
    assert state.failure_counts == {"ValueError": 1}


def test_log_entries_merge_events_and_lines_by_time_and_name_each_events_error() -> None:
    state = RunState()
    failed = Event(pipeline=1, at=NOW + 2, item=7, kind="fail", stage="S", task="t", error=9)
    queued = Event(pipeline=1, at=NOW, item=7, kind="queued", stage="S")
    printed = LogLine(at=NOW + 1, text="hello")
    entries = state.apply(
        frame(events=(queued, failed), logs=(printed,), errors=(error(9, 7),), dropped=0)
    )
    assert [(e.event.kind if e.event else e.line.text if e.line else "?") for e in entries] == [
        "queued", "hello", "fail",
    ]  # fmt: skip
    assert entries[2].error is not None
    assert entries[2].error.number == 9
    assert entries[0].error is None


def test_a_flood_leads_the_entries_with_a_marker_saying_how_many_were_skipped() -> None:
    state = RunState()
    entries = state.apply(frame(dropped=500))
    assert entries[0].dropped == 500
    assert entries[0].event is None


def test_a_reset_forgets_snapshots_errors_and_failures() -> None:
    state = RunState()
    state.apply(frame(snapshots={1: snapshot(1, fed=3)}, failures={1: (error(1, "x"),)}))
    state.apply(frame(snapshots={}, reset=True))
    assert state.snapshots == {}
    assert state.failures == []
    assert state.error(1) is None


def test_counts_come_from_snapshots_with_the_runs_known_total() -> None:
    state = RunState()
    state.apply(
        frame(
            status=status(known_total=20),
            pipelines=(started(1), started(2)),
            snapshots={1: snapshot(1, fed=6, processed=4, failed=1), 2: snapshot(2, fed=2)},
        )
    )
    whole = state.counts()
    assert (whole.completed, whole.failed, whole.in_flight, whole.total) == (4, 1, 3, 20)
    assert whole.not_fed == 12
    one = state.counts([2])
    assert (one.in_flight, one.total, one.not_fed) == (2, None, 0), "a pipeline's own total"


def test_pipeline_names_default_to_their_number() -> None:
    state = RunState()
    state.apply(frame(pipelines=(started(1), started(2, name="report"))))
    assert [state.pipeline_name(n) for n in (1, 2, 3)] == ["pipeline-1", "report", "pipeline-3"]


def test_short_type_drops_the_module() -> None:
    assert short_type("scrape.ParseError") == "ParseError"
    assert short_type("ValueError") == "ValueError"
