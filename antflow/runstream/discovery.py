"""Where served runs can be found: a private runtime folder of sockets and discovery files.

Each serving process writes ``<pid>.json`` (mode 0600) beside its ``<pid>.sock`` in a
folder only its user may enter (0700): ``$XDG_RUNTIME_DIR/antflow``, else
``<tmp>/antflow-<uid>``. The file names the address, the tokens, the script and when it
started, so ``antflow-tui attach`` lists running jobs and ``attach PID`` finds one.

The folder may sit in a shared place (``/tmp``), where another user could have put a
symbolic link or a folder of their own under its name first: it is checked without
following links (ours, a folder, 0700), then opened once and every file in it is
created, read and removed relative to that verified descriptor, never following a link
(``O_NOFOLLOW``, ``O_EXCL``). A discovery file appears whole (written under a temporary
name, then renamed), and records its process's start time, so a file whose PID another
process has since taken is known for a stale one.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import stat
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Final

if TYPE_CHECKING:
    from collections.abc import Iterator

SUFFIX: Final = ".json"
MAX_FILE: Final = 64 * 1024
"""Bytes of a discovery file read at most (they hold a few hundred)."""


class DiscoveryError(OSError):
    """The runtime folder is not safe to use (not ours, a link, or cannot be made)."""


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
    process_start: int | None = None
    """When the serving process started, in the kernel's clock ticks since boot (Linux's
    ``/proc/PID/stat``): a live process with this PID that started at another time is
    another process. None where the system does not say."""


def runtime_folder() -> Path:
    """The private folder, created 0700 if missing.

    Raises:
        DiscoveryError: it is a link or not a folder, belongs to another user, or cannot
            be made private.
    """
    folder = _default_folder()
    with _opened(folder):
        return folder


def publish(served: Served) -> None:
    """Write the discovery file, readable by its owner only, atomically: a reader sees
    no file or the whole of it, and a link left at its name is replaced, not followed.

    Raises:
        DiscoveryError: the folder is not safe (see `runtime_folder`).
        OSError: the file could not be written.
    """
    data = {
        "pid": served.pid,
        "address": served.address,
        "read_token": served.read_token,
        "control_token": served.control_token,
        "script": served.script,
        "argv": list(served.argv),
        "started_at": served.started_at,
        "process_start": served.process_start,
    }
    body = json.dumps(data).encode()
    name = served.path.name
    with _opened(served.path.parent) as folder:
        temporary = f".{name}.{secrets.token_hex(6)}.tmp"
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
        descriptor = os.open(temporary, flags, 0o600, dir_fd=folder)
        try:
            with os.fdopen(descriptor, "wb") as out:
                out.write(body)
            os.rename(temporary, name, src_dir_fd=folder, dst_dir_fd=folder)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(temporary, dir_fd=folder)
            raise


def withdraw(served: Served) -> None:
    """Remove the discovery file (nothing happens when it is already gone)."""
    with contextlib.suppress(OSError, DiscoveryError), _opened(served.path.parent) as folder:
        os.unlink(served.path.name, dir_fd=folder)


def running(folder: Path | None = None) -> list[Served]:
    """Every served run whose process is alive, oldest first (stale files are removed:
    their process has ended, or its PID now belongs to another process)."""
    folder = folder or _default_folder()
    found = []
    with _opened(folder) as descriptor:
        for name in sorted(os.listdir(descriptor)):
            if name.startswith(".") or not name.endswith(SUFFIX):
                continue
            served = _read(descriptor, folder, name)
            if served is None:
                continue
            if not _same_process(served):
                with contextlib.suppress(OSError):
                    os.unlink(name, dir_fd=descriptor)
                with contextlib.suppress(OSError):
                    os.unlink(name.removesuffix(SUFFIX) + ".sock", dir_fd=descriptor)
                continue
            found.append(served)
    return sorted(found, key=lambda s: s.started_at)


def find(pid: int, folder: Path | None = None) -> Served | None:
    return next((s for s in running(folder) if s.pid == pid), None)


def process_start(pid: int) -> int | None:
    """When process `pid` started (clock ticks since boot), or None when unknown."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as proc:
            line = proc.read()
        # The command name (field 2) may hold spaces and parentheses: fields resume
        # after its last ')'; the start time is field 22.
        return int(line.rpartition(b")")[2].split()[19])
    except (OSError, ValueError, IndexError):
        return None


def _default_folder() -> Path:
    base = os.environ.get("XDG_RUNTIME_DIR")
    if base:
        return Path(base) / "antflow"
    return Path(tempfile.gettempdir()) / f"antflow-{os.getuid()}"


@contextlib.contextmanager
def _opened(folder: Path) -> Iterator[int]:
    """The private folder, created if missing and verified without following links, as
    an open descriptor to work relative to."""
    try:
        with contextlib.suppress(FileExistsError):
            folder.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            os.mkdir(folder, 0o700)
        info = os.lstat(folder)
    except OSError as error:
        raise DiscoveryError(f"cannot use {folder}: {error.strerror or error}") from None
    _check(folder, info)
    try:
        descriptor = os.open(folder, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError as error:
        raise DiscoveryError(f"cannot open {folder}: {error.strerror or error}") from None
    try:
        opened = os.fstat(descriptor)
        if (opened.st_dev, opened.st_ino) != (info.st_dev, info.st_ino):
            raise DiscoveryError(f"{folder} changed while it was being checked; try again")
        _check(folder, opened)
        if stat.S_IMODE(opened.st_mode) & 0o077:
            os.fchmod(descriptor, 0o700)
        yield descriptor
    finally:
        os.close(descriptor)


def _check(folder: Path, info: os.stat_result) -> None:
    if stat.S_ISLNK(info.st_mode):
        raise DiscoveryError(
            f"{folder} is a symbolic link, not a folder (another user may have made it): "
            f"remove it, or set XDG_RUNTIME_DIR to a private folder"
        )
    if not stat.S_ISDIR(info.st_mode):
        raise DiscoveryError(f"{folder} is not a folder: remove it, or set XDG_RUNTIME_DIR")
    if info.st_uid != os.getuid():
        raise DiscoveryError(f"{folder} belongs to another user: remove it, or set XDG_RUNTIME_DIR")


def _read(folder: int, path: Path, name: str) -> Served | None:
    try:
        descriptor = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=folder)
    except OSError:
        return None
    try:
        if not stat.S_ISREG(os.fstat(descriptor).st_mode):
            return None
        data = json.loads(os.read(descriptor, MAX_FILE))
        start = data.get("process_start")
        return Served(
            pid=int(data["pid"]),
            address=str(data["address"]),
            read_token=str(data["read_token"]),
            control_token=_text_or_none(data.get("control_token")),
            script=_text_or_none(data.get("script")),
            argv=tuple(str(arg) for arg in data.get("argv", ())),
            started_at=float(data.get("started_at", 0.0)),
            path=path / name,
            process_start=start if isinstance(start, int) else None,
        )
    except (OSError, ValueError, KeyError, TypeError, AttributeError, RecursionError):
        return None
    finally:
        os.close(descriptor)


def _text_or_none(value: object) -> str | None:
    return None if value is None else str(value)


def _same_process(served: Served) -> bool:
    """The file's process is alive, and is the one that wrote it (not a later one that
    was given the same PID)."""
    if not _alive(served.pid):
        return False
    if served.process_start is None:
        return True
    now = process_start(served.pid)
    return now is None or now == served.process_start


def _alive(pid: int) -> bool:
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except (ProcessLookupError, OverflowError):
        return False
    except PermissionError:
        return True
    return True
