"""A pipeline's lifecycle as one state, and the moves between states that are legal.

`Pipeline.state` reads it; `Pipeline` changes it only through `move`, which refuses a
move the table does not list (a bug of ours, never a user's mistake: every public
method checks what it may do first, in its own words).

::

    IDLE ─start─▶ RUNNING ─join─▶ CLOSING ─done─▶ FINISHED ─start─▶ RUNNING …
      │              │               │
      shutdown    shutdown        shutdown
      ▼              ▼               ▼
    STOPPED ◀─── ENDING ◀─────── STOPPING        (STOPPED ─start─▶ RUNNING …)
"""

from __future__ import annotations

from enum import Enum
from typing import Final


class PipelineState(Enum):
    """Where a pipeline is in its lifecycle."""

    IDLE = "idle"
    """Never started (items may be fed before `start()`)."""
    RUNNING = "running"
    """Started: workers take items, feeding is open."""
    CLOSING = "closing"
    """`join()` is finishing: what was fed runs to the end, nothing more may be fed."""
    FINISHED = "finished"
    """`join()` returned: every item ended; `start()` runs it again."""
    STOPPING = "stopping"
    """`shutdown()` is under way: running items finish (graceful) or are cancelled."""
    ENDING = "ending"
    """The shutdown's workers are gone; monitors are told and the tracker drained."""
    STOPPED = "stopped"
    """Shut down: what had not finished is unfinished; `start()` runs it again."""


IDLE: Final = PipelineState.IDLE
RUNNING: Final = PipelineState.RUNNING
CLOSING: Final = PipelineState.CLOSING
FINISHED: Final = PipelineState.FINISHED
STOPPING: Final = PipelineState.STOPPING
ENDING: Final = PipelineState.ENDING
STOPPED: Final = PipelineState.STOPPED

ACTIVE: Final = frozenset({RUNNING, CLOSING, STOPPING, ENDING})
"""A run is under way: `start()` is refused."""
WORKING: Final = frozenset({RUNNING, CLOSING, STOPPING})
"""Workers exist (`Pipeline.is_running`)."""
SHUTTING_DOWN: Final = frozenset({STOPPING, ENDING})
"""A shutdown is under way (workers held, feeders told to give up)."""
OVER: Final = frozenset({FINISHED, STOPPED})
"""The last run ended (by `join()` or a shutdown)."""

_MOVES: Final[dict[PipelineState, frozenset[PipelineState]]] = {
    IDLE: frozenset({RUNNING, STOPPED}),
    RUNNING: frozenset({CLOSING, STOPPING}),
    CLOSING: frozenset({FINISHED, STOPPING}),
    FINISHED: frozenset({RUNNING}),
    # A stop that fails before its workers are gone still ends stopped.
    STOPPING: frozenset({ENDING, STOPPED}),
    ENDING: frozenset({STOPPED}),
    STOPPED: frozenset({RUNNING}),
}


class IllegalMove(RuntimeError):
    """A lifecycle move the table does not allow: a bug in the engine."""


def move(current: PipelineState, to: PipelineState) -> PipelineState:
    """`to`, if a pipeline in `current` may move there.

    Raises:
        IllegalMove: it may not.
    """
    if to not in _MOVES[current]:
        raise IllegalMove(f"a pipeline cannot go from {current.value} to {to.value}")
    return to
