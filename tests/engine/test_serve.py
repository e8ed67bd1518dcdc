"""Serving a run to viewers over a socket: tokens, scopes, late and slow viewers, commands."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import stat
from pathlib import Path
from typing import Any

import pytest

from antflow import Pipeline, PipelineStopped, Stage, serve
from antflow.runstream import (
    Pause,
    PipelineStarted,
    Resume,
    Retry,
    Snapshot,
    Stop,
    discovery,
    outbox,
    wire,
)
from antflow.runstream import serve as serving
from antflow.runstream.client import AttachError, Viewer
from tests.engine.helpers import Gates, wait_until


@pytest.fixture(autouse=True)
def private_runtime(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path))
    return tmp_path


async def echo(x: Any) -> Any:
    return x


async def fail_odd(x: int) -> int:
    if x % 2:
        raise ValueError(f"odd {x}")
    return x


async def until_message(viewer: Viewer, kind: type, *, limit: int = 500) -> Any:
    """Read the viewer's messages until one of `kind` comes (bounded)."""
    for _ in range(limit):
        message = await asyncio.wait_for(viewer.receive(), 10)
        assert message is not None, "the connection closed"
        if isinstance(message, kind):
            return message
    raise AssertionError(f"no {kind.__name__} in {limit} messages")


async def test_the_server_publishes_a_private_discovery_file(private_runtime: Path) -> None:
    async with serve() as server:
        served = server.served
        assert served is not None
        folder = private_runtime / "antflow"
        assert stat.S_IMODE(folder.stat().st_mode) == 0o700
        assert stat.S_IMODE(served.path.stat().st_mode) == 0o600
        socket_path = Path(served.address.removeprefix("unix:"))
        assert stat.S_IMODE(os.stat(socket_path).st_mode) == 0o600
        data = json.loads(served.path.read_text())
        assert data["pid"] == os.getpid()
        assert discovery.find(os.getpid()) is not None
    assert not served.path.exists()
    assert discovery.running() == []


async def test_two_viewers_see_the_run_and_a_late_one_sees_earlier_failures() -> None:
    gates = Gates()

    async def gated(x: int) -> int:
        await gates.pass_through(x)
        return await fail_odd(x)

    async with serve() as server:
        assert server.served is not None
        pipeline = Pipeline([Stage("A", 2, [gated], task_attempts=1)])
        token = server.served.read_token
        first = await Viewer.connect(server.address, token, interval=0.05)
        second = await Viewer.connect(server.address, token, interval=0.05)
        run = asyncio.create_task(pipeline.run(range(4)))
        for viewer in (first, second):
            started = await until_message(viewer, PipelineStarted)
            assert [s.name for s in started.stages] == ["A"]
        gates.open_all()
        await run
        for viewer in (first, second):
            while True:
                snapshot = await until_message(viewer, Snapshot)
                if snapshot.processed == 2 and not snapshot.running:
                    break
        late = await Viewer.connect(server.address, token, interval=0.05)
        failures = await until_message(late, wire.Failures)
        assert sorted(f.item for f in failures.failures) == [1, 3]
        # The failure list stays small (a late viewer's first screen); tracebacks are pulled
        # with the item's story.
        assert all(f.traceback == "" for f in failures.failures)
        detail = await late.item(1, 3)
        assert detail is not None
        assert detail.status == "failed"
        assert any("odd" in error.traceback for error in detail.errors)
        for viewer in (first, second, late):
            await viewer.close()


async def test_a_late_viewer_gets_the_last_minutes_for_its_trends(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(serving, "HISTORY_KEPT", 3)
    monkeypatch.setattr(serving, "HISTORY_EVERY", 1e9)  # the test keeps them itself
    gates = Gates()

    async def gated(x: int) -> int:
        await gates.pass_through(x)
        return x

    async with serve() as server:
        pipeline = Pipeline([Stage("A", 1, [gated])])
        run = asyncio.create_task(pipeline.run(range(6)))
        for x in range(5):
            await gates.entered(x)
            server._keep_history()  # what the pump does every HISTORY_EVERY seconds
            gates.open(x)
        assert server.served is not None
        late = await Viewer.connect(server.address, server.served.read_token, interval=0.05)
        history = await until_message(late, wire.History)
        now = await until_message(late, Snapshot)
        # The newest three kept, oldest first, before the snapshot of now; stage counts
        # only (no workers, no latency lists: a big run's history stays small).
        assert [s.stages[0].done for s in history.snapshots] == [2, 3, 4]
        assert [s.at for s in history.snapshots] == sorted(s.at for s in history.snapshots)
        assert all(s.workers == () for s in history.snapshots)
        assert all(s.stages[0].histogram == () for s in history.snapshots)
        assert now.at >= history.snapshots[-1].at
        gates.open_all()
        await run
        await late.close()


async def test_the_pump_keeps_the_history_with_no_viewer(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(serving, "TICK", 0)
    monkeypatch.setattr(serving, "HISTORY_EVERY", 0)
    gates = Gates()

    async def gated(x: int) -> int:
        await gates.pass_through(x)
        return x

    async with serve() as server:
        pipeline = Pipeline([Stage("A", 1, [gated])])
        run = asyncio.create_task(pipeline.run(range(2)))
        await gates.entered(0)
        await wait_until(lambda: len(server._history.get(1, ())) >= 2)
        assert server.viewers == 0
        gates.open_all()
        await run


async def test_bad_tokens_wrong_versions_and_long_lines_are_refused() -> None:
    async with serve() as server:
        assert server.served is not None
        with pytest.raises(AttachError, match="bad token"):
            await Viewer.connect(server.address, "not the token")
        path = server.address.removeprefix("unix:")
        reader, writer = await asyncio.open_unix_connection(path)
        writer.write(wire.line(wire.Hello(version=99, token=server.served.read_token)))
        await writer.drain()
        assert b"protocol version 99" in await reader.readline()
        assert await reader.readline() == b""
        writer.close()
        # An oversized line closes that connection and nothing else.
        viewer = await Viewer.connect(server.address, server.served.read_token)
        reader, writer = await asyncio.open_unix_connection(path)
        writer.write(b"x" * (wire.MAX_LINE + 10) + b"\n")
        await writer.drain()
        assert await reader.read() == b""
        writer.close()
        assert server.viewers == 1
        await viewer.close()


async def test_commands_need_the_control_token() -> None:
    gates = Gates()

    async def gated(x: int) -> int:
        await gates.pass_through(x)
        return await fail_odd(x)

    async with serve() as server:
        served = server.served
        assert served is not None
        assert served.control_token is not None
        pipeline = Pipeline([Stage("A", 1, [gated], task_attempts=1)])
        await pipeline.start()
        reader = await Viewer.connect(server.address, served.read_token)
        controller = await Viewer.connect(server.address, served.control_token)
        assert controller.welcome.scopes == ("read", "control")
        assert "read-only" in await reader.send(Pause())
        assert not pipeline.paused
        assert await controller.send(Pause(stage="A")) == "Paused stage A"
        assert pipeline.is_paused(stage="A")
        assert await controller.send(Resume(stage="A")) == "Resumed stage A"
        gates.open_all()
        await pipeline.feed([{"id": "one", "value": 1}])
        await wait_until(lambda: pipeline.failed_item_ids() == ["one"], steps=10_000)
        gates.close_new()
        assert await controller.send(Retry(1, ("one",))) == "Retrying 1 item"
        await wait_until(lambda: gates.entered_keys.count(1) == 2)
        assert pipeline.failed_item_ids() == []
        gates.open_all()
        await pipeline.join()
        await reader.close()
        await controller.close()


async def test_a_slow_viewer_gets_a_gap_and_a_fresh_snapshot(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(outbox, "QUEUE_BYTES", 20_000)
    async with serve() as server:
        assert server.served is not None
        # A viewer that says hello and then reads nothing while the run floods it.
        path = server.address.removeprefix("unix:")
        reader, writer = await asyncio.open_unix_connection(path, limit=1 << 24)
        hello = wire.Hello(version=wire.PROTOCOL, token=server.served.read_token, interval=0.05)
        writer.write(wire.line(hello))
        await writer.drain()
        await wait_until(lambda: server.viewers == 1, steps=100_000)
        # Small buffers on both ends, so the server's own queue is what fills.
        writer.get_extra_info("socket").setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        for viewer in server._viewers:
            viewer.writer.transport.set_write_buffer_limits(high=1024)
            server_socket = viewer.writer.get_extra_info("socket")
            server_socket.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
        pipeline = Pipeline([Stage("A", 4, [echo])])
        loop = asyncio.get_running_loop()
        for _ in range(100):
            await pipeline.run(range(200))
            # One step of the pump (it would come within a tick anyway).
            server._broadcast_now(loop.time())
            if any(v.gaps for v in server._viewers):
                break
        assert any(v.gaps for v in server._viewers)
        # Once it reads again: a gap, then the state afresh.
        kinds = []
        while "snapshot" not in kinds[kinds.index("gap") :] if "gap" in kinds else True:
            line = await asyncio.wait_for(reader.readline(), 10)
            assert line
            kinds.append(type(wire.decode_from_server(line)).__name__.lower())
        assert "gap" in kinds
        writer.close()
        assert server.viewers <= 1


async def test_a_viewer_sees_the_server_go_away() -> None:
    async with serve() as server:
        assert server.served is not None
        viewer = await Viewer.connect(server.address, server.served.read_token)
    for _ in range(100):
        if await asyncio.wait_for(viewer.receive(), 10) is None:
            break
    assert viewer.closed
    with pytest.raises(AttachError):
        await viewer.item(1, 1)


async def test_tcp_serving_stays_on_loopback_unless_allowed() -> None:
    with pytest.raises(ValueError, match="not loopback"):
        async with serve("tcp://0.0.0.0:0"):
            pass
    async with serve("tcp://127.0.0.1:0") as server:
        assert server.served is not None
        assert server.address.startswith("tcp://127.0.0.1:")
        viewer = await Viewer.connect(server.address, server.served.read_token)
        assert viewer.welcome.scopes == ("read",)
        await viewer.close()


SERVED_SCRIPT = """
import asyncio
import sys

from antflow import Pipeline, Stage

released = None


async def work(x):
    await released
    return x


async def main():
    global released
    released = asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
    await Pipeline([Stage("A", 2, [work])]).run(range(5))
    print("done")


asyncio.run(main())
"""


def test_an_unmodified_script_gives_viewers_its_last_state_before_it_exits(
    tmp_path: Path,
) -> None:
    import subprocess
    import sys
    import time

    script = tmp_path / "served.py"
    script.write_text(SERVED_SCRIPT)
    env = {**os.environ, "ANTFLOW_SERVE": "1", "XDG_RUNTIME_DIR": str(tmp_path)}
    job = subprocess.Popen(
        [sys.executable, str(script)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        deadline = time.monotonic() + 60
        while discovery.find(job.pid) is None:  # another process: only polling tells
            assert time.monotonic() < deadline
            assert job.poll() is None
            time.sleep(0.05)
        served = discovery.find(job.pid)
        assert served is not None

        async def watch() -> list[Any]:
            viewer = await Viewer.connect(served.address, served.read_token, interval=0.05)
            seen = [await until_message(viewer, Snapshot)]
            assert job.stdin is not None
            job.stdin.write("go\n")
            job.stdin.close()
            while (message := await asyncio.wait_for(viewer.receive(), 60)) is not None:
                seen.append(message)
            return seen

        seen = asyncio.run(watch())
        job.wait(timeout=60)
        assert job.stdout is not None
        assert job.stderr is not None
        out, err = job.stdout.read(), job.stderr.read()
    finally:
        if job.poll() is None:
            job.kill()
            job.wait()
    last = [message for message in seen if isinstance(message, Snapshot)][-1]
    assert not last.running
    assert last.processed == 5
    assert job.returncode == 0
    assert "done" in out
    assert err == ""  # nothing about the viewer: no traceback, no destroyed task


async def test_the_history_stays_bounded_over_many_pipelines(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(serving, "HISTORY_EVERY", 1e9)  # the test keeps them itself
    monkeypatch.setattr(serving, "HISTORY_PIPELINES", 3)
    async with serve() as server:
        for _ in range(5):
            await Pipeline([Stage("A", 1, [echo])]).run(range(2))
            server._keep_history()
            server._keep_history()  # ended: kept once, not again
            assert len(server._history) <= 3
        assert sorted(server._history) == [3, 4, 5]
        assert all(len(kept) == 1 for kept in server._history.values())
        # Every 2 s, even with no viewer: no snapshot is taken of what is already kept.
        taken: list[int] = []
        real = server.stream.snapshot
        monkeypatch.setattr(server.stream, "snapshot", lambda n: taken.append(n) or real(n))
        server._keep_history()
        assert taken == []


def start_served(tmp_path: Path, text: str, setting: str = "1") -> Any:
    """A script run by plain python with ANTFLOW_SERVE=`setting`."""
    import subprocess
    import sys

    script = tmp_path / "job.py"
    script.write_text(text)
    env = {**os.environ, "ANTFLOW_SERVE": setting, "XDG_RUNTIME_DIR": str(tmp_path)}
    return subprocess.Popen(
        [sys.executable, str(script)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )


def found_when_served(job: Any) -> discovery.Served:
    import time

    deadline = time.monotonic() + 60
    while (served := discovery.find(job.pid)) is None:  # another process: only polling tells
        assert time.monotonic() < deadline
        assert job.poll() is None, job.communicate()
        time.sleep(0.05)
    return served


HANGING_SCRIPT = """
import asyncio

from antflow import Pipeline, Stage


async def work(x):
    await asyncio.Event().wait()


async def main():
    await Pipeline([Stage("A", 2, [work])]).run(range(5))
    print("Finished")


asyncio.run(main())
"""


# Issue 17.2: a viewer's X looked like success to the job (it printed its "Finished"
# line and exited 0) and the viewer was told "The connection closed before the job
# answered." The stop reaches the unchanged script as an exception naming the viewer, and
# the viewer gets the stop's answer although the job ends with it.
def test_a_viewers_stop_ends_an_unchanged_script_with_an_error_naming_the_viewer(
    tmp_path: Path,
) -> None:
    job = start_served(tmp_path, HANGING_SCRIPT)
    try:
        served = found_when_served(job)
        assert served.control_token is not None
        token = served.control_token

        async def stop() -> str:
            viewer = await Viewer.connect(served.address, token, client="a test viewer")
            while not (await until_message(viewer, Snapshot)).running:
                pass
            return await viewer.send(Stop(force=True))

        assert asyncio.run(stop()) == "Stopped the run at once"
        out, err = job.communicate(timeout=60)
    finally:
        if job.poll() is None:
            job.kill()
            job.wait()
    assert job.returncode == 1
    assert "Finished" not in out
    assert err.strip().splitlines()[-1] == (
        f"antflow.exceptions.PipelineStopped: stopped by a viewer (a test viewer, pid "
        f"{os.getpid()}) before the run finished: 5 items unfinished"
    )


async def test_a_viewers_stop_reaches_run_in_this_process_too() -> None:
    gates = Gates()

    async def gated(x: int) -> int:
        await gates.pass_through(x)
        return x

    async with serve() as server:
        assert server.served is not None
        assert server.served.control_token is not None
        pipeline = Pipeline([Stage("A", 1, [gated])])
        run = asyncio.create_task(pipeline.run(range(3)))
        await gates.entered(0)
        viewer = await Viewer.connect(server.address, server.served.control_token)
        assert await viewer.send(Stop(force=True)) == "Stopped the run at once"
        with pytest.raises(PipelineStopped, match=rf"a viewer \(pid {os.getpid()}\)"):
            await run
        await viewer.close()


# Issue 18.6: a Retry naming an item twice stopped at the repeat ("Retrying 1 item", 20
# stayed failed).
async def test_a_retry_naming_an_item_twice_retries_each_item_once() -> None:
    attempts: list[int] = []
    healthy = asyncio.Event()

    async def flaky(x: int) -> int:
        attempts.append(x)
        if not healthy.is_set():
            raise ValueError(f"not yet {x}")
        return x

    async with serve() as server:
        assert server.served is not None
        assert server.served.control_token is not None
        pipeline = Pipeline([Stage("A", 2, [flaky], task_attempts=1)])
        await pipeline.run([{"id": n, "value": n} for n in (10, 20, 30)])
        assert sorted(pipeline.failed_item_ids()) == [10, 20, 30]
        healthy.set()
        viewer = await Viewer.connect(server.address, server.served.control_token)
        assert await viewer.send(Retry(1, (10, 10, 20))) == "Retrying 2 items"
        await wait_until(lambda: sorted(attempts) == [10, 10, 20, 20, 30], steps=10_000)
        await wait_until(lambda: not pipeline.is_running, steps=10_000)
        assert pipeline.failed_item_ids() == [30]
        await viewer.close()


# Issue 18.7: a serve that could not start under ANTFLOW_SERVE showed only at exit, as
# "Task exception was never retrieved": it is said at start, and the run goes on.
def test_a_serve_that_cannot_start_is_said_at_once_and_the_run_goes_on(tmp_path: Path) -> None:
    job = start_served(tmp_path, SERVED_SCRIPT, setting="tcp://0.0.0.0:0")
    try:
        assert job.stderr is not None
        said = job.stderr.readline()  # before the run is let go (stdin): at its start
        assert said.startswith(
            "antflow: ANTFLOW_SERVE=tcp://0.0.0.0:0: cannot serve this run: refusing to "
            "listen on 0.0.0.0: it is not loopback"
        )
        assert said.rstrip().endswith("The run goes on without it.")
        out, err = job.communicate("go\n", timeout=60)
    finally:
        if job.poll() is None:
            job.kill()
            job.wait()
    assert job.returncode == 0
    assert "done" in out
    assert err == ""


# Issue 18.7: tcp://[::1]:0 was published without brackets (tcp://::1:PORT).
async def test_an_ipv6_address_is_published_with_brackets() -> None:
    async with serve("tcp://[::1]:0") as server:
        assert server.served is not None
        assert server.address.startswith("tcp://[::1]:")
        assert server.served.address == server.address
        viewer = await Viewer.connect(server.address, server.served.read_token)
        assert viewer.welcome.scopes == ("read",)
        await viewer.close()
