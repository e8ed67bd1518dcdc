"""on_ray against a local Ray, started once for the session. Opt-in: ``pytest -m ray``.

Needs ``pip install -e '.[ray]'`` (a wheel of ~80 MB, so CI leaves it out); the local Ray
takes a few seconds to start. Without the marker these tests are deselected, and the module
imports no Ray, so a plain run reports nothing about them. Gates are Ray actors, since the
calls run in Ray's worker processes.
"""

from __future__ import annotations

import asyncio
import functools
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from antflow import Pipeline, Stage, StatusTracker
from antflow.offload import RemoteTraceback, on_ray
from tests.engine import offload_remote as remote

if TYPE_CHECKING:
    from collections.abc import Iterator
    from types import ModuleType

pytestmark = pytest.mark.ray

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def ray() -> Iterator[ModuleType]:
    """Ray, started locally for the session."""
    ray = pytest.importorskip("ray", reason="on_ray needs the ray extra: pip install -e '.[ray]'")
    # Ray's workers cannot import this module (pytest puts its folder on sys.path, not
    # theirs): ship its functions and actors by value. They import offload_remote.
    ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])
    ray.init(
        num_cpus=4,
        include_dashboard=False,
        log_to_driver=False,
        runtime_env={"env_vars": {"PYTHONPATH": str(ROOT)}},
    )
    yield ray
    ray.shutdown()


class Signal:
    """An event across processes (as a Ray actor): `send` once; `wait` returns from then on."""

    def __init__(self) -> None:
        self.event = asyncio.Event()

    async def send(self) -> None:
        self.event.set()

    async def wait(self) -> None:
        await self.event.wait()


class Overlap:
    """Counts calls running at once (as a Ray actor); each waits in `enter` until `target`
    run together."""

    def __init__(self, target: int) -> None:
        self.active = 0
        self.peak = 0
        self.reached = asyncio.Event()
        self.target = target

    async def enter(self) -> None:
        self.active += 1
        self.peak = max(self.peak, self.active)
        if self.active >= self.target:
            self.reached.set()
        await self.reached.wait()

    async def leave(self) -> int:
        self.active -= 1
        return self.peak


def actor(ray: ModuleType, cls: type, *args: Any) -> Any:
    return ray.remote(num_cpus=0)(cls).remote(*args)


def held(started: Any, release: Any, interrupted: Any, value: Any) -> Any:
    """Signal `started`, wait for `release`; signal `interrupted` if Ray cancels the call."""
    import ray

    try:
        # Inside the try: the cancellation may come as soon as `started` is sent.
        ray.get(started.send.remote())
        ray.get(release.wait.remote())
    except (KeyboardInterrupt, ray.exceptions.TaskCancelledError):
        ray.get(interrupted.send.remote())
        raise
    return value


def overlapping(counter: Any, value: Any) -> Any:
    import ray

    ray.get(counter.enter.remote())
    ray.get(counter.leave.remote())
    return value


async def test_result_comes_back(ray: ModuleType) -> None:
    results = await Pipeline([Stage("S", 2, [on_ray(remote.double)])]).run([1, 2, 3])

    assert [r.value for r in results] == [2, 4, 6]


async def test_error_is_unwrapped_to_its_own_type_with_the_remote_traceback(
    ray: ModuleType,
) -> None:
    tracker = StatusTracker()
    stage = Stage("S", 1, [on_ray(remote.refuse)], task_attempts=1)
    await Pipeline([stage], status_tracker=tracker).run(["x"])

    (failed,) = tracker.get_failed_items()
    assert failed.error_type == "Refused"
    assert type(failed.exception) is remote.Refused
    assert isinstance(failed.exception.__cause__, RemoteTraceback)
    assert "ray::refuse() (pid=" in failed.traceback
    assert "in refuse" in failed.traceback
    assert "Refused: cannot take 'x'" in failed.traceback
    assert "\x1b" not in failed.traceback


async def test_retry_runs_the_function_again(ray: ModuleType, tmp_path: Path) -> None:
    stage = Stage("S", 1, [on_ray(remote.fail_first_time)], task_attempts=2, task_wait_seconds=0)
    results = await Pipeline([stage]).run([str(tmp_path / "calls")])

    assert [r.value for r in results] == [2]


async def test_forced_shutdown_cancels_the_ray_task(ray: ModuleType) -> None:
    started, release, interrupted = (actor(ray, Signal) for _ in range(3))
    task = on_ray(functools.partial(held, started, release, interrupted))
    pipeline = Pipeline([Stage("S", 1, [task])])
    await pipeline.start()
    await pipeline.feed(["held"])
    await started.wait.remote()
    (state,) = pipeline.get_worker_states().values()
    assert (state.current_task or "").startswith("ray task ")

    await pipeline.shutdown(graceful=False)

    await interrupted.wait.remote()
    assert pipeline.get_unfinished_items() == [0]


async def test_calls_in_flight_never_exceed_the_stage_workers(ray: ModuleType) -> None:
    counter = actor(ray, Overlap, 2)
    task = on_ray(functools.partial(overlapping, counter))
    results = await Pipeline([Stage("S", 2, [task])]).run(range(8))

    assert [r.value for r in results] == list(range(8))
    assert await counter.leave.remote() == 2
