"""Abusing a served job's socket from loopback: what the job holds stays bounded, nothing
logs a traceback, and the run completes every item.

Each abuse is small (a few hundred connections or requests, bounds shrunk to match) so
the whole file runs in seconds; ``benchmarks/serve_abuse.py`` measures the same abuses
at full size (memory and throughput of a job in another process).
"""

from __future__ import annotations

import asyncio
import errno
import logging
import socket
from typing import TYPE_CHECKING, Any

import pytest

from antflow import Pipeline, Stage, serve
from antflow.runstream import listen, outbox, wire
from antflow.runstream import serve as serving
from antflow.runstream.client import Viewer
from antflow.runstream.records import ReprKey
from antflow.runstream.stream import RunStream
from tests.engine.helpers import wait_until

if TYPE_CHECKING:
    from pathlib import Path

    from antflow.runstream.serve import RunServer

ITEMS = 3_000
LIMIT = 20.0
"""Seconds any one wait may take before the test fails (a hang, not a timing check)."""


@pytest.fixture(autouse=True)
def small_bounds(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path))
    monkeypatch.setattr(serving, "HELLO_TIMEOUT", 0.3)
    monkeypatch.setattr(outbox, "QUEUE_BYTES", 64 * 1024)
    monkeypatch.setattr(outbox, "TOTAL_BYTES", 256 * 1024)
    monkeypatch.setattr(outbox, "REPLY_BYTES", 32 * 1024)


async def work(x: int) -> int:
    if x % 3 == 0:
        raise ValueError(f"planted failure {x}")
    await asyncio.sleep(0)
    return x


def pipeline() -> Pipeline:
    return Pipeline([Stage("A", 4, [work], task_attempts=1), Stage("B", 4, [work])])


async def run_every_item() -> None:
    """A run of tuple ids (their requests go by repr key) that must finish whole."""
    line = pipeline()
    await line.run([{"id": ("item", n), "value": n + 1} for n in range(ITEMS)])
    stats = line.get_stats()
    assert stats.items_processed + stats.items_failed == ITEMS
    assert line.get_unfinished_items() == []


def host_port(server: RunServer) -> tuple[str, int]:
    host, _, port = server.address.removeprefix("tcp://").rpartition(":")
    return host, int(port)


def no_tracebacks(caplog: pytest.LogCaptureFixture) -> None:
    assert [r for r in caplog.records if r.exc_info or r.levelno >= logging.ERROR] == []


async def raw_viewer(server: RunServer, *, buffer: int = 4096) -> Any:
    """A viewer that says hello with the read token and then reads nothing (its own
    receive buffer small, so the job's side is what fills)."""
    assert server.served is not None
    reader, writer = await asyncio.open_connection(*host_port(server))
    writer.get_extra_info("socket").setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, buffer)
    writer.write(wire.line(wire.Hello(version=wire.PROTOCOL, token=server.served.read_token)))
    await writer.drain()
    return reader, writer


def small_server_buffers(server: RunServer) -> None:
    for viewer in server._viewers:
        viewer.writer.transport.set_write_buffer_limits(high=4096)
        viewer.writer.get_extra_info("socket").setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)


# Issue 18.2: ~1,000 connections that never said hello (no token needed) took the job's
# descriptors: its own file opens failed, with a traceback per accept.
async def test_a_flood_of_silent_connections_is_bounded(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="antflow")
    async with serve("tcp://127.0.0.1:0") as server:
        listener = server._listener
        assert listener is not None
        peak = 0
        flooding = True

        async def watch() -> None:
            nonlocal peak
            while flooding:
                peak = max(peak, listener.pending, listener.connections)
                await asyncio.sleep(0)

        watching = asyncio.create_task(watch())
        run = asyncio.create_task(run_every_item())
        flood = [await asyncio.open_connection(*host_port(server)) for _ in range(300)]
        # Every one is closed: the excess at once, the rest when their hello is late.
        async with asyncio.timeout(LIMIT):
            for reader, _ in flood:
                assert await reader.read() == b""
        flooding = False
        await watching
        for _, writer in flood:
            writer.close()
        assert peak <= listen.PENDING
        closed_at_once = "connections closed at once (16 already waiting to say hello)"
        assert server.complaints.total[closed_at_once] > 100
        silent = f"connections that said nothing within {serving.HELLO_TIMEOUT:g} s"
        assert server.complaints.total[silent] + server.complaints.total[closed_at_once] == 300
        await asyncio.wait_for(run, LIMIT)
        # The job serves its viewers as before.
        assert server.served is not None
        viewer = await Viewer.connect(server.address, server.served.read_token)
        assert viewer.welcome.scopes == ("read",)
        await viewer.close()
        assert listener.pending == 0
    no_tracebacks(caplog)
    complaints = [r for r in caplog.records if r.name == "antflow.runstream.listen"]
    assert len(complaints) == 1  # one line per interval, whatever the count
    assert "connections closed at once" in complaints[0].getMessage()


# Issue 18.2: out of descriptors (the job's own files), accepting waits a moment and says
# so once, instead of a traceback per accept.
async def test_accepting_without_descriptors_pauses_and_says_so_once(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="antflow")
    monkeypatch.setattr(listen, "ACCEPT_PAUSE", 0.01)
    loop = asyncio.get_running_loop()
    real = loop.sock_accept
    failures = 0

    async def out_of_files(sock: socket.socket) -> tuple[socket.socket, Any]:
        nonlocal failures
        if failures < 50:
            failures += 1
            raise OSError(errno.EMFILE, "Too many open files")
        return await real(sock)

    monkeypatch.setattr(loop, "sock_accept", out_of_files)
    async with serve("tcp://127.0.0.1:0") as server:
        assert server.served is not None
        viewer = await Viewer.connect(server.address, server.served.read_token)
        await viewer.close()
    assert failures == 50
    no_tracebacks(caplog)
    lines = [r.getMessage() for r in caplog.records if r.name == "antflow.runstream.listen"]
    assert len(lines) == 1
    assert "out of file descriptors" in lines[0]


# Issue 18.3: a 2 KB line nested 1,000 deep before hello raised an uncaught
# RecursionError: a traceback per connection in the job's log.
async def test_deeply_nested_lines_are_refused_without_a_traceback(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger="antflow")
    nested = b'{"record":"hello","x":' + b"[" * 1000 + b"]" * 1000 + b"}\n"
    async with serve("tcp://127.0.0.1:0") as server:
        assert server.served is not None
        for _ in range(50):
            reader, writer = await asyncio.open_connection(*host_port(server))
            writer.write(nested)
            assert await asyncio.wait_for(reader.read(), LIMIT) == b""
            writer.close()
        # After hello too: a request nested that deep closes that viewer only.
        reader, writer = await raw_viewer(server)
        await wait_until(lambda: server.viewers == 1, steps=100_000)
        other = await Viewer.connect(server.address, server.served.read_token)
        writer.write(b'{"record":"item","id":1,"x":' + b"[" * 1000 + b"]" * 1000 + b"}\n")
        await writer.drain()
        await wait_until(lambda: server.viewers == 1, steps=100_000)
        assert await other.stack(1, "A-W0") is None  # still served
        await other.close()
        writer.close()
        total = server.complaints.total
        assert total["connections whose first line was not a hello"] == 50
        assert total["viewers that sent a line that is not a request"] == 1
    no_tracebacks(caplog)
    assert len([r for r in caplog.records if r.name.startswith("antflow")]) == 1


# Issue 18.4: a read-only viewer sending 4,000 requests and reading nothing grew the job
# from 30 to 240-290 MB: answers are bounded, and its requests wait in its own socket.
async def test_unread_answers_are_bounded_and_the_run_goes_on(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    sizes: list[tuple[int, int]] = []
    real_answer = outbox.Outbox.answer

    def answer(self: outbox.Outbox, line: bytes) -> None:
        sizes.append((self.answer_size, len(line)))
        real_answer(self, line)

    monkeypatch.setattr(outbox.Outbox, "answer", answer)
    async with serve("tcp://127.0.0.1:0") as server:
        run = asyncio.create_task(run_every_item())
        _reader, writer = await raw_viewer(server, buffer=2048)
        await wait_until(lambda: server.viewers == 1, steps=100_000)
        small_server_buffers(server)
        for n in range(2_000):
            key = ReprKey(repr(("item", 3 * (n % 200))))  # failed items: long answers
            writer.write(wire.line(wire.ItemRequest(id=n, pipeline=1, item=key)))
        await asyncio.wait_for(run, LIMIT)
        (viewer,) = server._viewers
        # An answer is added only while those waiting are under the bound.
        assert max(waiting + size for waiting, size in sizes) >= outbox.REPLY_BYTES
        assert all(waiting < outbox.REPLY_BYTES for waiting, _ in sizes)
        assert viewer.outbox.answer_size < outbox.REPLY_BYTES + max(size for _, size in sizes)
        assert len(sizes) < 2_000  # the rest wait, unread, in the viewer's own socket
        assert viewer.writer.transport.get_write_buffer_size() <= serving.WRITE_CHUNK + max(
            size for _, size in sizes
        )
        writer.close()


# Issue 18.5: one viewer reading 4 KB/s grew the job 31 -> 569 MB (the backlog was 2,000
# lines of up to ~380 KB); 176 of them: 1.3-2.1 GB. Bounded per viewer and in total.
async def test_slow_viewers_are_bounded_in_bytes_each_and_together(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(serving, "TICK", 0.01)
    monkeypatch.setattr(serving, "HELD_STATE_BYTES", 64 * 1024)
    offered: list[tuple[int, int, int, int]] = []
    real_offer = outbox.Outbox.offer

    def offer(self: outbox.Outbox, line: bytes) -> bool:
        fits = real_offer(self, line)
        offered.append((self.size, len(self.lines), self.budget.used, len(line)))
        return fits

    monkeypatch.setattr(outbox.Outbox, "offer", offer)
    held: list[int] = []
    real_bound = serving.RunServer._bound_held_state

    def bound(server: RunServer) -> None:
        real_bound(server)
        current = {id(one) for one in server._failure_cache.values()}
        past = {
            id(one): one.size
            for viewer in server._viewers
            for one in viewer.held
            if id(one) not in current
        }
        held.append(sum(past.values()))

    monkeypatch.setattr(serving.RunServer, "_bound_held_state", bound)
    async with serve("tcp://127.0.0.1:0") as server:
        slow = [await raw_viewer(server) for _ in range(8)]
        await wait_until(lambda: server.viewers == 8, steps=100_000)
        small_server_buffers(server)
        for _ in range(3):
            await run_every_item()
        assert offered
        longest = max(size for *_, size in offered)
        for size, lines, _, _ in offered:
            assert size <= outbox.QUEUE_BYTES or lines == 1
        assert max(used for _, _, used, _ in offered) <= outbox.TOTAL_BYTES + 8 * longest
        assert server.queued_bytes <= outbox.TOTAL_BYTES + 8 * longest
        assert all(viewer.gaps > 0 for viewer in server._viewers)
        # What slow viewers hold of past failure sets (their resynchronisations, half
        # written) is bounded too.
        assert held
        assert max(held) <= serving.HELD_STATE_BYTES
        # A slow viewer that reads again gets a gap, then the run's state afresh.
        reader, _ = slow[0]
        kinds: list[str] = []
        async with asyncio.timeout(LIMIT):
            while "snapshot" not in kinds[kinds.index("gap") :] if "gap" in kinds else True:
                kinds.append(type(wire.decode_from_server(await reader.readline())).__name__)
                kinds[-1] = kinds[-1].lower()
        for _, writer in slow:
            writer.close()


# Issue 18.5: a slow viewer holds the run's state it started to write (its failed items
# among it) while the job's moves on; such viewers together stay bounded too.
async def test_past_states_held_by_slow_viewers_are_bounded(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(serving, "HELD_STATE_BYTES", 250)
    server = serving.RunServer(RunStream())
    budget = outbox.Budget()

    def viewer_holding(*sets: Any) -> Any:
        viewer = serving._Viewer(
            writer=None,  # type: ignore[arg-type]
            scopes=(wire.READ,),
            interval=1.0,
            who="a viewer",
            outbox=outbox.Outbox(budget),
            pace=outbox.RequestPace(lambda: 0.0),
            resync=None,
        )
        viewer.outbox.resynchronise([b"state"])
        viewer.held = sets
        server._viewers.add(viewer)
        return viewer

    oldest, old, newest = (
        serving._FailureLines(n, [b"x" * 100], failed=True, size=100, made=n) for n in range(3)
    )
    server._failure_cache[1] = newest
    holding = [viewer_holding(oldest), viewer_holding(oldest, old), viewer_holding(old)]
    current = [viewer_holding(newest), viewer_holding(newest)]
    server._bound_held_state()
    assert [v.gaps for v in holding + current] == [0, 0, 0, 0, 0]  # 200 bytes of past sets
    server._failure_cache[1] = serving._FailureLines(3, [], failed=False, size=0, made=3)
    server._bound_held_state()  # 300 bytes: those holding the oldest start again
    assert [v.gaps for v in holding + current] == [1, 1, 0, 0, 0]
    assert [v.resync for v in holding] == ["gap", "gap", None]
    assert [len(v.outbox.state) for v in holding] == [0, 0, 1]


# Issue 18.5: viewers that went away while lines waited for them must not cost the job a
# log line per write ("socket.send() raised exception.", hundreds of them).
async def test_viewers_gone_with_lines_waiting_cost_no_log_lines(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING)

    async def fail(x: int) -> int:
        raise ValueError(f"failure {x}")

    async with serve("tcp://127.0.0.1:0") as server:
        await Pipeline([Stage("A", 4, [fail], task_attempts=1)]).run(range(5_000))
        for _ in range(4):
            # Hello, then gone before the state (ten lines of failures) is written.
            _, writer = await raw_viewer(server)
            writer.transport.abort()
        await wait_until(lambda: server.viewers == 0, steps=10_000)
        assert server.served is not None
        still = await Viewer.connect(server.address, server.served.read_token)
        await still.close()
    assert [r.getMessage() for r in caplog.records if r.name == "asyncio"] == []
    no_tracebacks(caplog)


# Issue 18.5: as the server closes, each viewer is handed the run's last state at once;
# 32 that had fallen behind were each handed the whole of it (5 MB of failures apiece).
async def test_what_viewers_are_handed_as_the_server_closes_is_bounded(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(serving, "FINAL_BYTES", 8 * 1024)

    async def fail(x: int) -> int:
        raise ValueError(f"failure {x}")

    async with serve("tcp://127.0.0.1:0") as server:
        behind = [await raw_viewer(server, buffer=1024) for _ in range(3)]
        await wait_until(lambda: server.viewers == 3, steps=100_000)
        small_server_buffers(server)
        await Pipeline([Stage("A", 4, [fail], task_attempts=1)]).run(range(5_000))
        for viewer in server._viewers:
            server._gap(viewer)  # behind: the whole state is due, 10 lines of failures
        handed = []
        for viewer in list(server._viewers):
            transport = viewer.writer.transport
            held = transport.get_write_buffer_size()
            server._flush(viewer)
            handed.append(transport.get_write_buffer_size() - held)
        state = sum(len(line) for line in server._failure_lines(1))
        longest = max(len(line) for line in server._failure_lines(1))
        assert state > 10 * serving.FINAL_BYTES
        assert all(size <= serving.FINAL_BYTES + longest for size in handed)
        for _, writer in behind:
            writer.close()
