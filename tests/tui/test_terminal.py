"""The app in a real pseudo-terminal: always quittable, the terminal always given back.

Signals, a script that blocks the event loop, and writes to descriptors 1 and 2 are only
real in a terminal, so these run `antflow-tui` as a user would (see `ptys`). Scripts wait
for a flag file the test creates once the app has drawn, never for time to pass.
"""

from __future__ import annotations

import fcntl
import json
import os
import signal
import struct
import termios
import textwrap
from typing import TYPE_CHECKING

from tests.tui.ptys import after_the_app, assert_terminal_given_back, start, wait_for_word
from tests.tui.recorded import RECORDINGS

if TYPE_CHECKING:
    from pathlib import Path

DRAWN = b"queued"
"""A word of the header's counts line: the app has drawn its first frame."""

HANGING = """\
import asyncio

from antflow import Pipeline, Stage

done = 0

async def work(value):
    global done
    if value >= 3:
        await asyncio.Event().wait()  # never done: still in flight when the stop comes
    done += 1
    if done == 3:
        print("THREE-DONE")
    return value

pipeline = Pipeline([Stage("Work", 2, [work])])
items = list(range(10))
"""
READY = b"THREE-DONE"
"""Printed (into the event log) as the third item completes."""


def write(tmp_path: Path, name: str, source: str) -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(source), encoding="utf-8")
    return path


def export_of(path: Path) -> tuple[dict[str, object], list[dict[str, object]]]:
    header, *lines = [json.loads(line) for line in path.read_text("utf-8").splitlines()]
    return header, lines


def run_until_signal(tmp_path: Path, number: signal.Signals) -> None:
    """Regression (issue 10): SIGTERM and SIGHUP ended the app at once, with no export,
    no summary, and the shell left in the alternate screen with the mouse on."""
    write(tmp_path, "hangs.py", HANGING)
    out = tmp_path / "out.jsonl"
    app = start(["hangs.py", "--export", str(out)], tmp_path)
    try:
        app.read_until(READY)
        app.process.send_signal(number)
        assert app.wait() == 1
        assert_terminal_given_back(app)
        shown = after_the_app(app)
        assert f"stopped by {number.name}" in shown
        assert "items 10  completed 3  failed 0  skipped 0  unfinished 7" in shown
    finally:
        app.close()
    header, lines = export_of(out)
    assert (header["completed"], header["unfinished"]) == (3, 7)
    unfinished = [line for line in lines if line["status"] == "unfinished"]
    assert {line["stage"] for line in unfinished} == {"Work"}


def test_sigterm_is_a_graceful_stop(tmp_path: Path) -> None:
    run_until_signal(tmp_path, signal.SIGTERM)


def test_sighup_is_a_graceful_stop(tmp_path: Path) -> None:
    run_until_signal(tmp_path, signal.SIGHUP)


def test_a_closed_terminal_still_gets_the_export_and_an_exit(tmp_path: Path) -> None:
    """A dropped ssh: the terminal is gone, the kernel sends SIGHUP; writes to the terminal
    fail. The app must still stop, export and exit, not hang on its output."""
    write(tmp_path, "hangs.py", HANGING)
    out = tmp_path / "out.jsonl"
    app = start(["hangs.py", "--export", str(out)], tmp_path)
    try:
        app.read_until(READY)
        app.hang_up()
        assert app.wait() == 1
    finally:
        app.close()
    header, _lines = export_of(out)
    assert (header["completed"], header["unfinished"]) == (3, 7)


BLOCKING = """\
import asyncio
import os
from pathlib import Path

from antflow import Pipeline, Stage

FLAG = Path(__file__).with_name("go")

async def work(value):
    await asyncio.Event().wait()
    return value

def crunch():
    while True:  # the fault under test: never awaits, never ends
        pass

async def main():
    pipeline = Pipeline([Stage("Work", 2, [work])])
    await pipeline.start()
    await pipeline.feed(range(5))
    while not FLAG.exists():
        await asyncio.sleep(0.01)
    os.write(int(os.environ["BLOCKING_FD"]), b"blocking")
    crunch()
"""


def test_the_screen_follows_a_resized_terminal(tmp_path: Path) -> None:
    """Descriptor 1 is a pipe while the app runs (led into the event log): the app must
    ask its own terminal for the new size, not fall back to 80x24."""
    write(tmp_path, "hangs.py", HANGING)
    app = start(["hangs.py"], tmp_path, columns=80, rows=24)
    try:
        app.read_until(READY)
        resized_at = len(app.output)
        # Setting the size sends the app SIGWINCH, as a terminal window's resize does.
        fcntl.ioctl(app.slave, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 140, 0, 0))
        # A border as wide as the new terminal (an 80-column layout has none so long).
        app.read_until(("─" * 120).encode(), start=resized_at)
        app.process.send_signal(signal.SIGTERM)
        assert app.wait() == 1
        assert_terminal_given_back(app)
    finally:
        app.close()


def test_a_second_ctrl_c_gets_out_of_a_blocked_event_loop(tmp_path: Path) -> None:
    """Regression (issue 10): with main() in `while True: pass`, q, ctrl+q and ctrl+c did
    nothing; only kill got the user out, with the terminal left broken."""
    write(tmp_path, "blocks.py", BLOCKING)
    out = tmp_path / "out.jsonl"
    told, tell = os.pipe()
    app = start(
        ["blocks.py", "--export", str(out)],
        tmp_path,
        pass_fds=(tell,),
        env={"BLOCKING_FD": str(tell)},
    )
    os.close(tell)
    try:
        app.read_until(DRAWN)
        (tmp_path / "go").touch()
        assert wait_for_word(told) == b"blocking"
        app.send(b"q")  # the loop is blocked: nothing happens
        app.send(b"\x03")
        hint = app.read_until(b"press ctrl+c again to quit now")
        assert b"crunch" in bytes(app.output[hint - 300 : hint])
        app.send(b"\x03")
        assert app.wait() == 1
        assert_terminal_given_back(app)
        shown = after_the_app(app)
        assert "stopped at once: a second ctrl+c while the script blocked the event loop" in shown
        assert "blocks.py" in shown
        assert "in crunch" in shown
        assert "items 5  completed 0  failed 0  skipped 0  unfinished 5" in shown
    finally:
        app.close()
        os.close(told)
    header, lines = export_of(out)
    assert header["unfinished"] == 5
    assert sorted(line["id"] for line in lines if line["status"] == "unfinished") == [0, 1, 2, 3, 4]
    assert all(line["stage"] == "Work" for line in lines)


WRITES = """\
import asyncio
import os
import subprocess
import sys
from pathlib import Path

from antflow import Pipeline, Stage

FLAG = Path(__file__).with_name("go")
RUN = Path(__file__).with_name("run")

async def noop(value):
    return value

async def main():
    while not FLAG.exists():
        await asyncio.sleep(0.01)
    os.write(1, b"RAW-ONE straight to fd 1\\n")
    os.write(2, b"RAW-TWO straight to fd 2\\n")
    print("FROM-DUNDER", file=sys.__stdout__, flush=True)
    subprocess.run([sys.executable, "-c", "print('FROM-CHILD')"], check=True)
    print("\\x1b[31mRED-TEXT\\x1b[0m")
    try:
        input("Proceed? ")
    except EOFError as error:
        print("input said:", error)
    while not RUN.exists():  # until the test has seen the lines above on the screen
        await asyncio.sleep(0.01)
    await Pipeline([Stage("A", 1, [noop])]).run(range(3))
"""


def test_writes_to_descriptors_one_and_two_reach_the_log_not_the_screen(tmp_path: Path) -> None:
    """Regression (issue 10): os.write, sys.__stdout__ and subprocesses drew over the
    panels; input() left a blank screen."""
    write(tmp_path, "writes.py", WRITES)
    app = start(["writes.py", "--exit-when-done"], tmp_path)
    try:
        app.read_until(DRAWN)
        (tmp_path / "go").touch()
        # The log follows its newest lines: the pipeline's events would push these out
        # of view within a frame, so it starts once they have been drawn.
        app.read_until(b"input said")
        (tmp_path / "run").touch()
        code = app.wait()
        assert_terminal_given_back(app)
    finally:
        app.close()
    out = bytes(app.output)
    for text in (b"RAW-ONE straight to fd 1", b"RAW-TWO straight to fd 2", b"FROM-CHILD"):
        assert text in out, "shown in the event log"
        assert text + b"\r\n" not in out, "not written raw over the screen"
    assert b"FROM-DUNDER" in out
    assert b"FROM-DUNDER\r\n" not in out
    assert b"RED-TEXT" in out
    assert b"stdin is owned by antflow-tui" in out
    assert code == 0
    assert "items 3  completed 3" in after_the_app(app)


FAILING = """\
from antflow import Pipeline, Stage

async def check(value):
    if value == 2:
        raise ValueError(f"item {value} is odd [red]x[/red]")
    return value

pipeline = Pipeline([Stage("Check", 2, [check], task_attempts=2, task_wait_seconds=0)])
items = list(range(5))
"""


def test_a_recorded_run_replays_with_its_failure_and_traceback(tmp_path: Path) -> None:
    """--record writes the run; `antflow-tui replay` shows it: 'replay', the failure,
    and its traceback one enter away."""
    from antflow.runstream.fileformat import Recording

    write(tmp_path, "failing.py", FAILING)
    recording = tmp_path / "run.jsonl"
    app = start(["failing.py", "--record", str(recording), "--exit-when-done"], tmp_path)
    try:
        assert app.wait() == 1
    finally:
        app.close()
    opened = Recording.open(recording)
    assert opened.complete
    assert opened.header.script == "failing.py"
    point = opened.seek(opened.ended_at)
    (failure,) = point.failures[1]
    assert (failure.item, failure.type, failure.attempt) == (2, "ValueError", 2)
    story = opened.item(1, 2)
    assert [error.attempt for error in story.errors] == [1, 2]
    assert all("Traceback" in error.traceback for error in story.errors)
    replay = start(["replay", str(recording)], tmp_path)
    try:
        replay.read_until(b"replay")
        replay.read_until(b"ValueError")  # it opens on the run's last moment
        replay.send(b":")
        replay.read_until(b"Go to item")
        replay.send(b"2\r")
        tracebacks = replay.read_until(b"Tracebacks")
        shown = replay.read_until(b'File "failing.py", line 5, in check', start=tracebacks)
        replay.send(b"\x1b")  # back to the main screen (whose footer has the filter key)
        replay.read_until(b"Filter", start=shown)
        replay.send(b"q")
        assert replay.wait() == 0
        assert_terminal_given_back(replay)
    finally:
        replay.close()


# Issue 18.11: a crash inside the replay app exited 0; a bug of ours is exit 1 and says so.
def test_a_replay_whose_app_fails_exits_one_and_says_so(tmp_path: Path) -> None:
    # A bug planted in the replay source (sitecustomize runs at the interpreter's start).
    (tmp_path / "sitecustomize.py").write_text(
        textwrap.dedent(
            """\
            from antflow_tui.source.replay import ReplaySource

            def broken(self, at):
                raise RuntimeError("a planted bug")

            ReplaySource._jump = broken
            """
        )
    )
    recording = RECORDINGS / "failures.jsonl"
    replay = start(["replay", str(recording)], tmp_path, env={"PYTHONPATH": str(tmp_path)})
    try:
        assert replay.wait() == 1
        shown = bytes(replay.output).decode("utf-8", "replace")
        assert "a planted bug" in shown
        assert "antflow-tui itself failed (its traceback is above)" in shown
    finally:
        replay.close()
