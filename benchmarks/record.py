"""What recording a run costs, what it takes on disk open and compacted, and how fast a
recording seeks.

Run by hand:  .venv/bin/python benchmarks/record.py [N] [BIG] [ROUNDS]

1. Cost. benchmarks/engine.py's pipeline (3 stages x 10 workers, a bounded tracker, as
   antflow-tui runs it) without a recorder, then recording to a file, in interleaved
   rounds (a slow spell of a shared machine hits both alike), best of ROUNDS (default 9):
   N no-op items (default 200,000; target <= 8 %), and N / 10 items whose task takes
   1 ms (target <= 2 %). Beside the throughput, the event loop thread's CPU time per item
   (`time.thread_time`), which other processes on the machine disturb less. Then the same
   with the outcomes a kept run stores for a resume (each item's result): what the run
   history, on by default in the app, costs.
2. Bytes per event and per item on disk, open (JSON Lines) and compacted.
3. A recording of BIG items (default 1,000,000; 0 skips this part), 3 stages, no
   values: its size open and compacted (target <= 40 bytes per item), the time
   compaction takes, seeking to 20 times across the compacted file (target <= 1 s
   each) and the reader's memory, which must not grow with the file. Then zlib's levels
   against zstandard's on the same frames, when zstandard is installed (it is not a
   dependency: see docs/recording.md).
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import random
import shutil
import sys
import tempfile
import time
import tracemalloc
import zlib
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from antflow import Pipeline, Stage, StatusTracker, observe
from antflow.runstream import Event
from antflow.runstream.compactfile import FRAME_BYTES, frame_body
from antflow.runstream.compaction import compact
from antflow.runstream.fileformat import Recording
from antflow.runstream.recorder import Recorder
from antflow.runstream.stream import RunStream

STAGES = 3
WORKERS = 10


async def noop(value: object) -> object:
    return value


async def one_ms(value: object) -> object:
    await asyncio.sleep(0.001)
    return value


async def run(
    n: int, path: Path | None, task: object = noop, *, outcomes: bool = False
) -> tuple[float, float]:
    """Items per second of wall time and of the loop thread's CPU time."""
    tracker = StatusTracker(max_history_items=10_000)
    pipeline = Pipeline(
        [Stage(f"S{i}", WORKERS, [task]) for i in range(STAGES)],  # type: ignore[list-item]
        collect_results=False,
        status_tracker=tracker,
    )
    recorder = None
    watching: contextlib.AbstractContextManager[object] = contextlib.nullcontext()
    if path is not None:
        stream = RunStream(follow_events=False)
        recorder = Recorder(path, stream, outcomes=outcomes)
        recorder.open()
        watching = observe(stream.attach)
    with watching:
        gc.collect()
        cpu, began = time.thread_time(), time.perf_counter()
        await pipeline.run(range(n))
        elapsed, cpu = time.perf_counter() - began, time.thread_time() - cpu
    if recorder is not None:
        recorder.close()
    return n / elapsed, n / cpu


def cost(n: int, rounds: int, folder: Path, task: object, label: str, target: float) -> Path:
    path = folder / f"cost-{label}.jsonl"
    plain = recorded = plain_cpu = recorded_cpu = kept = kept_cpu = 0.0
    for _ in range(rounds):
        rate, rate_cpu = asyncio.run(run(n, None, task))
        plain, plain_cpu = max(plain, rate), max(plain_cpu, rate_cpu)
        rate, rate_cpu = asyncio.run(run(n, path, task))
        recorded, recorded_cpu = max(recorded, rate), max(recorded_cpu, rate_cpu)
        rate, rate_cpu = asyncio.run(run(n, folder / f"kept-{label}.jsonl", task, outcomes=True))
        kept, kept_cpu = max(kept, rate), max(kept_cpu, rate_cpu)
    print(f"{n:,} {label} items, {STAGES} stages x {WORKERS} workers (best of {rounds})")
    print(f"  headless               {plain:>9,.0f} items/s  ({1e6 / plain_cpu:.2f} us CPU/item)")
    print(
        f"  recording              {recorded:>9,.0f} items/s  ({1e6 / recorded_cpu:.2f} us "
        f"CPU/item)  cost {(1 - recorded / plain) * 100:4.1f} % of the throughput, "
        f"{(1 - recorded_cpu / plain_cpu) * 100:4.1f} % of the CPU (target <= {target:.0f} %)"
    )
    print(
        f"  + outcomes (history)   {kept:>9,.0f} items/s  ({1e6 / kept_cpu:.2f} us "
        f"CPU/item)  cost {(1 - kept / plain) * 100:4.1f} % of the throughput, "
        f"{(1 - kept_cpu / plain_cpu) * 100:4.1f} % of the CPU"
    )
    return path


def on_disk(path: Path, items: int, folder: Path) -> None:
    with Recording.open(path) as recording:
        events = sum(1 for r in recording.records() if isinstance(r, Event))
    size = path.stat().st_size
    compacted = folder / f"compacted-{path.name}"
    shutil.copyfile(path, compacted)
    compact(compacted)
    closed = compacted.stat().st_size
    print(
        f"  on disk                {size / events:>9.1f} bytes/event, {size / items:.0f} "
        f"bytes/item open; {closed / items:.1f} bytes/item compacted"
    )


async def big_recording(n: int, path: Path) -> None:
    async def sometimes_fails(value: int) -> int:
        if value % 97 == 0:
            raise ValueError(f"bad {value}")
        return value

    stream = RunStream(follow_events=False)
    recorder = Recorder(path, stream)
    recorder.open()
    pipeline = Pipeline(
        [
            Stage("Fetch", WORKERS, [noop]),
            Stage("Parse", WORKERS, [sometimes_fails], task_attempts=2, task_wait_seconds=0),
            Stage("Save", WORKERS, [noop]),
        ],
        collect_results=False,
    )
    with observe(stream.attach):
        await pipeline.run(range(n))
    recorder.close()


def seeks(path: Path) -> None:
    gc.collect()
    began = time.perf_counter()
    recording = Recording.open(path)
    opened = time.perf_counter() - began
    start = min(p.at for p in recording.pipelines())
    end = recording.ended_at
    chooser = random.Random(1)  # one generator: twenty different times
    times = sorted(chooser.uniform(start + 1.0, end) for _ in range(20))
    worst = 0.0
    for at in times:
        began = time.perf_counter()
        point = recording.seek(at)
        worst = max(worst, time.perf_counter() - began)
        assert point.snapshots
    recording.close()
    # Memory in a second pass: tracemalloc slows allocation-heavy code several times over.
    gc.collect()
    tracemalloc.start()
    recording = Recording.open(path)
    for at in times:
        recording.seek(at)
    current, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    print(f"    open (end record)    {opened * 1000:>9.0f} ms")
    print(f"    worst of 20 seeks    {worst * 1000:>9.0f} ms (target <= 1000)")
    print(f"    reader memory        {current / 1e6:>9.1f} MB held, {peak / 1e6:.1f} MB peak")
    began = time.perf_counter()
    detail = recording.item(1, 97 * 5)
    print(
        f"    one item's story     {(time.perf_counter() - began) * 1000:>9.0f} ms "
        f"(a scan; {len(detail.events)} events, {len(detail.errors)} errors)"
    )
    recording.close()


def big(n: int, folder: Path) -> None:
    path = folder / "big.jsonl"
    began = time.perf_counter()
    asyncio.run(big_recording(n, path))
    size = path.stat().st_size
    print(
        f"{n:,} items recorded in {time.perf_counter() - began:.1f} s: {size / 1e6:,.0f} MB, "
        f"{size / n:.0f} bytes/item open"
    )
    print("  open:")
    seeks(path)
    plain = path.read_bytes()
    done = compact(path)
    print(
        f"  compacted in {done.seconds:.1f} s: {done.after / 1e6:,.1f} MB, "
        f"{done.after / n:.1f} bytes/item (target <= 40)"
    )
    seeks(path)
    codecs(plain, n)


def codecs(data: bytes, n: int) -> None:
    """zlib against zstandard on the frames compaction stores (columns, not base64)."""
    bodies = []
    at = data.index(b"\n") + 1
    while at < len(data):
        cut = data.rfind(b"\n", at, at + FRAME_BYTES) + 1 or len(data)
        bodies.append(frame_body(data[at:cut]))
        at = cut
    candidates = {
        f"zlib {level}": (lambda body, level=level: zlib.compress(body, level))
        for level in (1, 6, 9)
    }
    try:
        import zstandard  # type: ignore[import-not-found]

        for level in (3, 9):
            candidates[f"zstd {level}"] = zstandard.ZstdCompressor(level=level).compress
    except ImportError:
        print("  (zstandard is not installed: zlib only)")
    for name, squeeze in candidates.items():
        began = time.perf_counter()
        stored = sum(len(squeeze(body)) for body in bodies)
        seconds = time.perf_counter() - began
        print(
            f"  {name:8s}             {stored / n:>9.1f} bytes/item, "
            f"{len(data) / seconds / 1e6:5.0f} MB/s compressing"
        )


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 200_000
    items = int(sys.argv[2]) if len(sys.argv) > 2 else 1_000_000
    rounds = int(sys.argv[3]) if len(sys.argv) > 3 else 9
    with tempfile.TemporaryDirectory() as name:
        folder = Path(name)
        path = cost(n, rounds, folder, noop, "no-op", 8)
        on_disk(path, n, folder)
        slow = max(n // 10, 1_000)
        path = cost(slow, rounds, folder, one_ms, "1 ms", 2)
        on_disk(path, slow, folder)
        if items:  # BIG=0: the cost figures only
            big(items, folder)


if __name__ == "__main__":
    main()
