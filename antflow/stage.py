"""Stage: one step of a pipeline, its workers, tasks and retry policy, and its validation."""

from __future__ import annotations

import functools
import inspect
import math
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from antflow.exceptions import StageValidationError
from antflow.ratelimit import RateLimit
from antflow.retrying import Backoff

TaskFunc = Callable[..., Awaitable[Any]]

_RETRY_POLICIES = ("per_task", "per_stage")


@dataclass(frozen=True)
class Stage:
    """A step of the pipeline: a pool of `workers` running `tasks` on every item, in order.

    Each task receives the previous task's return value (the first receives the stage's
    input); the last task's return value goes to the next stage.
    """

    name: str
    """Unique name; workers are called ``{name}-W0``, ``{name}-W1``, ..."""
    workers: int
    """How many items the stage runs at once."""
    tasks: Sequence[TaskFunc]
    """Async functions run on each item, in order."""
    retry: str = "per_task"
    """``per_task``: retry the failing task alone; ``per_stage``: re-queue the item and run
    every task of the stage again."""
    task_attempts: int = 3
    """Attempts per task under ``per_task``."""
    task_wait_seconds: float = 1.0
    """Seconds between attempts of a task under ``per_task``."""
    stage_attempts: int = 3
    """Attempts of the whole stage under ``per_stage``."""
    unpack_args: bool = False
    """Call tasks as ``task(*value)`` for a tuple or list, ``task(**value)`` for a dict."""
    task_concurrency_limits: Mapping[str, int] = field(default_factory=dict)
    """At most this many concurrent runs of a task (by name) across the stage's workers."""
    on_success: Callable[[Any, Any, dict[str, Any]], Any] | None = None
    """Called as ``on_success(item_id, result, metadata)`` after the stage completes an item."""
    on_failure: Callable[[Any, BaseException, dict[str, Any]], Any] | None = None
    """Called as ``on_failure(item_id, error, metadata)`` when an item fails for good."""
    skip_if: Callable[[Any], bool] | None = None
    """When ``skip_if(value)`` is true the value passes to the next stage unchanged."""
    queue_capacity: int | None = None
    """Items the stage's queue holds before feeders wait; default 10 x workers."""
    no_retry_on: Sequence[type[BaseException]] = ()
    """Exception types that fail the item at once, without more attempts (errors that
    will not heal: a prompt over the model's context length, a 404)."""
    task_timeout: float | None = None
    """Seconds an attempt of a task may run: a longer one is cancelled and fails with
    `TaskTimeoutError`, retried like any failure. None: no limit."""
    backoff: Backoff | None = None
    """Exponential waits with jitter between attempts of a task (see `Backoff`); None:
    the fixed `task_wait_seconds`."""
    rate_limit: RateLimit | None = None
    """A budget of calls and tokens, shared with every stage given the same object."""
    rate_limit_on: Sequence[type[BaseException]] = ()
    """Exception types that mean "rate-limited", besides errors that carry HTTP 429
    (``exc.response.status_code`` or ``exc.status_code``), which are recognised anyway.
    A rate-limited attempt is no failure: it uses up none of `task_attempts`, and every
    worker sharing the limit waits what the server asked before its next call."""
    rate_limit_attempts: int = 50
    """Rate-limited attempts of one task on one item, at most: the last one fails the
    item with `RateLimitExceededError` (an API that never stops answering 429)."""
    adaptive: bool = False
    """Adapt how many calls the stage keeps in flight to the API's limits: halved on a
    rate-limit answer, one more after each clean round, between 1 and `workers`."""
    durable: bool = False
    """Keep each item's output of this stage in the run history (as JSON), so a resumed
    run feeds an item that passed it into the next stage with that output, without
    running this stage again: mark the expensive stage (an LLM call) durable. Only a run
    kept in the history stores outputs (see `antflow.keep_history`)."""
    max_tokens: int | None = None
    """Tokens a call of the stage may use at most (its prompt and the answer's
    ``max_tokens``): what a pipeline's `Budget` reserves before each call when the
    stage's `rate_limit` has no ``estimate``. None: that estimate, or nothing."""

    @property
    def capacity(self) -> int:
        """The effective queue capacity."""
        return self.queue_capacity if self.queue_capacity is not None else 10 * self.workers

    @property
    def task_names(self) -> tuple[str, ...]:
        """Each task's name, as task events and `task_concurrency_limits` use it."""
        return tuple(task_name(task) for task in self.tasks)

    def validate(self) -> None:
        """Check the configuration.

        Raises:
            StageValidationError: naming the stage and the bad value.
        """
        label = f"Stage {self.name!r}"
        if not isinstance(self.name, str) or not self.name:
            raise StageValidationError(f"Stage name must be a non-empty string, got {self.name!r}")
        if self.retry not in _RETRY_POLICIES:
            raise StageValidationError(
                f"{label}: Invalid retry policy {self.retry!r}; use 'per_task' or 'per_stage'"
            )
        workers = self.workers
        if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
            raise StageValidationError(
                f"{label} must have at least 1 worker; workers must be an integer >= 1, "
                f"got {workers!r}"
            )
        _require_positive_int(label, "task_attempts", self.task_attempts)
        _require_positive_int(label, "stage_attempts", self.stage_attempts)
        if self.queue_capacity is not None:
            _require_positive_int(label, "queue_capacity", self.queue_capacity)
        wait = self.task_wait_seconds
        if isinstance(wait, bool) or not isinstance(wait, int | float) or not wait >= 0:
            raise StageValidationError(
                f"{label}: task_wait_seconds must be a number >= 0, got {wait!r}"
            )
        if isinstance(self.tasks, str | bytes) or not isinstance(self.tasks, Sequence):
            raise StageValidationError(
                f"{label}: tasks must be a list of async functions, got {self.tasks!r}"
            )
        if not self.tasks:
            raise StageValidationError(f"{label} must have at least one task; tasks is empty")
        for position, task in enumerate(self.tasks):
            _check_task(label, position, task)
        names = self.task_names
        for key, limit in dict(self.task_concurrency_limits).items():
            if key not in names:
                raise StageValidationError(
                    f"{label}: task_concurrency_limits names {key!r}, which is not one of "
                    f"its tasks ({', '.join(names)})"
                )
            _require_positive_int(label, f"task_concurrency_limits[{key!r}]", limit)
        _check_error_types(label, "no_retry_on", self.no_retry_on)
        _check_error_types(label, "rate_limit_on", self.rate_limit_on)
        _require_positive_int(label, "rate_limit_attempts", self.rate_limit_attempts)
        timeout = self.task_timeout
        if timeout is not None and (
            isinstance(timeout, bool)
            or not isinstance(timeout, int | float)
            or not math.isfinite(timeout)
            or timeout <= 0
        ):
            raise StageValidationError(
                f"{label}: task_timeout must be a number of seconds above 0 (or None), "
                f"got {timeout!r}"
            )
        if self.backoff is not None and not isinstance(self.backoff, Backoff):
            raise StageValidationError(
                f"{label}: backoff must be an antflow.Backoff (Backoff(initial=1.0, "
                f"multiplier=2.0, max_wait=60.0)), got {self.backoff!r}"
            )
        if self.rate_limit is not None and not isinstance(self.rate_limit, RateLimit):
            raise StageValidationError(
                f"{label}: rate_limit must be an antflow.RateLimit (RateLimit(per_second=10)), "
                f"got {self.rate_limit!r}"
            )
        for flag in ("adaptive", "durable"):
            if not isinstance(getattr(self, flag), bool):
                raise StageValidationError(
                    f"{label}: {flag} must be True or False, got {getattr(self, flag)!r}"
                )
        if self.max_tokens is not None:
            _require_positive_int(label, "max_tokens", self.max_tokens)
        for hook in ("on_success", "on_failure", "skip_if"):
            value = getattr(self, hook)
            if value is not None and not callable(value):
                raise StageValidationError(f"{label}: {hook} must be callable, got {value!r}")


def task_name(task: Any) -> str:
    """The name task events use for `task`: its ``__name__``, seen through partials."""
    while isinstance(task, functools.partial):
        task = task.func
    name = getattr(task, "__name__", None)
    return name if isinstance(name, str) else type(task).__name__


def _check_error_types(label: str, field_name: str, types: Any) -> None:
    if isinstance(types, str | bytes) or not isinstance(types, Sequence):
        hint = "a class, not its name" if isinstance(types, str | bytes) else "in a list"
        raise StageValidationError(
            f"{label}: {field_name} must be a list of exception classes ({hint}: "
            f"{field_name}=[ValueError]), got {types!r}"
        )
    for error_type in types:
        if not (isinstance(error_type, type) and issubclass(error_type, BaseException)):
            raise StageValidationError(
                f"{label}: {field_name} holds {error_type!r}, which is not an exception class"
            )


def _require_positive_int(label: str, field_name: str, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        shown = value if not isinstance(value, float) or math.isfinite(value) else str(value)
        raise StageValidationError(f"{label}: {field_name} must be an integer >= 1, got {shown!r}")


def _check_task(label: str, position: int, task: Any) -> None:
    if not callable(task):
        raise StageValidationError(
            f"{label}: task #{position + 1} is not callable ({task!r}); give an async function"
        )
    target = task
    while isinstance(target, functools.partial):
        target = target.func
    target = inspect.unwrap(target)
    if inspect.ismethod(target):
        target = target.__func__
    name = task_name(task)
    if inspect.isbuiltin(target) or inspect.ismethoddescriptor(target):
        raise StageValidationError(
            f"{label}: task {name!r} is a built-in function, which cannot be awaited; wrap "
            f"it: 'async def {name}_task(x): return {name}(x)'"
        )
    if not inspect.isroutine(target) and not isinstance(target, type):
        # A callable object: its __call__ decides.
        call = getattr(type(target), "__call__", None)  # noqa: B004 - the method itself
        if inspect.isfunction(call) and _plain_def(call):
            raise StageValidationError(
                f"{label}: task {name!r} is an object whose __call__ is a plain 'def'; "
                f"tasks must be awaitable: make it 'async def __call__(...)'"
            )
        return
    if inspect.isasyncgenfunction(target):
        raise StageValidationError(
            f"{label}: task {name!r} is an async generator, which cannot be awaited; "
            f"make it 'async def' and return its result"
        )
    if inspect.isfunction(target) and target.__name__ != "<lambda>" and _plain_def(target):
        raise StageValidationError(
            f"{label}: task {name!r} is a plain 'def' function; tasks must be "
            f"'async def' (or return an awaitable). Write 'async def {name}(...)'."
        )


def _plain_def(function: Any) -> bool:
    """A plain function that returns no awaitable (as far as can be known beforehand)."""
    return not (
        inspect.iscoroutinefunction(function)
        # functools.wraps-style wrappers around coroutine functions, and functions
        # flagged with inspect.markcoroutinefunction, return awaitables too.
        or getattr(function, "_is_coroutine_marker", None)
    )
