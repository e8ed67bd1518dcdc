"""What ``antflow-tui runs`` costs with many runs kept: the screen's first list, and a jump
to the oldest run.

Run by hand:  .venv/bin/python benchmarks/runs_screen.py [N]

N runs (default 1,000) are kept through `History` in a temporary folder; the runs app is
then started headless (Textual's test driver, 140x40) and timed until its list shows all
N runs, and for `end` (the cursor to the oldest run, redrawn). Target (issue 20): the
list of 1,000 runs in <= 1 s.
"""

from __future__ import annotations

import asyncio
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from antflow.history import Counts, History
from antflow_tui.runs.screen import RunList, RunsApp


def keep_runs(home: Path, count: int) -> History:
    history = History(home)
    for number in range(count):
        handle = history.begin(f"/jobs/job{number % 7}.py", ["antflow-tui", "job.py"], "fp")
        handle.finish("finished", Counts(fed=100, done=97, failed=3))
    return history


async def timed(history: History, count: int) -> tuple[float, float]:
    started = time.perf_counter()
    app = RunsApp(History(history.home))
    async with app.run_test(size=(140, 40)) as pilot:
        listing = app.runs_screen.query_one(RunList)
        while len(listing.runs) < count:
            await pilot.pause()
        await pilot.pause()
        shown = time.perf_counter() - started
        jumped_at = time.perf_counter()
        await pilot.press("end")
        await pilot.pause()
        jumped = time.perf_counter() - jumped_at
        await pilot.press("q")
    return shown, jumped


def main() -> None:
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 1_000
    with tempfile.TemporaryDirectory() as folder:
        history = keep_runs(Path(folder) / ".antflow", count)
        shown, jumped = asyncio.run(timed(history, count))
    print(f"{count:,} runs: listed on screen in {shown:.3f} s; end (the oldest) in {jumped:.3f} s")


if __name__ == "__main__":
    main()
