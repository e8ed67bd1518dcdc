"""A real browser on `antflow-tui web`: headless Chromium loads the page of a running job,
shows its stage table, and closing the tab leaves the job alone.

Opt-in (it starts Chromium, seconds): ``apt-get install chromium``, ``pip install -e
'.[web]'``, then ``pytest -m browser``. Set ``ANTFLOW_BROWSER_SCREENSHOT=PATH`` to keep
the screenshot.
"""

from __future__ import annotations

import asyncio
import importlib.util
import os
import shutil
import signal
import socket
import subprocess
import sys
import textwrap
import time
from typing import TYPE_CHECKING

import pytest

from antflow.runstream import Snapshot, discovery
from antflow.runstream.client import Viewer
from tests.tui.browser import browser_page, chromium, headless_chromium

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

pytestmark = pytest.mark.browser

LIMIT = 60.0

JOB = textwrap.dedent(
    """
    import asyncio
    import sys

    from antflow import Pipeline, Stage

    released = None


    async def crawl(x):
        await released
        return x


    async def main():
        global released
        released = asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
        await Pipeline([Stage("Crawl", 2, [crawl])]).run(range(6))
        print("job done")


    asyncio.run(main())
    """
)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def wait_for(condition: Callable[[], bool]) -> None:
    """Poll another process's state (a file, a port): nothing here can signal it."""
    deadline = time.monotonic() + LIMIT
    while not condition():
        assert time.monotonic() < deadline, "the other process never got there"
        time.sleep(0.1)


def listening(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
    except OSError:
        return False
    return True


async def look(devtools: int, url: str) -> tuple[bytes, bytes, str]:
    """Open the page; wait until its terminal has drawn the stage table; return what the
    page received, a screenshot and the body's classes."""
    async with browser_page(devtools, url) as page:
        async with asyncio.timeout(LIMIT):
            await page.until_received(b"Crawl")
            await page.until_received(b"Stages")
        classes = str(await page.evaluate("document.body.className"))
        # One more animation frame: what xterm.js drew is on the canvas.
        await page.evaluate("new Promise(done => requestAnimationFrame(() => done(1)))")
        return bytes(page.received), await page.screenshot(), classes


async def still_running(address: str, token: str) -> bool:
    viewer = await Viewer.connect(address, token)
    try:
        async with asyncio.timeout(LIMIT):
            while True:
                message = await viewer.receive()
                if isinstance(message, Snapshot):
                    return message.running
    finally:
        await viewer.close()


def test_a_browser_shows_the_stage_table_of_a_running_job(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert importlib.util.find_spec("textual_serve"), "pip install -e '.[web]'"
    assert chromium() is not None, "apt-get install chromium"
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path))
    script = tmp_path / "crawler.py"
    script.write_text(JOB)
    job = subprocess.Popen(
        [sys.executable, str(script)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "ANTFLOW_SERVE": "1"},
    )
    port = free_port()
    web = None
    try:
        wait_for(lambda: discovery.find(job.pid) is not None)
        served = discovery.find(job.pid)
        assert served is not None
        web = subprocess.Popen(
            [sys.executable, "-m", "antflow_tui", "web", str(job.pid), "--port", str(port)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_for(lambda: listening(port))
        with headless_chromium() as devtools:
            received, png, classes = asyncio.run(look(devtools, f"http://127.0.0.1:{port}/"))
        assert "-first-byte" in classes  # the page shows the app, not its splash
        assert b"Pause" not in received  # read-only: the footer offers no pause
        shot = tmp_path / "web.png"
        shot.write_bytes(png)
        kept = os.environ.get("ANTFLOW_BROWSER_SCREENSHOT")
        if kept:
            shutil.copyfile(shot, kept)
        # The tab is closed (the browser is gone): the job runs on, untouched.
        assert job.poll() is None
        assert asyncio.run(still_running(served.address, served.read_token))
        out, err = job.communicate("go\n", timeout=LIMIT)
        assert job.returncode == 0, err
        assert "job done" in out
        assert "Traceback" not in err
    finally:
        for process in (job, web):
            if process is not None and process.poll() is None:
                process.send_signal(signal.SIGINT)
                try:
                    process.wait(10)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()
