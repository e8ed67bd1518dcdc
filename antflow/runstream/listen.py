"""Accepting viewers' connections without letting outsiders take what the job needs.

Anyone who can reach a TCP port can connect and say nothing. The job must not pay for
that with its own file descriptors: connections that have not said hello yet are few
(`PENDING`; more are closed at once), all connections together are few (`CONNECTIONS`,
or fewer when the process may open few files), and when the process is out of
descriptors anyway (the job's own files) the listener waits a moment instead of spinning,
saying so once. What outsiders get wrong is logged at most once per `COMPLAIN_EVERY`
seconds, as counts: never a traceback per connection.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import ipaddress
import logging
import os
import resource
import socket
import stat
import struct
import time
from collections import Counter
from typing import TYPE_CHECKING, Final

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable
    from pathlib import Path

logger = logging.getLogger(__name__)

PENDING: Final = 16
"""Connections that have not said hello yet; more are closed at once."""
CONNECTIONS: Final = 64
"""Connections at once, viewers included..."""
FILES_SHARE: Final = 16
"""...and at most this fraction of the files the process may open (1/16: 64 of 1,024)."""
ACCEPT_PAUSE: Final = 0.5
"""Seconds without accepting after the process ran out of descriptors."""
COMPLAIN_EVERY: Final = 10.0
"""Seconds between two log lines about what outsiders got wrong."""
BACKLOG: Final = 64
_OUT_OF_RESOURCES: Final = frozenset({errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM})
_CLOSED: Final = frozenset({errno.EBADF, errno.EINVAL, errno.ENOTSOCK})


class Complaints:
    """What outsiders did wrong, logged as counts at most once per `every` seconds.

    Args:
        every: Seconds between two log lines.
        clock: Monotonic seconds.
    """

    def __init__(
        self, every: float = COMPLAIN_EVERY, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.every = every
        self._clock = clock
        self._counts: Counter[str] = Counter()
        self._next = float("-inf")
        self.total: Counter[str] = Counter()
        """Every complaint so far, by what it was about."""

    def note(self, what: str) -> None:
        """One more of `what` (``"bad tokens"``); logs the counts if it is time."""
        self._counts[what] += 1
        self.total[what] += 1
        now = self._clock()
        if now < self._next:
            return
        first = self._next == float("-inf")
        self._next = now + self.every
        counts = "; ".join(f"{thing}: {n:,}" for thing, n in self._counts.items())
        self._counts.clear()
        since = "" if first else " since the last such line"
        logger.warning(
            "serving: %s (counted%s; said at most once per %g s)", counts, since, self.every
        )


def connection_limit(wanted: int = CONNECTIONS) -> int:
    """The most connections to hold at once: `wanted`, or fewer when the process may
    open few files (the job's own come first)."""
    try:
        soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    except (OSError, ValueError):
        return wanted
    if soft == resource.RLIM_INFINITY:
        return wanted
    return max(4, min(wanted, soft // FILES_SHARE))


def peer_of(sock: socket.socket, address: object) -> str:
    """Who is at the other end, as far as the kernel says: a Unix socket's process id,
    a TCP peer's address."""
    if sock.family == socket.AF_UNIX:
        option = getattr(socket, "SO_PEERCRED", None)
        if option is not None:
            with contextlib.suppress(OSError, struct.error):
                pid, _, _ = struct.unpack("3i", sock.getsockopt(socket.SOL_SOCKET, option, 12))
                return f"pid {pid}"
        return "a local process"
    if isinstance(address, tuple) and len(address) >= 2:
        host = str(address[0])
        return f"[{host}]:{address[1]}" if ":" in host else f"{host}:{address[1]}"
    return "an unknown peer"


class Listener:
    """Accepts connections on a listening socket and hands each to `serve_one`, within
    the bounds above.

    Args:
        sock: Bound and listening.
        serve_one: Called with the connection's streams, who it is (`peer_of`) and a
            function to call once it has said hello (it no longer counts as pending).
        limit: The streams' line limit.
        complaints: Where refusals are counted.
        pending: Connections that have not said hello yet, at most.
        connections: Connections at once, at most.
    """

    def __init__(
        self,
        sock: socket.socket,
        serve_one: Callable[
            [asyncio.StreamReader, asyncio.StreamWriter, str, Callable[[], None]],
            Awaitable[None],
        ],
        *,
        limit: int,
        complaints: Complaints,
        pending: int = PENDING,
        connections: int | None = None,
    ) -> None:
        self.sock = sock
        self._serve_one = serve_one
        self._limit = limit
        self.complaints = complaints
        self.max_pending = pending
        self.max_connections = connection_limit() if connections is None else connections
        self.pending = 0
        self.connections = 0
        self.tasks: set[asyncio.Task[None]] = set()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self.sock.setblocking(False)
        self._task = asyncio.get_running_loop().create_task(
            self._accept_forever(), name="antflow serve: accept"
        )

    async def close(self) -> None:
        """Stop accepting and close the listening socket (connections are left to their
        tasks, which the caller ends)."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        self.sock.close()

    async def _accept_forever(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            try:
                connection, address = await loop.sock_accept(self.sock)
            except OSError as error:
                if error.errno in _OUT_OF_RESOURCES:
                    self.complaints.note(
                        "connections left waiting: the process is out of file descriptors"
                    )
                    await asyncio.sleep(ACCEPT_PAUSE)
                elif error.errno in _CLOSED:
                    return  # the listening socket is gone
                else:
                    self.complaints.note(f"failed accepts ({error.strerror or error})")
                    await asyncio.sleep(0)
                continue
            if self.pending >= self.max_pending:
                connection.close()
                self.complaints.note(
                    f"connections closed at once ({self.max_pending} already waiting to say hello)"
                )
                continue
            if self.connections >= self.max_connections:
                connection.close()
                self.complaints.note(
                    f"connections closed at once ({self.max_connections} already open)"
                )
                continue
            self.pending += 1
            self.connections += 1
            task = loop.create_task(self._one(connection, address))
            self.tasks.add(task)
            task.add_done_callback(self.tasks.discard)

    async def _one(self, connection: socket.socket, address: object) -> None:
        admitted = False

        def admit() -> None:
            nonlocal admitted
            if not admitted:
                admitted = True
                self.pending -= 1

        try:
            peer = peer_of(connection, address)
            try:
                if connection.family == socket.AF_UNIX:
                    reader, writer = await asyncio.open_unix_connection(
                        sock=connection, limit=self._limit
                    )
                else:
                    reader, writer = await asyncio.open_connection(
                        sock=connection, limit=self._limit
                    )
            except OSError:
                connection.close()
                return
            await self._serve_one(reader, writer, peer, admit)
        finally:
            admit()
            self.connections -= 1


def unix_listener(path: Path) -> socket.socket:
    """A listening Unix socket at `path` (0600), replacing a socket an earlier run left.

    Raises:
        ValueError: something other than a socket is at `path`.
        OSError: it cannot be made.
    """
    with contextlib.suppress(FileNotFoundError):
        if not stat.S_ISSOCK(path.lstat().st_mode):
            raise ValueError(f"{path} exists and is not a socket; choose another path")
        path.unlink()
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.bind(str(path))
        os.chmod(path, 0o600)
        sock.listen(BACKLOG)
    except BaseException:
        sock.close()
        raise
    return sock


def tcp_listener(host: str, port: int) -> socket.socket:
    """A listening TCP socket on `host` (its first address) and `port` (0: any free one).

    Raises:
        OSError: `host` does not resolve, or the address cannot be bound.
    """
    found = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    family, kind, protocol, _, address = found[0]
    sock = socket.socket(family, kind, protocol)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(BACKLOG)
    except BaseException:
        sock.close()
        raise
    return sock


def tcp_address(sock: socket.socket) -> str:
    """The ``tcp://HOST:PORT`` a TCP socket is bound to (an IPv6 host in brackets)."""
    host, port = sock.getsockname()[:2]
    return f"tcp://[{host}]:{port}" if ":" in host else f"tcp://{host}:{port}"


def is_loopback(host: str) -> bool:
    """`host` names this machine only (``localhost``, ``127.x``, ``::1``)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
