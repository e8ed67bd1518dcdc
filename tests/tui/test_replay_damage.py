"""Damaged recordings: a clear refusal or a readable prefix, never a traceback or a hang.

Issue 18.11 and 18.12. The fuzz test damages the recordings of tests/tui/recordings
(`tests.tui.damage`: cut, flipped bytes, lines dropped, repeated, swapped or blank,
numbers made huge or negative, values of another type, deep nesting, odd event times,
the end record's offsets moved) and reads each as a replay does. Every case comes from a
seed: ``ANTFLOW_FUZZ_FIRST=N ANTFLOW_FUZZ_CASES=M pytest tests/tui/test_replay_damage.py``
explores further, and a failure names the seeds that reproduce it.

Issue 20 (Disk): the same for compacted recordings, damaged after compaction (their
frames cut, flipped...), and damaged before it (compaction must keep the damage byte for
byte, and the reader take it as it takes it in a plain file); and for a recording this
recorder writes (packed event batches), plain and compacted.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import os
import random
import signal
import tempfile
import tracemalloc
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

import antflow
from antflow import Pipeline, Stage
from antflow.runstream import filelines
from antflow.runstream.compactfile import open_bytes
from antflow.runstream.compaction import CompactionError, compact
from antflow.runstream.fileformat import HEADER_LIMIT, Recording, RecordingError
from antflow_tui.app import make_app
from antflow_tui.options import AppOptions
from antflow_tui.source.replay import ReplaySource
from tests.tui.apps import until
from tests.tui.damage import MUTATIONS, exercise, mutate
from tests.tui.recorded import RECORDINGS

if TYPE_CHECKING:
    from collections.abc import Iterator

SOURCES = sorted(RECORDINGS.glob("*.jsonl"))
SMALL_FRAMES = 4 << 10
"""Frames of the compacted sources (small: a damaged frame must not be the whole file)."""
FIRST = int(os.environ.get("ANTFLOW_FUZZ_FIRST", "0"))
CASES = int(os.environ.get("ANTFLOW_FUZZ_CASES", "400"))
CHUNK = 50
CASE_SECONDS = 5.0
"""A case that reads for longer is a hang (the slowest take a few hundredths)."""


class Hung(Exception):
    pass


@contextlib.contextmanager
def bounded(seconds: float) -> Iterator[None]:
    """Raise `Hung` in the code running here once `seconds` have passed."""

    def hung(*_: Any) -> None:
        raise Hung(f"still reading after {seconds} s")

    previous = signal.signal(signal.SIGALRM, hung)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


@functools.cache
def sources() -> list[tuple[str, bytes]]:
    """The recordings fuzzed: those of tests/tui/recordings, one this recorder writes
    (packed event batches), and each compacted."""
    folder = Path(tempfile.mkdtemp(prefix="antflow-fuzz-"))
    packed = folder / "packed.jsonl"
    asyncio.run(_record_packed(packed))
    plain = [(path.name, path.read_bytes()) for path in (*SOURCES, packed)]
    compacted = []
    for name, data in plain:
        path = folder / f"compacted-{name}"
        path.write_bytes(data)
        compact(path, unfinished=True, frame_bytes=SMALL_FRAMES)
        compacted.append((path.name, path.read_bytes()))
    return plain + compacted


async def _record_packed(path: Path) -> None:
    async def flaky(x: int) -> int:
        if x % 5 == 0:
            raise ValueError(f"bad {x}")
        return x

    pipeline = Pipeline(
        [
            Stage("Fetch", 3, [flaky], task_attempts=2, task_wait_seconds=0),
            Stage("Save", 2, [flaky], task_attempts=1),
        ]
    )
    async with antflow.record(path):
        await pipeline.run([*range(150), *({"id": ("doc", i), "value": i} for i in range(3))])


def damaged(seed: int) -> tuple[str, bytes]:
    """Case `seed`: which recording, how it was damaged, and the damaged bytes."""
    rng = random.Random(seed)
    name, data = sources()[seed % len(sources())]
    how, data = mutate(data, rng)
    return f"{name} {how}", data


def compacted_after_damage(path: Path, data: bytes) -> str:
    """Compact a damaged recording as a crashed run's: the damage is kept byte for byte
    (or the file refused as no recording), and the reader takes it as before."""
    try:
        done = compact(path, unfinished=True, frame_bytes=SMALL_FRAMES)
    except CompactionError:
        assert path.read_bytes() == data
        return "not compacted"
    if done.already:
        assert path.read_bytes() == data
        return "compacted already"
    handle = open_bytes(path, HEADER_LIMIT)
    try:
        assert handle.read() == data
    finally:
        handle.close()
    return "compacted"


# Issue 18.11: of 3,300 mutated recordings 895 crashed the reader or the replay; before
# this fix 114 of the first 1,000 of these cases did.
@pytest.mark.parametrize("chunk", range(FIRST, FIRST + CASES, CHUNK))
def test_damaged_recordings_are_read_or_refused_never_crash_or_hang(
    tmp_path: Path, chunk: int
) -> None:
    outcomes: dict[str, int] = {}
    crashes = []
    path = tmp_path / "damaged.jsonl"
    for seed in range(chunk, min(chunk + CHUNK, FIRST + CASES)):
        how, data = damaged(seed)
        path.write_bytes(data)
        try:
            with bounded(CASE_SECONDS):
                if seed % 3 == 2:
                    how += " then " + compacted_after_damage(path, data)
                outcome = exercise(path)
        except Exception as error:
            crashes.append(f"seed {seed} ({how}): {type(error).__name__}: {error}"[:300])
            continue
        outcomes[outcome] = outcomes.get(outcome, 0) + 1
    assert not crashes, "\n".join(crashes)
    assert outcomes.get("read", 0) > CHUNK // 2, outcomes


def test_the_mutations_cover_every_kind_of_damage() -> None:
    seen = {damaged(seed)[0].split(" ")[1].split("+")[0] for seed in range(FIRST, FIRST + CASES)}
    assert seen == set(MUTATIONS)


# Issue 18.11: the same damage, shown by the app itself (headless), as a user opens it.
@pytest.mark.parametrize("seed", [3, 7, 12, 42, 135, 483])
async def test_the_replay_app_shows_a_damaged_recording(tmp_path: Path, seed: int) -> None:
    how, data = damaged(seed)
    path = tmp_path / "damaged.jsonl"
    path.write_bytes(data)
    try:
        opened = Recording.open(path)
    except RecordingError:
        return
    with opened:
        app = make_app(ReplaySource(opened, name=how, at=opened.ended_at), AppOptions())
        async with app.run_test(size=(100, 30)) as pilot:
            await until(lambda: app.state.status is not None)
            await pilot.press("space", "left_square_bracket", "right", "t")
            await pilot.press("escape", "colon", "0", "enter", "escape", "space")
            await pilot.pause()
            status = app.state.status
            assert status is not None
            assert status.replay is not None
            assert status.replay.damaged == opened.damaged
        assert app.return_code in (0, None), how


# ---------------------------------------------------------------------- one by one

VARIED = RECORDINGS / "varied.jsonl"


def lines_of(name: str = "varied") -> list[bytes]:
    return (RECORDINGS / f"{name}.jsonl").read_bytes().splitlines(keepends=True)


def final_state(path: Path) -> tuple[Any, ...]:
    with Recording.open(path) as opened:
        point = opened.seek(opened.ended_at)
        return (
            {n: (s.fed, s.processed, s.failed) for n, s in point.snapshots.items()},
            {n: sorted(map(str, (f.item for f in fs))) for n, fs in point.failures.items()},
        )


@pytest.mark.parametrize(
    "edit",
    [
        pytest.param(lambda lines: lines[:6] + lines[7:], id="a line deleted"),
        pytest.param(lambda lines: [*lines[:6], lines[6], *lines[6:]], id="a line repeated"),
        pytest.param(
            lambda lines: [*lines[:6], lines[9], *lines[7:9], lines[6], *lines[10:]],
            id="two lines swapped",
        ),
        pytest.param(lambda lines: [*lines[:6], b"\n", *lines[6:]], id="a blank line"),
    ],
)
# Issue 18.11: a complete recording trusted its end record's offsets; a line deleted,
# repeated, swapped or a blank line crashed the replay 62-70 % of the time.
def test_an_index_that_does_not_match_the_file_is_rebuilt_by_a_scan(
    tmp_path: Path, edit: Any
) -> None:
    path = tmp_path / "edited.jsonl"
    path.write_bytes(b"".join(edit(lines_of())))
    with Recording.open(path) as opened:
        assert opened.complete
        assert opened.index_rebuilt
        assert opened.damaged
    intact = final_state(VARIED)
    assert final_state(path)[0] == intact[0]


@pytest.mark.parametrize(
    ("index", "checkpoints"),
    [
        pytest.param([[1700000001.0, -5]], [], id="negative offset"),
        pytest.param([[1700000001.0, 10**9]], [], id="past the file"),
        pytest.param([[1700000003.0, 6000], [1700000001.0, 3000]], [], id="out of order"),
        pytest.param([], [[1700000001.0, 5, 1]], id="a checkpoint mid-line"),
    ],
)
def test_offsets_out_of_place_are_not_trusted(
    tmp_path: Path, index: list[Any], checkpoints: list[Any]
) -> None:
    lines = lines_of()
    end = json.loads(lines[-1])
    end["index"], end["checkpoints"] = index, checkpoints
    lines[-1] = json.dumps(end, separators=(",", ":")).encode() + b"\n"
    path = tmp_path / "offsets.jsonl"
    path.write_bytes(b"".join(lines))
    with Recording.open(path) as opened:
        assert opened.complete
        assert opened.index_rebuilt
    assert final_state(path) == final_state(VARIED)


def test_an_intact_recording_keeps_its_index() -> None:
    with Recording.open(VARIED) as opened:
        assert opened.complete
        assert not opened.index_rebuilt
        assert not opened.damaged


# Issue 18.11: deep nesting and a times column whose length is not a multiple of 8
# crashed the reader; each costs its own line, the rest is read.
@pytest.mark.parametrize(
    "bad_line",
    [
        pytest.param(b"[" * 50_000 + b"]" * 50_000 + b"\n", id="nested 50,000 deep"),
        pytest.param(b'["E",1,[1,2],[0,0],"AAAAAAAAAAAA",[]]\n', id="times not 8 bytes each"),
        pytest.param(b'["E",1,[1],[0],"AAAAAAAA+H8=",[]]\n', id="a time that is infinite"),
        pytest.param(b'{"record":"log","at":"soon","text":1}\n', id="types swapped"),
        pytest.param(b'["E",1,[[{}]],[0],"AAAAAAAAAAA=",[]]\n', id="an id no recorder writes"),
    ],
)
def test_a_damaged_line_costs_only_itself(tmp_path: Path, bad_line: bytes) -> None:
    lines = lines_of()
    lines.insert(8, bad_line)
    path = tmp_path / "bad.jsonl"
    path.write_bytes(b"".join(lines))
    with Recording.open(path) as opened:
        records = list(opened.records())
        assert opened.damaged
    with Recording.open(VARIED) as intact:
        assert len(records) == len(list(intact.records()))


# Issue 18.12: one 1 GB line needed 2-4 GB to open. A line longer than the reader's
# bound is passed over without being held.
def test_a_line_longer_than_the_bound_is_passed_over_never_held(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(filelines, "LINE_LIMIT", 64 << 10)
    lines = lines_of()
    huge = b'{"record":"log","at":1700000002.0,"text":"' + b"x" * (8 << 20) + b'"}\n'
    lines.insert(8, huge)
    path = tmp_path / "huge.jsonl"
    path.write_bytes(b"".join(lines))
    tracemalloc.start()
    try:
        with Recording.open(path) as opened:
            records = list(opened.records())
            assert opened.damaged
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 2 << 20, f"{peak:,} bytes held reading an 8 MB line"
    assert not any(getattr(r, "text", "").startswith("xxx") for r in records)
    with Recording.open(VARIED) as intact:
        assert len(records) == len(list(intact.records()))


def test_a_first_line_longer_than_any_header_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "long.jsonl"
    path.write_bytes(b'{"format":"antflow-run","x":"' + b"y" * HEADER_LIMIT + b'"}\n')
    with pytest.raises(RecordingError, match="first line is longer than"):
        Recording.open(path)
