"""Headless Chromium driven over the DevTools protocol (with aiohttp, which the web extra
brings): open a page, wait until its terminal shows some text, take a screenshot.

For the opt-in `browser` tests (pytest -m browser): Debian's `chromium` package and
``pip install -e '.[web]'``.
"""

from __future__ import annotations

import base64
import contextlib
import itertools
import json
import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Iterator

CHROMIUM_FLAGS: Final = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--window-size=1400,900",
    "--remote-debugging-port=0",
)


def chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


class Page:
    """One page of a headless Chromium."""

    def __init__(self, socket: Any) -> None:
        self._socket = socket
        self._ids = itertools.count(1)
        self.received = bytearray()
        """What the page's own websockets received (the app's terminal output)."""

    async def call(self, method: str, **params: Any) -> Any:
        number = next(self._ids)
        await self._socket.send_json({"id": number, "method": method, "params": params})
        while True:
            message = await self._next()
            if message.get("id") == number:
                if "error" in message:
                    raise RuntimeError(f"{method}: {message['error']}")
                return message.get("result", {})

    async def _next(self) -> dict[str, Any]:
        message: dict[str, Any] = json.loads((await self._socket.receive()).data)
        if message.get("method") == "Network.webSocketFrameReceived":
            response = message["params"]["response"]
            data = response["payloadData"]
            # Binary frames (opcode 2) come base64-encoded.
            self.received += base64.b64decode(data) if response["opcode"] == 2 else data.encode()
        return message

    async def until_received(self, text: bytes) -> None:
        """Wait until the page's websockets have brought `text` (the terminal's output:
        xterm.js draws on a canvas, so the page's DOM has none of it)."""
        while text not in self.received:
            await self._next()

    async def evaluate(self, expression: str) -> Any:
        result = await self.call("Runtime.evaluate", expression=expression)
        return result.get("result", {}).get("value")

    async def screenshot(self) -> bytes:
        """The page as a PNG."""
        result = await self.call("Page.captureScreenshot", format="png")
        return base64.b64decode(result["data"])


@contextlib.contextmanager
def headless_chromium() -> Iterator[int]:
    """A headless Chromium with a fresh profile; yields its DevTools port."""
    binary = chromium()
    assert binary is not None, "no chromium on PATH (apt-get install chromium)"
    with tempfile.TemporaryDirectory(prefix="antflow-chromium-") as profile:
        process = subprocess.Popen(
            [binary, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", "about:blank"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            port_file = Path(profile) / "DevToolsActivePort"
            deadline = time.monotonic() + 30
            # Chromium writes the file once it listens; nothing else tells.
            while not port_file.exists() or not port_file.read_text().strip():
                assert time.monotonic() < deadline, "chromium did not start"
                time.sleep(0.1)
            yield int(port_file.read_text().split()[0])
        finally:
            process.terminate()
            process.wait(10)


@contextlib.asynccontextmanager
async def browser_page(port: int, url: str) -> AsyncIterator[Page]:
    """A new page of the Chromium at DevTools `port`, showing `url`."""
    import aiohttp

    async with aiohttp.ClientSession() as session:
        new = f"http://127.0.0.1:{port}/json/new?about:blank"
        async with session.put(new) as response:
            target = await response.json(content_type=None)
        async with session.ws_connect(target["webSocketDebuggerUrl"], max_msg_size=0) as socket:
            page = Page(socket)
            await page.call("Network.enable")
            await page.call("Page.enable")
            await page.call("Page.navigate", url=url)
            yield page
