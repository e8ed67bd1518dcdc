"""The run history's errors, and what a failed write means in words.

A history that cannot be written must never fail a run: every way writing it can go
wrong (a read-only folder, a full disk, no permission, a file or a link where the folder
should be, an index locked past the timeout) is one type, `HistoryUnavailable`, whose
message says what happened and what to do, so a caller warns once and runs on.
"""

from __future__ import annotations

import errno
import sqlite3
from typing import TYPE_CHECKING, Final

if TYPE_CHECKING:
    from pathlib import Path

_SQLITE_BUSY: Final = 5
_SQLITE_LOCKED: Final = 6
_SQLITE_READONLY: Final = 8
_SQLITE_IOERR: Final = 10
_SQLITE_CORRUPT: Final = 11
_SQLITE_FULL: Final = 13
_SQLITE_CANTOPEN: Final = 14
_SQLITE_NOTADB: Final = 26


class HistoryError(Exception):
    """Base of the run history's errors."""


class HistoryUnavailable(HistoryError):
    """The history cannot be kept in its folder: it cannot be made or written (read-only,
    full, not ours, a file or a link in its place), or its index stayed locked.

    The one error a caller running a pipeline needs to handle: warn once with its
    message and run on without history.
    """

    def __init__(self, folder: Path, why: str) -> None:
        super().__init__(f"cannot keep the run history in {folder}: {why}")
        self.folder = folder
        """The history's folder."""
        self.why = why
        """What went wrong, and what to do about it."""


class RunNotFound(HistoryError, LookupError):
    """No run matches what was asked for; the message names what the history holds."""


class HistorySettingError(HistoryError, ValueError):
    """An ``ANTFLOW_HISTORY*`` variable holds a value that means nothing; the message
    names the variable and the values it takes."""


def unavailable(folder: Path, error: OSError | sqlite3.Error) -> HistoryUnavailable:
    """The `HistoryUnavailable` for an error met writing the history."""
    return HistoryUnavailable(folder, why_unwritable(error))


def why_unwritable(error: OSError | sqlite3.Error) -> str:
    """What an OS or SQLite error means for the history, and what to do."""
    if isinstance(error, OSError):
        code = error.errno
        if code in (errno.ENOSPC, errno.EDQUOT):
            return _FULL
        if code == errno.EROFS:
            return _READ_ONLY
        if code in (errno.EACCES, errno.EPERM):
            return _DENIED
        return f"{error.strerror or error} ({_ELSEWHERE})"
    code = getattr(error, "sqlite_errorcode", None)
    primary = code & 0xFF if isinstance(code, int) else None
    text = str(error)
    if primary == _SQLITE_FULL or "disk is full" in text:
        return _FULL
    if primary == _SQLITE_READONLY or "readonly" in text:
        return _READ_ONLY
    if primary in (_SQLITE_BUSY, _SQLITE_LOCKED) or "locked" in text:
        return f"its index stayed locked by another process ({text}); try again"
    if primary == _SQLITE_CANTOPEN or "unable to open" in text:
        return f"its index cannot be opened ({text}; {_ELSEWHERE})"
    if primary == _SQLITE_IOERR:
        return f"the disk failed writing its index ({text})"
    return f"its index failed ({text})"


def damaged(error: sqlite3.Error) -> bool:
    """Whether an error says the index file is damaged or not ours (it is then rebuilt
    from the recordings) rather than unwritable."""
    code = getattr(error, "sqlite_errorcode", None)
    if isinstance(code, int) and code & 0xFF in (_SQLITE_CORRUPT, _SQLITE_NOTADB):
        return True
    if type(error) is sqlite3.DatabaseError:
        return True
    return isinstance(error, sqlite3.OperationalError) and str(error).startswith(
        ("no such table", "no such column", "table runs has")
    )


_ELSEWHERE: Final = "set ANTFLOW_HOME to another folder, or ANTFLOW_HISTORY=0 to keep no history"
_FULL: Final = (
    "the disk is full (free some space, or keep fewer runs with ANTFLOW_HISTORY_KEEP or "
    "ANTFLOW_HISTORY_MAX_BYTES)"
)
_READ_ONLY: Final = f"the folder is read-only ({_ELSEWHERE})"
_DENIED: Final = f"permission denied ({_ELSEWHERE})"
