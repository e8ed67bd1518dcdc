"""How soon a resume of a big run feeds its first item.

Run by hand:  .venv/bin/python benchmarks/resume.py [N] [DONE]

1. A kept run (``antflow.keep_history``) of N items (default 1,000,000) through three
   no-op stages, the middle one durable, stopped once a share DONE of them completed
   (default 0.5): their results and their durable outputs stored, the rest unfinished.
2. The same script resumed (``resume="last"``) in a fresh process: the time from the
   start of the resume to the first item fed into a stage (target <= 2 s), which comes
   after every item done earlier was counted, split into reading the plan and the
   feeding of the items done earlier; then the whole resumed run.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

JOB = textwrap.dedent(
    """
    import asyncio, json, sys, time
    began = time.perf_counter()
    import antflow
    from antflow import Pipeline, Stage

    N = int(sys.argv[1])
    RESUME = sys.argv[2] == "resume"
    STOP = int(N * float(sys.argv[3]))
    times = {"import": time.perf_counter() - began}

    async def noop(value):
        return value

    async def last(value):
        if not RESUME and pipeline.get_stats().items_processed >= STOP:
            await pipeline.shutdown(graceful=False)
        return value

    pipeline = Pipeline(
        [
            Stage("Fetch", 10, [noop]),
            Stage("Ask", 10, [noop], durable=True),
            Stage("Save", 10, [last]),
        ]
    )

    def watch(started):
        def fed(item_id, item):
            if "first_fed" not in times:
                times["first_fed"] = time.perf_counter() - times["resuming"]
                times["first_fed_id"] = item_id
                times["done_earlier_then"] = started.get_stats().items_done_earlier
        started.probe.on_fed(fed)

    async def main():
        with antflow.observe(watch):
            times["resuming"] = time.perf_counter()
            async with antflow.keep_history(resume="last" if RESUME else None) as keeper:
                times["plan"] = time.perf_counter() - times["resuming"]
                run_began = time.perf_counter()
                results = await pipeline.run(range(N))
                times["run"] = time.perf_counter() - run_began
        stats = pipeline.get_stats()
        times.update(
            results=len(results),
            processed=stats.items_processed,
            done_earlier=stats.items_done_earlier,
            unfinished=stats.items_unfinished,
            resumed_with=keeper.description,
        )
        times.pop("resuming")
        print(json.dumps(times))

    asyncio.run(main())
    """
)


def run(folder: Path, n: int, mode: str, done: float) -> dict[str, object]:
    env = {**os.environ, "ANTFLOW_HOME": str(folder / "history"), "PYTHONPATH": str(ROOT)}
    env.pop("ANTFLOW_HISTORY", None)
    env.pop("ANTFLOW_RESUME", None)
    script = folder / "job.py"
    script.write_text(JOB)
    done = subprocess.run(
        [sys.executable, str(script), str(n), mode, str(done)],
        env=env,
        cwd=folder,
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(done.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000
    done = float(sys.argv[2]) if len(sys.argv) > 2 else 0.5
    with tempfile.TemporaryDirectory() as name:
        folder = Path(name)
        began = time.perf_counter()
        first = run(folder, n, "first", done)
        size = sum(f.stat().st_size for f in (folder / "history" / "runs").iterdir())
        print(
            f"{n:,} items kept, stopped at {first['processed']:,} completed "
            f"({first['unfinished']:,} unfinished) in {time.perf_counter() - began:.1f} s; "
            f"recording {size / 1e6:,.0f} MB"
        )
        resumed = run(folder, n, "resume", done)
        print(f"resumed: {resumed['resumed_with']}")
        print(f"  import antflow         {resumed['import'] * 1000:>8.0f} ms")
        print(f"  read the plan          {resumed['plan'] * 1000:>8.0f} ms")
        print(
            f"  first item fed         {resumed['first_fed'] * 1000:>8.0f} ms from the start of "
            f"the resume (target <= 2000), item {resumed['first_fed_id']:,}, after "
            f"{resumed['done_earlier_then']:,} counted done earlier"
        )
        print(
            f"  the resumed run        {resumed['run']:>8.1f} s: {resumed['processed']:,} "
            f"completed, {resumed['done_earlier']:,} done earlier, "
            f"{resumed['results']:,} results returned"
        )


if __name__ == "__main__":
    main()
