"""What serving a run costs it: no viewer, and one viewer in another process.

Run by hand:  .venv/bin/python benchmarks/serve.py [N]

benchmarks/engine.py's pipeline (N no-op items, 3 stages x 10 workers) with a bounded
tracker: headless, inside ``antflow.serve()`` with nobody attached (target: <= 5 %
slower), and with one viewer reading everything at the default interval from another
process (target: <= 15 %).
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from antflow import Pipeline, Stage, StatusTracker, serve

STAGES = 3
WORKERS = 10
ROOT = str(Path(__file__).resolve().parents[1])

VIEWER = """
import asyncio, sys
from antflow.runstream.client import Viewer
async def main():
    viewer = await Viewer.connect(sys.argv[1], sys.argv[2])
    print("attached", flush=True)
    received = 0
    while await viewer.receive() is not None:
        received += 1
    print(received, flush=True)
asyncio.run(main())
"""


async def noop(value: object) -> object:
    return value


def pipeline() -> Pipeline:
    return Pipeline(
        [Stage(f"S{i}", WORKERS, [noop]) for i in range(STAGES)],
        collect_results=False,
        status_tracker=StatusTracker(max_history_items=10_000),
    )


async def headless(n: int) -> float:
    line = pipeline()
    began = time.perf_counter()
    await line.run(range(n))
    return n / (time.perf_counter() - began)


async def served(n: int, viewers: int) -> float:
    async with serve() as server:
        assert server.served is not None
        processes = []
        for _ in range(viewers):
            process = await asyncio.create_subprocess_exec(
                sys.executable,
                "-c",
                VIEWER,
                server.address,
                server.served.read_token,
                stdout=subprocess.PIPE,
                env={**os.environ, "PYTHONPATH": ROOT},
            )
            assert process.stdout is not None
            await process.stdout.readline()
            processes.append(process)
        line = pipeline()
        began = time.perf_counter()
        await line.run(range(n))
        rate = n / (time.perf_counter() - began)
    for process in processes:
        await process.wait()
    return rate


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 200_000
    rounds = 5
    os.environ["XDG_RUNTIME_DIR"] = tempfile.mkdtemp()
    bare = alone = watched = 0.0
    for _ in range(rounds):
        bare = max(bare, asyncio.run(headless(n)))
        alone = max(alone, asyncio.run(served(n, 0)))
        watched = max(watched, asyncio.run(served(n, 1)))
    print(f"{n:,} no-op items, {STAGES} stages x {WORKERS} workers (best of {rounds})")
    print(f"  headless               {bare:>9,.0f} items/s")
    print(
        f"  served, no viewer      {alone:>9,.0f} items/s  cost {(1 - alone / bare) * 100:4.1f} %"
    )
    print(
        f"  served, one viewer     {watched:>9,.0f} items/s  "
        f"cost {(1 - watched / bare) * 100:4.1f} %"
    )


if __name__ == "__main__":
    main()
