"""on_dask against a real Dask cluster: in-process (threads on this loop), shared by the module.

The cluster starts in ~0.05 s; the module's tests share it and its event loop. Gates are
`offload_remote` objects registered by name: the worker threads run in this process.
"""

from __future__ import annotations

import asyncio
import functools
import time
from typing import TYPE_CHECKING, Any

import pytest
import pytest_asyncio

from antflow import Pipeline, Stage, StatusTracker
from antflow.offload import RemoteError, on_dask
from tests.engine import offload_remote as remote

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Callable, Mapping
    from pathlib import Path

distributed = pytest.importorskip(
    "distributed", reason="on_dask needs the dask extra: pip install -e '.[dask]'"
)

pytestmark = pytest.mark.asyncio(loop_scope="module")

THREADS = 3
"""Threads of the cluster's one worker: more than any stage here has workers, except
where a test wants a call left waiting for a thread."""


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def dask() -> AsyncIterator[tuple[Any, Any]]:
    """An in-process cluster (scheduler and one worker) and an asynchronous client."""
    async with (
        distributed.LocalCluster(
            processes=False,
            n_workers=1,
            threads_per_worker=THREADS,
            asynchronous=True,
            dashboard_address=":0",
        ) as cluster,
        distributed.Client(cluster, asynchronous=True) as client,
    ):
        yield cluster, client


PATIENCE = 60.0
"""Seconds `eventually` waits before failing (a broken test fails instead of hanging)."""


async def eventually(condition: Callable[[], bool]) -> None:
    """Wait until `condition()` holds, failing after `PATIENCE` seconds.

    For state that Dask's worker threads and batched messages bring about: there is no
    event to await for "the worker's start message has reached the client".
    """
    deadline = time.monotonic() + PATIENCE
    while not condition():
        assert time.monotonic() < deadline, "condition not reached"
        await asyncio.sleep(0.001)


def busy_statuses(pipeline: Pipeline) -> list[str]:
    states = pipeline.get_worker_states().values()
    return sorted(s.current_task or "" for s in states if s.status == "busy")


async def test_result_comes_back_and_the_status_names_key_and_worker(
    dask: tuple[Any, Any],
) -> None:
    cluster, client = dask
    gate = remote.SHARED["dask-status"] = remote.Gate()
    pipeline = Pipeline(
        [
            Stage("Held", 1, [on_dask(client, functools.partial(remote.gate, "dask-status"))]),
            Stage("Double", 2, [on_dask(client, remote.double)]),
        ]
    )
    await pipeline.start()
    await pipeline.feed([21])
    (address,) = cluster.scheduler.workers

    await eventually(lambda: [s[:9] for s in busy_statuses(pipeline)] == ["dask: on "])
    (status,) = busy_statuses(pipeline)
    assert status.startswith(f"dask: on {address} · gate-")

    gate.release.set()
    await pipeline.join()
    assert [r.value for r in pipeline.results] == [42]


async def test_error_keeps_its_type_and_the_remote_frames(dask: tuple[Any, Any]) -> None:
    cluster, client = dask
    tracker = StatusTracker()
    stage = Stage("S", 1, [on_dask(client, remote.refuse)], task_attempts=1)
    await Pipeline([stage], status_tracker=tracker).run(["x"])

    (failed,) = tracker.get_failed_items()
    (address,) = cluster.scheduler.workers
    assert failed.error_type == "Refused"
    assert isinstance(failed.exception, remote.Refused)
    assert 'offload_remote.py", line' in failed.traceback
    assert "in refuse" in failed.traceback
    assert "Refused: cannot take 'x'" in failed.traceback
    assert "(raised on Dask as key refuse-" in failed.traceback
    assert f"by worker {address})" in failed.traceback
    # Only the function's frames: not the runner on the worker, not the client's re-raise.
    assert "antflow_remote_call" not in failed.traceback
    assert "distributed" not in failed.traceback.replace("raised on Dask", "")
    # The error keeps no reference to its Dask future: the erred task is released.
    await eventually(lambda: not any(k.startswith("refuse-") for k in cluster.scheduler.tasks))


# Issue 18.17: an error Dask cannot send back came as a bare `Exception: HoldsLock(...)`;
# one that cannot be unpickled likewise.
@pytest.mark.parametrize(
    ("fn", "name", "message"),
    [
        (remote.holds_lock, "HoldsLock", "locked on 'x'"),
        (functools.partial(remote.http_error_on, "x"), "HttpError", "HTTP 503: busy on 'x'"),
    ],
)
async def test_an_error_that_cannot_come_back_keeps_its_type_name_and_message(
    dask: tuple[Any, Any], fn: Callable[..., Any], name: str, message: str
) -> None:
    _, client = dask
    tracker = StatusTracker()
    stage = Stage("S", 1, [on_dask(client, fn)], task_attempts=1)
    await Pipeline([stage], status_tracker=tracker).run(["x"])

    (failed,) = tracker.get_failed_items()
    # Dask's tblib may teach HttpError to unpickle (once one has been sent): then it comes
    # back as itself, else as a RemoteError named like it; HoldsLock never pickles.
    assert isinstance(failed.exception, RemoteError) or name == "HttpError"
    assert (type(failed.exception).__qualname__, failed.error_type) == (name, name)
    assert type(failed.exception).__module__ == "tests.engine.offload_remote"
    assert failed.error == message
    assert 'offload_remote.py", line' in failed.traceback
    assert f"{name}: {message}" in failed.traceback
    assert "(raised on Dask as key " in failed.traceback


async def test_retry_runs_the_function_again(dask: tuple[Any, Any], tmp_path: Path) -> None:
    _, client = dask
    stage = Stage(
        "S", 1, [on_dask(client, remote.fail_first_time)], task_attempts=2, task_wait_seconds=0
    )
    results = await Pipeline([stage]).run([str(tmp_path / "calls")])

    assert [r.value for r in results] == [2]


async def test_forced_shutdown_cancels_the_dask_tasks(dask: tuple[Any, Any]) -> None:
    cluster, client = dask
    gate = remote.SHARED["dask-cancel"] = remote.Gate()
    task = on_dask(client, functools.partial(remote.gate, "dask-cancel"))
    pipeline = Pipeline([Stage("S", THREADS + 1, [task])])
    (worker,) = cluster.workers.values()

    def ours(tasks: Mapping[str, Any]) -> list[str]:
        return [key for key in tasks if key.startswith("gate-")]

    try:
        await pipeline.start()
        await pipeline.feed(range(THREADS + 1))
        await eventually(
            lambda: sum(s.startswith("dask: on ") for s in busy_statuses(pipeline)) == THREADS
        )
        waiting = [s for s in busy_statuses(pipeline) if not s.startswith("dask: on ")]
        assert [s.split(" · ")[0] for s in waiting] == ["dask: waiting for a worker"]
        assert len(ours(cluster.scheduler.tasks)) == THREADS + 1

        await pipeline.shutdown(graceful=False)

        # The scheduler drops every task, the running ones too, while they still run; the
        # worker, told in turn, drops the queued one and marks the running ones cancelled.
        await eventually(lambda: ours(cluster.scheduler.tasks) == [])
        await eventually(
            lambda: (
                [worker.state.tasks[key].state for key in ours(worker.state.tasks)]
                == ["cancelled"] * THREADS
            )
        )
        assert sorted(pipeline.get_unfinished_items()) == list(range(THREADS + 1))
    finally:
        gate.release.set()
    # Threads cannot be interrupted: the running calls end once released, and the queued
    # one never starts, though a thread is free for it now.
    await eventually(lambda: ours(worker.state.tasks) == [])
    assert len(gate.ran) == THREADS


async def test_calls_in_flight_never_exceed_the_stage_workers(dask: tuple[Any, Any]) -> None:
    _, client = dask
    counter = remote.SHARED["dask-overlap"] = remote.Overlap(target=2)
    task = on_dask(client, functools.partial(remote.overlap, "dask-overlap"))
    results = await Pipeline([Stage("S", 2, [task])]).run(range(8))

    assert [r.value for r in results] == list(range(8))
    assert counter.peak == 2


async def test_a_synchronous_client_works_from_its_own_thread() -> None:
    client = await asyncio.to_thread(
        distributed.Client,
        processes=False,
        n_workers=1,
        threads_per_worker=1,
        dashboard_address=":0",
    )
    try:
        assert not client.asynchronous
        tracker = StatusTracker()
        tasks = [on_dask(client, remote.double), on_dask(client, remote.refuse)]
        stage = Stage("S", 1, tasks, task_attempts=1)
        await Pipeline([stage], status_tracker=tracker).run([1])

        (failed,) = tracker.get_failed_items()
        assert failed.error_type == "Refused"
        assert "Refused: cannot take 2" in failed.traceback
    finally:
        await asyncio.to_thread(client.close)
        await asyncio.to_thread(client.cluster.close)


# Issue 18.18: a call that never returns survived a forced stop, and its worker kept
# taking new calls that queued behind it: the next run on the same cluster hung.
async def test_a_forced_stop_retires_the_worker_of_a_call_that_never_returns() -> None:
    async with (
        distributed.LocalCluster(
            processes=False,
            n_workers=2,
            threads_per_worker=1,
            asynchronous=True,
            dashboard_address=":0",
        ) as cluster,
        distributed.Client(cluster, asynchronous=True) as client,
    ):
        gate = remote.SHARED["dask-hung"] = remote.Gate()
        hung = on_dask(client, functools.partial(remote.gate, "dask-hung"))
        pipeline = Pipeline([Stage("Hang", 1, [hung])], cancel_grace=30.0)
        try:
            await pipeline.start()
            await pipeline.feed(["stuck"])
            await eventually(
                lambda: (
                    busy_statuses(pipeline)[:1] != []
                    and busy_statuses(pipeline)[0].startswith("dask: on ")
                )
            )
            (status,) = busy_statuses(pipeline)
            address = status.removeprefix("dask: on ").split(" · ")[0]

            await pipeline.shutdown(graceful=False)

            assert pipeline.get_unfinished_items() == [0]
            await eventually(lambda: address not in cluster.scheduler.workers)
            # The next run on the same cluster goes to the worker that is left.
            results = await asyncio.wait_for(
                Pipeline([Stage("Next", 2, [on_dask(client, remote.double)])]).run(range(4)),
                PATIENCE,
            )
            assert [r.value for r in results] == [0, 2, 4, 6]
        finally:
            gate.release.set()
