"""Serve a running job's run stream to viewers on a socket: ``antflow.serve()``.

One `RunServer` per process. It listens on a Unix socket in a private folder (or on TCP,
on loopback unless told otherwise), answers each viewer that says hello with the right
token, and streams the run to it (see `antflow.runstream.wire`). Viewers come and go at
any time; a slow one never slows the pipeline: the pump only queues bytes, each viewer's
own task writes them, and a viewer whose queue fills gets a gap and a fresh snapshot.

With no viewer connected the stream follows no events (a tail costs each event a
little), so serving costs the run almost nothing until someone looks.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import ipaddress
import logging
import os
import secrets
import stat
import sys
import weakref
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Final

import msgspec

from antflow._safe import safe_str
from antflow.observe import observe, observe_process
from antflow.runstream import discovery, wire
from antflow.runstream.records import Control, Gap, LogLine, PipelineStarted, Snapshot
from antflow.runstream.stream import RunStream

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Callable

    from antflow.pipeline import Pipeline

logger = logging.getLogger(__name__)

TICK: Final = 0.1
"""Seconds between the pump's reads of the stream."""
QUEUE_LINES: Final = 2_000
"""Lines a viewer may have waiting before it is resynchronised (a gap and a snapshot)."""
HELLO_TIMEOUT: Final = 5.0
FAILURES_PART: Final = 500
"""Failed items a `Failures` line holds at most."""
FAILURES_EVERY: Final = 1.0
"""Seconds between resends of the failed items while events are being dropped."""
HISTORY_EVERY: Final = 2.0
"""Seconds between the snapshots kept for a late viewer's trends..."""
HISTORY_KEPT: Final = 120
"""...and how many each pipeline keeps (four minutes, what a viewer's trends span)..."""
HISTORY_PIPELINES: Final = 16
"""...for the latest pipelines this many (a script may run thousands, one after another)."""
ENVIRONMENT_VARIABLE: Final = "ANTFLOW_SERVE"


@dataclass(eq=False)
class _Viewer:
    writer: asyncio.StreamWriter
    scopes: tuple[str, ...]
    interval: float
    queue: deque[bytes] = field(default_factory=deque)
    replies: deque[bytes] = field(default_factory=deque)
    """Answers to its requests: outside the bound and never cleared by a gap, since the
    viewer waits for each."""
    ready: asyncio.Event = field(default_factory=asyncio.Event)
    snapshot_at: float = float("-inf")
    dropped: int = 0
    gaps: int = 0
    """How many times it fell behind and was resynchronised."""
    closed: bool = False

    def send(self, data: bytes) -> bool:
        """Queue a line; False when the queue is full (the viewer fell behind)."""
        if self.closed:
            return True
        if len(self.queue) >= QUEUE_LINES:
            return False
        self.queue.append(data)
        self.ready.set()
        return True

    def reply(self, data: bytes) -> None:
        if not self.closed:
            self.replies.append(data)
            self.ready.set()


class RunServer:
    """Serves one run stream to any number of viewers.

    Args:
        stream: The run to serve.
        address: None for a Unix socket in the private runtime folder; ``unix:PATH``;
            or ``tcp://HOST:PORT`` (port 0 picks one).
        token: The control token (random when None); the read token is always random.
        control: Whether viewers may send commands at all (with the control token).
        allow_remote: Required to listen on an address other than loopback.
    """

    def __init__(
        self,
        stream: RunStream,
        *,
        address: str | None = None,
        token: str | None = None,
        control: bool = True,
        allow_remote: bool = False,
    ) -> None:
        self.stream = stream
        self.requested_address = address
        self.read_token = secrets.token_urlsafe(24)
        self.control_token = (token or secrets.token_urlsafe(24)) if control else None
        self.allow_remote = allow_remote
        self.address = ""
        self.served: discovery.Served | None = None
        self._server: asyncio.base_events.Server | None = None
        self._viewers: set[_Viewer] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        self._pump: asyncio.Task[None] | None = None
        self._socket_path: Path | None = None
        self._pending: deque[bytes] = deque()
        self._failure_cache: dict[int, tuple[int, list[bytes], bool]] = {}
        self._failures_stale = False
        self._failures_sent_at = float("-inf")
        self._history: dict[int, deque[Snapshot]] = {}
        self._history_dropped = 0
        """The newest pipeline whose history was let go (older ones are not kept again)."""
        stream.on_record.append(self._on_record)
        self._monitors: list[Callable[[], None]] = []
        stream.on_attach.append(self._on_attach)
        for _, pipeline in stream.live_pipelines():
            self._watch_end(pipeline)

    @property
    def viewers(self) -> int:
        return len(self._viewers)

    # ---------------------------------------------------------------- lifecycle

    async def start(self) -> discovery.Served:
        """Listen, and publish the discovery file; returns what it says."""
        requested = self.requested_address
        if requested is None or requested.startswith("unix:"):
            folder = discovery.runtime_folder()
            path = Path(requested[5:]) if requested else folder / f"{os.getpid()}.sock"
            with contextlib.suppress(FileNotFoundError):
                if not stat.S_ISSOCK(path.lstat().st_mode):
                    raise ValueError(f"{path} exists and is not a socket; choose another path")
                path.unlink()  # a socket left by an earlier run
            self._server = await asyncio.start_unix_server(
                self._serve_viewer, path=str(path), limit=wire.MAX_LINE
            )
            os.chmod(path, 0o600)
            self._socket_path = path
            self.address = f"unix:{path}"
        elif requested.startswith("tcp://"):
            host, _, port = requested[6:].rpartition(":")
            host = host.strip("[]") or "127.0.0.1"
            if not _loopback(host):
                if not self.allow_remote:
                    raise ValueError(
                        f"refusing to listen on {host}: it is not loopback, so anyone who can "
                        f"reach this machine could try to connect. Use an ssh tunnel, or pass "
                        f"allow_remote=True (antflow-tui: --allow-remote) if you mean it."
                    )
                print(
                    f"antflow: WARNING: serving on {host}:{port}, reachable from other machines; "
                    f"only the token protects it",
                    file=sys.stderr,
                )
            self._server = await asyncio.start_server(
                self._serve_viewer, host=host, port=int(port or 0), limit=wire.MAX_LINE
            )
            bound = self._server.sockets[0].getsockname()
            self.address = f"tcp://{host}:{bound[1]}"
        else:
            raise ValueError(f"unknown address {requested!r}; use unix:PATH or tcp://HOST:PORT")
        header = self.stream.header
        self.served = discovery.Served(
            pid=os.getpid(),
            address=self.address,
            read_token=self.read_token,
            control_token=self.control_token,
            script=header.script,
            argv=header.argv,
            started_at=header.started_at,
            path=discovery.runtime_folder() / f"{os.getpid()}.json",
        )
        discovery.publish(self.served)
        self._pump = asyncio.get_running_loop().create_task(self._pump_forever())
        return self.served

    async def close(self) -> None:
        """Tell viewers the run has ended, stop listening, remove the discovery file."""
        # First: a viewer whose connection drops looks for the job again, and must not
        # find this one while it closes.
        if self.served is not None:
            discovery.withdraw(self.served)
        if self._pump is not None:
            self._pump.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._pump
            self._pump = None
        # The last state, snapshots included, handed to each transport before it closes
        # (a closing transport still sends what it holds): viewers see how the run ended.
        self._broadcast_now(final=True)
        for viewer in list(self._viewers):
            with contextlib.suppress(Exception):
                while viewer.queue:
                    viewer.writer.write(viewer.queue.popleft())
            self._drop(viewer)
        if self._server is not None:
            self._server.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 1.0)
        for task in list(self._tasks):
            task.cancel()
        self.cleanup()

    def cleanup(self) -> None:
        """Remove the discovery file and the socket (also safe at interpreter exit)."""
        if self.served is not None:
            discovery.withdraw(self.served)
        if self._socket_path is not None:
            with contextlib.suppress(OSError):
                self._socket_path.unlink()
        with contextlib.suppress(ValueError):
            self.stream.on_record.remove(self._on_record)
        with contextlib.suppress(ValueError):
            self.stream.on_attach.remove(self._on_attach)
        for remove in self._monitors:
            remove()
        self._monitors.clear()

    def _on_attach(self, pipeline: Pipeline, _started: PipelineStarted) -> None:
        self._watch_end(pipeline)

    def _watch_end(self, pipeline: Pipeline) -> None:
        # The hour-long interval: only the run's end matters here (a snapshot per run).
        self._monitors.append(pipeline.add_monitor(_RunEnd(self), interval=3600.0))

    def _pipeline_finished(self) -> None:
        """A pipeline's run ended: viewers get its final state at once (the process
        may exit before the next tick)."""
        self._broadcast_now(final=True)

    # ---------------------------------------------------------------- one viewer

    async def _serve_viewer(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        viewer: _Viewer | None = None
        try:
            viewer = await self._welcome(reader, writer)
            if viewer is None:
                return
            sender = asyncio.get_running_loop().create_task(self._send_forever(viewer))
            self._tasks.add(sender)
            sender.add_done_callback(self._tasks.discard)
            await self._read_requests(reader, viewer)
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        except asyncio.CancelledError:
            # The server closes (or the loop ends): the connection just ends. Python
            # 3.11's start_server reports a cancelled handler as an error ("Exception in
            # callback ... task.exception()"), so this one ends normally instead.
            pass
        finally:
            if viewer is not None:
                self._drop(viewer)
            else:
                writer.close()
            self._tasks.discard(task)

    async def _welcome(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> _Viewer | None:
        try:
            first = await asyncio.wait_for(reader.readline(), HELLO_TIMEOUT)
            hello = wire.decode_from_viewer(first)
        except (TimeoutError, ValueError, msgspec.DecodeError, asyncio.LimitOverrunError):
            return None
        if not isinstance(hello, wire.Hello):
            return None
        if hello.version != wire.PROTOCOL:
            await self._refuse(writer, f"protocol version {hello.version} is not {wire.PROTOCOL}")
            return None
        scopes = self._scopes(hello.token)
        if not scopes:
            await self._refuse(writer, "bad token")
            return None
        interval = min(max(hello.interval, 0.05), 10.0)
        viewer = _Viewer(writer, scopes, interval)
        header = self.stream.header
        viewer.send(wire.line(wire.Welcome(scopes=scopes, pid=os.getpid(), script=header.script)))
        viewer.send(wire.line(header))
        if not self._viewers:
            self.stream.follow(True)
        self._viewers.add(viewer)
        self._resync(viewer, history=True)
        return viewer

    def _scopes(self, token: str) -> tuple[str, ...]:
        given = token.encode()
        if self.control_token is not None and hmac.compare_digest(
            given, self.control_token.encode()
        ):
            return (wire.READ, wire.CONTROL)
        if hmac.compare_digest(given, self.read_token.encode()):
            return (wire.READ,)
        return ()

    @staticmethod
    async def _refuse(writer: asyncio.StreamWriter, reason: str) -> None:
        with contextlib.suppress(ConnectionError):
            writer.write(wire.line(wire.Refused(reason)))
            await writer.drain()

    def _resync(self, viewer: _Viewer, *, history: bool = False) -> None:
        """The whole state now: pipelines, snapshots, failures (a late viewer's start,
        with the `history` of the last minutes; a viewer back from a gap has its own)."""
        for started in self.stream.pipelines():
            viewer.send(wire.line(started))
        if history and self._history:
            kept = sorted((s for one in self._history.values() for s in one), key=lambda s: s.at)
            viewer.send(wire.line(wire.History(snapshots=tuple(kept))))
        for snapshot in self.stream.snapshots():
            viewer.send(wire.line(snapshot))
        for started in self.stream.pipelines():
            for line in self._failure_lines(started.pipeline, skip_empty=True):
                viewer.send(line)
        viewer.snapshot_at = asyncio.get_running_loop().time()

    async def _read_requests(self, reader: asyncio.StreamReader, viewer: _Viewer) -> None:
        while True:
            try:
                data = await reader.readline()
            except (ValueError, asyncio.LimitOverrunError):
                return  # a line over the limit: the connection closes, nothing else
            if not data:
                return
            try:
                request = wire.decode_from_viewer(data)
            except msgspec.DecodeError:
                return
            if isinstance(request, wire.Hello):
                return
            viewer.reply(wire.line(await self._answer(request, viewer)))

    async def _answer(self, request: wire.Request, viewer: _Viewer) -> wire.Reply:
        if isinstance(request, wire.ItemRequest):
            return wire.Reply(request.id, detail=self.stream.item(request.pipeline, request.item))
        if isinstance(request, wire.StackRequest):
            stack = self.stream.worker_stack(request.pipeline, request.worker)
            return wire.Reply(request.id, stack=stack)
        if wire.CONTROL not in viewer.scopes:
            return wire.Reply(request.id, error="this viewer may only watch (read-only token)")
        try:
            result = await self.stream.execute(request.command)
        except Exception as error:  # a command must never take the server down
            logger.exception("command %r failed", request.command)
            return wire.Reply(request.id, error=f"{type(error).__name__}: {safe_str(error)}")
        return wire.Reply(request.id, result=result)

    async def _send_forever(self, viewer: _Viewer) -> None:
        writer = viewer.writer
        try:
            while not viewer.closed:
                await viewer.ready.wait()
                viewer.ready.clear()
                while viewer.replies:
                    writer.write(viewer.replies.popleft())
                while viewer.queue:
                    writer.write(viewer.queue.popleft())
                await writer.drain()
        except (ConnectionError, RuntimeError):
            pass
        except asyncio.CancelledError:
            # The loop ends (asyncio.run cancels every task): what is queued, the last
            # snapshots among it, goes to the transport, which sends it as it closes.
            with contextlib.suppress(Exception):
                while viewer.queue:
                    writer.write(viewer.queue.popleft())
            raise
        finally:
            self._drop(viewer)

    def _drop(self, viewer: _Viewer) -> None:
        if viewer.closed:
            return
        viewer.closed = True
        viewer.ready.set()
        self._viewers.discard(viewer)
        with contextlib.suppress(Exception):
            viewer.writer.close()
        if not self._viewers:
            self.stream.follow(False)

    # ---------------------------------------------------------------- the pump

    def _on_record(self, record: LogLine | Control) -> None:
        # Logs come from any thread: a deque's append and popleft are atomic.
        if self._viewers:
            self._pending.append(wire.line(record))

    async def _pump_forever(self) -> None:
        loop = asyncio.get_running_loop()
        history_due = loop.time() + HISTORY_EVERY
        while True:
            await asyncio.sleep(TICK)
            now = loop.time()
            if now >= history_due:
                history_due = now + HISTORY_EVERY
                try:
                    self._keep_history()
                except Exception:  # the trends of late viewers are not worth a stop
                    logger.exception("serving: keeping the run's history failed; going on")
            if not self._viewers:
                self.stream.take_errors()
                self.stream.take_logs()
                self.stream.take_pipelines()
                self._pending.clear()
                continue
            try:
                self._broadcast_now(loop.time())
            except Exception:  # one bad tick must not end the serving
                logger.exception("serving: a broadcast failed; going on")

    def _keep_history(self) -> None:
        """One snapshot of each pipeline into its bounded history, stripped to what
        trends read (the stage rows' counts)."""
        # Only the newest pipelines are looked at: a script may have run thousands.
        for started in self.stream.pipelines()[-HISTORY_PIPELINES:]:
            number = started.pipeline
            if number <= self._history_dropped:
                continue  # an older pipeline than those kept
            kept = self._history.get(number)
            if kept and not kept[-1].running and not self.stream.is_running(number):
                continue  # ended and already kept so: nothing new to draw
            snapshot = self.stream.snapshot(number)
            if kept is None:
                kept = self._history[number] = deque(maxlen=HISTORY_KEPT)
                while len(self._history) > HISTORY_PIPELINES:
                    oldest = min(self._history)
                    del self._history[oldest]
                    self._history_dropped = max(self._history_dropped, oldest)
            stages = tuple(
                msgspec.structs.replace(row, slowest=(), histogram=()) for row in snapshot.stages
            )
            kept.append(msgspec.structs.replace(snapshot, stages=stages, workers=()))

    def _broadcast_now(self, now: float | None = None, *, final: bool = False) -> None:
        """Send what the stream has to every viewer; snapshots to those due one (`now`),
        or to all (`final`: a pipeline's run ended, or the server closes)."""
        if not self._viewers:
            return
        lines = [wire.line(started) for started in self.stream.take_pipelines()]
        lines.extend(wire.line(error) for error in self.stream.take_errors())
        events, dropped = self.stream.events()
        if events or dropped:
            lines.append(wire.line(wire.Events(events=tuple(events), dropped=dropped)))
        lines.extend(self._failures_if_stale(dropped, now, final=final))
        self.stream.take_logs()  # log lines reach viewers through _on_record
        while self._pending:
            lines.append(self._pending.popleft())
        snapshot_lines: list[bytes] | None = None
        for viewer in list(self._viewers):
            fits = all(viewer.send(data) for data in lines)
            due = now is not None and now - viewer.snapshot_at >= viewer.interval
            if due or final:
                if snapshot_lines is None:
                    snapshot_lines = [wire.line(s) for s in self.stream.snapshots()]
                fits = all(viewer.send(data) for data in snapshot_lines) and fits
                if now is not None:
                    viewer.snapshot_at = now
            if not fits:
                self._gap(viewer)

    def _failures_if_stale(self, dropped: int, now: float | None, *, final: bool) -> list[bytes]:
        """Every pipeline's failed items, when events were dropped since they were last
        sent (a viewer follows failures from events: without all of them it could not),
        at most once a second, and at the end."""
        self._failures_stale = self._failures_stale or dropped > 0
        if not self._failures_stale:
            return []
        due = now is not None and now - self._failures_sent_at >= FAILURES_EVERY
        if not (due or final):
            return []
        self._failures_stale = False
        if now is not None:
            self._failures_sent_at = now
        return [
            line
            for started in self.stream.pipelines()
            for line in self._failure_lines(started.pipeline)
        ]

    def _failure_lines(self, pipeline: int, *, skip_empty: bool = False) -> list[bytes]:
        """A pipeline's failed items as `Failures` lines, in parts of `FAILURES_PART`
        without tracebacks; made once for every viewer until the failures change."""
        version = self.stream.failure_version(pipeline)
        cached = self._failure_cache.get(pipeline)
        if cached is None or cached[0] != version:
            failures = self.stream.failures(pipeline, tracebacks=False)
            parts = [
                tuple(failures[start : start + FAILURES_PART])
                for start in range(0, len(failures), FAILURES_PART)
            ] or [()]
            lines = [
                wire.line(
                    wire.Failures(
                        pipeline=pipeline, failures=part, part=n, last=n == len(parts) - 1
                    )
                )
                for n, part in enumerate(parts)
            ]
            cached = self._failure_cache[pipeline] = (version, lines, bool(failures))
        return [] if skip_empty and not cached[2] else cached[1]

    def _gap(self, viewer: _Viewer) -> None:
        """The viewer fell behind: forget what it has not read, say so, start it afresh."""
        viewer.dropped += len(viewer.queue)
        viewer.gaps += 1
        viewer.queue.clear()
        at = self.stream.clock()
        viewer.send(wire.line(Gap(at=at, dropped=viewer.dropped)))
        viewer.dropped = 0
        self._resync(viewer)


class _RunEnd:
    """A dashboard that only tells the server a pipeline's run has ended."""

    def __init__(self, server: RunServer) -> None:
        self._server = server

    def on_start(self, pipeline: Pipeline, total_items: int) -> None:
        pass

    def on_update(self, snapshot: object) -> None:
        pass

    def on_finish(self, results: object, summary: object) -> None:
        self._server._pipeline_finished()


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@contextlib.asynccontextmanager
async def serve(
    address: str | None = None,
    token: str | None = None,
    control: bool = True,
    *,
    allow_remote: bool = False,
) -> AsyncIterator[RunServer]:
    """Serve every pipeline started inside the block to ``antflow-tui attach``.

    Args:
        address: None for a private Unix socket (found by ``antflow-tui attach``),
            ``unix:PATH``, or ``tcp://127.0.0.1:PORT``.
        token: The control token (random when None; read it from `RunServer.served`).
        control: Allow viewers with the control token to pause, retry and stop.
        allow_remote: Required for a non-loopback TCP address.
    """
    script = os.path.basename(sys.argv[0]) if sys.argv and sys.argv[0] else None
    stream = RunStream(argv=sys.argv, script=script, follow_events=False)
    server = RunServer(
        stream, address=address, token=token, control=control, allow_remote=allow_remote
    )
    await server.start()
    try:
        with observe(stream.attach):
            yield server
    finally:
        await server.close()
        stream.close()


def serve_from_environment() -> None:
    """With ``ANTFLOW_SERVE`` set (``1`` or an address), serve every pipeline of this
    process from the first one's start until its event loop ends."""
    setting = os.environ.get(ENVIRONMENT_VARIABLE)
    if not setting or setting in ("0", "false", "no"):
        return
    address = None if setting in ("1", "true", "yes") else setting
    script = os.path.basename(sys.argv[0]) if sys.argv and sys.argv[0] else None
    stream = RunStream(argv=sys.argv, script=script, follow_events=False)
    servers: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, RunServer] = (
        weakref.WeakKeyDictionary()
    )

    def on_start(pipeline: Pipeline) -> None:
        stream.attach(pipeline)
        loop = asyncio.get_running_loop()
        if loop not in servers:
            server = servers[loop] = RunServer(stream, address=address)
            task = loop.create_task(_serve_while_the_loop_runs(server), name="antflow serve")
            # The loop keeps only a weak reference to a task.
            _serving.add(task)
            task.add_done_callback(_serving.discard)
            import atexit

            atexit.register(server.cleanup)

    observe_process(on_start)


_serving: set[asyncio.Task[None]] = set()


async def _serve_while_the_loop_runs(server: RunServer) -> None:
    """Serve until the loop ends: ``asyncio.run`` cancels this task as the script's
    main() returns, and the viewers get the run's last state before the socket closes
    (instead of a connection cut at interpreter exit)."""
    await server.start()
    try:
        await asyncio.Event().wait()
    finally:
        await server.close()
