"""Unit tests of antflow_tui.source.replay over recordings: playing, seeking, the
failures as of the position, item stories, refusing what it cannot read."""

from __future__ import annotations

import json
from itertools import pairwise
from typing import TYPE_CHECKING

import pytest

from antflow import Pipeline, Stage, observe
from antflow.runstream import fileformat
from antflow.runstream.fileformat import Recording, RecordingError
from antflow.runstream.recorder import Recorder
from antflow.runstream.records import VERSION, Event
from antflow.runstream.stream import RunStream
from antflow_tui.source import replay as replay_module
from antflow_tui.source.base import PAUSE, RETRY, SEEK, STOP
from antflow_tui.source.replay import FRAME_EVENTS, ReplaySource
from antflow_tui.state import RunState
from tests.engine.helpers import FakeClock
from tests.tui.recorded import RECORDINGS, recording

if TYPE_CHECKING:
    from pathlib import Path

    from antflow_tui.source.base import Frame


def frame(source: ReplaySource, now: float) -> Frame:
    got = source.next_frame(now)
    assert got is not None
    return got


# ---------------------------------------------------------------------- the file


def test_a_complete_recording_has_its_end_and_a_killed_one_does_not() -> None:
    complete = recording("failures")
    assert complete.complete
    assert complete.header.script == "demo.py"
    assert [p.pipeline for p in complete.pipelines()] == [1]
    assert not recording("mid_run").complete


def test_a_torn_last_line_is_ignored_and_marks_the_recording_incomplete(tmp_path: Path) -> None:
    whole = (RECORDINGS / "failures.jsonl").read_bytes()
    torn = tmp_path / "torn.jsonl"
    torn.write_bytes(whole[: len(whole) - 20])
    opened = Recording.open(torn)
    assert not opened.complete
    assert opened.torn
    assert opened.ended_at <= recording("failures").ended_at
    source = ReplaySource(opened, at=opened.ended_at)
    last = frame(source, 0.0)
    assert last.status.ended_at is None, "a killed run's recording never says it ended"
    assert last.status.replay is not None
    assert not last.status.replay.complete


def test_a_newer_major_version_is_refused_naming_it(tmp_path: Path) -> None:
    lines = (RECORDINGS / "mid_run.jsonl").read_text().splitlines()
    header = json.loads(lines[0])
    header.update(version=VERSION + 1, antflow="9.0.0")
    newer = tmp_path / "newer.jsonl"
    newer.write_text("\n".join([json.dumps(header), *lines[1:]]) + "\n")
    with pytest.raises(RecordingError) as refused:
        Recording.open(newer)
    message = str(refused.value)
    assert f"version {VERSION + 1}" in message
    assert "antflow 9.0.0" in message
    assert "upgrade antflow" in message


@pytest.mark.parametrize(
    ("content", "says"),
    [(b"", "empty"), (b'{"a": 1}\n', "not an antflow recording"), (b"\x00\x01\n", "not an")],
)
def test_what_is_not_a_recording_is_refused(tmp_path: Path, content: bytes, says: str) -> None:
    path = tmp_path / "x.jsonl"
    path.write_bytes(content)
    with pytest.raises(RecordingError, match=says):
        Recording.open(path)


def test_records_are_read_by_time_window() -> None:
    opened = recording("failures")
    start = opened.started_at
    window = list(opened.records(start + 1.0, start + 2.0))
    assert window
    assert all(start + 1.0 < getattr(r, "at", 0) <= start + 2.0 for r in window)


# ---------------------------------------------------------------------- playing


def test_the_first_frame_is_the_start_and_a_held_replay_sends_no_more() -> None:
    source = ReplaySource(recording("failures"), name="failures.jsonl")
    first = frame(source, 100.0)
    assert first.reset
    assert first.status.now == source.start
    assert first.status.replay is not None
    assert not first.status.replay.playing
    assert source.next_frame(101.0) is None, "nothing moves while held"


def test_playing_moves_by_the_time_passed_times_the_speed_and_stops_at_the_end() -> None:
    source = ReplaySource(recording("failures"), playing=True, speed=2.0)
    frame(source, 100.0)
    moved = frame(source, 101.5)
    assert moved.status.now == pytest.approx(source.start + 3.0)
    assert not moved.reset
    last = frame(source, 200.0)
    assert last.status.now == source.end
    assert last.status.replay is not None
    assert not last.status.replay.playing
    assert last.status.ended_at is not None, "a complete recording ends"


def test_an_incomplete_recording_never_says_the_run_ended() -> None:
    source = ReplaySource(recording("mid_run"), playing=True)
    frame(source, 0.0)
    last = frame(source, 1_000.0)
    assert last.status.ended_at is None
    assert last.status.replay is not None
    assert not last.status.replay.complete


def test_counts_at_the_end_equal_the_recorded_totals() -> None:
    opened = recording("failures")
    source = ReplaySource(opened, playing=True, speed=64.0)
    state = RunState()
    for now in range(0, 10):
        got = source.next_frame(float(now))
        if got is not None:
            state.apply(got)
    counts = state.counts()
    assert (counts.completed, counts.failed, counts.in_flight) == (6, 2, 0)
    assert sorted(str(f.item) for f in state.failures) == ["page-3", "page-5"]


def test_seeking_back_starts_over_from_the_state_at_that_moment() -> None:
    source = ReplaySource(recording("failures"), playing=True, speed=64.0)
    state = RunState()
    state.apply(frame(source, 0.0))
    state.apply(frame(source, 10.0))
    assert len(state.failures) == 2
    source.play(False)
    source.seek(source.start + 1.0)
    back = frame(source, 10.0)
    assert back.reset
    state.apply(back)
    assert state.failures == []
    assert state.counts().done < 8


def test_stepping_forward_a_little_applies_what_happened_in_between() -> None:
    source = ReplaySource(recording("failures"))
    state = RunState()
    state.apply(frame(source, 0.0))
    for step in range(1, 12):
        source.seek(source.start + step)
        got = frame(source, 0.0)
        assert not got.reset, "a short step forward reads on, it does not start over"
        state.apply(got)
    assert sorted(str(f.item) for f in state.failures) == ["page-3", "page-5"]


def test_the_failures_follow_events_and_carry_their_error() -> None:
    source = ReplaySource(recording("failures"))
    state = RunState()
    state.apply(frame(source, 0.0))
    source.seek(source.end)
    state.apply(frame(source, 0.0))
    failure = next(f for f in state.failures if f.item == "page-3")
    assert failure.type == "antflow_tui.demo.DemoError"
    assert "Fetch refused item 3" in failure.message
    assert "Traceback" in failure.traceback
    assert failure.attempt == 2


def test_a_replay_cannot_pause_retry_or_stop() -> None:
    source = ReplaySource(recording("failures"))
    assert SEEK in source.capabilities
    assert not {PAUSE, RETRY, STOP} & source.capabilities


# ---------------------------------------------------------------------- pulls


async def test_an_items_story_is_told_up_to_the_position() -> None:
    source = ReplaySource(recording("failures"))
    frame(source, 0.0)
    source.seek(source.end)
    frame(source, 0.0)
    whole = await source.item(1, "page-3")
    assert whole.known
    assert whole.status == "failed"
    assert whole.location is not None
    assert whole.location.state == "failed"
    assert len(whole.errors) == 2, "both attempts' errors"
    early = whole.events[2].at
    source.seek(early)
    frame(source, 0.0)
    then = await source.item(1, "page-3")
    assert all(event.at <= early for event in then.events)
    assert len(then.events) < len(whole.events)
    assert then.status != "failed"
    unknown = await source.item(0, "page-99")
    assert not unknown.known


async def test_a_replay_has_no_stacks_and_refuses_commands() -> None:
    source = ReplaySource(recording("mid_run"))
    assert await source.worker_stack(1, "Fetch-W0") is None
    from antflow.runstream.records import Stop

    assert "cannot" in await source.send(Stop())


def test_export_writes_the_failures_as_of_the_position(tmp_path: Path) -> None:
    source = ReplaySource(recording("failures"))
    frame(source, 0.0)
    source.seek(source.end)
    frame(source, 0.0)
    path = tmp_path / "out.jsonl"
    assert source.export(path) == 2
    header, *lines = [json.loads(line) for line in path.read_text().splitlines()]
    assert header["failed"] == 2
    assert {line["id"] for line in lines} == {"page-3", "page-5"}
    assert all(line["status"] == "failed" and "DemoError" in line["error_type"] for line in lines)


# ---------------------------------------------------------------------- trends (issue 14)


def test_a_jump_brings_the_snapshots_leading_up_to_it_for_the_trends() -> None:
    """Opened on its last moment, a replay's sparklines are already drawn: the frame
    carries the snapshots of the minutes before (read through the index)."""
    opened = recording("failures")
    source = ReplaySource(opened, at=opened.ended_at)
    first = frame(source, 0.0)
    assert first.reset
    assert len(first.history) >= 10
    assert [s.at for s in first.history] == sorted(s.at for s in first.history)
    state = RunState()
    state.apply(first)
    trend = state.history.trend(1, "Fetch")
    assert trend is not None
    assert len(trend.finished.samples()) >= 5
    assert sum(trend.finished.samples()) > 0


def test_playing_fast_keeps_every_snapshot_for_the_trends() -> None:
    opened = recording("failures")
    source = ReplaySource(opened, at=opened.started_at, playing=True, speed=64.0)
    state = RunState()
    state.apply(frame(source, 0.0))
    played = frame(source, 0.2)  # 12.8 recorded seconds in one frame
    assert len(played.history) > 1
    state.apply(played)
    trend = state.history.trend(1, "Parse")
    assert trend is not None
    assert len(trend.queue.samples()) >= 8


def test_recording_snapshots_reads_a_stretch_through_the_index() -> None:
    opened = recording("failures")
    every = opened.snapshots(opened.started_at - 1, opened.ended_at)
    lines = (RECORDINGS / "failures.jsonl").read_text().splitlines()
    assert len(every) == sum(line.startswith('{"record":"snapshot"') for line in lines)
    assert all(opened.started_at - 1 < s.at <= opened.ended_at for s in every)
    spaced = opened.snapshots(opened.started_at - 1, opened.ended_at, every=2.0)
    assert len(spaced) < len(every)
    gaps = [b.at - a.at for a, b in pairwise(spaced)]
    assert all(gap >= 2.0 for gap in gaps)
    assert opened.snapshots(opened.ended_at, opened.ended_at + 10) == []


# ------------------------------------------------------- a file that goes on after its run


def _events(opened: Recording) -> list[Event]:
    return [record for record in opened.records() if isinstance(record, Event)]


def _key(event: Event) -> tuple[object, ...]:
    return (event.at, event.item, event.kind, event.stage, event.task, event.attempt)


def test_opened_long_after_its_run_the_log_shows_the_runs_last_events() -> None:
    """The app was left open 40 s after the run: the log shows the run's newest events
    (a frame's worth), not the empty last seconds of the file."""
    opened = recording("lingering")
    events = _events(opened)
    assert opened.ended_at - events[-1].at > 30, "the file goes on long after the run"
    first = frame(ReplaySource(opened, at=opened.ended_at), 0.0)
    assert [_key(e) for e in first.events] == [_key(e) for e in events[-FRAME_EVENTS:]]
    assert [line.text for line in first.logs] == ["(control) Paused the run"]


def test_the_log_after_a_jump_is_the_same_whichever_way_the_position_was_reached() -> None:
    opened = recording("lingering")
    at = opened.ended_at - 5.0
    direct = frame(ReplaySource(opened, at=at), 0.0)
    source = ReplaySource(opened)
    frame(source, 0.0)
    for step in (opened.started_at + 3.0, opened.ended_at, at):  # on, far on, back
        source.seek(step)
        got = frame(source, 0.0)
    assert got.reset
    assert direct.events, "the run's last events, 30 s before the position"
    assert [_key(e) for e in got.events] == [_key(e) for e in direct.events]


def test_the_walk_back_for_events_stops_at_its_bound(monkeypatch: pytest.MonkeyPatch) -> None:
    """A jump never reads the whole file for its log: past `BACKFILL_BYTES` it shows what
    it found."""
    opened = recording("lingering")
    far, _ = opened.newest_before(opened.ended_at, FRAME_EVENTS)
    assert any(isinstance(record, Event) for record in far)
    monkeypatch.setattr(fileformat, "BACKFILL_BYTES", 1)
    near, _ = opened.newest_before(opened.ended_at, FRAME_EVENTS)
    assert not any(isinstance(record, Event) for record in near)


def test_a_run_ends_when_its_pipelines_stop_not_when_its_file_does() -> None:
    opened = recording("lingering")
    last = _events(opened)[-1].at
    source = ReplaySource(opened, at=opened.ended_at)
    ended_at = frame(source, 0.0).status.ended_at
    assert ended_at is not None
    assert last <= ended_at < last + 1.0, "the first snapshot after its last event"
    source.seek(last + 15.0)
    assert frame(source, 0.0).status.ended_at == ended_at
    source.seek(last - 1.0)
    assert frame(source, 0.0).status.ended_at is None, "it runs until then"


def test_a_killed_runs_file_never_says_its_run_ended_even_once_nothing_runs(
    tmp_path: Path,
) -> None:
    """Its script may have gone on to start another pipeline: only an end record says."""
    lines = (RECORDINGS / "lingering.jsonl").read_bytes().splitlines(keepends=True)
    killed = tmp_path / "killed.jsonl"
    killed.write_bytes(b"".join(lines[:-1]))
    opened = Recording.open(killed)
    assert frame(ReplaySource(opened, at=opened.ended_at), 0.0).status.ended_at is None


async def test_a_pipeline_no_snapshot_saw_running_still_ends_the_run_after_it(
    tmp_path: Path,
) -> None:
    # A second pipeline that starts and ends between two snapshot groups is never seen
    # running: the run must not end at the first pipeline's end, before it even started.
    clock = FakeClock(1_700_000_000.0)

    async def takes(seconds: float) -> float:
        clock.advance(seconds)
        return seconds

    stream = RunStream(clock=clock, follow_events=False)
    path = tmp_path / "run.jsonl"
    recorder = Recorder(path, stream, flush_every=3_600.0)  # writes only when told
    recorder.open()
    with observe(stream.attach):
        await Pipeline([Stage("First", 1, [takes])], clock=clock).run([0.5] * 4)
        recorder.flush(snapshot=True)  # the first pipeline, ended
        clock.advance(3.0)
        second_started = clock()
        await Pipeline([Stage("Second", 1, [takes])], clock=clock).run([0.05])
        clock.advance(1.0)
        recorder.flush(snapshot=True)  # both, ended
    recorder.close()
    with Recording.open(path) as recorded:
        end = recorded.idle_since(recorded.ended_at)
        assert end is not None
        assert end >= second_started


# Issue 17.9: a replay opened on its run's end showed its last "task fail" lines without the
# duration the live log had: their starts were before the events the jump reads.
@pytest.mark.parametrize("lookback", [replay_module.LOOKBACK_EVENTS, 0])
def test_attempts_ending_after_a_jump_keep_their_durations(
    monkeypatch: pytest.MonkeyPatch, lookback: int
) -> None:
    opened = recording("failures")
    source = ReplaySource(opened)
    frame(source, 0.0)
    source.seek(opened.ended_at)
    played = [e for e in frame(source, 0.0).events if e.kind in ("complete", "retry", "fail")]
    assert all(e.duration is not None for e in played), "played through: paired as they go"
    durations = {_key(e): e.duration for e in played}
    # Opened on the end, reading only the last few events: the starts are further back.
    monkeypatch.setattr(replay_module, "FRAME_EVENTS", 4)
    monkeypatch.setattr(replay_module, "LOOKBACK_EVENTS", lookback)
    jumped = frame(ReplaySource(opened, at=opened.ended_at), 0.0)
    ends = [e for e in jumped.events if e.kind in ("complete", "retry", "fail")]
    assert ends
    known = [e for e in ends if e.duration is not None]
    assert [e.duration for e in known] == [durations[_key(e)] for e in known]
    if lookback:
        assert known == ends, "every start is among the events just before"
    else:
        assert known, "the snapshots (once a second) saw the long ones running"
