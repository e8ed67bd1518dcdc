"""Where served runs can be found: a private runtime folder of sockets and discovery files.

Each serving process writes ``<pid>.json`` (mode 0600) beside its ``<pid>.sock`` in a
folder only its user may enter (0700): ``$XDG_RUNTIME_DIR/antflow``, else
``<tmp>/antflow-<uid>``. The file names the address, the tokens, the script and when it
started, so ``antflow-tui attach`` lists running jobs and ``attach PID`` finds one.
"""

from __future__ import annotations

import contextlib
import json
import os
import stat
import tempfile
from dataclasses import dataclass
from pathlib import Path


class DiscoveryError(Exception):
    """The runtime folder is not safe to use (not ours, or open to others)."""


@dataclass(frozen=True, slots=True)
class Served:
    """One served run, as its discovery file describes it."""

    pid: int
    address: str
    """``unix:/path`` or ``tcp://host:port``."""
    read_token: str
    control_token: str | None
    script: str | None
    argv: tuple[str, ...]
    started_at: float
    path: Path
    """The discovery file."""


def runtime_folder() -> Path:
    """The private folder (created 0700 if missing; refused if others may enter it)."""
    base = os.environ.get("XDG_RUNTIME_DIR")
    folder = (
        Path(base) / "antflow" if base else Path(tempfile.gettempdir()) / f"antflow-{os.getuid()}"
    )
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    info = folder.stat()
    if info.st_uid != os.getuid():
        raise DiscoveryError(f"{folder} belongs to another user; remove it or set XDG_RUNTIME_DIR")
    if stat.S_IMODE(info.st_mode) & 0o077:
        os.chmod(folder, 0o700)
    return folder


def publish(served: Served) -> None:
    """Write the discovery file, readable by its owner only."""
    data = {
        "pid": served.pid,
        "address": served.address,
        "read_token": served.read_token,
        "control_token": served.control_token,
        "script": served.script,
        "argv": list(served.argv),
        "started_at": served.started_at,
    }
    temporary = served.path.with_suffix(".tmp")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w") as out:
        json.dump(data, out)
    os.replace(temporary, served.path)


def withdraw(served: Served) -> None:
    with contextlib.suppress(FileNotFoundError):
        served.path.unlink()


def running(folder: Path | None = None) -> list[Served]:
    """Every served run whose process is alive, oldest first (stale files are removed)."""
    folder = folder or runtime_folder()
    found = []
    for path in sorted(folder.glob("*.json")):
        served = _read(path)
        if served is None:
            continue
        if not _alive(served.pid):
            with contextlib.suppress(OSError):
                path.unlink()
            socket = path.with_suffix(".sock")
            with contextlib.suppress(OSError):
                socket.unlink()
            continue
        found.append(served)
    return sorted(found, key=lambda s: s.started_at)


def find(pid: int, folder: Path | None = None) -> Served | None:
    return next((s for s in running(folder) if s.pid == pid), None)


def _read(path: Path) -> Served | None:
    try:
        data = json.loads(path.read_text())
        return Served(
            pid=int(data["pid"]),
            address=str(data["address"]),
            read_token=str(data["read_token"]),
            control_token=data.get("control_token"),
            script=data.get("script"),
            argv=tuple(data.get("argv", ())),
            started_at=float(data.get("started_at", 0.0)),
            path=path,
        )
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
