"""Compacted recordings: the same bytes in a tenth of the disk, read as any recording.

Issue 20 ("Disk"): a closed run is compacted to <= 40 bytes per item and still seeks
fast. The reader must not tell a compacted file from the one it was made of, a crash or a
full disk while compacting must leave the recording as it was, and damage must give a
readable prefix or the one documented error.
"""

from __future__ import annotations

import asyncio
import errno
import os
from typing import TYPE_CHECKING, Any

import pytest

import antflow
from antflow import Pipeline, Stage, observe
from antflow.runstream import Event, compactfile, compaction
from antflow.runstream.compactfile import MAGIC, is_compacted, open_bytes
from antflow.runstream.compaction import CompactionError, compact, compact_later
from antflow.runstream.fileformat import Recording, RecordingError
from antflow.runstream.recorder import Recorder
from antflow.runstream.stream import RunStream

if TYPE_CHECKING:
    from pathlib import Path


class ParseError(Exception):
    pass


async def parse(x: int) -> int:
    if x % 7 == 0:
        raise ParseError(f"cannot parse {x}")
    return x


async def echo(x: Any) -> Any:
    return x


def record(path: Path, items: int = 3_000) -> bytes:
    """A finished run of three stages, some items failing; the recording's bytes."""

    async def run() -> None:
        pipeline = Pipeline(
            [
                Stage("Fetch", 4, [echo]),
                Stage("Parse", 4, [parse], task_attempts=2, task_wait_seconds=0),
                Stage("Save", 2, [echo]),
            ]
        )
        async with antflow.record(path):
            await pipeline.run(range(items))

    asyncio.run(run())
    return path.read_bytes()


def everything(path: Path) -> tuple[Any, ...]:
    """What a replay reads of a recording, every way it reads it."""
    with Recording.open(path) as opened:
        end = opened.ended_at
        start = min(p.at for p in opened.pipelines())
        middle = (start + end) / 2
        point = opened.seek(middle)
        return (
            opened.complete,
            opened.torn,
            list(opened.records()),
            opened.window(start, middle, 100),
            opened.newest_before(end, 50),
            opened.snapshots(start - 1, end + 1),
            (point.snapshots, point.failures),
            opened.seek(end).failures,
            opened.item(1, 7),
            opened.item(1, 8),
            opened.idle_since(end),
            list(opened.scan(("batch", "error", "snapshot", "usage"))),
        )


@pytest.fixture(scope="module")
def recorded(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, bytes]:
    path = tmp_path_factory.mktemp("recorded") / "run.jsonl"
    return path, record(path)


def copy_of(recorded: tuple[Path, bytes], folder: Path) -> Path:
    path = folder / "run.jsonl"
    path.write_bytes(recorded[1])
    return path


# Issue 20 (Disk): a closed run compacted, read exactly as the recording it was.
def test_a_compacted_recording_reads_as_the_recording_it_was_made_of(
    recorded: tuple[Path, bytes], tmp_path: Path
) -> None:
    path = copy_of(recorded, tmp_path)
    done = compact(path)
    assert not done.already
    assert done.before == len(recorded[1])
    assert done.after == path.stat().st_size
    assert done.after * 5 < done.before
    assert is_compacted(path)
    assert not is_compacted(recorded[0])
    handle = open_bytes(path, 1 << 20)
    try:
        assert handle.read() == recorded[1]
        assert handle.pread(40, 1000) == recorded[1][1000:1040]
        assert handle.size == len(recorded[1])
    finally:
        handle.close()
    with Recording.open(path) as opened:
        assert not opened.damaged
        assert not opened.index_rebuilt
    assert everything(path) == everything(recorded[0])


def test_its_first_line_is_the_recordings_header_as_it_was(
    recorded: tuple[Path, bytes], tmp_path: Path
) -> None:
    # What reads a run's header without the reader (the run history) reads it still.
    path = copy_of(recorded, tmp_path)
    compact(path)
    header = recorded[1][: recorded[1].index(b"\n") + 1]
    assert path.read_bytes().startswith(header + MAGIC)


def test_compacting_twice_changes_nothing(recorded: tuple[Path, bytes], tmp_path: Path) -> None:
    path = copy_of(recorded, tmp_path)
    compact(path)
    before = path.read_bytes()
    again = compact(path)
    assert again.already
    assert path.read_bytes() == before


def test_lines_of_any_kind_come_back_as_they_were(tmp_path: Path) -> None:
    # Lines this antflow does not know (a later version's), a packed batch whose base64
    # is not the one its words give, and a last line cut short: all kept byte for byte.
    data = (
        b'{"record":"header","format":"antflow-run","version":1,"started_at":1.0}\n'
        b'{"record":"result","item":3,"value":{"x":[1,2,3]}}\n'
        b'["R",1,"kwEC",[]]\n'
        b'["R",1,"kwECAw==",[]]\n'
        + b'{"record":"log","at":2.0,"text":"'
        + b"y" * 300_000
        + b'"}\n'
        + b"\xff\xfe not json at all\n"
        + b'{"record":"log","at":3.0,"te'
    )
    path = tmp_path / "odd.jsonl"
    path.write_bytes(data)
    compact(path, unfinished=True)
    handle = open_bytes(path, 1 << 20)
    try:
        assert handle.read() == data
    finally:
        handle.close()


def test_a_recording_without_its_end_is_left_alone_unless_its_writer_is_gone(
    recorded: tuple[Path, bytes], tmp_path: Path
) -> None:
    lines = recorded[1].splitlines(keepends=True)
    crashed = b"".join(lines[:-2]) + lines[-2][:100]
    path = tmp_path / "crashed.jsonl"
    path.write_bytes(crashed)
    with pytest.raises(CompactionError, match="no end record"):
        compact(path)
    assert path.read_bytes() == crashed
    compact(path, unfinished=True)
    with Recording.open(path) as opened:
        assert not opened.complete
        assert opened.torn
        assert opened.pipelines()
    plain = tmp_path / "plain.jsonl"
    plain.write_bytes(crashed)
    assert everything(path) == everything(plain)


@pytest.mark.parametrize(
    "content", [b"", b"hello\n", b'{"record":"log"}\n', b"\x00" * 100], ids=str
)
def test_what_is_not_a_recording_is_refused(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "x.jsonl"
    path.write_bytes(content)
    with pytest.raises(CompactionError, match="not an antflow recording"):
        compact(path, unfinished=True)
    assert path.read_bytes() == content


def test_a_link_is_not_followed(recorded: tuple[Path, bytes], tmp_path: Path) -> None:
    target = copy_of(recorded, tmp_path)
    link = tmp_path / "link.jsonl"
    link.symlink_to(target)
    with pytest.raises(CompactionError, match="cannot open"):
        compact(link)
    assert target.read_bytes() == recorded[1]


def test_what_is_not_a_file_is_refused_without_waiting(tmp_path: Path) -> None:
    fifo = tmp_path / "fifo.jsonl"
    os.mkfifo(fifo)
    with pytest.raises(CompactionError, match="not a file"):
        compact(fifo)
    with pytest.raises(CompactionError, match="not a file"):
        compact(tmp_path)


def test_a_full_disk_leaves_the_recording_as_it_was(
    recorded: tuple[Path, bytes], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = copy_of(recorded, tmp_path)

    def full(descriptor: int) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "fsync", full)
    with pytest.raises(CompactionError, match="the disk is full"):
        compact(path)
    assert path.read_bytes() == recorded[1]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run.jsonl"]


def test_a_crash_while_compacting_leaves_the_recording_and_the_next_one_tidies(
    recorded: tuple[Path, bytes], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = copy_of(recorded, tmp_path)
    # What a killed compaction leaves: its half-written file beside the recording.
    leftover = tmp_path / ".run.jsonl.compacting-0badc0de"
    leftover.write_bytes(b"half")
    os.utime(leftover, (0, 0))
    compact(path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run.jsonl"]
    assert everything(path) == everything(recorded[0])


def test_a_recording_written_to_meanwhile_is_left_alone(
    recorded: tuple[Path, bytes], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = copy_of(recorded, tmp_path)
    frames = compaction._frames

    def still_written(source: Any, size: int) -> Any:
        with path.open("ab") as writer:
            writer.write(b'{"record":"log","at":1.0,"text":"late"}\n')
        yield from frames(source, size)

    monkeypatch.setattr(compaction, "_frames", still_written)
    with pytest.raises(CompactionError, match="written to while it was compacted"):
        compact(path)
    assert not is_compacted(path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run.jsonl"]


# ---------------------------------------------------------------------- damage


def compacted_bytes(recorded: tuple[Path, bytes], folder: Path) -> bytes:
    path = copy_of(recorded, folder)
    compact(path, frame_bytes=64 << 10)
    return path.read_bytes()


def frame_offsets(data: bytes) -> list[int]:
    offsets = []
    at = data.index(MAGIC) + len(MAGIC)
    while at < len(data):
        offsets.append(at)
        stored = int.from_bytes(data[at + 4 : at + 8], "little")
        at += compactfile.FRAME_HEAD.size + stored
    return offsets


def test_a_frame_that_does_not_decompress_costs_only_its_lines(
    recorded: tuple[Path, bytes], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = bytearray(compacted_bytes(recorded, tmp_path))
    offsets = frame_offsets(bytes(data))
    assert len(offsets) > 3
    second = offsets[1] + compactfile.FRAME_HEAD.size
    data[second + 10 : second + 20] = b"\x00" * 10
    path = tmp_path / "damaged.jsonl"
    path.write_bytes(bytes(data))
    with Recording.open(path) as opened:
        records = list(opened.records())
        assert opened.damaged
        assert opened.complete  # the frames after it read as they were
    with Recording.open(recorded[0]) as intact:
        assert 0 < len(records) < len(list(intact.records()))


@pytest.mark.parametrize("where", ["in a frame's head", "in a frame's bytes", "in the magic"])
def test_a_compacted_file_cut_short_gives_a_readable_prefix(
    recorded: tuple[Path, bytes], tmp_path: Path, monkeypatch: pytest.MonkeyPatch, where: str
) -> None:
    data = compacted_bytes(recorded, tmp_path)
    offsets = frame_offsets(data)
    cut = {
        "in a frame's head": offsets[2] + 5,
        "in a frame's bytes": offsets[2] + 100,
        "in the magic": data.index(MAGIC) + 3,
    }[where]
    path = tmp_path / "cut.jsonl"
    path.write_bytes(data[:cut])
    with Recording.open(path) as opened:
        assert not opened.complete
        list(opened.records())
        opened.seek(opened.ended_at)


def test_a_compacted_file_cut_at_any_byte_is_read_or_refused(tmp_path: Path) -> None:
    source = tmp_path / "small.jsonl"
    record(source, items=40)
    compact(source)
    data = source.read_bytes()
    path = tmp_path / "cut.jsonl"
    for size in range(0, len(data) + 1, 7):
        path.write_bytes(data[:size])
        try:
            opened = Recording.open(path)
        except RecordingError:
            continue
        with opened:
            list(opened.records())
            opened.seek(opened.ended_at)


# ---------------------------------------------------------------------- when it runs


def test_a_recorder_asked_to_compacts_its_file_once_closed(tmp_path: Path) -> None:
    path = tmp_path / "run.jsonl"

    async def run() -> Recorder:
        stream = RunStream()
        recorder = Recorder(path, stream, compact=True)
        recorder.open()
        with observe(stream.attach):
            await Pipeline([Stage("A", 2, [echo])]).run(range(500))
        recorder.close()
        return recorder

    recorder = asyncio.run(run())
    assert recorder.compaction is not None
    recorder.compaction.join(10)
    assert is_compacted(path)
    with Recording.open(path) as opened:
        done = [r for r in opened.records() if isinstance(r, Event) and r.kind == "completed"]
    assert len(done) == 500


def test_a_recorder_not_asked_to_leaves_json_lines(tmp_path: Path) -> None:
    path = tmp_path / "run.jsonl"
    record(path, items=20)
    assert not is_compacted(path)


def test_compacting_later_logs_what_it_cannot_do_and_raises_nothing(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "x.jsonl"
    path.write_bytes(b"not a recording\n")
    thread = compact_later(path)
    thread.join(10)
    assert not thread.is_alive()
    assert "not an antflow recording" in caplog.text
