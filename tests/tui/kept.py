"""A run history built by a test: runs of every status, at fixed times, on a fake clock
(the runs screen's tests and its snapshot)."""

from __future__ import annotations

import itertools
import os
from dataclasses import replace
from typing import TYPE_CHECKING, Final
from unittest import mock

from antflow.history import Counts, History, Run
from antflow.history import index as index_module
from antflow.history.run import new_run_id

if TYPE_CHECKING:
    from pathlib import Path

START: Final = 1_796_450_400.0
"""2026-12-05 06:40:00 UTC (the tests run with TZ=UTC)."""
SCRAPE: Final = "/work/jobs/scrape.py"
LLM: Final = "/work/jobs/llm_batch.py"


class Clock:
    """Unix time that moves only when told."""

    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def set(self, now: float) -> None:
        self.now = now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def kept_history(home: Path) -> tuple[History, dict[str, Run]]:
    """A history in `home` holding, oldest first: a finished scrape, a failed llm batch,
    a crashed scrape (its process is gone), the run that resumed it (stopped), and a
    scrape still running (in this process). Returns it, on a clock stopped one minute
    after the last start, and its runs by name. Run ids end in 0001, 0002... (not random),
    so a snapshot of the list is the same every time."""
    numbers = itertools.count(1)
    with mock.patch(
        "antflow.history.run.secrets.token_hex", side_effect=lambda _n: f"{next(numbers):04x}"
    ):
        return _kept_history(home)


def _kept_history(home: Path) -> tuple[History, dict[str, Run]]:
    clock = Clock(START)
    history = History(home, clock=clock, monotonic=clock)
    runs: dict[str, Run] = {}

    def finished(name: str, script: str, minutes: float, status: str, counts: Counts) -> Run:
        clock.set(START + minutes * 60)
        handle = history.begin(script, ["antflow-tui", script], "fp")
        clock.advance(counts.done / 8 if counts.done else 30)
        run = handle.finish(status, counts)  # type: ignore[arg-type]
        runs[name] = run
        return run

    finished("first", SCRAPE, 0, "finished", Counts(fed=300, done=300))
    finished("failed", LLM, 30, "failed", Counts(fed=2_000, done=1_950, failed=50))
    # A crashed run: its row says running, its process (PID 0: none) is gone.
    clock.set(START + 60 * 60)
    crashed = replace(
        runs["first"],
        id=new_run_id(START + 60 * 60),  # 0003
        started_at=START + 60 * 60,
        status="running",
        ended_at=None,
        updated_at=START + 60 * 60 + 250,
        counts=Counts(fed=2_085, done=2_000, failed=12),
        duration=250.0,
        rate=8.0,
        pid=0,
        process_start=None,
        argv=("antflow-tui", SCRAPE),
    )
    crashed = replace(crashed, path=home / "runs" / f"{crashed.id}.jsonl")
    crashed.path.write_bytes(b"")
    with (
        index_module.connected(history.home / "index.db") as connection,
        index_module.writing(connection),
    ):
        index_module.put(connection, [crashed])
    runs["crashed"] = history.get(crashed.id)  # type: ignore[assignment]
    clock.set(START + 70 * 60)
    handle = history.begin(
        SCRAPE, ["antflow-tui", SCRAPE, "--resume"], "fp", crashed.id, done_earlier=2_000
    )
    clock.advance(90)
    runs["resumed"] = handle.finish(
        "stopped", Counts(fed=600, done=540, unfinished=60, done_earlier=2_000)
    )
    clock.set(START + 80 * 60)
    running = history.begin(SCRAPE, ["antflow-tui", SCRAPE, "--headless"], "fp")
    running.update_counts(Counts(fed=120, done=96, failed=1), force=True)
    runs["running"] = running.run
    clock.set(START + 81 * 60)
    assert runs["crashed"].status == "crashed"
    assert os.getpid() == runs["running"].pid
    return history, runs
