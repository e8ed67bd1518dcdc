"""A TCP forwarder on a loopback port: what ``ssh -L 9000:localhost:8000`` does, for the
web page's tests (the page is opened at another port than the one it is served on).

``python -m tests.tui.forward 9000 8000`` runs one by hand.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import AsyncIterator


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except (ConnectionError, asyncio.CancelledError):
        pass
    finally:
        writer.close()


@contextlib.asynccontextmanager
async def forwarding(to_port: int, from_port: int = 0) -> AsyncIterator[int]:
    """Forward connections to 127.0.0.1:`from_port` (0: a free one) to `to_port`; yields
    the port it listens on."""
    pipes: set[asyncio.Task[None]] = set()

    async def connected(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            upstream_reader, upstream_writer = await asyncio.open_connection("127.0.0.1", to_port)
        except OSError:
            writer.close()
            return
        for task in (
            asyncio.create_task(_pipe(reader, upstream_writer)),
            asyncio.create_task(_pipe(upstream_reader, writer)),
        ):
            pipes.add(task)
            task.add_done_callback(pipes.discard)

    server = await asyncio.start_server(connected, "127.0.0.1", from_port)
    try:
        yield int(server.sockets[0].getsockname()[1])
    finally:
        server.close()
        for task in list(pipes):
            task.cancel()
        await server.wait_closed()


async def _main(from_port: int, to_port: int) -> None:
    async with forwarding(to_port, from_port) as port:
        print(f"forwarding 127.0.0.1:{port} -> 127.0.0.1:{to_port}", flush=True)
        await asyncio.Event().wait()


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_main(int(sys.argv[1]), int(sys.argv[2])))
