"""Whether a run's process is still the one that ran it: running or crashed.

The index says ``running`` from `begin` until `finish`; a run whose process is gone
without finishing (SIGKILL, the OOM killer, a reboot) is shown ``crashed``. A PID alone
is not enough, since the kernel gives PIDs out again: the process's start time (Linux's
``/proc/PID/stat``) must match too, where the system says it.
"""

from __future__ import annotations

import os

from antflow.runstream.discovery import process_start


def process_identity() -> tuple[int, int | None]:
    """This process's PID and start time (None where the system does not say)."""
    pid = os.getpid()
    return pid, process_start(pid)


def process_alive(pid: int, started: int | None) -> bool:
    """Whether process `pid` exists and, when `started` is known, started then."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except (ProcessLookupError, OverflowError):
        return False
    except PermissionError:
        pass  # Another user's process: it exists.
    if started is None:
        return True
    now = process_start(pid)
    return now is None or now == started
