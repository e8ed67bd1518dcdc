"""Ending the app from the watchdog thread, when its event loop cannot do it.

The script's code holds the loop (a busy loop, a long `time.sleep`, a blocking call), so
nothing on the loop runs: no key, no frame, no graceful stop. From its own thread the
watchdog can still read the run's counters, give the terminal back, write the export and
the summary, and exit. Items still in flight count as unfinished.
"""

from __future__ import annotations

import contextlib
import os
from typing import TYPE_CHECKING, NoReturn

from antflow_tui.hosting.terminal import restore_terminal
from antflow_tui.keys import key_for
from antflow_tui.outcome import EXIT_INCOMPLETE
from antflow_tui.safe_text import clean

if TYPE_CHECKING:
    from antflow_tui.hosting.host import ScriptHost


def _write(fd: int, text: str) -> None:
    data = text.encode("utf-8", "replace")
    with contextlib.suppress(OSError):  # the terminal may be gone (SIGHUP)
        while data:
            data = data[os.write(fd, data) :]


def show_hint(host: ScriptHost, blame: str) -> None:
    """On the screen's top line, over the app: the loop is blocked, press again to quit.

    Written straight to the terminal: the app cannot draw while its loop is held.
    """
    terminal = host.terminal
    if terminal is None:
        return
    what = f" ({clean(blame, 100)})" if blame else ""
    text = (
        f" antflow-tui: the script is blocking the event loop{what}; press "
        f"{key_for(host.app, 'stop')} again to quit now "
    )
    # Save the cursor, top-left, white on red, clear to the end of the line, restore.
    terminal.write(f"\x1b7\x1b[1;1H\x1b[0;97;41m{text}\x1b[K\x1b[0m\x1b8")


def emergency_exit(host: ScriptHost, reason: str) -> NoReturn:
    """Give the terminal back, write the export and the summary from what the run's
    counters say now, and exit with status 1. Runs on the watchdog thread."""
    route = host.fd_route
    if route is not None:
        route.restore()
    problems: list[str] = []
    try:
        host.app.write_export(in_flight_unfinished=True)
    except Exception as error:  # whatever it is, the user must get their terminal back
        problems.append(f"--export could not be written: {error}")
    restore_terminal(host.terminal, host.terminal_attrs)
    try:
        host.stopped_by = reason
        summary = host.outcome(in_flight_unfinished=True).summary()
    except Exception as error:
        summary = ""
        problems.append(f"the run's counts could not be read: {error}")
    lines = [f"antflow-tui: stopped at once: {reason}."]
    stall = host.stalls.last
    watchdog = host.watchdog
    if watchdog is not None and watchdog.blame is not None:
        lines.append(f"The event loop was held by {clean(watchdog.blame.describe(), 200)}.")
    elif stall is not None and stall.blame is not None:
        lines.append(f"The event loop was last held by {clean(stall.blame.describe(), 200)}.")
    lines.extend(f"antflow-tui: {problem}" for problem in problems)
    _write(2, "\n" + "\n".join(lines) + "\n")
    if summary:
        _write(1, summary + "\n")
    os._exit(EXIT_INCOMPLETE)
