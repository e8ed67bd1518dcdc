"""`antflow-tui attach`, `web` and `SCRIPT --headless --serve` in subprocesses: a served
job found by its PID, clear refusals, and the command each browser tab runs."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import textwrap
from typing import TYPE_CHECKING

import pytest

from antflow.runstream import Snapshot, Stop, discovery
from antflow.runstream.client import Viewer
from antflow_tui.attach.command import web_command

if TYPE_CHECKING:
    from pathlib import Path

TIMEOUT = 60
"""Seconds a subprocess may take (a hang fails the test instead of the suite)."""

GATED_JOB = textwrap.dedent(
    """
    import asyncio
    import sys

    from antflow import Pipeline, Stage

    released = None


    async def crawl(x):
        global released
        if released is None:
            released = asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
        await released
        if x == 3:
            raise ValueError("three")
        return x


    pipeline = Pipeline([Stage("Crawl", 2, [crawl], task_attempts=1)])
    items = list(range(6))
    """
)


@pytest.fixture
def runtime(tmp_path: Path) -> dict[str, str]:
    """The environment of every process of a test: a private runtime folder."""
    return {**os.environ, "XDG_RUNTIME_DIR": str(tmp_path)}


def antflow_tui(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "antflow_tui", *args],
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        env=env,
        timeout=TIMEOUT,
    )


def test_attach_with_no_job_says_how_to_serve_one(runtime: dict[str, str]) -> None:
    done = antflow_tui(["attach"], runtime)
    assert done.returncode == 2
    assert "no running job is served here" in done.stderr
    assert "ANTFLOW_SERVE=1" in done.stderr


def test_attach_refuses_what_it_cannot_attach_to(runtime: dict[str, str]) -> None:
    done = antflow_tui(["attach", "12345678"], runtime)
    assert done.returncode == 2
    assert "no job is served at pid 12345678" in done.stderr
    done = antflow_tui(["attach", "unix:/nowhere.sock"], runtime)
    assert done.returncode == 2
    assert "needs its token" in done.stderr
    done = antflow_tui(["attach", "somewhere"], runtime)
    assert done.returncode == 2
    assert "neither a process id nor an address" in done.stderr


def test_web_stays_on_loopback_and_needs_a_target(runtime: dict[str, str]) -> None:
    done = antflow_tui(["web", "12345678", "--host", "0.0.0.0"], runtime)
    assert done.returncode == 2
    assert "refusing to serve on 0.0.0.0" in done.stderr
    assert "ssh -L 8000:localhost:8000" in done.stderr
    done = antflow_tui(["web", "12345678"], runtime)
    assert done.returncode == 2
    assert "no run is served by pid 12345678" in done.stderr


def test_each_tab_runs_a_viewer_never_the_script(tmp_path: Path) -> None:
    recording = tmp_path / "run.jsonl"
    recording.write_text("{}\n")
    command, _ = web_command(str(recording), allow_control=False, python="python")
    assert command == f"python -m antflow_tui replay {recording}"
    command, _ = web_command("4242", allow_control=False, python="python")
    assert command == "python -m antflow_tui attach 4242 --web --read-only"
    command, _ = web_command("unix:/run/x.sock", allow_control=True, python="python")
    assert command == "python -m antflow_tui attach unix:/run/x.sock --web"
    assert "token" not in command


def test_headless_serve_runs_the_script_for_viewers(
    tmp_path: Path, runtime: dict[str, str]
) -> None:
    script = tmp_path / "gated.py"
    script.write_text(GATED_JOB)
    job = subprocess.Popen(
        [sys.executable, "-m", "antflow_tui", str(script), "--headless", "--serve"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=runtime,
    )
    try:
        assert job.stderr is not None
        said = job.stderr.readline()
        assert "antflow-tui: serving gated.py on unix:" in said
        assert f"antflow-tui attach {job.pid}" in job.stderr.readline()
        os.environ["XDG_RUNTIME_DIR"] = str(tmp_path)
        try:
            served = discovery.find(job.pid)
        finally:
            os.environ.pop("XDG_RUNTIME_DIR")
        assert served is not None
        assert served.script == "gated.py"
        snapshot = asyncio.run(_first_running_snapshot(served.address, served.read_token))
        assert snapshot.running
        assert snapshot.total_items == 6
        out, err = job.communicate("go\n", timeout=TIMEOUT)
    finally:
        if job.poll() is None:
            job.kill()
            job.wait()
    assert job.returncode == 1, err  # item 3 failed
    assert "completed 5" in out
    assert "failed 1" in out
    assert "Traceback" not in err


# Issue 17.2: a viewer's stop of a headless run is the run's stop, as ctrl+c is: exit 1,
# the summary names the viewer, and the script's PipelineStopped is no crash.
def test_a_viewers_stop_of_a_headless_run_is_named_in_the_summary(
    tmp_path: Path, runtime: dict[str, str]
) -> None:
    script = tmp_path / "gated.py"
    script.write_text(GATED_JOB)
    job = subprocess.Popen(
        [sys.executable, "-m", "antflow_tui", str(script), "--headless", "--serve"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=runtime,
    )
    try:
        assert job.stderr is not None
        assert "antflow-tui: serving gated.py on unix:" in job.stderr.readline()
        os.environ["XDG_RUNTIME_DIR"] = str(tmp_path)
        try:
            served = discovery.find(job.pid)
        finally:
            os.environ.pop("XDG_RUNTIME_DIR")
        assert served is not None
        assert served.control_token is not None
        token = served.control_token

        async def stop() -> str:
            viewer = await Viewer.connect(served.address, token, client="antflow-tui attach")
            while not isinstance(message := await viewer.receive(), Snapshot) or not (
                message.running
            ):
                assert message is not None
            return await viewer.send(Stop(force=True))

        assert asyncio.run(stop()) == "Stopped the run at once"
        out, err = job.communicate(timeout=TIMEOUT)
    finally:
        if job.poll() is None:
            job.kill()
            job.wait()
    assert job.returncode == 1, err
    assert f"stopped by a viewer (antflow-tui attach, pid {os.getpid()})" in out
    assert "unfinished 6" in out
    assert "raised" not in err
    assert "Traceback" not in err


async def _first_running_snapshot(address: str, token: str) -> Snapshot:
    viewer = await Viewer.connect(address, token)
    try:
        async with asyncio.timeout(TIMEOUT):
            while True:
                message = await viewer.receive()
                assert message is not None
                if isinstance(message, Snapshot) and message.running:
                    return message
    finally:
        await viewer.close()


def test_with_several_jobs_attach_lists_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from antflow_tui.attach.command import choose_job
    from antflow_tui.attach.target import Target

    monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path))
    folder = discovery.runtime_folder()
    # Two live processes (this one and its parent) that say they serve a run.
    for started, pid in ((1.0, os.getpid()), (2.0, os.getppid())):
        discovery.publish(
            discovery.Served(
                pid=pid,
                address=f"unix:{folder}/{pid}.sock",
                read_token="r",
                control_token="c",
                script="job.py",
                argv=("job.py", f"--night={started:g}"),
                started_at=1_700_000_000.0 + started,
                path=folder / f"{pid}.json",
            )
        )
    with pytest.raises(SystemExit) as exited:
        choose_job(Target(), interactive=False)
    assert exited.value.code == 2
    listing = capsys.readouterr().err
    assert "2 jobs are served here; name one: antflow-tui attach PID" in listing
    # Issue 17.9: each job is its script and its pid, not its whole command line.
    assert f"job.py (pid {os.getppid()}), started " in listing
    assert "--night" not in listing
    only_one = choose_job(Target(pid=os.getpid()), interactive=False)
    assert only_one.pid == os.getpid()
    found = Target(pid=os.getppid()).locate()
    assert found is not None
    assert found.token == "c"
    assert found.control
    assert Target(pid=os.getppid(), read_only=True).locate() == discovery_found(os.getppid())


def discovery_found(pid: int) -> object:
    from antflow_tui.attach.target import Found

    return Found(
        address=f"unix:{discovery.runtime_folder()}/{pid}.sock",
        token="r",
        pid=pid,
        script="job.py",
        control=False,
    )
