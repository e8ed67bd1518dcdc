"""Plain functions the offload tests run in other processes and threads.

Kept apart from the test modules so that a process-pool child imports only this (stdlib)
module to unpickle them, not pytest and the tests.

Workers that share the test's process (a thread pool, an in-process Dask cluster) still
pickle what they run, and a `threading.Event` does not pickle: those tests register a
`Gate` or an `Overlap` here under a name and pass the name.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import Any


class Refused(ValueError):
    """The error the remote functions raise: its type must survive the trip back."""


def double(value: int) -> int:
    return value * 2


def with_process_id(value: Any) -> tuple[Any, int]:
    return value, os.getpid()


def refuse(value: Any) -> None:
    raise Refused(f"cannot take {value!r}")


def fail_first_time(counter: str) -> int:
    """Fail on the first call for this counter file, succeed after; return the call count.

    A file, so that every call counts whichever process runs it.
    """
    path = Path(counter)
    calls = int(path.read_text()) + 1 if path.exists() else 1
    path.write_text(str(calls))
    if calls == 1:
        raise Refused(f"first call of {path.name}")
    return calls


def wait_for(started: Any, release: Any, value: Any) -> Any:
    """Set `started`, then wait until `release` is set (events of any kind).

    The timeout only keeps a broken test from leaving a process or thread behind forever.
    """
    started.set()
    release.wait(120)
    return value


class Gate:
    """Holds every call until released, and records which values got in."""

    def __init__(self) -> None:
        self.started = threading.Event()
        """Set when the first call gets in."""
        self.release = threading.Event()
        self.ran: list[Any] = []
        """The values of the calls that started, in order."""

    def __call__(self, value: Any) -> Any:
        self.ran.append(value)
        return wait_for(self.started, self.release, value)


class Overlap:
    """Counts the calls running at once, and the most seen."""

    def __init__(self, target: int) -> None:
        self.lock = threading.Lock()
        self.active = 0
        self.peak = 0
        self.target = target
        self.reached = threading.Event()
        """Set once `target` calls have been running at the same time."""

    def __call__(self, value: Any) -> Any:
        with self.lock:
            self.active += 1
            self.peak = max(self.peak, self.active)
            if self.active >= self.target:
                self.reached.set()
        try:
            # Hold each call until the cap has been reached once, so overlap happens.
            self.reached.wait(120)
            return value
        finally:
            with self.lock:
                self.active -= 1


SHARED: dict[str, Any] = {}
"""`Gate`s and `Overlap`s by name, for workers in this process."""


def gate(name: str, value: Any) -> Any:
    """Pass `value` through the `Gate` registered as `name`."""
    gate: Gate = SHARED[name]
    return gate(value)


def overlap(name: str, value: Any) -> Any:
    """Pass `value` through the `Overlap` registered as `name`."""
    counter: Overlap = SHARED[name]
    return counter(value)


class HttpError(Exception):
    """Pickles, but cannot be unpickled: its __init__ takes two arguments and passes one
    message on (a common pattern), so unpickling calls it with one."""

    def __init__(self, status: int, body: str) -> None:
        super().__init__(f"HTTP {status}: {body}")
        self.status = status


def http_error_on(poison: Any, value: Any) -> Any:
    """Raise an `HttpError` on the `poison` value; return the others."""
    if value == poison:
        raise HttpError(503, f"busy on {value!r}")
    return value


class HoldsLock(Exception):
    """Cannot be pickled at all: it holds a lock."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.lock = threading.Lock()


def holds_lock(value: Any) -> None:
    raise HoldsLock(f"locked on {value!r}")


def exit_on(poison: Any, value: Any) -> Any:
    """Kill this process (no exception, no cleanup) on the `poison` value."""
    if value == poison:
        os._exit(3)
    return value
