"""Reading a call's usage from an OpenAI- or Anthropic-shaped response (issue 22, cost):
a task passes its response as is. The fakes are shaped like each SDK's objects (no SDK
is imported) and like their JSON bodies."""

from __future__ import annotations

import logging
from types import SimpleNamespace
from typing import Any
from unittest.mock import MagicMock

import pytest

from antflow import (
    ModelPrice,
    Pipeline,
    Prices,
    Stage,
    StatusTracker,
    set_task_usage_from,
    use_prices,
)
from antflow.types import TaskUsage
from antflow.usage import usage_of
from tests.fake_api import FakeCompletion, FakeUsage


def openai_chat(prompt: int, completion: int, cached: int = 0) -> FakeCompletion:
    """``client.chat.completions.create(...)``'s ChatCompletion."""
    return FakeCompletion("gpt-4o-mini-2024-07-18", FakeUsage(prompt, completion, cached), "hi")


def openai_responses(given: int, answered: int, cached: int = 0) -> SimpleNamespace:
    """``client.responses.create(...)``'s Response."""
    usage = SimpleNamespace(
        input_tokens=given,
        output_tokens=answered,
        total_tokens=given + answered,
        input_tokens_details=SimpleNamespace(cached_tokens=cached),
        output_tokens_details=SimpleNamespace(reasoning_tokens=0),
    )
    return SimpleNamespace(model="gpt-4.1-2025-04-14", usage=usage, output_text="hi")


def anthropic_message(given: int, answered: int, read: int | None, written: int | None) -> Any:
    """``client.messages.create(...)``'s Message (cache counts may be None)."""
    usage = SimpleNamespace(
        input_tokens=given,
        output_tokens=answered,
        cache_read_input_tokens=read,
        cache_creation_input_tokens=written,
        server_tool_use=None,
    )
    return SimpleNamespace(model="claude-sonnet-4-5-20250929", usage=usage, content=[])


def test_openai_chat_completions() -> None:
    usage = usage_of(openai_chat(1_200, 300, cached=1_024))
    assert usage == TaskUsage(
        input_tokens=1_200,
        output_tokens=300,
        model="gpt-4o-mini-2024-07-18",
        reports=1,
        cached_input_tokens=1_024,
    )


def test_openai_responses_api() -> None:
    usage = usage_of(openai_responses(900, 150, cached=512))
    assert usage == TaskUsage(
        input_tokens=900,
        output_tokens=150,
        model="gpt-4.1-2025-04-14",
        reports=1,
        cached_input_tokens=512,
    )


def test_anthropic_messages_count_cache_reads_and_writes_as_input() -> None:
    # Anthropic counts the cache apart from input_tokens; TaskUsage counts all as input.
    usage = usage_of(anthropic_message(50, 200, read=3_000, written=1_000))
    assert usage == TaskUsage(
        input_tokens=4_050,
        output_tokens=200,
        model="claude-sonnet-4-5-20250929",
        reports=1,
        cached_input_tokens=3_000,
        cache_write_tokens=1_000,
    )
    none_cached = usage_of(anthropic_message(50, 200, read=None, written=None))
    assert none_cached is not None
    assert (none_cached.input_tokens, none_cached.cached_input_tokens) == (50, 0)


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        pytest.param(
            {
                "model": "gpt-4o-mini",
                "usage": {
                    "prompt_tokens": 10,
                    "completion_tokens": 5,
                    "prompt_tokens_details": {"cached_tokens": 4},
                },
            },
            TaskUsage(10, 5, model="gpt-4o-mini", reports=1, cached_input_tokens=4),
            id="openai-chat-json",
        ),
        pytest.param(
            {"model": "gpt-4.1", "usage": {"input_tokens": 10, "output_tokens": 5}},
            TaskUsage(10, 5, model="gpt-4.1", reports=1),
            id="openai-responses-json",
        ),
        pytest.param(
            {
                "type": "message",
                "model": "claude-haiku-4-5",
                "usage": {
                    "input_tokens": 10,
                    "output_tokens": 5,
                    "cache_read_input_tokens": 20,
                    "cache_creation_input_tokens": 0,
                },
            },
            TaskUsage(30, 5, model="claude-haiku-4-5", reports=1, cached_input_tokens=20),
            id="anthropic-json",
        ),
        pytest.param(
            {"prompt_tokens": 7, "completion_tokens": 3},
            TaskUsage(7, 3, reports=1),
            id="a-usage-given-itself",
        ),
    ],
)
def test_json_bodies_as_dicts(body: dict[str, Any], expected: TaskUsage) -> None:
    assert usage_of(body) == expected


class Exploding:
    """An object whose every attribute raises (a lazy proxy gone wrong)."""

    def __getattr__(self, name: str) -> Any:
        raise RuntimeError(f"no {name}")


# Issue 22: hostile shapes (missing fields, strings, negative, NaN, booleans, objects
# that raise) are ignored safely: reading never fails the task.
@pytest.mark.parametrize(
    ("response", "expected"),
    [
        pytest.param(None, None, id="none"),
        pytest.param({"usage": None}, None, id="a-chunk-before-its-usage"),
        pytest.param({"choices": []}, None, id="no-usage"),
        pytest.param("usage", None, id="a-string"),
        pytest.param(Exploding(), None, id="raises-on-every-attribute"),
        pytest.param(MagicMock(), None, id="a-mock"),
        pytest.param(
            {"usage": {"prompt_tokens": "12", "completion_tokens": 3}},
            None,
            id="a-count-as-text",
        ),
        pytest.param(
            {"usage": {"prompt_tokens": 12, "completion_tokens": -3}},
            TaskUsage(12, 0, reports=1),
            id="negative",
        ),
        pytest.param(
            {"usage": {"input_tokens": float("nan"), "output_tokens": True}},
            None,
            id="nan-and-boolean",
        ),
        pytest.param(
            {"usage": {"input_tokens": float("inf"), "output_tokens": 4}, "model": 3},
            TaskUsage(0, 4, reports=1),
            id="infinite-and-a-model-that-is-no-name",
        ),
        pytest.param(
            {
                "usage": {
                    "prompt_tokens": 10,
                    "completion_tokens": 1,
                    "prompt_tokens_details": {"cached_tokens": 50},
                }
            },
            TaskUsage(10, 1, reports=1, cached_input_tokens=10),
            id="more-cached-than-sent",
        ),
        pytest.param(
            {"usage": {"prompt_tokens": 10, "prompt_tokens_details": "none"}},
            TaskUsage(10, 0, reports=1),
            id="details-not-an-object",
        ),
    ],
)
def test_hostile_shapes_are_ignored_safely(response: Any, expected: TaskUsage | None) -> None:
    assert usage_of(response) == expected
    assert set_task_usage_from(response) == expected  # outside a worker: only reads


def test_the_model_given_wins_over_the_response() -> None:
    usage = usage_of(openai_chat(1, 1), model="mine")
    assert usage is not None
    assert usage.model == "mine"
    long = usage_of({"usage": {"prompt_tokens": 1}, "model": "m" * 1_000})
    assert long is not None
    assert long.model == "m" * 200


def test_a_response_with_no_usage_at_all_is_named_once(caplog: pytest.LogCaptureFixture) -> None:
    class Reply:
        text = "hi"

    with caplog.at_level(logging.WARNING, logger="antflow.usage"):
        for _ in range(3):
            assert set_task_usage_from(Reply()) is None
        assert set_task_usage_from({"usage": None}) is None  # a chunk: nothing to say
    told = [r.getMessage() for r in caplog.records]
    assert len(told) == 1
    assert "Reply has no usage to read" in told[0]
    assert "pass the numbers to set_task_usage" in told[0]


# Issue 22: a task passes its response as is; the report is priced by the response's
# model (dated as the API answers it) and added up per item and per stage.
async def test_a_task_reports_its_response_as_is() -> None:
    use_prices(Prices({"gpt-4o-mini": ModelPrice(0.15, 0.60, cached_input_per_million=0.075)}))
    tracker = StatusTracker()
    responses = {
        "a": openai_chat(2_000_000, 1_000_000, cached=1_000_000),
        "b": anthropic_message(10, 10, read=0, written=0),
    }

    async def ask(key: str) -> str:
        set_task_usage_from(responses[key])
        set_task_usage_from({"usage": None})  # a stream's chunk without usage: nothing
        return key

    pipeline = Pipeline([Stage("Ask", 2, [ask])], status_tracker=tracker)
    await pipeline.run([{"id": "a", "value": "a"}, {"id": "b", "value": "b"}])

    first = tracker.get_usage("a")
    assert first is not None
    assert first.reports == 1
    assert first.cost == pytest.approx(0.15 + 0.075 + 0.60)
    second = tracker.get_usage("b")
    assert second is not None
    assert (second.cost, second.unpriced, second.model) == (
        None,
        1,
        "claude-sonnet-4-5-20250929",
    )
    stage = pipeline.get_limit_snapshot().stages[0].usage
    assert stage is not None
    assert (stage.reports, stage.total_tokens, stage.unpriced) == (2, 3_000_020, 1)


async def test_a_cost_given_with_the_response_wins_over_the_prices() -> None:
    use_prices(Prices({"gpt-4o-mini": ModelPrice(0.15, 0.60)}))
    tracker = StatusTracker()

    async def ask(key: int) -> int:
        set_task_usage_from(openai_chat(100, 100), cost=0.5)
        return key

    await Pipeline([Stage("Ask", 1, [ask])], status_tracker=tracker).run([0])
    usage = tracker.get_usage(0)
    assert usage is not None
    assert (usage.cost, usage.unpriced) == (0.5, 0)
