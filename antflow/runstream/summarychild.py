"""Reading one run of a comparison in a child process while this one reads the other.

A comparison reads two recordings whole, and reading is one Python loop over every
record (a million items of three stages are ~7 million records, ~2.5 s a run): on a
machine of two cores or more, the other run read at the same time halves the wait. The
child is this module run as a script (``python -m``: nothing of the parent is copied or
pickled); it writes the summary to its stdout as `antflow.runstream.summarywire` bytes.

Whatever goes wrong in the child (a file it cannot read, a crash, output that does not
decode) ends it with nothing used from it: the caller then reads the run itself, and says
what is wrong exactly as it would have without a child.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Final

import antflow
from antflow.runstream.summarywire import SummaryWireError, decode_summary, encode_summary

if TYPE_CHECKING:
    from antflow.runstream.runsummary import RunSummary

WORTH_A_CHILD: Final = 16 << 20
"""Bytes of recording under which reading costs less than starting a child (~0.2 s)."""
_PACKAGES: Final = str(Path(antflow.__file__).resolve().parents[1])


class SummaryChild:
    """A child process reading one recording whole (`summarise`); `result` waits for it.

    Use it as a context manager: leaving the block (an error, ctrl+c) kills the child.

    Args:
        path: The recording to read.
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        paths = [_PACKAGES, *filter(None, os.environ.get("PYTHONPATH", "").split(os.pathsep))]
        self._process = subprocess.Popen(
            [sys.executable, "-m", __name__, os.fspath(path)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            # The parent says what is wrong (it reads the run again itself).
            stderr=subprocess.DEVNULL,
            env={**os.environ, "PYTHONPATH": os.pathsep.join(paths)},
        )

    def __enter__(self) -> SummaryChild:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def result(self) -> RunSummary | None:
        """The child's summary, once it has read the whole file (None: it could not;
        read the file here to say why)."""
        stdout = self._process.stdout
        assert stdout is not None
        data = stdout.read()
        if self._process.wait() != 0:
            return None
        try:
            return decode_summary(data)
        except SummaryWireError:
            return None

    def close(self) -> None:
        """End the child if it still runs (idempotent)."""
        process = self._process
        if process.poll() is None:
            process.kill()
        process.wait()
        if process.stdout is not None:
            process.stdout.close()


def _main(argv: list[str]) -> int:
    # ctrl+c reaches the whole process group: the child ends quietly, the parent says so.
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    from antflow.runstream.fileformat import Recording
    from antflow.runstream.runsummary import summarise

    if len(argv) != 2:
        return 2
    try:
        recording = Recording.open(argv[1])
        try:
            data = encode_summary(summarise(recording))
        finally:
            recording.close()
        sys.stdout.buffer.write(data)
        sys.stdout.buffer.flush()
    except Exception:
        return 1  # the parent reads the file itself, and says what is wrong
    return 0


if __name__ == "__main__":
    sys.exit(_main(sys.argv))
