"""The page `antflow-tui web` serves, over plain HTTP: it names no address of its own, so
it works through a tunnel to another port (``ssh -L 9000:localhost:8000``) or under a
reverse proxy's ``--public-url``, and it loads nothing from outside the machine.

The browser's side (the page drawing the app through such a tunnel) is the opt-in
``pytest -m browser`` test.
"""

from __future__ import annotations

import asyncio
import http.client
import re
import subprocess
import sys
from pathlib import Path
from urllib.parse import urljoin

import aiohttp
import pytest

from antflow_tui.attach.web import PageServer, PublicUrlError, public_url
from tests.tui.forward import forwarding
from tests.tui.webserving import LIMIT, serving_web

RECORDING = Path(__file__).parent / "recordings" / "mid_run.jsonl"
OUTSIDE = re.compile(r"(?i)\b(?:https?|wss?)://|//[a-z0-9-]+\.[a-z0-9.-]+")
"""An absolute URL, or a scheme-relative one naming a host."""


def get(port: int, path: str = "/", headers: dict[str, str] | None = None) -> tuple[int, str]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=LIMIT)
    try:
        connection.request("GET", path, headers=headers or {})
        response = connection.getresponse()
        return response.status, response.read().decode("utf-8", "replace")
    finally:
        connection.close()


def page_urls(page: str) -> list[str]:
    """Every URL the page loads: src, href and CSS url()."""
    found = re.findall(r'(?:src|href)="([^"]*)"|url\("([^"]*)"\)', page)
    return [a or b for a, b in found]


# Issue 17.12: the page hard-coded http://127.0.0.1:PORT/static/… and ws://127.0.0.1:PORT/ws,
# so behind ssh -L 9000:localhost:8000 it could not load its script or connect.
# Issue 17.13: it fetched Roboto Mono from fonts.googleapis.com and had no <title>.
def test_the_page_names_no_address_and_nothing_outside_the_machine() -> None:
    with serving_web(str(RECORDING)) as port:
        status, page = get(port, "/", {"Host": "localhost:9000"})
    assert status == 200
    assert f":{port}" not in page
    assert "127.0.0.1" not in page
    assert "localhost:9000" not in page
    assert not OUTSIDE.search(page), OUTSIDE.search(page)
    assert "googleapis" not in page
    urls = page_urls(page)
    assert {"static/css/xterm.css", "static/js/textual.js"} <= set(urls)
    assert all(not url.startswith("/") for url in urls), urls
    assert "<title>mid_run.jsonl · antflow-tui</title>" in page
    assert 'data-session-websocket-url=""' in page  # made in the browser from its own URL


def test_through_a_tunnel_to_another_port_everything_loads_and_the_websocket_opens() -> None:
    async def through_tunnel(port: int) -> None:
        async with forwarding(port) as tunnel, aiohttp.ClientSession() as session:
            base = f"http://localhost:{tunnel}/"
            async with session.get(base) as response:
                assert response.status == 200
                page = await response.text()
            for url in page_urls(page):
                async with session.get(urljoin(base, url)) as loaded:
                    assert loaded.status == 200, url
            socket_url = urljoin(base.replace("http:", "ws:"), "ws")
            async with session.ws_connect(socket_url, origin=base.rstrip("/")) as websocket:
                await websocket.send_json(["resize", {"width": 100, "height": 30}])
                received = await asyncio.wait_for(websocket.receive(), LIMIT)
                assert received.type in (aiohttp.WSMsgType.BINARY, aiohttp.WSMsgType.TEXT)

    with serving_web(str(RECORDING)) as port:
        asyncio.run(through_tunnel(port))


def test_another_sites_page_and_another_host_are_refused() -> None:
    async def handshake(port: int, origin: str) -> int:
        async with aiohttp.ClientSession() as session:
            try:
                async with session.ws_connect(f"ws://127.0.0.1:{port}/ws", origin=origin):
                    return 101
            except aiohttp.WSServerHandshakeError as error:
                return error.status

    with serving_web(str(RECORDING)) as port:
        # DNS rebinding: a name of the attacker's that resolves to this machine.
        assert get(port, "/", {"Host": f"attacker.example:{port}"})[0] == 403
        # A page of another site opening this one's websocket in the user's browser.
        assert asyncio.run(handshake(port, "http://attacker.example")) == 403


def test_a_public_url_names_the_proxys_address() -> None:
    server = PageServer(
        "viewer",
        host="127.0.0.1",
        port=8000,
        name="scrape.py",
        public=public_url("https://example.com/antflow/"),
    )
    page = server.page()
    assert 'src="https://example.com/antflow/static/js/textual.js"' in page
    assert 'data-session-websocket-url="wss://example.com/antflow/ws"' in page
    assert "127.0.0.1" not in page


def test_the_title_is_the_scripts_name_shown_literally() -> None:
    page = PageServer("viewer", host="127.0.0.1", port=8000, name="<b>x</b>.py").page()
    assert "<title>&lt;b&gt;x&lt;/b&gt;.py · antflow-tui</title>" in page
    assert "<b>x</b>" not in page


@pytest.mark.parametrize("bad", ["ftp://example.com", "example.com", "https://x.org/?a=1"])
def test_a_bad_public_url_is_refused(bad: str) -> None:
    with pytest.raises(PublicUrlError):
        public_url(bad)
    done = subprocess.run(
        [sys.executable, "-m", "antflow_tui", "web", str(RECORDING), "--public-url", bad],
        capture_output=True,
        text=True,
        timeout=LIMIT,
    )
    assert done.returncode == 2
    assert "--public-url" in done.stderr
    assert "Traceback" not in done.stderr
