"""The run history: every run kept in ``./.antflow`` (or ``ANTFLOW_HOME``), listed fast.

Each run is a recording in ``.antflow/runs/`` (the format ``antflow-tui replay`` opens)
and a row of a small SQLite index, ``.antflow/index.db``, that makes listing a thousand
runs one read. The recordings are the source of truth: the index is rebuilt from them
when it is missing or damaged.

Whether a run is kept is the caller's decision (`history_setting`, `history_wanted`):
the app keeps runs by default, a plain library run when ``ANTFLOW_HISTORY=1``.

```python
history = History()
run = history.begin("job.py", sys.argv, fingerprint)
# the recorder writes run.path, with run.header_fields() in its header
run.update_counts(Counts(fed=10, done=8))  # often: written every few seconds
run.finish("finished", Counts(fed=10, done=10))
history.prune()
```

A history that cannot be written raises `HistoryUnavailable`: warn once and run on.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from antflow.history.errors import (
    HistoryError,
    HistorySettingError,
    HistoryUnavailable,
    RunNotFound,
)
from antflow.history.handle import RunHandle
from antflow.history.run import Counts, EndStatus, Run, RunStatus, end_status
from antflow.history.settings import (
    HistorySetting,
    Retention,
    history_setting,
    history_wanted,
)
from antflow.history.store import History

if TYPE_CHECKING:
    import os
    from collections.abc import Sequence

__all__ = [
    "Counts",
    "EndStatus",
    "History",
    "HistoryError",
    "HistorySetting",
    "HistorySettingError",
    "HistoryUnavailable",
    "Retention",
    "Run",
    "RunHandle",
    "RunNotFound",
    "RunStatus",
    "begin",
    "chain",
    "end_status",
    "get",
    "history_setting",
    "history_wanted",
    "prune",
    "rebuild_index",
    "resolve",
    "runs",
]


def begin(
    script: str | os.PathLike[str] | None,
    argv: Sequence[str],
    fingerprint: str | None,
    resumed_from: str | None = None,
) -> RunHandle:
    """`History.begin` on the history of the current folder (or ``ANTFLOW_HOME``)."""
    return History().begin(script, argv, fingerprint, resumed_from)


def runs(script: str | os.PathLike[str] | None = None, limit: int | None = None) -> list[Run]:
    """`History.runs` on the history of the current folder (or ``ANTFLOW_HOME``)."""
    return History().runs(script, limit)


def get(run_id: str) -> Run | None:
    """`History.get` on the history of the current folder (or ``ANTFLOW_HOME``)."""
    return History().get(run_id)


def resolve(reference: str, script: str | os.PathLike[str] | None = None) -> Run:
    """`History.resolve` on the history of the current folder (or ``ANTFLOW_HOME``)."""
    return History().resolve(reference, script)


def chain(run_id: str) -> list[Run]:
    """`History.chain` on the history of the current folder (or ``ANTFLOW_HOME``)."""
    return History().chain(run_id)


def prune(keep: int | None = None, max_bytes: int | None = None) -> list[Run]:
    """`History.prune` on the history of the current folder (or ``ANTFLOW_HOME``)."""
    return History().prune(keep, max_bytes)


def rebuild_index() -> int:
    """`History.rebuild_index` on the history of the current folder (or ``ANTFLOW_HOME``)."""
    return History().rebuild_index()
