"""Engine throughput and tracker memory, against a bare asyncio worker pool.

Run by hand:  .venv/bin/python benchmarks/engine.py [N]

Pushes N no-op items through 3 stages x 10 workers, first through a bare pool of
asyncio.Queue workers doing the same work (bounded queues of the same capacity), then
through antflow without a tracker, then with a full-history StatusTracker; prints items/s
and the ratios. Then measures the tracker's memory per item with tracemalloc, and checks
that a bounded tracker stays flat.
"""

from __future__ import annotations

import asyncio
import gc
import sys
import time
import tracemalloc
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from antflow import Pipeline, Stage, StatusTracker

STAGES = 3
WORKERS = 10
CAPACITY = 10 * WORKERS


async def noop(value: object) -> object:
    return value


async def bare_pool(n: int) -> float:
    """The floor: the same flow with nothing but asyncio.Queue and a loop per worker."""
    queues: list[asyncio.Queue[object]] = [asyncio.Queue(CAPACITY) for _ in range(STAGES)]
    done = asyncio.Event()
    finished = 0

    async def worker(index: int) -> None:
        nonlocal finished
        source = queues[index]
        target = queues[index + 1] if index + 1 < STAGES else None
        while True:
            item = await source.get()
            result = await noop(item)
            if target is not None:
                await target.put(result)
            else:
                finished += 1
                if finished == n:
                    done.set()

    tasks = [asyncio.create_task(worker(s)) for s in range(STAGES) for _ in range(WORKERS)]
    began = time.perf_counter()
    for item in range(n):
        await queues[0].put(item)
    await done.wait()
    elapsed = time.perf_counter() - began
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    return n / elapsed


def make_pipeline(tracker: StatusTracker | None) -> Pipeline:
    stages = [Stage(f"S{i}", WORKERS, [noop]) for i in range(STAGES)]
    return Pipeline(stages, collect_results=False, status_tracker=tracker)


async def antflow_rate(n: int, tracker: StatusTracker | None) -> float:
    pipeline = make_pipeline(tracker)
    began = time.perf_counter()
    await pipeline.run(range(n))
    elapsed = time.perf_counter() - began
    stats = pipeline.get_stats()
    assert stats.items_processed == n, stats
    return n / elapsed


async def tracker_bytes_per_item(n: int, max_history: int | None = None) -> tuple[float, int]:
    gc.collect()
    tracemalloc.start()
    tracker = StatusTracker(max_history_items=max_history)
    pipeline = make_pipeline(tracker)
    before = tracemalloc.get_traced_memory()[0]
    await pipeline.run(range(n))
    del pipeline
    gc.collect()
    after = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    assert sum(tracker.get_stats().values()) == n
    return (after - before) / n, tracker.items_in_history


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 200_000
    rounds = 5
    print(f"{n:,} no-op items through {STAGES} stages x {WORKERS} workers (best of {rounds})")
    # Rounds interleave the three runs, so a slow spell of the machine hits them alike.
    bare = plain = tracked = 0.0
    for _ in range(rounds):
        bare = max(bare, asyncio.run(bare_pool(n)))
        plain = max(plain, asyncio.run(antflow_rate(n, None)))
        tracked = max(tracked, asyncio.run(antflow_rate(n, StatusTracker())))
    print(f"  bare asyncio pool      {bare:>9,.0f} items/s")
    print(f"  antflow, no tracker    {plain:>9,.0f} items/s  {plain / bare:.2f}x (target >= 0.5)")
    print(
        f"  antflow, full tracker  {tracked:>9,.0f} items/s  {tracked / bare:.2f}x (target >= 0.25)"
    )

    per_item, held = asyncio.run(tracker_bytes_per_item(n))
    print(f"  tracker history        {per_item:>9,.0f} bytes/item (target <= 600); {held:,} held")
    big = max(n, 1_000_000)
    per_item_bounded, held_bounded = asyncio.run(tracker_bytes_per_item(big, max_history=10_000))
    print(
        f"  bounded tracker (10k)  {per_item_bounded * big / 1e6:>9,.1f} MB after {big:,} items;"
        f" {held_bounded:,} held"
    )


if __name__ == "__main__":
    main()
