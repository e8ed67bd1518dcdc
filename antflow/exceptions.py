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


class PipelineStopped(AntFlowError):
    """The run was stopped from outside the script before it finished: a viewer's Stop
    (``antflow-tui attach``, ``X``), or another monitor's stop. `Pipeline.run`,
    `Pipeline.join` and `Pipeline.stream` raise it once the stop is done, as ctrl+c
    would raise KeyboardInterrupt: a script that does not catch it exits non-zero, and
    its traceback's last line says who stopped it. `Pipeline.get_unfinished_items`
    lists what the stop left. A script's own `Pipeline.shutdown` raises nothing.

    Attributes:
        by: Who stopped the run, e.g. ``a viewer (antflow-tui attach, pid 4242)``.
        unfinished: Items the stop left unfinished.
    """

    def __init__(self, by: str, unfinished: int = 0) -> None:
        noun = "item" if unfinished == 1 else "items"
        super().__init__(
            f"stopped by {by} before the run finished: {unfinished:,} {noun} unfinished"
        )
        self.by = by
        self.unfinished = unfinished

    def __reduce__(self) -> tuple[type[PipelineStopped], tuple[str, int]]:
        return (type(self), (self.by, self.unfinished))


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


class TaskTimeoutError(AntFlowError, TimeoutError):
    """An attempt of a task ran longer than its stage's `task_timeout` and was cancelled.

    Retried like any failure. Its ``__cause__`` shows where the task was when it was cut.

    Attributes:
        task_name: The task's name.
        timeout: The stage's `task_timeout`, in seconds.
    """

    def __init__(self, task_name: str, timeout: float) -> None:
        super().__init__(
            f"task {task_name!r} ran longer than its task_timeout of {timeout:g} s and was "
            f"cancelled"
        )
        self.task_name = task_name
        self.timeout = timeout


class RateLimitExceededError(AntFlowError):
    """A task was rate-limited (HTTP 429, or a type in `rate_limit_on`) as many times as
    its stage's `rate_limit_attempts` allow: the item fails with this error.

    Attributes:
        task_name: The task's name.
        attempts: The rate-limited attempts made.
        last_error: The error the last of them raised (also the ``__cause__``).
    """

    def __init__(self, task_name: str, attempts: int, last_error: BaseException) -> None:
        super().__init__(
            f"task {task_name!r} was rate-limited {attempts} times (the stage's "
            f"rate_limit_attempts); the API kept refusing: {_describe(last_error)}"
        )
        self.task_name = task_name
        self.attempts = attempts
        self.last_error = last_error


class ResumeError(AntFlowError):
    """A run cannot resume the run it was asked to: none is kept under that name, its
    history cannot be read, or the pipeline changed since (`changes` says how). The
    message says what, and what to do.

    Raised by `antflow.keep_history` on entry, or by `Pipeline.start()` (so by `run()`
    and `stream()`) when the pipeline that starts differs from the one resumed: nothing
    has run then.
    """

    def __init__(self, message: str, changes: tuple[str, ...] = ()) -> None:
        super().__init__(message)
        self.changes = changes
        """What differs between the pipeline resumed and this one, one change each
        (``stage 'Parse' renamed 'Parse2'``); empty for other refusals."""


class PriceFileError(AntFlowError, ValueError):
    """A price file (``ANTFLOW_PRICES``, ``antflow-tui --prices``) cannot be used: the
    message names the file, the line or key, and what to write instead.

    Attributes:
        path: The file.
        problem: What is wrong, and what to write instead.
        line: The line the problem is on (from 1), when known.
    """

    def __init__(self, path: str, problem: str, line: int | None = None) -> None:
        where = path if line is None else f"{path}, line {line}"
        super().__init__(f"price file {where}: {problem}")
        self.path = path
        self.problem = problem
        self.line = line

    def __reduce__(self) -> tuple[type[PriceFileError], tuple[str, str, int | None]]:
        return (type(self), (self.path, self.problem, self.line))


def _describe(error: BaseException) -> str:
    """``Type: message``, even for an error whose ``__str__`` raises."""
    try:
        text = str(error)
    except Exception:
        text = "<the error's message could not be read>"
    name = type(error).__name__
    return f"{name}: {text}" if text else name
