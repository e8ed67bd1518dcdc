"""Where the run history lives, and its files, reached without following links.

``./.antflow`` in the current folder, as pytest's ``.pytest_cache``: made on first use
with a ``.gitignore`` holding ``*``, so it never lands in a repository. ``ANTFLOW_HOME``
puts it elsewhere.

A ``.antflow`` that is a symbolic link is refused, not followed: a project folder can
come from an archive or a clone, and retention deletes files in the history's ``runs``
folder, so a link there could point it at anything. A user who wants the history on
another disk says so with ``ANTFLOW_HOME`` (which is followed, links and all, since they
named it). The folder must belong to this user. Inside it, everything is opened relative
to the verified folder's descriptor with ``O_NOFOLLOW``, and run files are created with
``O_EXCL``. Files get the user's usual permissions (umask), as any file made in their
project folder.

A ``.gitignore`` is written into an ``ANTFLOW_HOME`` folder only when the history made
that folder: ``ANTFLOW_HOME=.`` must not make git ignore a whole project.
"""

from __future__ import annotations

import contextlib
import os
import stat
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Final

from antflow.history.errors import HistoryUnavailable, unavailable
from antflow.history.settings import HOME_VARIABLE

if TYPE_CHECKING:
    from collections.abc import Iterator, Mapping

DEFAULT_NAME: Final = ".antflow"
RUNS: Final = "runs"
INDEX: Final = "index.db"
INDEX_FILES: Final = (INDEX, f"{INDEX}-wal", f"{INDEX}-shm", f"{INDEX}-journal")
"""The index and SQLite's files beside it (write-ahead log, shared memory, journal)."""
LOCK: Final = "index.lock"
GITIGNORE: Final = ".gitignore"
GITIGNORE_TEXT: Final = b"# Created by antflow: this folder holds its run history.\n*\n"
# getattr: the engine must still import where these do not exist (Windows).
_NOFOLLOW: Final = getattr(os, "O_NOFOLLOW", 0)
_CLOEXEC: Final = getattr(os, "O_CLOEXEC", 0)
_AT_FUNCTIONS: Final = os.open in os.supports_dir_fd
"""Whether files open relative to a folder's descriptor (not on Windows)."""
_DIRECTORY: Final = os.O_RDONLY | getattr(os, "O_DIRECTORY", 0) | _CLOEXEC
_LOCK_POLL: Final = 0.02
"""Seconds between tries of the index lock: a repair takes milliseconds to seconds."""


@dataclass(frozen=True, slots=True)
class Location:
    """Where the history is, and whether the user chose it."""

    home: Path
    """The history's folder (absolute)."""
    chosen: bool
    """Named by ``ANTFLOW_HOME`` (or the caller): followed even through links."""


def locate(environ: Mapping[str, str] | None = None, cwd: Path | None = None) -> Location:
    """The history's folder: ``ANTFLOW_HOME`` when set, else ``.antflow`` in `cwd` (the
    current folder)."""
    base = Path.cwd() if cwd is None else cwd
    chosen = (os.environ if environ is None else environ).get(HOME_VARIABLE, "")
    if chosen:
        return Location(Path(base, os.path.expanduser(chosen)).absolute(), chosen=True)
    return Location((base / DEFAULT_NAME).absolute(), chosen=False)


class Folder:
    """The history's folder: opened, checked and (on writes) made, once per operation.

    No descriptor outlives an operation, so a `Folder` is safe across threads and
    `fork`.
    """

    def __init__(self, location: Location) -> None:
        self.location = location
        self.home = location.home
        self.index_path = location.home / INDEX

    @contextlib.contextmanager
    def opened(self, *, create: bool) -> Iterator[Opened | None]:
        """The folder, open and checked; made first when `create` (None when it does not
        exist and `create` is False).

        Raises:
            HistoryUnavailable: it cannot be made or opened, is a link (``.antflow``),
                a file, or another user's.
        """
        if not _AT_FUNCTIONS:
            raise HistoryUnavailable(self.home, "keeping a run history needs Linux or macOS")
        home = self._open_home(create)
        if home is None:
            yield None
            return
        try:
            runs = self._open_runs(home, create)
            try:
                yield Opened(self, home, runs)
            finally:
                if runs is not None:
                    os.close(runs)
        finally:
            os.close(home)

    def _open_home(self, create: bool) -> int | None:
        flags = _DIRECTORY if self.location.chosen else _DIRECTORY | _NOFOLLOW
        made = False
        try:
            try:
                descriptor = os.open(self.home, flags)
            except FileNotFoundError:
                if not create:
                    return None
                made = self._make_home()
                descriptor = os.open(self.home, flags)
        except OSError as error:
            raise self._refusal(error) from None
        try:
            info = os.fstat(descriptor)
            if info.st_uid != os.getuid():
                raise HistoryUnavailable(
                    self.home,
                    "it belongs to another user (remove it, or set ANTFLOW_HOME to a folder "
                    "of your own)",
                )
            if create and (made or not self.location.chosen):
                self._write_gitignore(descriptor)
        except BaseException:
            os.close(descriptor)
            raise
        return descriptor

    def _make_home(self) -> bool:
        """Make the folder; False when another process made it first."""
        if self.location.chosen:
            self.home.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.mkdir(self.home)
        except FileExistsError:
            return False
        return True

    def _write_gitignore(self, home: int) -> None:
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | _NOFOLLOW | _CLOEXEC
        try:
            descriptor = os.open(GITIGNORE, flags, 0o666, dir_fd=home)
        except FileExistsError:
            return
        except OSError as error:
            raise unavailable(self.home, error) from None
        try:
            os.write(descriptor, GITIGNORE_TEXT)
        except OSError as error:
            raise unavailable(self.home, error) from None
        finally:
            os.close(descriptor)

    def _open_runs(self, home: int, create: bool) -> int | None:
        try:
            if create:
                with contextlib.suppress(FileExistsError):
                    os.mkdir(RUNS, dir_fd=home)
            return os.open(RUNS, _DIRECTORY | _NOFOLLOW, dir_fd=home)
        except FileNotFoundError:
            if create:
                raise HistoryUnavailable(self.home, f"its {RUNS} folder vanished") from None
            return None
        except OSError as error:
            raise self._refusal(error, self.home / RUNS) from None

    def _refusal(self, error: OSError, path: Path | None = None) -> HistoryUnavailable:
        """What opening (or making) `path` failed of, in words."""
        path = path or self.home
        try:
            info = os.lstat(path)
        except OSError:
            return unavailable(self.home, error)
        if stat.S_ISLNK(info.st_mode):
            try:
                target = f" (to {os.readlink(path)})"
            except OSError:
                target = ""
            return HistoryUnavailable(
                self.home,
                f"{path} is a symbolic link{target}, which the history does not "
                f"follow: remove it, or set ANTFLOW_HOME to the folder it points to",
            )
        if not stat.S_ISDIR(info.st_mode):
            return HistoryUnavailable(
                self.home,
                f"{path} is a file, not a folder: move it away, or set ANTFLOW_HOME to "
                f"another folder",
            )
        return unavailable(self.home, error)


@dataclass(frozen=True, slots=True)
class Opened:
    """The history's folder during one operation: its descriptors, and what is done
    through them."""

    folder: Folder
    home: int
    runs: int | None
    """None until the first run makes the ``runs`` folder."""

    def create_recording(self, name: str) -> None:
        """Create a run's recording file, empty: it must not exist (that is what makes
        run ids unique).

        Raises:
            FileExistsError: it exists.
            HistoryUnavailable: it cannot be made.
        """
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | _NOFOLLOW | _CLOEXEC
        try:
            os.close(os.open(name, flags, 0o666, dir_fd=self._runs()))
        except FileExistsError:
            raise
        except OSError as error:
            raise unavailable(self.folder.home, error) from None

    def remove_recording(self, name: str) -> None:
        """Delete a run's recording (gone already is fine).

        Raises:
            HistoryUnavailable: it cannot be deleted.
        """
        try:
            os.unlink(name, dir_fd=self._runs())
        except FileNotFoundError:
            pass
        except OSError as error:
            raise unavailable(self.folder.home, error) from None

    def size(self, name: str) -> int | None:
        """A recording's size in bytes, or None when it is missing (or not a file)."""
        if self.runs is None:
            return None
        try:
            info = os.stat(name, dir_fd=self.runs, follow_symlinks=False)
        except OSError:
            return None
        return info.st_size if stat.S_ISREG(info.st_mode) else None

    def recordings(self) -> list[str]:
        """The names of the files in the ``runs`` folder."""
        if self.runs is None:
            return []
        try:
            return os.listdir(self.runs)
        except OSError as error:
            raise unavailable(self.folder.home, error) from None

    def recording_descriptor(self, name: str) -> int | None:
        """A read-only descriptor of a recording (None: missing, a link, not a file)."""
        if self.runs is None:
            return None
        try:
            # O_NONBLOCK: a FIFO put there must not hang the opening.
            flags = os.O_RDONLY | _NOFOLLOW | os.O_NONBLOCK | _CLOEXEC
            descriptor = os.open(name, flags, dir_fd=self.runs)
        except OSError:
            return None
        if not stat.S_ISREG(os.fstat(descriptor).st_mode):
            os.close(descriptor)
            return None
        return descriptor

    def index_sound(self) -> bool:
        """Whether the index's files are plain files or absent (a link there is removed:
        SQLite would follow it)."""
        sound = True
        for name in INDEX_FILES:
            try:
                info = os.stat(name, dir_fd=self.home, follow_symlinks=False)
            except FileNotFoundError:
                continue
            except OSError as error:
                raise unavailable(self.folder.home, error) from None
            if not stat.S_ISREG(info.st_mode):
                sound = False
        return sound

    def remove_index(self) -> None:
        """Delete the index and SQLite's files beside it (a stale write-ahead log must
        never be applied to a new index).

        Raises:
            HistoryUnavailable: one cannot be deleted.
        """
        for name in INDEX_FILES:
            try:
                if stat.S_ISDIR(os.stat(name, dir_fd=self.home, follow_symlinks=False).st_mode):
                    os.rmdir(name, dir_fd=self.home)
                else:
                    os.unlink(name, dir_fd=self.home)
            except FileNotFoundError:
                continue
            except OSError as error:
                raise unavailable(self.folder.home, error) from None

    @contextlib.contextmanager
    def locked(self, timeout: float) -> Iterator[None]:
        """Hold the lock that makes or repairs the index: one process at a time.

        Raises:
            HistoryUnavailable: another process held it for more than `timeout` seconds.
        """
        import fcntl  # POSIX only: the engine must import on Windows too

        flags = os.O_RDWR | os.O_CREAT | _NOFOLLOW | _CLOEXEC
        try:
            descriptor = os.open(LOCK, flags, 0o666, dir_fd=self.home)
        except OSError as error:
            raise unavailable(self.folder.home, error) from None
        try:
            deadline = time.monotonic() + timeout
            while True:
                try:
                    fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if time.monotonic() > deadline:
                        raise HistoryUnavailable(
                            self.folder.home,
                            f"another process has been rebuilding its index for more than "
                            f"{timeout:g} s; try again",
                        ) from None
                    time.sleep(_LOCK_POLL)
            yield
        finally:
            os.close(descriptor)

    def _runs(self) -> int:
        if self.runs is None:
            raise HistoryUnavailable(self.folder.home, f"it has no {RUNS} folder yet")
        return self.runs
