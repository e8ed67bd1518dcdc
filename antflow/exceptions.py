"""Exceptions raised by antflow."""

from __future__ import annotations

from antflow._safe import safe_repr


class AntFlowError(Exception):
    """Base class of every error antflow raises itself."""


class PipelineError(AntFlowError):
    """A pipeline was built or driven wrongly (no stages, started twice, unknown stage...)."""


class FeedStoppedError(PipelineError):
    """feed() met a shutdown (a stop from outside, or from inside the pipeline): the item
    it was feeding and the rest were not fed. run() and stream() end their feeding on it;
    a script feeding by hand may catch it the same way."""


class StageValidationError(AntFlowError):
    """A Stage's configuration is invalid; the message names the stage and the bad value."""


class TaskFailedError(AntFlowError):
    """A task failed for good (all attempts used).

    Attributes:
        task_name: The failing task function's name.
        original_error: The exception the last attempt raised.
    """

    def __init__(self, task_name: str, original_error: BaseException) -> None:
        super().__init__(f"task {task_name!r} failed: {safe_repr(original_error)}")
        self.task_name = task_name
        self.original_error = original_error


class TaskNotAwaitableError(AntFlowError, TypeError):
    """A task returned something that cannot be awaited: it is not an ``async def``.

    Retrying cannot help, so the item fails at once, whatever the retry policy says.
    """
