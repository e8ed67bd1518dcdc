"""The page `antflow-tui web` serves: textual-serve's server, with a page that works where
it is opened from and loads nothing from outside the machine.

textual-serve writes absolute URLs into its page (``http://127.0.0.1:8000/static/…``,
``ws://127.0.0.1:8000/ws``), so behind ``ssh -L 9000:localhost:8000`` the browser asks
port 9000's page for a script on port 8000 and cannot connect; and it fetches its font
from Google. This page names its files relative to itself and makes the websocket's
address from its own in the browser, or from ``--public-url`` behind a reverse proxy.

A websocket from another site's page is refused (its Origin is not the page's own), and so
is a request whose Host is not this machine's: a page elsewhere could otherwise drive a
viewer (and, with ``--allow-control``, the job) through the user's browser.
"""

from __future__ import annotations

import html
import ipaddress
import logging
from pathlib import Path
from string import Template
from typing import TYPE_CHECKING, Final
from urllib.parse import urlsplit

from aiohttp import web
from textual_serve.server import Server

if TYPE_CHECKING:
    from collections.abc import Collection

log = logging.getLogger(__name__)

PAGE: Final = Template((Path(__file__).parent / "web_page.html").read_text(encoding="utf-8"))
DEFAULT_FONT_SIZE: Final = 16
FONT_SIZES: Final = range(6, 73)
"""Font sizes ``?fontsize=`` may ask for (in pixels)."""


class PublicUrlError(ValueError):
    """A --public-url that cannot be the page's address; the message says why."""


def public_url(text: str) -> str:
    """`text` as the page's public address: ``http(s)://host[:port][/path]``, without a
    trailing slash.

    Raises:
        PublicUrlError: another scheme, no host, or a query or fragment.
    """
    parts = urlsplit(text.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise PublicUrlError(
            f"{text!r} is not an http(s) address (for example https://example.com/antflow)"
        )
    if parts.query or parts.fragment:
        raise PublicUrlError(f"{text!r} has a query or a fragment; give the page's address only")
    return f"{parts.scheme}://{parts.netloc}{parts.path.rstrip('/')}"


def loopback_name(host: str) -> bool:
    """A name or address that means this machine (``localhost``, ``127.0.0.1``, ``::1``)."""
    host = host.strip("[]").lower()
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class PageServer(Server):
    """textual-serve's `Server`, serving `web_page.html`.

    Args:
        command: What each tab runs (a viewer, never the script).
        host: The address to listen on.
        port: The port to listen on.
        name: What the page is titled: the script's or the recording's name.
        what: A second line for the splash (what is watched, and how).
        public: The page's address behind a reverse proxy (see `public_url`); None: the
            address the browser opened it at, whatever it is.
        hosts: Host names the page may be asked by besides loopback ones (None: any,
            for ``--allow-remote``).
    """

    def __init__(
        self,
        command: str,
        *,
        host: str,
        port: int,
        name: str,
        what: str = "",
        public: str | None = None,
        hosts: Collection[str] | None = (),
    ) -> None:
        super().__init__(command, host=host, port=port, title=name, public_url=public)
        self.name = name
        self.what = what
        self.public = public
        self.hosts = None if hosts is None else {name.lower() for name in hosts}
        if self.hosts is not None and public is not None:
            self.hosts.add((urlsplit(public).hostname or "").lower())

    def page(self, font_size: int = DEFAULT_FONT_SIZE) -> str:
        """The page's HTML (the same for every request: nothing in it comes from one)."""
        static = "static/" if self.public is None else f"{self.public}/static/"
        websocket = ""
        if self.public is not None:
            scheme, _, rest = self.public.partition("://")
            websocket = f"{'wss' if scheme == 'https' else 'ws'}://{rest}/ws"
        return PAGE.substitute(
            title=html.escape(f"{self.name} · antflow-tui"),
            name=html.escape(self.name),
            what=html.escape(self.what),
            static=html.escape(static),
            websocket=html.escape(websocket),
            font_size=font_size,
        )

    async def handle_index(self, request: web.Request) -> web.Response:
        self._check(request)
        try:
            font_size = int(request.query.get("fontsize", DEFAULT_FONT_SIZE))
        except ValueError:
            font_size = DEFAULT_FONT_SIZE
        if font_size not in FONT_SIZES:
            font_size = DEFAULT_FONT_SIZE
        return web.Response(text=self.page(font_size), content_type="text/html")

    async def handle_websocket(self, request: web.Request) -> web.WebSocketResponse:
        self._check(request, websocket=True)
        return await super().handle_websocket(request)

    def _check(self, request: web.Request, *, websocket: bool = False) -> None:
        """Refuse (403) a request for another host, or a websocket another site's page
        opens."""
        host = urlsplit(f"//{request.host}").hostname or ""
        if self.hosts is not None and not loopback_name(host) and host.lower() not in self.hosts:
            log.warning("refused a request for host %r (not this machine)", request.host)
            raise web.HTTPForbidden(text=f"antflow-tui web does not serve {request.host!r}")
        origin = request.headers.get("Origin")
        if websocket and origin is not None and not self._same_origin(origin, request.host):
            log.warning("refused a websocket from another site's page: %r", origin)
            raise web.HTTPForbidden(text="a page of another site may not connect")

    def _same_origin(self, origin: str, host: str) -> bool:
        parts = urlsplit(origin)
        if parts.netloc.lower() == host.lower():
            return True
        if self.public is None:
            return False
        public = urlsplit(self.public)
        return (parts.scheme, parts.netloc.lower()) == (public.scheme, public.netloc.lower())
