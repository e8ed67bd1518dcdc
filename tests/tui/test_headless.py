"""`antflow-tui SCRIPT` with no screen, in subprocesses and a pseudo-terminal: with stdout
(or stdin, or stderr) not a terminal, and with ``--headless``: the run, progress lines on
stderr, the summary and the exit status; never the full-screen app."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from typing import TYPE_CHECKING, NamedTuple

from tests.tui import ptys

if TYPE_CHECKING:
    from pathlib import Path

BOUND = 60.0
"""Seconds a subprocess may take; the full-screen app would wait for a key until then."""
ESCAPE = "\x1b"

QUICK = """\
from antflow import Pipeline, Stage


async def work(n):
    if n == 2:
        raise ValueError("two")
    return n


pipeline = Pipeline([Stage("Work", 2, [work], task_attempts=1)])
items = list(range(5))
"""

GATED = """\
import asyncio
import os

from antflow import Pipeline, Stage

gate = None


async def work(n):
    # Every item waits until the test writes to the FIFO (read in a thread once).
    global gate
    if gate is None:
        path = os.environ["GATE"]
        gate = asyncio.get_running_loop().run_in_executor(None, lambda: open(path).read())
    await gate
    return n


pipeline = Pipeline([Stage("Work", 1, [work], task_attempts=1)])
items = list(range(3))
"""


def _script(tmp_path: Path, name: str, source: str) -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(source), encoding="utf-8")
    return path


def _env() -> dict[str, str]:
    return {**os.environ, "TERM": "xterm-256color", "PYTHONDONTWRITEBYTECODE": "1"}


# Issue 17.5: `antflow-tui job.py </dev/null >log` (cron, CI) started the full-screen app,
# wrote escape codes into the log and never exited.
def test_with_no_terminal_it_runs_with_no_screen_and_exits(tmp_path: Path) -> None:
    _script(tmp_path, "job.py", QUICK)
    log = tmp_path / "log"
    with log.open("w") as out:
        ran = subprocess.run(
            [sys.executable, "-m", "antflow_tui", "job.py"],
            cwd=tmp_path,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.PIPE,
            text=True,
            timeout=BOUND,
            env=_env(),
            check=False,
        )
    written = log.read_text(encoding="utf-8")
    assert ran.returncode == 1, ran.stderr  # item 2 failed
    assert ESCAPE not in written + ran.stderr
    assert written.startswith("items 5  completed 4  failed 1  skipped 0  unfinished 0")
    assert ran.stderr.startswith(
        "antflow-tui: stdout is not a terminal: running job.py with no screen, as --headless "
        "does (a progress line every 30s on stderr, the summary on stdout)."
    )
    assert "Traceback" not in ran.stderr


def test_in_a_terminal_with_stdout_redirected_the_terminal_gets_the_words(
    tmp_path: Path,
) -> None:
    _script(tmp_path, "job.py", QUICK)
    log = tmp_path / "log"
    with log.open("w") as out:
        app = ptys.start(["job.py"], tmp_path, stdout=out.fileno())
        try:
            code = app.wait()
        finally:
            app.close()
    shown = bytes(app.output)
    assert code == 1
    assert ptys.ENTER_ALT not in shown, "no full-screen app"
    assert b"stdout is not a terminal" in shown
    assert b"every 5s on stderr" in shown, "stderr is a terminal: lines come more often"
    written = log.read_text(encoding="utf-8")
    assert ESCAPE not in written
    assert written.startswith("items 5  completed 4  failed 1")


def test_headless_shows_progress_lines_on_stderr(tmp_path: Path) -> None:
    _script(tmp_path, "gated.py", GATED)
    fifo = tmp_path / "gate"
    os.mkfifo(fifo)
    job = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "antflow_tui",
            "gated.py",
            "--headless",
            "--progress-every",
            "0.05",
        ],
        cwd=tmp_path,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**_env(), "GATE": str(fifo)},
    )
    try:
        assert job.stderr is not None
        line = job.stderr.readline()
        assert "not a terminal" not in line, "asked for with --headless: no note"
        assert line.startswith("gated.py  running  0:00:0"), line
        assert "0/3 0%" in line
        assert "completed 0  failed 0  skipped 0  running 1  queued 2" in line, line
        with fifo.open("w") as gate:
            gate.write("go")
        out, err = job.communicate(timeout=BOUND)
    finally:
        if job.poll() is None:
            job.kill()
            job.wait()
    assert job.returncode == 0, err
    assert out.startswith("items 3  completed 3  failed 0")


def test_paused_with_no_terminal_is_refused(tmp_path: Path) -> None:
    _script(tmp_path, "job.py", QUICK)
    ran = subprocess.run(
        [sys.executable, "-m", "antflow_tui", "job.py", "--paused"],
        cwd=tmp_path,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=BOUND,
        env=_env(),
        check=False,
    )
    assert ran.returncode == 2
    assert "--paused" in ran.stderr
    assert "stdout is not a terminal" in ran.stderr
    assert "Traceback" not in ran.stderr


COSTLY = """\
from antflow import Pipeline, Stage, set_task_usage


async def ask(n):
    set_task_usage(input_tokens=100, output_tokens=50)
    return n


pipeline = Pipeline([Stage("Ask", 2, [ask], max_tokens=150, task_attempts=1)])
items = list(range(5))
"""


class Stopped(NamedTuple):
    """A job stopped while paused by its budget."""

    pid: int
    returncode: int
    said: str
    """What it said on stderr up to its pause."""
    out: str
    err: str
    """The rest of its stderr."""


def _paused_by_budget_then_stopped(tmp_path: Path, *options: str) -> Stopped:
    """Run costly.py with no screen under a 300-token budget, read stderr until its pause
    is said, then SIGTERM it."""
    _script(tmp_path, "costly.py", COSTLY)
    job = subprocess.Popen(
        [
            *(sys.executable, "-m", "antflow_tui", "costly.py"),
            *("--headless", *options, "--budget-tokens", "300"),
        ],
        cwd=tmp_path,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=_env(),
    )
    try:
        assert job.stderr is not None
        told: list[str] = []
        while not told or "or stop it" not in told[-1]:
            line = job.stderr.readline()
            assert line, "".join(told)
            told.append(line)
        job.send_signal(signal.SIGTERM)
        out, err = job.communicate(timeout=BOUND)
    finally:
        if job.poll() is None:
            job.kill()
            job.wait()
    return Stopped(job.pid, job.returncode, "".join(told), out, err)


# Issue 22: a served job paused by its budget says so on stderr with the command that
# raises it (attach to this pid, then B); stopped while paused, its summary says why and
# the calls waiting are unfinished.
def test_a_served_job_paused_by_its_budget_says_how_to_raise_it(tmp_path: Path) -> None:
    job = _paused_by_budget_then_stopped(tmp_path, "--serve")
    said = job.said
    assert "antflow-tui: the run is paused by its budget: 300 of 300 tokens spent" in said
    assert f"  raise it:  antflow-tui attach {job.pid}   then B" in said
    assert job.returncode == 1, job.err
    summary = job.out.strip().splitlines()[-1]
    assert summary.startswith("items 5  completed 2  failed 0  skipped 0  unfinished 3")
    assert "cost 300 tokens (no prices)" in summary
    assert "stopped while paused by its budget (300 of 300 tokens spent" in summary


# Issue 22 (noticed trying it): a job with no screen and not served, paused by its
# budget, says what to do in antflow-tui's words only: the engine's advice to call
# pipeline.budget.raise_to(...) is for a script alone, which nothing here can act on.
def test_a_job_paused_by_its_budget_gives_only_advice_it_can_follow(tmp_path: Path) -> None:
    job = _paused_by_budget_then_stopped(tmp_path, "--progress-every", "0")
    said = job.said + job.err
    assert "antflow-tui: the run is paused by its budget: 300 of 300 tokens spent" in said
    assert "raise it:  antflow-tui attach" not in said  # not served: nothing to attach to
    assert "raise_to" not in said
    assert job.returncode == 1
