"""Run `antflow-tui` in a real pseudo-terminal, to test what only a terminal shows:
signals, the terminal's state afterwards, and what reaches the screen.

The parent keeps the terminal's other end open, so it can read the terminal's settings
after the app has exited. Reads wait for a pattern with a generous bound: the bound only
turns a hang into a failure, nothing is timed.
"""

from __future__ import annotations

import fcntl
import os
import select
import struct
import subprocess
import sys
import termios
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pathlib import Path

BOUND = 60.0
"""Seconds a read or an exit may take before the test fails instead of hanging."""

ENTER_ALT = b"\x1b[?1049h"
LEAVE_ALT = b"\x1b[?1049l"
SHOW_CURSOR = b"\x1b[?25h"
MOUSE_ON = b"\x1b[?1000h"
MOUSE_OFF = b"\x1b[?1000l"


@dataclass
class PtyApp:
    """`antflow-tui` running in a pseudo-terminal of `columns` x `rows`."""

    process: subprocess.Popen[bytes]
    master: int
    slave: int
    before: list[Any]
    """The terminal's settings before the app started."""
    output: bytearray = field(default_factory=bytearray)

    def read_until(self, pattern: bytes, *, start: int = 0) -> int:
        """Read the screen's bytes until `pattern` appears after `start`; its offset."""
        deadline = time.monotonic() + BOUND
        while True:
            found = self.output.find(pattern, start)
            if found >= 0:
                return found
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(
                    f"{pattern!r} never appeared; the screen's last bytes: "
                    f"{bytes(self.output[-2000:])!r}"
                )
            if not self._read(min(left, 1.0)) and self.process.poll() is not None:
                self._read(0)
                if self.output.find(pattern, start) < 0:
                    raise AssertionError(
                        f"the app exited ({self.process.returncode}) before {pattern!r} "
                        f"appeared: {bytes(self.output[-2000:])!r}"
                    )

    def hang_up(self) -> None:
        """Close the terminal, as a dropped ssh does: the kernel sends the app SIGHUP."""
        os.close(self.master)
        self.master = -1

    def _read(self, timeout: float) -> bool:
        if self.master < 0:
            time.sleep(timeout)  # nothing to read from a closed terminal; wait for the exit
            return False
        ready, _, _ = select.select([self.master], [], [], timeout)
        if not ready:
            return False
        try:
            chunk = os.read(self.master, 65536)
        except OSError:
            return False
        self.output += chunk
        return bool(chunk)

    def send(self, data: bytes) -> None:
        os.write(self.master, data)

    def wait(self) -> int:
        """Wait for the app to exit (reading what it writes meanwhile); its exit status."""
        deadline = time.monotonic() + BOUND
        while self.process.poll() is None:
            if time.monotonic() > deadline:
                self.process.kill()
                raise AssertionError(f"the app did not exit: {bytes(self.output[-2000:])!r}")
            self._read(0.2)
        while self._read(0):
            pass
        return self.process.returncode

    def settings(self) -> list[Any]:
        return termios.tcgetattr(self.slave)

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        for fd in (self.master, self.slave):
            if fd < 0:
                continue
            try:
                os.close(fd)
            except OSError:
                continue


def start(
    args: list[str],
    cwd: Path,
    *,
    columns: int = 120,
    rows: int = 36,
    pass_fds: tuple[int, ...] = (),
    env: dict[str, str] | None = None,
    stdout: int | None = None,
) -> PtyApp:
    """Start ``python -m antflow_tui ARGS`` with a new pseudo-terminal as its controlling
    terminal (so the kernel sends it SIGHUP when the terminal closes); `pass_fds` are
    descriptors the script may use to tell the test where it is; `stdout`, a descriptor
    standing for a redirection (``> log``) instead of the terminal."""
    master, slave = os.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", rows, columns, 0, 0))
    before = termios.tcgetattr(slave)
    env = {
        **os.environ,
        "TERM": "xterm-256color",
        "PYTHONDONTWRITEBYTECODE": "1",
        **(env or {}),
    }
    env.pop("TEXTUAL", None)

    def controlling_terminal() -> None:
        os.setsid()
        fcntl.ioctl(0, termios.TIOCSCTTY, 0)

    process = subprocess.Popen(
        [sys.executable, "-m", "antflow_tui", *args],
        cwd=cwd,
        stdin=slave,
        stdout=slave if stdout is None else stdout,
        stderr=slave,
        env=env,
        preexec_fn=controlling_terminal,
        close_fds=True,
        pass_fds=pass_fds,
    )
    return PtyApp(process, master, slave, before)


def wait_for_word(fd: int) -> bytes:
    """Read one word the script writes on a pipe (it has reached a point of its run)."""
    ready, _, _ = select.select([fd], [], [], BOUND)
    assert ready, "the script never got there"
    return os.read(fd, 100)


def assert_terminal_given_back(app: PtyApp) -> None:
    """Line mode and echo back as before; main screen, cursor and no mouse reporting."""
    after = app.settings()
    lflag = 3
    for flag in (termios.ECHO, termios.ICANON, termios.ISIG):
        assert after[lflag] & flag == app.before[lflag] & flag, f"terminal flag {flag:#x}"
    out = bytes(app.output)
    entered = out.rfind(ENTER_ALT)
    assert entered >= 0, "the app never drew"
    assert out.find(LEAVE_ALT, entered) > entered, "still in the alternate screen"
    assert out.find(SHOW_CURSOR, entered) > entered, "the cursor stays hidden"
    mouse_on = out.rfind(MOUSE_ON)
    assert out.find(MOUSE_OFF, mouse_on) > mouse_on, "mouse reporting stays on"


def after_the_app(app: PtyApp) -> str:
    """What the terminal shows once the app has left its screen (summary, messages)."""
    out = bytes(app.output)
    left = out.rfind(LEAVE_ALT)
    return out[left + len(LEAVE_ALT) :].decode("utf-8", "replace").replace("\r\n", "\n")
