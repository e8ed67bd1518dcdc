"""Unit tests of antflow_tui.hosting.fdroute: descriptors 1 and 2 into the log, and back."""

from __future__ import annotations

import os
import subprocess
import sys
import threading

from antflow_tui.hosting.fdroute import FdRoute


def test_writes_to_descriptors_one_and_two_arrive_as_lines_then_the_descriptors_come_back() -> None:
    """Regression (issue 10): `os.write(1, ...)` and subprocesses drew over the panels."""
    lines: list[tuple[str, bool]] = []
    lock = threading.Lock()

    def sink(line: str, is_error: bool) -> None:
        with lock:
            lines.append((line, is_error))

    before = {fd: os.fstat(fd).st_ino for fd in (1, 2)}
    route = FdRoute(sink)
    try:
        assert route.open
        os.write(1, b"hello wor")
        os.write(1, "ld \xe2\x9c\x93\n".encode("latin-1"))
        os.write(2, b"an error\n")
        subprocess.run(
            [sys.executable, "-c", "print('from a child')"], check=True, stdout=1, stderr=2
        )
        os.write(1, b"no newline at the end")
    finally:
        route.close()
    assert not route.open
    assert {fd: os.fstat(fd).st_ino for fd in (1, 2)} == before
    assert ("an error", True) in lines
    assert ("from a child", False) in lines
    stdout = [line for line, is_error in lines if not is_error]
    assert stdout[0] == "hello world ✓"
    assert stdout[-1] == "no newline at the end"
    route.restore()  # again: nothing left to restore
