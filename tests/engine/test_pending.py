"""antflow.pending: every item a pipeline holds in flight, with its stage and value."""

from __future__ import annotations

from antflow import Pipeline, Stage
from antflow.pending import pending_items
from tests.engine.helpers import Gates


async def test_pending_items_lists_every_item_in_flight_with_its_stage_and_value() -> None:
    gates = Gates()

    async def first(value: int) -> int:
        await gates.pass_through(("A", value))
        return value * 10

    async def second(value: int) -> int:
        await gates.pass_through(("B", value))
        return value

    pipeline = Pipeline([Stage("A", 1, [first]), Stage("B", 1, [second])])
    await pipeline.start()
    await pipeline.feed([1, 2, 3])
    await gates.entered(("A", 1))
    gates.open(("A", 1))
    await gates.entered(("B", 10))
    await gates.entered(("A", 2))
    held = {(p.item_id, p.stage, p.value, p.state) for p in pending_items(pipeline)}
    assert held == {
        (0, "B", 10, "running"),
        (1, "A", 2, "running"),
        (2, "A", 3, "queued"),
    }
    gates.open_all()
    await pipeline.join()
    assert pending_items(pipeline) == []
