"""Unit tests of antflow_tui.live.source without the app: frames of records from a live run,
what only the app knows added to snapshots, item stories, commands, and a recording of the
run through the engine's recorder."""

from __future__ import annotations

from typing import TYPE_CHECKING

from antflow.runstream.fileformat import Recording
from antflow.runstream.records import Pause, Resume, Retry, Stop
from antflow_tui.demo import GatedRun, settle
from antflow_tui.live.runner import PipelineJob
from antflow_tui.live.source import LiveSource
from antflow_tui.source.state import RunState
from tests.tui.apps import ITEMS, until

if TYPE_CHECKING:
    from pathlib import Path


def source_of(run: GatedRun, **settings: object) -> LiveSource:
    job = PipelineJob("demo.py", run.pipeline, run.items, len(run.items))
    return LiveSource(job, clock=run.clock, stop_grace=0.0, **settings)  # type: ignore[arg-type]


async def test_frames_carry_snapshots_events_errors_and_failures_as_records() -> None:
    run = GatedRun(list(ITEMS))
    source = source_of(run)
    state = RunState()
    source.start()
    await until(lambda: source.current is not None)
    run.fail("Fetch", 2, "boom")
    run.release("Fetch", 0, 1, 2)
    await until(lambda: run.pipeline.get_stats().items_failed == 1)
    frame = source.next_frame(0.0)
    assert frame is not None
    state.apply(frame)
    snapshot = state.snapshots[1]
    assert snapshot.total_items == len(ITEMS), "the app knows how many it feeds"
    assert not snapshot.stopped
    (failure,) = state.failures
    assert (failure.item, failure.stage, failure.type) == (
        "page-2",
        "Fetch",
        "antflow_tui.demo.DemoError",
    )
    assert {e.kind for e in frame.events} >= {"queued", "start", "fail", "failed"}
    assert [e.attempt for e in frame.errors] == [1, 2], "every failed attempt's error"
    assert state.status is not None
    assert state.status.title == "demo.py"
    assert state.status.now == run.clock.now, "the source's one clock"
    await source.stop(force=True)


async def test_item_detail_has_the_value_it_holds_and_every_attempts_error() -> None:
    run = GatedRun(list(ITEMS))
    source = source_of(run)
    source.start()
    await until(lambda: source.current is not None)
    run.fail("Fetch", 2, "boom")
    run.release("Fetch", 2)
    await until(lambda: run.pipeline.get_stats().items_failed == 1)
    detail = await source.item(0, "page-2")
    assert detail.known
    assert detail.pipeline == 1
    assert detail.status == "failed"
    assert detail.retryable
    assert detail.location is not None
    assert detail.location.value == "2"
    assert [(e.task, e.attempt) for e in detail.errors] == [("fetch", 1), ("fetch", 2)]
    assert all("DemoError: boom" in error.traceback for error in detail.errors)
    unknown = await source.item(0, "page-99")
    assert not unknown.known
    await source.stop(force=True)


async def test_pause_resume_and_retry_go_to_the_pipelines() -> None:
    run = GatedRun(list(ITEMS))
    source = source_of(run)
    source.start()
    await until(lambda: source.current is not None)
    assert await source.send(Pause(pipeline=1, stage="Parse")) == "Paused stage Parse"
    assert run.pipeline.is_paused(stage="Parse")
    await source.send(Resume(pipeline=1, stage="Parse"))
    await source.send(Pause())
    assert run.pipeline.paused
    assert source.status().paused, "the whole run: pipelines that start later too"
    await source.send(Resume())
    run.fail("Fetch", 2, "boom")
    for stage in ("Fetch", "Parse", "Save"):
        run.release(stage, *range(len(ITEMS)))
    await until(lambda: source.ended_at is not None)
    assert source.ends == 1
    run.failures.clear()
    assert await source.send(Retry(pipeline=1, items=("page-2",))) == "Retrying 1 item"
    assert source.ended_at is None, "a retry after the end starts the run again"
    await until(lambda: source.ends == 2)
    assert run.pipeline.get_stats().items_processed == len(ITEMS)


async def test_a_stop_marks_the_pipelines_it_stopped() -> None:
    run = GatedRun(list(ITEMS))
    source = source_of(run)
    source.start()
    await until(lambda: source.current is not None and run.pipeline.get_stats().items_fed == 8)
    await settle()
    assert await source.send(Stop()) == "Stopped the run"
    current = source.current
    assert current is not None
    snapshot = source.snapshot(current)
    assert snapshot.stopped
    assert snapshot.unfinished == len(ITEMS)
    assert snapshot.abandoned == 0, "the app stopped them: unfinished, not abandoned"
    counts = source.counts()
    assert (counts.unfinished, counts.abandoned) == (len(ITEMS), 0)
    assert source.ended_at is not None


async def test_a_recorded_run_has_the_apps_snapshots_and_values_when_asked(tmp_path: Path) -> None:
    path = tmp_path / "run.jsonl"
    run = GatedRun(list(ITEMS))
    source = source_of(run, record=path, record_values=True)
    source.start()
    await until(lambda: source.current is not None)
    run.fail("Parse", 5, "bad page")
    for stage in ("Fetch", "Parse", "Save"):
        run.release(stage, *range(len(ITEMS)))
    await until(lambda: source.ended_at is not None)
    source.note("a line the script printed")
    source.mark_closed()
    recording = Recording.open(path)
    assert recording.complete
    assert recording.header.values
    assert recording.header.script == "demo.py"
    point = recording.seek(recording.ended_at)
    assert point.snapshots[1].total_items == len(ITEMS)
    (failure,) = point.failures[1]
    assert failure.item == "page-5"
    story = recording.item(1, "page-5")
    assert story.errors[-1].value == "5"
    assert any(getattr(r, "text", "") == "a line the script printed" for r in recording.records())


async def test_a_skip_if_that_raises_is_an_error_of_its_stage_with_no_task() -> None:
    """The item screen labels each attempt's error by the task that raised it; an error of
    `skip_if` has none (it was labelled "skip_if" in the failing stage)."""
    from antflow import Pipeline, Stage

    def skip(value: int) -> bool:
        return 1 // (value - 1) > 5  # value 1: ZeroDivisionError

    async def keep(value: int) -> int:
        return value

    pipeline = Pipeline([Stage("First", 1, [keep]), Stage("Parse", 1, [keep], skip_if=skip)])
    source = LiveSource(PipelineJob("skips.py", pipeline, [0, 1, 2], 3), stop_grace=0.0)
    source.start()
    await until(lambda: source.ended_at is not None)
    detail = await source.item(1, 1)
    assert detail.status == "failed"
    (error,) = detail.errors
    assert (error.stage, error.task, error.type) == ("Parse", None, "ZeroDivisionError")
    assert "ZeroDivisionError" in error.traceback
