"""Recordings of two runs with known differences, written record by record (exact times),
for the comparison's tests."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import antflow
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

if TYPE_CHECKING:
    from pathlib import Path

START = 1_800_000_000.0


@dataclass(frozen=True, slots=True)
class Outcome:
    """How one item ended in a run: its task time, and its error (None: completed)."""

    seconds: float = 0.1
    error: tuple[str, str] | None = None
    """(type, message) of the error it failed with."""


def write_run(
    path: Path,
    outcomes: dict[object, Outcome],
    *,
    workers: int = 2,
    started_at: float = START,
    argv: tuple[str, ...] = ("job.py",),
    script_sha256: str | None = "a" * 64,
) -> Path:
    """A finished run of one stage ``Work`` (task ``work``), one item after the other."""
    config = StageConfig(
        name="Work",
        workers=tuple(f"Work-W{index}" for index in range(workers)),
        tasks=("work",),
        retry="per_task",
        task_attempts=1,
        task_wait_seconds=0.0,
        stage_attempts=1,
        queue_capacity=2 * workers,
    )
    header = Header(
        format=FORMAT,
        version=VERSION,
        antflow=antflow.__version__,
        started_at=started_at,
        argv=argv,
        script="job.py",
        script_sha256=script_sha256,
    )
    writer = RecordingWriter(path, header)
    writer.write(
        PipelineStarted(pipeline=1, at=started_at, stages=(config,), total_items=len(outcomes))
    )
    at = started_at
    done = failed = number = 0
    for index, (item, outcome) in enumerate(outcomes.items()):
        worker = config.workers[index % workers]
        writer.write(Event(1, at, item, "queued", "Work"))
        writer.write(Event(1, at, item, "in_progress", "Work", worker))
        writer.write(Event(1, at, item, "start", "Work", worker, "work"))
        ended = at + outcome.seconds
        if outcome.error is None:
            done += 1
            writer.write(Event(1, ended, item, "complete", "Work", worker, "work"))
            writer.write(Event(1, ended, item, "completed", "Work", worker))
        else:
            failed += 1
            number += 1
            kind, message = outcome.error
            writer.write(
                ErrorRecord(
                    number=number,
                    pipeline=1,
                    at=ended,
                    item=item,
                    stage="Work",
                    task="work",
                    attempt=1,
                    type=kind,
                    message=message,
                    traceback=f"Traceback (most recent call last):\n{kind}: {message}\n",
                )
            )
            writer.write(Event(1, ended, item, "fail", "Work", worker, "work", error=number))
            writer.write(Event(1, ended, item, "failed", "Work", worker, error=number))
        at = ended
    writer.write(
        Snapshot(
            pipeline=1,
            at=at,
            running=False,
            paused=False,
            stopping=False,
            fed=len(outcomes),
            processed=done,
            failed=failed,
            in_flight=0,
            unfinished=0,
            total_items=len(outcomes),
            stages=(StageRow(queued=0, running=0, done=done, failed=failed),),
        )
    )
    writer.close("finished")
    return path


def before_and_after(folder: Path) -> tuple[Path, Path]:
    """Run A and run B of ten items (0-9), differing in known ways:

    - 1 fails in A only (fixed); 2 and 8 fail in B only (newly failed, ``KeyError``);
    - 3 fails in both with the same error; 4 in both with another error in B;
    - 5 takes 0.5 s more in B, 6 0.2 s more (newly slow, 5 first); 7 a hair more (not);
    - B has 3 workers where A had 2, another script hash and another command line.
    """
    bad = ("ValueError", "bad row 17")
    a = {item: Outcome() for item in range(10)}
    a[1] = Outcome(error=bad)
    a[3] = Outcome(error=bad)
    a[4] = Outcome(error=bad)
    b = {item: Outcome() for item in range(10)}
    b[2] = Outcome(error=("KeyError", "'price'"))
    b[8] = Outcome(error=("KeyError", "'price'"))
    b[3] = Outcome(error=("ValueError", "bad row 99"))
    b[4] = Outcome(error=("TimeoutError", "timed out"))
    b[5] = Outcome(seconds=0.6)
    b[6] = Outcome(seconds=0.3)
    b[7] = Outcome(seconds=0.1000001)
    path_a = write_run(folder / "a.jsonl", a)
    path_b = write_run(
        folder / "b.jsonl",
        b,
        workers=3,
        started_at=START + 3600,
        argv=("job.py", "--fast"),
        script_sha256="b" * 64,
    )
    return path_a, path_b
