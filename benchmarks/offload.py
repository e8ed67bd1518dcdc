"""A CPU-bound stage in the event loop, on a process pool, and on a Dask cluster.

Run by hand (needs the dask extra):  .venv/bin/python benchmarks/offload.py [N]

The same stage (a pure-Python function: shingles, a MinHash signature, zlib and sha256
over a generated document) runs three ways, in one run, at two sizes of work (~50 ms and
~200 ms an item; N items of the first, N/3 of the second):

* in the loop: an ``async def`` task calling the function directly;
* ``on_executor`` with a 2-process ``ProcessPoolExecutor``;
* ``on_dask`` with a 2-process ``LocalCluster`` (one thread per worker process).

For each it prints the throughput, the ratio to the in-loop run (target: offloaded
>= 1.7x on this 2-core machine) and the worst event-loop stall during the run, seen by a
ticker task that sleeps 5 ms and records how late it wakes up (in the loop, the work
freezes every other task, a dashboard included). Then the per-item overhead of each
backend on a no-op function: one call at a time (the round trip), and with 8 in flight.
Pools and clusters are started and warmed up before any timing; each measurement is the
best of three runs, interleaved.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import logging
import os
import random
import sys
import time
import zlib
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from distributed import Client, LocalCluster

from antflow import Pipeline, Stage
from antflow.offload import on_dask, on_executor

if TYPE_CHECKING:
    from antflow.stage import TaskFunc

PROCESSES = 2
STAGE_WORKERS = 4
"""Twice the processes, so a call is always waiting when one finishes (the same for all)."""
TICK = 0.005
TRIALS = 3
"""Runs of each measurement, interleaved; the best throughput counts (other processes on
this shared machine only ever slow a run down), and the worst stall of all."""
SIZES = {"~50 ms": 24, "~200 ms": 180}
"""`crunch` rounds for each size of work."""
NOOP_ITEMS = {"in the loop": 20_000, "process pool": 2_000, "dask": 1_000}
VOCABULARY = tuple(f"w{n}" for n in range(2_000))


def crunch(seed: int, rounds: int) -> str:
    """Pure-Python CPU work on a generated document: ~20 ms plus ~1 ms a round, here."""
    rng = random.Random(seed)
    words = rng.choices(VOCABULARY, k=10_000)
    shingles = {" ".join(words[i : i + 3]).encode() for i in range(len(words) - 2)}
    signature = [min(zlib.crc32(shingle, k) for shingle in shingles) for k in range(rounds)]
    packed = zlib.compress(" ".join(words).encode(), 9)
    return hashlib.sha256(packed + repr(signature).encode()).hexdigest()


def noop(value: Any) -> Any:
    return value


def in_loop(rounds: int) -> TaskFunc:
    async def crunch_in_loop(seed: int) -> str:
        return crunch(seed, rounds)

    return crunch_in_loop


async def noop_in_loop(value: Any) -> Any:
    return value


class Ticker:
    """Measures how late the event loop runs a task that sleeps `TICK` at a time."""

    def __init__(self) -> None:
        self.worst = 0.0
        self._task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> Ticker:
        self._task = asyncio.create_task(self._tick())
        await asyncio.sleep(0)
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._task is not None
        self._task.cancel()
        await asyncio.gather(self._task, return_exceptions=True)

    async def _tick(self) -> None:
        while True:
            began = time.perf_counter()
            await asyncio.sleep(TICK)
            self.worst = max(self.worst, time.perf_counter() - began - TICK)


async def run_stage(task: TaskFunc, n: int, workers: int) -> tuple[float, float]:
    """Items per second and the worst loop stall (seconds) for `n` items through `task`."""
    pipeline = Pipeline([Stage("S", workers, [task], task_attempts=1)], collect_results=False)
    async with Ticker() as ticker:
        began = time.perf_counter()
        await pipeline.run(range(n))
        elapsed = time.perf_counter() - began
    stats = pipeline.get_stats()
    assert stats.items_processed == n, stats
    return n / elapsed, ticker.worst


async def main(n: int) -> None:
    print(f"{os.cpu_count()} cores; load average {os.getloadavg()[0]:.2f} at the start")
    with ProcessPoolExecutor(PROCESSES) as pool:
        async with (
            LocalCluster(
                n_workers=PROCESSES,
                threads_per_worker=1,
                processes=True,
                asynchronous=True,
                dashboard_address=":0",
                silence_logs=logging.ERROR,
            ) as cluster,
            Client(cluster, asynchronous=True) as client,
        ):
            noops: dict[str, TaskFunc] = {
                "in the loop": noop_in_loop,
                "process pool": on_executor(pool, noop),
                "dask": on_dask(client, noop),
            }
            for size, rounds in SIZES.items():
                work = functools.partial(crunch, rounds=rounds)
                began = time.perf_counter()
                work(0)
                took = 1000 * (time.perf_counter() - began)
                count = n if size == "~50 ms" else max(n // 3, 8)
                print(f"\nCPU-bound stage, {size} an item ({took:.0f} ms here), {count} items")
                heavy: dict[str, TaskFunc] = {
                    "in the loop": in_loop(rounds),
                    "process pool": on_executor(pool, work),
                    "dask": on_dask(client, work),
                }
                best = dict.fromkeys(heavy, 0.0)
                stalls = dict.fromkeys(heavy, 0.0)
                for task in heavy.values():
                    # Warm up: processes started, functions imported, connections made.
                    await run_stage(task, PROCESSES * 2, STAGE_WORKERS)
                for _ in range(TRIALS):
                    for name, task in heavy.items():
                        rate, stall = await run_stage(task, count, STAGE_WORKERS)
                        best[name] = max(best[name], rate)
                        stalls[name] = max(stalls[name], stall)
                print(f"{'':<16}{'items/s':>10}{'vs loop':>10}{'worst stall':>14}")
                base = best["in the loop"]
                for name, rate in best.items():
                    ratio = rate / base
                    print(f"{name:<16}{rate:>10.1f}{ratio:>9.2f}x{1000 * stalls[name]:>11.0f} ms")

            print(f"\n{'no-op overhead':<16}{'1 in flight':>14}{'8 in flight':>14}")
            for name, task in noops.items():
                count = NOOP_ITEMS[name]
                await run_stage(task, 50, 8)
                one, _ = await run_stage(task, count // 4, 1)
                eight, _ = await run_stage(task, count, 8)
                print(f"{name:<16}{_per_item(one):>14}{_per_item(eight):>14}")
    print(f"\nload average {os.getloadavg()[0]:.2f} at the end")


def _per_item(rate: float) -> str:
    micros = 1e6 / rate
    return f"{micros / 1000:.2f} ms" if micros >= 1000 else f"{micros:.0f} us"


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]) if len(sys.argv) > 1 else 90))
