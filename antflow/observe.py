"""Observe every Pipeline that starts in the current context.

A monitor (such as antflow-tui) wraps a user's ``main()`` in `observe(...)` and is told of
each pipeline the moment it starts, before any item moves, so it can attach a tracker
listener or a dashboard. Tasks created inside the block inherit the observer, as asyncio
copies the context into every new task.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import TYPE_CHECKING

from antflow._safe import safe_repr
from antflow.exceptions import ResumeError

if TYPE_CHECKING:
    from antflow.pipeline import Pipeline

logger = logging.getLogger(__name__)

PipelineStarted = Callable[["Pipeline"], object]
"""Told of each pipeline as it starts (what it returns is ignored)."""


@dataclass(frozen=True, slots=True)
class _Observer:
    on_start: PipelineStarted
    suppress_displays: bool


_observers: ContextVar[tuple[_Observer, ...]] = ContextVar("antflow_observers", default=())
_process_observers: list[_Observer] = []
"""Observers for the whole process (``ANTFLOW_RECORD``), whatever the context."""


@contextmanager
def observe(on_start: PipelineStarted, *, suppress_displays: bool = False) -> Iterator[None]:
    """Call ``on_start(pipeline)`` whenever a Pipeline starts inside this block.

    Args:
        on_start: Called synchronously from `Pipeline.start()`, before workers run. It may
            attach a monitor (`Pipeline.add_monitor`) or a tracker listener. If it raises,
            the error is logged and the pipeline starts anyway; a `ResumeError` (a resume
            refused: the pipeline changed) is raised by `start()` instead.
        suppress_displays: Do not draw the built-in dashboards (``progress=``,
            ``dashboard=``) of pipelines started inside: the observer owns the screen.
    """
    token = _observers.set((*_observers.get(), _Observer(on_start, suppress_displays)))
    try:
        yield
    finally:
        _observers.reset(token)


def observe_process(on_start: PipelineStarted) -> Callable[[], None]:
    """Call ``on_start(pipeline)`` for every Pipeline that starts in this process, from
    now on (for recording an unmodified script). Returns a function that stops it."""
    observer = _Observer(on_start, suppress_displays=False)
    _process_observers.append(observer)

    def remove() -> None:
        if observer in _process_observers:
            _process_observers.remove(observer)

    return remove


def notify_started(pipeline: Pipeline) -> None:
    """Tell every observer; one that refuses a resume (`ResumeError`) refuses the start."""
    for observer in (*_process_observers, *_observers.get()):
        try:
            observer.on_start(pipeline)
        except ResumeError:
            raise
        except Exception:
            logger.exception(
                "pipeline observer %s raised; the pipeline starts anyway",
                safe_repr(observer.on_start),
            )


def displays_suppressed() -> bool:
    """True when an observer owns the screen, so built-in dashboards must not draw."""
    return any(observer.suppress_displays for observer in _observers.get())
