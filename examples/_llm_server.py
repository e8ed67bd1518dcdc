"""A fake LLM API on loopback for the examples: OpenAI-shaped, rate-limited, sometimes slow.

No network and no API key: a `ThreadingHTTPServer` on 127.0.0.1 answers
``POST /v1/chat/completions`` the way a hosted model does, including the parts that make
batch jobs hard:

* a hidden rate limit: at most `REQUESTS_PER_SECOND` calls in any second and
  `TOKENS_PER_MINUTE` tokens (prompt plus ``max_tokens``) in any minute; a call over either
  gets HTTP 429 with ``Retry-After`` (seconds) and ``retry-after-ms``;
* prompts over `CONTEXT_TOKENS` are refused with HTTP 400 ``context_length_exceeded``;
* the answer streams (``"stream": true``): one JSON line per few tokens, then a last line
  with ``usage`` (``prompt_tokens``, ``completion_tokens``), as OpenAI's streams end;
* a call now and then never answers (the first attempt of every 25th prompt): only a
  client-side timeout ends it.

Behaviour is decided by the prompt's text, so every run sees the same answers.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import threading
import time
import zlib
from collections import deque
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, ClassVar

REQUESTS_PER_SECOND = 4
"""Calls the API accepts in any one second."""
TOKENS_PER_MINUTE = 300_000
"""Prompt plus max_tokens the API accepts in any one minute."""
CONTEXT_TOKENS = 1_000
"""The longest prompt the model takes, in tokens."""
HANG_EVERY = 25
"""The first call of every 25th prompt (by its text) never answers."""
SECONDS_PER_CHUNK = 0.12
"""How long the model takes for each streamed chunk of tokens."""
TOKENS_PER_CHUNK = 20


class _Limits:
    """The hidden limits: sliding windows of accepted calls and their tokens."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.calls: deque[float] = deque()
        self.tokens: deque[tuple[float, int]] = deque()
        self.token_sum = 0
        self.accepted = 0
        """Calls let through so far."""
        self.refused = 0
        """Calls answered 429 so far."""

    def admit(self, tokens: int) -> float | None:
        """None when the call may go ahead (and is counted), else seconds to wait."""
        now = time.monotonic()
        with self.lock:
            while self.calls and now - self.calls[0] >= 1.0:
                self.calls.popleft()
            while self.tokens and now - self.tokens[0][0] >= 60.0:
                self.token_sum -= self.tokens.popleft()[1]
            if len(self.calls) >= REQUESTS_PER_SECOND:
                self.refused += 1
                return 1.0 - (now - self.calls[0])
            if self.token_sum + tokens > TOKENS_PER_MINUTE:
                self.refused += 1
                return 60.0 - (now - self.tokens[0][0]) if self.tokens else 60.0
            self.accepted += 1
            self.calls.append(now)
            self.tokens.append((now, tokens))
            self.token_sum += tokens
            return None


class _Handler(BaseHTTPRequestHandler):
    limits: ClassVar[_Limits] = _Limits()
    attempts: ClassVar[dict[int, int]] = {}
    attempts_lock: ClassVar[threading.Lock] = threading.Lock()
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: object) -> None:
        """Keep quiet: the pipeline's own events tell the story."""

    def do_POST(self) -> None:
        if self.path != "/v1/chat/completions":
            self._json(404, {"error": {"message": "no such endpoint"}})
            return
        try:
            length = int(self.headers.get("Content-Length", "0"))
            request = json.loads(self.rfile.read(min(length, 1 << 20)))
            prompt = str(request["messages"][-1]["content"])
            max_tokens = int(request.get("max_tokens", 256))
        except (ValueError, KeyError, IndexError, TypeError):
            self._json(400, {"error": {"message": "malformed request"}})
            return
        prompt_tokens = count_tokens(prompt)
        if prompt_tokens > CONTEXT_TOKENS:
            self._json(
                400,
                {
                    "error": {
                        "code": "context_length_exceeded",
                        "message": (
                            f"This model's maximum context length is {CONTEXT_TOKENS} "
                            f"tokens; your prompt has {prompt_tokens}."
                        ),
                    }
                },
            )
            return
        wait = self.limits.admit(prompt_tokens + max_tokens)
        if wait is not None:
            seconds = max(wait, 0.05)
            self._json(
                429,
                {"error": {"message": "Rate limit reached; slow down."}},
                headers={
                    "Retry-After": str(max(1, round(seconds))),
                    "retry-after-ms": str(round(seconds * 1000)),
                },
            )
            return
        key = zlib.crc32(prompt.encode())
        with self.attempts_lock:
            attempt = self.attempts[key] = self.attempts.get(key, 0) + 1
        if key % HANG_EVERY == 0 and attempt == 1:
            time.sleep(3600)  # a call that never answers; the client's timeout ends it
            return
        self._stream(random.Random(key), prompt_tokens, max_tokens)

    def _stream(self, rng: random.Random, prompt_tokens: int, max_tokens: int) -> None:
        completion = rng.randint(max_tokens // 3, max_tokens)
        self.send_response(200)
        self.send_header("Content-Type", "application/x-ndjson")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            done = 0
            while done < completion:
                time.sleep(SECONDS_PER_CHUNK * rng.uniform(0.5, 1.5))
                step = min(TOKENS_PER_CHUNK, completion - done)
                done += step
                self._chunk({"delta": " word" * step, "tokens": done})
            usage = {"prompt_tokens": prompt_tokens, "completion_tokens": completion}
            self._chunk({"done": True, "usage": usage})
            self.wfile.write(b"0\r\n\r\n")

    def _chunk(self, data: dict[str, Any]) -> None:
        line = json.dumps(data).encode() + b"\n"
        self.wfile.write(f"{len(line):x}\r\n".encode() + line + b"\r\n")
        self.wfile.flush()

    def _json(
        self, status: int, body: dict[str, Any], headers: dict[str, str] | None = None
    ) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            self.wfile.write(data)


def count_tokens(text: str) -> int:
    """The model's token count of a text: about four characters a token."""
    return max(1, len(text) // 4)


PORT = int(os.environ.get("ANTFLOW_LLM_PORT", "8766"))
"""The API's port, the same every run when it is free; any free port otherwise."""


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that gives up on a call (a timeout, a stop) is no error of ours."""


class FakeLLM:
    """The running API; `url` is its base address."""

    def __init__(self) -> None:
        try:
            self._server = _Server(("127.0.0.1", PORT), _Handler)
        except OSError:
            self._server = _Server(("127.0.0.1", 0), _Handler)
        host, port = self._server.server_address[:2]
        self.url = f"http://{host}:{port}"
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="example-llm", daemon=True
        )
        self._thread.start()

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
