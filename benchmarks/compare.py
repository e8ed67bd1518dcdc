"""How fast two big runs compare, and in how much memory (issue 22: two 1M-item runs in
<= 5 s and <= 300 MB).

Run by hand:  .venv/bin/python benchmarks/compare.py [N] [STAGES]

Writes two recordings of N items (default 1,000,000) through the engine's recording
writer, event by event as a recorder writes a run of a no-op pipeline of STAGES stages
(default 1; 3 is a heavier case: more events per item) whose last stage fails some items.
A real pipeline is not run: one of 1M items takes minutes, and its task times are noisy
where this benchmark needs exact ones to check the newly slow items. The runs differ in
known ways:

- run A: item v fails when v % 97 == 0 ("bad v");
- run B: v fails when v % 89 == 0 ("worse v"), or when v % 97 == 0 and v is even ("bad v");
  every 50,000th item (v % 50_000 == 1) takes 5 ms more: newly slow; 12 workers a stage
  instead of 10: a changed stage setting.

Then, each in a fresh process, three times:

1. ``antflow-tui compare A B --json`` (the reader, one pass over each file, the diff,
   the JSON);
2. the screen's data path: the same reading and diff, then every table the compare
   screen draws and its first screenful of item rows, rendered.

and reports the best and worst wall time and the peak resident memory (B is read in a
child process at the same time as A: its peak, measured on its own, is added), and checks
every count against the rule above.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import antflow
from antflow.runstream import writer as writer_module
from antflow.runstream.records import (
    FORMAT,
    VERSION,
    ErrorRecord,
    Event,
    Header,
    PipelineStarted,
    Snapshot,
    StageConfig,
    StageRow,
)
from antflow.runstream.writer import RecordingWriter

BEGIN = "begin"
FINISH = "finish"
FINISH_HANDOFF = "finish-handoff"
# A live recorder writes the tracker's own records, merged where events follow each
# other (in_progress + task start; task complete + completed [+ queued at the next
# stage]): 2-3 records an item a stage, where events would be 5. The writer takes
# events, so the merged kinds get names here.
writer_module._KINDS.update({BEGIN: 11, FINISH: 13, FINISH_HANDOFF: 14})

WORKERS = 10
SLOW_EVERY = 50_000


BASE_SECONDS = 0.0001
"""Each task attempt's time in both runs (newly slow items take SLOW_SECONDS more in B)."""
SLOW_SECONDS = 0.005
CHUNK = 20_000
"""Items per flush: about what a live recorder writes between two snapshot groups."""


def failed_a(value: int) -> bool:
    return value % 97 == 0


def failed_b(value: int) -> bool:
    return value % 89 == 0 or (value % 97 == 0 and value % 2 == 0)


def error_of(value: int, *, after: bool) -> str | None:
    if after:
        if value % 89 == 0:
            return f"worse {value}"
        if value % 97 == 0 and value % 2 == 0:
            return f"bad {value}"
        return None
    return f"bad {value}" if value % 97 == 0 else None


def record(path: Path, n: int, stages: int, *, after: bool) -> None:
    """Write the recording a run of `n` items would leave, event by event, as the
    recorder writes it (a real pipeline of 1M items with failures takes minutes)."""
    workers = WORKERS + 2 if after else WORKERS
    names = [f"S{index}" for index in range(stages - 1)] + ["Last"]
    configs = tuple(
        StageConfig(
            name=name,
            workers=tuple(f"{name}-W{w}" for w in range(workers)),
            tasks=("noop" if name != "Last" else "last",),
            retry="per_task",
            task_attempts=1,
            task_wait_seconds=0.0,
            stage_attempts=1,
            queue_capacity=2 * workers,
        )
        for name in names
    )
    started_at = 1_700_000_000.0 + (100_000.0 if after else 0.0)
    started = PipelineStarted(pipeline=1, at=started_at, stages=configs, total_items=n)
    header = Header(
        format=FORMAT,
        version=VERSION,
        antflow=antflow.__version__,
        started_at=started_at,
        argv=("bench.py", "--after" if after else "--before"),
        script="bench.py",
    )
    writer = RecordingWriter(path, header)
    writer.write(started)
    number = 0
    done = [0] * stages
    failed = [0] * stages
    seconds = [0.0] * stages
    at = started_at
    tick = BASE_SECONDS / workers
    for first in range(0, n, CHUNK):
        for value in range(first, min(n, first + CHUNK)):
            at += tick
            for index, name in enumerate(names):
                worker = f"{name}-W{value % workers}"
                task = configs[index].tasks[0]
                last = index == stages - 1
                took = BASE_SECONDS
                if last and after and value % SLOW_EVERY == 1:
                    took += SLOW_SECONDS
                began = at + index * BASE_SECONDS
                ended = began + took
                if index == 0:
                    writer.write(Event(1, began, value, "queued", name))
                # What the live recorder writes: the tracker's merged records.
                writer.write(Event(1, began, value, BEGIN, name, worker, task))
                message = error_of(value, after=after) if last else None
                if message is None:
                    done[index] += 1
                    seconds[index] += took
                    kind = FINISH if last else FINISH_HANDOFF
                    writer.write(Event(1, ended, value, kind, name, worker, task))
                    continue
                number += 1
                failed[index] += 1
                writer.write(
                    ErrorRecord(
                        number=number,
                        pipeline=1,
                        at=ended,
                        item=value,
                        stage=name,
                        task=task,
                        attempt=1,
                        type="ValueError",
                        message=message,
                        traceback=f"Traceback (most recent call last):\nValueError: {message}\n",
                    )
                )
                writer.write(
                    Event(
                        pipeline=1,
                        at=ended,
                        item=value,
                        kind="fail",
                        stage=name,
                        worker=worker,
                        task=task,
                        error=number,
                    )
                )
                writer.write(
                    Event(
                        pipeline=1,
                        at=ended,
                        item=value,
                        kind="failed",
                        stage=name,
                        worker=worker,
                        error=number,
                    )
                )
        fed = min(n, first + CHUNK)
        writer.write(
            Snapshot(
                pipeline=1,
                at=at + stages * BASE_SECONDS + SLOW_SECONDS,
                running=fed < n,
                paused=False,
                stopping=False,
                fed=fed,
                processed=done[-1],
                failed=failed[-1],
                in_flight=0,
                unfinished=0,
                total_items=n,
                stages=tuple(
                    StageRow(
                        queued=0,
                        running=0,
                        done=done[i],
                        failed=failed[i],
                        task_seconds=seconds[i],
                        p50=BASE_SECONDS,
                        p95=BASE_SECONDS,
                        max_seconds=BASE_SECONDS
                        + (SLOW_SECONDS if after and i == stages - 1 else 0.0),
                    )
                    for i in range(stages)
                ),
            )
        )
        writer.flush()
    writer.close("finished")


def expected(n: int) -> dict[str, int]:
    def failed_a(v: int) -> bool:
        return v % 97 == 0

    def failed_b(v: int) -> bool:
        return v % 89 == 0 or (v % 97 == 0 and v % 2 == 0)

    fixed = sum(1 for v in range(n) if failed_a(v) and not failed_b(v))
    newly = sum(1 for v in range(n) if failed_b(v) and not failed_a(v))
    still = sum(1 for v in range(n) if failed_a(v) and failed_b(v))
    other = sum(1 for v in range(n) if failed_a(v) and v % 89 == 0)
    slow = sum(1 for v in range(n) if v % SLOW_EVERY == 1 and not failed_b(v))
    return {
        "fixed": fixed,
        "newly_failed": newly,
        "still_failing": still,
        "still_failing_other_error": other,
        "newly_slow": min(slow, 20),
    }


SCREEN_PATH = """
import sys
from rich.console import Console
from antflow.runstream.compare import compare
from antflow.runstream.itemdiff import CHANGE_KINDS
from antflow_tui.compare import present
from antflow_tui.compare.runs import locate, read_both

read_a, read_b = read_both(locate(sys.argv[1], "A"), locate(sys.argv[2], "B"))
runs = [read_a[1], read_b[1]]
comparison = compare(runs[0], runs[1])
console = Console(width=160, file=open("/dev/null", "w"), force_terminal=True)
console.print(present.totals_table(comparison))
console.print(present.stages_table(comparison))
console.print(present.errors_table(comparison))
console.print(present.made_text(comparison))
console.print(present.items_heading(comparison))
shown = 0
for kind in CHANGE_KINDS:
    for change in comparison.items.rows(kind, 48 - shown):
        console.print(present.item_row(change, 160))
        shown += 1
"""


def measured(command: list[str], rounds: int = 3) -> tuple[list[float], float, bytes]:
    """Wall times of `command` run `rounds` times, its largest peak resident memory (MB),
    and the last run's output."""
    timings = []
    peak = 0.0
    out = b""
    for _ in range(rounds):
        with tempfile.TemporaryFile() as sink:
            began = time.perf_counter()
            child = subprocess.Popen(command, stdout=sink, env={**os.environ, "COLUMNS": "120"})
            # wait4: this child's own rusage (ru_maxrss in kB on Linux).
            _pid, status, usage = os.wait4(child.pid, 0)
            timings.append(time.perf_counter() - began)
            child.returncode = os.waitstatus_to_exitcode(status)
            if child.returncode != 0:
                raise SystemExit(f"{command[:3]} exited with {child.returncode}")
            peak = max(peak, usage.ru_maxrss / 1024)
            sink.seek(0)
            out = sink.read()
    return timings, peak, out


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000
    stages = int(sys.argv[2]) if len(sys.argv) > 2 else 1
    tui = Path(sys.executable).with_name("antflow-tui")
    with tempfile.TemporaryDirectory() as folder:
        a, b = Path(folder) / "a.jsonl", Path(folder) / "b.jsonl"
        began = time.perf_counter()
        record(a, n, stages, after=False)
        record(b, n, stages, after=True)
        size = (a.stat().st_size + b.stat().st_size) / 2e6
        print(
            f"two runs of {n:,} items, {stages} stage(s), written in "
            f"{time.perf_counter() - began:.0f} s ({size:,.0f} MB each)"
        )
        timings, peak_json, out = measured([str(tui), "compare", str(a), str(b), "--json"])
        document = json.loads(out)
        screen, peak_screen, _ = measured([sys.executable, "-c", SCREEN_PATH, str(a), str(b)])
        # B is read in a child process (antflow.runstream.summarychild) while A is read:
        # its peak adds to the parent's (wait4's ru_maxrss is the larger of the two).
        child = [sys.executable, "-m", "antflow.runstream.summarychild", str(b)]
        _, peak_child, _ = measured(child, rounds=1)
    counts = document["items"]["counts"]
    want = expected(n)
    for name, value in want.items():
        mark = "ok" if counts[name] == value else f"WRONG (expected {value:,})"
        print(f"  {name:<26} {counts[name]:>9,}  {mark}")
    print(
        f"  compare A B --json       best {min(timings):.2f} s, worst {max(timings):.2f} s "
        f"(target <= 5 s), peak memory {peak_json:,.0f} MB"
    )
    print(
        f"  screen's data path       best {min(screen):.2f} s, worst {max(screen):.2f} s, "
        f"peak memory {peak_screen:,.0f} MB"
    )
    print(
        f"  child reading B          peak memory {peak_child:,.0f} MB: at most "
        f"{max(peak_json, peak_screen) + peak_child:,.0f} MB together (target <= 300 MB)"
    )


if __name__ == "__main__":
    main()
