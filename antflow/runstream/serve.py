"""Serve a running job's run stream to viewers on a socket: ``antflow.serve()``.

One `RunServer` per process. It listens on a Unix socket in a private folder (or on TCP,
on loopback unless told otherwise), answers each viewer that says hello with the right
token, and streams the run to it (see `antflow.runstream.wire`). Viewers come and go at
any time; a slow one never slows the pipeline: the pump only queues bytes, each viewer's
own task writes them, and a viewer whose queue fills gets a gap and a fresh snapshot.

Nothing an outsider does can make the job hold more than a bounded amount: connections
before hello and at once (`antflow.runstream.listen`), bytes waiting for each viewer and
for all of them, answers waiting, requests per second (`antflow.runstream.outbox`). A
viewer's stop reaches the script as `antflow.PipelineStopped` naming the viewer, and the
viewer gets its answer even though the job ends with it.

With no viewer connected the stream follows no events (a tail costs each event a
little), so serving costs the run almost nothing until someone looks.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import logging
import math
import os
import secrets
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
from antflow.runstream.listen import (
    Complaints,
    Listener,
    is_loopback,
    tcp_address,
    tcp_listener,
    unix_listener,
)
from antflow.runstream.outbox import Budget, Outbox, RequestPace
from antflow.runstream.records import Control, Gap, LogLine, Snapshot, Stop
from antflow.runstream.stream import RunStream

if TYPE_CHECKING:
    import socket
    from collections.abc import AsyncIterator, Awaitable, Callable

    from antflow.pipeline import Pipeline
    from antflow.runstream.records import Command

logger = logging.getLogger(__name__)

TICK: Final = 0.1
"""Seconds between the pump's reads of the stream."""
HELLO_TIMEOUT: Final = 2.0
"""Seconds a connection may take to say hello (a viewer says it at once)."""
MAX_VIEWERS: Final = 32
"""Viewers attached at once; more are refused with a message."""
WRITE_CHUNK: Final = 64 * 1024
"""Bytes handed to a viewer's socket before waiting for it to take them: what waits
beyond stays in the viewer's bounded outbox, where a gap can drop it."""
FAILURES_PART: Final = 500
"""Failed items a `Failures` line holds at most."""
FAILURES_EVERY: Final = 1.0
"""Seconds between resends of the failed items while events are being dropped."""
FINAL_BYTES: Final = 1024 * 1024
"""Bytes a viewer's socket may be handed at once as the server closes (its answers
first, then what fits of the last state): 32 viewers that had fallen behind were each
handed the whole state at the end, 5 MB of failures apiece."""
HELD_STATE_BYTES: Final = 16 * 1024 * 1024
"""Bytes of past failure sets that viewers still writing a resynchronisation may hold
together (a slow viewer holds the set it started with while the job's set moves on);
past it, the viewers holding the oldest start again from the current set."""
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
    who: str
    """How a stop it gives is told to the script: ``a viewer (antflow-tui attach, pid 42)``."""
    outbox: Outbox
    pace: RequestPace
    resync: str | None = "join"
    """The state is to be sent afresh: on joining (``join``), or after falling behind
    (``gap``). Until then nothing else is queued for it."""
    held: tuple[_FailureLines, ...] = ()
    """The failure sets the resynchronisation it is writing comes from."""
    awaiting: dict[int, bytes] = field(default_factory=dict)
    """Answers to send should the job end before they are made: a stop's, whose success
    may end the job before the stop returns."""
    snapshot_at: float = float("-inf")
    dropped: int = 0
    gaps: int = 0
    """How many times it fell behind and was resynchronised."""
    closed: bool = False


@dataclass(frozen=True, slots=True, eq=False)
class _FailureLines:
    """A pipeline's failed items as `Failures` lines, made once for every viewer."""

    version: int
    lines: list[bytes]
    failed: bool
    """Whether any item has failed."""
    size: int
    made: int
    """Sets are numbered as they are made (the oldest go first)."""


class RunServer:
    """Serves one run stream to any number of viewers.

    Args:
        stream: The run to serve.
        address: None for a Unix socket in the private runtime folder; ``unix:PATH``;
            or ``tcp://HOST:PORT`` (port 0 picks one).
        token: The control token (random when None); the read token is always random.
        control: Whether viewers may send commands at all (with the control token).
        allow_remote: Required to listen on an address other than loopback.
        execute: Carries out a viewer's command, given who asks (default: the stream's
            `RunStream.execute`; antflow-tui's own run passes its source's, so a
            viewer's stop is accounted as its own).
    """

    def __init__(
        self,
        stream: RunStream,
        *,
        address: str | None = None,
        token: str | None = None,
        control: bool = True,
        allow_remote: bool = False,
        execute: Callable[[Command, str], Awaitable[str]] | None = None,
    ) -> None:
        self.stream = stream
        self.requested_address = address
        self.read_token = secrets.token_urlsafe(24)
        self.control_token = (token or secrets.token_urlsafe(24)) if control else None
        self.allow_remote = allow_remote
        self.address = ""
        self.served: discovery.Served | None = None
        self.complaints = Complaints()
        """What outsiders got wrong (logged as counts, at most once per interval)."""
        self._execute = execute or self._execute_on_stream
        self._listener: Listener | None = None
        self._budget = Budget()
        self._viewers: set[_Viewer] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        self._pump: asyncio.Task[None] | None = None
        self._socket_path: Path | None = None
        self._pending: deque[bytes] = deque()
        self._failure_cache: dict[int, _FailureLines] = {}
        self._sets_made = 0
        self._failures_stale = False
        self._failures_sent_at = float("-inf")
        self._history: dict[int, deque[Snapshot]] = {}
        self._history_dropped = 0
        """The newest pipeline whose history was let go (older ones are not kept again)."""
        stream.on_record.append(self._on_record)
        stream.on_ended.append(self._pipeline_finished)

    @property
    def viewers(self) -> int:
        return len(self._viewers)

    @property
    def queued_bytes(self) -> int:
        """Bytes of lines waiting for all viewers together (bounded)."""
        return self._budget.used

    # ---------------------------------------------------------------- lifecycle

    async def start(self) -> discovery.Served:
        """Listen, and publish the discovery file; returns what it says.

        Raises:
            ValueError: a bad address, or one that is not loopback without
                `allow_remote`.
            OSError: it cannot listen there, or the runtime folder is not safe
                (`antflow.runstream.discovery.DiscoveryError`).
        """
        requested = self.requested_address
        if requested is None or requested.startswith("unix:"):
            folder = discovery.runtime_folder()
            path = Path(requested[5:]) if requested else folder / f"{os.getpid()}.sock"
            sock = unix_listener(path)
            self._socket_path = path
            self.address = f"unix:{path}"
        elif requested.startswith("tcp://"):
            sock = self._tcp(requested)
            self.address = tcp_address(sock)
        else:
            raise ValueError(f"unknown address {requested!r}; use unix:PATH or tcp://HOST:PORT")
        self._listener = Listener(
            sock, self._serve_viewer, limit=wire.MAX_LINE, complaints=self.complaints
        )
        self._listener.start()
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
            process_start=discovery.process_start(os.getpid()),
        )
        try:
            discovery.publish(self.served)
        except BaseException:
            await self._listener.close()
            self.cleanup()
            raise
        self._pump = asyncio.get_running_loop().create_task(self._pump_forever())
        return self.served

    def _tcp(self, requested: str) -> socket.socket:
        host, _, port_text = requested[6:].rpartition(":")
        host = host.strip("[]") or "127.0.0.1"
        try:
            port = int(port_text or 0)
        except ValueError:
            raise ValueError(
                f"{requested!r} has no port number; use tcp://HOST:PORT (0 picks a free one)"
            ) from None
        if not is_loopback(host):
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
        sock = tcp_listener(host, port)
        bound = sock.getsockname()[0]
        if not self.allow_remote and not is_loopback(bound):
            sock.close()
            raise ValueError(f"refusing to listen on {bound} ({host} resolves to it): not loopback")
        return sock

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
            self._drop(viewer, flush=True)
        if self._listener is not None:
            await self._listener.close()
            for task in list(self._listener.tasks):
                task.cancel()
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
            self.stream.on_ended.remove(self._pipeline_finished)

    def _pipeline_finished(self, _pipeline: int) -> None:
        """A pipeline's run ended: viewers get its final state at once (the process
        may exit before the next tick)."""
        self._broadcast_now(final=True)

    # ---------------------------------------------------------------- one viewer

    async def _serve_viewer(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        peer: str,
        admitted: Callable[[], None],
    ) -> None:
        viewer: _Viewer | None = None
        try:
            viewer = await self._welcome(reader, writer, peer)
            if viewer is None:
                return
            admitted()
            sender = asyncio.get_running_loop().create_task(self._send_forever(viewer))
            self._tasks.add(sender)
            sender.add_done_callback(self._tasks.discard)
            await self._read_requests(reader, viewer)
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        except asyncio.CancelledError:
            # The server closes (or the loop ends): the connection just ends, with what
            # was queued for it (the run's last state, a stop's answer) sent first.
            pass
        finally:
            if viewer is not None:
                self._drop(viewer, flush=True)
            else:
                writer.close()

    async def _welcome(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, peer: str
    ) -> _Viewer | None:
        complain = self.complaints.note
        try:
            first = await asyncio.wait_for(reader.readline(), HELLO_TIMEOUT)
        except TimeoutError:
            complain(f"connections that said nothing within {HELLO_TIMEOUT:g} s")
            return None
        except (ValueError, asyncio.LimitOverrunError):
            complain("connections whose first line was too long")
            return None
        if not first:
            return None
        try:
            hello = wire.decode_from_viewer(first)
        except msgspec.DecodeError:
            complain("connections whose first line was not a hello")
            return None
        if not isinstance(hello, wire.Hello):
            complain("connections whose first line was not a hello")
            return None
        if hello.version != wire.PROTOCOL:
            complain("hellos of another protocol version")
            await self._refuse(writer, f"protocol version {hello.version} is not {wire.PROTOCOL}")
            return None
        scopes = self._scopes(hello.token)
        if not scopes:
            complain("bad tokens")
            await self._refuse(writer, "bad token")
            return None
        if len(self._viewers) >= MAX_VIEWERS:
            complain(f"viewers refused ({MAX_VIEWERS} already attached)")
            await self._refuse(writer, f"{MAX_VIEWERS} viewers are attached already; try later")
            return None
        interval = hello.interval if math.isfinite(hello.interval) else 0.25
        loop = asyncio.get_running_loop()
        viewer = _Viewer(
            writer,
            scopes,
            min(max(interval, 0.05), 10.0),
            who=_who(hello.client, peer),
            outbox=Outbox(self._budget),
            pace=RequestPace(loop.time),
        )
        if not self._viewers:
            self.stream.follow(True)
        self._viewers.add(viewer)
        viewer.outbox.ready.set()  # its sender starts with the state (resync "join")
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

    def _resync(self, viewer: _Viewer) -> None:
        """Queue the whole state now, in place of what was waiting: a viewer's start
        (with the `History` of the last minutes), or its return from a gap. Made when
        its turn comes to be written, so a viewer that reads nothing holds nothing."""
        kind, viewer.resync = viewer.resync, None
        lines = []
        if kind == "join":
            header = self.stream.header
            welcome = wire.Welcome(scopes=viewer.scopes, pid=os.getpid(), script=header.script)
            lines += [wire.line(welcome), wire.line(header)]
        else:
            dropped = viewer.dropped + len(viewer.outbox.lines)
            lines.append(wire.line(Gap(at=self.stream.clock(), dropped=dropped)))
        viewer.dropped = 0
        state, viewer.held = self._state_lines(history=kind == "join")
        viewer.outbox.resynchronise(lines + state)
        viewer.snapshot_at = asyncio.get_running_loop().time()

    def _state_lines(self, *, history: bool) -> tuple[list[bytes], tuple[_FailureLines, ...]]:
        """Pipelines, (the history,) snapshots and failures: the whole state now, and
        the failure sets its lines come from."""
        lines = [wire.line(started) for started in self.stream.pipelines()]
        if history and self._history:
            kept = sorted((s for one in self._history.values() for s in one), key=lambda s: s.at)
            lines.append(wire.line(wire.History(snapshots=tuple(kept))))
        lines.extend(wire.line(snapshot) for snapshot in self.stream.snapshots())
        held = []
        for started in self.stream.pipelines():
            failures = self._failure_set(started.pipeline)
            if failures.failed:
                lines.extend(failures.lines)
                held.append(failures)
        return lines, tuple(held)

    def _bound_held_state(self) -> None:
        """Past failure sets that slow viewers hold (each one's resynchronisation, half
        written) stay under `HELD_STATE_BYTES` together: the viewers holding the oldest
        start again from the current sets (one of which they then share)."""
        current = {id(failures) for failures in self._failure_cache.values()}
        past: dict[int, tuple[_FailureLines, list[_Viewer]]] = {}
        for viewer in self._viewers:
            if not viewer.outbox.state:
                viewer.held = ()
                continue
            for failures in viewer.held:
                if id(failures) not in current:
                    past.setdefault(id(failures), (failures, []))[1].append(viewer)
        total = sum(failures.size for failures, _ in past.values())
        for failures, holders in sorted(past.values(), key=lambda one: one[0].made):
            if total <= HELD_STATE_BYTES:
                break
            for viewer in holders:
                if viewer.held:
                    self._gap(viewer)
            total -= failures.size

    async def _read_requests(self, reader: asyncio.StreamReader, viewer: _Viewer) -> None:
        while not viewer.closed:
            # A viewer that does not read its answers is not read either: its requests
            # wait in its own socket, not in the job.
            await viewer.outbox.room_for_answers()
            try:
                data = await reader.readline()
            except (ValueError, asyncio.LimitOverrunError):
                self.complaints.note("viewers that sent a line too long")
                return  # the connection closes, nothing else
            if not data:
                return
            try:
                request = wire.decode_from_viewer(data)
            except msgspec.DecodeError:
                self.complaints.note("viewers that sent a line that is not a request")
                return
            if isinstance(request, wire.Hello):
                return
            wait = viewer.pace.wait()
            if wait > 0:
                await asyncio.sleep(wait)
            command = request.command if isinstance(request, wire.CommandRequest) else None
            if isinstance(command, Stop) and wire.CONTROL in viewer.scopes:
                notice = self.stream.stop_notice(command.force)
                viewer.awaiting[request.id] = wire.line(wire.Reply(request.id, result=notice))
            reply = await self._answer(request, viewer)
            viewer.awaiting.pop(request.id, None)
            if not viewer.closed:
                viewer.outbox.answer(wire.line(reply))

    async def _answer(self, request: wire.Request, viewer: _Viewer) -> wire.Reply:
        try:
            if isinstance(request, wire.ItemRequest):
                detail = self.stream.item(request.pipeline, request.item)
                return wire.Reply(request.id, detail=detail)
            if isinstance(request, wire.StackRequest):
                stack = self.stream.worker_stack(request.pipeline, request.worker)
                return wire.Reply(request.id, stack=stack)
        except Exception as error:  # a request must never take the server down
            self.complaints.note(f"requests that failed ({type(error).__name__})")
            return wire.Reply(request.id, error=f"{type(error).__name__}: {error}")
        if wire.CONTROL not in viewer.scopes:
            return wire.Reply(request.id, error="this viewer may only watch (read-only token)")
        try:
            result = await self._execute(request.command, viewer.who)
        except Exception as error:  # a command must never take the server down
            logger.exception("command %r failed", request.command)
            return wire.Reply(request.id, error=f"{type(error).__name__}: {safe_str(error)}")
        return wire.Reply(request.id, result=result)

    async def _execute_on_stream(self, command: Command, by: str) -> str:
        return await self.stream.execute(command, by=by)

    async def _send_forever(self, viewer: _Viewer) -> None:
        writer = viewer.writer
        outbox = viewer.outbox
        try:
            while not viewer.closed:
                await outbox.ready.wait()
                outbox.ready.clear()
                while not viewer.closed:
                    if writer.transport.is_closing():
                        # The viewer has gone (asyncio would log each write from now on).
                        return
                    if viewer.resync is not None:
                        self._resync(viewer)
                    data = outbox.take()
                    if data is None:
                        break
                    writer.write(data)
                    if writer.transport.get_write_buffer_size() >= WRITE_CHUNK:
                        await writer.drain()
                await writer.drain()
        except (ConnectionError, RuntimeError):
            pass
        except asyncio.CancelledError:
            # The loop ends (asyncio.run cancels every task): what is queued, the last
            # snapshots among it, goes to the transport, which sends it as it closes.
            self._drop(viewer, flush=True)
            raise
        finally:
            self._drop(viewer)

    def _drop(self, viewer: _Viewer, *, flush: bool = False) -> None:
        """The viewer is gone, or goes now (`flush`: with what was queued for it)."""
        if viewer.closed:
            return
        if flush:
            with contextlib.suppress(Exception):
                self._flush(viewer)
        viewer.closed = True
        viewer.outbox.close()
        viewer.outbox.ready.set()
        self._viewers.discard(viewer)
        with contextlib.suppress(Exception):
            viewer.writer.close()
        if not self._viewers:
            self.stream.follow(False)

    def _flush(self, viewer: _Viewer) -> None:
        """Hand everything queued for the viewer to its transport at once (it sends what
        it holds as it closes), with the answers the job's end would otherwise lose."""
        if viewer.resync is not None:
            self._resync(viewer)
        for line in viewer.awaiting.values():
            viewer.outbox.answer(line)
        viewer.awaiting.clear()
        transport = viewer.writer.transport
        while (
            not transport.is_closing()
            and (viewer.outbox.answers or transport.get_write_buffer_size() < FINAL_BYTES)
            and (data := viewer.outbox.take()) is not None
        ):
            viewer.writer.write(data)

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
                self._bound_held_state()
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
            if viewer.resync is not None:
                # Its state will be sent afresh: what happens until then is in it.
                if viewer.resync == "gap":
                    viewer.dropped += len(lines)
                continue
            outbox = viewer.outbox
            fits = all(outbox.offer(data) for data in lines)
            due = now is not None and now - viewer.snapshot_at >= viewer.interval
            if fits and (due or final):
                if snapshot_lines is None:
                    snapshot_lines = [wire.line(s) for s in self.stream.snapshots()]
                fits = all(outbox.offer(data) for data in snapshot_lines)
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

    def _failure_lines(self, pipeline: int) -> list[bytes]:
        return self._failure_set(pipeline).lines

    def _failure_set(self, pipeline: int) -> _FailureLines:
        """A pipeline's failed items as `Failures` lines, in parts of `FAILURES_PART`
        without tracebacks; made once for every viewer until the failures change."""
        version = self.stream.failure_version(pipeline)
        cached = self._failure_cache.get(pipeline)
        if cached is None or cached.version != version:
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
            size = sum(len(line) for line in lines)
            self._sets_made += 1
            cached = _FailureLines(version, lines, bool(failures), size, self._sets_made)
            self._failure_cache[pipeline] = cached
        return cached

    def _gap(self, viewer: _Viewer) -> None:
        """The viewer fell behind: forget what it has not read; its writer sends a gap
        and the state afresh when it can."""
        viewer.dropped += viewer.outbox.drop()
        viewer.outbox.state.clear()
        viewer.held = ()
        viewer.gaps += 1
        viewer.resync = "gap"
        viewer.outbox.ready.set()


def _who(client: str, peer: str) -> str:
    """A viewer as the script is told of it (`client` is what the viewer says it is)."""
    said = "".join(ch for ch in client if ch.isprintable())[: wire.MAX_CLIENT]
    return f"a viewer ({said}, {peer})" if said else f"a viewer ({peer})"


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
    process from the first one's start until its event loop ends. A serve that cannot
    start is said at once on stderr, and the run goes on unserved."""
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
            task = loop.create_task(
                _serve_while_the_loop_runs(server, setting), name="antflow serve"
            )
            # The loop keeps only a weak reference to a task.
            _serving.add(task)
            task.add_done_callback(_serving.discard)
            import atexit

            atexit.register(server.cleanup)

    global _stop_serving_from_environment
    _stop_serving_from_environment = observe_process(on_start)


_serving: set[asyncio.Task[None]] = set()
_stop_serving_from_environment: Callable[[], None] | None = None


def take_over_environment() -> str | None:
    """For a monitor that serves a run itself (``antflow-tui SCRIPT``): stop serving
    from ``ANTFLOW_SERVE`` (nothing was served yet if no pipeline started), and return
    the address it asks for (``""``: the default), or None when it asks for nothing."""
    global _stop_serving_from_environment
    if _stop_serving_from_environment is None:
        return None
    _stop_serving_from_environment()
    _stop_serving_from_environment = None
    setting = os.environ.get(ENVIRONMENT_VARIABLE, "")
    return "" if setting in ("1", "true", "yes") else setting


async def _serve_while_the_loop_runs(server: RunServer, setting: str) -> None:
    """Serve until the loop ends: ``asyncio.run`` cancels this task as the script's
    main() returns, and the viewers get the run's last state before the socket closes
    (instead of a connection cut at interpreter exit)."""
    try:
        await server.start()
    except (OSError, ValueError) as error:
        server.cleanup()
        print(
            f"antflow: {ENVIRONMENT_VARIABLE}={setting}: cannot serve this run: {error}. "
            f"The run goes on without it.",
            file=sys.stderr,
            flush=True,
        )
        return
    try:
        await asyncio.Event().wait()
    finally:
        await server.close()
