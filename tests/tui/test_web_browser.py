"""A real browser on `antflow-tui web`: headless Chromium loads the page of a running job
through a tunnel to another port (as ``ssh -L 9000:localhost:8000`` gives), shows its
stage table, loads nothing from outside the machine, and closing the tab leaves the job
alone.

Opt-in (it starts Chromium, seconds): ``apt-get install chromium``, ``pip install -e
'.[web]'``, then ``pytest -m browser``. Set ``ANTFLOW_BROWSER_SCREENSHOT=PATH`` to keep
the screenshot.
"""

from __future__ import annotations

import asyncio
import importlib.util
import json
import os
import shutil
import subprocess
import sys
import textwrap
from dataclasses import dataclass
from typing import TYPE_CHECKING

import pytest

from antflow.runstream import Snapshot, discovery
from antflow.runstream.client import Viewer
from tests.tui.browser import browser_page, chromium, headless_chromium
from tests.tui.forward import forwarding
from tests.tui.webserving import LIMIT, free_port, listening, stop, wait_for

if TYPE_CHECKING:
    from pathlib import Path

pytestmark = pytest.mark.browser

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


@dataclass(frozen=True, slots=True)
class Seen:
    """What the browser saw of the page."""

    received: bytes
    """What its websockets brought (the app's terminal output)."""
    screenshot: bytes
    classes: str
    """The body's classes."""
    title: str
    loaded: list[str]
    """Every resource the page loaded (scripts, styles, fonts, images)."""
    tunnel: int
    """The port the page was opened at."""


async def look(devtools: int, port: int) -> Seen:
    """Open the page through a tunnel to another port; wait until its terminal has drawn
    the stage table."""
    async with (
        forwarding(port) as tunnel,
        browser_page(devtools, f"http://localhost:{tunnel}/") as page,
    ):
        async with asyncio.timeout(LIMIT):
            await page.until_received(b"Crawl")
            await page.until_received(b"Stages")
        classes = str(await page.evaluate("document.body.className"))
        # One more animation frame: what xterm.js drew is on the canvas.
        await page.evaluate("new Promise(done => requestAnimationFrame(() => done(1)))")
        loaded = await page.evaluate(
            "JSON.stringify(performance.getEntriesByType('resource').map(e => e.name))"
        )
        return Seen(
            received=bytes(page.received),
            screenshot=await page.screenshot(),
            classes=classes,
            title=str(await page.evaluate("document.title")),
            loaded=json.loads(loaded),
            tunnel=tunnel,
        )


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
            seen = asyncio.run(look(devtools, port))
        # Issue 17.12: through a tunnel to another port, the page loads its script and its
        # websocket connects (it named 127.0.0.1:PORT, the server's own port).
        assert "-first-byte" in seen.classes  # the page shows the app, not its splash
        assert b"Pause" not in seen.received  # read-only: the footer offers no pause
        # Issue 17.13: nothing from outside the machine (the font came from Google), and a
        # title that names the script.
        assert seen.loaded, "the page loaded no resource at all"
        here = f"http://localhost:{seen.tunnel}/"
        assert all(url.startswith(here) for url in seen.loaded), seen.loaded
        assert seen.title == "crawler.py · antflow-tui"
        shot = tmp_path / "web.png"
        shot.write_bytes(seen.screenshot)
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
        stop(job)
        stop(web)
