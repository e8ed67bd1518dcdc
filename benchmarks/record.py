"""What recording a run costs, what it takes on disk, and how fast a recording seeks.

Run by hand:  .venv/bin/python benchmarks/record.py [N] [BIG]

1. benchmarks/engine.py's pipeline (N no-op items, 3 stages x 10 workers) with a bounded
   tracker, as antflow-tui runs it: without a recorder, then recording to a file, then
   recording with the outcomes a kept run stores for a resume (each item's result).
   Target: recording costs <= 10 % of the throughput.
2. Bytes per event on disk (target <= 60), and msgspec against the stdlib json for the
   same event batches.
3. A recording of BIG items (default 1,000,000): seeking to 20 times across it (target
   <= 1 s each), and the reader's memory, which must not grow with the file.
"""

from __future__ import annotations

import asyncio
import gc
import json
import random
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import msgspec

from antflow import Pipeline, Stage, StatusTracker, observe
from antflow.runstream import Event
from antflow.runstream.fileformat import Recording
from antflow.runstream.recorder import Recorder
from antflow.runstream.stream import RunStream

STAGES = 3
WORKERS = 10


async def noop(value: object) -> object:
    return value


async def run(n: int, path: Path | None, *, outcomes: bool = False) -> float:
    tracker = StatusTracker(max_history_items=10_000)
    pipeline = Pipeline(
        [Stage(f"S{i}", WORKERS, [noop]) for i in range(STAGES)],
        collect_results=False,
        status_tracker=tracker,
    )
    recorder = None
    if path is not None:
        stream = RunStream(follow_events=False)
        recorder = Recorder(path, stream, outcomes=outcomes)
        recorder.open()
        with observe(stream.attach):
            began = time.perf_counter()
            await pipeline.run(range(n))
            elapsed = time.perf_counter() - began
        recorder.close()
    else:
        began = time.perf_counter()
        await pipeline.run(range(n))
        elapsed = time.perf_counter() - began
    return n / elapsed


def cost(n: int, folder: Path) -> None:
    rounds = 5
    plain = recorded = kept = 0.0
    path = folder / "cost.jsonl"
    for _ in range(rounds):
        plain = max(plain, asyncio.run(run(n, None)))
        recorded = max(recorded, asyncio.run(run(n, path)))
        kept = max(kept, asyncio.run(run(n, folder / "kept.jsonl", outcomes=True)))
    shape = f"{STAGES} stages x {WORKERS} workers"
    print(f"{n:,} no-op items, {shape}, bounded tracker (best of {rounds})")
    print(f"  headless               {plain:>9,.0f} items/s")
    print(
        f"  recording              {recorded:>9,.0f} items/s  "
        f"cost {(1 - recorded / plain) * 100:4.1f} % (target <= 10 %)"
    )
    print(
        f"  + outcomes (history)   {kept:>9,.0f} items/s  "
        f"cost {(1 - kept / plain) * 100:4.1f} % (results stored for a resume)"
    )
    with Recording.open(path) as recording:
        events = sum(1 for r in recording.records() if isinstance(r, Event))
    size = path.stat().st_size
    print(f"  on disk                {size / events:>9.1f} bytes/event (target <= 60)")


def encoders() -> None:
    raw = [
        (f"item-{i}", 4410931740718 + i % 7, 1764553619.123456 + i * 1e-5, 0.000123, None)
        for i in range(200_000)
    ]
    encode = msgspec.json.Encoder().encode
    began = time.perf_counter()
    encode(["E", 1, raw])
    fast = time.perf_counter() - began
    began = time.perf_counter()
    json.dumps(["E", 1, raw], separators=(",", ":"))
    slow = time.perf_counter() - began
    print(
        f"  encoding a batch       msgspec {fast / len(raw) * 1e6:.2f} us/record, "
        f"json {slow / len(raw) * 1e6:.2f} us/record ({slow / fast:.1f}x)"
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


def seeking(n: int, folder: Path) -> None:
    path = folder / "big.jsonl"
    began = time.perf_counter()
    asyncio.run(big_recording(n, path))
    print(
        f"{n:,} items recorded in {time.perf_counter() - began:.1f} s: "
        f"{path.stat().st_size / 1e6:,.0f} MB"
    )
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
    print(f"  open (end record)      {opened * 1000:>9.0f} ms")
    print(f"  worst of 20 seeks      {worst * 1000:>9.0f} ms (target <= 1000)")
    print(f"  reader memory          {current / 1e6:>9.1f} MB held, {peak / 1e6:.1f} MB peak")
    began = time.perf_counter()
    detail = recording.item(1, 97 * 5)
    print(
        f"  one item's story       {(time.perf_counter() - began) * 1000:>9.0f} ms "
        f"(a scan; {len(detail.events)} events, {len(detail.errors)} errors)"
    )
    recording.close()


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 200_000
    big = int(sys.argv[2]) if len(sys.argv) > 2 else 1_000_000
    with tempfile.TemporaryDirectory() as folder:
        cost(n, Path(folder))
        encoders()
        seeking(big, Path(folder))


if __name__ == "__main__":
    main()
