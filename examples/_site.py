"""A small website on loopback for the examples: generated pages, some slow, some broken.

Behaviour is decided by the page number, so every run fails on the same pages:

* most pages answer in 50-600 ms with a title and a few links;
* every 10th page (n % 10 == 3) is slow: 1.5-2.5 s;
* pages with n % 17 == 5 always answer 500 (they fail after all retries);
* pages with n % 13 == 7 answer 500 to the first request only (a retry fixes them);
* pages with n % 19 == 11 send malformed HTML (parsing fails);
* pages with n % 47 == 20 hang for 8 s (longer than the client's timeout).

The server runs on its own thread, so it answers however busy the event loop is.
"""

from __future__ import annotations

import contextlib
import os
import random
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import ClassVar


class _Handler(BaseHTTPRequestHandler):
    requests: ClassVar[Counter[int]] = Counter()
    lock: ClassVar[threading.Lock] = threading.Lock()

    def log_message(self, format: str, *args: object) -> None:
        """Keep quiet: the pipeline's own events tell the story."""

    def do_GET(self) -> None:
        parts = self.path.strip("/").split("/")
        if len(parts) != 2 or parts[0] != "page" or not parts[1].isdigit():
            self._send(404, "<html><title>Not found</title></html>")
            return
        number = int(parts[1])
        with self.lock:
            self.requests[number] += 1
            attempt = self.requests[number]
        rng = random.Random(number)
        time.sleep(_latency(number, rng))
        if number % 17 == 5 or (number % 13 == 7 and attempt == 1):
            self._send(500, "<html><title>Internal Server Error</title></html>")
            return
        if number % 19 == 11:
            self._send(200, f"<html><title>Page {number}<body><p>unclosed")
            return
        links = "".join(
            f'<a href="/page/{rng.randrange(1000)}">link</a>' for _ in range(rng.randint(1, 6))
        )
        words = " ".join(rng.choice(_WORDS) for _ in range(rng.randint(40, 400)))
        body = (
            f"<html><head><title>Page {number}: {rng.choice(_WORDS).title()}</title></head>"
            f"<body><h1>Page {number}</h1><p>{words}</p>{links}</body></html>"
        )
        self._send(200, body)

    def _send(self, status: int, body: str) -> None:
        data = body.encode()
        self.send_response(status)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        # The client may have given up (timeout): there is nobody left to answer.
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            self.wfile.write(data)


def _latency(number: int, rng: random.Random) -> float:
    if number % 47 == 20:
        return 8.0
    if number % 10 == 3:
        return rng.uniform(1.5, 2.5)
    return rng.uniform(0.05, 0.6)


_WORDS = [
    "ant",
    "colony",
    "forage",
    "pheromone",
    "trail",
    "queen",
    "worker",
    "nest",
    "tunnel",
    "larva",
    "swarm",
    "harvest",
    "soldier",
    "scout",
    "leaf",
    "fungus",
    "garden",
    "mandible",
    "antenna",
    "thorax",
]


PORT = int(os.environ.get("ANTFLOW_EXAMPLE_PORT", "8765"))
"""The site's port, the same every run so an export's URLs can be fetched again
(`--retry-from`); any free port when it is taken."""


class Site:
    """The running website; `url` is its base address."""

    def __init__(self) -> None:
        try:
            self._server = ThreadingHTTPServer(("127.0.0.1", PORT), _Handler)
        except OSError:
            self._server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self._server.daemon_threads = True
        host, port = self._server.server_address[:2]
        self.url = f"http://{host}:{port}"
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="example-site", daemon=True
        )
        self._thread.start()

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
