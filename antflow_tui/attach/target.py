"""Which served run to attach to, and how to find it again after the connection drops.

`antflow-tui attach` takes nothing (the only job running, or one the user picks), a PID
(its discovery file names the address and the tokens) or an address with a token. The
same `Target` finds the job again later: the same process, or a new run of the same
script once that one has ended (the source then shows it as a new run).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

from antflow.runstream import discovery

if TYPE_CHECKING:
    from pathlib import Path

TOKEN_VARIABLE: Final = "ANTFLOW_TOKEN"
"""Where `attach ADDRESS` reads the token when ``--token`` is not given (``web`` passes it
to each browser tab's viewer this way, never in a URL or a command line)."""


class TargetError(Exception):
    """No job to attach to; the message says why."""


@dataclass(frozen=True, slots=True)
class Found:
    """Where a job is served, and the token to present."""

    address: str
    token: str
    pid: int | None = None
    script: str | None = None
    control: bool = False
    """The token is the control token."""


@dataclass(slots=True)
class Target:
    """How to find the job to attach to.

    Args:
        address: A fixed address (``unix:PATH`` or ``tcp://HOST:PORT``) and its `token`.
        pid: A process serving a run (found in the private runtime folder).
        read_only: Present the read token even when the control token is known.
        folder: The runtime folder (None: the default one).
    """

    address: str | None = None
    token: str | None = None
    pid: int | None = None
    read_only: bool = False
    folder: Path | None = None
    script: str | None = None
    """The script of the run attached last: a new run of it is attached to next."""
    argv: tuple[str, ...] = ()

    @property
    def description(self) -> str:
        if self.address is not None:
            return self.address
        if self.pid is not None:
            return f"pid {self.pid}"
        return "a running job"

    def locate(self) -> Found | None:
        """Where the job is now (None: not there, yet or any more)."""
        if self.address is not None:
            if not self.token:
                return None
            return Found(self.address, self.token, control=not self.read_only)
        running = discovery.running(self.folder)
        chosen = None
        if self.pid is not None:
            chosen = next((s for s in running if s.pid == self.pid), None)
        if chosen is None and self.script is not None:
            # The same script run again (the newest such run, preferring the same argv).
            same = [s for s in running if s.script == self.script]
            same.sort(key=lambda s: (s.argv == self.argv, s.started_at))
            chosen = same[-1] if same else None
        if chosen is None:
            return None
        return found(chosen, read_only=self.read_only)

    def remember(self, pid: int | None, script: str | None, argv: tuple[str, ...]) -> None:
        """The run just attached to: found again by its PID, or by its script."""
        if self.address is None and pid is not None:
            self.pid = pid
        if script is not None:
            self.script = script
            self.argv = argv


def found(served: discovery.Served, *, read_only: bool = False) -> Found:
    control = served.control_token is not None and not read_only
    token = served.control_token if control and served.control_token else served.read_token
    return Found(served.address, token, served.pid, served.script, control=control)


def parse_target(
    text: str | None, token: str | None, *, read_only: bool = False, folder: Path | None = None
) -> Target:
    """`attach`'s argument: nothing, a PID, or an address (whose token comes from
    ``--token`` or ``$ANTFLOW_TOKEN``).

    Raises:
        TargetError: an address without a token, or something that is neither.
    """
    if text is None or text == "":
        return Target(read_only=read_only, folder=folder)
    if text.isdigit():
        return Target(pid=int(text), read_only=read_only, folder=folder)
    if text.startswith(("unix:", "tcp://")):
        token = token or os.environ.get(TOKEN_VARIABLE)
        if not token:
            raise TargetError(
                f"attaching to {text} needs its token: --token TOKEN or ${TOKEN_VARIABLE} "
                f"(the serving process's discovery file holds it; `antflow-tui attach` "
                f"without an address finds it there)"
            )
        return Target(address=text, token=token, read_only=read_only, folder=folder)
    raise TargetError(
        f"{text!r} is neither a process id nor an address (unix:PATH or tcp://HOST:PORT)"
    )


def running_jobs(folder: Path | None = None) -> list[discovery.Served]:
    """Every run served on this machine by this user, oldest first."""
    return discovery.running(folder)
