"""What a recording does when its file fails it, and what it bounds.

Issue 18, points 10 and 12: a full disk or a deleted file stops the recording with one
warning and releases what it held (the run goes on); messages, tracebacks, log lines and
task statuses are stored bounded; ids JSON has no number for are kept distinct.
"""

from __future__ import annotations

import errno
import logging
import math
import os
from pathlib import Path
from typing import Any

import msgspec
import pytest

from antflow import Pipeline, Stage, StatusTracker, observe, set_task_status
from antflow.runstream import ReprKey, recordingfile
from antflow.runstream.fileformat import Recording
from antflow.runstream.recorder import Recorder
from antflow.runstream.records import (
    LOG_LINE_LIMIT,
    MESSAGE_LIMIT,
    STATUS_LIMIT,
    TRACEBACK_LIMIT,
    ErrorRecord,
    Header,
    LogLine,
    bounded_error,
    clip,
    item_key,
)
from antflow.runstream.stream import RunStream
from antflow.runstream.writer import RecordingWriter
from tests.engine.helpers import no_wait


async def echo(x: Any) -> Any:
    return x


class FullDisk:
    """A file that fails every write past `limit` bytes as a full disk does."""

    def __init__(self, file: Any, limit: int | None = None) -> None:
        self._file = file
        self.limit = limit
        self.written = 0

    def write(self, data: bytes) -> int:
        if self.limit is not None and self.written + len(data) > self.limit:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        self.written += len(data)
        return int(self._file.write(data))

    def __getattr__(self, name: str) -> Any:
        return getattr(self._file, name)


def recorder_of(path: Path, tracker: StatusTracker) -> tuple[Recorder, RunStream, Pipeline]:
    """A recorder whose timer never fires: the test says when it flushes."""
    stream = RunStream(follow_events=False)
    recorder = Recorder(path, stream, flush_every=3_600.0)
    pipeline = Pipeline([Stage("S", 2, [echo])], status_tracker=tracker)
    return recorder, stream, pipeline


def stopped_warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if "stopped:" in r.getMessage()]


# Issue 18.10: a full disk was silent, and the journal was never drained again (1.5M items
# ended at 675 MB): one warning, the journal let go, the run goes on.
async def test_a_full_disk_stops_the_recording_with_one_warning_and_lets_go(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    disks: list[FullDisk] = []

    def open_on_a_disk(path: Any, mode: str) -> FullDisk:
        disks.append(FullDisk(open(path, mode)))  # noqa: SIM115 - the recorder closes it
        return disks[-1]

    monkeypatch.setattr(recordingfile, "open", open_on_a_disk, raising=False)
    tracker = StatusTracker(max_history_items=10)
    path = tmp_path / "run.jsonl"
    recorder, stream, pipeline = recorder_of(path, tracker)
    recorder.open()
    with observe(stream.attach):
        await pipeline.run(range(50))
        recorder.flush(snapshot=True)
        disks[0].limit = recorder.file.offset  # full once what was flushed so far is written
        await pipeline.run(range(100, 150))
        recorder.flush(snapshot=True)  # the writer thread meets the full disk
        recorder.file.finish()  # ...and ends
        assert recorder.broken
        with caplog.at_level(logging.WARNING):
            recorder.flush()
            assert tracker._journal is None, "the journal is let go"
            await pipeline.run(range(200, 300))
            recorder.flush(snapshot=True)
            recorder.close()
    assert len(pipeline.results) == 200, "the run goes on"
    (warning,) = stopped_warnings(caplog)
    assert warning == (
        f"recording {path} stopped: the disk is full (the file holds what was written "
        "before). The run goes on unrecorded."
    )
    with Recording.open(path) as recording:
        assert not recording.complete
        completed = {r.item for r in recording.records() if getattr(r, "kind", "") == "completed"}
    assert set(range(50)) <= completed


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="a Linux device")
async def test_recording_to_dev_full_warns_once_and_the_run_goes_on(
    caplog: pytest.LogCaptureFixture,
) -> None:
    tracker = StatusTracker()
    recorder, stream, pipeline = recorder_of(Path("/dev/full"), tracker)
    with caplog.at_level(logging.WARNING):
        recorder.open()
        with observe(stream.attach):
            await pipeline.run(range(20))
            recorder.file.finish()
            recorder.flush()
            await pipeline.run(range(20, 40))
            recorder.close()
    assert tracker._journal is None
    assert len(pipeline.results) == 40
    assert len(stopped_warnings(caplog)) == 1


# Issue 18.10: a recording deleted mid-run was written on into a file nobody can open,
# silently: a warning now, and the recording stops.
async def test_a_recording_deleted_mid_run_is_a_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    tracker = StatusTracker()
    path = tmp_path / "run.jsonl"
    recorder, stream, pipeline = recorder_of(path, tracker)
    recorder.open()
    with observe(stream.attach), caplog.at_level(logging.WARNING):
        await pipeline.run(range(10))
        path.unlink()
        recorder.flush(snapshot=True)
        recorder.file.finish()
        await pipeline.run(range(10, 20))
        recorder.close()
    (warning,) = stopped_warnings(caplog)
    assert "the file was deleted while it was written" in warning
    assert tracker._journal is None


def test_a_viewers_recording_on_a_full_disk_warns_and_keeps_nothing(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    header = Header(format="antflow-run", version=1, antflow="0", started_at=1.0)
    writer = RecordingWriter(tmp_path / "viewer.jsonl", header)
    writer.file._file = FullDisk(writer.file._file, limit=0)
    with caplog.at_level(logging.WARNING):
        for n in range(3):
            writer.write(LogLine(at=2.0 + n, text="a line"))
            writer.flush()
        writer.close()
    assert writer.failure is not None
    assert len(stopped_warnings(caplog)) == 1
    assert writer._lines == []


# Issue 18.12: a 20 MB exception message made 80 MB of file for one item.
async def test_a_huge_message_is_stored_bounded_with_a_note(tmp_path: Path) -> None:
    huge = "m" * (20 << 20)

    async def fail(x: Any) -> Any:
        raise ValueError(huge)

    async def chatty(x: Any) -> Any:
        set_task_status("s" * (STATUS_LIMIT * 10))
        return x

    path = tmp_path / "run.jsonl"
    stream = RunStream(follow_events=False)
    recorder = Recorder(path, stream, flush_every=3_600.0)
    recorder.open()
    pipeline = Pipeline(
        [Stage("Chat", 1, [chatty]), Stage("Fail", 1, [fail], task_attempts=2)], sleep=no_wait
    )
    with observe(stream.attach):
        stream.log("l" * (LOG_LINE_LIMIT * 3))
        await pipeline.run([1])
        recorder.close()
    assert path.stat().st_size < 1 << 20, f"{path.stat().st_size:,} bytes for one item"
    with Recording.open(path) as recording:
        (error, *_) = recording.item(1, 0).errors
        logs = [r for r in recording.records() if isinstance(r, LogLine)]
        assert recording.seek(recording.ended_at).failures[1][0].message == error.message
    assert error.message.startswith("m" * 100)
    assert error.message.endswith(
        f"[{len(huge) - MESSAGE_LIMIT:,} of {len(huge):,} characters cut] …\n"
    )
    # A traceback keeps its start (where it was raised) and its end.
    assert error.traceback.startswith("Traceback (most recent call last):")
    assert "raise ValueError(huge)" in error.traceback
    assert " characters cut] …\n" in error.traceback
    assert error.traceback.endswith("m" * 100 + "\n")
    assert len(error.traceback) < TRACEBACK_LIMIT + 100
    assert logs[0].text == "l" * LOG_LINE_LIMIT + (
        f"\n… [{LOG_LINE_LIMIT * 2:,} of {LOG_LINE_LIMIT * 3:,} characters cut] …\n"
    )


def test_clip_keeps_the_start_or_the_start_and_the_end() -> None:
    assert clip("short", 10) == "short"
    assert clip("x" * 30, 10) == "x" * 10 + "\n… [20 of 30 characters cut] …\n"
    kept = clip("a" * 20 + "b" * 20, 8, keep_end=True)
    assert kept.startswith("aa")
    assert kept.endswith("b" * 6)
    record = ErrorRecord(1, 1, 0.0, 1, "S", None, 1, "E", "m" * (MESSAGE_LIMIT + 1), "")
    assert len(bounded_error(record).message) < MESSAGE_LIMIT + 100
    small = ErrorRecord(1, 1, 0.0, 1, "S", None, 1, "E", "m", "t")
    assert bounded_error(small) is small


# Issue 18.12: a NaN id was recorded as null, the same as a None id.
@pytest.mark.parametrize(
    ("item_id", "key"),
    [
        (math.nan, ReprKey("nan")),
        (math.inf, ReprKey("inf")),
        (-math.inf, ReprKey("-inf")),
        (None, None),
        (1.5, 1.5),
    ],
)
def test_ids_json_has_no_number_for_are_kept_distinct(item_id: Any, key: Any) -> None:
    assert item_key(item_id) == key


async def test_a_nan_id_is_recorded_distinct_from_none(tmp_path: Path) -> None:
    path = tmp_path / "run.jsonl"
    stream = RunStream(follow_events=False)
    recorder = Recorder(path, stream, flush_every=3_600.0)
    recorder.open()
    pipeline = Pipeline([Stage("S", 1, [echo])])
    huge = 10**5000
    with observe(stream.attach):
        await pipeline.run([{"id": math.nan, "value": 1}, {"id": None, "value": 2}])
        await pipeline.run([{"id": huge, "value": 3}, {"id": 7, "value": 4}])
        recorder.close()
    with Recording.open(path) as recording:
        completed = [r.item for r in recording.records() if getattr(r, "kind", "") == "completed"]
    assert completed[:2] == [ReprKey("nan"), None]
    assert isinstance(completed[2], ReprKey), "an int no JSON reader takes back: its repr"
    assert completed[3] == 7, "the rest of its batch is kept"
    assert msgspec.json.encode(completed)  # everything read back is JSON again


# Issue 18.10: under antflow.record (and ANTFLOW_RECORD) the recorder's warning, like any
# warning of a script that configured no logging, went nowhere: the handler recording log
# lines on the root logger kept logging's last resort (standard error) from showing it.
async def test_recording_keeps_warnings_on_standard_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import antflow

    monkeypatch.setattr(logging.getLogger(), "handlers", [])  # a script without logging
    async with antflow.record(tmp_path / "run.jsonl"):
        logging.getLogger("job").warning("a warning of the script")
    assert capsys.readouterr().err == "a warning of the script\n"
    with Recording.open(tmp_path / "run.jsonl") as recording:
        texts = [r.text for r in recording.records() if isinstance(r, LogLine)]
    assert texts == ["a warning of the script"]
