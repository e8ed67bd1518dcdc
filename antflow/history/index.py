"""The index: one SQLite row per kept run, so listing a thousand runs reads one file.

A cache of what the recordings say (they stay the source of truth; see `rebuild`). It
is shared by every process running in the folder: write-ahead logging lets readers go on
while one writes, every write is one short ``BEGIN IMMEDIATE`` transaction, and a busy
index is waited for (`BUSY_TIMEOUT`) rather than failed. A connection is opened per
operation: none is inherited across ``fork`` (SQLite forbids it) or shared by threads.

``user_version`` is 0 while an index is being made, `SCHEMA_VERSION` once it holds every
run: a process meeting another value waits for the index lock and rebuilds it if it is
still not ready.
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
from pathlib import Path
from typing import TYPE_CHECKING, Final, cast

from antflow.history.folder import RUNS
from antflow.history.run import Counts, Run, RunStatus, is_run_id, recording_name

if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator

SCHEMA_VERSION: Final = 1
BUSY_TIMEOUT: Final = 5.0
"""Seconds a write waits for another process's write before giving up."""

_COLUMNS: Final = (
    "id",
    "started_at",
    "script",
    "script_path",
    "argv",
    "pid",
    "process_start",
    "status",
    "ended_at",
    "updated_at",
    "fed",
    "done",
    "failed",
    "skipped",
    "unfinished",
    "done_earlier",
    "duration",
    "rate",
    "resumed_from",
    "fingerprint",
    "path",
    "bytes",
    "antflow",
)
_SCHEMA: Final = """
CREATE TABLE IF NOT EXISTS runs (
    id TEXT PRIMARY KEY NOT NULL,
    started_at REAL NOT NULL,
    script TEXT,
    script_path TEXT,
    argv TEXT NOT NULL,
    pid INTEGER NOT NULL,
    process_start INTEGER,
    status TEXT NOT NULL,
    ended_at REAL,
    updated_at REAL NOT NULL,
    fed INTEGER NOT NULL,
    done INTEGER NOT NULL,
    failed INTEGER NOT NULL,
    skipped INTEGER NOT NULL,
    unfinished INTEGER NOT NULL,
    done_earlier INTEGER NOT NULL,
    duration REAL,
    rate REAL,
    resumed_from TEXT,
    fingerprint TEXT,
    path TEXT NOT NULL,
    bytes INTEGER NOT NULL,
    antflow TEXT NOT NULL
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS runs_by_start ON runs (started_at DESC, id DESC);
CREATE INDEX IF NOT EXISTS runs_by_script ON runs (script_path, started_at DESC);
"""
_SELECT: Final = f"SELECT {', '.join(_COLUMNS)} FROM runs"
_NEWEST_FIRST: Final = " ORDER BY started_at DESC, id DESC"
_PUT: Final = (
    f"INSERT OR REPLACE INTO runs ({', '.join(_COLUMNS)}) VALUES ({', '.join('?' * len(_COLUMNS))})"
)
_STATUSES: Final = frozenset({"running", "finished", "failed", "stopped", "crashed"})


@contextlib.contextmanager
def connected(path: Path, timeout: float = BUSY_TIMEOUT) -> Iterator[sqlite3.Connection]:
    """A connection to the index at `path` (made empty when missing), closed after."""
    connection = sqlite3.connect(path, timeout=timeout, isolation_level=None)
    try:
        # A cache: a commit lost to a power cut is rebuilt from the recordings, so a
        # commit need not wait for the disk.
        connection.execute("PRAGMA synchronous = NORMAL")
        yield connection
    finally:
        connection.close()


@contextlib.contextmanager
def writing(connection: sqlite3.Connection) -> Iterator[None]:
    """One write transaction, taken at once (so it never fails half way on a lock)."""
    connection.execute("BEGIN IMMEDIATE")
    try:
        yield
    except BaseException:
        with contextlib.suppress(sqlite3.Error):
            connection.execute("ROLLBACK")
        raise
    connection.execute("COMMIT")


def ready(connection: sqlite3.Connection) -> bool:
    """Whether the index is made, of this schema, and holds every run."""
    row = connection.execute("PRAGMA user_version").fetchone()
    return bool(row) and row[0] == SCHEMA_VERSION


def create(connection: sqlite3.Connection) -> None:
    """Give a new (empty) index its schema; `mark_ready` once it holds every run."""
    mode = connection.execute("PRAGMA journal_mode=WAL").fetchone()
    if not mode or str(mode[0]).lower() != "wal":
        raise sqlite3.OperationalError(f"cannot use write-ahead logging ({mode})")
    connection.executescript(_SCHEMA)


def mark_ready(connection: sqlite3.Connection) -> None:
    """Say the index holds every run (inside the transaction that filled it)."""
    connection.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")


def put(connection: sqlite3.Connection, runs: Iterable[Run]) -> None:
    """Write runs' rows (replacing rows of the same ids)."""
    connection.executemany(_PUT, (_row(run) for run in runs))


def delete(connection: sqlite3.Connection, run_ids: Iterable[str]) -> None:
    connection.executemany("DELETE FROM runs WHERE id = ?", ((run_id,) for run_id in run_ids))


def ids(connection: sqlite3.Connection) -> set[str]:
    return {row[0] for row in connection.execute("SELECT id FROM runs")}


def one(connection: sqlite3.Connection, home: Path, run_id: str) -> Run | None:
    row = connection.execute(f"{_SELECT} WHERE id = ?", (run_id,)).fetchone()
    return None if row is None else _run(row, home)


def select(
    connection: sqlite3.Connection,
    home: Path,
    *,
    script_path: str | None = None,
    limit: int | None = None,
) -> list[Run]:
    """Runs newest first: every run, or the runs of one script (by its absolute path,
    or by its file name for runs whose path is unknown)."""
    query = _SELECT
    arguments: list[object] = []
    if script_path is not None:
        query += " WHERE script_path = ? OR (script_path IS NULL AND script = ?)"
        arguments += [script_path, Path(script_path).name]
    query += _NEWEST_FIRST
    if limit is not None:
        query += " LIMIT ?"
        arguments.append(max(limit, 0))
    found = (_run(row, home) for row in connection.execute(query, arguments))
    return [run for run in found if run is not None]


def _row(run: Run) -> tuple[object, ...]:
    counts = run.counts
    return (
        run.id,
        run.started_at,
        run.script,
        run.script_path,
        json.dumps(list(run.argv)),
        run.pid,
        run.process_start,
        run.status,
        run.ended_at,
        run.updated_at,
        counts.fed,
        counts.done,
        counts.failed,
        counts.skipped,
        counts.unfinished,
        counts.done_earlier,
        run.duration,
        run.rate,
        run.resumed_from,
        run.fingerprint,
        f"{RUNS}/{recording_name(run.id)}",
        run.bytes,
        run.antflow,
    )


def _run(row: tuple[object, ...], home: Path) -> Run | None:
    """The run a row describes; None for a row no run of ours could have written (an
    edited or hostile index must not name a file outside ``runs`` by its id)."""
    values = dict(zip(_COLUMNS, row, strict=True))
    run_id = values["id"]
    status = values["status"]
    if not isinstance(run_id, str) or not is_run_id(run_id) or status not in _STATUSES:
        return None
    return Run(
        id=run_id,
        started_at=_real(values["started_at"]) or 0.0,
        script=_text(values["script"]),
        script_path=_text(values["script_path"]),
        argv=_argv(values["argv"]),
        pid=_whole(values["pid"]) or 0,
        process_start=_whole(values["process_start"]),
        status=cast("RunStatus", status),
        ended_at=_real(values["ended_at"]),
        updated_at=_real(values["updated_at"]) or 0.0,
        counts=Counts(
            fed=_whole(values["fed"]) or 0,
            done=_whole(values["done"]) or 0,
            failed=_whole(values["failed"]) or 0,
            skipped=_whole(values["skipped"]) or 0,
            unfinished=_whole(values["unfinished"]) or 0,
            done_earlier=_whole(values["done_earlier"]) or 0,
        ),
        duration=_real(values["duration"]),
        rate=_real(values["rate"]),
        resumed_from=_text(values["resumed_from"]),
        fingerprint=_text(values["fingerprint"]),
        # Always derived from the id, never from the row's `path`: the folder may have
        # moved, and a row must not point retention at a file elsewhere.
        path=home / RUNS / recording_name(run_id),
        bytes=_whole(values["bytes"]) or 0,
        antflow=_text(values["antflow"]) or "",
    )


def _text(value: object) -> str | None:
    return value if isinstance(value, str) else None


def _whole(value: object) -> int | None:
    return value if type(value) is int else None


def _real(value: object) -> float | None:
    if type(value) is int:
        return float(value)
    return value if type(value) is float else None


def _argv(value: object) -> tuple[str, ...]:
    try:
        decoded = json.loads(value) if isinstance(value, str) else None
    except (ValueError, RecursionError):
        return ()
    if not isinstance(decoded, list):
        return ()
    return tuple(part for part in decoded if isinstance(part, str))
