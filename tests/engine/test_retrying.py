"""Backoff, task timeouts, and reading the wait a rate-limit error asks for (issue 21)."""

from __future__ import annotations

import asyncio
import random
from datetime import timedelta
from email.utils import formatdate
from typing import TYPE_CHECKING, Any

import pytest

from antflow import Backoff, Pipeline, Stage, StageValidationError, TaskTimeoutError
from antflow.exceptions import AntFlowError
from antflow.offload import _core as core
from antflow.retrying import is_rate_limit_error, requested_wait
from tests.engine import offload_remote as remote
from tests.engine.test_offload import FakeBackend
from tests.fake_api import TooManyRequests

if TYPE_CHECKING:
    from tests.vtime import VirtualTime

NOW = 1_700_000_000.0


class WithStatus(Exception):
    def __init__(self, status: Any, headers: Any = None, **attributes: Any) -> None:
        super().__init__("refused")
        self.status_code = status
        if headers is not None:
            self.headers = headers
        for name, value in attributes.items():
            setattr(self, name, value)


# ---------------------------------------------------------------------- Retry-After


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({"retry-after": "3"}, 3.0),
        ({"Retry-After": " 1.5 "}, 1.5),
        ({"RETRY-AFTER": "0"}, 0.0),
        ({"retry-after-ms": "250", "retry-after": "1"}, 0.25),
        ({"retry-after": formatdate(NOW + 42, usegmt=True)}, 42.0),
        ({"retry-after": formatdate(NOW - 42, usegmt=True)}, 0.0),
        ([("Retry-After", "7")], 7.0),
        ([(b"retry-after", b"8")], 8.0),
    ],
)
def test_the_wait_a_server_asked_for_is_read(headers: Any, expected: float) -> None:
    error = TooManyRequests({})
    error.response.headers = headers
    assert requested_wait(error, now=lambda: NOW) == pytest.approx(expected)


@pytest.mark.parametrize(
    "value",
    ["soon", "", "-1", "nan", "inf", "1e400", "9" * 200, "99999", None, object(), [1], b"\xff"],
)
def test_hostile_or_garbage_waits_are_ignored(value: Any) -> None:
    assert requested_wait(WithStatus(429, {"retry-after": value}), now=lambda: NOW) is None


def test_the_retry_after_attribute_counts_and_headers_come_first() -> None:
    assert requested_wait(WithStatus(429, retry_after=2)) == 2.0
    assert requested_wait(WithStatus(429, retry_after=timedelta(seconds=5))) == 5.0
    assert requested_wait(WithStatus(429, {"retry-after": "4"}, retry_after=9)) == 4.0
    assert requested_wait(WithStatus(429, retry_after=True)) is None
    assert requested_wait(WithStatus(429, {"retry-after": "x"}, retry_after="6")) == 6.0


def test_headers_that_raise_are_ignored() -> None:
    class Hostile:
        def get(self, name: str) -> Any:
            raise RuntimeError("no")

    class Broken(Exception):
        @property
        def response(self) -> Any:
            raise RuntimeError("no")

    assert requested_wait(WithStatus(429, Hostile())) is None
    assert requested_wait(Broken()) is None
    assert not is_rate_limit_error(Broken())


def test_rate_limit_errors_are_recognised_by_status_or_type() -> None:
    assert is_rate_limit_error(TooManyRequests({}))
    assert is_rate_limit_error(WithStatus(429))
    assert not is_rate_limit_error(WithStatus(500))
    assert not is_rate_limit_error(WithStatus("429"))
    assert not is_rate_limit_error(ValueError())
    assert is_rate_limit_error(ValueError(), (ValueError,))


# ---------------------------------------------------------------------- Backoff


def test_backoff_grows_exponentially_up_to_its_cap() -> None:
    backoff = Backoff(initial=1.0, multiplier=2.0, max_wait=10.0, jitter=False)
    assert [backoff.wait(n) for n in range(1, 7)] == [1, 2, 4, 8, 10, 10]
    assert backoff.wait(10_000) == 10.0


def test_backoff_jitter_stays_between_half_and_all_of_each_wait() -> None:
    backoff = Backoff(initial=2.0, multiplier=3.0, max_wait=100.0, rng=random.Random(5))
    for retry in range(1, 6):
        base = min(2.0 * 3.0 ** (retry - 1), 100.0)
        waits = [backoff.wait(retry) for _ in range(50)]
        assert all(base / 2 <= wait <= base for wait in waits)
        assert len(set(waits)) > 1


@pytest.mark.parametrize(
    "kwargs",
    [
        {"initial": -1},
        {"multiplier": 0.5},
        {"max_wait": float("nan")},
        {"initial": 5, "max_wait": 1},
    ],
)
def test_a_backoff_out_of_range_says_which_number(kwargs: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match="Backoff: "):
        Backoff(**kwargs)


def test_a_stage_backoff_spaces_its_retries(vtime: VirtualTime) -> None:
    tries: list[float] = []

    async def flaky(value: int) -> int:
        tries.append(asyncio.get_running_loop().time())
        if len(tries) < 4:
            raise ConnectionError("reset")
        return value

    async def main() -> None:
        loop = asyncio.get_running_loop()
        backoff = Backoff(initial=1.0, multiplier=3.0, jitter=False)
        stage = Stage("S", 1, [flaky], task_attempts=4, backoff=backoff)
        await Pipeline([stage], clock=loop.time).run([1])

    vtime.run(main())

    assert tries == [0.0, 1.0, 4.0, 13.0]


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("task_timeout", 0, "task_timeout must be a number of seconds above 0"),
        ("task_timeout", float("inf"), "task_timeout must be a number of seconds above 0"),
        ("backoff", 2.0, "backoff must be an antflow.Backoff"),
        ("rate_limit", 10, "rate_limit must be an antflow.RateLimit"),
        ("rate_limit_on", "HTTPError", "rate_limit_on must be a list of exception classes"),
        ("rate_limit_attempts", 0, "rate_limit_attempts must be an integer >= 1"),
        ("adaptive", "yes", "adaptive must be True or False"),
    ],
)
def test_bad_options_name_the_stage_and_the_value(field: str, value: Any, message: str) -> None:
    async def task(value: int) -> int:
        return value

    with pytest.raises(StageValidationError, match=message) as caught:
        Stage("Ask", 1, [task], **{field: value}).validate()
    assert "'Ask'" in str(caught.value)


# ---------------------------------------------------------------------- timeouts


# Issue 21: a call that never returns times out and the run ends.
def test_hung_calls_time_out_and_the_run_ends(vtime: VirtualTime) -> None:
    calls: list[int] = []

    async def hang(value: int) -> int:
        calls.append(value)
        if value % 2 == 0:
            await asyncio.Event().wait()  # never returns
        return value

    async def main() -> Pipeline:
        loop = asyncio.get_running_loop()
        stage = Stage("S", 2, [hang], task_timeout=5.0, task_attempts=2)
        pipeline = Pipeline([stage], clock=loop.time, sleep=asyncio.sleep)
        await pipeline.run(range(6))
        return pipeline

    pipeline = vtime.run(main())

    stats = pipeline.get_stats()
    assert (stats.items_processed, stats.items_failed) == (3, 3)
    summary = pipeline.get_error_summary()
    assert summary.errors_by_type == {"TaskTimeoutError": 3}
    error = summary.failed_items[0].exception
    assert isinstance(error, TaskTimeoutError)
    assert isinstance(error, TimeoutError)
    assert isinstance(error, AntFlowError)
    assert str(error) == "task 'hang' ran longer than its task_timeout of 5 s and was cancelled"
    assert sorted(calls) == [0, 0, 1, 2, 2, 3, 4, 4, 5]
    assert pipeline.get_limit_snapshot().stages[0].timeouts == 6
    # Three hung items, two attempts of 5 s and a 1 s wait each, two workers.
    assert vtime.elapsed == pytest.approx(22.0)


def test_a_tasks_own_timeout_error_is_not_a_task_timeout(vtime: VirtualTime) -> None:
    async def own(value: int) -> int:
        raise TimeoutError("the task's own")

    async def main() -> Pipeline:
        loop = asyncio.get_running_loop()
        stage = Stage("S", 1, [own], task_timeout=5.0, task_attempts=1)
        pipeline = Pipeline([stage], clock=loop.time)
        await pipeline.run([1])
        return pipeline

    pipeline = vtime.run(main())

    assert pipeline.get_error_summary().errors_by_type == {"TimeoutError": 1}
    assert pipeline.get_limit_snapshot().stages[0].timeouts == 0


# Issue 21: an offloaded task that times out has its remote call cancelled.
def test_a_timed_out_offloaded_call_is_cancelled_remotely(vtime: VirtualTime) -> None:
    backend = FakeBackend()
    task = core.remote_task(remote.double, backend, "on_fake")

    async def main() -> Pipeline:
        loop = asyncio.get_running_loop()
        stage = Stage("S", 1, [task], task_timeout=2.0, task_attempts=1)
        pipeline = Pipeline([stage], clock=loop.time)
        await pipeline.run([21])
        return pipeline

    pipeline = vtime.run(main())

    assert pipeline.get_error_summary().errors_by_type == {"TaskTimeoutError": 1}
    assert [call.cancelled for call in backend.calls] == [True]
    assert vtime.elapsed == pytest.approx(2.0)
