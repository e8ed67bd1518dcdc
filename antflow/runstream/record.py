"""Record a run: ``async with antflow.record(FILE):`` in a script, or ``ANTFLOW_RECORD=FILE``
for an unmodified one.

Both record every pipeline that starts (inside the block, or anywhere in the process),
with their events, errors, snapshots and the script's log records, into one recording
that ``antflow-tui replay FILE`` opens.
"""

from __future__ import annotations

import atexit
import contextlib
import logging
import os
import sys
from typing import TYPE_CHECKING, Final

from antflow.observe import observe, observe_process
from antflow.runstream.recorder import Recorder
from antflow.runstream.stream import RunStream

if TYPE_CHECKING:
    from collections.abc import AsyncIterator
    from pathlib import Path

    from antflow.pipeline import Pipeline

ENVIRONMENT_VARIABLE: Final = "ANTFLOW_RECORD"
VALUES_VARIABLE: Final = "ANTFLOW_RECORD_VALUES"


class LogToStream(logging.Handler):
    """Log records of the script, as log lines of the recording.

    Recording must not change what the script shows: without a handler of its own, a
    warning goes to standard error (logging's last resort), and still does with this one
    on the root logger (the recorder's own warnings, a full disk, too).
    """

    def __init__(self, stream: RunStream) -> None:
        super().__init__()
        self.stream = stream

    def emit(self, record: logging.LogRecord) -> None:
        last_resort = logging.lastResort
        if (
            last_resort is not None
            and record.levelno >= last_resort.level
            and self._only_handler(record.name)
        ):
            last_resort.handle(record)
        if record.name.startswith("antflow.runstream"):
            return  # never record the recorder's own complaints about itself
        try:
            self.stream.log(self.format(record), record.levelname)
        except Exception:  # logging must never fail the program
            self.handleError(record)

    def _only_handler(self, name: str) -> bool:
        """Whether a record of logger `name` reaches no handler but this one."""
        logger: logging.Logger | None = logging.getLogger(name)
        while logger is not None:
            if any(handler is not self for handler in logger.handlers):
                return False
            logger = logger.parent if logger.propagate else None
        return True


def _new_stream(values: bool) -> RunStream:
    script = os.path.basename(sys.argv[0]) if sys.argv and sys.argv[0] else None
    stream = RunStream(
        values=values, argv=sys.argv, script=script, follow_events=False, follow_errors=False
    )
    if script is not None:
        stream.note_script(sys.argv[0])
    return stream


def run_reason(stream: RunStream) -> str:
    """How a run that ended without an error ended, as its pipelines say: ``interrupted``
    (one still runs), ``stopped`` (items left unfinished) or ``finished``."""
    snapshots = stream.snapshots()
    if any(s.running for s in snapshots):
        return "interrupted"
    if any(s.unfinished for s in snapshots):
        return "stopped"
    return "finished"


@contextlib.asynccontextmanager
async def record(path: str | Path, *, values: bool = False) -> AsyncIterator[Recorder]:
    """Record every pipeline that starts inside the block into `path`.

    Args:
        path: The recording file (created, or truncated).
        values: Also record reprs of item values (in error records), never pickles.

    Example:
        ```python
        async with antflow.record("run.jsonl"):
            await pipeline.run(items)
        ```
    """
    stream = _new_stream(values)
    recorder = Recorder(path, stream)
    recorder.open()
    handler = LogToStream(stream)
    logging.getLogger().addHandler(handler)
    reason = "finished"
    try:
        with observe(stream.attach):
            yield recorder
    except BaseException:
        reason = "error"
        raise
    finally:
        logging.getLogger().removeHandler(handler)
        recorder.close(reason if reason == "error" else run_reason(stream))
        stream.close()


def record_from_environment() -> None:
    """With ``ANTFLOW_RECORD=FILE`` set, record every pipeline of this process to FILE
    (``ANTFLOW_RECORD_VALUES=1`` adds values); the recording is closed at exit."""
    path = os.environ.get(ENVIRONMENT_VARIABLE)
    if not path:
        return
    values = os.environ.get(VALUES_VARIABLE, "") not in ("", "0", "false", "no")
    stream = _new_stream(values)
    recorder = Recorder(path, stream)
    state = {"open": False}

    def on_start(pipeline: Pipeline) -> None:
        if not state["open"]:
            state["open"] = True
            recorder.open()
            logging.getLogger().addHandler(LogToStream(stream))
            atexit.register(lambda: recorder.close(run_reason(stream)))
        stream.attach(pipeline)

    observe_process(on_start)
