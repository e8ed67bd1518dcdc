"""Record the small runs the snapshot tests replay: ``python -m tests.tui.recordings.make``.

Each run is the demo's gated pipeline (`antflow_tui.demo.GatedRun`) on its fake clock,
driven to a fixed moment and recorded through the live source, so the files (and the
screens drawn from them) are the same on every machine. Paths in tracebacks and await
stacks are made relative to the repository, as a user's working folder would show them.

Re-record only after a change to what is recorded, and review the snapshot changes it
brings as pictures.
"""

from __future__ import annotations

import asyncio
import json
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

import msgspec

from antflow import Pipeline, Stage, observe
from antflow.runstream.recorder import Recorder
from antflow_tui.demo import GatedRun, settle
from antflow_tui.live.runner import Job, MainJob, PipelineJob
from antflow_tui.live.source import LiveSource
from tests.tui.costly import ITEMS as ITEMS_COSTLY
from tests.tui.costly import PRICES, CostlyRun
from tests.tui.limited import LimitedRun
from tests.vtime import VirtualTime

if TYPE_CHECKING:
    from collections.abc import Callable

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[2]
ITEMS = [{"id": f"page-{n}", "value": n} for n in range(8)]


def _recorded(job: Job, path: Path, clock: Callable[[], float]) -> tuple[LiveSource, Recorder]:
    """The live source of `job`, recorded to `path` only when told (`Recorder.flush`): the
    engine's recorder, its timer set too far off to ever write by itself."""
    source = LiveSource(job, clock=clock, stop_grace=0.0)
    recorder = Recorder(path, source.stream, flush_every=3_600.0)
    source.recorder = recorder  # opened as the source starts
    return source, recorder


def _source(run: GatedRun, path: Path) -> tuple[LiveSource, Recorder]:
    job = PipelineJob("demo.py", run.pipeline, run.items, len(run.items))
    return _recorded(job, path, run.clock)


def _killed(source: LiveSource, recorder: Recorder, path: Path) -> None:
    """Leave the recording as a killed process does: what was written, with no end."""
    recorder.close("killed")
    source.recorder = None
    lines = path.read_bytes().splitlines(keepends=True)
    assert b'"record":"end"' in lines[-1]
    path.write_bytes(b"".join(lines[:-1]))


async def _until(condition: Callable[[], bool]) -> None:
    for _ in range(5_000):
        if condition():
            return
        await asyncio.sleep(0)
    raise AssertionError("the run never reached the moment to record")


def _busy(run: GatedRun, worker: str) -> bool:
    return run.pipeline.get_worker_states()[worker].status == "busy"


async def _mid_run(run: GatedRun) -> None:
    """page-0 is through every stage; page-1 waits in Save; page-2 failed in Fetch (twice);
    page-3 is parsing; page-4, page-5 and page-6 are fetching; page-7 is queued."""
    await _until(lambda: _busy(run, "Fetch-W2"))
    run.fail("Fetch", 2, "HTTP 500 from https://example.test/page-2 [red]boom[/red]")
    run.release("Fetch", 0, 1, 2, 3)
    await _until(lambda: run.pipeline.get_stats().items_failed == 1)
    run.release("Parse", 0, 1)
    run.release("Save", 0)
    await _until(lambda: run.pipeline.get_stats().items_processed == 1 and _busy(run, "Save-W0"))
    await _until(lambda: _busy(run, "Parse-W0") or _busy(run, "Parse-W1"))
    await _until(lambda: all(_busy(run, f"Fetch-W{n}") for n in range(3)))
    await settle()


async def _finish(
    run: GatedRun, source: LiveSource, recorder: Recorder, failing: dict[str, int]
) -> None:
    """Let the items through one at a time, recording a snapshot after each step (a replay
    has a state to show at every moment, as a recorder's snapshot every second gives)."""
    for stage, value in failing.items():
        run.fail(stage, value, f"{stage} refused item {value}")
    for value in range(len(run.items)):
        for stage in ("Fetch", "Parse", "Save"):
            run.release(stage, value)
            await settle()
            recorder.flush(snapshot=True)
    await _until(lambda: source.ended_at is not None)


async def _stop(source: LiveSource) -> None:
    await source.stop(force=True)


async def mid_run(path: Path, *, paused: bool = False, later: float = 0.0) -> dict[str, Any]:
    """The mid-run moment (`paused`: the whole run paused then; `later`: that many seconds
    on, nothing having moved). Returns the busy workers' await stacks. Two of the fetches
    report their progress: one of a known total, one without."""
    run = GatedRun(list(ITEMS))
    run.progress[("Fetch", 4)] = (3, 8)
    run.progress[("Fetch", 5)] = (1_500, None)
    source, recorder = _source(run, path)
    source.start()
    await _mid_run(run)
    if paused:
        await source.send(_pause())
        await settle()
    run.clock.advance(later)
    recorder.flush(snapshot=True)
    stacks = {
        name: msgspec.to_builtins(source.stream.worker_stack(1, name))
        for name in ("Fetch-W0", "Fetch-W1", "Fetch-W2", "Parse-W0", "Save-W0")
        if _busy(run, name)
    }
    _killed(source, recorder, path)  # the recording ends mid-run: the stop is not in it
    await _stop(source)
    return stacks


def _pause() -> Any:
    from antflow.runstream.records import Pause

    return Pause()


async def finished(path: Path, failing: dict[str, int]) -> None:
    run = GatedRun(list(ITEMS))
    source, recorder = _source(run, path)
    source.start()
    await _until(lambda: source.current is not None)
    await _finish(run, source, recorder, failing)
    source.mark_closed()


async def lingering(path: Path, *, idle: int = 40) -> None:
    """The finished run with failures, its app then left open `idle` seconds (the file
    goes on, a snapshot a second, and a control given after the end) before it closes."""
    run = GatedRun(list(ITEMS))
    source, recorder = _source(run, path)
    source.start()
    await _until(lambda: source.current is not None)
    await _finish(run, source, recorder, {"Fetch": 3, "Parse": 5})
    for second in range(idle):
        run.clock.advance(1.0)
        if second == idle // 2:
            await source.send(_pause())
        recorder.flush(snapshot=True)
    source.mark_closed()


async def two_pipelines(path: Path) -> None:
    """An ETL-like main(): a first pipeline that finished (one row failed validation), a
    second one running (its two workers busy)."""
    clock = GatedRun([]).clock
    gate = asyncio.get_running_loop().create_future()

    async def extract(row: int) -> int:
        clock.advance(0.25)
        return row

    async def transform(row: int) -> int:
        clock.advance(0.25)
        if row == 3:
            raise ValueError(f"amount of row {row} is not a number")
        return row

    async def total_for(currency: str) -> str:
        await gate
        return currency

    async def main() -> None:
        etl = Pipeline(
            [
                Stage("Extract", 2, [extract]),
                Stage("Transform", 2, [transform], task_attempts=1),
            ],
            clock=clock,
        )
        await etl.run(list(range(6)))
        report = Pipeline([Stage("Report", 2, [total_for])], clock=clock)
        await report.run(["EUR", "USD", "GBP"])

    source, recorder = _recorded(MainJob("etl_main.py", main), path, clock)
    source.start()
    await _until(lambda: len(source.attached) == 2)
    await _until(lambda: source.attached[1].pipeline.get_stats().items_in_flight == 3)
    await settle()
    recorder.flush(snapshot=True)
    _killed(source, recorder, path)  # the recording ends here, the report running
    gate.set_result(None)
    await _until(lambda: source.ended_at is not None)


class _Point:
    """An id that is not a JSON scalar: recorded as its repr."""

    def __init__(self, x: int) -> None:
        self.x = x

    def __hash__(self) -> int:
        return hash(self.x)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _Point) and other.x == self.x

    def __repr__(self) -> str:
        return f"Point({self.x})"


async def varied(path: Path) -> None:
    """Every kind of line and id a recording holds, for the damage tests: int, str, tuple,
    repr and unicode ids, values, retries, failures with tracebacks, log lines, a control
    and a second pipeline on the same tracker, over several snapshot groups."""
    from antflow import StatusTracker
    from antflow.runstream.records import Pause
    from antflow.runstream.stream import RunStream

    clock = GatedRun([]).clock
    tracker = StatusTracker()

    async def fetch(value: Any) -> Any:
        clock.advance(0.2)
        if value in (3, 7):
            raise ConnectionError(f"fetch of {value} refused [red]\u00e9[/red]\nline two")
        return value

    async def parse(value: Any) -> Any:
        clock.advance(0.3)
        if value == 5:
            raise ValueError("Ünparsable: " + "x" * 300)
        return value

    stages = [
        Stage("Fetch", 2, [fetch], task_attempts=2, task_wait_seconds=0),
        Stage("Parse", 1, [parse], task_attempts=1),
    ]
    first = Pipeline(stages, status_tracker=tracker, clock=clock)
    second = Pipeline(
        [Stage("Store", 1, [parse], task_attempts=1)], status_tracker=tracker, clock=clock
    )
    stream = RunStream(values=True, clock=clock, script="varied.py")
    recorder = Recorder(path, stream, flush_every=3_600.0)
    recorder.open()
    ids: list[Any] = [0, "page-1", (2, "b"), 3, _Point(4), 5, "ünï-6", 7, -8, 9.5]
    items = [{"id": i, "value": n} for n, i in enumerate(ids)]
    with observe(stream.attach):
        for chunk in (items[:4], items[4:]):
            await first.run(chunk)
            stream.log("a line the script printed \x1b[31mred\x1b[0m")
            clock.advance(1.0)
            recorder.flush(snapshot=True)
        await stream.execute(Pause())
        await second.run([5, 6])
        clock.advance(1.0)
        recorder.flush(snapshot=True)
    recorder.close()


async def limited(path: Path) -> None:
    """A rate-limited run (`tests.tui.limited`, in virtual time), recorded every half
    second until just after its first 429: the cool-down counting down, the adaptive
    concurrency cut back, a call cut by its timeout, tokens reported."""
    run = LimitedRun()
    source = run.source()
    recorder = Recorder(path, source.stream)
    source.recorder = recorder  # opened as the source starts
    source.start()
    await run.refused.wait()
    assert run.pipeline.get_limit_snapshot().stages[1].rate_limited_retries == 1
    recorder.flush(snapshot=True)
    _killed(source, recorder, path)  # the recording ends mid-run: the stop is not in it
    await _stop(source)


def _relative(path: Path) -> None:
    """Tracebacks read as from the repository's folder (not this machine's), and the
    header names no process of this machine: the files only change with what they hold.
    Lines change length, so the end record's byte offsets are moved with them."""
    old_lines = path.read_bytes().splitlines(keepends=True)
    new_lines = []
    moved: dict[int, int] = {}
    old_offset = new_offset = 0
    for line in old_lines:
        text = line.decode("utf-8").replace(f"{ROOT}/", "")
        text = re.sub(r'"argv":\[[^]]*\],"pid":\d+', '"argv":[],"pid":0', text, count=1)
        new = text.encode("utf-8")
        moved[old_offset] = new_offset
        old_offset += len(line)
        new_offset += len(new)
        new_lines.append(new)
    last = json.loads(new_lines[-1])
    if last.get("record") == "end":
        last["index"] = [[at, moved[offset]] for at, offset in last["index"]]
        last["checkpoints"] = [[at, moved[offset], n] for at, offset, n in last["checkpoints"]]
        last["names"] = [moved[offset] for offset in last["names"]]
        new_lines[-1] = json.dumps(last, separators=(",", ":")).encode("utf-8") + b"\n"
    path.write_bytes(b"".join(new_lines))


async def budget(path: Path) -> None:
    """A run paused by its budget (`tests.tui.costly`): three calls spent 450 of its 450
    tokens ($0.03), two wait for it (issue 22)."""
    from antflow import Budget

    run = CostlyRun()
    run.pipeline.set_budget(Budget(tokens=450))
    items = [{"id": f"q-{n}", "value": n} for n in range(ITEMS_COSTLY)]
    source, recorder = _recorded(
        PipelineJob("ask.py", run.pipeline, items, len(items)), path, run.clock
    )
    source.start()
    await _until(lambda: bool(run.started))
    run.release(0, 1, 2)
    await _until(lambda: getattr(run.pipeline.probe.budget(), "paused", False))
    await settle()
    recorder.flush(snapshot=True)
    _killed(source, recorder, path)
    await _stop(source)


def make_budget() -> None:
    """The recording of a run paused by its budget, priced by the test's prices."""
    from antflow import use_prices

    use_prices(PRICES)
    asyncio.run(budget(HERE / "budget.jsonl"))
    _relative(HERE / "budget.jsonl")


def make_limited() -> None:
    """The rate-limited recording, on a virtual-time loop of its own."""
    VirtualTime().run(limited(HERE / "limited.jsonl"))
    _relative(HERE / "limited.jsonl")


async def main() -> None:
    stacks = await mid_run(HERE / "mid_run.jsonl")
    (HERE / "mid_run.stacks.json").write_text(
        json.dumps(stacks, indent=1).replace(f"{ROOT}/", "") + "\n", encoding="utf-8"
    )
    await mid_run(HERE / "paused.jsonl", paused=True)
    await mid_run(HERE / "stuck.jsonl", later=120.0)
    await finished(HERE / "finished.jsonl", {})
    await finished(HERE / "failures.jsonl", {"Fetch": 3, "Parse": 5})
    await two_pipelines(HERE / "two_pipelines.jsonl")
    await lingering(HERE / "lingering.jsonl")
    await varied(HERE / "varied.jsonl")
    for name in ("mid_run", "paused", "stuck", "finished", "failures", "two_pipelines"):
        _relative(HERE / f"{name}.jsonl")
    _relative(HERE / "lingering.jsonl")
    _relative(HERE / "varied.jsonl")


if __name__ == "__main__":
    asyncio.run(main())
    make_limited()
    make_budget()
