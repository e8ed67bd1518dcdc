"""What ``compare A B`` names: a recording file, or a run of the history (``last``,
``last~N``, a run id or its start), opened and read whole, or one clear message."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Final

from antflow.history import History, HistoryError, Retention
from antflow.history.resolve import names_last
from antflow.runstream.fileformat import Recording, RecordingError
from antflow.runstream.runsummary import summarise
from antflow.runstream.summarychild import WORTH_A_CHILD, SummaryChild

if TYPE_CHECKING:
    from antflow.runstream.runsummary import RunSummary

_RUN_REFERENCE: Final = re.compile(r"\A[0-9a-f][0-9a-f-]*\Z")
"""Text that may name a run of the history by its id or its start."""


class CompareError(Exception):
    """A or B cannot be compared; the message says which and why."""


@dataclass(frozen=True, slots=True)
class Located:
    """A run to compare: where its recording is, and what the user called it."""

    label: str
    """``A`` or ``B``."""
    reference: str
    """As the user typed it."""
    path: Path
    run_id: str | None = None
    """Its id, when it was found in the history."""


def locate(reference: str, label: str, history: History | None = None) -> Located:
    """Find the recording `reference` names.

    A path that exists is a recording file (``last`` and ``last~N`` always name runs);
    anything else is looked up in the history of the current folder (or
    ``ANTFLOW_HOME``).

    Raises:
        CompareError: no such file, and no such run.
    """
    text = reference.strip()
    path = Path(text).expanduser()
    if not names_last(text) and text and path.exists():
        if path.is_dir():
            raise CompareError(f"{label}: {text} is a folder, not a recording")
        return Located(label, reference, path)
    if not names_last(text) and _RUN_REFERENCE.match(text) is None:
        raise CompareError(
            f"{label}: no such file: {text} (name a recording file, or a run of the history: "
            f"last, last~1, a run id or its start)"
        )
    try:
        found = (history or History(retention=Retention())).resolve(text)
    except HistoryError as error:
        raise CompareError(f"{label}: {error}") from None
    return Located(label, reference, found.path, found.id)


def read(located: Located) -> tuple[Recording, RunSummary]:
    """Open a located run and read it whole (the recording stays open for item stories).

    Raises:
        CompareError: the file is not a recording this antflow reads.
    """
    try:
        recording = Recording.open(located.path)
    except RecordingError as error:
        raise CompareError(f"{located.label}: {error}") from None
    try:
        return recording, summarise(recording)
    except OSError as error:
        recording.close()
        raise CompareError(
            f"{located.label}: cannot read {located.path}: {error.strerror or error}"
        ) from None


def read_both(
    a: Located, b: Located, *, worth_a_child: int = WORTH_A_CHILD
) -> tuple[tuple[Recording, RunSummary], tuple[Recording, RunSummary]]:
    """`read` A and B, B in a child process at the same time when its file is large
    (`worth_a_child` bytes or more): what a comparison waits for is then the larger
    of the two reads, not their sum. Errors are `read`'s, A's first.

    Raises:
        CompareError: A or B is not a recording this antflow reads.
    """
    child: SummaryChild | None = None
    try:
        if b.path.stat().st_size >= worth_a_child:
            child = SummaryChild(b.path)
    except OSError:
        pass  # no such file (`read` says so), or no interpreter to start: read in turn
    if child is None:
        first = read(a)
        try:
            return first, read(b)
        except CompareError:
            first[0].close()
            raise
    with child:
        first = read(a)
        try:
            return first, _read_from(child, b)
        except CompareError:
            first[0].close()
            raise


def _read_from(child: SummaryChild, located: Located) -> tuple[Recording, RunSummary]:
    """B as the child read it; read here when it could not (to say why, as `read`)."""
    try:
        recording = Recording.open(located.path)
    except RecordingError as error:
        raise CompareError(f"{located.label}: {error}") from None
    summary = child.result()
    if summary is None:
        recording.close()
        return read(located)
    return recording, summary
