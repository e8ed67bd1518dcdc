"""The inputs a run stream keeps (`RunStream(inputs=True)`, antflow.runstream.inputs),
fed by the engine's `on_fed` with the ids it gave."""

from __future__ import annotations

import logging
from typing import Any

import pytest

from antflow import Pipeline, PipelineError, Stage
from antflow.runstream.inputs import MIN_KEPT
from antflow.runstream.stream import RunStream


async def double(value: Any) -> Any:
    return value * 2


def pipeline() -> Pipeline:
    return Pipeline([Stage("Double", 1, [double])])


def followed(line: Pipeline) -> RunStream:
    stream = RunStream(inputs=True)
    stream.attach(line)
    return stream


# Issue 19.2: FedInputs mirrored the engine's id rule and got it wrong: after an explicit id
# 1, the engine numbers the next items 2, 3, 4, where FedInputs answered 1 -> "a" and
# did not know 4. Inputs now come from the engine, with the ids it gave.
async def test_inputs_carry_the_ids_the_engine_gave_after_an_explicit_id() -> None:
    line = pipeline()
    stream = followed(line)
    await line.start()
    await line.feed([{"id": 1, "value": "x"}])
    await line.feed(["a", "b", "c"])
    await line.join()
    assert sorted(result.id for result in line.results) == [1, 2, 3, 4]
    assert stream.input_of(1, 1) == (True, {"id": 1, "value": "x"})
    assert stream.input_of(1, 2) == (True, "a")
    assert stream.input_of(1, 4) == (True, "c")
    assert stream.inputs_of(1, [2, 3, 4, 5]) == {2: "a", 3: "b", 4: "c"}


async def test_inputs_fed_through_run_and_feed_async_are_kept_by_item_id() -> None:
    async def rows() -> Any:
        for n in range(3):
            yield {"id": f"r{n}", "value": n}

    line = pipeline()
    stream = followed(line)
    await line.run([3, {"id": "x", "value": 4}, 5])
    assert stream.input_of(1, 0) == (True, 3)
    assert stream.input_of(1, "x") == (True, {"id": "x", "value": 4})
    assert stream.input_of(1, 2) == (True, 5)
    await line.run([7])
    assert stream.input_of(1, 3) == (True, 7), "sequence ids go on across runs"
    await line.start()
    await line.feed_async(rows())
    await line.join()
    assert stream.input_of(1, "r2") == (True, {"id": "r2", "value": 2})
    assert stream.input_of(2, 0) == (False, None), "no such pipeline"


async def test_the_oldest_inputs_go_unless_their_items_failed() -> None:
    async def fails_on_minus_one(value: int) -> int:
        if value == -1:
            raise ValueError("no")
        return value

    line = Pipeline([Stage("S", 4, [fails_on_minus_one], task_attempts=1)])
    stream = followed(line)
    await line.run([-1])  # id 0 fails
    await line.run(range(2 * MIN_KEPT + 1))  # past twice the kept number: a trim
    assert stream.input_of(1, 0) == (True, -1), "a failed item's input stays"
    assert stream.input_of(1, 1) == (False, None), "the oldest went"
    assert stream.input_of(1, 2 * MIN_KEPT + 1) == (True, 2 * MIN_KEPT), "the newest stay"


async def test_unhashable_ids_are_not_kept_and_nothing_listens_after_close() -> None:
    line = pipeline()
    stream = followed(line)
    with pytest.raises(PipelineError, match="hashable"):
        await line.run([{"id": ["not", "hashable"], "value": 1}])
    assert stream.input_of(1, ["not", "hashable"]) == (False, None)
    stream.close()
    await line.run([1])
    assert stream.input_of(1, 0) == (False, None), "a closed stream keeps nothing more"
    assert line._fed_listeners is None, "nobody listens: nothing per item"


async def test_a_stream_without_inputs_keeps_none_and_adds_no_listener() -> None:
    line = pipeline()
    stream = RunStream()
    stream.attach(line)
    await line.run([1])
    assert stream.input_of(1, 0) == (False, None)
    assert line._fed_listeners is None


async def test_an_on_fed_listener_that_raises_is_detached_and_the_item_still_fed(
    caplog: pytest.LogCaptureFixture,
) -> None:
    line = pipeline()
    seen: list[tuple[Any, Any]] = []

    def broken(item_id: Any, item: Any) -> None:
        raise RuntimeError("observer bug")

    line.probe.on_fed(broken)
    line.probe.on_fed(lambda item_id, item: seen.append((item_id, item)))
    with caplog.at_level(logging.ERROR):
        results = await line.run([5, 6])
    assert [r.value for r in results] == [10, 12]
    assert seen == [(0, 5), (1, 6)], "the other listener hears every item"
    assert sum("on_fed listener raised" in r.getMessage() for r in caplog.records) == 1
