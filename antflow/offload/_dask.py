"""`on_dask`: run a stage's function on a Dask cluster (``pip install 'antflow[dask]'``)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
import weakref
from typing import TYPE_CHECKING, Any, Final

from antflow.offload._core import RemoteTraceback, remote_task, require
from antflow.offload._remote import rebuild
from antflow.stage import task_name

if TYPE_CHECKING:
    from collections.abc import Callable, Coroutine
    from types import TracebackType

    from antflow.offload._core import Call, Report
    from antflow.stage import TaskFunc

logger = logging.getLogger(__name__)

TOPIC: Final = "antflow-offload"
"""The Dask event topic on which a worker says which call it started: ``[key, address]``."""

_RUNNER_NAME: Final = "antflow_remote_call"

_CARRIED: Final = "antflow: an error that cannot be unpickled"
"""First argument of the `RuntimeError` the runner raises in place of an error that would
not make the trip back: ``(_CARRIED, module, qualname, message, traceback text)``."""

_RESERVED: Final = ("key", "pure", "retries")
"""Submit options antflow sets itself: a fresh key per attempt and no Dask-side retries."""


def on_dask(client: Any, fn: Callable[..., Any], **submit_kwargs: Any) -> TaskFunc:
    """A task that runs ``fn(value)`` on the Dask cluster of `client`, one submission per attempt.

    The default: a `distributed.Client` created with ``asynchronous=True`` inside the
    coroutine that runs the pipeline, so both share one event loop::

        async with Client("tcp://scheduler:8786", asynchronous=True) as client:
            await Pipeline([Stage("Parse", 16, [on_dask(client, parse)])]).run(items)

    (``Client(LocalCluster(asynchronous=True), asynchronous=True)`` for a cluster on this
    machine; see examples/cluster.py.) A synchronous client, running its own loop in a
    background thread (``Client(address)`` made at import time), works too, one thread hop
    slower.

    Each attempt is a new task with a unique key (``pure=False``, ``retries=0``): antflow
    owns retries, and identical calls never share a cached result. An error comes back as
    the function's own exception type, with the remote frames in its traceback and a note
    saying which key and worker ran it. While the call is pending the worker's task status
    shows its key, then the address of the Dask worker running it.

    Cancellation (a forced shutdown): the Dask future is cancelled (awaiting
    ``client.cancel``) before the task re-raises, so the cluster drops the call. Dask cannot
    interrupt a function already running in a worker thread: it runs to its end and its
    result is released.

    Args:
        client: A connected `distributed.Client`.
        fn: A plain function of the stage's input (or of the unpacked input). Defined in a
            script run as ``__main__`` it is shipped by value; otherwise workers import it.
        **submit_kwargs: Passed to `Client.submit` (``resources=``, ``workers=``,
            ``priority=``, ...), except ``key``, ``pure`` and ``retries``.

    Returns:
        An ``async def`` task named after `fn`.

    Raises:
        ImportError: ``distributed`` is not installed.
        TypeError: `fn` is an ``async def`` function, not callable, or `submit_kwargs`
            names an option antflow sets.
    """
    require("distributed", "dask", "on_dask")
    reserved = sorted(set(submit_kwargs) & set(_RESERVED))
    if reserved:
        raise TypeError(
            f"on_dask() sets {', '.join(reserved)} itself: one fresh Dask task per attempt, "
            f"retried by antflow (use the stage's task_attempts)"
        )
    name = task_name(fn)
    runner = _remote_runner()

    def submit(args: tuple[Any, ...], kwargs: dict[str, Any], report: Report) -> Call:
        local = client.asynchronous
        watch = _watch(client)
        key = f"{name}-{uuid.uuid4().hex}"
        watch.expect(key, report, None if local else asyncio.get_running_loop())
        try:
            future = client.submit(
                runner, fn, args, kwargs, key=key, pure=False, retries=0, **submit_kwargs
            )
        except BaseException:
            watch.forget(key)
            raise
        report(f"dask: waiting for a worker · {key}")
        return _DaskCall(client, future, key, watch, local)

    return remote_task(fn, submit, "on_dask")


def _remote_runner() -> Callable[..., Any]:
    # Built in a function so that it pickles by value: Dask workers need `distributed`
    # (they have it) but not antflow.
    carried = _CARRIED

    def antflow_remote_call(
        fn: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> Any:
        import traceback

        from distributed import get_worker
        from distributed.protocol import pickle

        try:
            worker = get_worker()
            worker.log_event(TOPIC, [str(worker.get_current_task()), worker.address])
        except Exception:  # a status line must never cost the call itself
            pass
        try:
            return fn(*args, **kwargs)
        except Exception as error:
            # Dask's own check: what fails it comes back as a bare Exception(repr(error)).
            try:
                pickle.loads(pickle.dumps(error))  # type: ignore[no-untyped-call]
            except Exception:
                kind = type(error)
                try:
                    message = str(error)
                except Exception:
                    message = "<the error's str() raised>"
                info = (kind.__module__, kind.__qualname__, message, traceback.format_exc())
            else:
                raise
        # Raised out here, with no __context__: Dask pickles an error's whole chain.
        raise RuntimeError(carried, *info)

    return antflow_remote_call


RELEASE_TIMEOUT: Final = 30.0
"""Seconds `release_worker` waits for the scheduler to restart or retire a worker."""
_KEY_POLL: Final = 0.02


async def release_worker(client: Any, address: str, *, key: str | None = None) -> str:
    """Free the Dask worker at `address` from a call that may never return.

    A Dask worker runs calls in threads, which cannot be interrupted: a call that never
    returns holds its thread for good, and the scheduler keeps sending the worker new
    calls that queue behind it. A worker with a nanny is restarted (a new process); one
    without (``processes=False``) is retired from the cluster, unless it is the cluster's
    last worker, which is kept (retiring it would leave nothing to run later calls).
    A forced stop calls this for every call still running; a per-attempt timeout may too.

    Args:
        client: The `distributed.Client` the call went through.
        address: The worker's address (``tcp://10.0.0.5:40123``).
        key: The call's Dask key, already cancelled: the worker is released once the
            scheduler has dropped it, so that it is not run again elsewhere.

    Returns:
        ``"restarted"``, ``"retired"`` or ``"kept"``.

    Raises:
        TimeoutError: the scheduler did not do it within `RELEASE_TIMEOUT` seconds.
    """

    async def on_scheduler(name: str, **kwargs: Any) -> Any:
        work = getattr(client.scheduler, name)(**kwargs)
        if client.asynchronous:
            return await work
        loop = client.loop.asyncio_loop
        return await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(work, loop))

    async def call(method: Callable[..., Any], **kwargs: Any) -> Any:
        if client.asynchronous:
            return await method(**kwargs)
        # A synchronous client's methods block until done: not on the pipeline's loop.
        return await asyncio.to_thread(method, **kwargs)

    async def release() -> str:
        if key is not None:
            # client.cancel goes out on the client's message stream, which an RPC can
            # overtake: a worker restarted or retired while the scheduler still runs the
            # call there has the call run again on another worker. Dask sends no answer
            # to a cancel, so ask until the key is gone.
            while (  # noqa: ASYNC110 (no event to wait on)
                await on_scheduler("get_task_status", keys=[key])
            ).get(key) is not None:
                await asyncio.sleep(_KEY_POLL)
        try:
            await call(client.restart_workers, workers=[address], raise_for_error=False)
        except ValueError:  # "Restarting workers requires a nanny"
            pass
        else:
            return "restarted"
        info = await on_scheduler("identity", n_workers=-1)
        if len(info.get("workers", {})) <= 1:
            return "kept"
        await call(client.retire_workers, workers=[address], close_workers=True)
        return "retired"

    return await asyncio.wait_for(release(), RELEASE_TIMEOUT)


class _DaskCall:
    __slots__ = ("_client", "_future", "_key", "_local", "_ran_on", "_watch")

    def __init__(self, client: Any, future: Any, key: str, watch: _Watch, local: bool) -> None:
        self._client = client
        self._future = future
        self._key = key
        self._watch = watch
        self._local = local
        self._ran_on: str | None = None
        """The worker that started the call, once the attempt has ended."""

    async def result(self) -> Any:
        try:
            if self._local:
                return await self._future
            return await self._on_client_loop(_awaited(self._future))
        except Exception as error:
            # The error's traceback holds this frame and the task's, and the client holds
            # the error: if they held the future too, it would never be released, and
            # the erred task would stay on the scheduler.
            future, self._future = self._future, None
            erred = future.status == "error"
            del future
            if not erred:
                raise
            where = self._watch.address(self._key)
            note = f"(raised on Dask as key {self._key}" + (
                f" by worker {where})" if where else ")"
            )
            args = error.args
            if type(error) is RuntimeError and len(args) == 5 and args[0] == _CARRIED:
                remote = rebuild(*(str(part) for part in args[1:]))
                remote.add_note(note)
                raise remote from RemoteTraceback(remote.traceback_text)
            error.add_note(note)
            error.__traceback__ = _remote_frames(error.__traceback__)
            raise
        finally:
            self._ran_on = self._watch.address(self._key)
            self._watch.forget(self._key)

    async def cancel(self) -> None:
        if self._local:
            await self._client.cancel([self._future])
        else:
            await self._on_client_loop(self._client.cancel([self._future], asynchronous=True))
        address = self._ran_on
        if address is None:
            return  # still queued: the scheduler has dropped it
        # Started, so running in a thread Dask cannot stop: free the worker from it.
        done = await release_worker(self._client, address, key=self._key)
        if done == "kept":
            logger.warning(
                "the Dask call %s may still be running on %s, the cluster's last worker, "
                "which has no nanny to restart it: later calls queue behind it until it ends",
                self._key,
                address,
            )

    async def _on_client_loop(self, work: Coroutine[Any, Any, Any]) -> Any:
        """Run `work` on the loop of a synchronous client (a thread of its own)."""
        loop = self._client.loop.asyncio_loop
        return await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(work, loop))


def _remote_frames(tb: TracebackType | None) -> TracebackType | None:
    """The frames below the runner: the function's own, without Dask's re-raise and ours."""
    frame = tb
    while frame is not None:
        if frame.tb_frame.f_code.co_name == _RUNNER_NAME:
            return frame.tb_next
        frame = frame.tb_next
    return tb


async def _awaited(future: Any) -> Any:
    return await future


class _Watch:
    """One client's record of which worker started each pending call, from worker events."""

    __slots__ = ("__weakref__", "_pending")

    def __init__(self) -> None:
        self._pending: dict[str, tuple[Report, asyncio.AbstractEventLoop | None, list[str]]] = {}

    def expect(self, key: str, report: Report, loop: asyncio.AbstractEventLoop | None) -> None:
        """Report the worker's address for `key` when it starts (through `loop` if given)."""
        self._pending[key] = (report, loop, [])

    def forget(self, key: str) -> None:
        self._pending.pop(key, None)

    def address(self, key: str) -> str | None:
        entry = self._pending.get(key)
        return entry[2][0] if entry is not None and entry[2] else None

    def on_event(self, event: tuple[float, Any]) -> None:
        """A worker started a call: `event` is Dask's ``(timestamp, [key, address])``."""
        _, message = event
        try:
            key, address = message
        except (TypeError, ValueError):
            return
        entry = self._pending.get(key)
        if entry is None:
            # Another process's call on a shared cluster, or one already settled.
            return
        report, loop, seen = entry
        seen[:] = [address]
        text = f"dask: on {address} · {key}"
        if loop is None:
            report(text)
        else:
            # A synchronous client calls this from its own thread; the pipeline's loop may
            # be gone by now.
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(report, text)


_watches: weakref.WeakKeyDictionary[Any, _Watch] = weakref.WeakKeyDictionary()


def _watch(client: Any) -> _Watch:
    watch = _watches.get(client)
    if watch is None:
        watch = _watches[client] = _Watch()
        client.subscribe_topic(TOPIC, watch.on_event)
    return watch
