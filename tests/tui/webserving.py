"""`antflow-tui web` in a subprocess on a free loopback port, for the page's tests."""

from __future__ import annotations

import contextlib
import signal
import socket
import subprocess
import sys
import time
from typing import TYPE_CHECKING, Final

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

LIMIT: Final = 60.0
"""Seconds another process may take to get somewhere."""


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


def stop(process: subprocess.Popen[str] | subprocess.Popen[bytes] | None) -> None:
    """ctrl+c, then a kill if it does not end."""
    if process is None or process.poll() is not None:
        return
    process.send_signal(signal.SIGINT)
    try:
        process.wait(10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


@contextlib.contextmanager
def serving_web(target: str, *options: str) -> Iterator[int]:
    """`antflow-tui web TARGET` listening on a free loopback port; yields the port."""
    port = free_port()
    web = subprocess.Popen(
        [sys.executable, "-m", "antflow_tui", "web", target, "--port", str(port), *options],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_for(lambda: listening(port) or web.poll() is not None)
        assert web.poll() is None, f"antflow-tui web exited {web.returncode}"
        yield port
    finally:
        stop(web)
