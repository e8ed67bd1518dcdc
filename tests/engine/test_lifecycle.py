"""A pipeline's lifecycle as one state (antflow.lifecycle), moved by one function."""

from __future__ import annotations

import pytest

from antflow import Pipeline, PipelineError, PipelineState, Stage
from antflow.lifecycle import IllegalMove, move
from tests.engine.helpers import Gates


# Issue 19.7: five booleans tested in combination; now one state and a table of moves.
def test_a_move_the_table_does_not_list_is_refused() -> None:
    assert move(PipelineState.IDLE, PipelineState.RUNNING) is PipelineState.RUNNING
    with pytest.raises(IllegalMove, match="from finished to closing"):
        move(PipelineState.FINISHED, PipelineState.CLOSING)
    with pytest.raises(IllegalMove):
        move(PipelineState.STOPPED, PipelineState.ENDING)


async def test_a_run_goes_idle_running_closing_finished_and_a_shutdown_stopping_stopped() -> None:
    gates = Gates()

    async def gated(value: int) -> int:
        await gates.pass_through(value)
        return value

    pipeline = Pipeline([Stage("S", 1, [gated])])
    seen: list[PipelineState] = []
    pipeline.probe.on_ended(lambda: seen.append(pipeline.state))
    assert pipeline.state is PipelineState.IDLE
    await pipeline.start()
    assert pipeline.state is PipelineState.RUNNING
    assert pipeline.is_running
    await pipeline.feed([1])
    await gates.entered(1)
    joining = pipeline.join()
    gates.open(1)
    await joining
    assert pipeline.state is PipelineState.FINISHED
    assert not pipeline.is_running
    with pytest.raises(PipelineError, match="has finished"):
        await pipeline.feed([2])
    await pipeline.start()
    await pipeline.feed([3])
    await gates.entered(3)
    await pipeline.shutdown(graceful=False)
    assert pipeline.state is PipelineState.STOPPED
    assert pipeline.get_unfinished_items() == [1]
    with pytest.raises(PipelineError, match="was shut down"):
        await pipeline.feed([4])
    assert seen == [PipelineState.FINISHED, PipelineState.STOPPED], "on_ended once per run"


async def echo(value: int) -> int:
    return value


async def test_a_shutdown_before_any_start_stops_it() -> None:
    pipeline = Pipeline([Stage("S", 1, [echo])])
    await pipeline.shutdown()
    assert pipeline.state is PipelineState.STOPPED
    await pipeline.start()
    assert pipeline.state is PipelineState.RUNNING
    await pipeline.join()
    assert pipeline.state is PipelineState.FINISHED
