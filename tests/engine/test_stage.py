"""Stage: its defaults and every validation rule of `Stage.validate()` and `Pipeline()`."""

from __future__ import annotations

import dataclasses
import functools
import inspect
from typing import Any

import pytest

from antflow import AntFlowError, Pipeline, PipelineError, Stage, StageValidationError


async def fetch(x: Any) -> Any:
    return x


async def scale(x: int, factor: int = 1) -> int:
    return x * factor


def plain_fetch(x: Any) -> Any:
    return x


class Worker:
    async def handle(self, x: int) -> int:
        return x + 1

    def handle_sync(self, x: int) -> int:
        return x + 1


def make_stage(**overrides: Any) -> Stage:
    fields: dict[str, Any] = {"name": "Fetch", "workers": 2, "tasks": [fetch]}
    fields.update(overrides)
    return Stage(**fields)


def validation_message(**overrides: Any) -> str:
    """Validate a stage built with `overrides` and return the error message."""
    with pytest.raises(StageValidationError) as caught:
        make_stage(**overrides).validate()
    return str(caught.value)


# ---------------------------------------------------------------------- defaults


def test_stage_signature_matches_the_seeds() -> None:
    params = inspect.signature(Stage).parameters
    # The seeds' parameters come first, in their order; ours only after them.
    assert list(params)[:13] == [
        "name",
        "workers",
        "tasks",
        "retry",
        "task_attempts",
        "task_wait_seconds",
        "stage_attempts",
        "unpack_args",
        "task_concurrency_limits",
        "on_success",
        "on_failure",
        "skip_if",
        "queue_capacity",
    ]
    assert list(params)[13:] == [
        "no_retry_on",
        # Issue 21: timeouts, backoff, rate limits and adaptive concurrency.
        "task_timeout",
        "backoff",
        "rate_limit",
        "rate_limit_on",
        "rate_limit_attempts",
        "adaptive",
        # Issue 20: outputs kept for a resume.
        "durable",
        # Issue 22: what a pipeline's budget reserves per call.
        "max_tokens",
    ]
    for required in ("name", "workers", "tasks"):
        assert params[required].default is inspect.Parameter.empty


def test_stage_defaults_match_the_seeds() -> None:
    stage = Stage("Fetch", 3, [fetch])
    assert stage.retry == "per_task"
    assert stage.task_attempts == 3
    assert stage.task_wait_seconds == 1.0
    assert stage.stage_attempts == 3
    assert stage.unpack_args is False
    assert dict(stage.task_concurrency_limits) == {}
    assert stage.on_success is None
    assert stage.on_failure is None
    assert stage.skip_if is None
    assert stage.queue_capacity is None
    stage.validate()


def test_concurrency_limits_default_is_not_shared_between_stages() -> None:
    first = dataclasses.fields(Stage)
    limits = next(f for f in first if f.name == "task_concurrency_limits")
    assert limits.default_factory is not dataclasses.MISSING
    assert Stage("A", 1, [fetch]).task_concurrency_limits is not (
        Stage("B", 1, [fetch]).task_concurrency_limits
    )


def test_default_queue_capacity_is_ten_per_worker() -> None:
    assert make_stage(workers=4).capacity == 40
    assert make_stage(workers=4, queue_capacity=7).capacity == 7


def test_stage_validation_error_is_an_antflow_error() -> None:
    assert issubclass(StageValidationError, AntFlowError)
    assert issubclass(PipelineError, AntFlowError)


# ---------------------------------------------------------------------- retry policy


@pytest.mark.parametrize("retry", ["per_item", "PER_TASK", "", None])
def test_bad_retry_policy_is_rejected(retry: Any) -> None:
    message = validation_message(retry=retry)
    assert "'Fetch'" in message
    assert repr(retry) in message
    assert "per_task" in message
    assert "per_stage" in message


@pytest.mark.parametrize("retry", ["per_task", "per_stage"])
def test_both_retry_policies_are_accepted(retry: str) -> None:
    make_stage(retry=retry).validate()


# ---------------------------------------------------------------------- workers


@pytest.mark.parametrize("workers", [0, -1])
def test_fewer_than_one_worker_is_rejected(workers: int) -> None:
    message = validation_message(workers=workers)
    assert "'Fetch'" in message
    assert "workers" in message
    assert repr(workers) in message


@pytest.mark.parametrize("workers", [2.0, 2.5, "3", None])
def test_non_integer_workers_are_rejected(workers: Any) -> None:
    message = validation_message(workers=workers)
    assert "'Fetch'" in message
    assert "workers" in message
    assert repr(workers) in message


@pytest.mark.parametrize("workers", [True, False])
def test_bool_workers_are_rejected(workers: bool) -> None:
    message = validation_message(workers=workers)
    assert "'Fetch'" in message
    assert "workers" in message
    assert repr(workers) in message


# ---------------------------------------------------------------------- tasks


def test_empty_task_list_is_rejected() -> None:
    message = validation_message(tasks=[])
    assert "'Fetch'" in message
    assert "tasks" in message
    assert "empty" in message


@pytest.mark.parametrize("tasks", [fetch, "fetch", 42, None])
def test_tasks_that_are_not_a_list_are_rejected(tasks: Any) -> None:
    message = validation_message(tasks=tasks)
    assert "'Fetch'" in message
    assert "tasks" in message
    assert repr(tasks) in message


def test_tasks_may_be_a_tuple() -> None:
    make_stage(tasks=(fetch, scale)).validate()


@pytest.mark.parametrize("task", [42, "fetch", None])
def test_non_callable_task_is_rejected(task: Any) -> None:
    message = validation_message(tasks=[fetch, task])
    assert "'Fetch'" in message
    assert "not callable" in message
    assert repr(task) in message
    assert "#2" in message


def test_plain_def_task_is_rejected_up_front() -> None:
    message = validation_message(tasks=[fetch, plain_fetch])
    assert "'Fetch'" in message
    assert "'plain_fetch'" in message
    assert "async def" in message


def test_partial_of_plain_def_is_rejected() -> None:
    message = validation_message(tasks=[functools.partial(plain_fetch)])
    assert "'Fetch'" in message
    assert "'plain_fetch'" in message
    assert "async def" in message


def test_bound_plain_method_is_rejected() -> None:
    message = validation_message(tasks=[Worker().handle_sync])
    assert "'Fetch'" in message
    assert "'handle_sync'" in message
    assert "async def" in message


def test_lambda_returning_a_coroutine_is_accepted() -> None:
    make_stage(tasks=[lambda x: scale(x, 2)]).validate()


def test_partial_of_async_function_is_accepted() -> None:
    make_stage(tasks=[functools.partial(scale, factor=3)]).validate()


def test_bound_async_method_is_accepted() -> None:
    make_stage(tasks=[Worker().handle]).validate()


def test_wrapped_async_function_is_accepted() -> None:
    @functools.wraps(fetch)
    async def logged(x: Any) -> Any:
        return await fetch(x)

    make_stage(tasks=[logged]).validate()


async def test_lambdas_and_partials_of_async_functions_run() -> None:
    stage = make_stage(
        workers=1,
        tasks=[lambda x: scale(x, 2), functools.partial(scale, factor=5), Worker().handle],
    )
    results = await Pipeline([stage]).run([1, 2])
    assert [r.value for r in results] == [11, 21]


# ---------------------------------------------------------------------- attempts and waits


@pytest.mark.parametrize("field", ["task_attempts", "stage_attempts"])
@pytest.mark.parametrize("value", [0, -2])
def test_attempts_below_one_are_rejected(field: str, value: int) -> None:
    message = validation_message(**{field: value})
    assert "'Fetch'" in message
    assert field in message
    assert repr(value) in message


@pytest.mark.parametrize("field", ["task_attempts", "stage_attempts"])
@pytest.mark.parametrize("value", [1.5, True, "3"])
def test_attempts_must_be_integers(field: str, value: Any) -> None:
    message = validation_message(**{field: value})
    assert "'Fetch'" in message
    assert field in message
    assert repr(value) in message


@pytest.mark.parametrize("wait", [-1, -0.5])
def test_negative_task_wait_seconds_is_rejected(wait: float) -> None:
    message = validation_message(task_wait_seconds=wait)
    assert "'Fetch'" in message
    assert "task_wait_seconds" in message
    assert repr(wait) in message


@pytest.mark.parametrize("wait", ["1", None, True])
def test_non_numeric_task_wait_seconds_is_rejected(wait: Any) -> None:
    message = validation_message(task_wait_seconds=wait)
    assert "'Fetch'" in message
    assert "task_wait_seconds" in message
    assert repr(wait) in message


def test_nan_task_wait_seconds_is_rejected() -> None:
    message = validation_message(task_wait_seconds=float("nan"))
    assert "'Fetch'" in message
    assert "task_wait_seconds" in message
    assert "nan" in message


@pytest.mark.parametrize("wait", [0, 0.0, 2])
def test_zero_and_integer_task_wait_seconds_are_accepted(wait: float) -> None:
    make_stage(task_wait_seconds=wait).validate()


# ---------------------------------------------------------------------- concurrency limits


def test_concurrency_limit_for_unknown_task_is_rejected() -> None:
    message = validation_message(tasks=[fetch, scale], task_concurrency_limits={"download": 2})
    assert "'Fetch'" in message
    assert "'download'" in message
    assert "fetch" in message
    assert "scale" in message


@pytest.mark.parametrize("limit", [0, -1, 1.5, True])
def test_concurrency_limit_below_one_is_rejected(limit: Any) -> None:
    message = validation_message(task_concurrency_limits={"fetch": limit})
    assert "'Fetch'" in message
    assert "'fetch'" in message
    assert repr(limit) in message


def test_concurrency_limits_use_task_names_through_partials() -> None:
    make_stage(
        tasks=[functools.partial(scale, factor=2)], task_concurrency_limits={"scale": 1}
    ).validate()


# ---------------------------------------------------------------------- queue capacity


@pytest.mark.parametrize("capacity", [0, -5, 2.5, True])
def test_queue_capacity_below_one_is_rejected(capacity: Any) -> None:
    message = validation_message(queue_capacity=capacity)
    assert "'Fetch'" in message
    assert "queue_capacity" in message
    assert repr(capacity) in message


# ---------------------------------------------------------------------- hooks


@pytest.mark.parametrize("hook", ["on_success", "on_failure", "skip_if"])
def test_non_callable_hooks_are_rejected(hook: str) -> None:
    message = validation_message(**{hook: "not a function"})
    assert "'Fetch'" in message
    assert hook in message
    assert "'not a function'" in message


# ---------------------------------------------------------------------- stage name


@pytest.mark.parametrize("name", ["", None, 3])
def test_stage_name_must_be_a_non_empty_string(name: Any) -> None:
    message = validation_message(name=name)
    assert "name" in message
    assert repr(name) in message


# ---------------------------------------------------------------------- Pipeline()


def test_pipeline_validates_its_stages() -> None:
    with pytest.raises(StageValidationError) as caught:
        Pipeline([make_stage(name="Save", workers=0)])
    assert "'Save'" in str(caught.value)
    assert "workers" in str(caught.value)


def test_pipeline_validates_every_stage_not_just_the_first() -> None:
    with pytest.raises(StageValidationError) as caught:
        Pipeline([make_stage(name="Fetch"), make_stage(name="Save", tasks=[plain_fetch])])
    assert "'Save'" in str(caught.value)
    assert "'plain_fetch'" in str(caught.value)


def test_duplicate_stage_names_are_rejected() -> None:
    with pytest.raises(PipelineError) as caught:
        Pipeline([make_stage(name="Fetch"), make_stage(name="Save"), make_stage(name="Fetch")])
    message = str(caught.value)
    assert "Fetch" in message
    assert "Save" not in message
    assert "unique" in message


@pytest.mark.parametrize("stages", [[], (), None])
def test_empty_stage_list_is_rejected(stages: Any) -> None:
    with pytest.raises(PipelineError, match="Pipeline must have at least one stage"):
        Pipeline(stages)


def test_non_stage_in_stage_list_is_rejected() -> None:
    with pytest.raises(PipelineError) as caught:
        Pipeline([make_stage(), {"name": "Save"}])  # type: ignore[list-item]
    assert "#2" in str(caught.value)
    assert "'Save'" in str(caught.value)


def test_pipeline_accepts_positional_arguments() -> None:
    stage = make_stage()
    pipeline = Pipeline([stage], False, None)
    assert pipeline.stages == [stage]
    assert pipeline.collect_results is False
    assert pipeline.status_tracker is None


# Issue 22: max_tokens, what a budget reserves per call, is a whole number of tokens.
@pytest.mark.parametrize("bad", [0, -5, 1.5, "400", True])
def test_max_tokens_must_be_a_whole_number_of_tokens(bad: Any) -> None:
    message = validation_message(max_tokens=bad)
    assert message.startswith("Stage 'Fetch': max_tokens must be an integer >= 1, got ")
    make_stage(max_tokens=400).validate()
