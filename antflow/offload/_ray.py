"""`on_ray`: run a stage's function as Ray tasks (``pip install 'antflow[ray]'``)."""

from __future__ import annotations

import inspect
import re
from typing import TYPE_CHECKING, Any, Final

from antflow._safe import safe_str
from antflow.offload._core import RemoteTraceback, remote_task, require
from antflow.stage import task_name

if TYPE_CHECKING:
    from collections.abc import Callable

    from antflow.offload._core import Call, Report
    from antflow.stage import TaskFunc

_COLOURS: Final = re.compile(r"\x1b\[[0-9;]*m")
"""Terminal colour codes, which Ray puts around the task name heading its traceback."""


def on_ray(fn: Callable[..., Any], **ray_options: Any) -> TaskFunc:
    """A task that runs ``fn(value)`` as a Ray task, one submission per attempt.

    Connect first with ``ray.init()`` (a local Ray) or ``ray.init(address="ray://head:10001")``;
    without it, the first call starts a local Ray itself.

    Retries: ``retry_exceptions=False``, so an application error comes straight back and
    antflow retries it (the stage's ``task_attempts``). Ray's own ``max_retries`` (3 by
    default) still re-runs a call whose worker process died; pass ``max_retries=0`` to
    make a lost worker fail the attempt at once instead.

    Errors: Ray's ``RayTaskError(ValueError)`` is unwrapped into the function's own
    `ValueError`, with the remote traceback as its ``__cause__`` (a `RemoteTraceback`), so
    errors group by their real type. While the call runs the worker's task status shows
    its Ray task id.

    Cancellation (a forced shutdown): ``ray.cancel`` drops a queued call and interrupts a
    running one (with a `KeyboardInterrupt` in the Ray worker).

    Args:
        fn: A plain function of the stage's input (or of the unpacked input).
        **ray_options: Passed to ``.options()`` of the remote function (``num_cpus=``,
            ``num_gpus=``, ``resources=``, ``max_retries=``, ...).

    Returns:
        An ``async def`` task named after `fn`.

    Raises:
        ImportError: Ray is not installed.
        TypeError: `fn` is an ``async def`` function, or not callable.
        ValueError: ``retry_exceptions`` is set: antflow retries application errors.
    """
    if ray_options.get("retry_exceptions"):
        raise ValueError(
            "on_ray() leaves application retries to antflow (the stage's task_attempts); "
            "drop retry_exceptions"
        )
    ray = require("ray", "ray", "on_ray")
    return remote_task(fn, _submitter(ray, fn, ray_options), "on_ray")


def _submitter(ray: Any, fn: Callable[..., Any], ray_options: dict[str, Any]) -> Any:
    options = {**ray_options, "retry_exceptions": False}
    remote: Any = None

    def submit(args: tuple[Any, ...], kwargs: dict[str, Any], report: Report) -> Call:
        nonlocal remote
        if remote is None:
            # On first use: ray.remote exports the function to the cluster it is connected to.
            remote = ray.remote(_as_function(fn)).options(**options)
        ref = remote.remote(*args, **kwargs)
        report(f"ray task {ref.task_id().hex()}")
        return _RayCall(ray, ref)

    return submit


def _as_function(fn: Callable[..., Any]) -> Callable[..., Any]:
    """`fn` as a plain function, as ``ray.remote`` wants (not a partial or callable object)."""
    if inspect.isfunction(fn):
        return fn

    # Local, so that it pickles by value with `fn` inside; named so Ray shows fn's name.
    def call(*args: Any, **kwargs: Any) -> Any:
        return fn(*args, **kwargs)

    call.__name__ = call.__qualname__ = task_name(fn)
    return call


class _RayCall:
    __slots__ = ("_ray", "_ref")

    def __init__(self, ray: Any, ref: Any) -> None:
        self._ray = ray
        self._ref = ref

    async def result(self) -> Any:
        try:
            return await self._ref
        except Exception as error:
            # The error's traceback holds this frame: drop the reference so that Ray can
            # free the object as soon as the error is handled.
            self._ref = None
            cause = getattr(error, "cause", None)
            if not isinstance(error, self._ray.exceptions.RayTaskError) or not isinstance(
                cause, BaseException
            ):
                raise
            # The dual class RayTaskError(ValueError) would group apart from ValueError.
            text = _COLOURS.sub("", safe_str(getattr(error, "traceback_str", error)))
            raise cause from RemoteTraceback(text)

    async def cancel(self) -> None:
        self._ray.cancel(self._ref)
