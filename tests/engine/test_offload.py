"""antflow.offload: the shared wrapper (on a fake backend) and on_executor (stdlib pools)."""

from __future__ import annotations

import asyncio
import functools
import inspect
import logging
import multiprocessing
import os
import sys
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import TYPE_CHECKING, Any

import pytest

from antflow import Pipeline, Stage, StatusTracker
from antflow.offload import RemoteError, RemoteTraceback, on_dask, on_executor, on_ray
from antflow.offload import _core as core
from tests.engine import offload_remote as remote
from tests.engine.helpers import settle, wait_until

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

    from antflow.offload._core import Report


class FakeCall:
    """A remote call the test settles by hand."""

    def __init__(self, value: Any) -> None:
        self.value = value
        self.settled = asyncio.Event()
        self.error: BaseException | None = None
        self.cancelled = False
        self.cancel_gate: asyncio.Event | None = None
        self.cancel_error: BaseException | None = None

    async def result(self) -> Any:
        await self.settled.wait()
        if self.error is not None:
            raise self.error
        return self.value * 2

    async def cancel(self) -> None:
        self.cancelled = True
        if self.cancel_gate is not None:
            await self.cancel_gate.wait()
        if self.cancel_error is not None:
            raise self.cancel_error


class FakeBackend:
    """A `Submit` that records each call, its arguments and its `report`."""

    def __init__(self) -> None:
        self.calls: list[FakeCall] = []
        self.reports: list[Report] = []
        self.submitted = asyncio.Event()

    def __call__(self, args: tuple[Any, ...], kwargs: dict[str, Any], report: Report) -> FakeCall:
        call = FakeCall(*args, **kwargs)
        self.calls.append(call)
        self.reports.append(report)
        report(f"fake call #{len(self.calls)}")
        self.submitted.set()
        return call


def busy_statuses(pipeline: Pipeline) -> list[str | None]:
    return [s.current_task for s in pipeline.get_worker_states().values() if s.status == "busy"]


# ---------------------------------------------------------------- the shared wrapper


def test_the_task_is_async_and_carries_the_function_name() -> None:
    task = core.remote_task(remote.double, FakeBackend(), "on_fake")

    assert inspect.iscoroutinefunction(task)
    assert (task.__name__, task.__qualname__, task.__module__) == (
        "double",
        "double",
        remote.__name__,
    )
    stage = Stage("S", 2, [task], task_concurrency_limits={"double": 1})
    stage.validate()
    assert stage.task_names == ("double",)


def test_a_partial_is_named_after_its_function() -> None:
    task = on_executor(ThreadPoolExecutor(1), functools.partial(remote.gate, "unused"))
    assert task.__name__ == "gate"


@pytest.mark.parametrize("wrap", [on_executor, on_dask], ids=["on_executor", "on_dask"])
def test_async_functions_and_non_callables_are_refused(wrap: Any) -> None:
    pytest.importorskip("distributed", reason="on_dask needs the dask extra")

    async def fetch(value: int) -> int:
        return value

    first = ThreadPoolExecutor(1) if wrap is on_executor else object()
    with pytest.raises(TypeError, match=r"'fetch' is 'async def'"):
        wrap(first, fetch)
    with pytest.raises(TypeError, match="needs a function"):
        wrap(first, 42)


async def test_result_comes_back_and_the_status_says_where_it_runs() -> None:
    backend = FakeBackend()
    pipeline = Pipeline([Stage("S", 1, [core.remote_task(remote.double, backend, "on_fake")])])
    await pipeline.start()
    await pipeline.feed([21])
    await backend.submitted.wait()

    assert busy_statuses(pipeline) == ["fake call #1"]
    backend.calls[0].settled.set()
    await pipeline.join()

    assert [r.value for r in pipeline.results] == [42]
    assert [s.current_task for s in pipeline.get_worker_states().values()] == [None]


async def test_a_task_concurrency_limit_caps_the_calls_in_flight() -> None:
    backend = FakeBackend()
    task = core.remote_task(remote.double, backend, "on_fake")
    pipeline = Pipeline([Stage("S", 3, [task], task_concurrency_limits={"double": 1})])
    await pipeline.start()
    await pipeline.feed([1, 2, 3])
    await wait_until(
        lambda: sum(s.waiting_for == "double" for s in pipeline.get_worker_states().values()) == 2
    )

    assert len(backend.calls) == 1
    backend.calls[0].settled.set()
    await wait_until(lambda: len(backend.calls) == 2)
    await settle()
    assert len(backend.calls) == 2
    backend.calls[1].settled.set()
    await wait_until(lambda: len(backend.calls) == 3)
    backend.calls[2].settled.set()
    await pipeline.join()
    assert sorted(r.value for r in pipeline.results) == [2, 4, 6]


async def test_a_report_after_the_attempt_ended_is_dropped() -> None:
    backend = FakeBackend()
    task = core.remote_task(remote.double, backend, "on_fake")
    pipeline = Pipeline([Stage("S", 1, [task, core.remote_task(remote.double, backend, "x")])])
    await pipeline.start()
    await pipeline.feed([1])
    await backend.submitted.wait()
    backend.submitted.clear()
    backend.calls[0].settled.set()
    await backend.submitted.wait()

    backend.reports[0]("late news from the first call")

    assert busy_statuses(pipeline) == ["fake call #2"]
    backend.calls[1].settled.set()
    await pipeline.join()
    assert [r.value for r in pipeline.results] == [4]


async def test_a_failed_call_is_a_failed_attempt_and_is_not_cancelled() -> None:
    backend = FakeBackend()
    task = core.remote_task(remote.double, backend, "on_fake")
    pipeline = Pipeline([Stage("S", 1, [task], task_attempts=1)])
    await pipeline.start()
    await pipeline.feed([1])
    await backend.submitted.wait()
    backend.calls[0].error = remote.Refused("no")
    backend.calls[0].settled.set()
    await pipeline.join()

    assert pipeline.get_error_summary().errors_by_type == {"Refused": 1}
    assert not backend.calls[0].cancelled


async def test_forced_shutdown_cancels_the_remote_call_before_returning() -> None:
    backend = FakeBackend()
    pipeline = Pipeline([Stage("S", 2, [core.remote_task(remote.double, backend, "on_fake")])])
    await pipeline.start()
    await pipeline.feed([1, 2, 3])
    await wait_until(lambda: len(backend.calls) == 2)

    await pipeline.shutdown(graceful=False)

    assert [call.cancelled for call in backend.calls] == [True, True]
    assert sorted(pipeline.get_unfinished_items()) == [0, 1, 2]


async def test_a_cancel_that_fails_is_logged_and_the_shutdown_completes(
    caplog: pytest.LogCaptureFixture,
) -> None:
    backend = FakeBackend()
    pipeline = Pipeline([Stage("S", 1, [core.remote_task(remote.double, backend, "on_fake")])])
    await pipeline.start()
    await pipeline.feed([1])
    await backend.submitted.wait()
    backend.calls[0].cancel_error = ConnectionError("scheduler gone")

    with caplog.at_level(logging.WARNING, logger=core.__name__):
        await pipeline.shutdown(graceful=False)

    assert "could not cancel the remote call of double" in caplog.text
    assert "scheduler gone" in caplog.text
    assert pipeline.get_unfinished_items() == [0]


async def test_a_cancel_that_hangs_is_left_behind_after_the_timeout(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(core, "CANCEL_TIMEOUT", 0)
    backend = FakeBackend()
    pipeline = Pipeline([Stage("S", 1, [core.remote_task(remote.double, backend, "on_fake")])])
    await pipeline.start()
    await pipeline.feed([1])
    await backend.submitted.wait()
    hanging = backend.calls[0].cancel_gate = asyncio.Event()

    with caplog.at_level(logging.WARNING, logger=core.__name__):
        await pipeline.shutdown(graceful=False)

    assert "took over 0 s; leaving it" in caplog.text
    assert pipeline.get_unfinished_items() == [0]
    hanging.set()
    await wait_until(lambda: not core._cancellers)


def test_a_missing_backend_names_the_extra_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "ray", None)
    monkeypatch.setitem(sys.modules, "distributed", None)

    with pytest.raises(ImportError, match=r"pip install 'antflow\[ray\]'"):
        on_ray(remote.double)
    with pytest.raises(ImportError, match=r"pip install 'antflow\[dask\]'"):
        on_dask(object(), remote.double)


def test_on_dask_sets_key_pure_and_retries_itself() -> None:
    pytest.importorskip("distributed", reason="on_dask needs the dask extra")
    with pytest.raises(TypeError, match=r"sets key, pure, retries itself"):
        on_dask(object(), remote.double, retries=2, pure=True, key="k", priority=1)


def test_on_ray_leaves_application_retries_to_antflow() -> None:
    with pytest.raises(ValueError, match="retry_exceptions"):
        on_ray(remote.double, retry_exceptions=True)


def test_remote_traceback_reads_like_the_process_pools() -> None:
    shown = str(RemoteTraceback('  File "x.py", line 1, in f\nValueError: no\n'))
    assert shown == '\n"""\n  File "x.py", line 1, in f\nValueError: no\n"""'


# ---------------------------------------------------------------- on_executor


@pytest.fixture(scope="module")
def process_pool() -> Iterator[ProcessPoolExecutor]:
    """One worker process for the module: spawned, so no test's threads are forked."""
    with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
        yield pool


@pytest.fixture(scope="module")
def manager() -> Iterator[Any]:
    """Events a process-pool call can wait on."""
    with multiprocessing.get_context("spawn").Manager() as events:
        yield events


async def test_process_pool_returns_results_computed_in_another_process(
    process_pool: ProcessPoolExecutor,
) -> None:
    pipeline = Pipeline(
        [
            Stage("Double", 2, [on_executor(process_pool, remote.double)]),
            Stage("Where", 1, [on_executor(process_pool, remote.with_process_id)]),
        ]
    )
    results = await pipeline.run([1, 2, 3])

    assert [r.value[0] for r in results] == [2, 4, 6]
    assert os.getpid() not in {r.value[1] for r in results}


async def test_process_pool_error_keeps_its_type_and_the_remote_traceback(
    process_pool: ProcessPoolExecutor,
) -> None:
    tracker = StatusTracker()
    stage = Stage("S", 1, [on_executor(process_pool, remote.refuse)], task_attempts=1)
    pipeline = Pipeline([stage], status_tracker=tracker)
    await pipeline.run(["x"])

    (failed,) = tracker.get_failed_items()
    assert failed.error_type == "Refused"
    assert isinstance(failed.exception, remote.Refused)
    assert 'offload_remote.py", line' in failed.traceback
    assert "in refuse" in failed.traceback
    assert "Refused: cannot take 'x'" in failed.traceback


async def test_process_pool_retry_runs_the_function_again(
    process_pool: ProcessPoolExecutor, tmp_path: Path
) -> None:
    task = on_executor(process_pool, remote.fail_first_time)
    stage = Stage("S", 1, [task], task_attempts=2, task_wait_seconds=0)
    results = await Pipeline([stage]).run([str(tmp_path / "calls")])

    assert [r.value for r in results] == [2]


async def test_process_pool_forced_shutdown_does_not_wait_for_a_running_call(
    process_pool: ProcessPoolExecutor, manager: Any
) -> None:
    started, release = manager.Event(), manager.Event()
    task = on_executor(process_pool, functools.partial(remote.wait_for, started, release))
    pipeline = Pipeline([Stage("S", 1, [task])])
    await pipeline.start()
    await pipeline.feed(["held"])
    await asyncio.to_thread(started.wait, 60)
    assert busy_statuses(pipeline) == ["in a process pool"]

    await pipeline.shutdown(graceful=False)

    assert pipeline.get_unfinished_items() == [0]
    # A running process-pool call cannot be interrupted: it ends when released.
    release.set()
    assert await asyncio.wrap_future(process_pool.submit(remote.double, 1)) == 2


async def test_forced_shutdown_cancels_calls_still_queued_in_the_executor() -> None:
    gate = remote.SHARED["queued"] = remote.Gate()
    pool = ThreadPoolExecutor(1)
    task = on_executor(pool, functools.partial(remote.gate, "queued"))
    pipeline = Pipeline([Stage("S", 2, [task])])
    await pipeline.start()
    await pipeline.feed(["runs", "waits"])
    await asyncio.to_thread(gate.started.wait, 60)
    await wait_until(lambda: busy_statuses(pipeline) == ["in a thread pool"] * 2)

    await pipeline.shutdown(graceful=False)
    gate.release.set()
    await asyncio.to_thread(pool.shutdown, wait=True)

    assert gate.ran == ["runs"]
    assert sorted(pipeline.get_unfinished_items()) == [0, 1]


async def test_calls_in_flight_never_exceed_the_stage_workers() -> None:
    counter = remote.SHARED["executor-overlap"] = remote.Overlap(target=2)
    with ThreadPoolExecutor(4) as pool:
        task = on_executor(pool, functools.partial(remote.overlap, "executor-overlap"))
        results = await Pipeline([Stage("S", 2, [task])]).run(range(8))

    assert [r.value for r in results] == list(range(8))
    assert counter.peak == 2


# ---------------------------------------------------------------- poison items


def spawned_pool(workers: int) -> ProcessPoolExecutor:
    return ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"))


# Issue 18.17: an error that pickles but cannot be unpickled broke the pool: every other
# item failed with BrokenProcessPool and the item's own error was lost.
async def test_an_error_that_cannot_be_unpickled_comes_back_named_like_it() -> None:
    tracker = StatusTracker()
    with spawned_pool(2) as pool:
        task = on_executor(pool, functools.partial(remote.http_error_on, "bad"))
        stage = Stage("Fetch", 2, [task], task_attempts=1)
        pipeline = Pipeline([stage], status_tracker=tracker)
        results = await pipeline.run(["a", "b", "bad", "c", "d"])

    assert sorted(r.value for r in results) == ["a", "b", "c", "d"]
    (failed,) = tracker.get_failed_items()
    error = failed.exception
    assert isinstance(error, RemoteError)
    assert (type(error).__module__, type(error).__qualname__) == (
        "tests.engine.offload_remote",
        "HttpError",
    )
    assert failed.error_type == "HttpError"
    assert failed.error == "HTTP 503: busy on 'bad'"
    assert 'offload_remote.py", line' in failed.traceback
    assert "in http_error_on" in failed.traceback
    assert "HttpError: HTTP 503: busy on 'bad'" in failed.traceback
    assert tracker.get_error_summary().errors_by_type == {"HttpError": 1}


def test_a_remote_error_pickles_as_its_name_message_and_traceback() -> None:
    import pickle

    error = remote.HttpError(404, "gone")
    from antflow.offload._remote import carried

    back = pickle.loads(pickle.dumps(carried(error, "the traceback")))
    assert type(back).__qualname__ == "HttpError"
    assert (str(back), back.traceback_text) == ("HTTP 404: gone", "the traceback")
    assert type(back) is type(carried(error, "")), "one class per original type"


# Issue 18.17: a process that dies (os._exit) broke the pool for good; every other item
# failed after all its attempts.
async def test_a_process_that_dies_fails_only_its_own_item_and_the_pool_is_replaced() -> None:
    tracker = StatusTracker()
    with spawned_pool(2) as pool:
        task = on_executor(pool, functools.partial(remote.exit_on, 3))
        stage = Stage("Crunch", 2, [task], task_attempts=1)
        pipeline = Pipeline([stage], status_tracker=tracker)
        results = await pipeline.run(range(8))
        # The replacement serves the next run too.
        again = await Pipeline([Stage("Again", 2, [task])]).run([10, 11])

    assert sorted(r.value for r in results) == [0, 1, 2, 4, 5, 6, 7]
    (failed,) = tracker.get_failed_items()
    assert failed.item_id == 3
    assert isinstance(failed.exception, BrokenProcessPool)
    assert "the process running exit_on died" in failed.error
    assert [r.value for r in again] == [10, 11]
