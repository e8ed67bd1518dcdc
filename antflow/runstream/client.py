"""A viewer of a served run: connect, read the run's records, ask, command.

Used by ``antflow-tui attach`` (and usable by any tool): everything it returns is a record
or a message of `antflow.runstream.wire`, decoded into its type (never unpickled).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from typing import TYPE_CHECKING, Any, Final

import msgspec

from antflow.runstream import wire

if TYPE_CHECKING:
    from antflow.runstream.records import AwaitStack, Command, ItemDetail, ItemKey


REQUEST_TIMEOUT: Final = 30.0
"""Seconds a request waits for its answer."""


class AttachError(Exception):
    """The server refused the viewer, or could not be reached; the message says why."""


class Viewer:
    """One connection to a served run. Use `Viewer.connect(...)`."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._reader = reader
        self._writer = writer
        self._ids = itertools.count(1)
        self._replies: dict[int, asyncio.Future[wire.Reply]] = {}
        self._incoming: asyncio.Queue[Any] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None
        self.welcome: wire.Welcome
        self.closed = False

    @classmethod
    async def connect(
        cls,
        address: str,
        token: str,
        *,
        interval: float = 0.25,
        answer_within: float = 10.0,
        client: str = "",
    ) -> Viewer:
        """Connect and say hello.

        Args:
            address: ``unix:PATH`` or ``tcp://HOST:PORT``.
            token: The run's read or control token.
            interval: Seconds between the snapshots the server sends.
            answer_within: Seconds to wait for the server to answer.
            client: What this viewer is (``antflow-tui attach``): a stop it gives
                reaches the job's script naming it.

        Raises:
            AttachError: no one listens there, or the server refused (bad token, version).
        """
        try:
            return await asyncio.wait_for(
                cls._connect(address, token, interval, client), answer_within
            )
        except TimeoutError:
            raise AttachError(f"{address} did not answer within {answer_within:g} s") from None

    @classmethod
    async def _connect(cls, address: str, token: str, interval: float, client: str) -> Viewer:
        try:
            if address.startswith("unix:"):
                reader, writer = await asyncio.open_unix_connection(address[5:], limit=1 << 26)
            elif address.startswith("tcp://"):
                host, _, port = address[6:].rpartition(":")
                reader, writer = await asyncio.open_connection(
                    host.strip("[]"), int(port), limit=1 << 26
                )
            else:
                raise AttachError(f"unknown address {address!r}")
        except OSError as error:
            raise AttachError(f"cannot reach {address}: {error.strerror or error}") from None
        viewer = cls(reader, writer)
        hello = wire.Hello(version=wire.PROTOCOL, token=token, interval=interval, client=client)
        writer.write(wire.line(hello))
        await writer.drain()
        first = await reader.readline()
        if not first:
            writer.close()
            raise AttachError(f"{address} closed the connection (a wrong token or version?)")
        try:
            message = wire.decode_from_server(first)
        except msgspec.DecodeError:
            writer.close()
            raise AttachError(f"{address} does not speak the antflow protocol") from None
        if isinstance(message, wire.Refused):
            writer.close()
            raise AttachError(f"{address} refused: {message.reason}")
        if not isinstance(message, wire.Welcome):
            writer.close()
            raise AttachError(f"{address} does not speak the antflow protocol")
        viewer.welcome = message
        viewer._task = asyncio.get_running_loop().create_task(viewer._read_forever())
        return viewer

    async def receive(self) -> Any:
        """The next record or message of the run (replies go to their requests).

        Returns None once the connection has closed.
        """
        return await self._incoming.get()

    def receive_nowait(self) -> list[Any]:
        """Everything received and not taken yet (None last if the connection closed)."""
        taken = []
        while not self._incoming.empty():
            taken.append(self._incoming.get_nowait())
        return taken

    async def item(self, pipeline: int, item: ItemKey) -> ItemDetail | None:
        reply = await self._request(lambda i: wire.ItemRequest(i, pipeline, item))
        return reply.detail

    async def stack(self, pipeline: int, worker: str) -> AwaitStack | None:
        reply = await self._request(lambda i: wire.StackRequest(i, pipeline, worker))
        return reply.stack

    async def send(self, command: Command) -> str:
        """Carry out a command on the job; returns its notice (or why it was refused)."""
        reply = await self._request(lambda i: wire.CommandRequest(i, command))
        return reply.error if reply.error is not None else reply.result or ""

    async def close(self) -> None:
        self.closed = True
        if self._task is not None:
            self._task.cancel()
        self._writer.close()
        with contextlib.suppress(Exception):
            await self._writer.wait_closed()

    async def _request(self, make: Any) -> wire.Reply:
        if self.closed:
            raise AttachError("the connection is closed")
        request_id = next(self._ids)
        future: asyncio.Future[wire.Reply] = asyncio.get_running_loop().create_future()
        self._replies[request_id] = future
        self._writer.write(wire.line(make(request_id)))
        await self._writer.drain()
        try:
            return await asyncio.wait_for(future, REQUEST_TIMEOUT)
        except TimeoutError:
            self._replies.pop(request_id, None)
            raise AttachError(f"no answer within {REQUEST_TIMEOUT:g} s") from None

    async def _read_forever(self) -> None:
        try:
            while True:
                line = await self._reader.readline()
                if not line:
                    break
                try:
                    message = wire.decode_from_server(line)
                except msgspec.DecodeError:
                    continue  # a newer server's message kind: skip it
                if isinstance(message, wire.Reply):
                    future = self._replies.pop(message.id, None)
                    if future is not None and not future.done():
                        future.set_result(message)
                    continue
                self._incoming.put_nowait(message)
        except (ConnectionError, asyncio.IncompleteReadError, ValueError):
            pass
        finally:
            self.closed = True
            for future in self._replies.values():
                if not future.done():
                    future.set_exception(AttachError("the connection closed"))
            self._replies.clear()
            self._incoming.put_nowait(None)
