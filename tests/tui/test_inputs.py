"""Unit tests of antflow_tui.live.inputs: the items as they were fed, kept for the export."""

from __future__ import annotations

from typing import Any

import pytest

from antflow import Pipeline, PipelineError, Stage
from antflow_tui.live.inputs import MIN_KEPT, FedInputs


async def double(value: Any) -> Any:
    return value * 2


def pipeline() -> Pipeline:
    return Pipeline([Stage("Double", 1, [double])])


async def test_inputs_fed_through_feed_and_run_are_kept_by_item_id() -> None:
    line = pipeline()
    inputs = FedInputs(line)
    await line.run([3, {"id": "x", "value": 4}, 5])
    assert inputs.input_of(0) == (True, 3)
    assert inputs.input_of("x") == (True, {"id": "x", "value": 4})
    assert inputs.input_of(2) == (True, 5)
    assert inputs.input_of(3) == (False, None)
    await line.run([7])
    assert inputs.input_of(3) == (True, 7), "sequence ids go on across runs"


async def test_inputs_fed_through_feed_async() -> None:
    async def rows() -> Any:
        for n in range(3):
            yield {"id": f"r{n}", "value": n}

    line = pipeline()
    inputs = FedInputs(line)
    await line.start()
    await line.feed_async(rows())
    await line.join()
    assert inputs.input_of("r2") == (True, {"id": "r2", "value": 2})


async def test_the_oldest_inputs_of_an_iterator_go_unless_pinned() -> None:
    line = pipeline()
    inputs = FedInputs(line)
    await line.run(iter(range(MIN_KEPT)))  # run() makes a list: feed the iterator itself
    await line.start()
    await line.feed(iter(range(MIN_KEPT)))
    await line.join()
    inputs.pin([MIN_KEPT])
    await line.start()
    await line.feed(n for n in range(MIN_KEPT + 1))  # past twice the kept number
    await line.join()
    assert inputs.input_of(MIN_KEPT) == (True, 0), "a pinned input stays"
    assert inputs.input_of(MIN_KEPT + 1) == (False, None), "the oldest went"
    assert inputs.input_of(3 * MIN_KEPT) == (True, MIN_KEPT), "the newest are kept"


async def test_sequences_are_kept_whole_and_found_by_id() -> None:
    line = pipeline()
    inputs = FedInputs(line)
    rows = [{"id": f"r{n}", "value": n} for n in range(5000)]
    await line.run(rows)
    await line.run([7, 8, 9])
    found = inputs.inputs_of(["r4999", "r0", 5000, 5002, 5003, "nope"])
    assert found == {"r4999": rows[4999], "r0": rows[0], 5000: 7, 5002: 9}
    assert inputs.input_of(4) == (False, None), "item 4 had an id of its own"


async def test_feeding_what_the_engine_refuses_still_fails_in_the_engines_words() -> None:
    line = pipeline()
    FedInputs(line)

    async def rows() -> Any:
        yield 1

    await line.start()
    with pytest.raises(TypeError, match="use feed_async"):
        await line.feed(rows())
    await line.shutdown()


async def test_unhashable_ids_are_not_kept() -> None:
    line = pipeline()
    inputs = FedInputs(line)
    # The engine refuses the id before feeding anything; the app keeps nothing either.
    with pytest.raises(PipelineError, match="hashable"):
        await line.run([{"id": ["not", "hashable"], "value": 1}])
    assert inputs.input_of(["not", "hashable"]) == (False, None)
